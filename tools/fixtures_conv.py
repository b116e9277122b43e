"""fixtures_conv.py: PyTorch reference fixtures for deepc's convolution and pooling ops
(tests/test_ops_conv.c, tests/test_ops_pool.c).

    /usr/bin/python3 tools/fixtures_conv.py

writes tests/fixtures/ops/conv/<case>.safetensors and tests/fixtures/ops/pool/<case>.safetensors.
Each case holds the inputs, a random upstream gradient "gy", the forward result "out" and the
gradient of every input ("grad.x", "grad.w", "grad.b") for out.backward(gy); the op's
arguments are in the metadata. References are computed in float64 from float32 inputs and
stored as float32, so they carry no float32 rounding of PyTorch's own.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_case  # noqa: E402


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def grads(out, gy, named):
    """Runs out.backward(gy) and returns {"grad.<name>": grad as float32} for each input."""
    out.backward(gy.double())
    return {f"grad.{k}": v.grad.float() for k, v in named.items() if v is not None}


def leaf(t):
    return t.double().requires_grad_(True) if t is not None else None


# ---------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------

def conv_case(name, n, c, h, w, o, k, stride=1, padding=0, dilation=1, groups=1, bias=True):
    k, stride, padding, dilation = pair(k), pair(stride), pair(padding), pair(dilation)
    x = randn(n, c, h, w)
    wt = randn(o, c // groups, *k) * (1.0 / (c // groups * k[0] * k[1])) ** 0.5
    b = randn(o) if bias else None
    xd, wd, bd = leaf(x), leaf(wt), leaf(b)
    out = F.conv2d(xd, wd, bd, stride, padding, dilation, groups)
    gy = randn(*out.shape)
    tensors = {"x": x, "w": wt, "gy": gy, "out": out.detach().float()}
    if bias:
        tensors["b"] = b
    tensors.update(grads(out, gy, {"x": xd, "w": wd, "b": bd}))
    meta = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": padding[0], "pad_w": padding[1],
            "dil_h": dilation[0], "dil_w": dilation[1], "groups": groups, "bias": int(bias)}
    save_case(f"ops/conv/{name}", tensors, meta)


def conv_transpose_case(name, n, c, h, w, o, k, stride=1, padding=0, output_padding=0, dilation=1,
                        groups=1, bias=True):
    k, stride, padding = pair(k), pair(stride), pair(padding)
    output_padding, dilation = pair(output_padding), pair(dilation)
    x = randn(n, c, h, w)
    wt = randn(c, o // groups, *k) * (1.0 / (c // groups * k[0] * k[1])) ** 0.5
    b = randn(o) if bias else None
    xd, wd, bd = leaf(x), leaf(wt), leaf(b)
    out = F.conv_transpose2d(xd, wd, bd, stride, padding, output_padding, groups, dilation)
    gy = randn(*out.shape)
    tensors = {"x": x, "w": wt, "gy": gy, "out": out.detach().float()}
    if bias:
        tensors["b"] = b
    tensors.update(grads(out, gy, {"x": xd, "w": wd, "b": bd}))
    meta = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": padding[0], "pad_w": padding[1],
            "outpad_h": output_padding[0], "outpad_w": output_padding[1], "dil_h": dilation[0],
            "dil_w": dilation[1], "groups": groups, "bias": int(bias)}
    save_case(f"ops/conv/{name}", tensors, meta)


# ---------------------------------------------------------------------------------------
# pooling and resampling
# ---------------------------------------------------------------------------------------

def save_unary(area_name, x, fn, meta):
    xd = leaf(x)
    out = fn(xd)
    gy = randn(*out.shape)
    tensors = {"x": x, "gy": gy, "out": out.detach().float()}
    tensors.update(grads(out, gy, {"x": xd}))
    save_case(f"ops/pool/{area_name}", tensors, meta)


def pool_meta(k, stride, padding, dilation=1, ceil_mode=False, count_include_pad=True):
    k, padding, dilation = pair(k), pair(padding), pair(dilation)
    stride = pair(stride) if stride is not None else (0, 0)
    return {"k_h": k[0], "k_w": k[1], "stride_h": stride[0], "stride_w": stride[1], "pad_h": padding[0],
            "pad_w": padding[1], "dil_h": dilation[0], "dil_w": dilation[1], "ceil_mode": int(ceil_mode),
            "count_include_pad": int(count_include_pad)}


def max_pool_case(name, x, k, stride=None, padding=0, dilation=1, ceil_mode=False):
    save_unary(name, x, lambda t: F.max_pool2d(t, k, stride, padding, dilation, ceil_mode),
               pool_meta(k, stride, padding, dilation, ceil_mode))


def avg_pool_case(name, x, k, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    save_unary(name, x, lambda t: F.avg_pool2d(t, k, stride, padding, ceil_mode, count_include_pad),
               pool_meta(k, stride, padding, 1, ceil_mode, count_include_pad))


def main():
    torch.manual_seed(1234)
    # conv2d: odd shapes, every argument
    conv_case("basic", 2, 3, 8, 8, 4, 3, padding=1)
    conv_case("batch1_nonsquare", 1, 3, 7, 9, 5, (3, 5), padding=(1, 2))
    conv_case("stride2_pad1", 3, 4, 9, 10, 6, 3, stride=2, padding=1)
    conv_case("stride_asym", 2, 3, 10, 11, 4, (2, 3), stride=(2, 3), padding=(0, 2), bias=False)
    conv_case("dilation2", 2, 3, 11, 11, 4, 3, padding=2, dilation=2)
    conv_case("dilation_asym", 2, 2, 12, 9, 3, (3, 2), stride=(1, 2), padding=(3, 1), dilation=(3, 2))
    conv_case("groups2", 2, 4, 8, 7, 6, 3, padding=1, groups=2)
    conv_case("depthwise", 2, 6, 9, 9, 12, 3, stride=2, padding=1, groups=6)
    conv_case("pointwise", 3, 8, 6, 5, 5, 1)
    conv_case("pointwise_batch1", 1, 8, 6, 5, 5, 1, bias=False)
    conv_case("downsample_1x1_s2", 3, 8, 8, 8, 16, 1, stride=2, bias=False)
    conv_case("stride2_wide_rows", 2, 3, 21, 37, 4, 3, stride=2, padding=1)
    conv_case("pad_larger_than_input", 2, 2, 3, 3, 3, 3, padding=3)
    conv_case("kernel_equals_input", 2, 3, 5, 5, 4, 5)
    conv_case("lenet_conv1", 1, 1, 28, 28, 6, 5, padding=2)
    conv_case("lenet_conv2", 2, 6, 14, 14, 16, 5)
    # 3x3 stride 1 with enough channels for the fast paths, odd spatial sizes (partial tiles)
    conv_case("k3_wide_8x8", 2, 16, 8, 8, 16, 3, padding=1, bias=False)
    conv_case("k3_wide_odd", 2, 16, 7, 9, 16, 3, padding=1)
    conv_case("k3_wide_pad0", 1, 24, 9, 6, 16, 3, padding=0)
    conv_case("k3_wide_pad2", 2, 16, 5, 6, 20, 3, padding=2)
    conv_case("k3_small_spatial", 7, 16, 4, 4, 16, 3, padding=1, bias=False)
    conv_case("k3_s2_wide", 3, 12, 8, 8, 16, 3, stride=2, padding=1, bias=False)
    conv_case("stem_like", 2, 3, 10, 10, 16, 3, padding=1, bias=False)

    # conv_transpose2d
    conv_transpose_case("t_basic", 2, 4, 5, 5, 3, 3, stride=2, padding=1, output_padding=1)
    conv_transpose_case("t_outpad_dilation", 2, 4, 4, 5, 6, 3, stride=1, padding=1, output_padding=1,
                        dilation=2, groups=2)
    conv_transpose_case("t_nonsquare_batch1", 1, 3, 4, 6, 2, (3, 5), stride=(2, 1), padding=(0, 2),
                        bias=False)
    conv_transpose_case("t_depthwise", 2, 4, 5, 5, 4, 4, stride=2, padding=1, groups=4)
    conv_transpose_case("t_upsample_k2s2", 3, 8, 4, 4, 4, 2, stride=2)

    # max pooling (NaN-free, distinct values except where ties are the point)
    max_pool_case("max_2x2", randn(2, 3, 8, 8), 2)
    max_pool_case("max_k3s2p1_ceil", randn(2, 3, 9, 10), 3, 2, 1, ceil_mode=True)
    max_pool_case("max_k3s2_floor", randn(1, 2, 9, 10), 3, 2, 0)
    max_pool_case("max_dilation2", randn(2, 2, 9, 8), 3, 1, 1, dilation=2)
    max_pool_case("max_dilation_ceil", randn(1, 3, 10, 11), (3, 2), (2, 3), (1, 1), dilation=(2, 3),
                  ceil_mode=True)
    max_pool_case("max_nonsquare", randn(2, 2, 7, 9), (2, 3), (1, 2))
    max_pool_case("max_overlap", randn(1, 2, 6, 6), 3, 1, 1)
    ties = torch.randint(-2, 3, (2, 2, 6, 7)).float()
    max_pool_case("max_ties", ties, 3, 2, 1, ceil_mode=True)
    max_pool_case("max_3d_input", randn(3, 6, 6), 2)
    # average pooling
    avg_pool_case("avg_2x2", randn(2, 3, 8, 8), 2)
    avg_pool_case("avg_k3s2p1_ceil_incl", randn(2, 2, 9, 10), 3, 2, 1, ceil_mode=True, count_include_pad=True)
    avg_pool_case("avg_k3s2p1_ceil_excl", randn(2, 2, 9, 10), 3, 2, 1, ceil_mode=True, count_include_pad=False)
    avg_pool_case("avg_k3s2p1_floor_excl", randn(1, 2, 7, 6), 3, 2, 1, count_include_pad=False)
    avg_pool_case("avg_nonsquare", randn(2, 2, 7, 9), (3, 2), (2, 1), (1, 0))
    avg_pool_case("avg_ceil_overhang", randn(1, 2, 5, 5), 2, 2, 0, ceil_mode=True, count_include_pad=True)
    # adaptive average pooling
    for name, x, out in [("adaptive_7x5_to_3x2", randn(2, 3, 7, 5), (3, 2)),
                         ("adaptive_global", randn(2, 4, 8, 8), (1, 1)),
                         ("adaptive_5x4_to_7x6", randn(1, 2, 5, 4), (7, 6)),
                         ("adaptive_10x10_to_4x3", randn(2, 2, 10, 10), (4, 3))]:
        save_unary(name, x, lambda t, out=out: F.adaptive_avg_pool2d(t, out), {"out_h": out[0], "out_w": out[1]})
    # nearest upsampling by integer factors
    for name, x, s in [("upsample_2x2", randn(2, 3, 4, 5), (2, 2)), ("upsample_3x1", randn(1, 2, 3, 4), (3, 1))]:
        save_unary(name, x, lambda t, s=s: F.interpolate(t, scale_factor=s, mode="nearest"),
                   {"scale_h": s[0], "scale_w": s[1]})
    # constant padding {left, right, top, bottom}, negative amounts crop
    for name, x, p, v in [("pad_1_2_0_3", randn(2, 3, 4, 5), (1, 2, 0, 3), 0.5),
                          ("pad_negative", randn(1, 2, 6, 7), (-1, 2, 1, -2), 0.0),
                          ("pad_3d", randn(3, 4, 4), (2, 2, 1, 1), -1.0)]:
        save_unary(name, x, lambda t, p=p, v=v: F.pad(t, p, mode="constant", value=v),
                   {"left": p[0], "right": p[1], "top": p[2], "bottom": p[3], "value": v})


if __name__ == "__main__":
    main()
