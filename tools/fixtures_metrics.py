#!/usr/bin/env python3
"""fixtures_metrics: reference numbers for deepc's data tests (tests/test_data.c,
tests/test_metrics.c), written to tests/fixtures/data/.

    /usr/bin/python3 tools/fixtures_metrics.py

- metrics.json: classification metrics computed with scikit-learn's definitions
  (precision_recall_fscore_support(zero_division=0), accuracy_score, confusion_matrix;
  macro averages over the labels present in y_true or y_pred, sklearn's default). sklearn is
  not installed here, so its formulas are written out below from its documentation and
  source (sklearn >= 1.3 computes F1 as 2tp / (2tp + fp + fn)).
- normalize.json: torchvision's ToTensor() + Normalize(mean, std) applied to every pixel value
  0..255 for each dataset channel, as float32 bit patterns (the batcher must be bit-identical).
- randperm.json: torch.randperm(n, generator) and torch.utils.data.random_split indices for
  seeded generators (deepc's split and reshuffle reproduce them).
- cifar_aug.json + cifar_aug.f32: four synthetic 3x32x32 images put through torchvision's
  RandomCrop(32, padding=4) + RandomHorizontalFlip() + ToTensor() + Normalize(CIFAR) after
  torch.manual_seed(7), image by image (what a DataLoader with num_workers=0 does), as raw
  little-endian float32 [4, 3, 32, 32].
- images/: small test pictures for `predict`'s reader (photo.png RGBA 45x37, photo.pgm its
  gray version, photo.jpg, palette.png) and images.json with what PIL makes of each:
  Image.open(f).convert('L').resize((28, 28), BILINEAR) and .convert('RGB').resize((32, 32),
  BILINEAR) as CHW byte lists (deepc reproduces Pillow's integer arithmetic exactly; JPEG
  decoders differ slightly, so the JPEG case is compared with a tolerance).
JSON files are written with sorted keys so a re-run gives identical bytes.
"""

import json
import os
import struct

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data")


def sk_metrics(y_true, y_pred, k):
    """sklearn's accuracy, per-class P/R/F1/support and macro averages, zero_division=0."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    conf = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        conf[t, p] += 1
    per = []
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    for c in range(k):
        tp = int(((y_true == c) & (y_pred == c)).sum())
        fp = int(((y_true != c) & (y_pred == c)).sum())
        fn = int(((y_true == c) & (y_pred != c)).sum())
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 0.0
        per.append({"precision": p, "recall": r, "f1": f, "support": int((y_true == c).sum())})
    macro = {m: float(np.mean([per[c][m] for c in present])) for m in ("precision", "recall", "f1")}
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "per_class": per,
        "confusion": conf.tolist(),
        **macro,
    }


def metrics_cases():
    rng = np.random.default_rng(1234)
    cases = []

    def add(name, yt, yp, k):
        yt = [int(v) for v in yt]
        yp = [int(v) for v in yp]
        cases.append({"name": name, "num_classes": k, "y_true": yt, "y_pred": yp,
                      "expected": sk_metrics(yt, yp, k)})

    # a noisy 10-class classifier: 70% right, the rest uniform
    yt = rng.integers(0, 10, 500)
    yp = np.where(rng.random(500) < 0.7, yt, rng.integers(0, 10, 500))
    add("noisy10", yt, yp, 10)
    # class 9 never occurs; class 8 is predicted but never true (precision 0, recall undefined)
    yt = rng.integers(0, 8, 200)
    yp = np.where(rng.random(200) < 0.6, yt, rng.integers(0, 9, 200))
    add("missing_classes", yt, yp, 10)
    add("perfect", list(range(10)) * 3, list(range(10)) * 3, 10)
    add("all_one_class", list(range(10)) * 2, [3] * 20, 10)
    add("single", [4], [2], 10)
    add("binary", [0, 1, 1, 0, 1, 1, 0], [0, 1, 0, 0, 1, 1, 1], 2)
    return cases


def f32_bits(t):
    return [struct.unpack("<I", struct.pack("<f", float(v)))[0] for v in t.flatten().tolist()]


def normalize_ref():
    consts = {
        "mnist": ((0.1307,), (0.3081,)),
        "fashion-mnist": ((0.2860,), (0.3530,)),
        "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    }
    out = {}
    for name, (mean, std) in consts.items():
        c = len(mean)
        # every value 0..255 in every channel: a 16x16 image per channel
        img = np.tile(np.arange(256, dtype=np.uint8).reshape(16, 16, 1), (1, 1, c))
        pil = Image.fromarray(img[:, :, 0] if c == 1 else img)
        t = transforms.Normalize(mean, std)(transforms.ToTensor()(pil))  # [c, 16, 16]
        out[name] = [f32_bits(t[ch]) for ch in range(c)]
    return out


def randperm_ref():
    cases = []
    for n, seed in ((1, 0), (2, 0), (10, 0), (37, 5), (1000, 123)):
        g = torch.Generator().manual_seed(seed)
        cases.append({"n": n, "seed": seed, "perm": torch.randperm(n, generator=g).tolist()})
    # two consecutive permutations from one generator (the per-epoch reshuffle)
    g = torch.Generator().manual_seed(42)
    first = torch.randperm(50, generator=g).tolist()
    second = torch.randperm(50, generator=g).tolist()
    splits = []
    for n, val, seed in ((100, 20, 0), (60000, 5000, 0), (50000, 5000, 3)):
        g = torch.Generator().manual_seed(seed)
        tr, va = torch.utils.data.random_split(range(n), [n - val, val], generator=g)
        tr, va = list(tr.indices), list(va.indices)
        splits.append({"n": n, "val_size": val, "seed": seed, "train_head": tr[:20],
                       "val_head": va[:20], "train_sum_weighted": sum(i * v for i, v in enumerate(tr)) % (1 << 61),
                       "val_sum_weighted": sum(i * v for i, v in enumerate(va)) % (1 << 61)})
    return {"perms": cases, "consecutive": {"seed": 42, "n": 50, "first": first, "second": second},
            "splits": splits}


def synthetic_cifar(i):
    """Image i of the synthetic set (the C test builds the same bytes): CHW uint8."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    return ((i * 37 + c * 61 + y * 7 + x * 3 + (x * y) % 11) % 256).astype(np.uint8)


def cifar_aug_ref():
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                             transforms.ToTensor(), transforms.Normalize(mean, std)])
    torch.manual_seed(7)
    outs = [tf(Image.fromarray(np.transpose(synthetic_cifar(i), (1, 2, 0)))) for i in range(4)]
    return torch.stack(outs).numpy().astype("<f4")


def synthetic_photo():
    """A 45x37 RGBA picture with gradients, a disc and some transparency (deterministic)."""
    y, x = np.mgrid[0:37, 0:45]
    r = (x * 255 // 44).astype(np.uint8)
    g = (y * 255 // 36).astype(np.uint8)
    b = (((x - 22) ** 2 + (y - 18) ** 2 < 150) * 200 + 30).astype(np.uint8)
    a = np.where(x < 5, 128, 255).astype(np.uint8)
    return Image.fromarray(np.stack([r, g, b, a], axis=-1), "RGBA")


def pil_expect(img):
    gray = np.asarray(img.convert("L").resize((28, 28), Image.BILINEAR), dtype=np.uint8)
    rgb = np.asarray(img.convert("RGB").resize((32, 32), Image.BILINEAR), dtype=np.uint8)
    return {"gray28": gray.flatten().tolist(), "rgb32": np.transpose(rgb, (2, 0, 1)).flatten().tolist()}


def image_fixtures():
    d = os.path.join(OUT, "images")
    os.makedirs(d, exist_ok=True)
    photo = synthetic_photo()
    photo.save(os.path.join(d, "photo.png"), optimize=False)
    photo.convert("L").save(os.path.join(d, "photo.pgm"))
    photo.convert("RGB").save(os.path.join(d, "photo.jpg"), quality=95)
    pal = photo.convert("RGB").quantize(colors=16, dither=Image.Dither.NONE)
    pal.save(os.path.join(d, "palette.png"))
    exp = {}
    for name in ("photo.png", "photo.pgm", "photo.jpg", "palette.png"):
        exp[name] = pil_expect(Image.open(os.path.join(d, name)))
    dump("images/images.json", exp)


def dump(name, obj):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(obj, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    dump("metrics.json", {"cases": metrics_cases()})
    dump("normalize.json", normalize_ref())
    dump("randperm.json", randperm_ref())
    image_fixtures()
    aug = cifar_aug_ref()
    with open(os.path.join(OUT, "cifar_aug.f32"), "wb") as f:
        f.write(aug.tobytes())
    dump("cifar_aug.json", {"seed": 7, "count": 4, "shape": list(aug.shape),
                            "formula": "(i*37 + c*61 + y*7 + x*3 + (x*y) % 11) % 256"})


if __name__ == "__main__":
    main()
