#!/usr/bin/env python3
"""bench_tokenizer.py: encode throughput (MB/s, one thread) of deepc's tokenizers beside HF
tokenizers (Rust, through Python) on the same few MB of mixed text, in the same run.

    pip install tokenizers transformers
    cmake --build build --target bench_tokenizer
    python3 bench/bench_tokenizer.py --bench build/bench_tokenizer [--shared ../shared] [--mb 4]

The text: the fixture corpus (prose, code, numbers, whitespace runs, accents, CJK, Arabic,
emoji...) shuffled into lines until --mb megabytes. HF encodes it with
Tokenizer.encode_batch(lines) under RAYON_NUM_THREADS=1 (its fastest single-thread path, no
per-call Python overhead); deepc encodes line by line. Best of 3 runs each, warm caches.
"""
import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(here, "..", "build", "bench_tokenizer"))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--mb", type=float, default=4.0)
    args = ap.parse_args()
    from tokenizers import Tokenizer
    from transformers import GPT2Tokenizer

    models = os.path.join(args.shared, "models")
    corpus = [json.loads(l) for l in gzip.open(os.path.join(here, "..", "tests", "fixtures", "tokenizers", "corpus.jsonl.gz"), "rt")]
    corpus = [s.replace("\n", " ").replace("\r", " ") for s in corpus if s.strip()]
    rnd = random.Random(0)
    lines, size = [], 0
    while size < args.mb * 1e6:
        s = rnd.choice(corpus)
        lines.append(s)
        size += len(s.encode()) + 1
    tmp = tempfile.mkdtemp()
    text_path = os.path.join(tmp, "text.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    nbytes = os.path.getsize(text_path)
    gpt2_dir = os.path.join(tmp, "gpt2")
    os.makedirs(gpt2_dir)
    for n in ("vocab.json", "merges.txt"):
        with open(os.path.join(models, "gpt2-tokenizer", n), "rb") as a, open(os.path.join(gpt2_dir, n), "wb") as b:
            b.write(a.read())
    GPT2Tokenizer.from_pretrained(gpt2_dir).save_pretrained(gpt2_dir)
    cases = [("GPT-2", os.path.join(gpt2_dir, "tokenizer.json"), os.path.join(models, "gpt2-tokenizer")),
             ("T5", os.path.join(models, "t5-tokenizer", "tokenizer.json"), os.path.join(models, "t5-tokenizer", "tokenizer.json"))]
    print(f"text: {nbytes / 1e6:.2f} MB, {len(lines)} lines, one thread")
    for name, hf_path, dc_path in cases:
        tok = Tokenizer.from_file(hf_path)
        best = 1e30
        for _ in range(3):
            t = time.perf_counter()
            enc = tok.encode_batch(lines)
            best = min(best, time.perf_counter() - t)
        hf_mbs = nbytes / 1e6 / best
        ntok = sum(len(e.ids) for e in enc)
        out = subprocess.run([args.bench, dc_path, text_path, "3"], capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        dc_line = out.stdout.strip()
        dc_mbs = float(dc_line.split(" = ")[1].split()[0])
        print(f"{name}: HF tokenizers {hf_mbs:.2f} MB/s ({ntok} tokens) | {dc_line} | deepc/HF = {dc_mbs / hf_mbs:.2f}x")


if __name__ == "__main__":
    main()
