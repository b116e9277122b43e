"""bench_matmul.py: the products of bench/bench_matmul.c in PyTorch (torch.mm) and in numpy
(which calls OpenBLAS's sgemm directly when run with the OpenBLAS library path), timed the
same way: best of R runs after one warm-up.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=2 \\
        /usr/bin/python3 bench/bench_matmul.py [--reps R] [--only NAME] [--threads T]

Prints "RESULT name ms gflop" for torch and "RESULT_BLAS name ms gflop" for numpy; the
larger of the two figures is "the machine's best OpenBLAS figure" that deepc's SGEMM is held
to (bench/README.md).
"""
import argparse
import os
import time

import numpy as np
import torch

# name, m, n, k, transpose a, transpose b (same table as bench_matmul.c)
SHAPES = [
    ("sgemm_256", 256, 256, 256, 0, 0),
    ("sgemm_512", 512, 512, 512, 0, 0),
    ("sgemm_1024", 1024, 1024, 1024, 0, 0),
    ("sgemm_2048", 2048, 2048, 2048, 0, 0),
    ("linear_fwd_128x4096x1024", 128, 4096, 1024, 0, 1),
    ("linear_dw_4096x1024x128", 4096, 1024, 128, 1, 0),
]


def best_time(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--only", default=None)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    print(f"PyTorch {torch.__version__} / numpy {np.__version__} sgemm, {a.threads} threads")
    print(f"{'shape':28s} {'torch ms':>10s} {'GFLOP/s':>10s} {'numpy ms':>10s} {'GFLOP/s':>10s}")
    for name, m, n, k, ta, tb in SHAPES:
        if a.only and a.only not in name:
            continue
        at = torch.randn(k, m) if ta else torch.randn(m, k)
        bt = torch.randn(n, k) if tb else torch.randn(k, n)
        aop = at.t() if ta else at
        bop = bt.t() if tb else bt
        an, bn = aop.numpy(), bop.numpy()
        gflop = 2.0 * m * n * k * 1e-9
        t_torch = best_time(lambda: torch.mm(aop, bop), a.reps)
        t_np = best_time(lambda: an @ bn, a.reps)
        print(f"{name:28s} {t_torch * 1e3:10.3f} {gflop / t_torch:10.1f} {t_np * 1e3:10.3f} {gflop / t_np:10.1f}")
        print(f"RESULT {name} {t_torch * 1e3:.6f} {gflop:.4f}")
        print(f"RESULT_BLAS {name} {t_np * 1e3:.6f} {gflop:.4f}", flush=True)


if __name__ == "__main__":
    main()
