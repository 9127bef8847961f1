"""The running side: what happens in the process that runs a space trial (an xdist worker, or
the only process). The recorder ``record_metric`` writes into, the trial fixed before setup, and
the messages its reports carry to the controller (:mod:`pytest_exp.messages`)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_exp.fixtures import _record_metric
from pytest_exp.items import TRIAL, OptSlot, Slot, assign_point, grid_trial, group_of, slot_of
from pytest_exp.messages import ATTR, Message, TrialProgress, TrialStarted, encode
from pytest_exp.metrics import SINK, MetricError, MetricRecorder
from pytest_exp.session import STASH
from pytest_exp.study.proposer import ProposerError
from pytest_exp.trial import Trial, json_params, objectives, primary


class Live(MetricRecorder):
    """One test as it runs in this process: the recorder of its metrics and, for a space trial,
    its slot and trial. ``SINK.current`` while it runs, and in the item's stash until its
    teardown report."""

    __slots__ = ("item", "objective", "previous", "pruned", "remote", "sent", "slot", "started", "trial")

    def __init__(
        self, item: pytest.Item, slot: Slot | OptSlot | None, trial: Trial | None, *, remote: bool
    ) -> None:
        super().__init__(getattr(item, "user_properties", None))
        self.item = item
        self.slot = slot
        self.trial = trial
        self.remote = remote  # an xdist worker's test: its messages are pickled
        self.started = 0.0
        self.objective: str | None = None
        self.sent = 0  # self.recorded when a report last carried the metrics
        self.previous = SINK.current  # a test running pytest (pytester) gets its recorder back
        self.pruned = False  # whether the pruner said to stop: a skipped call is then "pruned"

    def prune_reason(self) -> str | None:
        """Ask the study's pruner, with the objective's curve so far, whether to stop now."""
        __tracebackhide__ = True
        slot = self.slot
        if not isinstance(slot, OptSlot) or slot.plan.pruner == "none":
            return None
        proposer = self.item.config.stash[STASH].proposer
        assert proposer is not None  # a study's trial got its point from it
        if slot.plan.objective is not None:
            name = primary(slot.plan.objective).name  # a pruned study has one objective
        elif len(self.steps) == 1:
            (name,) = self.steps
        else:
            raise MetricError(
                "exp_trial.should_prune(): which metric is the objective? Set objective="
                '"NAME[:min|max]" in the marker, --exp-objective or exp_objective'
            )
        curve = [(step, float(value)) for step, value in self.curve(name)]
        if not curve:
            raise MetricError(
                f"exp_trial.should_prune(): the objective {name!r} has no value with a step yet; "
                f"record one with record_metric({name!r}, value, step=k) first"
            )
        try:
            reason = proposer.prune(slot.plan.spec(), slot.number, curve)
        except ProposerError as e:
            raise pytest.fail.Exception(str(e), pytrace=False) from None
        self.pruned = self.pruned or reason is not None
        return reason


LIVE = pytest.StashKey[Live]()
RUNNING = pytest.StashKey[Live]()
"""On the config: the test this process runs or ran last, whose metrics a trial cut off by
Ctrl-C had recorded (under xdist the controller runs none)."""


def running(config: pytest.Config) -> Live | None:
    return config.stash.get(RUNNING, None)


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
        try:
            trial = assign_point(item, slot, session.proposer)
        except ProposerError as e:  # it says all there is: no traceback into pytest-exp
            raise pytest.fail.Exception(str(e), pytrace=False) from None
    if session.serve_fixtures:
        serve(item, trial)
    live = item.stash[LIVE] = Live(item, slot, trial, remote=session.remote)
    SINK.current = live
    item.config.stash[RUNNING] = live


def serve(item: pytest.Item, trial: Trial | None) -> None:
    """Give the item, before pytest looks them up, the values pytest would find: the trial's
    parameters (what direct parametrization would give) and ``record_metric`` when it is ours,
    not an override. pytest skips a name already in ``item.funcargs``, and its lookup costs more
    than the rest of a trial's bookkeeping (bench/README.md). Fixtures that ask for these names
    still get them from pytest."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # not a test function
        return
    funcargs: dict[str, object] = item.funcargs  # type: ignore[attr-defined]
    defs = info.name2fixturedefs.get("record_metric")
    if defs and defs[-1].func is _record_metric:
        funcargs["record_metric"] = SINK
    if trial is not None:
        params = trial.params
        for name, value in item.callspec.params.items():  # type: ignore[attr-defined]
            if name in params:  # the space's (a stacked parametrize's names are not)
                funcargs[name] = value


def study_objective(plan_objective: str | None, recorder: MetricRecorder | None) -> tuple[str | None, str]:
    """The objective an optimization trial reports, or why the trial must fail."""
    recorded = list(recorder.series) if recorder else []
    shown = f"recorded: {', '.join(recorded)}" if recorded else "nothing was recorded"
    if plan_objective is not None:
        missing = [o.name for o in objectives(plan_objective) if o.name not in recorded]
        if not missing:
            return plan_objective, ""
        name = missing[0]
        return None, f"the objective {name!r} was not recorded ({shown}); call record_metric({name!r}, value)"
    if len(recorded) == 1:
        return f"{recorded[0]}:min", ""
    return None, (
        f'no objective to optimize ({shown}): set objective="NAME[:min|max]" in the marker, '
        "--exp-objective or exp_objective, or record exactly one metric"
    )


def message(live: Live, when: str) -> Message:
    """The trial as one phase's report carries it: at setup who it is, after that its metrics.

    The metrics are the recorder's own series, not a copy: under xdist the report is sent as it
    is made, and in one process the record then shares them with the item.
    """
    if when != "setup":
        return TrialProgress(
            metrics=live.series, steps=live.steps, objective=live.objective, pruned=live.pruned
        )
    slot, trial, item = live.slot, live.trial, live.item
    assert slot is not None  # annotate() sends messages for space trials only
    assert trial is not None
    session = item.config.stash[STASH]
    started = TrialStarted(
        function=slot.plan.function,
        config_id=trial.id,
        run=trial.run,
        params=json_params(trial.params),
        seed=trial.seed,
        metrics=live.series,
        steps=live.steps,
        worker=session.worker,
        gpus=session.gpus,
        started=live.started,
        objective=slot.plan.objective,
    )
    if isinstance(slot, Slot):
        started.function, started.gate = group_of(item, slot), slot.plan.gate
    else:
        started.study, started.trial = slot.plan.key, slot.number
    return started


def annotate(report: pytest.TestReport) -> None:
    """Put the trial on a report of the test running in this process, before any other hook
    reads it (tryfirst ``pytest_runtest_logreport``, cheaper than a makereport wrapper); fail a
    passing call that recorded a NaN or infinite metric, or an optimization trial without its
    objective."""
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
        changed = live.sent != live.recorded or (
            when == "call" and (live.objective is not None or live.pruned)
        )
        if when == "setup" or changed:
            data = message(live, when)
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
    live = item.stash.get(LIVE, None)
    last = running(item.config)
    if live is None and last is not None and last.item is item:
        live = last  # dropped once the teardown report is made: the config still knows it
    if live is None or live.trial is None:
        return {}
    trial = live.trial
    exp = {
        "config_id": trial.id,
        "run": trial.run,
        "seed": trial.seed,
        "params": json_params(trial.params),
        "gpus": list(item.config.stash[STASH].gpus),  # copied: json-report keeps this dict
        "metrics": {k: list(v) for k, v in live.series.items()},
    }
    if live.steps:
        exp["steps"] = {k: list(v) for k, v in live.steps.items()}
    return {"exp": exp}
