"""fixtures_nn: PyTorch reference data for deepc's modules (tests/test_nn.c).

Run with Debian's torch:  /usr/bin/python3 tools/fixtures_nn.py
Writes tests/fixtures/nn/*.safetensors (well under 1 MB in all):

  nn/<case>_sd.safetensors   the module's state_dict() exactly as torch names it (loaded into
                             the deepc module by name, which also tests the names)
  nn/<case>.safetensors      input "x", output "out", upstream gradient "gy" (loss =
                             sum(out * gy)), "grad.x", "grad.<param name>" and, for modules
                             with running statistics, "after.<buffer name>" after the forward;
                             metadata "keys" = the state_dict key list (JSON, torch's order)
  nn/init_<case>.safetensors parameters right after torch.manual_seed(s) + construction, and
                             "after" = torch.rand(5) drawn next (the generator's position)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from fixturelib import save_case  # noqa: E402

torch.set_num_threads(2)


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (same attribute names and registration order)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


def randomize_affine(m, g):
    """Non-trivial weights for norm layers (so their gradients are tested meaningfully)."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
                if getattr(mod, "weight", None) is not None:
                    mod.weight.copy_(1 + 0.3 * torch.randn(mod.weight.shape, generator=g))
                    mod.bias.copy_(0.2 * torch.randn(mod.bias.shape, generator=g))


def module_case(name, make, x, train=True, int_input=False, passes=1, seed=0, randomize=True):
    torch.manual_seed(seed)
    m = make()
    g = torch.Generator().manual_seed(seed + 1000)
    if randomize:
        randomize_affine(m, g)
    m.train(train)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    save_case(f"nn/{name}_sd", sd)
    t = {"x": x.clone()}
    if not int_input:
        x = x.clone().requires_grad_(True)
    out = None
    for _ in range(passes):
        out = m(x)
    gy = torch.randn(out.shape, generator=g)
    (out * gy).sum().backward()
    t["out"] = out.detach()
    t["gy"] = gy
    if not int_input:
        t["grad.x"] = x.grad
    for k, p in m.named_parameters():
        if p.grad is not None:
            t[f"grad.{k}"] = p.grad.clone()
    for k, b in m.named_buffers():
        t[f"after.{k}"] = b.detach().clone()
    save_case(f"nn/{name}", t, {"keys": json.dumps(list(m.state_dict().keys())),
                                "train": int(train), "passes": passes})


def module_cases():
    g = torch.Generator().manual_seed(1)
    rn = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    module_case("linear", lambda: nn.Linear(5, 3), rn(2, 4, 5))
    module_case("linear_nobias", lambda: nn.Linear(6, 4, bias=False), rn(3, 6))
    module_case("conv2d", lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0)), rn(2, 3, 7, 6))
    module_case("conv2d_groups", lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False),
                rn(1, 4, 5, 5))
    module_case("conv_transpose2d", lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1,
                                                               output_padding=1), rn(2, 4, 3, 3))
    module_case("batchnorm2d_train", lambda: nn.BatchNorm2d(3), rn(4, 3, 5, 5))
    module_case("batchnorm2d_train2", lambda: nn.BatchNorm2d(3), rn(2, 3, 4, 4), passes=2)

    def bn_eval():
        m = nn.BatchNorm2d(3)
        with torch.no_grad():
            m.running_mean.copy_(torch.tensor([0.5, -0.2, 0.1]))
            m.running_var.copy_(torch.tensor([1.5, 0.7, 2.0]))
            m.num_batches_tracked.fill_(7)
        return m
    module_case("batchnorm2d_eval", bn_eval, rn(2, 3, 4, 4), train=False)
    module_case("batchnorm1d_train", lambda: nn.BatchNorm1d(5), rn(6, 5))
    module_case("batchnorm1d_3d", lambda: nn.BatchNorm1d(5, momentum=0.3), rn(4, 5, 7))
    module_case("batchnorm1d_cumulative", lambda: nn.BatchNorm1d(4, momentum=None), rn(6, 4), passes=3)
    module_case("batchnorm2d_noaffine", lambda: nn.BatchNorm2d(3, affine=False), rn(3, 3, 4, 4))
    module_case("batchnorm2d_notrack", lambda: nn.BatchNorm2d(3, track_running_stats=False),
                rn(3, 3, 4, 4), train=False)
    module_case("layernorm", lambda: nn.LayerNorm([4, 5]), rn(2, 3, 4, 5))
    module_case("layernorm_noaffine", lambda: nn.LayerNorm(6, eps=1e-3, elementwise_affine=False),
                rn(5, 6))
    module_case("groupnorm", lambda: nn.GroupNorm(2, 6), rn(2, 6, 3, 3))
    module_case("embedding", lambda: nn.Embedding(10, 4, padding_idx=1),
                torch.tensor([[1, 2, 3, 1, 9], [0, 1, 5, 5, 2]]), int_input=True)
    module_case("relu", nn.ReLU, rn(3, 7))
    module_case("leaky_relu", lambda: nn.LeakyReLU(0.2), rn(3, 7))
    module_case("gelu", nn.GELU, rn(3, 7))
    module_case("gelu_tanh", lambda: nn.GELU(approximate="tanh"), rn(3, 7))
    module_case("silu", nn.SiLU, rn(3, 7))
    module_case("tanh", nn.Tanh, rn(3, 7))
    module_case("sigmoid", nn.Sigmoid, rn(3, 7))
    module_case("maxpool2d", lambda: nn.MaxPool2d(3, stride=2, padding=1), rn(2, 3, 7, 7))
    module_case("avgpool2d", lambda: nn.AvgPool2d(2), rn(2, 3, 6, 5))
    module_case("avgpool2d_pad", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                rn(1, 2, 7, 6))
    module_case("adaptive_avgpool2d", lambda: nn.AdaptiveAvgPool2d((2, 3)), rn(2, 3, 7, 8))
    module_case("flatten", nn.Flatten, rn(2, 3, 2, 2))

    def mlp():
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 8), nn.Tanh()),
                             nn.Dropout(0.5), nn.Linear(8, 3))
    module_case("seq_mlp", mlp, rn(4, 6), train=False)
    module_case("resnet_block", lambda: BasicBlock(4, 8, stride=2), rn(2, 4, 6, 6))
    module_case("resnet_block_eval", lambda: BasicBlock(4, 4), rn(1, 4, 5, 5), train=False)

    def lenet():
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.Linear(32, 16), nn.GELU(), nn.Linear(16, 10))
    module_case("small_cnn", lenet, rn(3, 1, 12, 12))

    # a state dict in half precision (checkpoints often are)
    torch.manual_seed(5)
    m = nn.Linear(4, 3)
    save_case("nn/linear_f16_sd", {k: v.half() for k, v in m.state_dict().items()})
    save_case("nn/linear_bf16_sd", {k: v.bfloat16() for k, v in m.state_dict().items()})


def init_case(name, seed, make):
    torch.manual_seed(seed)
    m = make()
    t = {k: v.detach().clone() for k, v in m.state_dict().items()}
    t["after"] = torch.rand(5)
    save_case(f"nn/init_{name}", t, {"seed": seed, "keys": json.dumps(list(m.state_dict().keys()))})


def init_cases():
    init_case("linear", 42, lambda: nn.Linear(20, 7))
    init_case("conv2d", 7, lambda: nn.Conv2d(3, 8, (3, 5), stride=2, padding=1))
    init_case("conv2d_groups", 8, lambda: nn.Conv2d(4, 6, 3, groups=2))
    init_case("conv_transpose2d", 9, lambda: nn.ConvTranspose2d(4, 6, (3, 2), groups=2))
    init_case("embedding", 3, lambda: nn.Embedding(10, 8, padding_idx=2))
    init_case("embedding_tail", 4, lambda: nn.Embedding(5, 7))        # 35: blocks + redone tail
    init_case("embedding_small", 11, lambda: nn.Embedding(3, 4))      # < 16: double normals
    init_case("mlp", 0, lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    init_case("resnet_block", 1, lambda: BasicBlock(4, 8, stride=2))


if __name__ == "__main__":
    module_cases()
    init_cases()
    print("fixtures_nn: done")
