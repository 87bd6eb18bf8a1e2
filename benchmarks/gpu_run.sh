#!/usr/bin/env bash
# One go of the performance benchmarks on a GPU machine, PyTorch side by side:
#
#   1. accrete devices                     (which adapter runs; refuses a CPU adapter)
#   2. accrete bench train --profile       per-kernel GPU times of a training step, mlp and cnn
#                                          at each batch size
#   3. compare_pytorch.py                  torch.matmul (f32 with TF32 off, f16) at the table's
#                                          sizes; MLP and CNN epochs in PyTorch (eager and CUDA
#                                          graph) and `accrete bench train`, with ratios
#   4. accrete bench matmul                the sweep: every f32 and f16 variant at $SIZES
#   5. accrete bench matmul --autotune     the autotuned choice at $AUTOTUNE_SIZES
#      (before 4: accrete bench train with and without --mixed-precision, test accuracy)
#   6. gpu_summary.py                      the issue's table (summary.md), rewritten after every
#                                          stage so that a run cut short still has one
#
# The cheap, table-critical stages come first; the sweep (the longest) comes late. Every JSON
# line goes to $OUT_DIR/bench.jsonl (and stdout); stderr of each stage to $OUT_DIR/<stage>.log.
#
# Usage:
#   benchmarks/gpu_run.sh [ACCRETE_BINARY] [--data DIR] [--out DIR]
#
#   ACCRETE_BINARY  the prebuilt CLI (default $ACCRETE or target/release/accrete)
#   --data DIR      Fashion-MNIST IDX files (default $DATA or /usr/share/datasets/fashion-mnist)
#   --out DIR       where the results go (default $OUT_DIR, else $OUT, else bench-out)
#
# Environment (defaults size the whole run to ~8 minutes on an H200):
#   VK_DRIVER_FILES   the Vulkan ICD; when neither it nor VK_ICD_FILENAMES is set and
#                     /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json exists, that file is
#                     used, i.e. VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
#   ALLOW_CPU_ADAPTER=1   run even when accrete picks a CPU adapter (llvmpipe/lavapipe: tests)
#   SIZES=1024,2048,4096,8192   matmul sweep sizes      MATMUL_REPS=5   multiplies per timing
#   MAX_SECONDS=2     skip a variant's larger sizes once one timed run took longer (8192 runs
#                     ~8x its 4096 run: at most ~16 s for a variant that slow)
#   AUTOTUNE_SIZES=1024,8192  AUTOTUNE_VARIANTS=vec4db_128x128x16_8x8 (the stage's own timed
#                     variant; the autotune itself times all f32 candidates)
#   PROFILE_IM2COL=1  also profile the CNN with --conv im2col (the older convolution path)
#   MODELS=mlp,cnn  BATCHES=128,1024  EPOCHS=3 (best epoch counts)  PROFILE_STEPS=20
#   TRAIN_LIMIT= TEST_LIMIT= EVAL_BATCH=   (empty: the full data / accrete's default)
#   MATMUL_BIG=8192 MATMUL_SMALL=1024   the table's matmul sizes (PyTorch times these)
#   TORCH_DEVICE=cuda (cpu for a test run)   SKIP_TORCH=1: no PyTorch, accrete epochs only
#   MIXED=1 MIXED_EPOCHS=10 MIXED_BATCH=128   f32 and --mixed-precision runs of each model on
#                     the same seed: test accuracy difference and epoch time (MIXED=0: skip)
#   PYTHON=python3
#
# A tiny end-to-end check on a machine without a GPU (lavapipe):
#   ALLOW_CPU_ADAPTER=1 SIZES=64,128 MATMUL_BIG=128 MATMUL_SMALL=64 AUTOTUNE_SIZES=64 \
#   MODELS=mlp,cnn BATCHES=16 EPOCHS=1 PROFILE_STEPS=2 TRAIN_LIMIT=64 TEST_LIMIT=32 EVAL_BATCH=32 \
#   TORCH_DEVICE=cpu benchmarks/gpu_run.sh target/debug/accrete --out /tmp/bench-out
set -euo pipefail

die() {
    echo "gpu_run.sh: error: $*" >&2
    exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ACCRETE=${ACCRETE:-target/release/accrete}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
OUT_DIR=${OUT_DIR:-${OUT:-bench-out}}
while [ $# -gt 0 ]; do
    case $1 in
    --data) DATA=${2:?--data needs a folder}; shift 2 ;;
    --data=*) DATA=${1#--data=}; shift ;;
    --out) OUT_DIR=${2:?--out needs a folder}; shift 2 ;;
    --out=*) OUT_DIR=${1#--out=}; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) ACCRETE=$1; shift ;;
    esac
done

SIZES=${SIZES:-1024,2048,4096,8192}
MATMUL_REPS=${MATMUL_REPS:-5}
MAX_SECONDS=${MAX_SECONDS:-2}
AUTOTUNE_SIZES=${AUTOTUNE_SIZES:-1024,8192}
AUTOTUNE_VARIANTS=${AUTOTUNE_VARIANTS:-vec4db_128x128x16_8x8}
PROFILE_IM2COL=${PROFILE_IM2COL:-1}
MODELS=${MODELS:-mlp,cnn}
BATCHES=${BATCHES:-128,1024}
EPOCHS=${EPOCHS:-3}
PROFILE_STEPS=${PROFILE_STEPS:-20}
TRAIN_LIMIT=${TRAIN_LIMIT:-}
TEST_LIMIT=${TEST_LIMIT:-}
EVAL_BATCH=${EVAL_BATCH:-}
MATMUL_BIG=${MATMUL_BIG:-8192}
MATMUL_SMALL=${MATMUL_SMALL:-1024}
TORCH_DEVICE=${TORCH_DEVICE:-cuda}
SKIP_TORCH=${SKIP_TORCH:-0}
PYTHON=${PYTHON:-python3}
MIXED=${MIXED:-1}
MIXED_EPOCHS=${MIXED_EPOCHS:-10}
MIXED_BATCH=${MIXED_BATCH:-128}

# --- the pieces, checked before anything runs ---------------------------------------------
[ -x "$ACCRETE" ] || die "no accrete binary at '$ACCRETE' (build it: cargo build --release -p accrete-cli; or pass its path as the first argument or in ACCRETE)"
ACCRETE=$(cd "$(dirname "$ACCRETE")" && pwd)/$(basename "$ACCRETE")
[ -d "$DATA" ] || die "no dataset folder '$DATA' (Fashion-MNIST IDX files; pass --data DIR or DATA=DIR)"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$DATA/$f.gz" ] || [ -f "$DATA/$f" ] || die "'$DATA' lacks $f(.gz) (Fashion-MNIST IDX files expected; pass --data DIR)"
done
command -v "$PYTHON" >/dev/null || die "no $PYTHON (the PyTorch comparison and the summary need Python 3)"
if [ "$SKIP_TORCH" != 1 ]; then
    "$PYTHON" -c "import torch, numpy" 2>/dev/null ||
        die "$PYTHON cannot import torch and numpy (pip install torch numpy), or set SKIP_TORCH=1 to run without PyTorch"
    if [ "$TORCH_DEVICE" = cuda ]; then
        "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" ||
            die "torch $("$PYTHON" -c 'import torch; print(torch.__version__)') sees no CUDA device (TORCH_DEVICE=cpu to compare on the CPU, SKIP_TORCH=1 to skip PyTorch)"
    fi
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ] &&
    [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
for v in VK_DRIVER_FILES VK_ICD_FILENAMES; do
    for f in $(echo "${!v:-}" | tr ':' ' '); do
        [ -f "$f" ] || die "$v names '$f', which does not exist"
    done
done
# Mesa's loader complains on stderr without it.
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}

DATA=$(cd "$DATA" && pwd)
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
JSONL=$OUT_DIR/bench.jsonl
: >"$JSONL"
# The autotune cache of this run (fresh, and it comes back with the results).
export ACCRETE_AUTOTUNE_CACHE=$OUT_DIR/autotune.json
rm -f "$ACCRETE_AUTOTUNE_CACHE"
cd "$here/.."

limits=()
[ -n "$TRAIN_LIMIT" ] && limits+=(--train-limit "$TRAIN_LIMIT")
[ -n "$TEST_LIMIT" ] && limits+=(--test-limit "$TEST_LIMIT")

summary() {
    "$PYTHON" "$here/gpu_summary.py" "$JSONL" --big "$MATMUL_BIG" --small "$MATMUL_SMALL" \
        --json "$OUT_DIR/summary.json" >"$OUT_DIR/summary.md"
}

# Runs one stage: its JSON lines are appended to bench.jsonl (and shown), the rest of its
# stdout and its stderr go to <stage>.log; a failing stage stops the run.
stage() {
    local name=$1
    shift
    echo "== $name: $*" >&2
    local t0=$SECONDS
    set +e
    "$@" 2>>"$OUT_DIR/$name.log" | tee -a "$OUT_DIR/$name.log" | grep --line-buffered '^{' | tee -a "$JSONL"
    local codes=("${PIPESTATUS[@]}")
    set -e
    # grep exits 1 when a stage prints no JSON; only the command's own status counts.
    local status=${codes[0]}
    if [ "$status" != 0 ]; then
        tail -n 5 "$OUT_DIR/$name.log" >&2
        die "stage $name failed (exit $status); its log: $OUT_DIR/$name.log"
    fi
    echo "== $name done in $((SECONDS - t0)) s" >&2
    summary || echo "gpu_run.sh: warning: the summary failed (bench.jsonl is complete)" >&2
}

start=$SECONDS
{
    echo "date: $(date -u +%FT%TZ)"
    echo "accrete: $ACCRETE ($("$ACCRETE" --version))"
    echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-} VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-}"
    echo "SIZES=$SIZES MATMUL_REPS=$MATMUL_REPS MAX_SECONDS=$MAX_SECONDS AUTOTUNE_SIZES=$AUTOTUNE_SIZES"
    echo "MODELS=$MODELS BATCHES=$BATCHES EPOCHS=$EPOCHS PROFILE_STEPS=$PROFILE_STEPS TRAIN_LIMIT=$TRAIN_LIMIT TEST_LIMIT=$TEST_LIMIT EVAL_BATCH=$EVAL_BATCH"
    echo "TORCH_DEVICE=$TORCH_DEVICE SKIP_TORCH=$SKIP_TORCH MIXED=$MIXED MIXED_EPOCHS=$MIXED_EPOCHS MIXED_BATCH=$MIXED_BATCH"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader || true
} | tee "$OUT_DIR/run.txt" >&2

"$ACCRETE" devices | tee "$OUT_DIR/devices.txt" >&2
stage devices "$ACCRETE" devices --json
selected=$(grep '"selected":true' "$OUT_DIR/devices.log" | head -n 1)
[ -n "$selected" ] || die "accrete found no usable adapter (devices.txt); on an NVIDIA machine set VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
if echo "$selected" | grep -q '"device_type":"Cpu"' && [ "${ALLOW_CPU_ADAPTER:-0}" != 1 ]; then
    die "accrete would run on a CPU adapter ($(echo "$selected" | sed 's/.*"name":"\([^"]*\)".*/\1/')): the GPU's Vulkan driver was not found; set VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json (or ALLOW_CPU_ADAPTER=1 for a test run)"
fi

for model in ${MODELS//,/ }; do
    stage "profile-$model" "$ACCRETE" bench train --profile --model "$model" --batch "$BATCHES" \
        --profile-steps "$PROFILE_STEPS" --data-dir "$DATA" "${limits[@]}"
done
if [ "$PROFILE_IM2COL" = 1 ] && [[ ",$MODELS," == *,cnn,* ]]; then
    stage profile-cnn-im2col "$ACCRETE" bench train --profile --model cnn --conv im2col \
        --batch "$BATCHES" --profile-steps "$PROFILE_STEPS" --data-dir "$DATA" "${limits[@]}"
fi

train_args=(--models "$MODELS" --batches "$BATCHES" --epochs "$EPOCHS" --data-dir "$DATA")
[ -n "$TRAIN_LIMIT" ] && train_args+=(--train-limit "$TRAIN_LIMIT")
[ -n "$TEST_LIMIT" ] && train_args+=(--test-limit "$TEST_LIMIT")
if [ "$SKIP_TORCH" = 1 ]; then
    echo "gpu_run.sh: SKIP_TORCH=1: no PyTorch figures; accrete epochs only" >&2
    eval_args=(--eval-every 1)
    [ -n "$EVAL_BATCH" ] && eval_args+=(--eval-batch "$EVAL_BATCH")
    for model in ${MODELS//,/ }; do
        stage "train-$model" "$ACCRETE" bench train --model "$model" --batch "$BATCHES" \
            --epochs "$EPOCHS" --data-dir "$DATA" "${limits[@]}" "${eval_args[@]}"
    done
else
    [ -n "$EVAL_BATCH" ] && train_args+=(--accrete-eval-batch "$EVAL_BATCH")
    stage compare "$PYTHON" -u "$here/compare_pytorch.py" "${train_args[@]}" --cuda-graph \
        --device "$TORCH_DEVICE" --accrete "$ACCRETE" \
        --matmul-sizes "$MATMUL_SMALL,$MATMUL_BIG" --matmul-reps "$MATMUL_REPS"
fi

if [ "$MIXED" = 1 ]; then
    # Mixed precision next to f32 on the same seed: test accuracy after MIXED_EPOCHS epochs
    # (the issue: within 0.3 points of f32) and the epoch time.
    for model in ${MODELS//,/ }; do
        for mp in "" --mixed-precision; do
            stage "mixed-$model${mp:+-mp}" "$ACCRETE" bench train --model "$model" \
                --batch "$MIXED_BATCH" --epochs "$MIXED_EPOCHS" --data-dir "$DATA" "${limits[@]}" \
                ${EVAL_BATCH:+--eval-batch "$EVAL_BATCH"} $mp
        done
    done
fi

stage matmul "$ACCRETE" bench matmul --sizes "$SIZES" --reps "$MATMUL_REPS" --max-seconds "$MAX_SECONDS"
# The choice lines are what this stage is for; one variant keeps it from repeating the sweep.
stage autotune "$ACCRETE" bench matmul --autotune --sizes "$AUTOTUNE_SIZES" --reps "$MATMUL_REPS" \
    --max-seconds "$MAX_SECONDS" --variants "$AUTOTUNE_VARIANTS"

echo "== all stages done in $((SECONDS - start)) s; results in $OUT_DIR" >&2
cat "$OUT_DIR/summary.md"
