#!/usr/bin/env bash
# Reproduce docs/tokenizer.md: convert the Bandai Namco corpus, train the evaluator and the small
# tokenizer with residual dropout tau in {0, 0.1, 0.5}, and evaluate each on the test split.
# Two jobs at a time, one thread each (the machine has 2 cores). Resumable: run it again after
# an interruption. Usage: bash benchmarks/tokenizer_ablation.sh [RUNS_DIR] [DATA_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-runs}
data=${2:-$runs/bandai-namco}
pgr2m=.venv/bin/pgr2m
mkdir -p "$runs"

[ -f "$data/all.txt" ] || $pgr2m import-bandai-namco "$data"

train_tok() {   # tau
    local out="$runs/tok-tau$1" resume=()
    [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
    [ -f "$out/model/tokenizer.safetensors" ] && return 0
    $pgr2m train tokenizer --data "$data" --out "$out" --config small --quiet "${resume[@]}" \
        --set threads=1 --set model.residual_dropout="$1"
}
train_eval() {
    local out="$runs/evaluator" resume=()
    [ -f "$out/checkpoint.safetensors" ] && resume=(--resume)
    [ -f "$out/model/model.safetensors" ] && return 0
    $pgr2m train evaluator --data "$data" --out "$out" --config small --quiet "${resume[@]}" --set threads=1
}

train_tok 0.1 & train_tok 0 & wait
train_tok 0.5 & train_eval & wait
for tau in 0.1 0 0.5; do
    $pgr2m evaluate tokenizer --model "$runs/tok-tau$tau" --data "$data" --evaluator "$runs/evaluator/model" \
        --json "$runs/tok-tau$tau/test-metrics.json" | tee "$runs/tok-tau$tau/test-metrics.txt"
done
