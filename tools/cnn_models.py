"""cnn_models: the PyTorch definitions of deepc's CNNs (deepc compare --models ...).

deepc's C models (src/models/cnn_*.c) are these modules, layer for layer, with the same
state_dict() names, so a checkpoint moves between the two with load_state_dict(strict=True).

28x28 inputs (MNIST, Fashion-MNIST): lenet5 uses conv1 padding=2 (LeCun's 32x32 layout);
alexnet, vgg11 and vgg16 zero-pad the image by 2 on each side to 32x32 (their five
poolings need it); resnet18 and resnet20 take 28x28 as it is (global average pooling).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def pad_to_32(x):
    """Zero-pads 28x28 images to 32x32 (a no-op for 32x32)."""
    if x.shape[-1] == 28:
        x = F.pad(x, (2, 2, 2, 2))
    return x


class LeNet5(nn.Module):
    def __init__(self, in_channels=1, image_size=28, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2 if image_size == 28 else 0)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class AlexNet(nn.Module):
    """The CIFAR adaptation of AlexNet (conv 11/4/5 -> 5 -> 3 -> 3 -> 3, linear 256 -> 10)."""

    def __init__(self, in_channels=3, image_size=32, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=5), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256, num_classes))

    def forward(self, x):
        x = self.features(pad_to_32(x))
        return self.classifier(torch.flatten(x, 1))


VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """VGG with BatchNorm, CIFAR-style classifier (512 -> 10)."""

    def __init__(self, name, in_channels=3, image_size=32, num_classes=10):
        super().__init__()
        layers = []
        c = in_channels
        for v in VGG_CFG[name]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.features(pad_to_32(x))
        return self.classifier(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    """ResNet basic block. shortcut 'B' (ResNet-18): 1x1 conv + BN projection named
    downsample.0/.1 as torchvision; shortcut 'A' (ResNet-20, He et al. 2016 CIFAR): stride-2
    subsampling and zero channels, no parameters."""

    def __init__(self, in_planes, planes, stride=1, shortcut="B"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut_kind = shortcut
        self.pad = 0
        self.downsample = None
        if stride != 1 or in_planes != planes:
            if shortcut == "B":
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
            else:
                self.pad = planes - in_planes
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            sc = self.downsample(x)
        elif self.pad:
            sc = x[:, :, ::self.stride, ::self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        else:
            sc = x
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, widths, blocks, shortcut, in_channels=3, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            layer = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layer.append(BasicBlock(c, w, stride, shortcut))
                c = w
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
        self.nlayers = len(widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.nlayers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(name, in_channels, image_size, num_classes=10):
    if name == "lenet5":
        return LeNet5(in_channels, image_size, num_classes)
    if name == "alexnet":
        return AlexNet(in_channels, image_size, num_classes)
    if name in VGG_CFG:
        return VGG(name, in_channels, image_size, num_classes)
    if name == "resnet18":
        return ResNet([64, 128, 256, 512], [2, 2, 2, 2], "B", in_channels, num_classes)
    if name == "resnet20":
        return ResNet([16, 32, 64], [3, 3, 3], "A", in_channels, num_classes)
    raise ValueError(f"unknown model {name}")


MODELS = ["lenet5", "alexnet", "vgg11", "vgg16", "resnet18", "resnet20"]

if __name__ == "__main__":
    for name in MODELS:
        for c, s in [(1, 28), (3, 32)]:
            m = build(name, c, s)
            y = m(torch.zeros(2, c, s, s))
            n = sum(p.numel() for p in m.parameters())
            print(f"{name:9s} {c}x{s}x{s}: params {n:>10,d} out {tuple(y.shape)}")
