"""Fit y = 3x - 2 by gradient descent, once per configuration of space.toml."""

from __future__ import annotations

import random

import pytest


def fit(epochs: int, lr: float, optimizer: str, noise: float, seed: int) -> list[float]:
    """Losses before training and after each epoch."""
    rng = random.Random(seed)
    xs = [rng.uniform(-1, 1) for _ in range(64)]
    ys = [3 * x - 2 + rng.gauss(0, noise) for x in xs]
    w = b = vw = vb = 0.0
    beta = 0.9 if optimizer == "momentum" else 0.0

    def loss() -> float:
        return sum((w * x + b - y) ** 2 for x, y in zip(xs, ys, strict=True)) / len(xs)

    losses = [loss()]
    for _ in range(epochs):
        gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys, strict=True)) / len(xs)
        gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys, strict=True)) / len(xs)
        vw, vb = beta * vw + gw, beta * vb + gb
        w, b = w - lr * vw, b - lr * vb
        losses.append(loss())
    return losses


@pytest.mark.space("space.toml", objective="loss:min")
def test_train(epochs, lr, optimizer, exp_params, exp_trial, record_metric):
    losses = fit(epochs, lr, optimizer, exp_params["noise"], exp_trial.seed)
    for value in losses:
        record_metric("loss", value)  # a learning curve; the table shows the last value
    assert losses[-1] < losses[0], f"loss went from {losses[0]:.3f} to {losses[-1]:.3f}"
