"""fixtures_nn_ops: PyTorch reference fixtures for deepc's normalisation, loss and misc ops.

    OMP_NUM_THREADS=2 /usr/bin/python3 tools/fixtures_nn_ops.py

(Debian's torch imports only in /usr/bin/python3. The usual LD_LIBRARY_PATH=openblas-openmp
and OPENBLAS_CORETYPE=SkylakeX settings are harmless but not needed here; SkylakeX crashes
with "Illegal instruction" on a CPU without AVX-512.)

writes tests/fixtures/ops/{norm,loss,misc}/*.safetensors, read by tests/test_ops_{norm,loss,misc}.c.

Each case stores the inputs, the forward output "out", an upstream gradient "gy" (random, so
that no gradient is trivially zero: the gradient of sum(batch_norm(x)) w.r.t. x is 0) and
the gradients of (out * gy).sum() w.r.t. every differentiable input as "grad.<name>".
Native ops (batch_norm, layer_norm, group_norm, cross_entropy, ...) are run in float32 as
PyTorch runs them; formulas PyTorch 1.13 has no op for (RMS norm, scaled dot-product
attention, which arrived in 2.0) are evaluated in float64 and rounded, so the reference is
the exact math. Shapes are tiny and odd on purpose (batch 1, S != L, C not a multiple of 8).
"""

import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_case  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(20240601)


def rnd(*shape, scale=1.0, offset=0.0):
    return (torch.randn(tuple(shape)) * scale + offset).float()


def leaf(t):
    return t.clone().requires_grad_(True)


def grads(out, gy, named):
    """Backward of (out * gy).sum(); returns {"grad.<name>": grad} for named leaves."""
    (out * gy).sum().backward()
    return {"grad." + k: v.grad.detach().clone() for k, v in named.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------

def batch_norm_case(name, shape, training, affine=True, momentum=0.1, eps=1e-5, offset=0.5):
    c = shape[1]
    x = leaf(rnd(*shape, scale=2.0, offset=offset))
    w = leaf(rnd(c, scale=0.5, offset=1.0)) if affine else None
    b = leaf(rnd(c, scale=0.5)) if affine else None
    rm = rnd(c, scale=0.3)
    rv = (torch.rand(c) + 0.5).float()
    rm_in, rv_in = rm.clone(), rv.clone()
    out = F.batch_norm(x, rm, rv, w, b, training=training, momentum=momentum, eps=eps)
    gy = rnd(*out.shape)
    t = {"x": x, "running_mean": rm_in, "running_var": rv_in, "out": out, "gy": gy,
         "running_mean_after": rm, "running_var_after": rv}
    if affine:
        t["weight"], t["bias"] = w, b
    t.update(grads(out, gy, {"x": x, "weight": w, "bias": b}))
    save_case("ops/norm/" + name, t, meta={"training": int(training), "momentum": momentum, "eps": eps,
                                           "affine": int(affine)})


def layer_norm_case(name, shape, n_norm, affine=True, eps=1e-5):
    nshape = shape[len(shape) - n_norm:]
    x = leaf(rnd(*shape, scale=1.5, offset=0.3))
    w = leaf(rnd(*nshape, scale=0.5, offset=1.0)) if affine else None
    b = leaf(rnd(*nshape, scale=0.5)) if affine else None
    out = F.layer_norm(x, nshape, w, b, eps)
    gy = rnd(*out.shape)
    t = {"x": x, "out": out, "gy": gy}
    if affine:
        t["weight"], t["bias"] = w, b
    t.update(grads(out, gy, {"x": x, "weight": w, "bias": b}))
    save_case("ops/norm/" + name, t, meta={"n_norm": n_norm, "eps": eps, "affine": int(affine)})


def group_norm_case(name, shape, groups, affine=True, eps=1e-5):
    c = shape[1]
    x = leaf(rnd(*shape, scale=1.5, offset=-0.2))
    w = leaf(rnd(c, scale=0.5, offset=1.0)) if affine else None
    b = leaf(rnd(c, scale=0.5)) if affine else None
    out = F.group_norm(x, groups, w, b, eps)
    gy = rnd(*out.shape)
    t = {"x": x, "out": out, "gy": gy}
    if affine:
        t["weight"], t["bias"] = w, b
    t.update(grads(out, gy, {"x": x, "weight": w, "bias": b}))
    save_case("ops/norm/" + name, t, meta={"groups": groups, "eps": eps, "affine": int(affine)})


def rms_norm_case(name, shape, affine=True, eps=1e-6):
    d = shape[-1]
    x32 = rnd(*shape, scale=1.5, offset=0.2)
    w32 = rnd(d, scale=0.5, offset=1.0) if affine else None
    x = leaf(x32.double())
    w = leaf(w32.double()) if affine else None
    out = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    if affine:
        out = out * w
    gy32 = rnd(*shape)
    g = grads(out, gy32.double(), {"x": x, "weight": w})
    t = {"x": x32, "out": out.detach().float(), "gy": gy32}
    if affine:
        t["weight"] = w32
    t.update({k: v.float() for k, v in g.items()})
    save_case("ops/norm/" + name, t, meta={"eps": eps, "affine": int(affine)})


def norm_cases():
    batch_norm_case("bn2d_train", (3, 4, 5, 3), True)
    batch_norm_case("bn2d_eval", (3, 4, 5, 3), False)
    batch_norm_case("bn2d_train_batch1", (1, 3, 4, 5), True, momentum=0.3)
    batch_norm_case("bn2d_train_noaffine", (2, 5, 3, 3), True, affine=False)
    batch_norm_case("bn1d_train", (7, 6), True)
    batch_norm_case("bn1d_eval", (7, 6), False)
    batch_norm_case("bn1d_train_wide", (5, 70), True, offset=3.0)  # more than one column block
    batch_norm_case("bn1d_seq_train", (4, 3, 7), True)
    layer_norm_case("ln_batch1", (1, 5, 7), 1)
    layer_norm_case("ln_last2", (2, 3, 4, 5), 2)
    layer_norm_case("ln_noaffine", (3, 9), 1, affine=False)
    layer_norm_case("ln_wide", (3, 300), 1, eps=1e-6)  # more than one column block in dweight
    group_norm_case("gn_batch1", (1, 6, 4, 3), 3)
    group_norm_case("gn_3d", (2, 4, 5), 2)
    group_norm_case("gn_one_group", (2, 4, 3, 3), 1)
    group_norm_case("gn_per_channel", (2, 4, 3, 3), 4, affine=False)
    rms_norm_case("rms", (2, 3, 8))
    rms_norm_case("rms_batch1_noweight", (1, 11), affine=False, eps=1e-5)


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

REDUCTIONS = {"mean": 0, "sum": 1, "none": 2}


def ce_case(name, lshape, reduction="mean", ignore_index=-100, label_smoothing=0.0, ignore_at=(),
            scale=2.0):
    x = leaf(rnd(*lshape, scale=scale))
    c = lshape[1] if len(lshape) > 1 else lshape[0]
    tshape = (lshape[0],) + tuple(lshape[2:]) if len(lshape) > 1 else ()
    target = torch.randint(0, c, tshape, dtype=torch.int64)
    flat = target.view(-1)
    for i in ignore_at:
        flat[i] = ignore_index
    out = F.cross_entropy(x, target, reduction=reduction, ignore_index=ignore_index,
                          label_smoothing=label_smoothing)
    gy = rnd(*out.shape)
    t = {"logits": x, "target": target, "out": out, "gy": gy}
    t.update(grads(out, gy, {"logits": x}))
    save_case("ops/loss/" + name, t, meta={"reduction": REDUCTIONS[reduction], "ignore_index": ignore_index,
                                           "label_smoothing": label_smoothing})


def nll_case(name, lshape, reduction="mean", ignore_index=-100, ignore_at=()):
    lp = leaf(torch.log_softmax(rnd(*lshape, scale=2.0), 1))
    c = lshape[1]
    target = torch.randint(0, c, (lshape[0],) + tuple(lshape[2:]), dtype=torch.int64)
    flat = target.view(-1)
    for i in ignore_at:
        flat[i] = ignore_index
    out = F.nll_loss(lp, target, reduction=reduction, ignore_index=ignore_index)
    gy = rnd(*out.shape)
    t = {"log_probs": lp, "target": target, "out": out, "gy": gy}
    t.update(grads(out, gy, {"log_probs": lp}))
    save_case("ops/loss/" + name, t, meta={"reduction": REDUCTIONS[reduction], "ignore_index": ignore_index})


def mse_case(name, ishape, tshape, reduction="mean"):
    a = leaf(rnd(*ishape))
    b = leaf(rnd(*tshape))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # broadcasting warning
        out = F.mse_loss(a, b, reduction=reduction)
    gy = rnd(*out.shape)
    t = {"input": a, "target": b, "out": out, "gy": gy}
    t.update(grads(out, gy, {"input": a, "target": b}))
    save_case("ops/loss/" + name, t, meta={"reduction": REDUCTIONS[reduction]})


def loss_cases():
    ce_case("ce_basic", (5, 7))
    ce_case("ce_batch1_sum", (1, 10), reduction="sum")
    ce_case("ce_ignore_ls_mean", (6, 5), ignore_at=(1, 4), label_smoothing=0.1)
    ce_case("ce_ignore_ls_sum", (6, 5), reduction="sum", ignore_at=(0, 3), label_smoothing=0.1)
    ce_case("ce_ignore_ls_none", (6, 5), reduction="none", ignore_at=(2,), label_smoothing=0.1)
    ce_case("ce_custom_ignore", (8, 4), ignore_index=2, label_smoothing=0.2)
    ce_case("ce_nd_mean", (2, 4, 3, 5), ignore_at=(0, 7, 29), label_smoothing=0.1)
    ce_case("ce_nd_none", (2, 3, 70), reduction="none", ignore_at=(5, 100), label_smoothing=0.1)
    ce_case("ce_unbatched", (6,), reduction="mean", label_smoothing=0.1)
    ce_case("ce_wide", (3, 1000), label_smoothing=0.05, scale=4.0)
    nll_case("nll_mean", (4, 6), ignore_at=(2,))
    nll_case("nll_nd_none", (2, 3, 4), reduction="none", ignore_at=(1, 6))
    nll_case("nll_sum", (5, 3), reduction="sum")
    mse_case("mse_mean", (3, 4, 5), (3, 4, 5))
    mse_case("mse_sum", (7,), (7,), reduction="sum")
    mse_case("mse_none", (2, 3), (2, 3), reduction="none")
    mse_case("mse_broadcast", (3, 4), (4,), reduction="mean")


# ---------------------------------------------------------------------------------------------
# misc: embedding, cat/stack, scaled dot-product attention
# ---------------------------------------------------------------------------------------------

def embedding_case(name, num, dim, ishape, dtype):
    w = leaf(rnd(num, dim))
    idx = torch.randint(0, num, ishape, dtype=torch.int64)
    idx.view(-1)[0] = idx.view(-1)[-1]  # a repeated index: the backward must add both
    out = F.embedding(idx, w)
    gy = rnd(*out.shape)
    t = {"weight": w, "indices": idx.to(dtype), "out": out, "gy": gy}
    t.update(grads(out, gy, {"weight": w}))
    save_case("ops/misc/" + name, t)


def cat_stack_cases():
    a, b, c = leaf(rnd(2, 3, 4)), leaf(rnd(2, 1, 4)), leaf(rnd(2, 5, 4))
    out = torch.cat([a, b, c], 1)
    gy = rnd(*out.shape)
    t = {"a": a, "b": b, "c": c, "out": out, "gy": gy}
    t.update(grads(out, gy, {"a": a, "b": b, "c": c}))
    save_case("ops/misc/cat_dim1", t, meta={"dim": 1})
    a, b, c = leaf(rnd(3, 2)), leaf(rnd(3, 2)), leaf(rnd(3, 2))
    out = torch.stack([a, b, c], -1)
    gy = rnd(*out.shape)
    t = {"a": a, "b": b, "c": c, "out": out, "gy": gy}
    t.update(grads(out, gy, {"a": a, "b": b, "c": c}))
    save_case("ops/misc/stack_last", t, meta={"dim": -1})


def sdpa_ref(q, k, v, mask, causal, scale):
    """torch 2.x's math path of F.scaled_dot_product_attention (torch 1.13 has no sdpa)."""
    L, S = q.shape[-2], k.shape[-2]
    s = scale if scale > 0 else 1.0 / (q.shape[-1] ** 0.5)
    z = q @ k.transpose(-2, -1) * s
    if causal:
        z = z.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        z = z.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else z + mask
    return torch.softmax(z, -1) @ v


def sdpa_case(name, qs, ks, vs, mask_kind=None, mask_shape=None, causal=False, scale=0.0):
    q32, k32, v32 = rnd(*qs), rnd(*ks), rnd(*vs)
    q, k, v = leaf(q32.double()), leaf(k32.double()), leaf(v32.double())
    mask = None
    t = {}
    named = {"q": q, "k": k, "v": v}
    if mask_kind == "bool":
        mask = torch.rand(*mask_shape) > 0.3
        mask[..., 0] = True  # no fully masked row (torch's math path would give NaN there)
        t["mask"] = mask
    elif mask_kind == "float":
        m32 = rnd(*mask_shape)
        mask = leaf(m32.double())
        named["mask"] = mask
        t["mask"] = m32
    out = sdpa_ref(q, k, v, mask, causal, scale)
    gy32 = rnd(*out.shape)
    g = grads(out, gy32.double(), named)
    t.update({"q": q32, "k": k32, "v": v32, "out": out.detach().float(), "gy": gy32})
    t.update({kk: vv.float() for kk, vv in g.items()})
    save_case("ops/misc/" + name, t, meta={"causal": int(causal), "scale": scale,
                                           "mask": mask_kind or "none"})


def misc_cases():
    embedding_case("embedding_i64", 10, 4, (2, 3), torch.int64)
    embedding_case("embedding_i32", 7, 5, (6,), torch.int32)
    cat_stack_cases()
    sdpa_case("sdpa_plain", (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5))
    sdpa_case("sdpa_causal", (2, 5, 8), (2, 5, 8), (2, 5, 3), causal=True)
    sdpa_case("sdpa_causal_rect", (1, 2, 4, 6), (1, 2, 7, 6), (1, 2, 7, 6), causal=True)
    sdpa_case("sdpa_bool_mask", (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), mask_kind="bool", mask_shape=(2, 1, 4, 6))
    sdpa_case("sdpa_float_mask", (2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 5), mask_kind="float", mask_shape=(4, 6),
              scale=0.3)
    sdpa_case("sdpa_broadcast_kv", (2, 3, 4, 8), (2, 1, 6, 8), (1, 6, 5), mask_kind="bool", mask_shape=(6,),
              causal=True)
    sdpa_case("sdpa_2d", (3, 4), (5, 4), (5, 2), scale=0.7)


if __name__ == "__main__":
    norm_cases()
    loss_cases()
    misc_cases()
