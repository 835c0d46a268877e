#!/usr/bin/env bash
# One-shot GPU check for a session lent an H100/H200 for a few minutes (see docs/performance.md,
# "GPU check"). Run from the repository root:
#
#     bash benchmarks/gpu_check.sh                      # on the GPU machine; results in $OUT or ./gpu-check-out
#     GPU_CHECK_DRY=1 bash benchmarks/gpu_check.sh      # print the commands only
#     GPU_CHECK_CPU=1 bash benchmarks/gpu_check.sh      # the same steps, tiny sizes, on the CPU (flag check)
#
# Steps (each under `timeout`, all within GPU_CHECK_BUDGET seconds, default 420):
#   env      nvidia-smi, torch / CUDA / cuDNN versions, `glocal info`
#   pytest   `pytest -m gpu` (when any test carries the gpu marker)
#   model    bench_model.py: 256x176 deepfashion-256, bf16 autocast, channels_last, batch 8 (forward, train)
#   train    bench_train.py: generator stage, 256x176, batch 8, bf16, 3 warm-up + 20 timed steps
#   synth    a SynthPeople folder at 256x176 for the end-to-end inference run
#   infer    bench_infer.py: batch 32, bf16, model-only and end to end on the SynthPeople folder
#   metrics  bench_metrics.py --device cuda --pipeline N (needs ../shared/data samples; skipped otherwise)
# Every step writes <step>.txt (stdout+stderr) and, where the benchmark supports it, <step>.json;
# summary.tsv lists step, exit code (124: timed out) and seconds. The script never stops at a failed step.
set -u

OUT_DIR="${OUT:-./gpu-check-out}"
DRY="${GPU_CHECK_DRY:-0}"
CPU="${GPU_CHECK_CPU:-0}"
BUDGET="${GPU_CHECK_BUDGET:-420}"
if [[ -n "${PYTHON:-}" ]]; then :; elif [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

if [[ "$CPU" == 1 ]]; then   # tiny sizes on the CPU: proves every command line parses and runs
    DEVICE=cpu; FRAME=64x44; CONFIG=synthetic-64; MODEL_BATCH=2; TRAIN_BATCH=2; TRAIN_STEPS=2; WARMUP=1
    SYNTH_N=4; SYNTH_K=4; INFER_BATCH=4; INFER_IMAGES=8; INFER_WORKERS=0; METRIC_PAIRS=16; REPS=1
    PRECISION=fp32; TRAIN_PRECISION=fp32; JOBS=1
    export OMP_NUM_THREADS=1
else
    DEVICE=cuda; FRAME=256x176; CONFIG=deepfashion-256; MODEL_BATCH=8; TRAIN_BATCH=8; TRAIN_STEPS=20; WARMUP=3
    SYNTH_N=40; SYNTH_K=8; INFER_BATCH=32; INFER_IMAGES=256; INFER_WORKERS=8; METRIC_PAIRS=512; REPS=10
    PRECISION=bf16; TRAIN_PRECISION=bf16; JOBS=8
fi
SCRATCH=$(mktemp -d)   # the SynthPeople folder lives outside $OUT: only the numbers come back
trap 'rm -rf "$SCRATCH"' EXIT
SYNTH_DIR="$SCRATCH/synthpeople-$FRAME"

mkdir -p "$OUT_DIR"
START=$SECONDS
printf 'step\trc\tseconds\n' > "$OUT_DIR/summary.tsv"

# run STEP LIMIT_S CMD...: the command under `timeout` (never past the overall budget), output to STEP.txt
run() {
    local step=$1 limit=$2
    shift 2
    local left=$(( BUDGET - (SECONDS - START) ))
    (( limit > left )) && limit=$left
    echo "== $step (limit ${limit}s): $*"
    if [[ "$DRY" == 1 ]]; then
        printf '%s\tdry\t0\n' "$step" >> "$OUT_DIR/summary.tsv"
        return 0
    fi
    if (( limit < 10 )); then
        echo "   skipped: the ${BUDGET}s budget is spent"
        printf '%s\tskipped\t0\n' "$step" >> "$OUT_DIR/summary.tsv"
        return 0
    fi
    local t0=$SECONDS rc
    timeout -k 10 "$limit" "$@" > "$OUT_DIR/$step.txt" 2>&1
    rc=$?
    printf '%s\t%s\t%s\n' "$step" "$rc" "$(( SECONDS - t0 ))" >> "$OUT_DIR/summary.tsv"
    echo "   rc $rc in $(( SECONDS - t0 ))s; last lines:"
    tail -n 8 "$OUT_DIR/$step.txt" | sed 's/^/   | /'
}

# -- env
run env 60 bash -c "
    uptime; nproc; free -g 2>/dev/null | head -2
    if command -v nvidia-smi >/dev/null; then nvidia-smi; else echo 'nvidia-smi: not found'; fi
    $PYTHON -c 'import torch, platform; print(\"python\", platform.python_version(), \"torch\", torch.__version__,
        \"cuda\", torch.version.cuda, \"cudnn\", torch.backends.cudnn.version(), \"available\", torch.cuda.is_available(),
        \"devices\", [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])'
    $PYTHON -m glocal_cli info"

# -- pytest -m gpu (only when gpu tests exist; --co exits 5 when none is selected)
if [[ "$DRY" == 1 ]] || "$PYTHON" -m pytest -q --co -m gpu tests > "$OUT_DIR/pytest-collect.txt" 2>&1; then
    if [[ "$CPU" == 1 ]]; then
        echo "== pytest: the gpu tests need CUDA; collected only (see pytest-collect.txt)"
    else
        run pytest 90 "$PYTHON" -m pytest -q -m gpu tests -p no:cacheprovider
    fi
else
    echo "== pytest: no test carries the gpu marker (or collection failed: see pytest-collect.txt)"
fi

# -- model core: bf16 autocast and channels_last are what bench_model.py uses on CUDA
MODEL_FRAME=$FRAME
run model 100 "$PYTHON" benchmarks/bench_model.py --device "$DEVICE" --skip-cpu --frames "$MODEL_FRAME" \
    --cuda-batch "$MODEL_BATCH" --train-batch "$MODEL_BATCH" --reps "$REPS" --json "$OUT_DIR/model.json"

# -- training: the generator stage, a short timed window after the warm-up
run train 120 "$PYTHON" benchmarks/bench_train.py --device "$DEVICE" --config "$CONFIG" --size "$FRAME" \
    --batch "$TRAIN_BATCH" --stages generator --warmup "$WARMUP" --steps "$TRAIN_STEPS" \
    --set "train.precision=$TRAIN_PRECISION" --json "$OUT_DIR/train.json"

# -- inference: a SynthPeople folder in the model frame, then model-only and end to end on it
run synth 60 "$PYTHON" -m glocal_cli -q prepare-data synthetic --out "$SYNTH_DIR" --size "$FRAME" \
    -n "$SYNTH_N" -k "$SYNTH_K" -j "$JOBS" --overwrite
run infer 120 "$PYTHON" benchmarks/bench_infer.py --config "$CONFIG" --device "$DEVICE" --precision "$PRECISION" \
    --batch-sizes "$INFER_BATCH" --images "$INFER_IMAGES" --workers "$INFER_WORKERS" --repeat 3 \
    --data "$SYNTH_DIR" --json "$OUT_DIR/infer.json"

# -- metrics: evaluate() on synthetic pairs built from the shared DeepFashion samples
if [[ "$DRY" == 1 || -d ../shared/data/deepfashion/samples ]]; then
    run metrics 60 "$PYTHON" benchmarks/bench_metrics.py --device "$DEVICE" --pipeline "$METRIC_PAIRS" --workers "$JOBS"
else
    echo "== metrics: skipped (bench_metrics.py reads ../shared/data/deepfashion/samples, absent here)"
    printf 'metrics\tskipped\t0\n' >> "$OUT_DIR/summary.tsv"
fi

echo "== done in $(( SECONDS - START ))s; results in $OUT_DIR"
column -t "$OUT_DIR/summary.tsv" 2>/dev/null || cat "$OUT_DIR/summary.tsv"
