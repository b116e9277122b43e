"""bench_seq2seq: seconds per training epoch of the seq2seq reversal recipe (RNN encoder,
RNNCell decoder with attention, hidden 64, 10k sequences of length 5-15, batch 32, Adam),
deepc beside PyTorch in the same run, same thread count.

    python3 bench/bench_seq2seq.py --deepc build/deepc [--epochs 2] [--threads 2]
                                   [--attention dot additive] [--json out.json]

Runs `deepc seq2seq train` and tools/seq2seq_reference.py (Debian's torch under /usr/bin/python3
with OpenBLAS, AVX-512 kernels when the CPU has them) alternately, and reports per epoch both
wall seconds and process CPU seconds (CPU time is the steadier figure on a shared machine;
with 1 thread the two agree on a quiet one). The ratio is PyTorch / deepc: > 1 means deepc is
faster.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def torch_env(threads):
    env = dict(os.environ)
    ob = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
    if os.path.isdir(ob):
        env["LD_LIBRARY_PATH"] = ob + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    with open("/proc/cpuinfo") as f:
        if "avx512f" in f.read():
            env["OPENBLAS_CORETYPE"] = "SkylakeX"
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = str(threads)
    return env


def run_deepc(deepc, attention, epochs, threads):
    out = tempfile.mkdtemp(prefix="bench_s2s_")
    try:
        env = dict(os.environ, DEEPC_NUM_THREADS=str(threads), DEEPC_PROGRESS="quiet")
        subprocess.run([deepc, "seq2seq", "train", "--attention", attention, "--epochs", str(epochs),
                        "--val-size", "32", "--out", out], check=True, env=env, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)
        h = m["history"]
        return {"seconds": [e["seconds"] for e in h], "cpu_seconds": [e["cpu_seconds"] for e in h]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_torch(attention, epochs, threads):
    p = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "seq2seq_reference.py"), "bench",
                        "--attention", attention, "--epochs", str(epochs), "--threads", str(threads)],
                       check=True, env=torch_env(threads), capture_output=True, text=True)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    h = r["history"]
    return {"seconds": [e["seconds"] for e in h], "cpu_seconds": [e["cpu_seconds"] for e in h]}


def best(xs):
    return min(xs)  # the least disturbed epoch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deepc", default=os.path.join(ROOT, "build", "deepc"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attention", nargs="+", default=["dot", "additive"])
    ap.add_argument("--json")
    a = ap.parse_args()
    rows = []
    print(f"seq2seq reversal, hidden 64, 10k sequences, batch 32, {a.threads} thread(s), best of {a.epochs} epochs")
    print(f"{'attention':<10} {'deepc s/epoch':>14} {'torch s/epoch':>14} {'ratio':>7}   "
          f"{'deepc cpu-s':>11} {'torch cpu-s':>11} {'ratio':>7}")
    for att in a.attention:
        d = run_deepc(a.deepc, att, a.epochs, a.threads)
        t = run_torch(att, a.epochs, a.threads)
        r = {"attention": att, "deepc": d, "torch": t,
             "wall_ratio": best(t["seconds"]) / best(d["seconds"]),
             "cpu_ratio": best(t["cpu_seconds"]) / best(d["cpu_seconds"])}
        rows.append(r)
        print(f"{att:<10} {best(d['seconds']):>14.3f} {best(t['seconds']):>14.3f} {r['wall_ratio']:>6.2f}x   "
              f"{best(d['cpu_seconds']):>11.3f} {best(t['cpu_seconds']):>11.3f} {r['cpu_ratio']:>6.2f}x")
        sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
