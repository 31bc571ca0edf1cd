#!/usr/bin/env bash
# selftest.sh — offline check of the data converters (no network, about a second).
#
#   tasks/fetch/selftest.sh [--keep]
#
# Builds package-shaped trees from the small inputs in tasks/fetch/fixtures/ (assemble.py),
# runs convert.py on them for every source that fetch_data.sh builds (the source list and the
# package keys are read from fetch_data.sh itself, so a new source without a fixture fails
# here), then checks the corpus files and task CSVs (fixtures/expect.py). Closes with
# "selftest: N passed, M failed"; exits non-zero on any failure. --keep leaves the work
# directory in place and prints its path.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1   # keep __pycache__ out of the source tree
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEEP=0
[ "${1:-}" != --keep ] || KEEP=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pb-selftest.XXXXXX")
if [ "$KEEP" = 1 ]; then echo "selftest: work directory $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

python3 "$HERE/fixtures/assemble.py" "$WORK/pkg"

# the source tables of fetch_data.sh
eval "$(sed -n '/^CORPUS_SOURCES=(/,/^)/p; /^TASK_SOURCES=(/,/^)/p; /^TOKENIZER_SOURCES=(/,/^)/p' "$HERE/fetch_data.sh")"

fail=0
for entry in "${CORPUS_SOURCES[@]}" "${TASK_SOURCES[@]}" "${TOKENIZER_SOURCES[@]}"; do
  src=${entry%%|*} keys=${entry#*|} args=()
  if [ "$src" = tasks/kjv2web ]; then
    args=("kjv=$WORK/pkg/bible/kjv.txt" "web=$WORK/pkg/bible/web.osis")
  else
    for k in $keys; do args+=("$k=$WORK/pkg/$k"); done
  fi
  case "$src" in
    corpus/*) out="$WORK/out/corpus" ;;
    tasks/*|tokenizers/*) out="$WORK/out/$src" ;;
  esac
  if ! PB_ALLOW_EMPTY_SPLITS=1 PB_SOURCE="fixture" PB_VERSION="0" \
       python3 "$HERE/convert.py" "$src" "$out" "${args[@]}" >"$WORK/convert.log" 2>&1; then
    echo "FAIL convert $src: $(tail -n3 "$WORK/convert.log")"
    fail=1
  fi
done
if [ "$fail" = 1 ]; then
  echo "selftest: 0 passed, 1 failed"
  exit 1
fi
python3 "$HERE/fixtures/expect.py" "$WORK/out"
