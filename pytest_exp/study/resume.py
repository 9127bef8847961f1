"""A study's identity across runs, and what the store already holds of it.

A run continues the latest study of a test function when its key matches (same test, same
space); its finished slots count towards the budget and are replayed into the optimizer.
The store (and sqlite3) is imported only when a study starts.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_exp.space import Space
from pytest_exp.trial import TrialRecord, canonical_json, derive_seed, same_test

if TYPE_CHECKING:
    from pytest_exp.store import Store


def study_key(function: str, space: Space) -> str:
    """What makes two runs the same study: the test and the meaning of its space."""
    return hashlib.sha256(canonical_json([function, space.fingerprint()]).encode()).hexdigest()[:16]


def resumed_seed(seed: int, replayed: int) -> int:
    """The optimizer's seed in a run that resumes a study with ``replayed`` finished trials: one
    of its own, since with the first run's its random draws (random search, initial points, a
    sampler's startup) would repeat the stored points."""
    return derive_seed(seed, "resume", replayed) if replayed else seed


def counts_towards_budget(record: TrialRecord) -> bool:
    # A trial cut off by an interruption did not run: a resumed study runs it again.
    return record.status != "interrupted" and record.trial is not None


class StoredStudies:
    """The studies in the store of ``directory``, as they stood before the run ``run_name``
    (whose own trials are left out: a worker replacing a crashed one must collect the same)."""

    def __init__(self, directory: Path | None, run_name: str, notes: list[str]) -> None:
        self.directory = directory
        self.run_name = run_name
        self.notes = notes  # where to tell what opening the store reported (journals recovered)

    def _store(self) -> Store | None:
        from pytest_exp.store import FILENAME, Store

        if self.directory is None or not (self.directory / FILENAME).exists():
            return None  # no store (--exp-store none), or none yet
        store = Store.open_existing(self.directory)
        self.notes += store.notes
        return store

    def history(self, study: str) -> list[TrialRecord]:
        """Every stored trial of a study (the proposer replays them before proposing)."""
        store = self._store()
        if store is None:
            return []
        with store:
            return store.study_trials(study, before_run=self.run_name)

    def previous(self, function: str) -> tuple[str, int] | None:
        """The latest study of a test function in the store, and the run that last added to it."""
        store = self._store()
        if store is None:
            return None
        with store:
            return store.latest_study(function)

    def resume(self, function: str, space: Space, *, fresh: bool) -> tuple[str, set[int]]:
        """The study to continue (or start: ``<key>/<run name>``) and the trial slots it already
        used. A study stored under another node id of the same test (pytest's rootdir moved, see
        :func:`same_test`) is continued too, under its own key, when its space is this one."""
        new = f"{study_key(function, space)}/{self.run_name}"
        if fresh:
            return new, set()
        name = function if self.previous(function) is not None else self._moved(function)
        latest = None if name is None else self.previous(name)
        if name is None or latest is None or not latest[0].startswith(study_key(name, space) + "/"):
            return new, set()
        earlier = self.history(latest[0])
        return latest[0], {r.trial for r in earlier if counts_towards_budget(r) and r.trial is not None}

    def _moved(self, function: str) -> str | None:
        """The one test function of the store's studies that is ``function`` under another rootdir."""
        store = self._store()
        if store is None:
            return None
        with store:
            matches = same_test(function, store.study_functions())
        return matches[0] if len(matches) == 1 else None
