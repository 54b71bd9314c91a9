#!/usr/bin/env bash
# The zoo's smoke comparison: ten models at one parameter budget on adding and copy, two lengths each, tiny budget.
# Records in results/zoo-smoke/adhoc/; a failed run (e.g. a budget no width meets) prints its one-line error.
set -u
BUDGET=${BUDGET:-25000}
STEPS=${STEPS:-300}
OUT=${OUT:-results/zoo-smoke}
for task_lengths in "adding 10 25" "copy 5 10"; do
  set -- $task_lengths
  task=$1; shift
  for length in "$@"; do
    for model in lstm peephole cifg ln_lstm slstm mlstm minlstm mingru tcn transformer; do
      case $model in slstm|mlstm|transformer) hp="--hp heads=2";; *) hp="";; esac  # 4 heads: widths too coarse for 5 %
      echo -n "$task $length $model: "
      python -m bench.cli run --task "$task" --model "$model" --length "$length" --param-budget "$BUDGET" --steps "$STEPS" $hp \
        --eval-every 100 --train gradient_flow=false --results "$OUT" 2>&1 | tail -1
    done
  done
done
