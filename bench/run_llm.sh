#!/usr/bin/env bash
# run_llm.sh: deepc vs transformers (PyTorch) on text generation with the full-size GPT-2
# architecture (random weights made by tools/make_bench_models.py, never committed): a
# 128-token prompt + 128 new tokens, greedy, 2 threads, both sides in the same run,
# alternating deepc / transformers ROUNDS times and keeping each side's best figures (the
# machines are shared and noisy). Prints each run's JSON and the ratios.
#
#   bench/run_llm.sh [BUILD_DIR (default build)] [ROUNDS (default 2)]
#
# Environment: DEEPC_BENCH_MODELS (default /tmp/deepc-bench-models), DEEPC_BENCH_VENV (a venv
# with transformers that sees Debian's torch; made at /tmp/deepc-bench-venv when missing),
# THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${2:-2}
THREADS=${THREADS:-2}
MODELS=${DEEPC_BENCH_MODELS:-/tmp/deepc-bench-models}
VENV=${DEEPC_BENCH_VENV:-/tmp/deepc-bench-venv}

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import transformers" 2>/dev/null; then
  echo "making $VENV (transformers 4.45.2 over Debian's torch)" >&2
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q "transformers==4.45.2" safetensors sentencepiece
fi
if [ ! -f "$MODELS/gpt2/model.safetensors" ]; then
  "$VENV/bin/python" tools/make_bench_models.py --out "$MODELS" --config gpt2
fi
[ -x "$BUILD/bench_llm" ] || { echo "build bench_llm first: cmake --build $BUILD --target bench_llm" >&2; exit 1; }

# PyTorch as BASELINES.md runs it: OpenBLAS-openmp, AVX-512 kernels only where the CPU has them
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS DEEPC_NUM_THREADS=$THREADS
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  "$BUILD/bench_llm" "$MODELS/gpt2" --prompt-tokens 128 --new-tokens 128 --runs 2 | tee -a "$OUT"
  "$VENV/bin/python" bench/bench_llm.py "$MODELS/gpt2" --prompt-tokens 128 --new-tokens 128 --runs 2 \
    --threads "$THREADS" 2>/dev/null | tee -a "$OUT"
done
python3 - "$OUT" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
best = {}
for r in runs:
    b = best.setdefault(r["impl"], dict(r))
    b["prompt_tok_s"] = max(b["prompt_tok_s"], r["prompt_tok_s"])
    b["new_tok_s"] = max(b["new_tok_s"], r["new_tok_s"])
    b["peak_rss_mb"] = max(b["peak_rss_mb"], r["peak_rss_mb"])
d, t = best["deepc"], best["transformers"]
print()
print("| gpt2 (124M, F32), 128 + 128 tokens, greedy | deepc | transformers | ratio | target |")
print("|---|---|---|---|---|")
print(f"| new tokens/s | {d['new_tok_s']:.1f} | {t['new_tok_s']:.1f} | {d['new_tok_s'] / t['new_tok_s']:.2f}x | >= 2x |")
print(f"| prompt tokens/s | {d['prompt_tok_s']:.0f} | {t['prompt_tok_s']:.0f} | {d['prompt_tok_s'] / t['prompt_tok_s']:.2f}x | >= 1x |")
print(f"| peak RSS (MB) | {d['peak_rss_mb']:.0f} | {t['peak_rss_mb']:.0f} | {d['peak_rss_mb'] / t['peak_rss_mb']:.2f}x | <= 0.6x |")
print(f"| first 16 greedy ids equal | {'yes' if d['new_ids'] == t['new_ids'] else 'no'} | | | |")
PY
