#!/usr/bin/env bash
# The CPU GEMM's GFLOP/s next to numpy's, in one run (see benchmarks/cpu_gemm.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
rustc -O --edition 2021 benchmarks/cpu_gemm.rs -o /tmp/accrete_cpu_gemm
uptime
/tmp/accrete_cpu_gemm
python3 - <<'PY'
import time, numpy as np
for n in (256, 512, 1024):
    a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
    a @ b
    reps = max(1, int(2e9 / (2 * n ** 3)))
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    s = (time.perf_counter() - t) / reps
    print(f"numpy matmul n={n}: {2 * n ** 3 / s / 1e9:.1f} GFLOP/s")
PY
uptime
