"""Logistic regression by full-batch gradient descent on a seeded two-moons-like data set, in numpy.

Each configuration runs twice (``repeat=2``, distinct seeds); the gate compares the mean over both
runs with baseline.jsonl, using the tolerances in pytest.ini.
"""

from __future__ import annotations

import numpy as np
import pytest


def make_data(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, np.pi, n)
    label = rng.integers(0, 2, n)
    x = np.where(label == 0, np.cos(angle), 1 - np.cos(angle))
    y = np.where(label == 0, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([x, y], axis=1) + rng.normal(0, 0.2, (n, 2))
    # Quadratic features make the moons nearly separable by a linear model.
    features = np.column_stack([points, points**2, points[:, 0] * points[:, 1], np.ones(n)])
    return features, label.astype(float)


def fit(lr: float, epochs: int, l2: float, seed: int) -> tuple[float, float]:
    """Validation log-loss and accuracy after training on the first 300 points."""
    features, labels = make_data(seed)
    train_x, val_x = features[:300], features[300:]
    train_y, val_y = labels[:300], labels[300:]
    w = np.zeros(features.shape[1])
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-train_x @ w))
        w -= lr * (train_x.T @ (p - train_y) / len(train_y) + l2 * w)
    p = np.clip(1 / (1 + np.exp(-val_x @ w)), 1e-12, 1 - 1e-12)
    val_loss = -np.mean(val_y * np.log(p) + (1 - val_y) * np.log(1 - p))
    accuracy = np.mean((p > 0.5) == (val_y == 1))
    return float(val_loss), float(accuracy)


@pytest.mark.space("ci.toml", objective="val_loss:min", repeat=2)
def test_model(lr, epochs, l2, exp_trial, record_metric):
    val_loss, accuracy = fit(lr, epochs, l2, exp_trial.seed)
    record_metric("val_loss", val_loss)
    record_metric("accuracy", accuracy)
    assert accuracy > 0.6, f"accuracy {accuracy:.3f}: the model did not learn"
