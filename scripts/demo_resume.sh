#!/usr/bin/env bash
# Kill a sweep mid-way (SIGKILL, no chance to clean up), show the table, re-run the same command,
# show the table again. Usage: bash scripts/demo_resume.sh [seconds-before-kill]
set -uo pipefail
cd "$(dirname "$0")/.."
wait_s="${1:-40}"
name="resume-demo-$(date +%s)"
cmd=(.venv/bin/ssvae-train -m experiment=digits_sweep sweep_name="$name" trainer.enable_progress_bar=false)
echo "\$ ${cmd[*]}   # killed with SIGKILL after ${wait_s} s"
"${cmd[@]}" > /dev/null 2>&1 &
pid=$!
sleep "$wait_s"
kill -9 "$pid"
wait "$pid" 2>/dev/null
folder="outputs/sweeps/$name"
echo "jobs with a result: $(find "$folder" -name result.json | wc -l) of 9;" \
    "jobs with only a checkpoint: $(find "$folder" -name last.ckpt -path '*checkpoints*' \
    -exec dirname {} \; | while read -r d; do [ -f "$d/../result.json" ] || echo x; done | wc -l)"
echo
echo "\$ .venv/bin/ssvae-report $folder   # before"
.venv/bin/ssvae-report "$folder"
echo "\$ ${cmd[*]}   # the same command again"
start=$(date +%s)
"${cmd[@]}" 2>&1 | grep -E "already finished|resuming from|test error [0-9]" | sed -E 's/^\[[^]]*\]\[[^]]*\]\[[A-Z]+\] - //'
echo "(re-run took $(( $(date +%s) - start )) s)"
echo
echo "\$ .venv/bin/ssvae-report $folder   # after"
.venv/bin/ssvae-report "$folder"
