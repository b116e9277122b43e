"""fixtures_elementwise: PyTorch references for deepc's elementwise, activation, comparison,
selection, gather and reduction ops (forward outputs and input gradients).

Run: /usr/bin/python3 tools/fixtures_elementwise.py   (Debian's torch)
Writes tests/fixtures/ops/elementwise/<case>.safetensors and tests/fixtures/ops/reduce/<case>.safetensors.

Each file holds the float inputs in0, in1, ... (leaves that require grad), optional `cond`
(BOOL) and `index` (I64) inputs, `out` (and `indices` for max/min), and for differentiable
ops `gout` (the gradient fed to backward) with `grad.in0`, ... The C test
(tests/test_ops_elementwise.c, tests/test_ops_reduce.c) applies the same op, including any
view (transpose / narrow) taken of an input inside the op, so non-contiguous inputs are
covered with gradients flowing back to the contiguous leaves.
"""
import math

import torch
import torch.nn.functional as F

from fixturelib import save_case

torch.manual_seed(0)


def make(spec):
    """spec = (kind, shape): n randn, w 3*randn, p positive, i small integers (ties),
    b bool, l<k> indices below k."""
    kind, shape = spec
    if kind == "n":
        return torch.randn(shape)
    if kind == "w":
        return torch.randn(shape) * 3
    if kind == "p":
        return torch.rand(shape) * 2 + 0.2
    if kind == "i":
        return torch.randint(-2, 3, shape).float()
    if kind == "b":
        return torch.rand(shape) > 0.5
    if kind.startswith("l"):
        return torch.randint(0, int(kind[1:]), shape)
    raise ValueError(kind)


def case(area, name, fn, specs, grad=True, prep=None):
    """fn(*inputs) -> out or (out, indices). Float inputs named in0.., bool `cond`, long `index`."""
    ins = [make(s) for s in specs]
    if prep:
        prep(ins)
    named = {}
    call = []
    k = 0
    for s, t in zip(specs, ins):
        if s[0] == "b":
            named["cond"] = t
            call.append(t)
        elif s[0].startswith("l"):
            named["index"] = t
            call.append(t)
        else:
            t = t.clone().requires_grad_(grad)
            named[f"in{k}"] = t
            call.append(t)
            k += 1
    res = fn(*call)
    out, indices = (res if isinstance(res, tuple) else (res, None))
    tensors = dict(named)
    tensors["out"] = out.detach().contiguous()
    if indices is not None:
        tensors["indices"] = indices
    if grad and out.dtype == torch.float32:
        g = torch.randn_like(out)
        out.backward(g)
        tensors["gout"] = g
        for n, t in named.items():
            if n.startswith("in"):
                tensors[f"grad.{n}"] = t.grad if t.grad is not None else torch.zeros_like(t)
    save_case(f"ops/{area}/{name}", {n: t.detach() for n, t in tensors.items()})


E = "elementwise"
# ---- binary with broadcasting on every side ------------------------------------------------
case(E, "add_same", lambda a, b: a + b, [("n", (3, 4)), ("n", (3, 4))])
case(E, "add_bcast", lambda a, b: a + b, [("n", (3, 1, 5)), ("n", (4, 1))])
case(E, "add_bcast_rev", lambda a, b: a + b, [("n", (4, 1)), ("n", (3, 1, 5))])
case(E, "add_0dim", lambda a, b: a + b, [("n", (2, 3)), ("n", ())])
case(E, "add_0dim_both", lambda a, b: a + b, [("n", ()), ("n", ())])
case(E, "add_size1", lambda a, b: a + b, [("n", (1, 5)), ("n", (3, 1))])
case(E, "add_row", lambda a, b: a + b, [("n", (6, 37)), ("n", (37,))])
case(E, "add_scaled", lambda a, b: torch.add(a, b, alpha=-2.5), [("n", (3, 4)), ("n", (4,))])
case(E, "sub_bcast", lambda a, b: a - b, [("n", (3, 1, 5)), ("n", (4, 1))])
case(E, "mul_bcast", lambda a, b: a * b, [("n", (3, 1, 5)), ("n", (4, 1))])
case(E, "mul_transposed", lambda a, b: a.transpose(0, 1) * b, [("n", (5, 3)), ("n", (3, 5))])
case(E, "mul_narrow", lambda a, b: a.narrow(1, 1, 3) * b, [("n", (4, 6)), ("n", (3,))])
case(E, "div_bcast", lambda a, b: a / b, [("n", (3, 1, 5)), ("p", (4, 1))])
case(E, "div_0dim", lambda a, b: a / b, [("n", ()), ("p", (2, 3))])


def pow_prep(ins):
    ins[0][0, 0] = 0.0  # 0 ** 2: PyTorch zeroes the exponent's gradient there
    ins[1][0] = 2.0


case(E, "pow_bcast", lambda a, e: torch.pow(a, e), [("p", (3, 4)), ("n", (4,))], prep=pow_prep)
case(E, "maximum_ties", lambda a, b: torch.maximum(a, b), [("i", (3, 4)), ("i", (4,))])
case(E, "minimum_ties", lambda a, b: torch.minimum(a, b), [("i", (4, 1)), ("i", (3, 1, 5))])

# ---- unary ---------------------------------------------------------------------------------
case(E, "add_scalar", lambda x: x + 1.5, [("n", (3, 4))])
case(E, "mul_scalar", lambda x: x * -0.7, [("n", (3, 4))])
case(E, "neg", lambda x: -x, [("n", (3, 4))])
case(E, "exp", torch.exp, [("n", (3, 7))])
case(E, "log", torch.log, [("p", (3, 7))])
case(E, "sqrt", torch.sqrt, [("p", (3, 7))])
case(E, "rsqrt", torch.rsqrt, [("p", (3, 7))])
case(E, "abs", torch.abs, [("n", (3, 7))])
case(E, "sin", torch.sin, [("w", (3, 7))])
case(E, "cos", torch.cos, [("w", (3, 7))])
case(E, "pow_scalar_2", lambda x: x ** 2, [("n", (3, 7))])
case(E, "pow_scalar_3", lambda x: x ** 3, [("n", (3, 7))])
case(E, "pow_scalar_0.5", lambda x: x ** 0.5, [("p", (3, 7))])
case(E, "pow_scalar_-1.5", lambda x: x ** -1.5, [("p", (3, 7))])
case(E, "pow_scalar_0", lambda x: x ** 0, [("n", (3, 7))])
case(E, "clamp", lambda x: torch.clamp(x, -0.5, 0.7), [("n", (4, 9))])
case(E, "clamp_max", lambda x: torch.clamp(x, max=0.3), [("n", (4, 9))])
case(E, "exp_transposed", lambda x: torch.exp(x.transpose(0, 1)), [("n", (5, 3))])

# ---- activations ---------------------------------------------------------------------------
case(E, "relu", F.relu, [("w", (4, 33))])
case(E, "relu_transposed", lambda x: F.relu(x.transpose(0, 1)), [("w", (6, 5))])
case(E, "leaky_relu", lambda x: F.leaky_relu(x, 0.1), [("w", (4, 33))])
case(E, "gelu", F.gelu, [("w", (4, 33))])
case(E, "gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), [("w", (4, 33))])
case(E, "quick_gelu", lambda x: x * torch.sigmoid(1.702 * x), [("w", (4, 33))])
case(E, "silu", F.silu, [("w", (4, 33))])
case(E, "tanh", torch.tanh, [("w", (4, 33))])
case(E, "sigmoid", torch.sigmoid, [("w", (4, 33))])
case(E, "gelu_0dim", F.gelu, [("n", ())])

# ---- comparisons and selection -------------------------------------------------------------
case(E, "eq", lambda a, b: torch.eq(a, b), [("i", (3, 4)), ("i", (4,))], grad=False)
case(E, "gt_scalar", lambda x: x > 0.25, [("n", (3, 4))], grad=False)
case(E, "lt_scalar", lambda x: x < -0.25, [("n", (3, 4))], grad=False)
case(E, "where_bcast", lambda c, a, b: torch.where(c, a, b), [("b", (3, 1, 5)), ("n", (4, 1)), ("n", (5,))])
case(E, "where_same", lambda c, a, b: torch.where(c, a, b), [("b", (4, 6)), ("n", (4, 6)), ("n", (4, 6))])
case(E, "masked_fill", lambda x, m: x.masked_fill(m, 2.5), [("n", (3, 4, 5)), ("b", (4, 1))])
case(E, "masked_fill_same", lambda x, m: x.masked_fill(m, -1e9), [("n", (3, 4)), ("b", (3, 4))])

# ---- gather --------------------------------------------------------------------------------
case(E, "gather_dim1", lambda x, i: torch.gather(x, 1, i), [("n", (3, 5)), ("l5", (3, 4))])
case(E, "gather_dim0", lambda x, i: torch.gather(x, 0, i), [("n", (3, 5)), ("l3", (4, 2))])
case(E, "gather_3d_last", lambda x, i: torch.gather(x, -1, i), [("n", (2, 3, 6)), ("l6", (2, 2, 7))])

R = "reduce"
case(R, "sum_dim1", lambda x: x.sum(1), [("n", (3, 4, 5))])
case(R, "sum_dims02_keepdim", lambda x: x.sum((0, 2), keepdim=True), [("n", (3, 4, 5))])
case(R, "sum_all", lambda x: x.sum(), [("n", (3, 4, 5))])
case(R, "sum_last_neg", lambda x: x.sum(-1), [("n", (3, 4, 5))])
case(R, "sum_transposed", lambda x: x.transpose(0, 1).sum(1), [("n", (5, 3))])
case(R, "sum_columns", lambda x: x.sum(0), [("n", (9, 70))])
case(R, "sum_nchw_bias", lambda x: x.sum((0, 2, 3)), [("n", (2, 3, 4, 5))])
case(R, "sum_0dim", lambda x: x.sum(), [("n", ())])
case(R, "sum_size1", lambda x: x.sum(1), [("n", (3, 1, 4))])
case(R, "mean_dim0", lambda x: x.mean(0), [("n", (3, 4, 5))])
case(R, "mean_dims12_keepdim", lambda x: x.mean((1, 2), keepdim=True), [("n", (3, 4, 5))])
case(R, "mean_all", lambda x: x.mean(), [("n", (3, 4, 5))])
case(R, "mean_narrow", lambda x: x.narrow(1, 2, 3).mean(1), [("n", (4, 7))])
case(R, "var_dim1", lambda x: x.var(1), [("n", (3, 6, 5))])
case(R, "var_all_biased", lambda x: x.var(unbiased=False), [("n", (3, 6, 5))])
case(R, "var_dims02_keepdim", lambda x: x.var((0, 2), keepdim=True), [("n", (3, 6, 5))])
case(R, "var_columns", lambda x: x.var(0), [("n", (9, 70))])
case(R, "max_dim1_ties", lambda x: torch.max(x, 1), [("i", (3, 6, 5))])
case(R, "max_dim2_keepdim", lambda x: torch.max(x, 2, keepdim=True), [("n", (3, 6, 5))])
case(R, "min_dim0_ties", lambda x: torch.min(x, 0), [("i", (7, 5))])
case(R, "max_all_ties", lambda x: x.max(), [("i", (4, 5))])
case(R, "argmax_dim1", lambda x: torch.argmax(x, 1), [("i", (4, 9))], grad=False)
case(R, "argmax_dim0_keepdim", lambda x: torch.argmax(x, 0, keepdim=True), [("n", (4, 9))], grad=False)
case(R, "softmax_last", lambda x: torch.softmax(x, -1), [("w", (4, 13))])
case(R, "softmax_dim1", lambda x: torch.softmax(x, 1), [("w", (2, 5, 4))])
case(R, "softmax_dim0", lambda x: torch.softmax(x, 0), [("w", (5, 3))])
case(R, "softmax_large", lambda x: torch.softmax(x * 100, -1), [("n", (3, 8))])
case(R, "softmax_transposed", lambda x: torch.softmax(x.transpose(0, 1), -1), [("n", (5, 4))])
case(R, "log_softmax_last", lambda x: F.log_softmax(x, -1), [("w", (4, 13))])
case(R, "log_softmax_dim1", lambda x: F.log_softmax(x, 1), [("w", (2, 5, 4))])
case(R, "log_softmax_large", lambda x: F.log_softmax(x * 100, -1), [("n", (3, 8))])
case(R, "logsumexp_dim1", lambda x: torch.logsumexp(x, 1), [("w", (3, 6, 4))])
case(R, "logsumexp_last_keepdim", lambda x: torch.logsumexp(x, -1, keepdim=True), [("w", (3, 6))])
