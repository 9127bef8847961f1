"""The controller side: every space trial of the run, rebuilt from the messages its reports
carry, stored as each finishes, told to the proposer and judged by the baseline gate."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from pytest_exp import settings, worker
from pytest_exp.messages import ATTR, TrialProgress, TrialStarted, decode
from pytest_exp.session import ExpSession
from pytest_exp.study.proposer import Proposer
from pytest_exp.trial import Objective, TrialRecord, by_function, primary

if TYPE_CHECKING:
    from pytest_exp.gate import Gate
    from pytest_exp.store import Store
    from pytest_exp.summary import Comparison


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
        # Files this run was asked to write and could not (a baseline, an export): each fails it.
        self.output_errors: list[str] = []
        self._parsed: dict[str, Objective] = {}
        self._timeouts: dict[str, float] = {}  # tests pytest-timeout's thread method may cut off
        self._gpus: dict[tuple[int, ...], list[int]] = {}
        # What a failed write raises; the store's own errors join when it is imported.
        self._store_errors: tuple[type[Exception], ...] = (OSError,)
        self.gate: Gate | None = None
        if session.gating:
            from pytest_exp.gate import Gate  # here: runs without a baseline never need it

            source = session.shown(session.baseline_path) if session.baseline_path is not None else ""
            enforce = not session.updating_baseline
            show = settings.resolve("baseline_show", session.cli, {}, session.ini)
            self.gate = Gate(session.baseline, source, session.tolerances(), enforce=enforce, show=show)

    def _start(self, test: str, data: TrialStarted) -> TrialRecord:
        # One list for every record of a worker's GPUs: each object kept slows every full GC.
        gpus = self._gpus.setdefault(tuple(data.gpus), data.gpus)
        record = self.records[test] = TrialRecord(
            test=test,
            function=data.function,
            config_id=data.config_id,
            run=data.run,
            params=data.params,
            seed=data.seed,
            metrics=data.metrics,
            steps=data.steps,
            worker=data.worker,
            gpus=gpus,
            started=data.started,
            objective=data.objective,
            study=data.study,
            trial=data.trial,
        )
        self.objectives[data.function] = self._objective(data.objective) if data.objective else None
        if self.gate is not None and data.gate is not None:
            self.gate.register(data.function, data.gate)
        return record

    def watch_timeout(self, test: str, method: str, timeout: float) -> None:
        """pytest-timeout's thread method ends the process when ``test`` runs over: journal its
        trial as "timeout" while it runs, so the next store opened on the directory keeps it."""
        if method != "thread" or not timeout > 0:
            return  # the signal method fails the test instead, as any failure
        self._timeouts[test] = timeout
        record = self.records.get(test)
        if record is not None and record.finished is None:  # timing the call only: set up already
            self._journal_running(record)

    def _journal_running(self, record: TrialRecord) -> None:
        timeout = self._timeouts[record.test]
        cut = dataclasses.replace(
            record,
            status="timeout",
            message=f"the process ended while this trial ran under pytest-timeout's thread method "
            f"(timeout {timeout:g} s), which ends the process when a test runs over",
        )
        self._write(lambda store: store.add_running(self.run_id, cut))

    def _objective(self, text: str) -> Objective:
        parsed = self._parsed.get(text)
        if parsed is None:
            parsed = self._parsed[text] = primary(text)  # a multi-objective study ranks by its first
        return parsed

    def _on_finished(self, record: TrialRecord) -> None:
        if record.study is not None and self.proposer is not None:
            self.proposer.tell(record)
        # Once the database fails, the store still journals each trial for the next run.
        self._write(lambda store: store.add_trial(self.run_id, record))

    def _write(self, write: Callable[[Store], None]) -> None:
        """Write to the store, opened at the first write; a failure fails the run (see _lost)."""
        if self.session.store_dir is None or (self.store is None and self.store_error):
            return  # --exp-store none, or the store could not be opened
        try:
            if self.store is None:
                self.store = self._open_store()
            write(self.store)
        except self._store_errors as e:
            if not self.store_error:
                self._lost(e)

    def _lost(self, error: BaseException) -> None:
        """Trials can no longer be stored: the run goes on (its summary still shows every trial),
        says so at once and at the end, and fails."""
        from pytest_exp.store import StoreError  # loaded: the store was being opened or written

        where = "" if isinstance(error, StoreError) else f" in {self.store_path()}"  # it names the file
        self.store_error = (
            f"exp: FAILED to store trials{where}: {error}; this run fails. Use --exp-store DIR "
            "to store them elsewhere, or --exp-store none to run without storing"
        )
        reporter = self.session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            # Progress dots without a file name (-q, xdist) leave no mark ensure_newline sees.
            reporter.write("\n")
            reporter.write_line(self.store_error, red=True, bold=True)

    def _open_store(self) -> Store:
        import sqlite3  # here, not at import: a run without space trials needs neither

        from pytest_exp.store import Store, StoreError

        self._store_errors = (StoreError, sqlite3.Error, OSError)
        config = self.session.config
        assert self.session.store_dir is not None
        store = Store(self.session.store_dir)
        self.session.store_notes += store.notes
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
        live = worker.running(self.session.config)  # the test this process ran last (never under xdist)
        for record in self.records.values():
            if record.finished is None:
                if record.status == "running":  # no call report: the trial itself was cut off
                    if live is not None and live.item.nodeid == record.test:
                        # In this process the call never reported: take its metrics from the item.
                        record.metrics = {k: list(v) for k, v in live.series.items()}
                        record.steps = {k: list(v) for k, v in live.steps.items()}
                    record.status = "interrupted"
                    record.message = record.message or "the session ended before this trial finished"
                # else its call reported (and pytest counted it): only the teardown was cut off
                record.finished = time.time()
                self._on_finished(record)
        if self.store is not None:
            store, self.store = self.store, None
            interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
            try:
                try:
                    store.finish_run(self.run_id, status="interrupted" if interrupted else "finished")
                finally:
                    store.close()  # keeps the journal when its trials could not be committed
            except self._store_errors as e:
                if not self.store_error:
                    self._lost(e)

    def add(self, report: pytest.TestReport) -> None:
        # Read once, then dropped: the terminal reporter keeps every report to the end of the run.
        data = report.__dict__.pop(ATTR, None)
        if type(data) is bytes:
            data = decode(data)
        if isinstance(data, TrialStarted):
            record = self._start(report.nodeid, data)
            if report.nodeid in self._timeouts:
                self._journal_running(record)
        else:
            # A later phase's update, one that recorded nothing new, an xdist crash report, or
            # not a trial at all.
            found = self.records.get(report.nodeid)
            if found is None:
                return
            record = found
            if data is not None:
                record.metrics, record.steps = data.metrics, data.steps
                if data.objective is not None and record.objective is None:
                    record.objective = data.objective
                    self.objectives[record.function] = self._objective(data.objective)
        when: str = report.when or ""  # xdist's crash report says "???", outside the declared type
        outcome = report.outcome
        if when == "call":
            record.status, record.duration = outcome, report.duration
            record.message = "" if outcome == "passed" else _message(report)
            if outcome == "skipped" and isinstance(data, TrialProgress) and data.pruned:
                record.status, record.message = "pruned", record.message.removeprefix("Skipped: ")
        elif when == "teardown":
            if outcome == "failed" and record.status in ("passed", "running"):
                record.status, record.message = "error", _message(report)
            record.finished = time.time()
            self._on_finished(record)
        elif when == "setup":
            if outcome != "passed":
                record.status = "skipped" if outcome == "skipped" else "error"
                record.message = _message(report)
        elif when == "???" and record.finished is not None:
            pass  # the worker went down after the trial's teardown reported: it is stored already
        elif when == "???":  # xdist: the worker died while running this item, or was interrupted
            if _interrupted_worker(report):
                if record.status == "running":  # else its call reported: only its teardown was cut off
                    record.status = "interrupted"
                    record.message = "the worker was interrupted while running this trial"
            else:
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
            self.output_errors.append(f"exp: could not write the baseline {shown}: {e.strerror or e}")
            return ""
        tests = len({r.function for r in records})
        done = "updated" if updating else "saved"
        return f"baseline {done}: {shown} ({len(records)} trials of {tests} test{'s' if tests != 1 else ''})"

    def store_path(self) -> str:
        from pytest_exp.store import FILENAME  # loaded: a run with records opened the store

        assert self.session.store_dir is not None
        return self.session.shown(self.session.store_dir / FILENAME)

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
        return by_function(self.records.values())


def _interrupted_worker(report: pytest.TestReport) -> bool:
    """Whether xdist's crash report comes from a worker that ended on KeyboardInterrupt (its
    session's exit status, which it sends before it goes down) rather than one that died."""
    output = getattr(getattr(report, "node", None), "workeroutput", None) or {}
    return bool(output.get("exitstatus") == pytest.ExitCode.INTERRUPTED)


def _message(report: pytest.TestReport) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "")
