#!/usr/bin/env bash
# run_seq2seq.sh: deepc vs PyTorch seconds per epoch on the seq2seq reversal recipe.
# Usage: bash bench/run_seq2seq.sh [path/to/deepc] [threads] [epochs]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEEPC=${1:-$ROOT/build/deepc}
exec python3 "$ROOT/bench/bench_seq2seq.py" --deepc "$DEEPC" --threads "${2:-2}" --epochs "${3:-2}"
