#!/usr/bin/env bash
# Runs all native tests. Without a GPU the tests use lavapipe (Mesa's software Vulkan driver),
# which this script installs when it is missing and we are root.
#
# Usage: bash scripts/test.sh [extra cargo test arguments, e.g. -- --nocapture]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LAVAPIPE_PACKAGES=(mesa-vulkan-drivers libvulkan1)
# The end-to-end tests train on a Fashion-MNIST subset.
[[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || LAVAPIPE_PACKAGES+=(dataset-fashion-mnist)
# Report charts render their text with DejaVu.
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || LAVAPIPE_PACKAGES+=(fonts-dejavu-core)
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if ! compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null \
    || ((${#LAVAPIPE_PACKAGES[@]} > 2)); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "[scripts/test.sh] installing: ${LAVAPIPE_PACKAGES[*]}" >&2
        if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
            apt-get update
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${LAVAPIPE_PACKAGES[@]}"
    else
        echo "[scripts/test.sh] note: lavapipe (software Vulkan) is not installed; without a GPU the" \
            "tests cannot find an adapter. Install it with:" >&2
        echo "    sudo apt-get install -y --no-install-recommends ${LAVAPIPE_PACKAGES[*]}" >&2
    fi
fi

# The interop tests recompute predictions from a checkpoint with numpy + safetensors, run
# the ONNX export in onnxruntime (checked by onnx) and read the TensorBoard event files
# with TensorBoard's own loader.
if ! python3 -c 'import numpy, safetensors, onnx, onnxruntime, tensorboard' >/dev/null 2>&1; then
    echo "[scripts/test.sh] installing numpy, safetensors, onnx, onnxruntime and tensorboard for the Python interop tests" >&2
    python3 -m pip install -q --disable-pip-version-check numpy safetensors onnx onnxruntime tensorboard
fi

# accrete-web is a wasm32 front end; it is built (not tested) by web/build.sh. Core's `ts`
# feature (the TypeScript declarations of the spec, which accrete-web enables) is on so that
# config::ts_types checks every spec field is declared.
# Every test on the WebGPU backend (lavapipe without a GPU: the WGSL kernels themselves),
# then the kernel, training and session tests again on the CPU backend (its Rust kernels,
# against the same f64 references; ACCRETE_BACKEND is read by every Gpu::new()).
ACCRETE_BACKEND=gpu cargo test --workspace --exclude accrete-web --features accrete/ts "$@"
ACCRETE_BACKEND=cpu cargo test --workspace --exclude accrete-web --features accrete/ts \
    --test kernels --test training --test sessions "$@"

# The wasm package in headless Chromium (WebGPU on SwiftShader), cross-checked against the
# native CLI built above: builds web/pkg and installs Chromium and playwright-core if missing.
# SKIP_BROWSER_TESTS=1 skips it.
if [[ ${SKIP_BROWSER_TESTS:-0} == 1 ]]; then
    echo "[scripts/test.sh] SKIP_BROWSER_TESTS=1: skipping tests/browser/run.sh" >&2
else
    # The CLI it cross-checks against runs on WebGPU (lavapipe) in both passes.
    ACCRETE_BACKEND=gpu bash tests/browser/run.sh
fi

# The CLI's `mpi` feature under mpirun (-np 2 and 3, on lavapipe): installs Open MPI and
# libclang if missing. SKIP_MPI_TESTS=1 skips it.
if [[ ${SKIP_MPI_TESTS:-0} == 1 ]]; then
    echo "[scripts/test.sh] SKIP_MPI_TESTS=1: skipping tests/mpi/run.sh" >&2
else
    ACCRETE_BACKEND=gpu bash tests/mpi/run.sh
fi
