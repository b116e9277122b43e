"""seq2seq_reference: the PyTorch side of `deepc seq2seq`: the same Seq2SeqWithAttention model
(same module names, so checkpoints load both ways), the same data recipe (SyntheticDataset of
U[0,1) sequences, lengths uniform in [min_len, max_len], target = reversed input; pad_sequence
collate; pack_padded_sequence encoder), MSE over real positions, Adam.

    /usr/bin/python3 tools/seq2seq_reference.py train --cell rnn --attention dot --epochs 10
    /usr/bin/python3 tools/seq2seq_reference.py bench --epochs 2          # seconds per epoch only

Run with LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OPENBLAS_CORETYPE=SkylakeX
OMP_NUM_THREADS=2 for the speed comparison (see ../shared/BASELINES.md). Prints a JSON line
with the per-epoch history and the final validation MSE. The data are drawn from torch's RNG
(not deepc's), so the two runs see different but identically distributed data.

Also provides model_fixtures(save_case) for tools/fixtures_rnn.py: the whole model on one padded
batch (loss and every parameter gradient) for tests/test_seq2seq.c.
"""
import argparse
import json
import random
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

RNNS = {"rnn": (nn.RNN, nn.RNNCell), "gru": (nn.GRU, nn.GRUCell), "lstm": (nn.LSTM, nn.LSTMCell)}


class Attention(nn.Module):
    """dot: h . enc_s; general (Luong): h . (W enc_s); additive (Bahdanau): v . tanh(W_q h + W_k enc_s + b)."""

    def __init__(self, kind, hidden):
        super().__init__()
        self.kind = kind
        if kind == "general":
            self.W = nn.Linear(hidden, hidden, bias=False)
        elif kind == "additive":
            self.query = nn.Linear(hidden, hidden, bias=False)
            self.key = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, 1, bias=False)

    def keys(self, enc):
        if self.kind == "general":
            return self.W(enc)
        if self.kind == "additive":
            return self.key(enc)
        return enc

    def forward(self, h, keys, enc, mask):
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.query(h).unsqueeze(1) + keys)).squeeze(2)
        else:
            scores = torch.bmm(keys, h.unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(~mask, float("-inf"))
        w = torch.softmax(scores, dim=1)
        return torch.bmm(w.unsqueeze(1), enc).squeeze(1), w


class Seq2SeqWithAttention(nn.Module):
    def __init__(self, cell="rnn", attention="dot", hidden=64, in_dim=1, out_dim=1, src_vocab=0, tgt_vocab=0, embed=0):
        super().__init__()
        self.cell = cell
        self.tokens = src_vocab > 0
        if self.tokens:
            embed = embed or hidden
            self.src_embed = nn.Embedding(src_vocab, embed, padding_idx=0)
            self.tgt_embed = nn.Embedding(tgt_vocab, embed, padding_idx=0)
            in_dim, out_dim = embed, tgt_vocab
        rnn, rnn_cell = RNNS[cell]
        self.encoder = rnn(in_dim, hidden, batch_first=True)
        self.attention = Attention(attention, hidden)
        self.decoder = rnn_cell(in_dim + hidden, hidden)
        self.fc_out = nn.Linear(2 * hidden, out_dim)

    def forward(self, src, lengths, tgt=None, steps=None, teacher_forcing=0.0, sos=1):
        """src [B, S, 1] (or token ids [B, S]), lengths [B]; tgt time-major [T, B, 1] (or [T, B]).
        Returns the outputs [T, B, out] and the attention weights [T, B, S]."""
        B, S = src.shape[0], src.shape[1]
        x = self.src_embed(src) if self.tokens else src
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        enc, hn = self.encoder(packed)
        enc, _ = pad_packed_sequence(enc, batch_first=True, total_length=S)
        if self.cell == "lstm":
            h, c = hn[0][0], hn[1][0]
        else:
            h, c = hn[0], None
        mask = torch.arange(S).unsqueeze(0) < lengths.unsqueeze(1)
        keys = self.attention.keys(enc)
        T = steps if steps is not None else tgt.shape[0]
        if self.tokens:
            prev = self.tgt_embed(torch.full((B,), sos, dtype=torch.long))
        else:
            prev = torch.zeros(B, 1)
        outs, ws = [], []
        for t in range(T):
            ctx, w = self.attention(h, keys, enc, mask)
            inp = torch.cat([prev, ctx], dim=1)
            if c is None:
                h = self.decoder(inp, h)
            else:
                h, c = self.decoder(inp, (h, c))
            out = self.fc_out(torch.cat([h, ctx], dim=1))
            outs.append(out)
            ws.append(w)
            teacher = teacher_forcing >= 1 or (teacher_forcing > 0 and random.random() < teacher_forcing)
            if self.tokens:
                idx = tgt[t] if teacher else out.argmax(1)
                prev = self.tgt_embed(idx)
            else:
                prev = tgt[t] if teacher else out
        return torch.stack(outs), torch.stack(ws)


def masked_mse(pred, tgt, mask):
    return ((pred - tgt) ** 2 * mask).sum() / mask.sum()


# ---- data (SyntheticDataset + pad_sequence collate) ----

def synthetic(n, min_len, max_len, gen):
    seqs = []
    for _ in range(n):
        L = int(torch.randint(min_len, max_len + 1, (1,), generator=gen))
        s = torch.rand(L, 1, generator=gen)
        seqs.append((s, s.flip(0)))
    return seqs


def collate(batch):
    src = pad_sequence([s for s, _ in batch], batch_first=True)
    tgt = pad_sequence([t for _, t in batch])  # time-major [T, B, 1]
    lengths = torch.tensor([len(s) for s, _ in batch], dtype=torch.long)
    mask = (torch.arange(tgt.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2).float()
    return src, lengths, tgt, mask


def evaluate(model, data, batch_size=256):
    model.eval()
    se, n = 0.0, 0.0
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            src, lengths, tgt, mask = collate(data[i:i + batch_size])
            pred, _ = model(src, lengths, tgt)
            se += float(((pred - tgt) ** 2 * mask).sum())
            n += float(mask.sum())
    return se / n


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1000)
    train_data = synthetic(args.train_size, args.min_len, args.max_len, gen)
    val_data = synthetic(args.val_size, args.min_len, args.max_len, gen)
    model = Seq2SeqWithAttention(args.cell, args.attention, args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    history = []
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train_data)).tolist()
        t0, c0 = time.perf_counter(), time.process_time()
        total, seen = 0.0, 0
        for i in range(0, len(perm), args.batch_size):
            batch = [train_data[j] for j in perm[i:i + args.batch_size]]
            src, lengths, tgt, mask = collate(batch)
            opt.zero_grad()
            pred, _ = model(src, lengths, tgt, teacher_forcing=args.teacher_forcing)
            loss = masked_mse(pred, tgt, mask)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        val = evaluate(model, val_data) if not args.no_eval else float("nan")
        history.append({"epoch": epoch + 1, "train_loss": total / seen, "val_loss": val, "seconds": secs,
                        "cpu_seconds": cpu})
        print(f"epoch {epoch + 1}: train_loss {total / seen:.6f} val_mse {val:.6f} ({secs:.2f} s)", file=sys.stderr)
    result = {"framework": "pytorch", "torch": torch.__version__, "threads": args.threads, "cell": args.cell,
              "attention": args.attention, "history": history, "val_mse": history[-1]["val_loss"],
              "seconds_per_epoch": sum(h["seconds"] for h in history) / len(history),
              "cpu_seconds_per_epoch": sum(h["cpu_seconds"] for h in history) / len(history)}
    print(json.dumps(result))


# ---- fixtures for tests/test_seq2seq.c ----

def model_fixtures(save_case):
    """The whole model on one padded batch: each (cell, attention) pair the test covers, loss with
    teacher forcing 0 (outputs fed back) and with 1, every parameter gradient."""
    for seed, (cell, att, tf) in enumerate([("rnn", "dot", 0.0), ("gru", "general", 0.0), ("lstm", "additive", 1.0),
                                            ("rnn", "additive", 0.0)]):
        torch.manual_seed(3 + seed)
        model = Seq2SeqWithAttention(cell, att, hidden=8)
        if att == "additive":
            # sharper scores: with the default init the additive attention is nearly uniform and its
            # gradients are sums that cancel to ~1e-6, below what float32 resolves relative to them
            with torch.no_grad():
                model.attention.v.weight.mul_(8)
                model.attention.key.weight.mul_(3)
                model.attention.query.weight.mul_(3)
        lengths = torch.tensor([5, 2, 4], dtype=torch.long)
        src = torch.zeros(3, 5, 1)
        tgt = torch.zeros(5, 3, 1)
        for b, L in enumerate(lengths.tolist()):
            s = torch.rand(L, 1)
            src[b, :L] = s
            tgt[:L, b] = s.flip(0)
        mask = (torch.arange(5).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2).float()
        pred, w = model(src, lengths, tgt, teacher_forcing=tf)
        loss = masked_mse(pred, tgt, mask)
        loss.backward()
        t = {"src": src, "lengths": lengths, "tgt": tgt, "pred": pred, "attn": w, "loss": loss}
        for k, p in model.named_parameters():
            t[k] = p
            t["grad." + k] = p.grad
        save_case(f"rnn/model_{cell}_{att}", t, meta={"cell": cell, "attention": att, "hidden": 8,
                                                      "teacher_forcing": tf})
    # the token model: embedding inputs, cross-entropy over real target tokens
    torch.manual_seed(4)
    model = Seq2SeqWithAttention("gru", "dot", hidden=8, src_vocab=12, tgt_vocab=7, embed=6)
    lengths = torch.tensor([3, 6, 1], dtype=torch.long)
    src = torch.zeros(3, 6, dtype=torch.long)
    tgt = torch.zeros(4, 3, dtype=torch.long)
    for b, L in enumerate(lengths.tolist()):
        src[b, :L] = torch.randint(3, 12, (L,))
        n = [4, 2, 3][b]
        tgt[:n - 1, b] = torch.randint(3, 7, (n - 1,))
        tgt[n - 1, b] = 2  # EOS
    for tf in (0.0, 1.0):
        model.zero_grad()
        pred, w = model(src, lengths, tgt, teacher_forcing=tf)
        loss = F.cross_entropy(pred.reshape(-1, 7), tgt.reshape(-1), ignore_index=0)
        loss.backward()
        t = {"src": src, "lengths": lengths, "tgt": tgt, "pred": pred, "loss": loss}
        for k, p in model.named_parameters():
            t[k] = p
            t["grad." + k] = p.grad
        save_case(f"rnn/model_tokens_tf{int(tf)}", t, meta={"cell": "gru", "attention": "dot", "hidden": 8, "embed": 6,
                                                           "src_vocab": 12, "tgt_vocab": 7, "teacher_forcing": tf})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["train", "bench"])
    p.add_argument("--cell", default="rnn", choices=list(RNNS))
    p.add_argument("--attention", default="dot", choices=["dot", "general", "additive"])
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--min-len", type=int, default=5)
    p.add_argument("--max-len", type=int, default=15)
    p.add_argument("--train-size", type=int, default=10000)
    p.add_argument("--val-size", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--teacher-forcing", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    args.no_eval = args.mode == "bench"
    train(args)


if __name__ == "__main__":
    main()
