"""fixtures_optim: PyTorch reference numbers for deepc's optimizers, gradient clipping and LR
schedulers (tests/test_optim.c).

Run with Debian's torch:  /usr/bin/python3 tools/fixtures_optim.py
Writes tests/fixtures/optim/*.safetensors (a few KB in all).

Optimizer cases: two fixed parameters (p0 [3, 4], p1 [5]) and a fixed sequence of 10
gradients each; the parameters after every step ("p0.<k>", k = 1..10) and the final optimizer
state ("state.<i>.<key>", PyTorch's names) are stored. Hyperparameters are in the metadata.

Scheduler cases: the lr (and momentum) sequence, from construction (step 0) through N steps,
stored exactly as JSON lists of Python floats in the metadata.
"""
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from fixturelib import save_case  # noqa: E402

torch.set_num_threads(2)
STEPS = 10


def base_tensors(seed):
    g = torch.Generator().manual_seed(seed)
    p0 = torch.randn(3, 4, generator=g)
    p1 = torch.randn(5, generator=g)
    grads = [(torch.randn(3, 4, generator=g), torch.randn(5, generator=g) * 0.1) for _ in range(STEPS)]
    return p0, p1, grads


def optim_case(name, kind, opts, seed=0, groups=False, skip_p1_odd=False):
    p0, p1, grads = base_tensors(seed)
    t = {"p0.0": p0.clone(), "p1.0": p1.clone()}
    w0 = p0.clone().requires_grad_(True)
    w1 = p1.clone().requires_grad_(True)
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    if groups:
        opt = cls([{"params": [w0]}, {"params": [w1], "lr": opts["lr"] * 0.1}], **opts,
                  foreach=False)
    else:
        opt = cls([w0, w1], **opts, foreach=False)
    for k in range(STEPS):
        g0, g1 = grads[k]
        t[f"g0.{k}"] = g0
        t[f"g1.{k}"] = g1
        w0.grad = g0.clone()
        # skip_p1_odd: p1 has no gradient on odd steps (skipped by step, no state change)
        w1.grad = None if (skip_p1_odd and k % 2 == 1) else g1.clone()
        opt.step()
        t[f"p0.{k + 1}"] = w0.detach().clone()
        t[f"p1.{k + 1}"] = w1.detach().clone()
    sd = opt.state_dict()
    for i, st in sd["state"].items():
        for key, v in st.items():
            if isinstance(v, torch.Tensor):
                t[f"state.{i}.{key}"] = v.detach().clone().float() if key == "step" else v.detach().clone()
    meta = {"kind": kind, "groups": int(groups), "skip_p1_odd": int(skip_p1_odd)}
    meta.update({k: (json.dumps(v) if isinstance(v, (tuple, list)) else
                     (int(v) if isinstance(v, bool) else repr(v))) for k, v in opts.items()})
    meta["param_groups"] = json.dumps([{k: v for k, v in g.items() if k != "params"}
                                       for g in sd["param_groups"]], default=str)
    save_case(f"optim/{name}", t, meta)


def optimizer_cases():
    optim_case("sgd_plain", "sgd", {"lr": 0.1})
    optim_case("sgd_momentum", "sgd", {"lr": 0.05, "momentum": 0.9})
    optim_case("sgd_nesterov_wd", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True,
                                          "weight_decay": 1e-2}, seed=1)
    optim_case("sgd_dampening", "sgd", {"lr": 0.03, "momentum": 0.8, "dampening": 0.3,
                                        "weight_decay": 0.1}, seed=2)
    optim_case("sgd_maximize", "sgd", {"lr": 0.02, "momentum": 0.5, "maximize": True}, seed=3)
    optim_case("adam", "adam", {"lr": 1e-2}, seed=4)
    optim_case("adam_wd", "adam", {"lr": 3e-3, "betas": (0.8, 0.95), "eps": 1e-6,
                                   "weight_decay": 0.1}, seed=5)
    optim_case("adam_amsgrad", "adam", {"lr": 1e-2, "amsgrad": True, "weight_decay": 1e-3}, seed=6)
    optim_case("adam_maximize", "adam", {"lr": 1e-2, "maximize": True}, seed=7)
    optim_case("adamw", "adamw", {"lr": 1e-2, "weight_decay": 0.05}, seed=8)
    optim_case("adamw_amsgrad", "adamw", {"lr": 2e-2, "betas": (0.85, 0.99), "amsgrad": True},
               seed=9)
    optim_case("adam_groups_skip", "adam", {"lr": 1e-2}, seed=10, groups=True, skip_p1_odd=True)
    optim_case("sgd_groups_skip", "sgd", {"lr": 0.1, "momentum": 0.9}, seed=11, groups=True,
               skip_p1_odd=True)


def clip_cases():
    g = torch.Generator().manual_seed(100)
    shapes = [(4, 5), (7,), (2, 3, 3)]
    for name, max_norm, norm_type, scale in [("clip_l2", 1.0, 2.0, 1.0),
                                             ("clip_l2_noop", 100.0, 2.0, 1.0),
                                             ("clip_inf", 0.5, math.inf, 1.0),
                                             ("clip_l1", 2.0, 1.0, 1.0),
                                             ("clip_l3", 0.7, 3.0, 1.0),
                                             ("clip_big", 1.0, 2.0, 1000.0)]:
        ps = [torch.zeros(s, requires_grad=True) for s in shapes]
        t = {}
        for i, p in enumerate(ps):
            p.grad = torch.randn(p.shape, generator=g) * scale
            t[f"grad.{i}"] = p.grad.clone()
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
        for i, p in enumerate(ps):
            t[f"clipped.{i}"] = p.grad.clone()
        t["total"] = total.detach().clone().float().reshape(())
        save_case(f"optim/{name}", t, {"max_norm": repr(max_norm),
                                       "norm_type": "inf" if math.isinf(norm_type) else repr(norm_type),
                                       "total": repr(float(total))})


def sched_case(name, make, steps, opt_kind="sgd", lrs=(0.1,), momentum=0.9):
    params = [torch.zeros(1, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    if opt_kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lrs[0], momentum=momentum)
    else:
        opt = torch.optim.Adam(groups, lr=lrs[0])
    scheds = make(opt)
    if not isinstance(scheds, list):
        scheds = [scheds]
    seq = [[g["lr"] for g in opt.param_groups]]
    mom = [[(g["momentum"] if opt_kind == "sgd" else g["betas"][0]) for g in opt.param_groups]]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            opt.step()
            for s in scheds:
                s.step()
            seq.append([g["lr"] for g in opt.param_groups])
            mom.append([(g["momentum"] if opt_kind == "sgd" else g["betas"][0])
                        for g in opt.param_groups])
    # a tensor so the file has content; the exact values are the JSON (Python floats)
    t = {"lr": torch.tensor(seq, dtype=torch.float32)}
    save_case(f"optim/{name}", t, {"lrs": json.dumps(seq), "momentum": json.dumps(mom),
                                   "steps": steps, "opt": opt_kind, "groups": json.dumps(list(lrs))})


def scheduler_cases():
    S = torch.optim.lr_scheduler
    sched_case("sched_step", lambda o: S.StepLR(o, step_size=7, gamma=0.5), 35)
    sched_case("sched_multistep", lambda o: S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3), 35)
    sched_case("sched_cosine", lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3), 45)
    sched_case("sched_cosine_long", lambda o: S.CosineAnnealingLR(o, T_max=40), 40,
               lrs=(0.1, 0.02))
    sched_case("sched_linear", lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0,
                                                    total_iters=8), 30)
    sched_case("sched_linear_decay", lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                                          total_iters=20), 30)
    sched_case("sched_onecycle", lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=40), 40)
    sched_case("sched_onecycle_adam3", lambda o: S.OneCycleLR(o, max_lr=1e-2, total_steps=37,
                                                              three_phase=True), 37,
               opt_kind="adam", lrs=(1e-3, 1e-3))
    sched_case("sched_onecycle_linear", lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=31,
                                                               pct_start=0.25,
                                                               anneal_strategy="linear",
                                                               div_factor=10.0,
                                                               final_div_factor=100.0), 31)
    sched_case("sched_warmup_cosine", lambda o: [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                                 S.CosineAnnealingLR(o, T_max=30, eta_min=1e-4)],
               32)


if __name__ == "__main__":
    optimizer_cases()
    clip_cases()
    scheduler_cases()
    print("fixtures_optim: done")
