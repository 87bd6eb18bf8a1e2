#!/usr/bin/env bash
# Browser tests: the wasm package (web/pkg) in headless Chromium with WebGPU (SwiftShader when
# there is no GPU), driven by playwright-core, cross-checked against the native CLI; first
# `tsc --noEmit` on types/check.ts against the package's declarations (typecheck.mjs).
#
# Builds or installs what is missing first:
#   web/pkg/             bash web/build.sh                   (CI's .ci/run has built it already)
#   Chromium, Node, npm  apt-get install chromium nodejs npm (as root; otherwise says what to run)
#   node_modules/        npm ci                              (playwright-core and typescript, pinned in package-lock.json)
#   the CLI              cargo build -p accrete-cli          (debug; scripts/test.sh's cargo test built it)
#
# Usage: bash tests/browser/run.sh [test name …]     (names: see tests/browser/run.mjs)
# Environment: CHROMIUM=/path/to/chromium, ACCRETE_BIN=/path/to/accrete (skips the cargo build).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

log() { printf '[tests/browser] %s\n' "$*" >&2; }
die() { printf '[tests/browser] error: %s\n' "$*" >&2; exit 1; }

export CHROMIUM="${CHROMIUM:-/usr/lib/chromium/chromium}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

# --- Chromium, Node and npm ---
missing=()
[[ -x $CHROMIUM ]] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing: ${missing[*]}"
        if [[ ${APT_UPDATE:-0} == 1 ]] || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
            apt-get update
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
        die "missing ${missing[*]}; install as root: apt-get install -y --no-install-recommends ${missing[*]}"
    fi
fi
[[ -x $CHROMIUM ]] || die "no Chromium at $CHROMIUM (set CHROMIUM to the browser binary)"

# --- The wasm package ---
if [[ ! -f web/pkg/accrete_web.js || ! -f web/pkg/accrete_web_bg.wasm ]]; then
    log "web/pkg is missing: bash web/build.sh"
    bash web/build.sh
fi

# --- playwright-core ---
if [[ ! -f $HERE/node_modules/playwright-core/package.json ]] \
    || [[ $HERE/package-lock.json -nt $HERE/node_modules/.package-lock.json ]]; then
    log "npm ci"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- The native CLI (for accrete train / accrete eval) ---
if [[ -z ${ACCRETE_BIN:-} ]]; then
    log "cargo build -p accrete-cli (debug)"
    cargo build --quiet -p accrete-cli --bin accrete
    export ACCRETE_BIN="$ROOT/target/debug/accrete"
fi
[[ -x $ACCRETE_BIN ]] || die "no CLI binary at $ACCRETE_BIN"

# --- The package's TypeScript declarations: tsc --noEmit on types/check.ts ---
node "$HERE/typecheck.mjs"

log "$("$CHROMIUM" --version 2>/dev/null || echo "Chromium at $CHROMIUM"); node $(node --version)"
start=$SECONDS
# Once on WebGPU (SwiftShader; every trainer asks for backend "gpu"), once in a Chromium
# without WebGPU, where auto runs every trainer on the CPU backend (the wasm Rust kernels).
node "$HERE/run.mjs" "$@"
BROWSER_WEBGPU=0 node "$HERE/run.mjs" "$@"
log "done in $((SECONDS - start)) s"
