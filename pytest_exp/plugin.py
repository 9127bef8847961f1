"""pytest entry point: options, ini keys, markers and hooks. Logic lives in the other modules."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_exp import gpu, settings
from pytest_exp.fixtures import _exp_slot, exp_dir, exp_gpus, exp_params, exp_trial, record_metric
from pytest_exp.interrupt import Guard
from pytest_exp.items import build_trials
from pytest_exp.results import Results
from pytest_exp.session import STASH, ExpSession
from pytest_exp.study.proposer import Proposer, ProposerServer, RemoteProposer
from pytest_exp.worker import annotate, json_metadata, start

# From pytest 9.2 an ini option's type may be a union such as ``int | str``.
TYPED_INI = tuple(int(part) for part in pytest.__version__.split(".")[:2]) >= (9, 2)

__all__ = ["_exp_slot", "exp_dir", "exp_gpus", "exp_params", "exp_trial", "record_metric"]


def _argtype(parse: Callable[[object], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {e}") from None

    return convert


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exp", "pytest-exp: parameter spaces and experiments")
    for s in settings.SETTINGS:
        text = s.help.replace("%", "%%")  # argparse formats help strings; a tolerance spec has a %
        if s.switch:
            group.addoption(s.flag, dest=s.flag, action="store_const", const=True, help=text)
        else:
            group.addoption(s.flag, dest=s.flag, type=_argtype(s.parse), metavar=s.metavar, help=text)
        # pytest 9.2 takes a union: a TOML config file may then give an int or a bool as it is.
        ini_type = s.toml | str if s.toml is not None and TYPED_INI else None
        parser.addini(s.ini, s.help, type=ini_type, default="")  # type: ignore[arg-type]


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before the first conftest.py imports torch: a single process gets its GPUs here.
    gpu.pin_early(early_config)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return gpu.auto_workers(config)  # -n auto: one worker per GPU group


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "space(path_or_dict=None, *, sample=None, repeat=1, seed=None, objective=None): run the "
        "test once per configuration of a TOML parameter space (pytest-exp).",
    )
    config.addinivalue_line(
        "markers", "needs_gpu: skip the test when this process owns no GPU (pytest-exp, --exp-gpus)."
    )
    session = ExpSession(config)
    config.stash[STASH] = session
    gpu.configure(config)  # a worker's devices, or the controller pins each worker's spec
    session.gpus = gpu.owned(config)
    session.remember_seed()
    config.pluginmanager.register(GuardHooks(session.guard), "exp-guard")
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        results = Results(session)
        config.pluginmanager.register(ControllerHooks(session, results), "exp-controller")
        # Always: a marker can ask for a study (optimize=N) where the command line did not.
        # Cheap until a study starts; skopt is imported then.
        proposer = Proposer(session.studies.history, session.studies.previous)
        results.proposer = session.proposer = proposer
    else:
        config.pluginmanager.register(WorkerHooks(session), "exp-worker")
        if "exp_proposer" in workerinput:
            session.proposer = RemoteProposer(workerinput["exp_proposer"], workerinput["exp_authkey"])
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), "exp-xdist")


class XdistHooks:
    """Registered only when xdist is active: the controller hands its seed, run and proposer
    address to every worker."""

    def __init__(self, session: ExpSession) -> None:
        self.session = session
        self.server: ProposerServer | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        gpu.node_input(node)
        node.workerinput["exp_seed"] = self.session.seed
        node.workerinput["exp_run"] = self.session.run_name
        if isinstance(self.session.proposer, Proposer):
            if self.server is None:
                self.server = ProposerServer(self.session.proposer)
            node.workerinput["exp_proposer"] = self.server.address
            node.workerinput["exp_authkey"] = self.server.authkey

    def pytest_unconfigure(self) -> None:
        if self.server is not None:
            self.server.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    gpu.unconfigure(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [config.stash[STASH].header(), *gpu.header(config)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = gpu.skip_reason(config)
    if reason is None:
        return
    for item in items:
        # keywords first: a dict lookup per node, where the marker lookup walks generators (and
        # this runs for every item of every run on a machine without GPUs).
        if "needs_gpu" in item.keywords and item.get_closest_marker("needs_gpu") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    if not session.config.option.collectonly:
        build_trials(session.items)  # under xdist, on each worker: the controller collects nothing


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    start(item)  # before the fixtures: an optimization trial gets its point here


class WorkerHooks:
    """Registered in an xdist worker: its reports carry their trials to the controller."""

    def __init__(self, session: ExpSession) -> None:
        self.session = session

    @pytest.hookimpl(tryfirst=True)  # before xdist sends the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.session.guard.enter()  # a signal waits until the report is sent
        annotate(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # A summary line, not a warning: under -W error a warning raised in a hook is an internal error.
    note = config.stash[STASH].unused_space_note()
    if note is not None:
        terminalreporter.write_line(note, yellow=True)


class ControllerHooks:
    """Registered in the process that sees every report (the xdist controller, or the only
    process): it keeps the results, writes the store and prints the summary."""

    def __init__(self, session: ExpSession, results: Results) -> None:
        self.session = session
        self.results = results
        self.plots: list[tuple[str, Path]] = []
        self.plot_error = ""
        self.baseline_note = ""

    @pytest.hookimpl(tryfirst=True)  # a verdict may fail the report: before anyone reads it
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.session.guard.enter()  # a signal waits until every hook has seen this report
        annotate(report)  # a test this process ran (none under xdist)
        self.results.add(report)

    @pytest.hookimpl(optionalhook=True, tryfirst=True)  # pytest-timeout's; None lets it set the timer
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> None:
        self.results.watch_timeout(item.nodeid, settings.method, settings.timeout)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.results.finish(exitstatus)
        comparisons = self.results.comparisons()
        gate = self.results.gate
        if gate is not None and gate.unattached and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # regressions no test report carried
        if self.results.store_error and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # finished trials that were not stored
        self.baseline_note = self.results.save_baseline()
        path = self.session.setting_path("report")
        if path is not None and self.results.records:
            from pytest_exp import report  # here: a run that prints and writes no summary never needs it

            try:
                report.export(self.results.by_function(), self.results.objectives, path, comparisons)
            except OSError as e:
                error = f"exp: --exp-report {self.session.shown(path)}: cannot write ({e.strerror or e})"
                self.results.output_errors.append(error)
        if self.results.output_errors and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a file it was asked for is missing
        plot = self.session.setting_path("plot")
        if plot is not None and self.results.proposer is not None:
            try:
                self.plots = self.results.proposer.plot(plot)
            except Exception as e:  # the trials are stored; a failed picture must not hide them
                shown = self.session.shown(plot)
                self.plot_error = (
                    f"exp: --exp-plot {shown}: could not save the plot ({type(e).__name__}: {e})"
                )

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        if self.results.records:
            json_report["exp"] = self.results.json_section()

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.results.records:
            return
        if terminalreporter.config.get_verbosity() < 0:
            self._outcome_lines(terminalreporter)  # -q hides the tables, not what failed the run
            if self.results.store_error:
                terminalreporter.write_line(self.results.store_error, red=True)
            return
        from pytest_exp import report

        top = settings.resolve("top", self.session.cli, {}, self.session.ini)
        terminalreporter.write_sep("-", "pytest-exp")
        studies = self.results.proposer.summaries() if self.results.proposer is not None else {}
        comparisons = self.results.comparisons()
        for function, records in self.results.by_function().items():
            objective = self.results.objectives.get(function)
            # A resumed study's best may be a trial of an earlier run: its own line says which.
            resumed = self.results.proposer is not None and function in self.results.proposer.resumed
            label = "best of this run" if resumed else "best"
            terminalreporter.write_line(
                report.table(records, objective, top, comparisons.get(function), label)
            )
            if function in studies:
                terminalreporter.write_line(studies[function])
            terminalreporter.write_line("")
        self._outcome_lines(terminalreporter)
        for note in self.session.store_notes:
            terminalreporter.write_line(f"exp: {note}", yellow=True)
        if self.results.store_error:
            terminalreporter.write_line(self.results.store_error, red=True)
        elif self.session.store_dir is None:
            terminalreporter.write_line(f"trials not stored (--exp-store {settings.NO_STORE})")
        else:
            terminalreporter.write_line(f"trials stored in {self.results.where()}")
        for what, path in self.plots:
            terminalreporter.write_line(f"{what}: {path}")
        if self.plot_error:
            terminalreporter.write_line(self.plot_error, red=True)

    def _outcome_lines(self, terminalreporter: pytest.TerminalReporter) -> None:
        gate = self.results.gate
        for line in gate.unattached if gate is not None else []:
            terminalreporter.write_line(f"baseline FAIL {line}", red=True)
        if self.baseline_note:
            terminalreporter.write_line(self.baseline_note, red=self.baseline_note.startswith("exp:"))
        for error in self.results.output_errors:  # shown with -q too: each failed the run
            terminalreporter.write_line(error, red=True)


class GuardHooks:
    """Ctrl-C and SIGTERM in every process (see :mod:`pytest_exp.interrupt`); the window a
    report's handling opens in the tryfirst hooks above closes here."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def pytest_sessionstart(self) -> None:
        self.guard.install()

    @pytest.hookimpl(trylast=True)  # after every other hook has seen the report
    def pytest_runtest_logreport(self) -> None:
        self.guard.leave()

    @pytest.hookimpl(tryfirst=True)  # the loop is over: restore the handlers before the summary
    def pytest_sessionfinish(self) -> None:
        self.guard.uninstall()


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item: pytest.Item, call: pytest.CallInfo[None]) -> dict[str, Any]:
    return json_metadata(item)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("space")
    if marker is not None:
        metafunc.config.stash[STASH].parametrize(metafunc, marker)
