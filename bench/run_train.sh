#!/usr/bin/env bash
# run_train.sh: CNN training throughput, deepc beside PyTorch in the same run, same threads,
# same batch, data in memory (../shared/BASELINES.md's protocol). Prints a table of
# images/s and deepc/PyTorch ratios.
#   bash bench/run_train.sh [BUILD_DIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}; T=${2:-2}
export OMP_NUM_THREADS=$T OPENBLAS_NUM_THREADS=$T DEEPC_NUM_THREADS=$T
TORCH_ENV=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
           LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4)
# AVX-512 OpenBLAS kernels only where the CPU has them (forcing them elsewhere is SIGILL)
if grep -qw avx512f /proc/cpuinfo; then TORCH_ENV+=(OPENBLAS_CORETYPE=SkylakeX); fi
run() { # model batch steps [infer_batch]
  local d p
  echo "... $1 batch $2" >&2
  d=$("$BUILD/bench_train" --model "$1" --batch "$2" --threads "$T" --steps "$3" ${4:+--infer-batch $4})
  p=$("${TORCH_ENV[@]}" /usr/bin/python3 bench/bench_train.py --model "$1" --batch "$2" --threads "$T" --steps "$3" ${4:+--infer-batch $4})
  python3 - "$d" "$p" <<'PY'
import json, sys
d, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
r = d["train_images_per_second"] / p["train_images_per_second"]
line = f"{d['model']:9s} batch {d['batch']:4d} train: deepc {d['train_images_per_second']:9.1f} img/s  pytorch {p['train_images_per_second']:9.1f} img/s  ratio {r:5.2f}x"
if "infer_images_per_second" in d:
    ri = d["infer_images_per_second"] / p["infer_images_per_second"]
    line += f" | infer batch {d['infer_batch']}: {d['infer_images_per_second']:.0f} vs {p['infer_images_per_second']:.0f} img/s ratio {ri:.2f}x"
line += f" | peak RSS {d['peak_rss_mb']:.0f} MB vs {p['peak_rss_mb']:.0f} MB"
print(line)
PY
}
run lenet5 64 300 1
run alexnet 128 20
run vgg11 128 5
run resnet18 128 3
