"""The proposer: owns the studies of a run and hands out their points, in the controller (or
the only process), and the handle xdist workers ask it through.

Workers talk to the controller over ``multiprocessing.connection`` on 127.0.0.1 with a random
key handed out in ``workerinput``; only plain data crosses. Results are told in the controller,
from the reports it receives, so a worker that dies mid-trial loses nothing the proposer knew.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pytest_exp.space import Space
from pytest_exp.study import backend
from pytest_exp.study.resume import counts_towards_budget
from pytest_exp.study.study import Study, objective_value
from pytest_exp.trial import Objective, Point, TrialRecord, safe_name

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


@dataclass(frozen=True, slots=True)
class StudySpec:
    """What a process asking for a point says of its study: enough to start it anywhere."""

    key: str
    function: str
    space: dict[str, Any]  # Space.to_dict(): plain data
    objective: str | None
    budget: int
    settings: dict[str, Any]
    backend: str = backend.DEFAULT


class Proposing(Protocol):
    """What a trial's setup asks for its point: the proposer itself, or a worker's handle on it."""

    def ask(self, spec: StudySpec, index: int) -> Point: ...


class Proposer:
    """Owns the studies of this run. Thread-safe: the server serves workers from threads.

    ``history`` gives a study's stored trials, ``previous`` the latest stored study of a test
    function and its run (see :class:`~pytest_exp.study.resume.StoredStudies`).
    """

    def __init__(
        self,
        history: Callable[[str], list[TrialRecord]],
        previous: Callable[[str], tuple[str, int] | None],
    ) -> None:
        self._history = history
        self._previous = previous
        self._lock = threading.Lock()
        self.studies: dict[str, Study] = {}
        self.origins: dict[str, str] = {}  # how each study began: resumed, new, restarted
        self.functions: dict[str, str] = {}

    def ask(self, spec: StudySpec, index: int) -> Point:
        with self._lock:
            study = self.studies.get(spec.key)
            if study is None:
                study = self.studies[spec.key] = self._start(spec)
            return dict(study.ask(index))

    def tell(self, record: TrialRecord) -> None:
        with self._lock:
            study = self.studies.get(record.study or "")
            if study is not None and record.trial is not None:
                study.tell(record.trial, objective_value(record))

    def _start(self, spec: StudySpec) -> Study:
        objective = Objective.parse(spec.objective) if spec.objective else None
        space = Space.from_dict(spec.space, source=spec.function)
        optimizer = backend.load(spec.backend).create(space, spec.settings)
        study = Study(spec.key, objective, spec.budget, optimizer)
        done = [r for r in self._history(spec.key) if counts_towards_budget(r)]
        study.replay([(r.trial, r.params, objective_value(r)) for r in done if r.trial is not None])
        self.functions[spec.key] = spec.function
        self.origins[spec.key] = self._origin(spec, len(done))
        return study

    def _origin(self, spec: StudySpec, replayed: int) -> str:
        if replayed:
            return f"resumed: {replayed} trials of earlier runs replayed into the optimizer"
        previous = self._previous(spec.function)
        if previous is None or previous[0] == spec.key:
            return "new study"
        if previous[0].split("/")[0] == spec.key.split("/")[0]:
            return f"started over (--exp-fresh); the study of run {previous[1]} stays in the store"
        return f"the space changed since run {previous[1]}: a new study (the old one stays in the store)"

    def plot(self, path: Path) -> list[Path]:
        """A convergence plot per study: ``path`` itself for one, ``path-<test>.png`` for several."""
        from pytest_exp.report import convergence_plot

        written = []
        for key, study in self.studies.items():
            function = self.functions[key]
            target = path
            if len(self.studies) > 1:
                target = path.with_name(f"{path.stem}-{safe_name(function)}{path.suffix}")
            convergence_plot(target, function, sorted(study.finished.items()), study.objective)
            written.append(target)
        return written

    def summaries(self) -> dict[str, str]:
        """One line per study, by test function: progress, how it began, and the best trial."""
        lines = {}
        for key, study in self.studies.items():
            done = len(study.finished)
            line = f"study {key}: {done} of {study.budget} trials done; {self.origins[key]}"
            best = study.best()
            if best is not None:
                index, value = best
                name = study.objective.name if study.objective else "objective"
                params = ", ".join(f"{k}={v!r}" for k, v in study.assigned[index].items())
                line += f"\nbest of the study: trial-{index:03d} {name}={value:.6g} ({params})"
            lines[self.functions[key]] = line
        return lines


class ProposerServer:
    """Serves a proposer to xdist workers: one thread per worker connection."""

    def __init__(self, proposer: Proposer) -> None:
        self.proposer = proposer
        from multiprocessing.connection import Listener  # here: only xdist runs serve workers

        self.authkey = os.urandom(32)
        self._listener = Listener(("127.0.0.1", 0), authkey=self.authkey)
        self.address: tuple[str, int] = self._listener.address
        threading.Thread(target=self._accept, name="pytest-exp-proposer", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn = self._listener.accept()
            except OSError:  # closed at the end of the session
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Connection) -> None:
        with conn:
            while True:
                try:
                    fields, index = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    conn.send(("ok", self.proposer.ask(StudySpec(**fields), index)))
                except Exception as e:  # the worker reports it as its trial's setup error
                    conn.send(("error", f"{type(e).__name__}: {e}"))

    def close(self) -> None:
        self._listener.close()


class ProposerError(RuntimeError):
    """The proposer could not give a point; the trial errors at setup with this message."""


class RemoteProposer:
    """A worker's handle on the controller's proposer."""

    def __init__(self, address: tuple[str, int], authkey: bytes) -> None:
        self._address = address
        self._authkey = authkey
        self._conn: Connection | None = None

    def ask(self, spec: StudySpec, index: int) -> Point:
        if self._conn is None:
            from multiprocessing.connection import Client

            host, port = self._address  # execnet hands a tuple over as a list
            self._conn = Client((host, port), authkey=self._authkey)
        self._conn.send((asdict(spec), index))  # plain data: the server unpickles nothing else
        status, value = self._conn.recv()
        if status != "ok":
            raise ProposerError(value)
        return dict(value)
