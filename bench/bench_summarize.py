"""bench_summarize: deepc vs transformers (PyTorch) summarizing a 500-token article with each
model's default beam settings (the summarization pipeline's), 2 threads, in the same run.

    python bench/bench_summarize.py --deepc build/deepc --models /tmp/deepc-summarize-bench

Needs a Python with transformers that sees Debian's torch (see bench/run_summarize.sh) and the
random-weight models of tools/make_summarize_bench_models.py. Each side runs in its own process
(so its peak RSS, ru_maxrss from wait4, is its own); the summarization time is measured inside
each process around the summarize call only (tokenize + generate + decode, after loading), as
wall and as process CPU seconds (on a shared machine wall time mostly measures the neighbours;
compare CPU seconds there), and the whole process's wall time is reported too. PyTorch is run as the baselines say:
OpenBLAS-OpenMP with its AVX-512 kernels where the CPU has them, torch.set_num_threads(N), one interop thread, and
one warm-up generate() of 2 tokens before the timed call. Prints a table and writes
bench/results/summarize.json (or --out).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

# A public-domain article (the U.S. Declaration of Independence, 1776), cut to 500 tokens of
# each model's tokenizer.
ARTICLE = (
    "When in the Course of human events, it becomes necessary for one people to dissolve the political bands "
    "which have connected them with another, and to assume among the powers of the earth, the separate and equal "
    "station to which the Laws of Nature and of Nature's God entitle them, a decent respect to the opinions of "
    "mankind requires that they should declare the causes which impel them to the separation. We hold these "
    "truths to be self-evident, that all men are created equal, that they are endowed by their Creator with "
    "certain unalienable Rights, that among these are Life, Liberty and the pursuit of Happiness. That to secure "
    "these rights, Governments are instituted among Men, deriving their just powers from the consent of the "
    "governed, That whenever any Form of Government becomes destructive of these ends, it is the Right of the "
    "People to alter or to abolish it, and to institute new Government, laying its foundation on such principles "
    "and organizing its powers in such form, as to them shall seem most likely to effect their Safety and "
    "Happiness. Prudence, indeed, will dictate that Governments long established should not be changed for light "
    "and transient causes; and accordingly all experience hath shewn, that mankind are more disposed to suffer, "
    "while evils are sufferable, than to right themselves by abolishing the forms to which they are accustomed. "
    "But when a long train of abuses and usurpations, pursuing invariably the same Object evinces a design to "
    "reduce them under absolute Despotism, it is their right, it is their duty, to throw off such Government, and "
    "to provide new Guards for their future security. Such has been the patient sufferance of these Colonies; and "
    "such is now the necessity which constrains them to alter their former Systems of Government. The history of "
    "the present King of Great Britain is a history of repeated injuries and usurpations, all having in direct "
    "object the establishment of an absolute Tyranny over these States. To prove this, let Facts be submitted to "
    "a candid world. He has refused his Assent to Laws, the most wholesome and necessary for the public good. He "
    "has forbidden his Governors to pass Laws of immediate and pressing importance, unless suspended in their "
    "operation till his Assent should be obtained; and when so suspended, he has utterly neglected to attend to "
    "them. He has refused to pass other Laws for the accommodation of large districts of people, unless those "
    "people would relinquish the right of Representation in the Legislature, a right inestimable to them and "
    "formidable to tyrants only. He has called together legislative bodies at places unusual, uncomfortable, and "
    "distant from the depository of their public Records, for the sole purpose of fatiguing them into compliance "
    "with his measures. He has dissolved Representative Houses repeatedly, for opposing with manly firmness his "
    "invasions on the rights of the people. He has refused for a long time, after such dissolutions, to cause "
    "others to be elected; whereby the Legislative powers, incapable of Annihilation, have returned to the People "
    "at large for their exercise; the State remaining in the mean time exposed to all the dangers of invasion from "
    "without, and convulsions within. He has endeavoured to prevent the population of these States; for that "
    "purpose obstructing the Laws for Naturalization of Foreigners; refusing to pass others to encourage their "
    "migrations hither, and raising the conditions of new Appropriations of Lands. He has obstructed the "
    "Administration of Justice, by refusing his Assent to Laws for establishing Judiciary powers. He has made "
    "Judges dependent on his Will alone, for the tenure of their offices, and the amount and payment of their "
    "salaries. He has erected a multitude of New Offices, and sent hither swarms of Officers to harrass our people, "
    "and eat out their substance."
)

TORCH_CHILD = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3])); torch.set_num_interop_threads(1)
import transformers
transformers.logging.set_verbosity_error()
t0 = time.time()
model_dir, article = sys.argv[1], open(sys.argv[2]).read()
pipe = transformers.pipeline("summarization", model=model_dir, tokenizer=model_dir, framework="pt", device=-1)
load = time.time() - t0
with torch.no_grad():
    pipe("Warm up.", max_length=3, min_length=0)   # lazy initialisation out of the timed call
    t1, c1 = time.time(), time.process_time()
    out = pipe(article, return_tensors=True)[0]["summary_token_ids"]
    secs, cpu = time.time() - t1, time.process_time() - c1
text = pipe.tokenizer.decode(out, skip_special_tokens=True, clean_up_tokenization_spaces=False)
print(json.dumps({"summary": text, "seconds": secs, "cpu_seconds": cpu, "load_seconds": load, "tokens": len(out)}))
"""


def run(cmd, env):
    """Runs cmd; returns (stdout, wall seconds, peak RSS in MB)."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.time() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        sys.exit(f"bench_summarize: {' '.join(cmd)} failed (exit status {rc}):\n{err.decode(errors='replace')[-3000:]}")
    return out.decode(), wall, ru.ru_maxrss / 1024.0


def cut_article(model_dir, n_tokens):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(ARTICLE, add_special_tokens=False)["input_ids"][:n_tokens]
    return tok.decode(ids, clean_up_tokenization_spaces=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deepc", required=True)
    ap.add_argument("--models", default=os.environ.get("DEEPC_BENCH_MODELS", "/tmp/deepc-summarize-bench"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--only", default="distilbart-cnn-12-6,t5-small")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "summarize.json"))
    a = ap.parse_args()
    n = str(a.threads)
    env = dict(os.environ, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n, DEEPC_NUM_THREADS=n,
               DEEPC_PROGRESS="quiet", TOKENIZERS_PARALLELISM="false")
    # the AVX-512 kernels only where the CPU has AVX-512 (elsewhere they would die of SIGILL)
    if "avx512f" in open("/proc/cpuinfo").read():
        env.setdefault("OPENBLAS_CORETYPE", "SkylakeX")
    tenv = dict(env, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only.split(","):
            mdir = os.path.join(a.models, name)
            art = os.path.join(tmp, f"{name}.txt")
            with open(art, "w") as f:
                f.write(cut_article(mdir, a.tokens))
            out, d_wall, d_rss = run([a.deepc, "summarize", "--model", mdir, "--json", art], env)
            d = json.loads(out)
            out, t_wall, t_rss = run([sys.executable, "-c", TORCH_CHILD, mdir, art, n], tenv)
            t = json.loads(out)
            r = {"model": name, "threads": a.threads, "article_tokens": a.tokens,
                 "deepc_seconds": d["seconds"], "torch_seconds": t["seconds"],
                 "deepc_process_seconds": d_wall, "torch_process_seconds": t_wall,
                 "deepc_peak_rss_mb": d_rss, "torch_peak_rss_mb": t_rss,
                 "deepc_cpu_seconds": d["cpu_seconds"], "torch_cpu_seconds": t["cpu_seconds"],
                 "speedup": t["seconds"] / d["seconds"], "cpu_speedup": t["cpu_seconds"] / d["cpu_seconds"],
                 "rss_ratio": d_rss / t_rss,
                 "deepc_tokens": d["tokens"], "same_summary": d["summary"] == t["summary"]}
            results.append(r)
            print(f"{name:22s} summarize: deepc {d['seconds']:7.2f} s  torch {t['seconds']:7.2f} s  "
                  f"-> {r['speedup']:.2f}x faster (CPU seconds {d['cpu_seconds']:.1f} vs {t['cpu_seconds']:.1f}: "
                  f"{r['cpu_speedup']:.2f}x) | process: deepc {d_wall:6.2f} s torch {t_wall:6.2f} s | "
                  f"peak RSS: deepc {d_rss:7.0f} MB torch {t_rss:7.0f} MB -> {r['rss_ratio']:.2f}x | "
                  f"same summary: {r['same_summary']}", flush=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
