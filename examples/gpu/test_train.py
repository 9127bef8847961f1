"""One worker per GPU: ``pytest -n auto`` on a GPU machine gives every worker one device.

On a machine without GPUs the GPU test is skipped (``needs_gpu``) and the rest still runs.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def test_devices_are_pinned_from_conftest_import_on(exp_gpus, visible_at_import):
    # exp_gpus: the physical ids this process owns ([] without GPUs: the environment is untouched).
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == visible_at_import
    if exp_gpus:
        assert visible_at_import == ",".join(map(str, exp_gpus))
    if importlib.util.find_spec("torch") is not None:
        import torch

        assert torch.cuda.device_count() == len(exp_gpus) or not exp_gpus


@pytest.mark.needs_gpu
@pytest.mark.space({"lr": [0.3, 0.1, 0.03, 0.01]}, objective="loss:min")
def test_train(lr, exp_gpus, record_metric):
    torch = pytest.importorskip("torch", reason="this example trains with PyTorch")
    assert torch.cuda.device_count() == len(exp_gpus)  # the worker sees only its own
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 1024, device="cuda").unsqueeze(1)
    y = 3 * x - 2 + 0.1 * torch.randn_like(x)
    model = torch.nn.Linear(1, 1).cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(200):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    record_metric("loss", loss.item())
