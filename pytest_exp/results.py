"""Trial records on both sides of xdist: what a worker puts on its reports, what the controller
(the only writer) rebuilds from them and stores as each trial finishes."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

from pytest_exp import gpu, report
from pytest_exp.baseline import write_baseline
from pytest_exp.gate import Gate
from pytest_exp.metrics import MetricRecorder
from pytest_exp.session import ExpSession, OptSlot, Slot, slot_of, trial_of
from pytest_exp.store import Store, StoreError, package_versions
from pytest_exp.studies import Proposer
from pytest_exp.trials import Objective, TrialRecord

# Name of the report attribute that carries a trial's record to the controller.
ATTR = "exp_trial"


def payload(item: pytest.Item, when: str, recorder: MetricRecorder | None, started: float) -> dict[str, Any]:
    """The trial as plain data for one phase's report: who it is at setup, its metrics after."""
    metrics = {k: list(v) for k, v in recorder.series.items()} if recorder else {}
    if when != "setup":
        return {"metrics": metrics, "objective": item.stash.get(OBJECTIVE, None)}
    slot, trial = slot_of(item), trial_of(item)
    assert slot is not None  # annotate() sends payloads for space trials only
    assert trial is not None
    study = slot.plan.key if isinstance(slot, OptSlot) else None
    record = {
        "test": "",
        "function": slot.plan.function,
        "config_id": trial.id,
        "run": trial.run,
        "params": trial.params,
        "seed": trial.seed,
        "metrics": metrics,
        "worker": getattr(item.config, "workerinput", {}).get("workerid", "main"),
        "gpus": gpu.owned(item.config),
        "started": started,
        "objective": slot.plan.objective,
        "study": study,
        "trial": slot.index if isinstance(slot, OptSlot) else None,
    }
    if isinstance(slot, Slot) and slot.plan.gate is not None:
        return {"record": record, "gate": slot.plan.gate}
    return {"record": record}


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
        # The item running in this process (not under xdist), for a trial cut off mid-call.
        self.running: pytest.Item | None = None
        self.proposer: Proposer | None = None
        self.store_error = ""
        self.gate: Gate | None = None
        if session.gating:
            source = session.shown(session.baseline_path) if session.baseline_path is not None else ""
            enforce = not session.updating_baseline
            self.gate = Gate(session.baseline, source, session.tolerances(), enforce=enforce)

    def _on_finished(self, record: TrialRecord) -> None:
        if record.study is not None and self.proposer is not None:
            self.proposer.tell(record)
        if self.store_error:
            return
        try:
            if self.store is None:
                config = self.session.config
                self.store = Store(self.session.store_dir)
                self.run_id = self.store.start_run(
                    seed=self.session.seed,
                    argv=list(config.invocation_params.args),
                    rootdir=str(config.rootpath),
                    name=self.session.run_name,
                )
            self.store.add_trial(self.run_id, record)
        except (StoreError, sqlite3.Error, OSError) as e:
            # The run goes on and its summary still shows every trial; the reason is printed.
            self.store_error = f"exp: trials are not being stored: {e}"

    def finish(self, exitstatus: int) -> None:
        # Trials cut off by Ctrl-C (or -x, or a stop of xdist) are kept too, marked as such.
        for record in self.records.values():
            if record.finished is None:
                live = self.running.stash.get(RECORDER, None) if self.running is not None else None
                if live is not None and self.running is not None and self.running.nodeid == record.test:
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
        record = self.records.get(report.nodeid)
        if data is not None and "record" in data:
            record = self.records[report.nodeid] = TrialRecord(**dict(data["record"], test=report.nodeid))
            self.objectives[record.function] = Objective.parse(record.objective) if record.objective else None
            if self.gate is not None and "gate" in data:
                self.gate.register(record.function, data["gate"])
        elif data is not None and record is not None:
            record.metrics = data["metrics"]
            if data["objective"] is not None and record.objective is None:
                record.objective = data["objective"]
                self.objectives[record.function] = Objective.parse(record.objective)
        if record is None:
            return  # not a space trial
        when: str = report.when or ""  # xdist's crash report says "???", outside the declared type
        outcome = report.outcome
        message = _message(report)
        if when == "???":  # xdist: the worker died while running this item
            record.status, record.message = "crashed", message
        elif when == "setup" and outcome != "passed":
            record.status = "skipped" if outcome == "skipped" else "error"
            record.message = message
        elif when == "call":
            record.status, record.message, record.duration = outcome, message, report.duration
        elif when == "teardown" and outcome == "failed" and record.status in ("passed", "running"):
            record.status, record.message = "error", message
        if self.gate is not None and (when in ("call", "???") or (when == "setup" and outcome != "passed")):
            self._settle(record, report)
        if when in ("???", "teardown"):
            record.finished = time.time()
            self._on_finished(record)

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

    def comparisons(self) -> dict[str, report.Comparison]:
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
        path = self.session.store_dir / "exp.sqlite"
        try:
            return str(path.relative_to(self.session.config.invocation_params.dir))
        except ValueError:
            return str(path)

    def where(self) -> str:
        return f"{self.store_path()} (run {self.run_id})"

    def json_section(self) -> dict[str, Any]:
        comparisons = self.comparisons()
        tests = {
            f: report.summary_dict(rs, self.objectives.get(f), comparisons.get(f))
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


RECORDER = pytest.StashKey[MetricRecorder]()
STARTED = pytest.StashKey[float]()
OBJECTIVE = pytest.StashKey["str | None"]()


def annotate(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Put the trial on a report; fail a passing call that recorded a NaN or infinite metric."""
    if call.when == "setup":
        item.stash[STARTED] = call.start
    recorder = item.stash.get(RECORDER, None)
    slot = slot_of(item)
    if call.when == "call" and report.passed:
        problems = recorder.nonfinite() if recorder is not None else []
        if isinstance(slot, OptSlot):
            objective, problem = study_objective(slot.plan.objective, recorder)
            item.stash[OBJECTIVE] = objective
            problems += [problem] if problem else []
        if problems:
            report.outcome = "failed"
            report.longrepr = "\n".join(problems)
    if slot is not None and trial_of(item) is not None:
        setattr(report, ATTR, payload(item, call.when, recorder, item.stash.get(STARTED, call.start)))


def add_metric_properties(item: pytest.Item) -> None:
    """Each metric's last value as a user property (a junitxml property, a json-report entry)."""
    recorder = item.stash.get(RECORDER, None)
    if recorder is not None:
        item.user_properties.extend((name, series[-1]) for name, series in recorder.series.items())


def json_metadata(item: pytest.Item) -> dict[str, Any]:
    """What a space trial adds to its test in a pytest-json-report (``metadata.exp``)."""
    trial = trial_of(item)
    if trial is None:
        return {}
    recorder = item.stash.get(RECORDER, None)
    metrics = {k: list(v) for k, v in recorder.series.items()} if recorder else {}
    exp = {"config_id": trial.id, "run": trial.run, "seed": trial.seed, "params": trial.params}
    exp["gpus"] = gpu.owned(item.config)
    return {"exp": {**exp, "metrics": metrics}}
