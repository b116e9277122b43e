#!/usr/bin/env bash
# run_core.sh: deepc's core-kernel benchmarks beside PyTorch's on the same machine, in one go:
# conv2d forward / forward+backward (bench_conv vs bench_conv.py) and SGEMM (bench_matmul vs
# bench_matmul.py), then the ratios and whether each target holds (bench/README.md).
#
#   bench/run_core.sh [BUILD_DIR] [--batch N] [--reps R] [--rounds K] [--threads T]
#
# BUILD_DIR holds the built bench_conv and bench_matmul (default: $DEEPC_BUILD, else ./build).
# Each side runs K rounds alternately (deepc, PyTorch, deepc, ...) and keeps its best time per
# shape, so a burst of load from other processes does not decide a ratio. Ratios are
# PyTorch time / deepc time: above 1 means deepc is faster.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${DEEPC_BUILD:-$root/build}"
batch=128
reps=5
rounds=2
threads=2
while [ $# -gt 0 ]; do
    case "$1" in
        --batch) batch="$2"; shift 2 ;;
        --reps) reps="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) build="$1"; shift ;;
    esac
done
for exe in bench_conv bench_matmul; do
    if [ ! -x "$build/$exe" ]; then
        echo "run_core.sh: $build/$exe not found (build first, or pass the build dir)" >&2
        exit 1
    fi
done

# PyTorch as ../shared/BASELINES.md prescribes: Debian's torch, OpenBLAS (OpenMP build),
# tcmalloc when installed, AVX-512 GEMM kernels only where the CPU has AVX-512 (forcing them
# elsewhere dies with SIGILL).
blasdir=/usr/lib/x86_64-linux-gnu/openblas-openmp
pyenv=(env "LD_LIBRARY_PATH=$blasdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "OMP_NUM_THREADS=$threads"
       "OPENBLAS_NUM_THREADS=$threads")
tcm=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
[ -e "$tcm" ] && pyenv+=("LD_PRELOAD=$tcm")
if grep -q avx512f /proc/cpuinfo; then pyenv+=("OPENBLAS_CORETYPE=SkylakeX"); fi
dcenv=(env "DEEPC_NUM_THREADS=$threads" "OMP_NUM_THREADS=$threads")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/dc_conv"; : > "$tmp/pt_conv"; : > "$tmp/dc_mm"; : > "$tmp/pt_mm"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
    echo "round $r/$rounds ..."
    "${dcenv[@]}" "$build/bench_conv" --batch "$batch" --reps "$reps" | tee -a "$tmp/dc_conv.log" | grep '^RESULT' >> "$tmp/dc_conv"
    "${pyenv[@]}" /usr/bin/python3 "$here/bench_conv.py" --batch "$batch" --reps "$reps" --threads "$threads" \
        | tee -a "$tmp/pt_conv.log" | grep '^RESULT' >> "$tmp/pt_conv"
    "${dcenv[@]}" "$build/bench_matmul" --reps "$reps" | tee -a "$tmp/dc_mm.log" | grep '^RESULT' >> "$tmp/dc_mm"
    "${pyenv[@]}" /usr/bin/python3 "$here/bench_matmul.py" --reps "$reps" --threads "$threads" \
        | tee -a "$tmp/pt_mm.log" | grep '^RESULT' >> "$tmp/pt_mm"
done
head -1 "$tmp/dc_conv.log"
head -1 "$tmp/pt_conv.log"

echo
echo "conv2d, $threads threads (ResNet-18 CIFAR layers at batch $batch, LeNet-5 at batch 64); ms = best of $rounds x $reps;"
echo "cpu = process CPU ms of all threads (steadier than wall time when other jobs share the machine)"
awk '
    FNR == 1 { file++ }
    file == 1 { k = $2; if (!(k in df) || $3 < df[k]) df[k] = $3; if (!(k in db) || $4 < db[k]) db[k] = $4;
                if (!(k in dc) || $7 < dc[k]) dc[k] = $7;
                gf[k] = $5; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    file == 2 { k = $2; if (!(k in pf) || $3 < pf[k]) pf[k] = $3; if (!(k in pb) || $4 < pb[k]) pb[k] = $4;
                if (!(k in pc) || $7 < pc[k]) pc[k] = $7 }
    END {
        printf "%-28s %8s %8s %5s | %8s %8s %5s | %8s %8s %5s | %6s\n", "shape", "deepc", "PyTorch", "ratio",
               "deepc", "PyTorch", "ratio", "deepc", "PyTorch", "ratio", "target";
        printf "%-28s %8s %8s %5s | %8s %8s %5s | %8s %8s %5s |\n", "", "fwd ms", "fwd ms", "", "f+b ms", "f+b ms", "",
               "f+b cpu", "f+b cpu", "";
        fails = 0; cfails = 0;
        for (i = 0; i < n; i++) {
            k = order[i];
            if (!(k in pf)) continue;
            rf = pf[k] / df[k]; rb = pb[k] / db[k]; rc = pc[k] / dc[k];
            target = (k ~ /^lenet/) ? 2.0 : 1.0;
            if (rb < target) fails++;
            if (rc < target) cfails++;
            printf "%-28s %8.2f %8.2f %5.2f | %8.2f %8.2f %5.2f | %8.1f %8.1f %5.2f | %6.1f%s\n", k, df[k], pf[k], rf,
                   db[k], pb[k], rb, dc[k], pc[k], rc, target, (rb >= target ? "" : " wall BELOW") (rc >= target ? "" : " cpu BELOW");
        }
        printf "targets (f+b ratio >= target): wall %s, cpu time %s\n", fails ? fails " below" : "all met",
               cfails ? cfails " below" : "all met";
    }' "$tmp/dc_conv" "$tmp/pt_conv"

echo
echo "sgemm, $threads threads; ms = best of $rounds x $reps; best OpenBLAS = the faster of torch.mm and numpy"
awk '
    FNR == 1 { file++ }
    file == 1 { k = $2; if (!(k in d) || $3 < d[k]) d[k] = $3; gf[k] = $4; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    file == 2 && $1 == "RESULT" { k = $2; if (!(k in t) || $3 < t[k]) t[k] = $3 }
    file == 2 && $1 == "RESULT_BLAS" { k = $2; if (!(k in b) || $3 < b[k]) b[k] = $3 }
    END {
        printf "%-28s %9s %9s %9s | %8s %8s %8s | %6s\n", "shape", "deepc ms", "torch ms", "numpy ms", "deepc", "torch",
               "numpy", "deepc/best";
        printf "%-28s %9s %9s %9s | %8s %8s %8s |\n", "", "", "", "", "GFLOP/s", "GFLOP/s", "GFLOP/s";
        for (i = 0; i < n; i++) {
            k = order[i];
            if (!(k in t)) continue;
            best = t[k] < b[k] ? t[k] : b[k];
            printf "%-28s %9.3f %9.3f %9.3f | %8.1f %8.1f %8.1f | %6.2f%s\n", k, d[k], t[k], b[k], gf[k] / d[k] * 1e3,
                   gf[k] / t[k] * 1e3, gf[k] / b[k] * 1e3, best / d[k],
                   (k == "sgemm_2048") ? ((best / d[k] >= 0.9) ? "  (target >= 0.90: ok)" : "  (target >= 0.90: BELOW)") : "";
        }
    }' "$tmp/dc_mm" "$tmp/pt_mm"
