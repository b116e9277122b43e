"""bench_train.py: PyTorch's CNN training and inference throughput, measured the way
../shared/BASELINES.md prescribes (data in memory as tensors, batched by index, timing
forward + backward + Adam step + loss.item()). bench/run_train.sh runs it beside deepc's
bench and prints the ratios.

    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX \
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 OMP_NUM_THREADS=2 \
    /usr/bin/python3 bench/bench_train.py --model lenet5 --batch 64 --threads 2 --steps 200

Prints one JSON line: {"model", "batch", "train_images_per_second", "peak_rss_mb", ...}.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from cnn_models import build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--infer-batch", type=int, default=0, help="also time inference at this batch size")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    c = a.channels or (1 if a.model == "lenet5" else 3)
    s = a.size or (28 if c == 1 else 32)
    n = max(a.batch * 8, 1024)
    x = torch.randn(n, c, s, s)
    y = torch.randint(0, 10, (n,))
    model = build(a.model, c, s)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step(i):
        idx = torch.randint(0, n, (a.batch,))
        out = model(x[idx])
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(i)
    dt = time.perf_counter() - t0
    res = {"framework": "pytorch", "model": a.model, "batch": a.batch, "threads": a.threads,
           "input": [c, s, s], "train_images_per_second": a.steps * a.batch / dt}
    if a.infer_batch:
        model.eval()
        xb = x[:a.infer_batch]
        with torch.no_grad():
            for _ in range(20):
                model(xb)
            reps = max(50, 2000 // a.infer_batch)
            t0 = time.perf_counter()
            for _ in range(reps):
                model(xb)
            res["infer_batch"] = a.infer_batch
            res["infer_images_per_second"] = reps * a.infer_batch / (time.perf_counter() - t0)
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(res))


if __name__ == "__main__":
    main()
