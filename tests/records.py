"""Hand-built trial records for the pure-logic tests (report, baseline), and a store's death."""

from __future__ import annotations

import os
from typing import Any

from pytest_exp.store import Store
from pytest_exp.trial import TrialRecord

TRAIN = "tests/test_a.py::test_train"


def trial(
    params: dict[str, Any],
    run: int = 1,
    status: str = "passed",
    duration: float = 1.0,
    function: str = TRAIN,
    message: str = "",
    **metrics: Any,
) -> TrialRecord:
    """A finished trial; a metric given as a number becomes a one-value series."""
    label = "-".join(f"{k}={v}" for k, v in params.items())
    return TrialRecord(
        test=f"{function}[{label}-run={run}]",
        function=function,
        config_id="cfg-" + label,
        run=run,
        params=params,
        seed=100 + run,
        metrics={k: v if isinstance(v, list) else [v] for k, v in metrics.items()},
        status=status,
        message=message,
        duration=duration,
    )


def die(store: Store) -> None:
    """What a SIGKILL leaves: nothing flushed or closed; the journal's lock goes with its fd."""
    store._db.close()
    for fd in store._journals.values():
        os.close(fd)
    store._journals.clear()
