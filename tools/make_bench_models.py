#!/usr/bin/env python3
"""make_bench_models.py: full-size random-weight language models for bench/run_llm.sh.

Real GPT-2 weights cannot be had on the project's machines, so speed and memory are measured
on the real gpt2 architecture and sizes (../shared/models/configs/gpt2.json: 12 layers, 768
wide, 50257 tokens, 124M parameters) with random weights, saved with transformers'
save_pretrained (model.safetensors, F32) plus the real GPT-2 tokenizer files. Nothing made here
is committed: the default output folder is /tmp/deepc-bench-models.

    python3 -m venv --system-site-packages venv && venv/bin/pip install transformers==4.45.2 safetensors
    venv/bin/python tools/make_bench_models.py [--out DIR] [--config gpt2|distilgpt2]

Needs torch (Debian's python3-torch is seen through --system-site-packages) and transformers.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "models")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/deepc-bench-models")
    ap.add_argument("--config", default="gpt2", choices=["gpt2", "distilgpt2"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dest = os.path.join(args.out, args.config)
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(SHARED, "configs", args.config + ".json")) as f:
        cfg = json.load(f)
    torch.manual_seed(args.seed)
    config = GPT2Config(**cfg)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(dest, safe_serialization=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(os.path.join(SHARED, "gpt2-tokenizer", name), os.path.join(dest, name))
    n = sum(p.numel() for p in model.parameters())
    print(f"{dest}: {args.config} with random weights, {n / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
