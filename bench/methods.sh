#!/usr/bin/env bash
# Step time of every registered method relative to full fine-tuning, beside its FLOP ratio.
#   bench/methods.sh [BUILD_DIR] [train_step options...]     (default: build, the bench config)
# Prints a Markdown table; bench/README.md records its output with the command. Besides the mean
# step time (ms/step, time ratio) it gives the ratio of the fastest steps: other jobs on a shared
# machine only ever add time, so on a loaded machine that column is the steadier one.
set -euo pipefail
build=${1:-build}
shift || true
bin="$build/bench/train_step"
methods=$("$build/peftbench" list methods --tsv | tail -n +2 | cut -f1)
# lora on q,v is the reference point; every other method runs with its defaults
declare -A spec=([lora]="lora:targets=q_proj+v_proj")
run() { "$bin" "$@" | grep -E '^fastest step|ms_per_step=' | tr '\n' ' '; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
fastest() { sed -n 's/.*fastest step \([0-9.]*\) ms.*/\1/p'; }
base=$(run --method full "$@")
base_ms=$(echo "$base" | field ms_per_step)
base_fl=$(echo "$base" | field flops_per_step)
base_min=$(echo "$base" | fastest)
echo "| method | ms/step | time ratio | FLOP ratio | time/FLOP ratio | % of sgemm | fastest-step time ratio | fastest-step time/FLOP ratio |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in $methods; do
  s=${spec[$m]:-$m}
  if ! line=$(run --method "$s" "$@" 2>&1); then echo "| $s | failed: $line |||||||"; continue; fi
  ms=$(echo "$line" | field ms_per_step)
  fl=$(echo "$line" | field flops_per_step)
  pct=$(echo "$line" | field pct_of_sgemm)
  mn=$(echo "$line" | fastest)
  awk -v m="$s" -v ms="$ms" -v bms="$base_ms" -v fl="$fl" -v bfl="$base_fl" -v pct="$pct" -v mn="$mn" -v bmn="$base_min" \
    'BEGIN { tr = ms / bms; fr = fl / bfl; printf "| %s | %.1f | %.3f | %.3f | %.2f | %.1f | %.3f | %.2f |\n", m, ms, tr, fr, tr / fr, pct, mn / bmn, mn / bmn / fr }'
done
