#!/usr/bin/env bash
# The CPU GEMM's GFLOP/s beside the gemm and matrixmultiply crates and numpy's, in one run
# (benchmarks/cpu_gemm/: accrete's own driver, the crates; then numpy), with `uptime`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --manifest-path benchmarks/cpu_gemm/Cargo.toml
threads="${ACCRETE_CPU_THREADS:-$(nproc)}"
uptime
echo "threads $threads"
ACCRETE_CPU_THREADS="$threads" RAYON_NUM_THREADS="$threads" MATMUL_NUM_THREADS="$threads" \
    benchmarks/cpu_gemm/target/release/accrete-cpu-gemm-bench
python3 - <<'PY'
import time, numpy as np
for n in (256, 512, 1024):
    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
    a @ b
    reps = max(3, int(4e9 / (2 * n ** 3)))
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    s = (time.perf_counter() - t) / reps
    print(f"numpy matmul n={n}: {2 * n ** 3 / s / 1e9:.1f} GFLOP/s")
PY
uptime
