"""make_summarize_bench_models: full-size random-weight summarization models for the speed and
memory benchmark (bench/run_summarize.sh). Not committed: they are 1.2 GB and 240 MB.

    /work/venv-sum/bin/python tools/make_summarize_bench_models.py [OUT_DIR]

OUT_DIR (default $DEEPC_BENCH_MODELS or /tmp/deepc-summarize-bench) receives:
  distilbart-cnn-12-6/  bart-large-cnn's config (../shared/models/configs/bart-large-cnn.json)
                        with 12 encoder and 6 decoder layers, as sshleifer/distilbart-cnn-12-6 is;
                        its summarization settings set to distilbart-cnn-12-6's own (4 beams,
                        length_penalty 2.0, min 56, max 142, no_repeat_ngram_size 3,
                        early_stopping), plus the BART tokenizer files
  t5-small/             ../shared/models/configs/t5-small.json, plus the T5 tokenizer, with
                        t5-small's "summarize: " prefix in its summarization settings
Weights: transformers' own initialisation (seeded), saved as F32 safetensors.
"""

import json
import os
import shutil
import sys

import torch

from transformers import BartConfig, BartForConditionalGeneration, T5Config, T5ForConditionalGeneration

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "models")


def save(model, out, tokdir, tokfiles):
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for f in tokfiles:
        shutil.copy(os.path.join(SHARED, tokdir, f), os.path.join(out, f))
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters", flush=True)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DEEPC_BENCH_MODELS", "/tmp/deepc-summarize-bench")
    torch.manual_seed(0)
    with open(os.path.join(SHARED, "configs", "bart-large-cnn.json")) as f:
        cfg = json.load(f)
    cfg["encoder_layers"] = 12
    cfg["decoder_layers"] = 6
    cfg["_name_or_path"] = "distilbart-cnn-12-6 (random weights)"
    cfg["task_specific_params"] = {"summarization": {"early_stopping": True, "length_penalty": 2.0, "max_length": 142,
                                                     "min_length": 56, "no_repeat_ngram_size": 3, "num_beams": 4}}
    with torch.no_grad():
        m = BartForConditionalGeneration(BartConfig.from_dict(cfg)).eval()
    save(m, os.path.join(out, "distilbart-cnn-12-6"), "bart-tokenizer", ["vocab.json", "merges.txt"])
    del m
    with open(os.path.join(SHARED, "configs", "t5-small.json")) as f:
        cfg = json.load(f)
    cfg["task_specific_params"]["summarization"]["prefix"] = "summarize: "
    with torch.no_grad():
        m = T5ForConditionalGeneration(T5Config.from_dict(cfg)).eval()
    save(m, os.path.join(out, "t5-small"), "t5-tokenizer", ["tokenizer.json", "tokenizer_config.json"])


if __name__ == "__main__":
    main()
