"""Trial records on both sides of xdist: what a worker puts on its reports, what the controller
(the only writer) rebuilds from them and stores as each trial finishes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from pytest_exp.fixtures import serve
from pytest_exp.metrics import SINK, MetricRecorder
from pytest_exp.session import (
    STASH,
    STORE_FILE,
    TRIAL,
    ExpSession,
    OptSlot,
    Slot,
    assign_point,
    grid_trial,
    group_of,
    slot_of,
)
from pytest_exp.space import Trial
from pytest_exp.studies import Proposer
from pytest_exp.trials import Objective, TrialRecord, reported_params

if TYPE_CHECKING:
    from pytest_exp.gate import Gate
    from pytest_exp.report import Comparison
    from pytest_exp.store import Store

# Name of the report attribute that carries a trial's record to the controller.
ATTR = "exp_trial"


class Live(MetricRecorder):
    """One test as it runs in this process: the recorder of its metrics and, for a space trial,
    its slot and trial. ``SINK.current`` while it runs, and in the item's stash until its
    teardown report, as one object: the cyclic GC walks every object still alive."""

    __slots__ = ("item", "objective", "previous", "remote", "sent", "slot", "started", "trial")

    def __init__(
        self, item: pytest.Item, slot: Slot | OptSlot | None, trial: Trial | None, *, remote: bool
    ) -> None:
        super().__init__(getattr(item, "user_properties", None))
        self.item = item
        self.slot = slot
        self.trial = trial
        self.remote = remote  # an xdist worker's test: its payloads are pickled
        self.started = 0.0
        self.objective: str | None = None
        self.sent = 0  # self.recorded when a report last carried the metrics
        self.previous = SINK.current  # a test running pytest (pytester) gets its recorder back


def start(item: pytest.Item) -> None:
    """Before any fixture of the item is set up (tryfirst): its recorder becomes the one
    ``record_metric`` records into and, for a space trial, its trial is fixed (an optimization
    trial asks the proposer for its point now)."""
    session = item.config.stash[STASH]
    slot = slot_of(item)
    trial = None
    if isinstance(slot, Slot):
        trial = grid_trial(item, slot)
    elif slot is not None and session.proposer is not None:
        trial = assign_point(item, slot, session.proposer)
    if session.serve_fixtures:
        serve(item, trial)
    live = item.stash[LIVE] = Live(item, slot, trial, remote=session.remote)
    SINK.current = live
    session.running = live


def payload(live: Live, when: str) -> tuple[Any, ...]:
    """The trial as plain data for one phase's report: at setup who it is, in TrialRecord's
    order (function, config_id, run, params, seed, metrics, worker, gpus, started, objective,
    study, trial), then its sweep's baseline gate; after that its metrics and objective. The
    controller sets the rest from the reports themselves. An xdist worker sends it pickled
    (``encode``).

    The metrics are the recorder's own series, not a copy: under xdist the report is sent as it
    is made, and in one process the record then shares them with the item (fewer objects alive).
    """
    if when != "setup":
        return (live.series, live.objective)
    slot, trial, item = live.slot, live.trial, live.item
    assert slot is not None  # annotate() sends payloads for space trials only
    assert trial is not None
    session = item.config.stash[STASH]
    if isinstance(slot, Slot):
        function, study, index, gate = group_of(item, slot), None, None, slot.plan.gate
    else:
        function, study, index, gate = slot.plan.function, slot.plan.key, slot.number, None
    params = reported_params(trial.params)
    who = (function, trial.id, trial.run, params, trial.seed, live.series, session.worker)
    return (*who, session.gpus, live.started, slot.plan.objective, study, index, gate)


def encode(data: tuple[Any, ...]) -> bytes:
    """A payload as an xdist worker puts it on its report: execnet serializes a tuple object by
    object in Python, about 13 us for a trial's setup payload and 14 us for its metrics, sending
    and receiving (measured), against 3.5 us for pickle's bytes. Only plain values are in it."""
    import pickle  # here: a run without xdist never needs it

    return pickle.dumps(data, protocol=5)


def decode(data: bytes) -> tuple[Any, ...]:
    """What ``encode`` made, on the controller: it comes from one of its own workers (which
    execnet already trusts to run code), hence no restricted unpickler."""
    import pickle

    payload: tuple[Any, ...] = pickle.loads(data)
    return payload


def study_objective(plan_objective: str | None, recorder: MetricRecorder | None) -> tuple[str | None, str]:
    """The objective an optimization trial reports, or why the trial must fail."""
    recorded = list(recorder.series) if recorder else []
    shown = f"recorded: {', '.join(recorded)}" if recorded else "nothing was recorded"
    if plan_objective is not None:
        name = Objective.parse(plan_objective).name
        if name in recorded:
            return plan_objective, ""
        return None, f"the objective {name!r} was not recorded ({shown}); call record_metric({name!r}, value)"
    if len(recorded) == 1:
        return f"{recorded[0]}:min", ""
    return None, (
        f'no objective to optimize ({shown}): set objective="NAME[:min|max]" in the marker, '
        "--exp-objective or exp_objective, or record exactly one metric"
    )


class Results:
    """Every space trial of this run, by node id, in the order trials started. Lives in the
    controller only; the store opens (and the run begins in it) when the first trial finishes,
    so runs without space tests leave no trace."""

    def __init__(self, session: ExpSession) -> None:
        self.records: dict[str, TrialRecord] = {}
        self.objectives: dict[str, Objective | None] = {}
        self.session = session
        self.store: Store | None = None
        self.run_id = 0
        self.proposer: Proposer | None = None
        self.store_error = ""
        self._parsed: dict[str, Objective] = {}
        self._gpus: dict[tuple[int, ...], list[int]] = {}
        # What a failed write raises; the store's own errors join when it is imported.
        self._store_errors: tuple[type[Exception], ...] = (OSError,)
        self.gate: Gate | None = None
        if session.gating:
            from pytest_exp.gate import Gate  # here: runs without a baseline never need it

            source = session.shown(session.baseline_path) if session.baseline_path is not None else ""
            enforce = not session.updating_baseline
            self.gate = Gate(session.baseline, source, session.tolerances(), enforce=enforce)

    def _objective(self, text: str) -> Objective:
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = Objective.parse(text)
        return parsed

    def _on_finished(self, record: TrialRecord) -> None:
        if record.study is not None and self.proposer is not None:
            self.proposer.tell(record)
        if self.store_error:
            return
        try:
            if self.store is None:
                self.store = self._open_store()
            self.store.add_trial(self.run_id, record)
        except self._store_errors as e:
            # The run goes on and its summary still shows every trial; the reason is printed.
            self.store_error = f"exp: trials are not being stored: {e}"

    def _open_store(self) -> Store:
        import sqlite3  # here, not at import: a run without space trials needs neither

        from pytest_exp.store import Store, StoreError

        self._store_errors = (StoreError, sqlite3.Error, OSError)
        config = self.session.config
        store = Store(self.session.store_dir)
        try:
            self.run_id = store.start_run(
                seed=self.session.seed,
                argv=list(config.invocation_params.args),
                rootdir=str(config.rootpath),
                name=self.session.run_name,
            )
        except BaseException:
            store.close()
            raise
        return store

    def finish(self, exitstatus: int) -> None:
        # Trials cut off by Ctrl-C (or -x, or a stop of xdist) are kept too, marked as such.
        live = self.session.running  # the test this process was running, if any (never under xdist)
        for record in self.records.values():
            if record.finished is None:
                if live is not None and live.item.nodeid == record.test:
                    # In this process the call never reported: take its metrics from the item.
                    record.metrics = {k: list(v) for k, v in live.series.items()}
                record.status, record.finished = "interrupted", time.time()
                record.message = record.message or "the session ended before this trial finished"
                self._on_finished(record)
        if self.store is not None:
            interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
            self.store.finish_run(self.run_id, status="interrupted" if interrupted else "finished")
            self.store.close()
            self.store = None

    def add(self, report: pytest.TestReport) -> None:
        # Read once, then dropped: the terminal reporter keeps every report to the end of the run.
        data = report.__dict__.pop(ATTR, None)
        if type(data) is bytes:
            data = decode(data)
        if data is None:
            # A later phase that recorded nothing new, an xdist crash report, or not a trial.
            if not self.records:
                return
            record = self.records.get(report.nodeid)
            if record is None:
                return
        elif len(data) > 2:  # the setup's
            function, cid, run, params, seed, metrics, worker, gpus, started, objective, study, n, gate = data
            # One list for every record of a worker's GPUs: each object kept slows every full GC.
            gpus = self._gpus.setdefault(tuple(gpus), gpus)
            # Positional: keywords (from a dict) cost five times as much.
            record = TrialRecord(
                report.nodeid, function, cid, run, params, seed, metrics, "running", "", 0.0, worker, gpus,
                started, None, objective, study, n,
            )  # fmt: skip
            self.records[report.nodeid] = record
            self.objectives[function] = self._objective(objective) if objective else None
            if self.gate is not None and gate is not None:
                self.gate.register(function, gate)
        else:
            record = self.records.get(report.nodeid)
            if record is None:
                return
            record.metrics, objective = data
            if objective is not None and record.objective is None:
                record.objective = objective
                self.objectives[record.function] = self._objective(objective)
        when: str = report.when or ""  # xdist's crash report says "???", outside the declared type
        outcome = report.outcome
        if when == "call":
            record.status, record.duration = outcome, report.duration
            record.message = "" if outcome == "passed" else _message(report)
        elif when == "teardown":
            if outcome == "failed" and record.status in ("passed", "running"):
                record.status, record.message = "error", _message(report)
            record.finished = time.time()
            self._on_finished(record)
        elif when == "setup":
            if outcome != "passed":
                record.status = "skipped" if outcome == "skipped" else "error"
                record.message = _message(report)
        elif when == "???":  # xdist: the worker died while running this item
            record.status, record.message = "crashed", _message(report)
            record.finished = time.time()
            self._on_finished(record)
        # A run is over once its call reported, or when it never got one (error, skip, crash).
        if self.gate is not None and (when in ("call", "???") or (when == "setup" and outcome != "passed")):
            self._settle(record, report)

    def _settle(self, record: TrialRecord, report: pytest.TestReport) -> None:
        """A run of a configuration is over: when it was the last, the baseline's verdict fails
        this report (or, when there is none to fail, the session)."""
        assert self.gate is not None
        failed = self.gate.settle(record)
        if not failed:
            return
        text = "\n".join(failed)
        if report.when == "call" and report.passed:
            report.outcome = "failed"
            report.longrepr = text
            record.status, record.message = "failed", text
        elif report.failed:  # its own failure comes first; the baseline's is a section under it
            report.sections.append(("pytest-exp baseline", text))
        else:
            self.gate.unattached += [f"{record.test}: {line}" for line in failed[1:]]

    def comparisons(self) -> dict[str, Comparison]:
        """Each compared test function's baseline comparison, for the table and the exports."""
        if self.gate is None:
            return {}
        self.gate.finish()
        found = {f: self.gate.comparison(f) for f in self.by_function()}
        return {f: c for f, c in found.items() if c is not None}

    def save_baseline(self) -> str:
        """Write the baseline this run was asked to save or update; the summary line that says so."""
        updating = self.session.updating_baseline
        path = self.session.baseline_path if updating else self.session.save_path
        if self.gate is None or path is None:
            return ""
        from pytest_exp.baseline import write_baseline  # here: most runs save no baseline
        from pytest_exp.store import package_versions

        records = [r for r in self.records.values() if r.function in self.gate.tests]
        shown = self.session.shown(path)
        if not records:
            return f"exp: no grid trial ran: {shown} was not written"
        keep = self.session.baseline if updating else None
        try:
            write_baseline(
                path, records, self.gate.fingerprints(), self.session.seed, package_versions(), keep=keep
            )
        except OSError as e:
            return f"exp: could not write the baseline {shown}: {e.strerror or e}"
        tests = len({r.function for r in records})
        done = "updated" if updating else "saved"
        return f"baseline {done}: {shown} ({len(records)} trials of {tests} test{'s' if tests != 1 else ''})"

    def store_path(self) -> str:
        return self.session.shown(self.session.store_dir / STORE_FILE)

    def where(self) -> str:
        return f"{self.store_path()} (run {self.run_id})"

    def json_section(self) -> dict[str, Any]:
        from pytest_exp.report import summary_dict

        comparisons = self.comparisons()
        tests = {
            f: summary_dict(rs, self.objectives.get(f), comparisons.get(f))
            for f, rs in self.by_function().items()
        }
        return {"store": self.store_path(), "run": self.run_id, "seed": self.session.seed, "tests": tests}

    def by_function(self) -> dict[str, list[TrialRecord]]:
        grouped: dict[str, list[TrialRecord]] = {}
        for record in self.records.values():
            grouped.setdefault(record.function, []).append(record)
        return grouped


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")


LIVE = pytest.StashKey[Live]()


def annotate(report: pytest.TestReport) -> None:
    """Put the trial on a report of the test running in this process, before any other hook
    reads it (tryfirst ``pytest_runtest_logreport``); fail a passing call that recorded a NaN or
    infinite metric. A report wrapper around ``pytest_runtest_makereport`` did this before: pluggy
    charged it about 25k instructions per test (measured), more than all the work it did."""
    live = SINK.current
    if not isinstance(live, Live) or live.item.nodeid != report.nodeid:
        return  # not a test of this process (the xdist controller), or its setup hook did not run
    when = report.when
    if when == "call" and report.passed:
        problems = live.nonfinite()
        if isinstance(live.slot, OptSlot):
            live.objective, problem = study_objective(live.slot.plan.objective, live)
            problems += [problem] if problem else []
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
    if live.trial is not None:
        if when == "setup":
            live.started = report.start
        # After the setup's, only what changed: the controller keeps what the last report carried.
        if when == "setup" or live.sent != live.recorded or (when == "call" and live.objective is not None):
            data = payload(live, when)
            setattr(report, ATTR, encode(data) if live.remote else data)
            live.sent = live.recorded
    if when == "teardown":
        SINK.current = live.previous
        # Nothing reads them now, and each object kept to the end of the run slows every full GC.
        del live.item.stash[LIVE]
        if isinstance(live.slot, Slot):  # rebuilt if the item runs again; a study's point is not
            del live.item.stash[TRIAL]


def json_metadata(item: pytest.Item) -> dict[str, Any]:
    """What a space trial adds to its test in a pytest-json-report (``metadata.exp``)."""
    session = item.config.stash[STASH]
    live = item.stash.get(LIVE, None)
    if live is None and session.running is not None and session.running.item is item:
        live = session.running  # dropped once the teardown report is made: the session still knows it
    if live is None or live.trial is None:
        return {}
    trial = live.trial
    metrics = {k: list(v) for k, v in live.series.items()}
    exp = {
        "config_id": trial.id,
        "run": trial.run,
        "seed": trial.seed,
        "params": reported_params(trial.params),
    }
    exp["gpus"] = list(session.gpus)  # the payloads' own list, copied: json-report keeps this dict
    return {"exp": {**exp, "metrics": metrics}}
