"""fixturelib: writes PyTorch reference tensors as safetensors fixtures for deepc's C tests.

    from fixturelib import save_case
    save_case("ops/conv/basic", {"x": x, "out": y, "grad.x": x.grad}, meta={"stride": 2})

writes tests/fixtures/ops/conv/basic.safetensors. The safetensors format is written by hand
(no `safetensors` package needed, so this runs under Debian's /usr/bin/python3 with its
torch 1.13):

    u64 little-endian N | N bytes of JSON header, space-padded to a multiple of 8 | data

The header maps each name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets
relative to the start of the data area) plus "__metadata__": {key: str(value)}. Tensors are
written in sorted name order with sorted JSON keys, so the same inputs give byte-identical
files (fixtures are committed; re-running a generator must not churn them).

Supported dtypes: F32 F16 BF16 I64 I32 U8 BOOL (what deepc stores). Float64 tensors are
refused rather than silently narrowed: convert explicitly with .float().
"""

import json
import os
import struct

import torch

# torch dtype -> (safetensors name, element size)
_DTYPES = {
    torch.float32: ("F32", 4),
    torch.float16: ("F16", 2),
    torch.bfloat16: ("BF16", 2),
    torch.int64: ("I64", 8),
    torch.int32: ("I32", 4),
    torch.uint8: ("U8", 1),
    torch.bool: ("BOOL", 1),
}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def _tensor_bytes(t):
    """Row-major little-endian bytes of t (detached, on CPU, contiguous)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        # numpy has no bfloat16: reinterpret the 2-byte payload as int16.
        t = t.view(torch.int16)
    # .numpy() of a contiguous CPU tensor is its row-major buffer (x86 is little-endian).
    return t.numpy().tobytes()


def serialize(tensors, meta=None):
    """The safetensors file image (bytes) of a {name: tensor} dict and optional metadata."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"fixturelib: '{name}' is {type(t).__name__}, not a torch.Tensor")
        if t.dtype not in _DTYPES:
            raise TypeError(f"fixturelib: '{name}' has dtype {t.dtype}; deepc stores "
                            f"{', '.join(str(d) for d in _DTYPES)} (use .float() for float64)")
        dname, esize = _DTYPES[t.dtype]
        data = _tensor_bytes(t)
        assert len(data) == t.numel() * esize
        header[name] = {"dtype": dname, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if meta:
        header["__metadata__"] = {str(k): str(v) for k, v in sorted(meta.items())}
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data area starts 8-byte aligned (safetensors does the same).
    hjson += b" " * (-len(hjson) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def write_file(path, tensors, meta=None):
    """Writes a safetensors file at an explicit path (atomically: tmp + rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    blob = serialize(tensors, meta)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)
    return path


def save_case(relname, tensors, meta=None):
    """Writes tests/fixtures/<relname>.safetensors; returns its path."""
    if relname.endswith(".safetensors"):
        relname = relname[: -len(".safetensors")]
    return write_file(os.path.join(FIXTURES, relname + ".safetensors"), tensors, meta)


def load_file(path):
    """Reads a safetensors file back into {name: tensor}, plus its metadata dict (for
    checking files deepc wrote, without the safetensors package)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    rev = {v[0]: k for k, v in _DTYPES.items()}
    out = {}
    base = 8 + n
    for name, info in header.items():
        dtype = rev[info["dtype"]]
        b, e = info["data_offsets"]
        raw = bytearray(blob[base + b:base + e])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else \
                torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta
