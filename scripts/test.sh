#!/usr/bin/env bash
# Runs all native tests. Without a GPU the tests use lavapipe (Mesa's software Vulkan driver),
# which this script installs when it is missing and we are root.
#
# Usage: bash scripts/test.sh [extra cargo test arguments, e.g. -- --nocapture]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LAVAPIPE_PACKAGES=(mesa-vulkan-drivers libvulkan1)

if ! compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "[scripts/test.sh] installing lavapipe: ${LAVAPIPE_PACKAGES[*]}" >&2
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

# accrete-web is a wasm32 front end; it is built (not tested) by web/build.sh.
cargo test --workspace --exclude accrete-web "$@"
