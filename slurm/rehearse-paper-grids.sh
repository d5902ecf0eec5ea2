#!/usr/bin/env bash
# The acceptance run of the rehearsal (README "Rehearse the paper path"): every paper grid's rehearsal through the
# local Slurm with fake GPUs, one grid after the other, each followed by its report, with wall times.
#   slurm/start-local-cluster.sh --fake-gpus 2 && slurm/rehearse-paper-grids.sh [RESULTS_DIR] [GRID ...]
# Uses .venv/bin/harness; prepares the rehearsal folder ($HARNESS_REHEARSAL or the cache) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
harness=.venv/bin/harness
results=${1:-results-rehearsal}
shift || true
grids=("$@")
[ ${#grids[@]} -gt 0 ] || grids=(grids/*.yaml)
root=${HARNESS_REHEARSAL:-${HARNESS_CACHE:-$HOME/.cache/meter-harness}/rehearsal}
[ -f "$root/rehearsal.json" ] || "$harness" rehearsal prepare
for grid in "${grids[@]}"; do
  start=$(date +%s)
  "$harness" run "$grid" --profile paper --rehearse --executor slurm --cluster local --results "$results"
  # Wait until no job of the grid is queued or running (the status summary line lists the states).
  while "$harness" status "$grid" --profile paper --rehearse --results "$results" | tail -1 \
        | grep -Eq 'queued|running|pending|new'; do
    sleep 5
  done
  "$harness" report "$grid" --profile paper --rehearse --results "$results" >/dev/null
  echo "REHEARSAL $grid: $(( $(date +%s) - start )) s; $("$harness" status "$grid" --profile paper --rehearse \
        --results "$results" | tail -1); report: $results/reports/$(basename "$grid" .yaml)/table.md"
done
