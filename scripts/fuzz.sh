#!/usr/bin/env bash
# fuzz.sh — runs every libFuzzer target (tests/fuzz/fuzz_NAME.c) for a fixed time each, starting
# from its committed seed corpus, and reports executions and findings. Not run by CI.
#
#   bash scripts/fuzz.sh [--seconds S] [NAME ...]     (default: 30 s each, every target)
#
# Installs clang and libFuzzer (scripts/install-deps.sh --with fuzz), builds build-fuzz/
# (clang, -DPB_FUZZ=ON: the library instrumented, ASan + UBSan), then per target: a working
# corpus build-fuzz/corpus/NAME (the seeds plus what the fuzzer adds; the committed seeds are
# never written), -timeout=10 s per input (a hang), -rss_limit_mb=2048. Every crash, hang or
# out-of-memory input is copied to tests/fixtures/fuzz/NAME/ (crash-*, timeout-*, oom-*), where
# ctest's test_fuzz runs it through the same entry point: it fails until the bug is fixed, then
# guards the fix. The summary (target, seconds, executions, execs/s, coverage, findings) is
# printed and written to build-fuzz/fuzz-report.txt. tests/fuzz/README.md has the last report.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    -*) echo "fuzz.sh: unknown option $1 (accepted: --seconds S, target names)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; targets+=("${n%.c}"); done
fi

bash scripts/install-deps.sh --with fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DPB_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}" 2>&1 | grep -vE '^\[ *[0-9]+%\]' || true

scratch=$(mktemp -d /tmp/pb-fuzz.XXXXXX) # the targets' scratch files (TMPDIR)
trap 'rm -rf "$scratch"' EXIT
report=build-fuzz/fuzz-report.txt
printf '%-10s %8s %12s %9s %7s %9s  %s\n' target seconds executions execs/s cov corpus findings | tee "$report"
total_findings=0
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: no target $t (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
  work=build-fuzz/corpus/$t
  art=build-fuzz/findings/$t
  mkdir -p "$work" "$art"
  cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  log=build-fuzz/fuzz-$t.log
  # One process (no -fork), so its final stats count every execution; a crash or hang ends
  # that target's run early (the report shows the executions done): fix it and run again.
  TMPDIR=$scratch OMP_NUM_THREADS=1 "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 -print_final_stats=1 -artifact_prefix="$art/" "$work" >"$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+) .*/\1/p' "$log" | tail -n 1)
  n_corpus=$(ls "$work" | wc -l)
  found=()
  for a in "$art"/*; do
    [ -f "$a" ] || continue
    mkdir -p tests/fixtures/fuzz/"$t"
    cp "$a" tests/fixtures/fuzz/"$t"/
    found+=("${a##*/}")
    rm -f "$a"
  done
  total_findings=$((total_findings + ${#found[@]}))
  printf '%-10s %8s %12s %9s %7s %9s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$n_corpus" \
    "${found[*]:-none}" | tee -a "$report"
done
echo "fuzz.sh: $total_findings finding(s); logs in build-fuzz/fuzz-NAME.log; report in $report"
[ "$total_findings" -eq 0 ] || echo "fuzz.sh: copied to tests/fixtures/fuzz/NAME/: fix, then run ctest -R test_fuzz"
