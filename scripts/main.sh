#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing (the Fashion-MNIST package, a font
# for the report charts), build the CLI, list the devices, and run the built-in default: Fashion-MNIST arriving in 5 incremental
# chunks into an MLP, with checkpoints, metrics and a report in runs/NNN/.
# Extra arguments go to `accrete train` (e.g. --config FILE --out DIR).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
# No GPU driver is needed: without a hardware GPU, accrete trains on its CPU backend
# (`--backend auto`, the default; a software Vulkan driver such as lavapipe would be slower).
[[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || need+=(dataset-fashion-mnist)
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || need+=(fonts-dejavu-core)
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "[scripts/main.sh] installing ${need[*]}" >&2
        compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null || apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
    else
        echo "[scripts/main.sh] please install: ${need[*]}" >&2
        exit 2
    fi
fi

cargo build --release -p accrete-cli
bin=target/release/accrete
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
"$bin" devices
"$bin" train "$@"
