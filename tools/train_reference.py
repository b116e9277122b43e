"""train_reference: the PyTorch side of deepc's CNN comparison, for accuracy parity and interop.

    /usr/bin/python3 tools/train_reference.py train --model lenet5 --dataset fashion-mnist \
        --epochs 10 --out runs/torch-lenet5            # same recipe as `deepc train`
    /usr/bin/python3 tools/train_reference.py eval --model lenet5 --dataset mnist \
        --weights runs/deepc-lenet5/model.safetensors  # evaluates a deepc checkpoint

Same data (IDX / CIFAR binary files found like deepc does), same preprocessing
(pixel/255 then Normalize with the dataset's mean/std), Adam(lr 1e-3) by default, cross-entropy,
batch 64, and the same random draws as `deepc train --seed S`: the initial weights after
torch.manual_seed(S), the split of random_split(range(n), [n - val, val]) with a Generator
seeded S, and each epoch's batch order from torch.randperm on a second Generator seeded S
(deepc's mt19937 reproduces all three), so the two runs start from the same weights and see
the same batches; they differ only in floating-point rounding. Checkpoints are safetensors with
state_dict() names (written with tools/fixturelib.py's serializer, so no extra package).
Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX
for a fair speed comparison (see ../shared/BASELINES.md).
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnn_models import build  # noqa: E402
from fixturelib import serialize  # noqa: E402

NORM = {
    "mnist": ([0.1307], [0.3081]),
    "fashion-mnist": ([0.2860], [0.3530]),
    "cifar10": ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def search_dirs(data_dir):
    dirs = [data_dir, os.environ.get("DEEPC_DATA"), "./data", os.path.join(ROOT, "..", "shared", "data"),
            "/usr/share/datasets"]
    return [d for d in dirs if d]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, 1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8).astype(np.int64)


def find(folder_names, files, data_dir):
    for d in search_dirs(data_dir):
        for sub in folder_names:
            base = os.path.join(d, sub)
            found = []
            for f in files:
                for cand in (f, f + ".gz", f.replace("-idx", ".idx")):
                    if os.path.exists(os.path.join(base, cand)):
                        found.append(os.path.join(base, cand))
                        break
            if len(found) == len(files):
                return found
    raise SystemExit(f"dataset files {files} not found in {search_dirs(data_dir)}")


def load(dataset, data_dir):
    if dataset in ("mnist", "fashion-mnist"):
        files = find([dataset], ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], data_dir)
        xtr, ytr, xte, yte = (read_idx(f) for f in files)
        return xtr, ytr, xte, yte
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    files = find(["cifar-10-batches-bin", "cifar-10/cifar-10-batches-bin", "cifar-10-partial/cifar-10-batches-bin"],
                 names, data_dir)

    def rec(path):
        raw = np.fromfile(path, np.uint8).reshape(-1, 3073)
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)
    parts = [rec(f) for f in files[:5]]
    xte, yte = rec(files[5])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), xte, yte


def normalize(x_u8, dataset):
    mean, std = NORM[dataset]
    x = torch.from_numpy(np.ascontiguousarray(x_u8)).float().div(255)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


def evaluate(model, x, y, batch=1000):
    model.eval()
    preds, loss = [], 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            loss += F.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            preds.append(out.argmax(1))
    p = torch.cat(preds)
    return loss / len(x), (p == y).float().mean().item(), p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["train", "eval"])
    ap.add_argument("--model", default="lenet5")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--val-size", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = load(a.dataset, a.data_dir)
    c, s = xtr.shape[1], xtr.shape[2]
    torch.manual_seed(a.seed)  # --seed drives the initialisation too, as in `deepc train`
    model = build(a.model, c, s)
    xte_t, yte_t = normalize(xte, a.dataset), torch.from_numpy(yte)
    if a.cmd == "eval":
        from safetensors_reader import load_file
        model.load_state_dict(load_file(a.weights), strict=True)
        loss, acc, _ = evaluate(model, xte_t, yte_t)
        print(json.dumps({"loss": loss, "accuracy": acc}))
        return
    # deepc's dc_split_train_val: random_split(range(n), [n - val, val]) with its own generator
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(a.seed))
    n_tr = len(xtr) - a.val_size
    tr_idx, val_idx = perm[:n_tr], perm[n_tr:]
    # deepc's data_rng: a second generator with the same seed draws every epoch's order
    g = torch.Generator().manual_seed(a.seed)
    x_all = normalize(xtr, a.dataset)
    y_all = torch.from_numpy(ytr)
    xtr_t, ytr_t = x_all[tr_idx], y_all[tr_idx]
    xva_t, yva_t = x_all[val_idx], y_all[val_idx]
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    history = []
    t0 = time.time()
    for epoch in range(1, a.epochs + 1):
        model.train()
        te = time.time()
        order = torch.randperm(len(xtr_t), generator=g)
        total, n = 0.0, 0
        for i in range(0, len(order), a.batch_size):
            idx = order[i:i + a.batch_size]
            out = model(xtr_t[idx])
            loss = F.cross_entropy(out, ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        vl, va, _ = evaluate(model, xva_t, yva_t)
        history.append({"epoch": epoch, "train_loss": total / n, "val_loss": vl, "val_accuracy": va,
                        "seconds": time.time() - te})
        print(json.dumps(history[-1]), flush=True)
    tl, ta, _ = evaluate(model, xte_t, yte_t)
    result = {"model": a.model, "dataset": a.dataset, "epochs": a.epochs, "train_seconds": time.time() - t0,
              "history": history, "test": {"loss": tl, "accuracy": ta}}
    print(json.dumps(result["test"]))
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
            f.write(serialize({k: v for k, v in model.state_dict().items()}))
        with open(os.path.join(a.out, "metrics.json"), "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
