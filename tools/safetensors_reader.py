"""safetensors_reader: a dependency-free safetensors loader for Debian's torch 1.13
(which has no `safetensors` package): load_file(path) -> {name: tensor}, as
safetensors.torch.load_file does."""
import json
import struct

import numpy as np
import torch

_NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_,
       "F64": np.float64, "I16": np.int16, "I8": np.int8}


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b:base + e]
        if info["dtype"] == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, np.int16).copy()).view(torch.bfloat16)
        else:
            t = torch.from_numpy(np.frombuffer(raw, _NP[info["dtype"]]).copy())
        out[name] = t.reshape(info["shape"])
    return out
