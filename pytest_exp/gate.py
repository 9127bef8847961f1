"""The CI gate of one run: when a configuration has all its runs, its verdicts against the
baseline, and which of them fail its test. Lives in the controller (the process that sees every
report); pure logic over :class:`~pytest_exp.trial.TrialRecord` (no pytest import).

Workers put a :class:`TestGate` on each trial's setup report: the space
fingerprint, how many runs each configuration has, the marker's tolerances and strictness. A
configuration is judged when its last run settles (its call phase reported, or it errored, was
skipped or crashed before one), on the mean over its runs; the verdict fails the report of that
run (the runs before it pass: alone, they were not judged). Configurations with runs that never
settled (deselected, ``-x``, Ctrl-C) are judged at the end of the session on the runs they have.
A baseline that matches no configuration of the run fails the session too: a gate that compares
nothing would pass anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pytest_exp.baseline import WARNINGS, AmbiguousMatch, Baseline, BaselineError, Verdict, compare
from pytest_exp.summary import Comparison, assignments, varying
from pytest_exp.tolerance import Tolerance, parse_tolerances
from pytest_exp.trial import TrialRecord, primary

# Worst first: a configuration shows the first of its verdicts' statuses in this order.
SEVERITY = ("regression", "missing-config", "missing-metric", "new-metric", "improved", "changed", "within")
SHOW = ("failures", "all")
"""What the comparison lists: ``failures`` the verdicts that fail and the missing or new entries
(every passing configuration is in the title's counts), ``all`` every verdict."""


@dataclass(frozen=True, slots=True)
class TestGate:
    """What the controller needs to know of one test function to save or compare its trials."""

    __test__ = False  # not a pytest test class, whatever its name

    fingerprint: str
    runs: int
    tolerance: str = ""
    """The marker's tolerance specs, as text (plain values cross xdist)."""
    strict: bool = False

    def tolerances(self) -> dict[str, Tolerance]:
        return parse_tolerances(self.tolerance)


class Gate:
    """The comparison of this run's trials with one baseline file (``baseline`` None: the run
    only saves one). ``enforce`` False (``--exp-update-baseline``) reports verdicts without
    failing anything; ``show`` is one of :data:`SHOW`."""

    def __init__(
        self,
        baseline: Baseline | None,
        source: str,
        defaults: Mapping[str, Tolerance],
        *,
        enforce: bool = True,
        show: str = "failures",
    ) -> None:
        if show not in SHOW:
            raise ValueError(f"show must be one of {', '.join(SHOW)} (got {show!r})")
        self.baseline = baseline
        self.source = source
        self.defaults = dict(defaults)
        self.enforce = enforce
        self.show = show
        self.tests: dict[str, TestGate] = {}
        self.verdicts: dict[str, dict[str, list[Verdict]]] = {}
        # Lines of failed verdicts that reached no test report (judged at the end of the session).
        self.unattached: list[str] = []
        self._runs: dict[tuple[str, str], list[TrialRecord]] = {}
        self._settled: set[str] = set()
        # Functions not compared under --exp-update-baseline, and the line that says why.
        self._notes: dict[str, str] = {}
        self._late: set[tuple[str, str]] = set()  # judged at the end: no test carries their failure
        self._judged = self._matched = self._failed = False
        self._nothing_matched = False

    def register(self, function: str, test: TestGate) -> None:
        self.tests.setdefault(function, test)

    def fingerprints(self) -> dict[str, str]:
        return {function: test.fingerprint for function, test in self.tests.items()}

    def settle(self, record: TrialRecord) -> list[str]:
        """Count one finished run of ``record``'s configuration; when it was the last, judge the
        configuration. Returns what fails this run's test: a title line, then one line per failed
        verdict (nothing: it passes)."""
        test = self.tests.get(record.function)
        if self.baseline is None or test is None or record.test in self._settled:
            return []
        self._settled.add(record.test)
        key = (record.function, record.config_id)
        runs = self._runs.setdefault(key, [])
        runs.append(record)
        if len(runs) < test.runs:
            return []
        failed = self._judge(key, test)
        if not failed:
            return []
        over = f"mean of {len(runs)} runs" if len(runs) > 1 else "1 run"
        return [f"worse than the baseline {self.source} ({over}):", *failed]

    def finish(self) -> None:
        """Judge the configurations still short of runs; their failures cannot fail a test
        any more and go to :attr:`unattached`. Idempotent."""
        for key, runs in self._runs.items():
            if key[1] not in self.verdicts.get(key[0], {}):
                self._late.add(key)
                label = _label(runs[0].params, list(runs[0].params))
                self.unattached += [
                    f"{key[0]} [{label}]: {line}" for line in self._judge(key, self.tests[key[0]])
                ]
        if self.enforce and self._judged and not (self._matched or self._failed or self._nothing_matched):
            self._nothing_matched = True
            self.unattached.append(self._nothing_matched_line())

    def _nothing_matched_line(self) -> str:
        assert self.baseline is not None
        ran = list(dict.fromkeys(function for function, _ in self._runs))
        known = set(self.baseline.functions())
        if all(self.baseline.resolve(function) in known for function in ran):
            has = f"other configurations of {_names(ran)}"
        else:
            has = f"{_names(sorted(known)) or 'no entries'}; this run has {_names(ran)}"
        return (
            f"{self.source}: no configuration of this run is in the baseline (it has {has}): a gate "
            f"that compares nothing passes anything; add them with --exp-baseline={self.source} "
            "--exp-update-baseline"
        )

    def _judge(self, key: tuple[str, str], test: TestGate) -> list[str]:
        assert self.baseline is not None
        function, config_id = key
        runs = self._runs[key]
        objective = primary(runs[0].objective) if runs[0].objective else None
        try:
            verdicts = compare(
                runs,
                self.baseline,
                test.fingerprint,
                defaults=self.defaults,
                per_test=test.tolerances(),
                objective=objective,
                strict=test.strict,
            )
            matched = (self.baseline.resolve(function), config_id) in self.baseline.entries
        except BaselineError as e:
            self.verdicts.setdefault(function, {})[config_id] = []  # judged: finish() must not again
            if not self.enforce:  # an update accepts the new space, and writes its own entries
                if isinstance(e, AmbiguousMatch):
                    self._notes[function] = f"baseline {self.source}: not compared: {e}"
                else:
                    self._notes[function] = (
                        f"baseline {self.source}: the space changed; its entries are replaced, not compared"
                    )
                return []
            self._failed = True
            return [str(e)]
        self.verdicts.setdefault(function, {})[config_id] = verdicts
        self._judged = True
        self._matched = self._matched or matched
        failed = [v.message() for v in verdicts if v.failed] if self.enforce else []
        self._failed = self._failed or bool(failed)
        return failed

    def comparison(self, function: str) -> Comparison | None:
        """What the reports show of ``function``'s comparison; None when it was not compared."""
        if function in self._notes:
            return Comparison(self.source, {}, [self._notes[function]], [])
        # A configuration whose runs all skipped measured nothing and has no verdict.
        by_config = {c: verdicts for c, verdicts in self.verdicts.get(function, {}).items() if verdicts}
        if self.baseline is None or not by_config:
            return None
        statuses = {config_id: _worst(verdicts) for config_id, verdicts in by_config.items()}
        every = sorted(
            (v for verdicts in by_config.values() for v in verdicts),
            key=lambda v: (not v.failed, SEVERITY.index(v.status)),
        )
        listed = every if self.show == "all" else [v for v in every if v.failed or v.status in WARNINGS]
        names = _varying_names(by_config.values())
        tags = [self._tag(v) for v in listed]
        width = max([4, *map(len, tags)])
        failed = [(function, c) for c, verdicts in by_config.items() if any(v.failed for v in verdicts)]
        lines = [self._title(every, len(by_config), failed)]
        for tag, v in zip(tags, listed, strict=True):
            lines.append(f"{tag.ljust(width)}  {_label(v.params, names)}: {v.message()}")
        return Comparison(self.source, statuses, lines, [asdict(v) for v in every])

    def _tag(self, verdict: Verdict) -> str:
        if verdict.failed:
            return "FAIL" if self.enforce else "accepted"
        return "warn" if verdict.status in (*WARNINGS, "changed") else "ok"

    def _title(self, verdicts: Sequence[Verdict], configs: int, failed: Sequence[tuple[str, str]]) -> str:
        counts: dict[str, int] = {}
        for v in verdicts:
            counts[v.status] = counts.get(v.status, 0) + 1
        shown = ", ".join(f"{counts[s]} {s}" for s in SEVERITY if s in counts)
        if not self.enforce:
            outcome = "not enforced: --exp-update-baseline"
        elif failed:
            outcome = _failed_text(failed, {key: len(self._runs[key]) for key in failed}, self._late)
        elif self._nothing_matched:
            outcome = "failed: none is in the baseline"
        else:
            outcome = "passed"
        plural = "s" if configs != 1 else ""
        counted = f"{configs} configuration{plural}, {len(verdicts)} verdicts"
        return f"baseline {self.source}: {counted}: {shown} ({outcome})"


def _failed_text(
    failed: Sequence[tuple[str, str]], runs: Mapping[tuple[str, str], int], late: Iterable[tuple[str, str]]
) -> str:
    """``4 configurations failed``; where the failure is a test's, which run carries it:
    ``4 configurations failed, each in its last run of 2`` (the runs before it pass)."""
    text = f"{len(failed)} configuration{'s' if len(failed) != 1 else ''} failed"
    counts = {runs[key] for key in failed}
    if max(counts) == 1 or set(failed) & set(late):
        return text
    of = f" of {counts.pop()}" if len(counts) == 1 else ""
    return text + (", each" if len(failed) > 1 else ",") + f" in its last run{of}"


def _names(names: Sequence[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _varying_names(verdict_lists: Iterable[Sequence[Verdict]]) -> list[str]:
    params = [verdicts[0].params for verdicts in verdict_lists]
    return varying(params) if len(params) > 1 else []


def _label(params: Mapping[str, Any], names: Sequence[str]) -> str:
    return assignments(params, names or list(params)) or "no parameters"


def _worst(verdicts: Sequence[Verdict]) -> str:
    return min((v.status for v in verdicts), key=SEVERITY.index)
