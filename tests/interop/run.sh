#!/usr/bin/env bash
# tests/interop/run.sh — the results and checkpoints read by other tools (ctest interop_h5py,
# interop_tex). Exit 0 passed, 1 failed, 77 skipped (a reason is printed).
#
#   run.sh h5py PEFTBENCH   the Python blocks of results/SCHEMA.md and models/CHECKPOINT.md
#                           (between <!-- BEGIN interop:NAME --> and <!-- END ... -->) run on a
#                           fresh sweep and checkpoint: the runs table against
#                           `peftbench table --format csv`, the tensors (a numpy forward pass)
#                           against `peftbench score --per-token`
#   run.sh tex PEFTBENCH    `peftbench table --format tex` compiles in a minimal LaTeX document
#                           with booktabs (pdflatex)
#
# The optional packages come from `scripts/install-deps.sh --with h5py,tex`, which
# scripts/test.sh runs before ctest (not here: ctest runs tests side by side, and two apt-get at
# once collide on dpkg's lock); when they are missing the test is skipped with the reason.
set -uo pipefail
what=${1:?usage: run.sh h5py|tex PEFTBENCH}
pb=${2:?usage: run.sh h5py|tex PEFTBENCH}
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/pb-interop.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

skip() {
  echo "SKIPPED: $*"
  exit 77
}
fail() {
  echo "FAILED: $*" >&2
  exit 1
}
# The fenced block between <!-- BEGIN interop:NAME --> and <!-- END interop:NAME --> of FILE.
extract() {
  awk -v b="<!-- BEGIN interop:$2 -->" -v e="<!-- END interop:$2 -->" '
    $0 == b { on = 1; next } $0 == e { on = 0 } on && !/^```/' "$src/$1"
}

# A small sweep: two methods and the majority-class reference row, two tasks, one learning rate
# each, two seeds.
cat >spec.ini <<'EOF'
[sweep]
name = interop
backbones = tiny
tasks = sentiment:n_train=64,n_dev=32,n_test=32
  topic:n_train=64,n_dev=32,n_test=32
lrs = 3e-3
seeds = 1 2
steps = 10
batch = 4
max_len = 48
eval_every = 5
references = majority
[method full]
lrs = 1e-3
[method lora]
r = 2
EOF
sweep() { OMP_WAIT_POLICY=PASSIVE "$pb" sweep spec.ini -o r.h5 --threads 1 --quiet || fail "peftbench sweep"; }

case "$what" in
h5py)
  # Debian's python3, which python3-h5py belongs to (a python3 earlier in PATH may be another)
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  "$py" -c 'import h5py, numpy' 2>/dev/null || skip "$py cannot import h5py and numpy (scripts/install-deps.sh --with h5py installs python3-h5py)"
  sweep
  "$pb" table r.h5 --format csv -o table.csv || fail "peftbench table --format csv"
  extract results/SCHEMA.md results >read_results.py
  [ -s read_results.py ] || fail "no interop:results block in results/SCHEMA.md"
  "$py" read_results.py r.h5 table.csv || fail "the results/SCHEMA.md block (table.csv: $(cat table.csv))"

  "$pb" pretrain --backbone tiny --corpus builtin --builtin-bytes 100000 --tokenizer byte --steps 30 \
    --seq 64 --batch 8 --threads 1 --eval-tokens 2048 --quiet -o ck.h5 2>pretrain.log || {
    cat pretrain.log >&2
    fail "peftbench pretrain"
  }
  printf 'The cat sat (on the mat), [and] the dog {too}.' >text.txt
  "$pb" score --checkpoint ck.h5 --text text.txt --per-token --threads 1 >score.txt || fail "peftbench score"
  extract models/CHECKPOINT.md checkpoint >read_checkpoint.py
  [ -s read_checkpoint.py ] || fail "no interop:checkpoint block in models/CHECKPOINT.md"
  "$py" read_checkpoint.py ck.h5 text.txt score.txt || fail "the models/CHECKPOINT.md block"
  ;;
tex)
  command -v pdflatex >/dev/null || skip "pdflatex not found (scripts/install-deps.sh --with tex installs texlive-latex-base)"
  kpsewhich booktabs.sty >/dev/null || skip "booktabs.sty not found (scripts/install-deps.sh --with tex installs texlive-latex-recommended)"
  sweep
  "$pb" table r.h5 --format tex -o table.tex || fail "peftbench table --format tex"
  printf '%s\n' '\documentclass{article}' '\usepackage{booktabs}' '\begin{document}' '\input{table.tex}' \
    '\end{document}' >doc.tex
  # -halt-on-error: an undefined command or a package the table needs but does not name fails
  pdflatex -interaction=nonstopmode -halt-on-error doc.tex >latex.log 2>&1 || {
    grep -A3 '^!' doc.log >&2
    fail "table.tex does not compile with booktabs alone: $(cat table.tex)"
  }
  [ -s doc.pdf ] || fail "pdflatex wrote no PDF"
  ! grep -q 'LaTeX Warning: Reference\|Undefined control sequence' doc.log || fail "warnings in doc.log"
  echo "table.tex ($(wc -l <table.tex) lines) compiles: doc.pdf $(wc -c <doc.pdf) bytes"
  ;;
*) fail "unknown test '$what' (h5py, tex)" ;;
esac
echo "interop $what: 1 passed, 0 failed"
