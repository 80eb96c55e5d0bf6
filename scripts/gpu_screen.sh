#!/usr/bin/env bash
# A screen of recipe variants on one GPU: every variant x seed is one time-to-accuracy run
# (scripts/time_to_accuracy.py), all at once. One M1+M2 process leaves the GPU mostly idle (its
# step is bound by launching kernels, docs/speed.md), so a dozen side by side cost little more
# than one. CUDA's MPS daemon is started when it works, so that their kernels overlap.
#   OUT=outputs/gpu_screen DATA_ROOT=../shared/data CACHE=outputs/cache SEEDS="0 1 2" \
#       bash scripts/gpu_screen.sh --model m1m2 --data mnist --labels 100 --budget-min 15 -- \
#       "C:vae.max_epochs=55" "alpha3:vae.max_epochs=55 model.alpha_scale=3"
# The budget counts M1's VAE pretraining minutes, a cached VAE's included (8-9 minutes for the
# 55-epoch MNIST VAEs made on the CPU), as every time-to-accuracy curve does.
# Each variant is NAME:OVERRIDES (space-separated Hydra overrides, may be empty). Arguments
# before "--" go to time_to_accuracy.py. OUT gets summary.md (the final test error of every run)
# and screen.tar.gz (every run's curve and result, no checkpoints).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/gpu_screen}
WORK=${WORK:-outputs/gpu_screen_work}
DATA_ROOT=${DATA_ROOT:-../shared/data}
CACHE=${CACHE:-outputs/cache}
SEEDS=${SEEDS:-0 1 2}
PY=${PY:-python3}
ACCEL=${ACCEL:-gpu}  # cpu: a dry run without a GPU
PRECISION=${PRECISION:-bf16-mixed}
tta_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do tta_args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "gpu_screen.sh: name at least one variant NAME:OVERRIDES after --" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
if [ "$ACCEL" = gpu ] && command -v nvidia-cuda-mps-control >/dev/null; then
    # -d fails harmlessly when a daemon from an earlier call on the same machine still runs.
    nvidia-cuda-mps-control -d >/dev/null 2>&1
    if $PY -c "import torch; torch.ones(1, device='cuda').sum().item()" >/dev/null 2>&1; then
        echo "MPS: on" >"$WORK/mps.txt"
    else
        echo quit | nvidia-cuda-mps-control
        echo "MPS: unusable, stopped" >"$WORK/mps.txt"
    fi
fi
pids=()
for variant in "$@"; do
    name=${variant%%:*}
    read -ra overrides <<<"${variant#*:}"
    for seed in $SEEDS; do
        $PY scripts/time_to_accuracy.py "${tta_args[@]}" --seed "$seed" --out "$WORK/${name}_s$seed" \
            -- data.root="$DATA_ROOT" paths.cache_dir="$CACHE" trainer.accelerator="$ACCEL" \
            trainer.precision="$PRECISION" num_threads=1 trainer.enable_progress_bar=false \
            "${overrides[@]}" >"$WORK/${name}_s$seed.log" 2>&1 &
        pids+=($!)
    done
done
wait "${pids[@]}"
$PY - "$WORK" >"$OUT/summary.md" <<'EOF'
import json, sys
from pathlib import Path
print("| run | epochs | minutes | test error % |\n| --- | ---: | ---: | ---: |")
for path in sorted(Path(sys.argv[1]).glob("*/time_to_accuracy.json")):
    s = json.loads(path.read_text())
    print(f"| {path.parent.name} | {s['epochs']} | {s['command_wall_min']:.1f} | {100 * s['test_err']:.2f} |")
EOF
tar -czf "$OUT/screen.tar.gz" --exclude='*.ckpt' --exclude='cache' -C "$(dirname "$WORK")" \
    "$(basename "$WORK")"
cat "$OUT/summary.md"
