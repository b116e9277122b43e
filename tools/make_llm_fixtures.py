#!/usr/bin/env python3
"""make_llm_fixtures.py: small random-weight GPT-2 and Llama model folders and transformers'
reference outputs for tests/test_llm.c.

Writes, under tests/fixtures/llm/:
  gpt2_tiny/         GPT2LMHeadModel, F32, 2 layers, 32 wide, a 300-token byte-level BPE
                     (vocab.json + merges.txt trained here on a few sentences)
  llama_gqa/         LlamaForCausalLM, F32, 4 heads / 2 KV heads (GQA), untied lm_head,
                     rope_theta 500000, the stories260K SentencePiece tokenizer (vocab 512)
  llama_bf16/        LlamaForCausalLM saved in BF16, tied head, MHA, sharded in 3 files with
                     model.safetensors.index.json
  <name>_ref.safetensors: for each prompt i, "ids.i" (the prompt), "logits.i" (all positions,
                     transformers in float32), "greedy.i" (generate(), greedy, 24 new tokens),
                     and generate() variants on prompt 0: "rep.0" (repetition_penalty 1.5),
                     "eos.0" (eos = the 6th greedy token), "mineos.0" (the same eos with
                     min_new_tokens 10), "greedy_nocache.0" (use_cache=False)
  sampling.safetensors: HF's logits processors (repetition penalty, temperature, top-k,
                     top-p) applied to random logits, softmaxed, for several settings
  stories260K.safetensors: ../shared/models/stories260K/hf (the real TinyStories model):
                     the logits after "Once upon a time" and the greedy 200-token continuation

Run with transformers in a venv that sees Debian's torch:
    /usr/bin/python3 -m venv --system-site-packages /tmp/venv && /tmp/venv/bin/pip install \
        transformers==4.45.2 safetensors sentencepiece
    /tmp/venv/bin/python tools/make_llm_fixtures.py
"""
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_case  # noqa: E402

from transformers import (GPT2Config, GPT2LMHeadModel, GPT2Tokenizer, LlamaConfig,  # noqa: E402
                          LlamaForCausalLM, LlamaTokenizer)
from transformers.generation.logits_process import (  # noqa: E402
    RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "llm")
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "models")
SP_MODEL = os.path.join(SHARED, "stories260K", "hf", "tokenizer.model")
NEW = 24


def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def make_bpe(folder, n_merges=43):
    """A byte-level BPE with 256 byte tokens + n_merges merges learnt on a few sentences +
    <|endoftext|> (300 ids)."""
    import re
    text = ("The quick brown fox jumps over the lazy dog. Hello world! The cat sat on the mat. "
            "Once upon a time there was a little girl who loved the sea and the sun. ") * 3
    b2u = bytes_to_unicode()
    pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+""")
    words = [[b2u[b] for b in w.encode()] for w in pat.findall(text)]
    merges = []
    for _ in range(n_merges):
        counts = {}
        for w in words:
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(sorted(counts), key=lambda p: counts[p])
        merges.append(best)
        new_words = []
        for w in words:
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words.append(out)
        words = new_words
    vocab = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return len(vocab)


def reference(name, model, prompts):
    """Logits and generate() outputs of `model` (float32) for the prompts (lists of ids)."""
    model = model.float().eval()
    t = {}
    with torch.no_grad():
        for i, ids in enumerate(prompts):
            x = torch.tensor([ids])
            t[f"ids.{i}"] = x[0]
            t[f"logits.{i}"] = model(x).logits[0].float()
            out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=NEW,
                                 pad_token_id=0, eos_token_id=None)
            t[f"greedy.{i}"] = out[0]
        x = torch.tensor([prompts[0]])
        am = torch.ones_like(x)
        t["greedy_nocache.0"] = model.generate(x, attention_mask=am, do_sample=False, max_new_tokens=NEW,
                                               pad_token_id=0, eos_token_id=None, use_cache=False)[0]
        t["rep.0"] = model.generate(x, attention_mask=am, do_sample=False, max_new_tokens=NEW, pad_token_id=0,
                                    eos_token_id=None, repetition_penalty=1.5)[0]
        eos = int(t["greedy.0"][len(prompts[0]) + 5])
        t["eos.0"] = model.generate(x, attention_mask=am, do_sample=False, max_new_tokens=NEW, pad_token_id=0,
                                    eos_token_id=eos)[0]
        t["mineos.0"] = model.generate(x, attention_mask=am, do_sample=False, max_new_tokens=NEW, pad_token_id=0,
                                       eos_token_id=eos, min_new_tokens=10)[0]
    save_case(f"llm/{name}_ref", t, meta={"eos": eos, "n_prompts": len(prompts), "new_tokens": NEW})
    return eos


def gpt2_tiny():
    folder = os.path.join(OUT, "gpt2_tiny")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    vocab = make_bpe(folder)
    torch.manual_seed(1)
    cfg = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4, n_positions=64,
                     bos_token_id=vocab - 1, eos_token_id=vocab - 1)
    model = GPT2LMHeadModel(cfg)
    # larger weights than the 0.02 init, so logits are not all ~0 and greedy choices are clear
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.save_pretrained(folder, safe_serialization=True)
    model = GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32)
    tok = GPT2Tokenizer(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    prompts = [tok(s)["input_ids"] for s in ("Hello world", "The quick brown fox jumps", "a")]
    reference("gpt2_tiny", model, prompts)


def llama(name, gqa, untied, dtype, shard):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    shutil.copyfile(SP_MODEL, os.path.join(folder, "tokenizer.model"))
    torch.manual_seed(2 if gqa else 3)
    cfg = LlamaConfig(vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2 if gqa else 4, max_position_embeddings=128,
                      rms_norm_eps=1e-5, rope_theta=500000.0 if gqa else 10000.0, tie_word_embeddings=not untied,
                      bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.3)
    model = model.to(dtype)
    model.save_pretrained(folder, safe_serialization=True, max_shard_size="40KB" if shard else "10GB")
    tok = LlamaTokenizer(SP_MODEL)
    prompts = [tok(s)["input_ids"] for s in ("Once upon a time", "Lily", "The cat sat on the mat.")]
    # the reference is the saved folder loaded as a user would, computing in float32 (the
    # stored bf16 weights converted exactly; rotary tables made afresh in float32)
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    reference(name, model, prompts)


def sampling():
    torch.manual_seed(5)
    V = 300
    logits = torch.randn(1, V) * 3
    prev = torch.tensor([[3, 17, 17, 250, 42, 3]])
    t = {"logits": logits[0], "prev": prev[0]}
    cases = [
        ("t07_k20", 1.0, 0.7, 20, 1.0),
        ("p09", 1.0, 1.0, 0, 0.9),
        ("rep15_t13_p08", 1.5, 1.3, 0, 0.8),
        ("rep08_k5_p05", 0.8, 1.0, 5, 0.5),
        ("k50_t2", 1.0, 2.0, 50, 1.0),
    ]
    meta = {}
    for i, (name, rep, temp, k, p) in enumerate(cases):
        s = logits.clone()
        if rep != 1.0:
            s = RepetitionPenaltyLogitsProcessor(rep)(prev, s)
        if temp != 1.0:
            s = TemperatureLogitsWarper(temp)(prev, s)
        if k:
            s = TopKLogitsWarper(k)(prev, s)
        if p < 1.0:
            s = TopPLogitsWarper(p)(prev, s)
        t[f"probs.{i}"] = torch.softmax(s, -1)[0]
        meta[f"case.{i}"] = f"{rep},{temp},{k},{p}"
    meta["n_cases"] = len(cases)
    save_case("llm/sampling", t, meta=meta)


def stories():
    folder = os.path.join(SHARED, "stories260K", "hf")
    model = LlamaForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    tok = LlamaTokenizer(os.path.join(folder, "tokenizer.model"))
    ids = tok("Once upon a time")["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = model(x).logits[0]
        out = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=200,
                             min_new_tokens=200, pad_token_id=0)
    text = tok.decode(out[0][len(ids):], skip_special_tokens=True)
    save_case("llm/stories260K", {"ids": x[0], "logits": logits, "greedy": out[0]},
              meta={"text": text[:120]})
    print("stories260K:", text[:200].replace("\n", " "))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(2)
    gpt2_tiny()
    llama("llama_gqa", gqa=True, untied=True, dtype=torch.float32, shard=False)
    llama("llama_bf16", gqa=False, untied=False, dtype=torch.bfloat16, shard=True)
    sampling()
    stories()
    total = 0
    for dp, _, fs in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print(f"tests/fixtures/llm: {total / 1024:.0f} KB")


if __name__ == "__main__":
    main()
