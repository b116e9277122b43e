#!/usr/bin/env python3
"""bench_llm.py: the transformers (PyTorch) side of bench/run_llm.sh.

Greedy generation with GPT2LMHeadModel.generate() from a model folder: a prompt of P tokens
(the first P tokens of a fixed English text, repeated as needed; bench_llm.c takes the same
ids) and N new tokens (min_new_tokens = N so that EOS cannot cut it short). A stopping
criterion records the time after every step, so

    prompt processing = time from generate() to the end of the first step (the prompt's
                        forward pass and the first token), in prompt tokens per second
    new tokens        = (N - 1) tokens / time from the first step to the last

Prints one line of JSON with those figures and the process's peak RSS (ru_maxrss). Run it as
BASELINES.md says (Debian torch, OpenBLAS-openmp with its AVX-512 kernels, OMP threads = T).
"""
import argparse
import json
import resource
import time

import torch
from transformers import AutoModelForCausalLM, StoppingCriteria, StoppingCriteriaList

TEXT = ("The history of natural language processing generally started in the 1950s, although work "
        "can be found from earlier periods. In 1950, Alan Turing published an article titled "
        "Computing Machinery and Intelligence which proposed what is now called the Turing test "
        "as a criterion of intelligence. The Georgetown experiment in 1954 involved fully automatic "
        "translation of more than sixty Russian sentences into English. ")


class Clock(StoppingCriteria):
    def __init__(self):
        self.times = []

    def __call__(self, input_ids, scores, **kwargs):
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    ids = []
    while len(ids) < args.prompt_tokens:
        ids += tok(TEXT)["input_ids"]
    ids = torch.tensor([ids[: args.prompt_tokens]])
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).eval()
    best = None
    with torch.no_grad():
        for r in range(args.runs + 1):  # the first run warms up
            clock = Clock()
            t0 = time.perf_counter()
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                 pad_token_id=model.config.eos_token_id,
                                 stopping_criteria=StoppingCriteriaList([clock]))
            prompt_s = clock.times[0] - t0
            decode_s = clock.times[-1] - clock.times[0]
            res = {"prompt_tok_s": args.prompt_tokens / prompt_s,
                   "new_tok_s": (len(clock.times) - 1) / decode_s}
            if r > 0 and (best is None or res["new_tok_s"] > best["new_tok_s"]):
                best = res
                best["prompt_tok_s"] = max(best["prompt_tok_s"], res["prompt_tok_s"])
    best["new_ids"] = out[0, args.prompt_tokens:].tolist()[:16]
    best["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best["impl"] = "transformers"
    print(json.dumps(best))


if __name__ == "__main__":
    main()
