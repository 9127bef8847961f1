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

Matching
    An entry belongs to a test by its function's node id and its configuration id (a hash of the
    params). Node ids are relative to pytest's rootdir, which moves when pytest finds it from other
    arguments (``--exp-baseline PATH`` with a space, PATH outside the project, is read as a test
    path while the rootdir is chosen): a function the baseline lacks matches the baseline's
    function whose node id ends with the same path segments, the longest such match winning
    (:meth:`Baseline.resolve`); two equally long ones are refused (:class:`AmbiguousMatch`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_exp.summary import format_number, summarize
from pytest_exp.tolerance import Tolerance, tolerance_for
from pytest_exp.trial import Objective, TrialRecord, canonical_json, same_test

FORMAT_KEY = "pytest-exp-baseline"
FORMAT_VERSION = 1
UPDATE_FLAG = "--exp-update-baseline"
"""The option named in the fix of a fingerprint mismatch."""


IGNORED = ("skipped", "running")
"""Statuses of trials that measured nothing: neither saved nor compared."""

Status = Literal[
    "regression", "improved", "within", "changed", "missing-config", "missing-metric", "new-metric"
]
VERDICT_STATUSES: tuple[Status, ...] = (
    "regression",
    "improved",
    "within",
    "changed",
    "missing-config",
    "missing-metric",
    "new-metric",
)
WARNINGS: tuple[Status, ...] = ("missing-config", "missing-metric", "new-metric")
"""Statuses that warn by default and fail with ``strict``."""
# ``changed`` (a ``report`` metric that moved beyond its allowance) warns too, and never fails.


class BaselineError(ValueError):
    """A baseline file that cannot be read or does not fit the run; the message names the file."""


class AmbiguousMatch(BaselineError):
    """A test whose node id matches two of the baseline's test functions equally well."""


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
    _resolved: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def functions(self) -> list[str]:
        """The test functions the baseline knows (a fingerprint or an entry), sorted."""
        return sorted(set(self.tests) | {function for function, _ in self.entries})

    def resolve(self, function: str) -> str:
        """The baseline's name for this run's test function ``function``: itself when the baseline
        has it; else the baseline's function whose node id ends with the same path segments as
        ``function`` (or whose node id ``function``'s ends with), the longest match winning;
        else ``function`` (the baseline does not know it).

        Raises :class:`AmbiguousMatch` when two of the baseline's functions match equally well
        (``test_a.py::test_f`` against ``x/test_a.py::test_f`` and ``y/test_a.py::test_f``)."""
        found = self._resolved.get(function)
        if found is None:
            found = self._resolved[function] = self._resolve(function)
        return found

    def _resolve(self, function: str) -> str:
        known = self.functions()
        if function in known:
            return function
        winners = same_test(function, known)
        if len(winners) > 1:
            path = self.path
            raise AmbiguousMatch(
                f"{path}: {function} matches {len(winners)} tests of the baseline equally well "
                f"({', '.join(winners)}): pytest's rootdir is not the one the baseline was saved "
                f"from; run pytest from that rootdir (giving the file as --exp-baseline={path}), or "
                f"rewrite the baseline with --exp-baseline={path} {UPDATE_FLAG}"
            )
        return winners[0] if winners else function

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
        keep = _renamed(keep, tests)
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


def _renamed(baseline: Baseline, functions: Iterable[str]) -> Baseline:
    """``baseline`` with each function that one of ``functions`` resolves to under a moved rootdir
    renamed to it (an update from another rootdir replaces those entries, not adds to them)."""
    renames: dict[str, str] = {}
    for function in functions:
        try:
            name = baseline.resolve(function)
        except AmbiguousMatch:
            continue  # both stay; this run's entries are added under its own name
        if name != function and name not in renames:
            renames[name] = function
    if not renames:
        return baseline
    renamed = Baseline(
        path=baseline.path,
        seed=baseline.seed,
        versions=baseline.versions,
        tests={renames.get(f, f): fingerprint for f, fingerprint in baseline.tests.items()},
    )
    for (function, config_id), runs in baseline.entries.items():
        name = renames.get(function, function)
        renamed.entries[name, config_id] = [dataclasses.replace(e, function=name) for e in runs]
    return renamed


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


class _Overflow(Exception):
    """A number literal beyond float range: ``1e999`` (read as infinite), or an integer no metric
    can be (``record_metric`` refuses those, and a mean of one overflows)."""


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Overflow(text)
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > len(str(int(sys.float_info.max))):
        raise _Overflow(text)  # before int(): Python refuses to read over 4300 digits
    value = int(text)
    if abs(value) > sys.float_info.max:
        raise _Overflow(text)
    return value


# NaN and the infinities as other tools spell them (nan, inf, -inf): not JSON, nor what the writer writes.
_NON_FINITE = re.compile(r"[-+]?(nan|inf)", re.IGNORECASE)


def _object(line: str, path: str, number: int) -> dict[str, Any]:
    try:
        data = json.loads(line, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as e:
        hint = ""
        if _NON_FINITE.match(line, e.pos):
            hint = ": a value that is not finite is written NaN, Infinity or -Infinity"
        raise BaselineError(f"{path}:{number}: bad JSON ({e.msg} at column {e.colno}){hint}") from None
    except _Overflow as e:
        raise BaselineError(
            f"{path}:{number}: number {e!s:.40} is beyond float range (an infinite value is "
            "written Infinity or -Infinity)"
        ) from None
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
    a regression always, a missing or new entry only when the comparison was strict, ``changed``
    (a ``report`` metric) never.
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
        """One line: ``loss: 0.412 vs baseline 0.39 (+5.6%), worse than allowed (min, 2%)``.

        Only a direction that says which way is worse (``min``, ``max``) calls a change worse;
        ``any`` says ``changed by more than allowed``, ``report`` says ``changed``."""
        if self.status == "missing-config":
            return f"configuration {canonical_json(self.params)} is not in the baseline"
        if self.status == "missing-metric":
            return f"{self.metric}: not reported (baseline {format_number(self.baseline)})"
        if self.status == "new-metric":
            return f"{self.metric}: {format_number(self.value)}, not in the baseline"
        sided = self.tolerance.split(",")[0] in ("min", "max")
        outcome = {
            "regression": "worse than allowed" if sided else "changed by more than allowed",
            "improved": "better beyond",
            "within": "within",
            "changed": "changed",
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
    """``regression``, ``improved`` or ``within`` for one mean against its baseline mean
    (``changed`` or ``within`` for a ``report`` tolerance, which never fails).

    Equal values (NaN against NaN included) are within. A NaN value against a number is a
    regression; a number against a NaN baseline is an improvement (``any``: a regression).
    Otherwise a change worse than the allowance is a regression, a change better than it an
    improvement, anything between within; the comparison is strict, so a change of exactly the
    allowance passes. ``report`` judges as ``any`` does and says ``changed`` for a regression.
    """
    status = _judge(value, baseline, tolerance)
    if tolerance.direction == "report" and status == "regression":
        return "changed"
    return status


def _judge(value: float, baseline: float, tolerance: Tolerance) -> Status:
    if value == baseline or _both_nan(value, baseline):
        return "within"
    if math.isnan(value):
        return "regression"
    if math.isnan(baseline):
        return "improved" if tolerance.sided else "regression"
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
    baseline's missing ones after them; an ``ignore`` metric gives no verdict of any kind.

    - ``missing-config``: the configuration is not in the baseline (one verdict, ``metric`` None);
    - ``new-metric``: a metric reported now that the baseline's configuration lacks;
    - ``missing-metric``: a metric in the baseline's configuration that no run reported now.

    These warn, or fail with ``strict``. Configurations saved but not run now (deselected with
    ``-k``, say) give no verdict: a partial run is not a regression. The function's entries are
    the baseline's of :meth:`Baseline.resolve`; a function the baseline does not know gives
    ``missing-config`` for every configuration.

    Raises :class:`BaselineError` when the baseline was saved for another space of this function
    (a different ``fingerprint``): its configurations no longer mean the same thing; and
    :class:`AmbiguousMatch` when two of its functions match this one equally well.
    """
    functions = list(dict.fromkeys(r.function for r in records))
    if len(functions) > 1:
        raise ValueError(f"compare() takes the trials of one test function (got {', '.join(functions)})")
    if not functions:
        return []
    function = functions[0]
    name = baseline.resolve(function)
    saved = baseline.tests.get(name)
    if saved is not None and saved != fingerprint:
        raise fingerprint_error(baseline.path, name, saved, fingerprint)
    groups: dict[str, list[TrialRecord]] = {}
    for record in records:
        if record.status not in IGNORED:
            groups.setdefault(record.config_id, []).append(record)
    rules: dict[str, Tolerance] = {}

    def rule(metric: str) -> Tolerance:
        if metric not in rules:
            rules[metric] = tolerance_for(metric, per_test, defaults, objective)
        return rules[metric]

    verdicts: list[Verdict] = []
    for config_id, trials in groups.items():
        of_config = functools.partial(Verdict, function, config_id, dict(trials[0].params))
        if (name, config_id) not in baseline.entries:
            verdicts.append(of_config(status="missing-config", failed=strict))
            continue
        saved_means = {
            m: v for m, v in baseline.means(name, config_id).items() if rule(m).direction != "ignore"
        }
        values: dict[str, list[float]] = {}
        for trial in trials:
            for metric, value in trial.last().items():
                if rule(metric).direction != "ignore":
                    values.setdefault(metric, []).append(float(value))
        for metric in sorted(values):
            tolerance = str(rule(metric))
            mean = summarize(values[metric]).mean
            if metric not in saved_means:
                new = of_config(
                    metric=metric, value=mean, tolerance=tolerance, status="new-metric", failed=strict
                )
                verdicts.append(new)
                continue
            reference = saved_means[metric]
            status = judge(mean, reference, rule(metric))
            verdicts.append(
                of_config(
                    metric=metric,
                    value=mean,
                    baseline=reference,
                    change=relative_change(mean, reference),
                    tolerance=tolerance,
                    status=status,
                    failed=status == "regression",
                )
            )
        for metric in sorted(set(saved_means) - set(values)):
            verdicts.append(
                of_config(
                    metric=metric,
                    baseline=saved_means[metric],
                    tolerance=str(rule(metric)),
                    status="missing-metric",
                    failed=strict,
                )
            )
    return verdicts
