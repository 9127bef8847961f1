"""Metric baselines for CI regression gates: tolerances, the baseline file, and the comparison.

Pure Python: no pytest import. The plugin saves a baseline with :func:`write_baseline`
(``--exp-save-baseline PATH``) and, on a later run, reads it with :func:`read_baseline` and checks
each test function's finished trials with :func:`compare` (``--exp-baseline PATH``).

Tolerances follow the grammar of :mod:`pytest_exp.tolerance`.

Comparison
    For every configuration the mean over its runs (:func:`~pytest_exp.summary.summarize`) is
    compared with the mean over the baseline's runs of that configuration. The spread is *not*
    used: a tolerance is a fixed allowance chosen by the user, not a statistical test, so a gate
    gives the same answer for the same numbers whatever the number of repeats.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_exp.summary import format_number, summarize
from pytest_exp.tolerance import Tolerance, tolerance_for
from pytest_exp.trial import Objective, TrialRecord, canonical_json

FORMAT_KEY = "pytest-exp-baseline"
FORMAT_VERSION = 1
UPDATE_FLAG = "--exp-update-baseline"
"""The option named in the fix of a fingerprint mismatch."""


IGNORED = ("skipped", "running")
"""Statuses of trials that measured nothing: neither saved nor compared."""

Status = Literal["regression", "improved", "within", "missing-config", "missing-metric", "new-metric"]
VERDICT_STATUSES: tuple[Status, ...] = (
    "regression",
    "improved",
    "within",
    "missing-config",
    "missing-metric",
    "new-metric",
)
WARNINGS: tuple[Status, ...] = ("missing-config", "missing-metric", "new-metric")
"""Statuses that warn by default and fail with ``strict``."""


class BaselineError(ValueError):
    """A baseline file that cannot be read or does not fit the run; the message names the file."""


# --------------------------------------------------------------------------- the baseline file


@dataclass(frozen=True)
class BaselineEntry:
    """One saved trial: the last value of each of its metrics."""

    function: str
    config_id: str
    params: dict[str, Any]
    run: int
    metrics: dict[str, float]


@dataclass
class Baseline:
    """A read baseline file; ``entries`` holds each configuration's runs, keyed by (function, config id)."""

    path: str
    seed: int
    versions: dict[str, str]
    tests: dict[str, str]
    """Each test function's space fingerprint."""
    entries: dict[tuple[str, str], list[BaselineEntry]] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def means(self, function: str, config_id: str) -> dict[str, float]:
        """Each metric's mean over the configuration's saved runs that reported it."""
        values: dict[str, list[float]] = {}
        for entry in self.entries.get((function, config_id), []):
            for name, value in entry.metrics.items():
                values.setdefault(name, []).append(value)
        return {name: summarize(values[name]).mean for name in sorted(values)}


def _dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(", ", ": "), allow_nan=True, default=str)


def render_baseline(
    records: Iterable[TrialRecord],
    fingerprints: Mapping[str, str],
    seed: int,
    versions: Mapping[str, str],
    *,
    keep: Baseline | None = None,
) -> str:
    """The text of a baseline file: a header line, then one line per trial.

    Trials are sorted by (function, parameters, config id, run) and keep each metric's last
    value; skipped and unfinished trials measured nothing and are left out. Keys are sorted on
    every line, so two baselines diff line by line. NaN and infinities are written as ``NaN``,
    ``Infinity`` and ``-Infinity`` (Python's JSON reads them back).

    ``keep`` is the baseline being updated: its entries for what these records did not measure
    stay (other test functions, and configurations deselected this time), except those of a
    function whose space changed, which are replaced as a whole.
    """
    entries = [
        BaselineEntry(
            function=r.function, config_id=r.config_id, params=r.params, run=r.run, metrics=r.last()
        )
        for r in records
        if r.status not in IGNORED
    ]
    tests = dict(fingerprints)
    if keep is not None:
        measured = {(e.function, e.config_id) for e in entries}
        changed = {f for f, saved in keep.tests.items() if f in tests and tests[f] != saved}
        for (function, config_id), saved_runs in keep.entries.items():
            if function not in changed and (function, config_id) not in measured:
                entries.extend(saved_runs)
        tests = {f: saved for f, saved in keep.tests.items() if f not in changed} | tests
    entries.sort(key=lambda e: (e.function, canonical_json(e.params), e.config_id, e.run))
    header = {
        FORMAT_KEY: FORMAT_VERSION,
        "seed": seed,
        "tests": dict(sorted(tests.items())),
        "versions": dict(versions),
    }
    lines = [_dumps(header)]
    for e in entries:
        lines.append(
            _dumps(
                {
                    "config": e.config_id,
                    "metrics": e.metrics,
                    "params": e.params,
                    "run": e.run,
                    "test": e.function,
                }
            )
        )
    return "\n".join(lines) + "\n"


def write_baseline(
    path: str | os.PathLike[str],
    records: Iterable[TrialRecord],
    fingerprints: Mapping[str, str],
    seed: int,
    versions: Mapping[str, str],
    *,
    keep: Baseline | None = None,
) -> None:
    """Write :func:`render_baseline`'s text to ``path`` (atomically: a crash leaves the old file)."""
    target = Path(path)
    text = render_baseline(records, fingerprints, seed, versions, keep=keep)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, target)


def read_baseline(path: str | os.PathLike[str], name: str | None = None) -> Baseline:
    """Read a baseline file; raises :class:`BaselineError` naming the file (and line) when it cannot.

    ``name`` is how messages and the baseline's ``path`` show the file (default: ``path``)."""
    shown = os.fspath(path) if name is None else name
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BaselineError(f"{shown}: cannot read the baseline ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise BaselineError(
            f"{shown}:{line}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start}); "
            "a baseline is the JSON lines file --exp-save-baseline writes"
        ) from None
    return parse_baseline(text, shown)


def parse_baseline(text: str, path: str) -> Baseline:
    """:func:`read_baseline` on a file's text; ``path`` only names the file in errors."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise BaselineError(f"{path}: empty file (expected a pytest-exp baseline)")
    number, first = lines[0]
    header = _object(first, path, number)
    if FORMAT_KEY not in header:
        raise BaselineError(f"{path}:{number}: not a pytest-exp baseline (no {FORMAT_KEY!r} header)")
    if header[FORMAT_KEY] != FORMAT_VERSION:
        raise BaselineError(
            f"{path}:{number}: unsupported baseline format {header[FORMAT_KEY]!r} (expected {FORMAT_VERSION})"
        )
    seed = _field(header, "seed", int, "an integer", path, number)
    versions = _field(header, "versions", dict, "an object", path, number)
    tests = _field(header, "tests", dict, "an object", path, number)
    for what, table in (("versions", versions), ("tests", tests)):
        if not all(isinstance(v, str) for v in table.values()):
            raise BaselineError(f"{path}:{number}: {what!r} must map names to strings")
    baseline = Baseline(path=path, seed=seed, versions=versions, tests=tests)
    seen: set[tuple[str, str, int]] = set()
    for number, line in lines[1:]:
        entry = _entry(_object(line, path, number), path, number)
        key = (entry.function, entry.config_id, entry.run)
        if key in seen:
            raise BaselineError(
                f"{path}:{number}: run {entry.run} of {entry.function} [{entry.config_id}] twice"
            )
        seen.add(key)
        baseline.entries.setdefault((entry.function, entry.config_id), []).append(entry)
    return baseline


def _object(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as e:
        raise BaselineError(f"{path}:{number}: bad JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}:{number}: expected a JSON object, got {type(data).__name__}")
    return data


def _field(data: Mapping[str, Any], key: str, kind: type, what: str, path: str, number: int) -> Any:
    if key not in data:
        raise BaselineError(f"{path}:{number}: missing key {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BaselineError(f"{path}:{number}: {key!r} must be {what}, got {value!r:.60}")
    return value


def _entry(data: Mapping[str, Any], path: str, number: int) -> BaselineEntry:
    function = _field(data, "test", str, "a string", path, number)
    config = _field(data, "config", str, "a string", path, number)
    params = _field(data, "params", dict, "an object", path, number)
    run = _field(data, "run", int, "an integer", path, number)
    metrics = _field(data, "metrics", dict, "an object", path, number)
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(value, (int, float)):
            raise BaselineError(f"{path}:{number}: metric {name!r} must be a number, got {value!r:.60}")
        values[name] = value  # as written: an int read back as a float would be rewritten as one
    return BaselineEntry(function=function, config_id=config, params=params, run=run, metrics=values)


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Verdict:
    """One metric of one configuration against the baseline (``metric`` is None for a whole config).

    ``change`` is ``(value - baseline) / |baseline|``, None where that is undefined (a missing
    side, a zero or non-finite baseline). ``failed`` says whether the verdict fails the test:
    a regression always, a missing or new entry only when the comparison was strict.
    """

    function: str
    config_id: str
    params: dict[str, Any]
    _: KW_ONLY
    metric: str | None = None
    value: float | None = None
    baseline: float | None = None
    change: float | None = None
    tolerance: str = ""
    status: Status
    failed: bool = False

    def message(self) -> str:
        """One line: ``loss: 0.412 vs baseline 0.39 (+5.6%), worse than allowed (min, 2%)``."""
        if self.status == "missing-config":
            return f"configuration {canonical_json(self.params)} is not in the baseline"
        if self.status == "missing-metric":
            return f"{self.metric}: not reported (baseline {format_number(self.baseline)})"
        if self.status == "new-metric":
            return f"{self.metric}: {format_number(self.value)}, not in the baseline"
        outcome = {
            "regression": "worse than allowed",
            "improved": "better beyond",
            "within": "within",
        }[self.status]
        return (
            f"{self.metric}: {format_number(self.value)} vs baseline {format_number(self.baseline)} "
            f"({self._change_text()}), {outcome} ({self.tolerance})"
        )

    def _change_text(self) -> str:
        if self.change is not None:
            return f"{self.change:+.1%}"
        if self.value is None or self.baseline is None:
            return "?"
        difference = self.value - self.baseline
        if math.isnan(difference):
            return "n/a"
        return ("+" if difference >= 0 else "") + format_number(difference)


def _both_nan(a: float, b: float) -> bool:
    return math.isnan(a) and math.isnan(b)


def judge(value: float, baseline: float, tolerance: Tolerance) -> Status:
    """``regression``, ``improved`` or ``within`` for one mean against its baseline mean.

    Equal values (NaN against NaN included) are within. A NaN value against a number is a
    regression; a number against a NaN baseline is an improvement (``any``: a regression).
    Otherwise a change worse than the allowance is a regression, a change better than it an
    improvement, anything between within; the comparison is strict, so a change of exactly the
    allowance passes.
    """
    if value == baseline or _both_nan(value, baseline):
        return "within"
    if math.isnan(value):
        return "regression"
    if math.isnan(baseline):
        return "regression" if tolerance.direction == "any" else "improved"
    worse = tolerance.worse_by(value, baseline)
    allowance = tolerance.allowance(baseline)
    if worse > allowance:
        return "regression"
    if -worse > allowance:
        return "improved"
    return "within"


def relative_change(value: float, baseline: float) -> float | None:
    """``(value - baseline) / |baseline|``; None for a zero or non-finite baseline or value."""
    if not (math.isfinite(value) and math.isfinite(baseline)) or baseline == 0:
        return None
    return (value - baseline) / abs(baseline)


def fingerprint_error(path: str, function: str, saved: str, current: str) -> BaselineError:
    return BaselineError(
        f"{path}: the baseline was made for a different space of {function} "
        f"(fingerprint {saved}, now {current}): accept the new space with --exp-baseline {path} "
        f"{UPDATE_FLAG}"
    )


def compare(
    records: Sequence[TrialRecord],
    baseline: Baseline,
    fingerprint: str,
    *,
    defaults: Mapping[str, Tolerance] | None = None,
    per_test: Mapping[str, Tolerance] | None = None,
    objective: Objective | None = None,
    strict: bool = False,
) -> list[Verdict]:
    """Compare the trials of one test function with the baseline; one verdict per metric.

    Trials are grouped by configuration, in first-seen order; skipped and unfinished trials are
    ignored. Each metric's mean over the runs that reported it (last values, whatever the trial's
    status, as in the report) is judged against the baseline's mean over its runs with
    :func:`tolerance_for`'s tolerance (see :func:`judge`). Metrics are listed by name, the
    baseline's missing ones after them.

    - ``missing-config``: the configuration is not in the baseline (one verdict, ``metric`` None);
    - ``new-metric``: a metric reported now that the baseline's configuration lacks;
    - ``missing-metric``: a metric in the baseline's configuration that no run reported now.

    These warn, or fail with ``strict``. Configurations saved but not run now (deselected with
    ``-k``, say) give no verdict: a partial run is not a regression. A function the baseline does
    not know gives ``missing-config`` for every configuration.

    Raises :class:`BaselineError` when the baseline was saved for another space of this function
    (a different ``fingerprint``): its configurations no longer mean the same thing.
    """
    functions = list(dict.fromkeys(r.function for r in records))
    if len(functions) > 1:
        raise ValueError(f"compare() takes the trials of one test function (got {', '.join(functions)})")
    if not functions:
        return []
    function = functions[0]
    saved = baseline.tests.get(function)
    if saved is not None and saved != fingerprint:
        raise fingerprint_error(baseline.path, function, saved, fingerprint)
    groups: dict[str, list[TrialRecord]] = {}
    for record in records:
        if record.status not in IGNORED:
            groups.setdefault(record.config_id, []).append(record)
    verdicts: list[Verdict] = []
    for config_id, trials in groups.items():
        of_config = functools.partial(Verdict, function, config_id, dict(trials[0].params))
        if (function, config_id) not in baseline.entries:
            verdicts.append(of_config(status="missing-config", failed=strict))
            continue
        saved_means = baseline.means(function, config_id)
        values: dict[str, list[float]] = {}
        for trial in trials:
            for name, value in trial.last().items():
                values.setdefault(name, []).append(float(value))
        for name in sorted(values):
            rule = tolerance_for(name, per_test, defaults, objective)
            tolerance = str(rule)
            mean = summarize(values[name]).mean
            if name not in saved_means:
                new = of_config(
                    metric=name, value=mean, tolerance=tolerance, status="new-metric", failed=strict
                )
                verdicts.append(new)
                continue
            reference = saved_means[name]
            status = judge(mean, reference, rule)
            verdicts.append(
                of_config(
                    metric=name,
                    value=mean,
                    baseline=reference,
                    change=relative_change(mean, reference),
                    tolerance=tolerance,
                    status=status,
                    failed=status == "regression",
                )
            )
        for name in sorted(set(saved_means) - set(values)):
            tolerance = str(tolerance_for(name, per_test, defaults, objective))
            verdicts.append(
                of_config(
                    metric=name,
                    baseline=saved_means[name],
                    tolerance=tolerance,
                    status="missing-metric",
                    failed=strict,
                )
            )
    return verdicts
