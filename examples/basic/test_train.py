"""Fit y = 3x - 2 by gradient descent, once per configuration of space.toml."""

from __future__ import annotations

import random

import pytest


def fit(epochs: int, lr: float, optimizer: str, noise: float, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    xs = [rng.uniform(-1, 1) for _ in range(64)]
    ys = [3 * x - 2 + rng.gauss(0, noise) for x in xs]
    w = b = vw = vb = 0.0
    beta = 0.9 if optimizer == "momentum" else 0.0

    def loss() -> float:
        return sum((w * x + b - y) ** 2 for x, y in zip(xs, ys, strict=True)) / len(xs)

    first = loss()
    for _ in range(epochs):
        gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys, strict=True)) / len(xs)
        gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys, strict=True)) / len(xs)
        vw, vb = beta * vw + gw, beta * vb + gb
        w, b = w - lr * vw, b - lr * vb
    return first, loss()


@pytest.mark.space("space.toml")
def test_train(epochs, lr, optimizer, exp_params, exp_trial):
    first, last = fit(epochs, lr, optimizer, exp_params["noise"], exp_trial.seed)
    assert last < first, f"loss went from {first:.3f} to {last:.3f} with {exp_params}"
