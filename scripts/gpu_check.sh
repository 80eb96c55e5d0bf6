#!/usr/bin/env bash
# The GPU measurements of docs/speed.md in one command, for a machine with one CUDA GPU and
# torch, lightning and torchmetrics installed (the project's own venv works too):
#   OUT=outputs/gpu_check DATA_ROOT=../shared/data bash scripts/gpu_check.sh [recipe overrides]
# 1. scripts/bench.py on the GPU: M2 and M1+M2 steps, fp32 and bf16, three batch sizes;
# 2. time-to-accuracy curves on the GPU for M1+M2 and M2 at 100 MNIST labels, seed 0, both
#    at once (each alone would leave the GPU mostly idle), with the recipe overrides given;
# 3. meanwhile, on the machine's spare CPU cores, SCREEN_SWEEPS (if set): sweeps' overrides.
# Everything lands in WORK; OUT gets the summaries and a tarball of WORK without checkpoints.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_check}
WORK=${WORK:-outputs/gpu_work}
DATA_ROOT=${DATA_ROOT:-../shared/data}
BUDGET_MIN=${BUDGET_MIN:-5}
PY=${PY:-python3}
ACCEL=${ACCEL:-gpu}  # cpu: a dry run of this script without a GPU
BENCH_DEVICE=${BENCH_DEVICE:-cuda}
mkdir -p "$OUT" "$WORK"
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    $PY -c "import torch; print('torch', torch.__version__)"
} >"$WORK/gpu.txt" 2>&1
pids=()
if [ -n "${SCREEN_SWEEPS:-}" ]; then
    # ';'-separated sweeps, one after another, each into WORK/screen<i>, cut at SCREEN_MIN.
    (
        i=0
        IFS=';' read -ra sweeps <<<"$SCREEN_SWEEPS"
        for sweep in "${sweeps[@]}"; do
            i=$((i + 1))
            # shellcheck disable=SC2086
            timeout "${SCREEN_MIN:-6}m" $PY -m ssvae.train -m $sweep trainer.accelerator=cpu \
                hydra/launcher=parallel num_threads=1 trainer.enable_progress_bar=false \
                hydra.sweep.dir="$WORK/screen$i" >"$WORK/screen$i.log" 2>&1
        done
    ) &
    screen_pid=$!
fi
$PY scripts/bench.py --device "$BENCH_DEVICE" --threads 1 --unlabeled 100 500 2000 --seconds 2 \
    --json "$WORK/bench_gpu.json" >"$WORK/bench_gpu.md" 2>&1
common=(data.root="$DATA_ROOT" trainer.accelerator="$ACCEL" trainer.precision=bf16-mixed
    trainer.enable_progress_bar=false paths.cache_dir="$WORK/cache" "$@")
for model in m1m2 m2; do
    $PY scripts/time_to_accuracy.py --model $model --data mnist --labels 100 --seed 0 \
        --budget-min "$BUDGET_MIN" --out "$WORK/tta_$model" -- "${common[@]}" \
        >"$WORK/tta_$model.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
[ -n "${screen_pid:-}" ] && wait "$screen_pid"
cp "$WORK/bench_gpu.md" "$WORK/bench_gpu.json" "$OUT/" 2>/dev/null
for model in m1m2 m2; do
    cp "$WORK/tta_$model/time_to_accuracy.json" "$OUT/tta_$model.json" 2>/dev/null
    cp "$WORK/tta_$model/time_to_accuracy.png" "$OUT/tta_$model.png" 2>/dev/null
done
tar -czf "$OUT/work.tar.gz" --exclude='*.ckpt' -C "$(dirname "$WORK")" "$(basename "$WORK")"
ls -la "$OUT"
