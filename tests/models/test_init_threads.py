"""Models defer their layers' default init per thread: zoo models and plain layers built at the
same time in several threads all end with finite parameters distributed as their init says."""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
import pytest

from lamina import models, nn
from lamina.nn.modules.conv import _ConvNd


def _check_default(layer: nn.Module, what: str) -> None:
    """torch's default for Linear and conv: weight and bias ``U(±1/√fan_in)``."""
    w = layer.weight.array
    fan_in = w.shape[1] * math.prod(w.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    for name, a in (("weight", w), ("bias", layer.bias.array if layer.bias is not None else None)):
        if a is None:
            continue
        assert np.isfinite(a).all(), f"{what}.{name}: not finite"
        assert np.abs(a).max() <= bound * (1 + 1e-6), f"{what}.{name}: outside U(±{bound:.4g})"
    if w.size >= 500:  # the std of U(±b) is b/√3
        assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.2, f"{what}.weight: std {w.std():.4g}"


def _check_kaiming_fan_out(conv: _ConvNd, what: str) -> None:
    w = conv.weight.array
    assert np.isfinite(w).all(), f"{what}: not finite"
    std = math.sqrt(2 / (w.shape[0] * math.prod(w.shape[2:])))
    if w.size >= 400:
        assert abs(w.std() / std - 1) < 0.2, f"{what}: std {w.std():.4g}, kaiming fan_out says {std:.4g}"
        # 5 standard errors: the test makes some 3,000 such checks (200 builds × their convs), and
        # at 4 one of them fails by chance in about one run in six; a wrong init is off by far more
        assert abs(w.mean()) < 5 * std / math.sqrt(w.size), f"{what}: mean {w.mean():.4g}"


def _check_resnet20(m: nn.Module) -> None:
    for name, mod in m.named_modules():
        if isinstance(mod, _ConvNd):
            _check_kaiming_fan_out(mod, name)
        elif isinstance(mod, nn.Linear):
            _check_default(mod, name)
        elif isinstance(mod, nn.BatchNorm2d):
            assert (mod.weight.array == 1).all() and (mod.bias.array == 0).all(), name


def _check_unet(m: nn.Module) -> None:
    for p in m.parameters():
        assert np.isfinite(p.array).all()
    for name, mod in m.named_modules():
        if isinstance(mod, _ConvNd) and mod.weight.array.size >= 400:
            _check_kaiming_fan_out(mod, name)


BUILDS = [
    ("resnet20", lambda: models.resnet20(num_classes=10), _check_resnet20),
    ("unet", lambda: models.unet(base_channels=8, depth=2), _check_unet),
    ("mobilenet_v2", lambda: models.mobilenet_v2(width_mult=0.25, num_classes=10), None),
    ("Linear", lambda: nn.Linear(64, 32), lambda m: _check_default(m, "Linear")),
    ("Conv2d", lambda: nn.Conv2d(8, 16, 3), lambda m: _check_default(m, "Conv2d")),
    ("Conv1d", lambda: nn.Conv1d(4, 64, 5), lambda m: _check_default(m, "Conv1d")),
    ("Sequential", lambda: nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)),
     lambda m: [_check_default(m[i], f"Sequential[{i}]") for i in (0, 2)]),
]


def _check(name: str, m: nn.Module, check) -> None:
    for pname, p in m.named_parameters():
        assert np.isfinite(p.array).all(), f"{name}.{pname}: not finite"
    if check is not None:
        check(m)


def test_models_and_layers_built_in_four_threads_are_initialized() -> None:
    threads, per_thread = 4, 50
    errors: list[str] = []
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        start.wait()
        for i in range(per_thread):
            name, build, check = BUILDS[(k * 7 + i * 3) % len(BUILDS)]
            try:
                _check(name, build(), check)
            except AssertionError as e:
                errors.append(f"thread {k} build {i} ({name}): {e}")

    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so that builds interleave
    try:
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, f"{len(errors)} of {threads * per_thread} builds wrong; first: {errors[:3]}"
    # and nothing is left behind for the process: a layer built now draws its weights
    _check_default(nn.Linear(256, 128), "Linear after the threads")


def test_deferred_init_in_one_thread_leaves_layers_of_another_alone() -> None:
    """The interleaving that broke: thread A inside a model's deferred block while thread B
    builds a plain layer (before the fix, B's layer kept uninitialized memory)."""
    from lamina.models._init import deferred_init, no_weight_init

    inside, built = threading.Event(), threading.Event()
    got: dict[str, nn.Module] = {}

    def a() -> None:
        with deferred_init():
            got["deferred"] = nn.Linear(64, 64)
            inside.set()
            built.wait(10)

    def b() -> None:
        inside.wait(10)
        got["plain"] = nn.Linear(64, 64)
        with no_weight_init():
            got["zeros"] = nn.Conv2d(3, 8, 3)
        got["after"] = nn.Conv2d(3, 8, 3)
        built.set()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start(), tb.start()
    ta.join(), tb.join()
    _check_default(got["plain"], "plain Linear in thread B")
    _check_default(got["after"], "Conv2d in thread B after no_weight_init")
    assert not got["zeros"].weight.array.any() and not got["zeros"].bias.array.any()
    # the deferred layer is the builder's to initialize: models.init_model does it
    models._init.init_model(got["deferred"])
    _check_default(got["deferred"], "deferred Linear after init_model")


@pytest.mark.parametrize("name", ["resnet20", "unet"])
def test_no_weight_init_still_zeroes_models(name: str) -> None:
    with models.no_weight_init():
        m = models.get_model(name)
    assert all(not p.array.any() for n, p in m.named_parameters() if "bn" not in n and "norm" not in n
               and p.array.ndim > 1)


def test_skip_init_skips_the_draw_in_this_thread_only() -> None:
    """``nn.utils.skip_init`` (torch's name): the layer's weights are left for the caller."""
    from lamina import backend

    state = backend.generator().bit_generator.state
    m = nn.utils.skip_init(nn.Linear, 512, 256)
    assert backend.generator().bit_generator.state == state  # no random number was drawn
    assert m.weight.shape == (256, 512) and m.bias.shape == (256,)
    _check_default(nn.Linear(64, 32), "Linear after skip_init")
    with pytest.raises(TypeError, match="skip_init: expected a module class"):
        nn.utils.skip_init(nn.Linear(2, 2))


def test_layers_that_init_model_does_not_know_draw_their_weights_even_when_deferred() -> None:
    """Inside a model's deferred block only conv and linear layers skip their draw (init_model
    initializes those); others, such as DeformConv2d, initialize themselves as always."""
    from lamina.models._init import deferred_init
    from lamina.vision.ops import DeformConv2d

    with deferred_init():
        m = DeformConv2d(8, 16, 3)
    _check_default(m, "DeformConv2d built in deferred_init")
