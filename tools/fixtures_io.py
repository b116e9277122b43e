"""fixtures_io.py: fixtures for tests/test_safetensors.c and the fuzzer's seed corpus.

    /usr/bin/python3 tools/fixtures_io.py

Writes
  tests/fixtures/io/torch_dtypes.safetensors   every deepc dtype from PyTorch (fixturelib),
                                               values the C test recomputes
  tests/fixtures/io/unaligned.safetensors      valid, but the header is not padded, so data
                                               is misaligned (deepc must copy, not crash)
  tests/fixtures/io/f64.safetensors            valid safetensors with an F64 tensor
                                               (deepc: DC_ERR_UNSUPPORTED)
  tests/fixtures/safetensors_bad/*.safetensors malformed files: each must fail to open with
                                               DC_ERR_FORMAT (or DC_ERR_IO) naming the file
  tests/fuzz_corpus/safetensors/*              small valid seeds for fuzz/fuzz_safetensors.c
"""

import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from fixturelib import ROOT, save_case, serialize, write_file  # noqa: E402

BAD = os.path.join(ROOT, "tests", "fixtures", "safetensors_bad")
CORPUS = os.path.join(ROOT, "tests", "fuzz_corpus", "safetensors")
IO = os.path.join(ROOT, "tests", "fixtures", "io")


def torch_dtypes():
    """Values are simple formulas of the row-major index i so the C test can recompute them."""
    i24 = torch.arange(24)
    t = {
        "f32": (i24.float() * 0.5 - 3.0).reshape(2, 3, 4),
        "f16": (i24.float() * 0.25 - 2.0).half().reshape(4, 6),
        "bf16": (i24.float() * 2.0 - 7.0).bfloat16().reshape(24),
        "i64": (torch.arange(6) - 3) * 1000000000000,
        "i32": (torch.arange(6, dtype=torch.int32) * 7 - 20).reshape(3, 2),
        "u8": torch.arange(0, 256, 17, dtype=torch.uint8),
        "bool": torch.arange(5) % 2 == 0,
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        # non-contiguous in PyTorch: written row-major as [[0, 4, 8], [1, 5, 9], ...]
        "transposed": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),
    }
    save_case("io/torch_dtypes", t, meta={"format": "pt", "epoch": 3, "lr": 0.001, "flag": True})


def header_blob(header, data=b"", pad=True, hlen=None):
    """A file image with a given header (dict, or raw bytes) and data area."""
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    n = len(h) if hlen is None else hlen
    return struct.pack("<Q", n) + h + data


def ent(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


def bad_files():
    good = serialize({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                      "b": torch.arange(4, dtype=torch.int64)}, {"k": "v"})
    d16 = bytes(16)
    d24 = bytes(24)
    cases = {
        "empty": b"",
        "short_4_bytes": b"\x10\x00\x00\x00",
        "header_len_zero": struct.pack("<Q", 0),
        "header_len_past_end": header_blob({"a": ent("F32", [2], 0, 8)}, bytes(8), hlen=1000),
        "header_len_huge": struct.pack("<Q", 0xFFFFFFFFFFFFFFF0) + b"{}      ",
        "header_len_200mb": struct.pack("<Q", 200_000_000) + b"{}      ",
        "truncated_header": good[: 8 + 20],
        "truncated_data": good[:-5],
        "bad_json": header_blob(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', bytes(8)),
        "bad_json_bare_word": header_blob(b"{nonsense}", b""),
        "trailing_garbage": header_blob(json.dumps({"a": ent("F32", [2], 0, 8)}).encode() + b"xyz", bytes(8)),
        "nul_padding": header_blob(json.dumps({"a": ent("F32", [2], 0, 8)}).encode() + b"\0\0\0", bytes(8),
                                   pad=False),
        "header_array": header_blob(b"[1, 2, 3]"),
        "header_string": header_blob(b'"hello"'),
        "header_null": header_blob(b"null"),
        "offsets_out_of_range": header_blob({"a": ent("F32", [4], 0, 16)}, bytes(8)),
        "offsets_reversed": header_blob({"a": ent("F32", [2], 8, 0)}, d16),
        "offsets_negative": header_blob({"a": ent("F32", [2], -8, 0)}, d16),
        "offsets_huge": header_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": [1e300, 1e300]}}, d16),
        "offsets_fractional": header_blob({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0.5, 2.5]}}, d16),
        "offsets_not_pair": header_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0]}}, d16),
        "offsets_triple": header_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 16]}}, d16),
        "offsets_strings": header_blob({"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}, d16),
        "overlapping": header_blob({"a": ent("F32", [4], 0, 16), "b": ent("F32", [4], 8, 24)}, d24),
        "overlapping_reordered": header_blob({"b": ent("F32", [2], 8, 16), "a": ent("F32", [3], 0, 12)}, d16),
        "overlapping_identical": header_blob({"a": ent("F32", [2], 0, 8), "b": ent("F32", [2], 0, 8)}, d16),
        "unknown_dtype": header_blob({"a": ent("F33", [2], 0, 8)}, bytes(8)),
        "dtype_lowercase": header_blob({"a": ent("f32", [2], 0, 8)}, bytes(8)),
        "dtype_not_string": header_blob({"a": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
        "missing_dtype": header_blob({"a": {"shape": [2], "data_offsets": [0, 8]}}, bytes(8)),
        "missing_shape": header_blob({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, bytes(8)),
        "missing_offsets": header_blob({"a": {"dtype": "F32", "shape": [2]}}, bytes(8)),
        "shape_not_array": header_blob({"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, bytes(8)),
        "size_mismatch": header_blob({"a": ent("F32", [2, 3], 0, 20)}, d24),
        "size_mismatch_dtype": header_blob({"a": ent("F16", [4], 0, 16)}, d16),
        "negative_dim": header_blob({"a": ent("F32", [-1, 4], 0, 16)}, d16),
        "fractional_dim": header_blob({"a": ent("U8", [1.5], 0, 2)}, d16),
        "string_dim": header_blob({"a": ent("F32", ["2"], 0, 8)}, d16),
        "too_many_dims": header_blob({"a": ent("U8", [1] * 9, 0, 1)}, d16),
        "shape_overflow": header_blob({"a": ent("F32", [1 << 40, 1 << 40, 0], 0, 0)}, d16),
        "shape_overflow_nonzero": header_blob({"a": ent("U8", [1 << 31, 1 << 31, 1 << 31], 0, 8)}, d16),
        "entry_not_object": header_blob({"a": 5}, d16),
        "duplicate_names": header_blob(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                                       b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}', d16),
        "metadata_not_object": header_blob({"__metadata__": [1], "a": ent("F32", [2], 0, 8)}, bytes(8)),
        "metadata_value_number": header_blob({"__metadata__": {"epoch": 3}, "a": ent("F32", [2], 0, 8)}, bytes(8)),
        "metadata_twice": header_blob(b'{"__metadata__": {}, "__metadata__": {}}'),
    }
    if os.path.isdir(BAD):
        shutil.rmtree(BAD)
    os.makedirs(BAD)
    for name, blob in sorted(cases.items()):
        with open(os.path.join(BAD, name + ".safetensors"), "wb") as f:
            f.write(blob)
    return len(cases)


def special_valid():
    # Unpadded 5-byte-odd header: every tensor's data is misaligned relative to the mapping.
    h = {"a": ent("F32", [3], 0, 12), "b": ent("I64", [2], 12, 28), "c": ent("F16", [1], 28, 30)}
    data = struct.pack("<3f", 1.5, -2.0, 3.25) + struct.pack("<2q", -7, 1 << 40) + struct.pack("<e", 0.5)
    hb = json.dumps(h).encode()
    hb += b" " * ((5 - len(hb)) % 8)  # len(hb) % 8 == 5: the data area starts at 8 + 8k + 5
    assert (8 + len(hb)) % 8 == 5
    blob = struct.pack("<Q", len(hb)) + hb + data
    with open(os.path.join(IO, "unaligned.safetensors"), "wb") as f:
        f.write(blob)
    with open(os.path.join(IO, "f64.safetensors"), "wb") as f:
        f.write(header_blob({"x": ent("F64", [2], 0, 16)}, struct.pack("<2d", 1.0, 2.0)))
    return blob


def corpus(unaligned):
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    os.makedirs(CORPUS)
    small = {
        "all_dtypes": {"f": torch.arange(4, dtype=torch.float32).reshape(2, 2),
                       "h": torch.arange(3, dtype=torch.float16), "b": torch.ones(2, dtype=torch.bfloat16),
                       "l": torch.arange(2), "i": torch.arange(2, dtype=torch.int32),
                       "u": torch.arange(3, dtype=torch.uint8), "m": torch.tensor([True, False])},
        "scalar_and_empty": {"s": torch.tensor(1.0), "e": torch.zeros(0, 2)},
        "one_f32": {"w": torch.tensor([[0.5, -1.0, 2.0]])},
    }
    for name, ts in small.items():
        write_file(os.path.join(CORPUS, name + ".safetensors"), ts, {"note": name} if name == "one_f32" else None)
    with open(os.path.join(CORPUS, "empty_header.safetensors"), "wb") as f:
        f.write(header_blob({}))
    with open(os.path.join(CORPUS, "metadata_only.safetensors"), "wb") as f:
        f.write(header_blob({"__metadata__": {"a": "1", "b": "x"}}))
    with open(os.path.join(CORPUS, "unaligned.safetensors"), "wb") as f:
        f.write(unaligned)


def main():
    os.makedirs(IO, exist_ok=True)
    torch_dtypes()
    unaligned = special_valid()
    n = bad_files()
    corpus(unaligned)
    print(f"fixtures_io: io fixtures, {n} malformed files, fuzz seeds written")


if __name__ == "__main__":
    main()
