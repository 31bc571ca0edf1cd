#!/usr/bin/env bash
# pretrain-families.sh — GPT-style vs LLaMA-style backbone at the same pretraining time (issue 12
# section 2; EXPERIMENTS.md "GPT-style vs LLaMA-style"). Run it on a quiet machine: step 1 times
# training steps, and step 3 is timed. Every number it prints goes into EXPERIMENTS.md with this
# command line beside it.
#
#   experiments/pretrain-families.sh DATA_DIR OUT_DIR          the real comparison (about 45 min)
#   SMOKE=1 experiments/pretrain-families.sh DATA_DIR OUT_DIR  tiny/tiny-llama on the built-in
#                                                              corpus, a few steps: checks the script
#
# DATA_DIR holds the fetched corpus (`peftbench data fetch --only corpus`). The comparison:
#  1. Step time of each family at the default recipe's shape (bench/train_step: 8 sequences of 256
#     tokens, bpe:4096's vocabulary 4358, the LM head, 2 threads), as the tokenizer comparison set
#     its step count: mini-llama gets round(STEPS x t_gpt / t_llama) steps, so both train for the
#     same time (the presets' blocks have equal parameters and FLOPs per token; RoPE, SwiGLU and
#     the untied head make the step times differ a little).
#  2. A learning-rate proxy for mini-llama at equal counted FLOPs with mini's rows in EXPERIMENTS.md
#     ("Why mini is the default backbone": 8 x 800 steps, --eval-tokens 200000, lr 1e-3 / 2e-3 /
#     4e-3; mini's best is 2e-3), run here for both families so the rows compare.
#  3. The full runs, timed: mini at the default recipe (STEPS = 2742, bpe:4096, lr 2e-3) and
#     mini-llama at its step count with its best proxy learning rate. Held-out bits per byte of
#     both are the comparison; the decision (the default backbone is the winner) goes into
#     EXPERIMENTS.md and, if it changes, PB_DEFAULT_BACKBONE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 DATA_DIR OUT_DIR" >&2; exit 2; }
data=$1 out=$2
pb=${PB:-build/peftbench}
bench=${BENCH:-build/bench/train_step}
export OMP_WAIT_POLICY=passive
mkdir -p "$out"

if [ "${SMOKE:-0}" = 1 ]; then
    gpt=tiny llama=tiny-llama steps=40 proxy_steps=20 corpus=builtin tok=byte vocab=262
    shape=(--d-model 32 --layers 2 --heads 4 --seq 64 --batch 8 --steps 2 --warmup 1 --sgemm-n 64)
    extra=(--builtin-bytes 200000 --eval-tokens 4096)
else
    gpt=mini llama=mini-llama steps=2742 proxy_steps=800 corpus=fetched tok=bpe:4096 vocab=4358
    shape=(--d-model 192 --layers 4 --heads 6 --seq 256 --batch 8 --steps 20 --warmup 3)
    extra=()
fi
ff=$("$pb" list backbones | awk -v b="$llama" '$1 == b { print $7 }')
kv=$("$pb" list backbones | awk -v b="$llama" '$1 == b { split($6, h, "/"); print h[2] }')

echo "== 1. step times ($(uptime))"
ms() { awk -F'ms_per_step=' '/ms_per_step=/ { split($2, a, " "); print a[1] }' "$1"; }
"$bench" --family gpt "${shape[@]}" --head lm --vocab "$vocab" --threads 2 | tee "$out/step-gpt.txt"
"$bench" --family llama --kv-heads "$kv" --d-ff "$ff" "${shape[@]}" --head lm --vocab "$vocab" --threads 2 |
    tee "$out/step-llama.txt"
t_gpt=$(ms "$out/step-gpt.txt") t_llama=$(ms "$out/step-llama.txt")
llama_steps=$(awk -v s="$steps" -v g="$t_gpt" -v l="$t_llama" 'BEGIN { printf "%d", s * g / l + 0.5 }')
echo "ms per step: $gpt $t_gpt, $llama $t_llama -> $llama $llama_steps steps for $gpt's $steps"

echo "== 2. learning-rate proxy ($proxy_steps steps of 8 x 256 tokens, 1 thread)"
best_lr=2e-3 best_bpb=1e9
for b in "$gpt" "$llama"; do
    for lr in 1e-3 2e-3 4e-3; do
        "$pb" pretrain --data-dir "$data" --corpus "$corpus" --tokenizer "$tok" --backbone "$b" --batch 8 \
            --steps "$proxy_steps" --lr "$lr" --eval-tokens 200000 --save-every 0 --threads 1 --quiet "${extra[@]}" \
            --force -o "$out/proxy-$b-$lr.h5" | tee "$out/proxy-$b-$lr.txt"
        bpb=$(awk '/^held-out:/ { for (i = 1; i <= NF; i++) if ($i == "bits") print $(i - 1) }' "$out/proxy-$b-$lr.txt")
        echo "proxy $b lr $lr: $bpb bits per byte"
        if [ "$b" = "$llama" ] && awk -v a="$bpb" -v b="$best_bpb" 'BEGIN { exit !(a < b) }'; then
            best_lr=$lr best_bpb=$bpb
        fi
    done
done
echo "$llama: best proxy lr $best_lr ($best_bpb bits per byte)"

echo "== 3. the full runs, timed ($(uptime))"
/usr/bin/time -f "wall %e s user %U s" "$pb" pretrain --data-dir "$data" --corpus "$corpus" --tokenizer "$tok" \
    --backbone "$gpt" --steps "$steps" --threads 2 --quiet "${extra[@]}" --force -o "$out/$gpt.h5" 2>&1 |
    tee "$out/full-$gpt.txt"
/usr/bin/time -f "wall %e s user %U s" "$pb" pretrain --data-dir "$data" --corpus "$corpus" --tokenizer "$tok" \
    --backbone "$llama" --steps "$llama_steps" --lr "$best_lr" --threads 2 --quiet "${extra[@]}" --force \
    -o "$out/$llama.h5" 2>&1 | tee "$out/full-$llama.txt"
echo "== summary ($(uptime))"
grep -H -E '^held-out:|^wall' "$out/full-$gpt.txt" "$out/full-$llama.txt"
