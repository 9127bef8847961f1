"""Fixtures that space-marked tests ask for."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_exp.session import SLOT, Slot
from pytest_exp.space import Trial


@pytest.fixture
def _exp_slot(request: pytest.FixtureRequest) -> Slot:
    # Named as session.SLOT: the space marker parametrizes it indirectly.
    slot = getattr(request, "param", None)
    if not isinstance(slot, Slot):
        # exp_params needs exp_trial, so the first one present is the one the test asked for.
        used = next((n for n in ("exp_params", "exp_trial") if n in request.fixturenames), SLOT)
        pytest.fail(
            f"{request.node.nodeid} uses {used} but has no parameter "
            'space: mark it with @pytest.mark.space("space.toml")',
            pytrace=False,
        )
    return slot


@pytest.fixture
def exp_trial(_exp_slot: Slot) -> Trial:
    """The running trial: configuration ``id``, ``run`` (1..repeat), ``seed`` and ``params``."""
    return _exp_slot.trial()


@pytest.fixture
def exp_params(exp_trial: Trial) -> dict[str, Any]:
    """Every parameter of the running configuration, as plain Python values."""
    return dict(exp_trial.params)
