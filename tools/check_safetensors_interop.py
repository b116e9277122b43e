"""check_safetensors_interop.py: checks that deepc's safetensors files and the reference
implementation (the `safetensors` Python package) read each other's files.

    python3 -m venv --system-site-packages /tmp/st-venv        # Debian's torch + safetensors
    /tmp/st-venv/bin/pip install safetensors
    /tmp/st-venv/bin/python tools/check_safetensors_interop.py --build /work/build-X

--build is a configured and built deepc build folder (it must hold libdeepc.a). The script
compiles a small C helper against it and checks:
  1. files written by dc_safetensors_save (every dtype, a non-contiguous tensor, a 0-dim and
     an empty tensor, metadata) load with safetensors.torch.load_file / safe_open, with the
     expected values, dtypes and shapes;
  2. files written by safetensors.torch.save_file load in deepc with the same values;
  3. every fixture written by tools/fixturelib.py (tests/fixtures/**.safetensors, except the
     malformed corpus) loads with safetensors.torch.load_file;
  4. (information) which files of tests/fixtures/safetensors_bad/ the reference accepts: deepc
     refuses all of them; the reference is allowed to be more lenient in a few cases, and
     those are listed.
Exit status 0 when 1-3 pass.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HELPER_C = r"""
#include <stdio.h>
#include <string.h>
#include "deepc/core.h"
#include "deepc/io.h"

static int write_file(const char *path)
{
    float f32[6]; for (int i = 0; i < 6; i++) f32[i] = i * 0.5f - 1.0f;
    float f16s[4]; for (int i = 0; i < 4; i++) f16s[i] = i * 0.25f;
    float bf16s[3]; for (int i = 0; i < 3; i++) bf16s[i] = i * 2.0f - 1.0f;
    int64_t i64[3]; for (int i = 0; i < 3; i++) i64[i] = (i - 1) * 1000000000000LL;
    int32_t i32[4]; for (int i = 0; i < 4; i++) i32[i] = i * 3 - 5;
    uint8_t u8[5]; for (int i = 0; i < 5; i++) u8[i] = (uint8_t)(i * 50);
    uint8_t b[3] = {0, 1, 0};
    dc_tensor *tf32 = dc_from_data(DC_F32, DC_SHAPE(2, 3), f32);
    dc_tensor *tf16 = dc_to_dtype(dc_from_data(DC_F32, DC_SHAPE(4), f16s), DC_F16);
    dc_tensor *tbf16 = dc_to_dtype(dc_from_data(DC_F32, DC_SHAPE(3), bf16s), DC_BF16);
    dc_tensor *ti64 = dc_from_data(DC_I64, DC_SHAPE(3), i64);
    dc_tensor *ti32 = dc_from_data(DC_I32, DC_SHAPE(2, 2), i32);
    dc_tensor *tu8 = dc_from_data(DC_U8, DC_SHAPE(5), u8);
    dc_tensor *tb = dc_from_data(DC_BOOL, DC_SHAPE(3), b);
    dc_tensor *base = dc_arange(DC_F32, 0, 6, 1);
    /* torch.arange(6).reshape(2, 3).t(): shape [3, 2], strides [1, 3] */
    dc_tensor *tr = dc_from_external(DC_F32, 2, (int64_t[]){3, 2}, dc_data(base), NULL, NULL);
    tr->stride[0] = 1; tr->stride[1] = 3;
    dc_tensor *sc = dc_scalar(1.25f);
    dc_tensor *em = dc_zeros(DC_F32, DC_SHAPE(0, 4));
    dc_named_tensor items[] = {{"f32", tf32}, {"f16", tf16}, {"bf16", tbf16}, {"i64", ti64},
        {"i32", ti32}, {"u8", tu8}, {"bool", tb}, {"transposed", tr}, {"scalar", sc}, {"empty", em}};
    const char *meta[] = {"format", "pt", "by", "deepc", NULL};
    dc_pool_mark m = dc_pool_push(); (void)m;
    if (dc_safetensors_save(path, 10, items, meta)) { fprintf(stderr, "%s\n", dc_last_error()); return 1; }
    return 0;
}

static int dump(const char *path)
{
    dc_pool_mark m = dc_pool_push();
    dc_safetensors *st = dc_safetensors_open(path);
    if (!st) { fprintf(stderr, "%s\n", dc_last_error()); return 1; }
    printf("{\"metadata\": {");
    const char *keys[] = {"format", "by", "note"};
    int first = 1;
    for (int k = 0; k < 3; k++) {
        const char *v = dc_safetensors_metadata(st, keys[k]);
        if (v) { printf("%s\"%s\": \"%s\"", first ? "" : ", ", keys[k], v); first = 0; }
    }
    printf("}, \"tensors\": {");
    for (int i = 0; i < dc_safetensors_count(st); i++) {
        const char *name = dc_safetensors_name(st, i);
        dc_tensor *t = dc_safetensors_get(st, name);
        if (!t) { fprintf(stderr, "%s\n", dc_last_error()); return 1; }
        printf("%s\"%s\": {\"dtype\": \"%s\", \"shape\": [", i ? ", " : "", name, dc_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("], \"values\": [");
        int64_t n = dc_numel(t);
        dc_tensor *f = dc_to_dtype(t, DC_F32);
        for (int64_t j = 0; j < n; j++) {
            if (t->dtype == DC_I64) printf("%s%lld", j ? ", " : "", (long long)((int64_t *)dc_data(t))[j]);
            else printf("%s%.17g", j ? ", " : "", (double)dc_data_f32(f)[j]);
        }
        printf("]}");
    }
    printf("}}\n");
    dc_safetensors_close(st);
    dc_pool_pop(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    return strcmp(argv[1], "write") == 0 ? write_file(argv[2]) : dump(argv[2]);
}
"""


def build_helper(build, out):
    lib = os.path.join(build, "libdeepc.a")
    if not os.path.exists(lib):
        sys.exit(f"no {lib}: build deepc first (cmake --build {build})")
    src = os.path.join(os.path.dirname(out), "helper.c")
    with open(src, "w") as f:
        f.write(HELPER_C)
    pkgs = "libcjson libpcre2-8 libutf8proc zlib libpng cairo libcurl"
    libs = subprocess.check_output(["pkg-config", "--libs"] + pkgs.split(), text=True).split()
    cflags = subprocess.check_output(["pkg-config", "--cflags", "libcjson"], text=True).split()
    cmd = ["cc", "-std=c11", "-O1", "-I" + os.path.join(ROOT, "include"), *cflags, src, lib, "-fopenmp",
           *libs, "-ldl", "-lm", "-o", out]
    # a sanitizer build of the library needs the sanitizer runtimes at link time
    cache = os.path.join(build, "CMakeCache.txt")
    if os.path.exists(cache) and "DEEPC_SANITIZE:BOOL=ON" in open(cache).read():
        cmd.insert(1, "-fsanitize=address,undefined")
    subprocess.check_call(cmd)


def expected_deepc_tensors():
    return {
        "f32": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,
        "f16": (torch.arange(4, dtype=torch.float32) * 0.25).half(),
        "bf16": (torch.arange(3, dtype=torch.float32) * 2.0 - 1.0).bfloat16(),
        "i64": (torch.arange(3) - 1) * 1000000000000,
        "i32": (torch.arange(4, dtype=torch.int32) * 3 - 5).reshape(2, 2),
        "u8": torch.arange(5, dtype=torch.uint8) * 50,
        "bool": torch.tensor([False, True, False]),
        "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
        "scalar": torch.tensor(1.25),
        "empty": torch.zeros(0, 4),
    }


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def check_deepc_to_reference(helper, tmp):
    path = os.path.join(tmp, "from_deepc.safetensors")
    subprocess.check_call([helper, "write", path])
    got = load_file(path)
    want = expected_deepc_tensors()
    errors = []
    if set(got) != set(want):
        errors.append(f"names {sorted(got)} != {sorted(want)}")
    for k, w in want.items():
        if k in got and not same(got[k], w):
            errors.append(f"{k}: got {got[k].dtype} {tuple(got[k].shape)} {got[k].flatten()[:6].tolist()}, "
                          f"want {w.dtype} {tuple(w.shape)} {w.flatten()[:6].tolist()}")
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    if meta != {"format": "pt", "by": "deepc"}:
        errors.append(f"metadata {meta}")
    return errors


def check_reference_to_deepc(helper, tmp):
    path = os.path.join(tmp, "from_reference.safetensors")
    ts = {
        "w": torch.randn(3, 5, generator=torch.Generator().manual_seed(0)),
        "h": torch.linspace(-2, 2, 7).half(),
        "b": torch.linspace(-3, 3, 5).bfloat16(),
        "ids": torch.tensor([-(2 ** 62), 0, 2 ** 62 + 1]),
        "i": torch.arange(-3, 3, dtype=torch.int32).reshape(2, 3),
        "img": torch.arange(0, 255, 51, dtype=torch.uint8).reshape(1, 5),
        "mask": torch.tensor([[True, False], [False, True]]),
        "odd": torch.arange(3, dtype=torch.uint8),  # a 3-byte tensor among wider ones
        "s": torch.tensor(-0.5),
        "e": torch.zeros(2, 0),
    }
    save_file(ts, path, metadata={"format": "pt", "note": "reference"})
    out = json.loads(subprocess.check_output([helper, "dump", path], text=True))
    errors = []
    if out["metadata"] != {"format": "pt", "note": "reference"}:
        errors.append(f"metadata {out['metadata']}")
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
             torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
    for k, t in ts.items():
        d = out["tensors"].get(k)
        if d is None:
            errors.append(f"{k}: missing")
            continue
        if d["dtype"] != names[t.dtype] or d["shape"] != list(t.shape):
            errors.append(f"{k}: {d['dtype']} {d['shape']} != {names[t.dtype]} {list(t.shape)}")
            continue
        if t.dtype == torch.int64:
            want = t.flatten().tolist()
        else:
            want = t.float().flatten().tolist()
        if len(d["values"]) != len(want) or any(float(a) != float(b) for a, b in zip(d["values"], want)):
            errors.append(f"{k}: values {d['values'][:6]} != {want[:6]}")
    return errors


def check_fixturelib_files():
    errors = []
    files = [p for p in glob.glob(os.path.join(ROOT, "tests", "fixtures", "**", "*.safetensors"), recursive=True)
             if "safetensors_bad" not in p and not p.endswith("f64.safetensors")]
    for p in files:
        try:
            load_file(p)
        except Exception as e:  # noqa: BLE001 - report any refusal
            # io/unaligned is hand-made with an unpadded header; recent versions refuse it
            if p.endswith("io/unaligned.safetensors"):
                continue
            errors.append(f"{os.path.relpath(p, ROOT)}: {e}")
    return errors, len(files)


def reference_on_bad_corpus():
    accepted = []
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "safetensors_bad", "*.safetensors")))
    for p in files:
        try:
            load_file(p)
            accepted.append(os.path.basename(p))
        except Exception:  # noqa: BLE001
            pass
    return accepted, len(files)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True, help="a built deepc build folder (holds libdeepc.a)")
    args = ap.parse_args()
    import safetensors
    print(f"safetensors {safetensors.__version__}, torch {torch.__version__}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        helper = os.path.join(tmp, "helper")
        build_helper(os.path.abspath(args.build), helper)
        for title, fn in [("deepc -> safetensors.torch", check_deepc_to_reference),
                          ("safetensors.torch -> deepc", check_reference_to_deepc)]:
            errors = fn(helper, tmp)
            print(f"{title}: {'OK' if not errors else 'FAILED'}")
            for e in errors:
                print("   ", e)
            failed |= bool(errors)
    errors, n = check_fixturelib_files()
    print(f"fixturelib files read by safetensors.torch: {'OK' if not errors else 'FAILED'} ({n} files)")
    for e in errors:
        print("   ", e)
    failed |= bool(errors)
    accepted, n = reference_on_bad_corpus()
    print(f"malformed corpus: the reference refuses {n - len(accepted)} of {n} (deepc refuses all)"
          + (f"; the reference accepts: {', '.join(accepted)}" if accepted else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
