#!/usr/bin/env bash
# run_summarize.sh: summarization speed and memory, deepc beside transformers (PyTorch) in the
# same run: distilbart-cnn-12-6 (bart-large-cnn's config with 12 encoder / 6 decoder layers) and
# t5-small, full-size with random weights, a 500-token article, each model's default beam
# settings, 2 threads. Makes the models on first use (tools/make_summarize_bench_models.py;
# 1.5 GB, not committed).
#   bash bench/run_summarize.sh [BUILD_DIR] [THREADS] [PYTHON]
# PYTHON: an interpreter with transformers that sees Debian's torch, e.g. a venv made with
#   /usr/bin/python3 -m venv --system-site-packages V && V/bin/pip install transformers safetensors sentencepiece
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; T=${2:-2}; PY=${3:-${PYTHON:-python3}}
MODELS=${DEEPC_BENCH_MODELS:-/tmp/deepc-summarize-bench}
if [ ! -s "$MODELS/distilbart-cnn-12-6/model.safetensors" ] || [ ! -s "$MODELS/t5-small/model.safetensors" ]; then
  "$PY" tools/make_summarize_bench_models.py "$MODELS"
fi
"$PY" bench/bench_summarize.py --deepc "$BUILD/deepc" --models "$MODELS" --threads "$T"
