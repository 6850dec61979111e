"""Transfer learning on synthetic images: pre-train a CIFAR-style ResNet on one task, then reuse
its backbone for another.

The images are noisy coloured sinusoidal gratings (16×16). Task A: tell the orientation among
0°, 45°, 90°, 135° (plenty of images). Task B: tell the orientation among 22.5°, 67.5°, 112.5°,
157.5° (new classes) from only a few labelled images. The script

1. pre-trains a small ``CifarResNet`` on task A;
2. fine-tunes on task B with the backbone frozen (new head, frozen batch norm): only the head
   learns, so few images suffice;
3. compares with discriminative learning rates (all layers train, deeper layers faster) and
   with training the same network from scratch on task B's few images;
4. shows the backbone's intermediate activations through ``create_feature_extractor``.

    python examples/transfer_learning.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np

import lamina
from lamina import models
from lamina.nn import functional as F

TASK_A = (0.0, 45.0, 90.0, 135.0)
TASK_B = (22.5, 67.5, 112.5, 157.5)


def gratings(angles: tuple[float, ...], n: int, seed: int, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images ``(3, size, size)`` of a grating at one of ``angles`` (±5°), random frequency,
    phase and colour, plus Gaussian noise; labels index ``angles``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(angles), n)
    theta = np.deg2rad(np.asarray(angles)[y] + rng.uniform(-5, 5, n))
    freq, phase = rng.uniform(0.15, 0.3, n), rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.mgrid[0:size, 0:size]
    proj = np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy
    wave = np.sin(2 * np.pi * freq[:, None, None] * proj + phase[:, None, None])
    colour = rng.uniform(0.2, 1.0, (n, 3, 1, 1))
    x = 0.5 + 0.5 * colour * wave[:, None] + rng.normal(0, 0.3, (n, 3, size, size))
    return x.astype(np.float32), y


def train(model: lamina.nn.Module, opt: lamina.optim.Optimizer, x: np.ndarray, y: np.ndarray, epochs: int,
          batch: int = 32, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(lamina.tensor(x[idx])), lamina.tensor(y[idx])).backward()
            opt.step()


def accuracy(model: lamina.nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with lamina.no_grad():
        pred = model(lamina.tensor(x)).numpy().argmax(1)
    return float((pred == y).mean())


def small_resnet() -> models.CifarResNet:
    return models.CifarResNet(depth=8, num_classes=4, width=8)


def main() -> None:
    ap = argparse.ArgumentParser(description="transfer learning on synthetic shapes")
    ap.add_argument("--quick", action="store_true", help="fewer images and epochs (a smoke run)")
    args = ap.parse_args()
    n_a, ep_a, n_b, ep_b = (384, 3, 24, 10) if args.quick else (768, 4, 24, 20)
    lamina.manual_seed(0)

    # 1. pre-train on task A
    xa, ya = gratings(TASK_A, n_a, seed=1)
    xa_test, ya_test = gratings(TASK_A, 256, seed=2)
    net = small_resnet()
    train(net, lamina.optim.SGD(net.parameters(), lr=0.05, momentum=0.9), xa, ya, ep_a)
    print(f"task A (orientations {TASK_A}), {n_a} images: test accuracy {accuracy(net, xa_test, ya_test):.2f}")
    pretrained = {k: v.numpy().copy() for k, v in net.state_dict().items()}

    # task B: new classes, few labelled images
    xb, yb = gratings(TASK_B, n_b, seed=3)
    xb_test, yb_test = gratings(TASK_B, 256, seed=4)

    # 2. frozen backbone: new head, frozen batch norm, only the head trains
    frozen = small_resnet()
    frozen.load_state_dict(pretrained)
    models.replace_head(frozen, num_classes=len(TASK_B))
    models.freeze(frozen)
    models.unfreeze(frozen, "fc.*")
    models.freeze_batchnorm(frozen)
    before = frozen.layer1[0].conv1.weight.numpy().copy()
    train(frozen, lamina.optim.SGD(models.trainable_parameters(frozen), lr=0.1, momentum=0.9), xb, yb, ep_b)
    assert np.array_equal(before, frozen.layer1[0].conv1.weight.numpy())  # the backbone did not move
    print(f"task B, {n_b} images, frozen backbone (head only): test accuracy {accuracy(frozen, xb_test, yb_test):.2f}")

    # 3a. discriminative learning rates: every layer trains, the early ones slowly
    fine = small_resnet()
    fine.load_state_dict(pretrained)
    models.replace_head(fine, num_classes=len(TASK_B))
    groups = models.discriminative_lr_groups(fine, lr=0.05, decay=2.6, momentum=0.9)
    print("  discriminative learning rates:", ", ".join(f"{g['lr']:.4f}" for g in groups))
    train(fine, lamina.optim.SGD(groups, lr=0.05), xb, yb, ep_b)
    print(f"task B, {n_b} images, discriminative fine-tuning: test accuracy {accuracy(fine, xb_test, yb_test):.2f}")

    # 3b. from scratch on the same few images
    scratch = small_resnet()
    train(scratch, lamina.optim.SGD(scratch.parameters(), lr=0.05, momentum=0.9), xb, yb, ep_b)
    print(f"task B, {n_b} images, from scratch: test accuracy {accuracy(scratch, xb_test, yb_test):.2f}")

    # 4. what the backbone computes: named intermediate activations
    fx = models.create_feature_extractor(frozen.eval(), {"layer1": "stage1", "layer3": "stage3"})
    feats = fx(lamina.tensor(xb_test[:4]))
    for k, v in feats.items():
        print(f"  {k}: shape {tuple(v.shape)}, mean activation {float(v.numpy().mean()):.3f}")


if __name__ == "__main__":
    main()
