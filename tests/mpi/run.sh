#!/usr/bin/env bash
# The MPI backend's tests (tests/mpi/main.rs): builds the CLI with `--features mpi` and runs
# it under mpirun on lavapipe. Installs Open MPI and libclang when missing and root.
#
# Usage: bash tests/mpi/run.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
MPI_PACKAGES=(libopenmpi-dev openmpi-bin libclang-dev)
if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1 \
    || ! compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${MPI_PACKAGES[@]}"
    else
        echo "[tests/mpi/run.sh] MPI is missing; install it: sudo apt-get install -y ${MPI_PACKAGES[*]}" >&2
        exit 1
    fi
fi
start=$SECONDS
# scripts/test.sh's workspace and features plus `mpi` (the same list as MPI_FEATURES in
# tests/mpi/main.rs): cargo then reuses that build of core and its dependencies, and only
# the CLI and the test crate are built again, with MPI.
FEATURES=accrete/ts,accrete-cli/mpi,accrete-tests/mpi
cargo clippy --workspace --exclude accrete-web --all-targets --features "$FEATURES" -- -D warnings
cargo build --workspace --exclude accrete-web --bin accrete --features "$FEATURES"
cargo test --workspace --exclude accrete-web --features "$FEATURES" --test mpi --no-run
built=$SECONDS
# The tests share one machine's cores between ranks: one test at a time.
cargo test --workspace --exclude accrete-web --features "$FEATURES" --test mpi "$@" -- --test-threads=1
echo "[tests/mpi/run.sh] build $((built - start)) s, tests $((SECONDS - built)) s" >&2
