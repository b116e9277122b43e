"""fixtures_interop: a LeNet-5 trained by PyTorch (tools/train_reference.py's recipe, 1 epoch
of MNIST) saved as safetensors with state_dict() names, with its test accuracy and the logits
of the first 64 test images. tests/test_interop.c loads it into deepc's lenet5 and checks that
deepc evaluates it to the same accuracy (+- 0.02 points) and the same logits.

Run: /usr/bin/python3 tools/fixtures_interop.py   (writes tests/fixtures/interop/, ~250 KB)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cnn_models import build  # noqa: E402
from fixturelib import save_case  # noqa: E402
from train_reference import evaluate, load, normalize  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(2)
xtr, ytr, xte, yte = load("mnist", None)
x = normalize(xtr, "mnist")
y = torch.from_numpy(ytr)
xt, yt = normalize(xte, "mnist"), torch.from_numpy(yte)
model = build("lenet5", 1, 28)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
g = torch.Generator().manual_seed(0)
order = torch.randperm(len(x), generator=g)
model.train()
for i in range(0, len(order), 64):
    idx = order[i:i + 64]
    loss = F.cross_entropy(model(x[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
loss, acc, pred = evaluate(model, xt, yt)
with torch.no_grad():
    model.eval()
    logits = model(xt[:64])
print(f"PyTorch LeNet-5 after 1 epoch: test loss {loss:.6f}, accuracy {acc:.6f}")
tensors = {k: v for k, v in model.state_dict().items()}
save_case("interop/lenet5_mnist_torch", tensors,
          meta={"accuracy": f"{acc:.6f}", "loss": f"{loss:.6f}", "correct": int((pred == yt).sum())})
save_case("interop/lenet5_mnist_torch_logits", {"x": xt[:64], "logits": logits})
