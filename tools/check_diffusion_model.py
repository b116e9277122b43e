#!/usr/bin/env python3
"""check_diffusion_model.py: does deepc's own diffusion model (the folder `deepc diffusion train`
writes) load in diffusers, and what does diffusers compute with it?

    /work/venv-sd/bin/python tools/check_diffusion_model.py [MODEL_DIR] [--out FILE]

MODEL_DIR (default models/fashion-ddpm) must load with diffusers.UNet2DModel.from_pretrained
with no missing, unexpected or mis-shaped weights (else this exits 1 naming them). Then one
forward on a fixed seeded input (batch 2, timesteps [10, 700], class labels [3, 10]: a real class
and the null class used for classifier-free guidance) is written with its inputs to
tests/fixtures/sd/own_model_forward.safetensors, which tests/test_sd_own_model.c compares deepc's
forward with (1e-4 relative). The fixture's metadata holds the sha256 of the weights file, so
the C test tells a stale fixture (the model was retrained) from a numerical difference: after
retraining, run this again and commit the new fixture with the model.

Runs with diffusers 0.27 beside Debian's torch 1.13 (the venv of tools/make_sd_fixtures.py,
created with --system-site-packages); the fixture is written by tools/fixturelib.py (no
safetensors package needed for that part).
"""
import argparse
import hashlib
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixturelib import write_file  # noqa: E402

ROOT = os.path.dirname(HERE)
DEFAULT_OUT = os.path.join(ROOT, "tests", "fixtures", "sd", "own_model_forward.safetensors")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", default=os.path.join(ROOT, "models", "fashion-ddpm"))
    ap.add_argument("--out", default=DEFAULT_OUT, help="fixture to write (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)

    from diffusers import UNet2DModel  # late: --help works without diffusers

    weights = os.path.join(args.model_dir, "diffusion_pytorch_model.safetensors")
    if not os.path.isfile(weights):
        sys.exit(f"check_diffusion_model: {weights}: not found (a `deepc diffusion train --out DIR` folder is needed)")
    model, info = UNet2DModel.from_pretrained(args.model_dir, output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit(f"check_diffusion_model: {args.model_dir} does not load cleanly in diffusers: {problems}")
    model.eval()
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{args.model_dir}: UNet2DModel loads in diffusers with no missing/unexpected keys "
          f"({n_params} parameters, {len(model.state_dict())} tensors, sample {cfg.sample_size}x{cfg.sample_size}x"
          f"{cfg.in_channels}, {cfg.num_class_embeds} class embeddings)")

    deepc_json = os.path.join(args.model_dir, "deepc.json")
    names = json.load(open(deepc_json)).get("class_names", []) if os.path.isfile(deepc_json) else []
    null_class = len(names) if names else (cfg.num_class_embeds or 1) - 1

    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(2, cfg.in_channels, cfg.sample_size, cfg.sample_size, generator=g)
    t = torch.tensor([10, 700], dtype=torch.int64)
    labels = torch.tensor([3, null_class], dtype=torch.int64) if cfg.num_class_embeds else None
    with torch.no_grad():
        out = model(x, t, class_labels=labels).sample
    tensors = {"x": x, "timesteps": t.float(), "out": out}
    if labels is not None:
        tensors["class_labels"] = labels
    meta = {"weights_sha256": sha256(weights), "model_dir": os.path.relpath(os.path.abspath(args.model_dir), ROOT),
            "seed": args.seed, "diffusers": __import__("diffusers").__version__, "torch": torch.__version__}
    write_file(args.out, tensors, meta)
    print(f"wrote {os.path.relpath(args.out, ROOT)}: x {list(x.shape)}, timesteps {t.tolist()}, class_labels "
          f"{labels.tolist() if labels is not None else None}, out {list(out.shape)} "
          f"(max |out| {out.abs().max().item():.4g}; weights sha256 {meta['weights_sha256'][:12]}...)")


if __name__ == "__main__":
    main()
