#!/usr/bin/env bash
# run_sd.sh: Stable Diffusion 1.5 (full-size configs, random weights) UNet step and VAE decode at
# 512x512, batch 2 for guidance, deepc beside diffusers/PyTorch in the same run with the same threads;
# prints seconds, peak RSS and the ratios. Needs the venv of tools/make_sd_fixtures.py (diffusers).
#   bash bench/run_sd.sh [BUILD_DIR] [THREADS] [MODELS_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; T=${2:-2}; MODELS=${3:-/tmp/deepc-sd-bench}
PY=${SD_PYTHON:-/work/venv-sd/bin/python}
export OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T DEEPC_NUM_THREADS=$T
TORCH_ENV=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp)
# AVX-512 OpenBLAS kernels where the CPU has them (forcing them elsewhere is an illegal instruction)
grep -q avx512f /proc/cpuinfo && TORCH_ENV+=(OPENBLAS_CORETYPE=SkylakeX)
[ -f "$MODELS/unet/diffusion_pytorch_model.safetensors" ] || "${TORCH_ENV[@]}" "$PY" tools/make_sd_bench_models.py "$MODELS"
for what in unet vae; do
  d=$("$BUILD/bench_sd" --what $what --models "$MODELS" --threads "$T")
  h=$("$BUILD/bench_sd" --what $what --models "$MODELS" --threads "$T" --half)
  p=$("${TORCH_ENV[@]}" "$PY" bench/bench_sd.py --what $what --models "$MODELS" --threads "$T")
  python3 - "$d" "$h" "$p" <<'PYEOF'
import json, sys
d, h, p = (json.loads(a) for a in sys.argv[1:4])
print(f"{d['what']:4s}: deepc {d['seconds']:.2f} s ({d['peak_rss_mb']:.0f} MB), 16-bit {h['seconds']:.2f} s "
      f"({h['peak_rss_mb']:.0f} MB) | diffusers {p['seconds']:.2f} s ({p['peak_rss_mb']:.0f} MB) | speed "
      f"{p['seconds'] / d['seconds']:.2f}x, RSS {d['peak_rss_mb'] / p['peak_rss_mb']:.2f}x (16-bit "
      f"{h['peak_rss_mb'] / p['peak_rss_mb']:.2f}x)")
PYEOF
done
