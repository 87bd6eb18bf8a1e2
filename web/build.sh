#!/usr/bin/env bash
# Builds the browser package of accrete into web/pkg/ (an ES module for `--target web`):
#   web/pkg/accrete_web.js, accrete_web_bg.wasm (optimised by wasm-opt), accrete_web.d.ts,
#   package.json (with an exports map), README.md (web/npm-README.md), the licences
#
# The wasm32 standard library comes from Debian's rust-web toolchain (built with -Zbuild-std),
# so no rustup target is needed. Missing prerequisites are installed when running as root:
#   apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src rust-web-llvm lld-22
#   cargo install wasm-bindgen-cli --version <the wasm-bindgen version in Cargo.lock>
#   npm install binaryen@<BINARYEN_VERSION> into target-wasm/tools   (wasm-opt; WASM_OPT=0 skips it)
#
# Usage: bash web/build.sh        (from anywhere; paths are relative to the repository root)
# Environment: PROFILE=release|dev (default release), APT_UPDATE=1 forces `apt-get update`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROFILE="${PROFILE:-release}"
TARGET=wasm32-unknown-unknown
TARGET_DIR="$ROOT/target-wasm"
OUT_DIR="$ROOT/web/pkg"
DEB_CARGO=/usr/bin/cargo
DEB_RUSTC=/usr/bin/rustc
STD_SRC=/usr/lib/rustlib/src/rust/library/std
APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

# cargo install puts binaries here; make sure an earlier install is found.
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$PATH:$CARGO_BIN"

log() { printf '[web/build.sh] %s\n' "$*" >&2; }
die() { printf '[web/build.sh] error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian's rust-web toolchain (rustc, cargo, std sources for -Zbuild-std, rust-lld) ---
have_deb_toolchain() {
    [[ -x $DEB_CARGO && -x $DEB_RUSTC && -d $STD_SRC ]] && command -v rust-lld >/dev/null 2>&1
}

if ! have_deb_toolchain; then
    log "Debian's rust-web toolchain is incomplete (need $DEB_CARGO, $DEB_RUSTC, $STD_SRC, rust-lld)."
    if [[ $(id -u) -ne 0 ]]; then
        die "install it as root: apt-get install -y --no-install-recommends ${APT_PACKAGES[*]}"
    fi
    if [[ ${APT_UPDATE:-0} == 1 ]] || ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        log "apt-get update"
        apt-get update
    fi
    log "apt-get install ${APT_PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
fi
[[ -x $DEB_CARGO && -x $DEB_RUSTC && -d $STD_SRC ]] \
    || die "still missing $DEB_CARGO, $DEB_RUSTC or $STD_SRC after installing ${APT_PACKAGES[*]}"

# rustc links wasm32 with `rust-lld` (from rust-web-llvm, a link to lld-22). If it is not on
# PATH, fall back to lld's wasm-ld directly.
if ! command -v rust-lld >/dev/null 2>&1 && [[ -z ${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER:-} ]]; then
    WASM_LD="$(command -v wasm-ld || command -v wasm-ld-22 || ls /usr/lib/llvm-*/bin/wasm-ld 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -n $WASM_LD ]] || die "no wasm linker: neither rust-lld nor wasm-ld found (apt-get install rust-web-llvm lld-22)"
    log "rust-lld not on PATH; linking with $WASM_LD"
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$WASM_LD"
fi

# --- 2. Compile the crate for wasm32 ---
# RUSTC_BOOTSTRAP=1 unlocks -Zbuild-std on the stable Debian toolchain; the std for wasm32 is
# compiled from rust-web-src. A separate target dir keeps these artefacts away from the native
# (rustup) build in target/.
log "$("$DEB_RUSTC" --version)"
profile_args=(--release)
profile_dir=release
if [[ $PROFILE == dev ]]; then
    profile_args=()
    profile_dir=debug
elif [[ $PROFILE != release ]]; then
    die "PROFILE must be release or dev, not '$PROFILE'"
fi
log "cargo build -p accrete-web --target $TARGET ($PROFILE) into ${TARGET_DIR#"$ROOT"/}"
start=$SECONDS
# simd128: the CPU backend's kernels vectorise with wasm SIMD (every current browser has it:
# Chrome 91+, Firefox 89+, Safari 16.4+).
env -u RUSTUP_TOOLCHAIN RUSTC="$DEB_RUSTC" RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+simd128" \
    "$DEB_CARGO" build "${profile_args[@]}" -Zbuild-std=std,panic_abort \
    --target "$TARGET" --target-dir "$TARGET_DIR" -p accrete-web
log "compiled in $((SECONDS - start)) s"
WASM="$TARGET_DIR/$TARGET/$profile_dir/accrete_web.wasm"
[[ -f $WASM ]] || die "cargo succeeded but $WASM is missing"

# --- 3. wasm-bindgen-cli, exactly the version of the wasm-bindgen crate in Cargo.lock ---
# (read after the build, which may have updated Cargo.lock)
BINDGEN_VERSION="$(awk '
    /^\[\[package\]\]/ { name = "" }
    /^name = "wasm-bindgen"$/ { name = "wasm-bindgen" }
    name == "wasm-bindgen" && /^version = / { gsub(/"/, "", $3); print $3; name = "" }
' Cargo.lock)"
[[ -n $BINDGEN_VERSION ]] || die "no wasm-bindgen package in Cargo.lock"
[[ $(wc -l <<<"$BINDGEN_VERSION") -eq 1 ]] \
    || die "Cargo.lock has several wasm-bindgen versions ($(tr '\n' ' ' <<<"$BINDGEN_VERSION")); unify them"

installed="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [[ $installed != "$BINDGEN_VERSION" ]]; then
    log "wasm-bindgen-cli ${installed:-not installed}, need $BINDGEN_VERSION: cargo install (takes a few minutes)"
    # Prefer the rustup cargo when there is one; otherwise Debian's.
    if command -v rustup >/dev/null 2>&1 && cargo --version >/dev/null 2>&1; then
        cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
    else
        env RUSTC="$DEB_RUSTC" "$DEB_CARGO" install wasm-bindgen-cli --version "$BINDGEN_VERSION" --force
    fi
    hash -r
    installed="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
    [[ $installed == "$BINDGEN_VERSION" ]] \
        || die "wasm-bindgen on PATH is '${installed:-missing}' ($(command -v wasm-bindgen || echo none)), not $BINDGEN_VERSION"
fi

# --- 4. JS bindings ---
log "wasm-bindgen $installed --target web -> ${OUT_DIR#"$ROOT"/}"
rm -rf "$OUT_DIR"
wasm-bindgen --target web --out-dir "$OUT_DIR" --out-name accrete_web "$WASM"

CRATE_VERSION="$(awk -F'"' '/^\[workspace.package\]/ { ws = 1; next } /^\[/ { ws = 0 } ws && /^version *=/ { print $2; exit }' Cargo.toml)"
[[ -n $CRATE_VERSION ]] || die "no version in [workspace.package] of Cargo.toml"

# --- 5. wasm-opt (binaryen from npm, installed into target-wasm/tools when missing) ---
# WASM_OPT=0 skips it; WASM_OPT_FLAGS replaces the level (default -O3: the GPU does the
# heavy work, but data preparation, initialisation and marshalling run in wasm).
BINARYEN_VERSION=132.0.0
WASM_OPT_FLAGS="${WASM_OPT_FLAGS:--O3}"
# The features rustc enables for wasm32-unknown-unknown (wasm-bindgen drops the
# target_features section wasm-opt would detect them from).
WASM_FEATURES=(--enable-bulk-memory --enable-mutable-globals --enable-nontrapping-float-to-int
    --enable-sign-ext --enable-reference-types --enable-multivalue)
BG="$OUT_DIR/accrete_web_bg.wasm"
size_before="$(stat -c %s "$BG")"
if [[ ${WASM_OPT:-1} != 0 ]]; then
    TOOLS="$TARGET_DIR/tools"
    WASM_OPT_BIN="$TOOLS/node_modules/binaryen/bin/wasm-opt"
    if [[ ! -f $WASM_OPT_BIN ]] \
        || ! grep -q "\"version\": \"$BINARYEN_VERSION\"" "$TOOLS/node_modules/binaryen/package.json" 2>/dev/null; then
        command -v npm >/dev/null 2>&1 || die "wasm-opt needs npm (apt-get install npm), or set WASM_OPT=0"
        log "npm install binaryen@$BINARYEN_VERSION (wasm-opt) into ${TOOLS#"$ROOT"/}"
        mkdir -p "$TOOLS"
        (cd "$TOOLS" && npm install --no-save --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION")
    fi
    log "wasm-opt $WASM_OPT_FLAGS"
    start=$SECONDS
    # shellcheck disable=SC2086 # WASM_OPT_FLAGS may hold several flags
    node "$WASM_OPT_BIN" $WASM_OPT_FLAGS "${WASM_FEATURES[@]}" "$BG" -o "$BG.opt"
    mv "$BG.opt" "$BG"
    log "wasm-opt: $size_before -> $(stat -c %s "$BG") bytes in $((SECONDS - start)) s"
fi

# --- 6. README, licences, package.json ---
cp "$ROOT/web/npm-README.md" "$OUT_DIR/README.md"
cp "$ROOT/LICENSE-MIT" "$ROOT/LICENSE-APACHE" "$OUT_DIR/"

# The repository: [workspace.package] repository in Cargo.toml, else $ACCRETE_REPOSITORY,
# else the git remote "origin".
REPOSITORY="$(awk -F'"' '/^\[workspace.package\]/ { ws = 1; next } /^\[/ { ws = 0 } ws && /^repository *=/ { print $2; exit }' Cargo.toml)"
REPOSITORY="${REPOSITORY:-${ACCRETE_REPOSITORY:-$(git -C "$ROOT" remote get-url origin 2>/dev/null || true)}}"
if [[ -n $REPOSITORY ]]; then
    repository_json="\"repository\": { \"type\": \"git\", \"url\": \"$REPOSITORY\", \"directory\": \"web\" },"
else
    log "warning: no repository URL (set repository in [workspace.package] of Cargo.toml, or ACCRETE_REPOSITORY); package.json has none"
    repository_json=""
fi

files=()
for f in "$OUT_DIR"/*; do
    name="$(basename "$f")"
    [[ $name == package.json || $name == .gitignore ]] && continue
    files+=("    \"$name\"")
done
files_json="$(IFS=$'\n'; printf '%s' "${files[*]}" | sed '$!s/$/,/')"

cat >"$OUT_DIR/package.json" <<EOF
{
  "name": "accrete-web",
  "version": "$CRATE_VERSION",
  "description": "Browser front end of accrete: neural-network training on WebGPU (wasm-bindgen)",
  "keywords": ["neural-network", "webgpu", "wasm", "training", "continual-learning"],
  "license": "MIT OR Apache-2.0",
  $repository_json
  "type": "module",
  "main": "./accrete_web.js",
  "module": "./accrete_web.js",
  "types": "./accrete_web.d.ts",
  "exports": {
    ".": {
      "types": "./accrete_web.d.ts",
      "import": "./accrete_web.js",
      "default": "./accrete_web.js"
    },
    "./accrete_web_bg.wasm": "./accrete_web_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": [
$files_json
  ],
  "sideEffects": [
    "./snippets/*"
  ]
}
EOF
node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$OUT_DIR/package.json" \
    || die "wrote an invalid $OUT_DIR/package.json"

for f in accrete_web.js accrete_web_bg.wasm; do
    [[ -s $OUT_DIR/$f ]] || die "wasm-bindgen did not write $OUT_DIR/$f"
done
log "done: $(du -b "$OUT_DIR/accrete_web_bg.wasm" | cut -f1) bytes of wasm in ${OUT_DIR#"$ROOT"/}/"
ls -l "$OUT_DIR" >&2
