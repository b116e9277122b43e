"""bench_conv.py: PyTorch's conv2d forward and forward+backward on the shapes of
bench/bench_conv.c (ResNet-18 CIFAR layers and LeNet-5), timed the same way: best of R runs
after two warm-ups (the minimum: shared machines only add time); "fwd" under no_grad;
"fwd+bwd" computes the gradients of weight, bias
(LeNet) and input (except the layers fed by the data), with .grad reset between runs.

Run it as bench/run_core.sh does (Debian's torch, OpenBLAS, 2 threads):
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=2 \\
        /usr/bin/python3 bench/bench_conv.py [--batch N] [--reps R] [--only NAME] [--threads T]
Prints "RESULT name fwd_ms fwdbwd_ms gflop fwd_cpu_ms fwdbwd_cpu_ms" lines like bench_conv
(CPU = process CPU time of all threads).
"""
import argparse
import os
import time

import torch
import torch.nn.functional as F

# name, resnet batch?, c, o, hw, k, stride, pad, bias, grad_x  (same table as bench_conv.c)
SHAPES = [
    ("resnet_stem_3-64_32", 1, 3, 64, 32, 3, 1, 1, 0, 0),
    ("resnet_l1_64-64_32", 1, 64, 64, 32, 3, 1, 1, 0, 1),
    ("resnet_l2a_64-128_s2", 1, 64, 128, 32, 3, 2, 1, 0, 1),
    ("resnet_l2b_128-128_16", 1, 128, 128, 16, 3, 1, 1, 0, 1),
    ("resnet_l2ds_1x1_64-128_s2", 1, 64, 128, 32, 1, 2, 0, 0, 1),
    ("resnet_l3a_128-256_s2", 1, 128, 256, 16, 3, 2, 1, 0, 1),
    ("resnet_l3b_256-256_8", 1, 256, 256, 8, 3, 1, 1, 0, 1),
    ("resnet_l3ds_1x1_128-256_s2", 1, 128, 256, 16, 1, 2, 0, 0, 1),
    ("resnet_l4a_256-512_s2", 1, 256, 512, 8, 3, 2, 1, 0, 1),
    ("resnet_l4b_512-512_4", 1, 512, 512, 4, 3, 1, 1, 0, 1),
    ("resnet_l4ds_1x1_256-512_s2", 1, 256, 512, 8, 1, 2, 0, 0, 1),
    ("lenet_conv1_1-6_28", 0, 1, 6, 28, 5, 1, 2, 1, 0),
    ("lenet_conv2_6-16_14", 0, 6, 16, 14, 5, 1, 0, 1, 1),
]


def best_time(fn, reps, reset=None):
    """(minimum wall seconds, minimum process CPU seconds) of fn(); reset() (untimed) runs
    after each call"""
    for _ in range(2):
        fn()
        if reset:
            reset()
    ts, cs = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
        if reset:
            reset()
    return min(ts), min(cs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", default=None)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__} conv2d, {torch.get_num_threads()} threads, mkldnn "
          f"{torch.backends.mkldnn.is_available()}")
    print(f"{'shape':28s} {'batch':>6s} {'fwd ms':>10s} {'GFLOP/s':>10s} {'f+b ms':>10s} {'GFLOP/s':>10s}")
    for name, resnet, c, o, hw, k, s, p, bias, grad_x in SHAPES:
        if a.only and a.only not in name:
            continue
        n = a.batch if resnet else 64
        x = torch.randn(n, c, hw, hw, requires_grad=bool(grad_x))
        w = torch.randn(o, c, k, k, requires_grad=True)
        b = torch.randn(o, requires_grad=True) if bias else None
        ohw = (hw + 2 * p - k) // s + 1
        gy = torch.randn(n, o, ohw, ohw)

        def fwd():
            with torch.no_grad():
                F.conv2d(x, w, b, s, p)

        def fwd_bwd():
            y = F.conv2d(x, w, b, s, p)
            y.backward(gy)

        def reset():
            x.grad = None
            w.grad = None
            if b is not None:
                b.grad = None

        tf, cf = best_time(fwd, a.reps)
        tb, cb = best_time(fwd_bwd, a.reps, reset)
        flop = 2.0 * n * o * ohw * ohw * c * k * k
        fb = flop * (3 if grad_x else 2)
        print(f"{name:28s} {n:6d} {tf * 1e3:10.3f} {flop / tf * 1e-9:10.1f} {tb * 1e3:10.3f} "
              f"{fb / tb * 1e-9:10.1f}")
        print(f"RESULT {name} {tf * 1e3:.6f} {tb * 1e3:.6f} {fb * 1e-9:.1f} {cf * 1e3:.6f} {cb * 1e3:.6f}", flush=True)


if __name__ == "__main__":
    main()
