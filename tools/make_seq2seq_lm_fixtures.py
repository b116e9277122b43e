"""make_seq2seq_lm_fixtures: small random-weight BART and T5 models and transformers' outputs
for deepc's summarization tests (tests/test_summarize.c, tests/cli/summarize.sh).

Run with transformers (a venv made with --system-site-packages off /usr/bin/python3 so that
Debian's torch is visible, plus `pip install transformers safetensors sentencepiece`):

    /work/venv-sum/bin/python tools/make_seq2seq_lm_fixtures.py

Writes tests/fixtures/summarize/:
  <variant>/config.json, generation_config.json, model.safetensors   (HF model folders)
  <variant>_ref.safetensors   src/tgt ids, encoder outputs, teacher-forced decoder logits,
                              generate() ids for greedy and beam cases (settings in metadata)
Variants (vocab 96, so the folders stay a few tens of KB):
  bart         layernorm_embedding on, scale_embedding off (bart-large-cnn / distilbart style)
  bart_scale   scale_embedding on, layernorm_embedding off (nn.Identity: no weights stored)
  t5           v1.0 (t5-small style): ReLU FFN, tied head scaled by d_model^-0.5
  t5_v11       v1.1 / Flan-T5: gated-GELU FFN (gelu_new), untied lm_head; inner dim != d_model
and two "CLI" models with the real vocabularies (BART 50265, T5 32128; d_model 4, weights
stored in BF16) with the transformers summarization pipeline's output for a fixed text:
  bart_cli/, t5_cli/ (no tokenizer files: the CLI test links ../shared/models' tokenizers in).
"""

import json
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import FIXTURES, save_case  # noqa: E402

import transformers  # noqa: E402
from transformers import (BartConfig, BartForConditionalGeneration, T5Config,  # noqa: E402
                          T5ForConditionalGeneration)

OUT = os.path.join(FIXTURES, "summarize")
SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "models")
torch.set_grad_enabled(False)


def bart_model(scale_embedding, layernorm_embedding, vocab=96, d=16, heads=4, ffn=32, layers=(2, 2),
               max_pos=64, init_std=0.3, seed=0, eos_boost=4.0):
    torch.manual_seed(seed)
    cfg = BartConfig(vocab_size=vocab, d_model=d, encoder_layers=layers[0], decoder_layers=layers[1],
                     encoder_attention_heads=heads, decoder_attention_heads=heads, encoder_ffn_dim=ffn,
                     decoder_ffn_dim=ffn, max_position_embeddings=max_pos, scale_embedding=scale_embedding,
                     init_std=init_std, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                     bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
                     forced_bos_token_id=0, forced_eos_token_id=2)
    m = BartForConditionalGeneration(cfg).eval()
    # random (not default-initialised) layer norms and biases, so that every parameter matters
    for name, p in m.named_parameters():
        if "layer_norm" in name or "layernorm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn_like(p))
    m.final_logits_bias.copy_(0.5 * torch.randn_like(m.final_logits_bias))
    m.final_logits_bias[0, 2] += eos_boost  # make </s> likely enough that beams finish at different steps
    if not layernorm_embedding:
        m.model.encoder.layernorm_embedding = nn.Identity()
        m.model.decoder.layernorm_embedding = nn.Identity()
    return m


def t5_model(v11, vocab=96, d=16, d_kv=6, heads=3, d_ff=32, layers=(2, 2), buckets=8, max_dist=16, seed=0, eos_scale=3.0):
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=vocab, d_model=d, d_kv=d_kv, num_heads=heads, d_ff=d_ff, num_layers=layers[0],
                   num_decoder_layers=layers[1], relative_attention_num_buckets=buckets,
                   relative_attention_max_distance=max_dist, dropout_rate=0.0,
                   feed_forward_proj="gated-gelu" if v11 else "relu", tie_word_embeddings=not v11,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    m = T5ForConditionalGeneration(cfg).eval()
    for name, p in m.named_parameters():
        if "layer_norm" in name:
            p.copy_(1.0 + 0.2 * torch.randn_like(p))
    # make </s> likely enough that beams finish at different steps
    m.lm_head.weight[1] *= eos_scale
    return m


def gen(m, src, **kw):
    out = m.generate(input_ids=src[None], **kw)
    return out[0]


GEN_CASES = [
    # name, settings (all explicit, so the model's own defaults do not leak in)
    ("greedy", dict(num_beams=1, do_sample=False, max_length=20, min_length=0, no_repeat_ngram_size=0)),
    ("greedy_min", dict(num_beams=1, do_sample=False, max_length=16, min_length=8, no_repeat_ngram_size=3)),
    ("beam4", dict(num_beams=4, do_sample=False, length_penalty=2.0, no_repeat_ngram_size=3, min_length=6,
                   max_length=24, early_stopping=True)),
    ("beam4_noearly", dict(num_beams=4, do_sample=False, length_penalty=2.0, no_repeat_ngram_size=3,
                           min_length=4, max_length=20, early_stopping=False)),
    ("beam3_new", dict(num_beams=3, do_sample=False, length_penalty=0.5, no_repeat_ngram_size=2,
                       min_new_tokens=3, max_new_tokens=12, early_stopping=False)),
]


def make_variant(name, m, eos, vocab, start):
    folder = os.path.join(OUT, name)
    m.save_pretrained(folder, safe_serialization=True)
    g = torch.Generator().manual_seed(123)
    tensors, meta = {}, {"variant": name, "transformers": transformers.__version__}
    pairs = [(13, 7), (29, 11)]  # (source length, target length): 29 > max_distance reaches far buckets
    for i, (ls, lt) in enumerate(pairs):
        src = torch.randint(3, vocab, (ls,), generator=g)
        src[-1] = eos
        tgt = torch.randint(3, vocab, (lt,), generator=g)
        dec_in = torch.cat([torch.tensor([start]), tgt])
        enc = m.get_encoder()(input_ids=src[None]).last_hidden_state[0]
        logits = m(input_ids=src[None], decoder_input_ids=dec_in[None]).logits[0]
        tensors[f"src{i}"] = src
        tensors[f"dec_in{i}"] = dec_in
        tensors[f"enc{i}"] = enc.contiguous()
        tensors[f"logits{i}"] = logits.contiguous()
        for cname, kw in GEN_CASES:
            ids = gen(m, src, **kw)
            tensors[f"gen{i}.{cname}"] = ids
            print(f"{name} src{i} {cname}: {ids.tolist()}")
    for cname, kw in GEN_CASES:
        for k, v in kw.items():
            meta[f"{cname}.{k}"] = v if not isinstance(v, bool) else int(v)
    meta["cases"] = ",".join(c for c, _ in GEN_CASES)
    meta["pairs"] = len(pairs)
    save_case(f"summarize/{name}_ref", tensors, meta=meta)


def round_bf16_(m):
    for p in m.parameters():
        p.copy_(p.to(torch.bfloat16).float())
    for b in m.buffers():
        if b.dtype == torch.float32:
            b.copy_(b.to(torch.bfloat16).float())


CLI_TEXT = ("The tower is 324 metres tall, about the same height as an 81-storey building, and the tallest "
            "structure in Paris. Its base is square, measuring 125 metres on each side.")


def make_cli(name, m, tok, summ):
    round_bf16_(m)
    m.config.task_specific_params = {"summarization": summ}
    folder = os.path.join(OUT, name)
    m.save_pretrained(folder, safe_serialization=True)
    # store the weights in BF16 (the loader converts), the reference ran on the same values
    from safetensors.torch import load_file, save_file
    sd = load_file(os.path.join(folder, "model.safetensors"))
    save_file({k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in sd.items()},
              os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    pipe = transformers.pipeline("summarization", model=m, tokenizer=tok, framework="pt")
    text = pipe(CLI_TEXT)[0]["summary_text"]
    with open(os.path.join(OUT, f"{name}_expected.txt"), "w") as f:
        f.write(text + "\n")
    print(f"{name}: {text!r}")


def main():
    os.makedirs(OUT, exist_ok=True)
    make_variant("bart", bart_model(False, True), eos=2, vocab=96, start=2)
    make_variant("bart_scale", bart_model(True, False, seed=1), eos=2, vocab=96, start=2)
    make_variant("t5", t5_model(False), eos=1, vocab=96, start=0)
    make_variant("t5_v11", t5_model(True, seed=2), eos=1, vocab=96, start=0)
    with open(os.path.join(OUT, "cli_text.txt"), "w") as f:
        f.write(CLI_TEXT + "\n")
    btok = transformers.BartTokenizerFast(vocab_file=os.path.join(SHARED, "bart-tokenizer", "vocab.json"),
                                          merges_file=os.path.join(SHARED, "bart-tokenizer", "merges.txt"))
    bart = bart_model(False, True, vocab=50265, d=4, heads=2, ffn=8, layers=(1, 1), max_pos=128, init_std=1.0,
                      seed=3, eos_boost=0.0)
    bart.config.prefix = " "
    make_cli("bart_cli", bart,
             btok, dict(num_beams=2, length_penalty=2.0, max_length=12, min_length=4, no_repeat_ngram_size=3,
                        early_stopping=True))
    ttok = transformers.T5TokenizerFast(tokenizer_file=os.path.join(SHARED, "t5-tokenizer", "tokenizer.json"))
    t5 = t5_model(False, vocab=32128, d=4, d_kv=2, heads=2, d_ff=8, layers=(1, 1), buckets=32, max_dist=128,
                  seed=4, eos_scale=1.0)
    make_cli("t5_cli", t5, ttok, dict(num_beams=2, length_penalty=2.0, max_length=10, min_length=3,
                                      no_repeat_ngram_size=3, early_stopping=True, prefix="summarize: "))


if __name__ == "__main__":
    main()
