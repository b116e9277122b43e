"""fixtures_rnn: PyTorch references for deepc's recurrent layers, cells and attention
(tests/test_rnn.c) and for the whole seq2seq model on one padded batch (tests/test_seq2seq.c).

Layers run through pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence when a case
has lengths, exactly as the seq2seq encoder does. Each case saves the inputs, the parameters
under PyTorch's names, random output gradients (gy for the output, gh / gc for h_n / c_n: the
loss is sum(out * gy) + sum(h_n * gh) + sum(c_n * gc)), the outputs and every gradient.

Run: /usr/bin/python3 tools/fixtures_rnn.py   (Debian's torch; writes tests/fixtures/rnn/)
"""
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixturelib import save_case  # noqa: E402

torch.manual_seed(0)

MODES = {"rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}), "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
         "gru": (nn.GRU, {}), "lstm": (nn.LSTM, {})}
MODE_ID = {"rnn_tanh": 0, "rnn_relu": 1, "gru": 2, "lstm": 3}


def layer_case(name, mode, T, B, I, H, layers=1, batch_first=False, lengths=None, h0=False, bias=True):
    cls, kw = MODES[mode]
    m = cls(I, H, num_layers=layers, bias=bias, batch_first=batch_first, **kw)
    with torch.no_grad():  # spread the weights a little wider than the default so gates saturate somewhat
        for p in m.parameters():
            p.mul_(1.5)
    x = torch.randn(*((B, T, I) if batch_first else (T, B, I)), requires_grad=True)
    state = None
    t = {}
    if h0:
        hx = torch.randn(layers, B, H, requires_grad=True)
        if mode == "lstm":
            cx = torch.randn(layers, B, H, requires_grad=True)
            state = (hx, cx)
            t["c0"] = cx
        else:
            state = hx
        t["h0"] = hx
    if lengths is not None:
        lt = torch.tensor(lengths, dtype=torch.int64)
        packed = pack_padded_sequence(x, lt, batch_first=batch_first, enforce_sorted=False)
        out, hn = m(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
        t["lengths"] = lt
    else:
        out, hn = m(x, state)
    if mode == "lstm":
        hn, cn = hn
    gy = torch.randn_like(out)
    gh = torch.randn_like(hn)
    loss = (out * gy).sum() + (hn * gh).sum()
    if mode == "lstm":
        gc = torch.randn_like(cn)
        loss = loss + (cn * gc).sum()
        t.update({"gc": gc, "c_n": cn})
    loss.backward()
    t.update({"x": x, "out": out, "h_n": hn, "gy": gy, "gh": gh, "grad.x": x.grad})
    if h0:
        t["grad.h0"] = t["h0"].grad
        if mode == "lstm":
            t["grad.c0"] = t["c0"].grad
    for pname, p in m.named_parameters():
        t[pname] = p
        t["grad." + pname] = p.grad
    save_case(f"rnn/layer_{name}", t, meta={"mode": MODE_ID[mode], "layers": layers, "batch_first": int(batch_first),
                                            "bias": int(bias), "hidden": H, "input": I})


def cell_case(name, mode, B, I, H, with_state=True, bias=True, unbatched=False):
    cls = {"rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[mode]
    kw = {"nonlinearity": "relu"} if mode == "rnn_relu" else {}
    m = cls(I, H, bias=bias, **kw)
    shape = (I,) if unbatched else (B, I)
    hshape = (H,) if unbatched else (B, H)
    x = torch.randn(*shape, requires_grad=True)
    t = {"x": x}
    state = None
    if with_state:
        h = torch.randn(*hshape, requires_grad=True)
        t["h"] = h
        state = h
        if mode == "lstm":
            c = torch.randn(*hshape, requires_grad=True)
            t["c"] = c
            state = (h, c)
    out = m(x, state)
    if mode == "lstm":
        h1, c1 = out
        gh, gc = torch.randn_like(h1), torch.randn_like(c1)
        ((h1 * gh).sum() + (c1 * gc).sum()).backward()
        t.update({"h_out": h1, "c_out": c1, "gh": gh, "gc": gc})
    else:
        gh = torch.randn_like(out)
        (out * gh).sum().backward()
        t.update({"h_out": out, "gh": gh})
    t["grad.x"] = x.grad
    if with_state:
        t["grad.h"] = t["h"].grad
        if mode == "lstm":
            t["grad.c"] = t["c"].grad
    for pname, p in m.named_parameters():
        t[pname] = p
        t["grad." + pname] = p.grad
    save_case(f"rnn/cell_{name}", t, meta={"mode": MODE_ID[mode], "bias": int(bias), "hidden": H})


def attention_case(name, kind, B, S, E, lengths=None):
    """dot / additive ops, and Luong's general (dot over W enc) and Bahdanau's additive as the
    modules compute them, so the C test covers both the ops and dc_attention_*."""
    q = torch.randn(B, E, requires_grad=True)
    enc = torch.randn(B, S, E, requires_grad=True)
    t = {"query": q, "values": enc}
    params = {}
    if kind == "dot":
        keys = enc
        scores = torch.bmm(enc, q.unsqueeze(2)).squeeze(2)
    elif kind == "general":
        W = nn.Linear(E, E, bias=False)
        params = {"W.weight": W.weight}
        keys = W(enc)
        scores = torch.bmm(keys, q.unsqueeze(2)).squeeze(2)
    else:
        Wq, Wk, v = nn.Linear(E, E, bias=False), nn.Linear(E, E), nn.Linear(E, 1, bias=False)
        params = {"query.weight": Wq.weight, "key.weight": Wk.weight, "key.bias": Wk.bias, "v.weight": v.weight}
        energy = torch.tanh(Wq(q).unsqueeze(1) + Wk(enc))
        scores = v(energy).squeeze(2)
    if lengths is not None:
        lt = torch.tensor(lengths, dtype=torch.int64)
        mask = torch.arange(S).unsqueeze(0) < lt.unsqueeze(1)
        scores = scores.masked_fill(~mask, float("-inf"))
        t["lengths"] = lt
    a = torch.softmax(scores, dim=1)
    ctx = torch.bmm(a.unsqueeze(1), enc).squeeze(1)
    g = torch.randn_like(ctx)
    (ctx * g).sum().backward()
    t.update({"context": ctx, "weights": a, "gout": g, "grad.query": q.grad, "grad.values": enc.grad})
    for k, p in params.items():
        t[k] = p
        t["grad." + k] = p.grad
    save_case(f"rnn/attention_{name}", t, meta={"kind": kind})


# ---- layers: every mode, padded batches (unsorted lengths), batch 1, stacked, no bias ----
layer_case("rnn_tanh_packed", "rnn_tanh", T=5, B=3, I=4, H=6, batch_first=True, lengths=[5, 2, 4], h0=True)
layer_case("rnn_relu_2layers", "rnn_relu", T=4, B=2, I=3, H=5, layers=2)
layer_case("gru_packed", "gru", T=6, B=4, I=3, H=5, batch_first=True, lengths=[3, 6, 1, 4], h0=True)
layer_case("gru_2layers_timemajor", "gru", T=4, B=3, I=2, H=4, layers=2, lengths=[4, 2, 3])
layer_case("lstm_packed", "lstm", T=5, B=3, I=4, H=5, lengths=[2, 5, 3], h0=True)
layer_case("lstm_2layers_nobias", "lstm", T=3, B=2, I=3, H=4, layers=2, batch_first=True, bias=False, h0=True)
layer_case("lstm_batch1", "lstm", T=7, B=1, I=2, H=3)
layer_case("rnn_tanh_batch1_len1", "rnn_tanh", T=1, B=1, I=3, H=4, lengths=[1], h0=True)

# ---- cells ----
for mode in MODES:
    cell_case(mode, mode, B=3, I=5, H=4)
cell_case("gru_nostate", "gru", B=2, I=3, H=6, with_state=False)
cell_case("lstm_nostate_nobias", "lstm", B=2, I=3, H=4, with_state=False, bias=False)
cell_case("rnn_tanh_unbatched", "rnn_tanh", B=1, I=3, H=5, unbatched=True)
cell_case("lstm_unbatched", "lstm", B=1, I=4, H=3, unbatched=True)

# ---- attention ----
attention_case("dot_masked", "dot", B=3, S=5, E=4, lengths=[5, 2, 3])
attention_case("dot_full", "dot", B=1, S=4, E=6)
attention_case("general_masked", "general", B=3, S=4, E=5, lengths=[1, 4, 2])
attention_case("additive_masked", "additive", B=3, S=5, E=4, lengths=[4, 5, 1])
attention_case("additive_full", "additive", B=2, S=3, E=6)

# ---- default initialisation: the same draws as torch after manual_seed ----
torch.manual_seed(7)
init = {"gru." + k: v for k, v in nn.GRU(3, 5, num_layers=2).named_parameters()}
init.update({"lstmcell." + k: v for k, v in nn.LSTMCell(4, 3).named_parameters()})
save_case("rnn/init", init, meta={"seed": 7})

if __name__ == "__main__" and "--no-model" not in sys.argv:
    # the whole seed model on one padded batch (its definition is the PyTorch reference script's)
    from seq2seq_reference import model_fixtures
    model_fixtures(save_case)
