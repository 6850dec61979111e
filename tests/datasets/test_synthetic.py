"""The synthetic 2-D data sets: arguments that would leave a class, a range or the noise empty or undefined."""

import math

import numpy as np
import pytest

from lamina.datasets import (
    make_blobs,
    make_gaussian_regression,
    make_moons,
    make_plane,
    make_rings,
    make_spirals,
    make_xor,
)


@pytest.mark.parametrize("call, message", [
    (lambda: make_blobs(10, centers=0), "make_blobs: centers must be a positive count"),
    (lambda: make_blobs(10, centers=-2), "make_blobs: centers must be a positive count"),
    (lambda: make_blobs(10, centers=np.zeros((0, 2))), r"make_blobs: centers .* got shape \(0, 2\)"),
    (lambda: make_blobs(10, centers=[[0.0, math.nan]]), "make_blobs: centers .* non-finite"),
    (lambda: make_blobs(3, centers=5), r"make_blobs: n must be at least the number of classes \(5\), got 3"),
    (lambda: make_blobs(10, std=-1.0), "make_blobs: std must be a finite non-negative number"),
    (lambda: make_spirals(10, classes=2.5), "make_spirals: classes must be an integer of at least 2, got 2.5"),
    (lambda: make_spirals(10, classes=1), "make_spirals: classes must be an integer of at least 2"),
    (lambda: make_spirals(2, classes=3), r"make_spirals: n must be at least the number of classes \(3\)"),
    (lambda: make_rings(1), r"make_rings: n must be at least the number of classes \(2\), got 1"),
    (lambda: make_moons(1), r"make_moons: n must be at least the number of classes \(2\)"),
    (lambda: make_rings(10, noise=math.nan), "make_rings: noise must be a finite non-negative number, got nan"),
    (lambda: make_moons(10, noise=math.inf), "make_moons: noise must be a finite non-negative number, got inf"),
    (lambda: make_xor(True), "make_xor: n must be a positive integer, got True"),
    (lambda: make_gaussian_regression(2.0), "make_gaussian_regression: n must be a positive integer, got 2.0"),
    (lambda: make_plane(10, coef=(1.0, 2.0, 3.0)), r"make_plane: coef must hold 2 numbers .* got shape \(3,\)"),
])
def test_bad_arguments_name_the_generator(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_smallest_sizes_give_every_class():
    for fn, k in [(make_rings, 2), (make_moons, 2), (lambda n, seed: make_spirals(n, classes=3, seed=seed), 3),
                  (lambda n, seed: make_blobs(n, centers=4, seed=seed), 4)]:
        _, y = fn(k, seed=0)
        assert sorted(y.tolist()) == list(range(k))
    X, y = make_blobs(6, centers=np.int64(3), seed=0)
    assert X.shape == (6, 2) and np.bincount(y.numpy()).tolist() == [2, 2, 2]
