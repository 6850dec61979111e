"""Whole models: one training step (forward, cross-entropy, backward, SGD step with momentum) of
lamina beside an identical torch model (same weights) in one process; prints medians and ratios.

Models: ``lenet5`` (batch 64, 1×32×32), CIFAR ``resnet20`` (batch 32, 3×32×32) and ``resnet18``
adapted to 32×32 (3×3 stride-1 stem, no max pool; batch 32).

    python bench/bench_models.py [--quick] [--threads 2] [--models lenet5,resnet20,resnet18]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import _harness  # noqa: E402
from _harness import block_medians, start_lamina_threads  # noqa: E402

start_lamina_threads()  # before torch: see _harness.py

import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402
from torch import nn as tnn  # noqa: E402

import lamina  # noqa: E402
from lamina import models, nn  # noqa: E402
from lamina.nn import functional as F  # noqa: E402


# --- torch twins (same module names as lamina's, so state_dicts match) ---------------------------
def torch_lenet5() -> tnn.Module:
    m = tnn.Module()
    m.features = tnn.Sequential(tnn.Conv2d(1, 6, 5), tnn.Tanh(), tnn.AvgPool2d(2), tnn.Conv2d(6, 16, 5), tnn.Tanh(),
                                tnn.AvgPool2d(2), tnn.Conv2d(16, 120, 5), tnn.Tanh())
    m.classifier = tnn.Sequential(tnn.Flatten(), tnn.Linear(120, 84), tnn.Tanh(), tnn.Linear(84, 10))
    m.forward = lambda x: m.classifier(m.features(x))
    return m


class _ShortcutA(tnn.Module):
    def __init__(self, pad):
        super().__init__()
        self.pad = pad

    def forward(self, x):
        return TF.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _CifarBlock(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.shortcut = _ShortcutA((cout - cin) // 2) if stride != 1 or cin != cout else tnn.Identity()

    def forward(self, x):
        out = TF.relu(self.bn1(self.conv1(x)))
        return TF.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class TorchResNet20(tnn.Module):
    def __init__(self, n=3, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(16)
        c = 16
        for i, w in enumerate((16, 32, 64)):
            blocks = [_CifarBlock(c if j == 0 else w, w, (1 if i == 0 else 2) if j == 0 else 1) for j in range(n)]
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            c = w
        self.fc = tnn.Linear(64, num_classes)

    def forward(self, x):
        x = TF.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(TF.adaptive_avg_pool2d(x, 1), 1))


class _Basic(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet18Cifar(tnn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.Identity()
        c = 64
        for i, w in enumerate((64, 128, 256, 512)):
            s = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", tnn.Sequential(_Basic(c, w, s), _Basic(w, w, 1)))
            c = w
        self.avgpool = tnn.AdaptiveAvgPool2d(1)
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def lamina_resnet18_cifar() -> nn.Module:
    """torchvision's resnet18 with the usual CIFAR stem: 3×3 stride-1 conv, no max pool."""
    m = models.resnet18(num_classes=10)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


CASES = {
    "lenet5": (lambda: models.lenet5(num_classes=10), torch_lenet5, (64, 1, 32, 32)),
    "resnet20": (lambda: models.resnet20(num_classes=10), TorchResNet20, (32, 3, 32, 32)),
    "resnet18": (lamina_resnet18_cifar, TorchResNet18Cifar, (32, 3, 32, 32)),
}


def step_fn(model, opt, x, y, lib):
    def run():
        opt.zero_grad()
        out = model(x)
        loss = F.cross_entropy(out, y) if lib == "lamina" else TF.cross_entropy(out, y)
        loss.backward()
        opt.step()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--block-s", type=float, default=_harness.MIN_BLOCK_S,
                    help="time each block for at least this long (0: only the repeats, right after the pause)")
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads of each library (the project machine has 2 cores)")
    ap.add_argument("--models", default="lenet5,resnet20,resnet18")
    args = ap.parse_args()
    _harness.set_min_block(args.block_s)
    torch.set_num_threads(args.threads)
    lamina.set_num_threads(args.threads)
    reps = 3 if args.quick else 7
    print(f"one training step (forward, loss, backward, SGD momentum 0.9), 2 rounds of {reps}+ repeats "
          f"per library in blocks of {_harness.MIN_BLOCK_S} s at least (see _harness.py); "
          f"threads {args.threads} each; times: median (best)")
    print(f"{'model':10s} {'batch':>16s} {'lamina ms':>16s} {'torch ms':>16s} {'ratio':>12s}")
    rng = np.random.default_rng(0)
    for name in args.models.split(","):
        make_l, make_t, shape = CASES[name]
        lamina.manual_seed(0)
        torch.manual_seed(0)
        lm, tm = make_l().train(), make_t().train()
        lm.load_state_dict(tm.state_dict(), strict=True)
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0])
        lopt = lamina.optim.SGD(lm.parameters(), lr=0.01, momentum=0.9)
        topt = torch.optim.SGD(tm.parameters(), lr=0.01, momentum=0.9)
        t_l, t_t = block_medians([step_fn(lm, lopt, lamina.tensor(x), lamina.tensor(y), "lamina"),
                                      step_fn(tm, topt, torch.from_numpy(x), torch.from_numpy(y), "torch")], reps)
        med_l, med_t, best_l, best_t = (statistics.median(t_l), statistics.median(t_t), min(t_l), min(t_t))
        print(f"{name:10s} {str(shape):>16s} {1e3 * med_l:8.1f} ({1e3 * best_l:6.1f}) {1e3 * med_t:8.1f} "
              f"({1e3 * best_t:6.1f}) {med_l / med_t:5.2f} ({best_l / best_t:4.2f})")


if __name__ == "__main__":
    main()
