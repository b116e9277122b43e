"""fixtures_core: PyTorch references for the core ops the lead owns: matmul (every torch.matmul
broadcasting case), bmm, linear, and gradients through views (permute, narrow, slice, select,
expand, reshape of a non-contiguous tensor).

Run: /usr/bin/python3 tools/fixtures_core.py   (Debian's torch; writes tests/fixtures/ops/core/)
"""
import torch

from fixturelib import save_case

torch.manual_seed(0)


def matmul_case(name, sa, sb):
    a = torch.randn(*sa, requires_grad=True)
    b = torch.randn(*sb, requires_grad=True)
    out = torch.matmul(a, b)
    g = torch.randn_like(out)
    out.backward(g)
    save_case(f"ops/core/matmul_{name}", {"a": a, "b": b, "out": out, "gout": g,
                                          "grad.a": a.grad, "grad.b": b.grad})


matmul_case("2d", (3, 5), (5, 4))
matmul_case("1d_1d", (5,), (5,))
matmul_case("1d_2d", (5,), (5, 4))
matmul_case("2d_1d", (3, 5), (5,))
matmul_case("batched", (2, 3, 5), (2, 5, 4))
matmul_case("bcast_left", (3, 5), (2, 5, 4))
matmul_case("bcast_right", (2, 3, 5), (5, 4))
matmul_case("bcast_both", (2, 1, 3, 5), (1, 4, 5, 6))
matmul_case("1d_batched", (5,), (2, 5, 4))
matmul_case("batch1", (1, 1, 7), (1, 7, 1))

for name, shape, bias in [("2d", (4, 7), True), ("3d", (2, 3, 7), True), ("nobias", (5, 7), False),
                          ("batch1", (1, 7), True)]:
    x = torch.randn(*shape, requires_grad=True)
    lin = torch.nn.Linear(7, 6, bias=bias)
    out = lin(x)
    g = torch.randn_like(out)
    out.backward(g)
    t = {"x": x, "weight": lin.weight, "out": out, "gout": g, "grad.x": x.grad, "grad.weight": lin.weight.grad}
    if bias:
        t["bias"] = lin.bias
        t["grad.bias"] = lin.bias.grad
    save_case(f"ops/core/linear_{name}", t)

# views: y = f(x) * w summed, so the gradient through each view is exercised
x = torch.randn(2, 3, 4, 5, requires_grad=True)
views = {
    "permute": lambda t: t.permute(2, 0, 3, 1),
    "transpose_reshape": lambda t: t.transpose(1, 2).reshape(6, 20),
    "narrow": lambda t: t.narrow(2, 1, 2),
    "slice_step": lambda t: t[:, :, 1:4:2],
    "select": lambda t: t.select(1, 2),
    "expand": lambda t: t[:, :1].expand(2, 3, 4, 5),
    "unsqueeze_flatten": lambda t: t.unsqueeze(1).flatten(2, 4),
}
for name, f in views.items():
    x.grad = None
    y = f(x)
    w = torch.randn_like(y)
    (y * w).sum().backward()
    save_case(f"ops/core/view_{name}", {"x": x, "out": y.contiguous(), "w": w, "grad.x": x.grad})
