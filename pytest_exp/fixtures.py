"""Fixtures that space-marked tests ask for."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_exp import gpu
from pytest_exp.items import SLOT, OptSlot, Slot, group_of, trial_of
from pytest_exp.metrics import SINK
from pytest_exp.session import STASH
from pytest_exp.trial import Trial, safe_name


@pytest.fixture
def _exp_slot(request: pytest.FixtureRequest) -> Slot | OptSlot:
    # Named as items.SLOT: the space marker parametrizes it indirectly.
    slot = getattr(request, "param", None)
    if not isinstance(slot, (Slot, OptSlot)):
        # exp_params needs exp_trial, so the first one present is the one the test asked for.
        used = next((n for n in ("exp_params", "exp_trial") if n in request.fixturenames), SLOT)
        pytest.fail(
            f"{request.node.nodeid} uses {used} but has no parameter "
            'space: mark it with @pytest.mark.space("space.toml")',
            pytrace=False,
        )
    return slot


class ExpTrial(Trial):
    """What ``exp_trial`` gives a test: the trial, and in a study with ``--exp-pruner`` whether
    to stop it early."""

    __slots__ = ()

    def should_prune(self) -> bool:
        """Whether the study's pruner would stop this trial now, judging the objective's values
        recorded with ``step=`` against the other trials' (always False without a pruner)."""
        __tracebackhide__ = True
        return _prune_reason() is not None

    def prune_if_needed(self) -> None:
        """Stop this trial if the pruner says so: it is skipped with the reason, stored as
        ``pruned``, and counts towards the study's budget."""
        __tracebackhide__ = True
        reason = _prune_reason()
        if reason is not None:
            pytest.skip(reason)


def _prune_reason() -> str | None:
    __tracebackhide__ = True
    return SINK.current.prune_reason() if SINK.current is not None else None


@pytest.fixture
def exp_trial(_exp_slot: Slot | OptSlot, request: pytest.FixtureRequest) -> ExpTrial:
    """The running trial: configuration ``id``, ``run`` (1..repeat), ``seed`` and ``params``."""
    trial = trial_of(request.node)
    assert trial is not None  # _exp_slot checked that this is a space trial
    return ExpTrial(*trial)


@pytest.fixture
def exp_params(exp_trial: Trial) -> dict[str, Any]:
    """Every parameter of the running configuration, as plain Python values."""
    return dict(exp_trial.params)


def _record_metric() -> Callable[[str, Any], None]:
    """``record_metric(name, value)``: record a number for this trial; again for a series.

    The trial's value of a metric is the last one recorded. NaN or infinity fails the trial.
    """
    # No ``request`` argument: pytest would build a FixtureDef for it in every test that asks.
    return SINK


record_metric = pytest.fixture(scope="session", name="record_metric")(_record_metric)


@pytest.fixture
def exp_gpus(request: pytest.FixtureRequest) -> list[int]:
    """The physical ids of the GPUs this process owns (``[]`` when none; see ``--exp-gpus``).

    Fails the test when ``CUDA_VISIBLE_DEVICES`` no longer says what pytest-exp set.
    """
    problem = gpu.drift(request.config)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    return gpu.owned(request.config)


@pytest.fixture
def exp_dir(_exp_slot: Slot | OptSlot, exp_trial: Trial, request: pytest.FixtureRequest) -> Path:
    """A directory for this trial's own artifacts, with its ``config.json``."""
    session = request.config.stash[STASH]
    trial = exp_trial
    if isinstance(_exp_slot, Slot):
        function = safe_name(group_of(request.node, _exp_slot))
    else:
        function = safe_name(_exp_slot.plan.function)
    # A study's trials are named by their slot: two slots may propose the same point.
    name = f"trial-{_exp_slot.number:03d}" if isinstance(_exp_slot, OptSlot) else f"{trial.id}-run{trial.run}"
    if session.store_dir is not None:
        root = session.store_dir / "artifacts"
    else:  # --exp-store none: artifacts go where pytest keeps its temporary files
        root = request.getfixturevalue("tmp_path_factory").getbasetemp() / "exp-artifacts"
    path = root / session.run_name / function / name
    path.mkdir(parents=True, exist_ok=True)
    config = {"test": request.node.nodeid, "id": trial.id, "run": trial.run, "seed": trial.seed}
    config["params"] = trial.params
    (path / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    return path
