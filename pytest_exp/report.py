"""Summaries of finished trials: per-configuration statistics, the terminal table and report files.

Pure functions over lists of :class:`~pytest_exp.trial.TrialRecord`; no pytest import, no I/O
except :func:`export` and :func:`convergence_plot`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from pytest_exp import pareto
from pytest_exp.settings import report_format
from pytest_exp.space import format_values
from pytest_exp.summary import (
    MISSING,
    Comparison,
    MetricSummary,
    assignments,
    format_number,
    param_key,
    summarize,
    varying,
)
from pytest_exp.trial import STATUSES, Objective, TrialRecord, by_function, canonical_json, objectives

FIT_TIME = "fit_time"
"""The automatic metric: each trial's call-phase duration in seconds."""

TIMED = ("passed", "failed")
"""Statuses whose trials ran their call phase to an end, and so count towards ``fit_time``."""

PROBLEMS = ("failed", "error", "crashed")
"""Statuses that make a configuration sort after a clean one with the same objective value."""

PLUS_MINUS = "\u00b1"
STD_DIGITS = 2
"""Significant digits of a standard deviation: a spread needs fewer than the mean it qualifies."""
MAX_PARAM_WIDTH = 40
GAP = "  "


# --------------------------------------------------------------------------- aggregation


@dataclass
class ConfigSummary:
    """The trials of one configuration of one test function, aggregated."""

    config_id: str
    params: dict[str, Any]
    runs: int
    statuses: dict[str, int]
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``passed`` when every run has one status, else the counts: ``2 passed, 1 failed``."""
        if len(self.statuses) == 1:
            return next(iter(self.statuses))
        return _counts(self.statuses)

    @property
    def has_problem(self) -> bool:
        """Whether some run failed, errored or crashed."""
        return any(self.statuses.get(s, 0) for s in PROBLEMS)

    def value(self, metric: str) -> float:
        """The metric's mean, NaN when no run reported it."""
        summary = self.metrics.get(metric)
        return math.nan if summary is None else summary.mean


def aggregate(records: Sequence[TrialRecord]) -> list[ConfigSummary]:
    """Group the trials of one test function by configuration, in first-seen order.

    For every metric, each trial contributes its last recorded value, whatever its status (a
    test that fails its own threshold still reports a real value); ``n`` counts the trials that
    reported the metric, so it can be less than ``runs``. A NaN value counts in ``n`` and makes
    the mean NaN. ``std`` is the sample standard deviation (ddof=1) and ``None`` when ``n == 1``.

    ``fit_time`` is added from each trial's ``duration``, over the trials that ran their call
    phase to an end (passed or failed): a skipped or errored trial's duration is not a fit time.
    It replaces a reported metric of the same name.

    Raises ``ValueError`` when the records belong to more than one test function: configuration
    ids depend on the parameters only, so two functions' trials would merge.
    """
    functions = list(dict.fromkeys(r.function for r in records))
    if len(functions) > 1:
        raise ValueError(f"aggregate() takes the trials of one test function (got {', '.join(functions)})")
    groups: dict[str, list[TrialRecord]] = {}
    for record in records:
        groups.setdefault(record.config_id, []).append(record)
    return [_summary(config_id, trials) for config_id, trials in groups.items()]


def _summary(config_id: str, trials: list[TrialRecord]) -> ConfigSummary:
    statuses: dict[str, int] = {}
    values: dict[str, list[float]] = {}
    for trial in trials:
        statuses[trial.status] = statuses.get(trial.status, 0) + 1
        for name, value in trial.last().items():
            if name != FIT_TIME:
                values.setdefault(name, []).append(float(value))
    durations = [float(t.duration) for t in trials if t.status in TIMED]
    metrics = {name: summarize(values[name]) for name in sorted(values)}
    if durations:
        metrics[FIT_TIME] = summarize(durations)
    return ConfigSummary(config_id, dict(trials[0].params), len(trials), _ordered(statuses), metrics)


def _ordered(statuses: Mapping[str, int]) -> dict[str, int]:
    known = {s: statuses[s] for s in STATUSES if statuses.get(s)}
    return known | {s: n for s, n in statuses.items() if s not in known and n}


def _counts(statuses: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in _ordered(statuses).items())


def ranked(summaries: Sequence[ConfigSummary], objective: Objective | None) -> list[ConfigSummary]:
    """Configurations best first by the objective's mean: NaN and missing last, and a
    configuration with failed, errored or crashed runs after a clean one with the same value.
    Ties keep grid order; without an objective the order is unchanged."""
    if objective is None:
        return list(summaries)
    order = sorted(
        range(len(summaries)),
        key=lambda i: (objective.better(summaries[i].value(objective.name)), summaries[i].has_problem, i),
    )
    return [summaries[i] for i in order]


def front_ids(records: Sequence[TrialRecord], summaries: Sequence[ConfigSummary]) -> set[str] | None:
    """The configurations of one multi-objective test on its Pareto front, by their objectives'
    means (those with a failed run or a missing objective left out); None for one objective."""
    text = next((r.objective for r in records if r.objective), None)
    named = objectives(text) if text else ()
    if len(named) < 2:
        return None
    values = {}
    for s in summaries:
        means = [s.value(o.name) for o in named]
        if not s.has_problem and not any(map(math.isnan, means)):
            values[s.config_id] = [o.signed(v) for o, v in zip(named, means, strict=True)]
    return set(pareto.front(values))


def metric_names(summaries: Iterable[ConfigSummary], objective: Objective | None) -> list[str]:
    """The table's metric columns: the objective (even when no run reported it), then the other
    metrics alphabetically, then ``fit_time``."""
    names = {name for s in summaries for name in s.metrics}
    first = [objective.name] if objective is not None else []
    middle = sorted(names - {FIT_TIME, *first})
    last = [FIT_TIME] if FIT_TIME in names and FIT_TIME not in first else []
    return first + middle + last


# --------------------------------------------------------------------------- formatting


def _metric_parts(summary: MetricSummary | None) -> tuple[str, str]:
    """(mean, std) texts of a cell; std is empty for one value or a non-finite mean."""
    if summary is None:
        return MISSING, ""
    if summary.std is None or not math.isfinite(summary.mean):
        return format_number(summary.mean), ""
    return format_number(summary.mean), format_number(summary.std, STD_DIGITS)


def _metric_text(summary: MetricSummary | None) -> str:
    mean, std = _metric_parts(summary)
    return f"{mean} {PLUS_MINUS} {std}" if std else mean


def _param_columns(summaries: Sequence[ConfigSummary], names: Sequence[str]) -> list[list[str]]:
    """Each varying parameter's cells, as test ids write the values (distinct values stay distinct)."""
    columns = []
    for name in names:
        distinct = {param_key(s.params, name): s.params[name] for s in summaries if name in s.params}
        texts = dict(zip(distinct, format_values(list(distinct.values())), strict=True))
        columns.append([texts[param_key(s.params, name)] if name in s.params else MISSING for s in summaries])
    return columns


def _is_numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _title(
    records: Sequence[TrialRecord], summaries: Sequence[ConfigSummary], objective: Objective | None
) -> str:
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status] = statuses.get(record.status, 0) + 1
    trials = f"{len(records)} trial{'s' if len(records) != 1 else ''}"
    configs = f"{len(summaries)} configuration{'s' if len(summaries) != 1 else ''}"
    by = f"; sorted by {objective.name} ({objective.direction})" if objective is not None else ""
    return f"{trials}, {configs} ({_counts(statuses)}){by}"


def best_of(ranked_summaries: Sequence[ConfigSummary], objective: Objective | None) -> ConfigSummary | None:
    """The best configuration whose runs all went well, with a value of the objective: a
    configuration that failed a run is not one to pick, however good its value."""
    if objective is None:
        return None
    for summary in ranked_summaries:
        if not summary.has_problem and not math.isnan(summary.value(objective.name)):
            return summary
    return None


def _best(
    summaries: Sequence[ConfigSummary], names: Sequence[str], objective: Objective | None
) -> str | None:
    """``lr=0.01, opt=adam -> val_loss 0.1234 (min)`` for the best clean configuration."""
    best = best_of(summaries, objective)
    if best is None or objective is None:
        return None
    label = assignments(best.params, names or list(best.params)) or f"config {best.config_id}"
    value = _metric_text(best.metrics[objective.name])
    return f"{label} -> {objective.name} {value} ({objective.direction})"


class _Grid(NamedTuple):
    """A table as cells: what the terminal and Markdown renderers share."""

    title: str
    fixed: str
    headers: list[str]
    right: list[bool]
    rows: list[list[str]]
    metric_parts: dict[int, list[tuple[str, str]]]
    best: str | None
    n_params: int


def _grid(
    records: Sequence[TrialRecord], objective: Objective | None, comparison: Comparison | None = None
) -> _Grid:
    if not records:
        raise ValueError("no trials to summarize")
    summaries = aggregate(records)
    order = ranked(summaries, objective)
    names = varying([s.params for s in summaries])
    fixed_names = [n for n in dict.fromkeys(k for s in summaries for k in s.params) if n not in names]
    metrics = metric_names(summaries, objective)

    if objective is None:
        ranks = [str(i) for i in range(1, len(order) + 1)]
    else:
        ranks, n = [], 0
        for s in order:
            valued = not math.isnan(s.value(objective.name))
            n += valued
            ranks.append(str(n) if valued else MISSING)

    headers = ["rank" if objective is not None else "#", *names, *metrics, "runs", "status"]
    right = [True]
    right += [all(_is_numeric(s.params.get(n)) for s in summaries if n in s.params) for n in names]
    right += [True] * len(metrics) + [True, False]
    columns = [ranks, *_param_columns(order, names)]
    parts = {}
    for i, metric in enumerate(metrics):
        cells = [_metric_parts(s.metrics.get(metric)) for s in order]
        parts[1 + len(names) + i] = cells
        columns.append([f"{m} {PLUS_MINUS} {d}" if d else m for m, d in cells])
    columns.append([str(s.runs) for s in order])
    gpus = _gpu_cells(records, order)
    if gpus is not None:  # only when some trial had GPUs
        headers.insert(-1, "gpus")
        right.insert(-1, False)
        columns.append(gpus)
    if comparison is not None:
        headers.insert(-1, "baseline")
        right.insert(-1, False)
        columns.append([comparison.statuses.get(s.config_id, MISSING) for s in order])
    front = front_ids(records, summaries)
    if front is not None:  # a multi-objective test
        headers.insert(-1, "front")
        right.insert(-1, False)
        columns.append(["yes" if s.config_id in front else "" for s in order])
    columns.append([s.status for s in order])
    rows = [list(row) for row in zip(*columns, strict=True)]
    fixed = assignments(summaries[0].params, fixed_names)
    return _Grid(
        _title(records, summaries, objective),
        fixed,
        headers,
        right,
        rows,
        parts,
        _best(order, names, objective),
        len(names),
    )


def _gpu_cells(records: Sequence[TrialRecord], order: Sequence[ConfigSummary]) -> list[str] | None:
    """Each configuration's GPU groups (``0,1/2,3`` when its runs had different ones)."""
    if not any(r.gpus for r in records):
        return None
    groups: dict[str, list[str]] = {}
    for r in records:
        text = ",".join(map(str, r.gpus)) or MISSING
        seen = groups.setdefault(r.config_id, [])
        if text not in seen:
            seen.append(text)
    return ["/".join(groups[s.config_id]) for s in order]


# --------------------------------------------------------------------------- terminal table


def _clip(text: str, width: int = MAX_PARAM_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(
    records: Sequence[TrialRecord],
    objective: Objective | None,
    top: int | None = 10,
    comparison: Comparison | None = None,
    best: str = "best",
) -> str:
    """The terminal table of one test function's trials, one row per configuration.

    A title line (function, trials, configurations, status counts, sort order); the parameters
    that do not vary on a ``fixed:`` line; then rank, the varying parameters, the metrics (the
    objective first, the others alphabetically, then ``fit_time``; ``mean ± std`` over repeats),
    runs, the GPUs (only when some trial had any), the baseline verdict (with a ``comparison``)
    and status. Rows are sorted as :func:`ranked` does, cut to the ``top`` best (``None``: all)
    with a ``... N more configurations`` line, and followed by a ``best:`` line (``best`` names
    it: a resumed study's table says ``best of this run``) when some
    configuration has a value for the objective, then the comparison's lines, indented under its
    title. Plain text except ``±``, no trailing spaces.
    """
    if top is not None and top < 1:
        raise ValueError(f"top must be at least 1 (got {top})")
    grid = _grid(records, objective, comparison)
    shown = grid.rows if top is None else grid.rows[:top]
    n_params = grid.n_params

    cells = [list(row) for row in shown]
    for row in cells:
        for j in range(1, 1 + n_params):
            row[j] = _clip(row[j])
    # Metric cells: means right-aligned, spreads left-aligned, so the ± signs line up.
    for j, parts in grid.metric_parts.items():
        parts = parts[: len(cells)]
        wide_mean = max(len(m) for m, _ in parts)
        wide_std = max(len(d) for _, d in parts)
        for row, (m, d) in zip(cells, parts, strict=True):
            spread = f" {PLUS_MINUS} {d.ljust(wide_std)}" if d else " " * (wide_std + 3 if wide_std else 0)
            row[j] = m.rjust(wide_mean) + spread

    widths = [max(len(h), *(len(row[j]) for row in cells)) for j, h in enumerate(grid.headers)]

    def line(texts: Sequence[str]) -> str:
        padded = (t.rjust(w) if r else t.ljust(w) for t, w, r in zip(texts, widths, grid.right, strict=True))
        return GAP.join(padded).rstrip()

    out = [f"{records[0].function}: {grid.title}"]
    if grid.fixed:
        out.append(f"fixed: {grid.fixed}")
    out.append(line(grid.headers))
    out.append(GAP.join("-" * w for w in widths))
    out += [line(row) for row in cells]
    if len(grid.rows) > len(shown):
        more = len(grid.rows) - len(shown)
        out.append(f"... {more} more configuration{'s' if more != 1 else ''}")
    if grid.best is not None:
        out.append(f"{best}: {grid.best}")
    if comparison is not None and comparison.lines:
        title, *verdicts = comparison.lines
        out += [title, *(f"  {line}" for line in verdicts)]
    return "\n".join(out)


# --------------------------------------------------------------------------- report files


def markdown(
    records_by_function: Mapping[str, Sequence[TrialRecord]],
    objective_by_function: Mapping[str, Objective | None],
    comparisons: Mapping[str, Comparison] | None = None,
) -> str:
    """A Markdown report: per test function a heading, a summary line, a GitHub table of every
    configuration (sorted as the terminal table), a best line and, where the function was
    compared with a baseline, its verdicts as a list. Fit for a CI job summary."""
    sections = []
    comparisons = comparisons or {}
    for function, records in records_by_function.items():
        if not records:
            continue
        comparison = comparisons.get(function)
        grid = _grid(records, objective_by_function.get(function), comparison)
        text = [f"## {_md_escape(function)}", "", _md_escape(grid.title[:1].upper() + grid.title[1:]) + "."]
        if grid.fixed:
            text += ["", f"Fixed: {_md_escape(grid.fixed)}"]
        text += [
            "",
            _md_row(map(_md_escape, grid.headers)),
            _md_row("---:" if r else ":---" for r in grid.right),
        ]
        text += [_md_row(map(_md_escape, row)) for row in grid.rows]
        if grid.best is not None:
            text += ["", f"**best:** {_md_escape(grid.best)}"]
        if comparison is not None and comparison.lines:
            title, *verdicts = comparison.lines
            text += ["", f"**{_md_escape(title)}**", ""]
            text += [f"- {_md_escape(line)}" for line in verdicts]
        sections.append("\n".join(text) + "\n")
    return "\n".join(sections)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_|<[]"})


def _md_escape(text: str) -> str:
    """Text that GitHub renders as itself, in a table cell or a paragraph."""
    return text.translate(_MD_SPECIAL)


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _csv_value(value: Any) -> Any:
    if isinstance(value, (str, int, float)) or value is None:
        return value
    return canonical_json(value)


def csv_rows(
    records: Iterable[TrialRecord], comparisons: Mapping[str, Comparison] | None = None
) -> tuple[list[str], list[dict[str, Any]]]:
    """The CSV report's header and rows, one row per trial.

    Columns: test, function, config_id, run, status, ``param.NAME`` for every parameter (first
    seen order), ``metric.NAME`` for every metric (its last value; alphabetical), fit_time (the
    trial's duration), worker, gpus (``0,1``), seed, message, with ``comparisons`` baseline
    (the verdict of the trial's configuration), and for multi-objective tests pareto (whether its
    configuration is on the front). Arrays and tables are JSON text; absent cells are empty.
    """
    records = list(records)
    fronts = _fronts(records)
    params = list(dict.fromkeys(name for r in records for name in r.params))
    metrics = sorted({name for r in records for name in r.last()})
    header = ["test", "function", "config_id", "run", "status"]
    header += [f"param.{name}" for name in params] + [f"metric.{name}" for name in metrics]
    header += ["fit_time", "worker", "gpus", "seed", "message"]
    if comparisons:
        header.append("baseline")
    if fronts:
        header.append("pareto")
    rows = []
    for r in records:
        row: dict[str, Any] = {"test": r.test, "function": r.function, "config_id": r.config_id}
        row |= {"run": r.run, "status": r.status}
        row |= {f"param.{name}": _csv_value(value) for name, value in r.params.items()}
        row |= {f"metric.{name}": value for name, value in r.last().items()}
        row |= {"fit_time": r.duration, "worker": r.worker, "gpus": ",".join(map(str, r.gpus))}
        row |= {"seed": r.seed, "message": r.message}
        if comparisons:
            row["baseline"] = baseline_status(comparisons, r)
        if r.function in fronts:
            row["pareto"] = r.config_id in fronts[r.function]
        rows.append(row)
    return header, rows


def baseline_status(comparisons: Mapping[str, Comparison], record: TrialRecord) -> str | None:
    """The baseline verdict of a trial's configuration; None where it was not compared."""
    comparison = comparisons.get(record.function)
    return None if comparison is None else comparison.statuses.get(record.config_id)


def _fronts(records: Sequence[TrialRecord]) -> dict[str, set[str]]:
    """The Pareto front of each multi-objective test function among ``records``."""
    fronts = {}
    for function, trials in by_function(records).items():
        front = front_ids(trials, aggregate(trials))
        if front is not None:
            fronts[function] = front
    return fronts


def _jsonl_record(
    record: TrialRecord, comparisons: Mapping[str, Comparison] | None, fronts: Mapping[str, set[str]]
) -> dict[str, Any]:
    data = record.to_dict() | {"last": record.last()}
    if comparisons:
        data["baseline"] = baseline_status(comparisons, record)
    if record.function in fronts:
        data["pareto"] = record.config_id in fronts[record.function]
    return data


def export(
    records_by_function: Mapping[str, Sequence[TrialRecord]],
    objective_by_function: Mapping[str, Objective | None],
    path: str | Path,
    comparisons: Mapping[str, Comparison] | None = None,
) -> None:
    """Write the trials to ``path`` in the format its suffix names (parent folders are created).

    ``.csv``: one row per trial (see :func:`csv_rows`). ``.jsonl``: one JSON object per trial,
    ``TrialRecord.to_dict()`` plus ``last`` (each metric's last value) and, with ``comparisons``,
    ``baseline`` (its configuration's verdict), NaN written as ``NaN``.
    ``.md``: see :func:`markdown`. Any other suffix raises ``ValueError`` before writing.
    """
    path = Path(path)
    try:
        suffix = report_format(str(path))
    except ValueError as e:
        raise ValueError(f"--exp-report {path}: {e}") from None
    records = [r for trials in records_by_function.values() for r in trials]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        header, rows = csv_rows(records, comparisons)
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    elif suffix == ".jsonl":
        fronts = _fronts(records)
        lines = (
            json.dumps(_jsonl_record(r, comparisons, fronts), allow_nan=True, default=str) + "\n"
            for r in records
        )
        path.write_text("".join(lines), encoding="utf-8")
    else:
        path.write_text(markdown(records_by_function, objective_by_function, comparisons), encoding="utf-8")


def summary_dict(
    records: Sequence[TrialRecord], objective: Objective | None, comparison: Comparison | None = None
) -> dict[str, Any]:
    """The aggregated configurations of one test function as plain data, best first (the
    ``exp`` section of a JSON report); with a ``comparison``, each configuration's ``baseline``
    verdict and a ``baseline`` entry with the file and every verdict."""
    summaries = ranked(aggregate(records), objective)
    best = best_of(summaries, objective)
    configurations: list[dict[str, Any]] = [
        {
            "config_id": s.config_id,
            "params": s.params,
            "runs": s.runs,
            "statuses": s.statuses,
            "metrics": {name: m._asdict() for name, m in s.metrics.items()},
        }
        for s in summaries
    ]
    summary: dict[str, Any] = {
        "objective": None if objective is None else str(objective),
        "trials": len(records),
        "configurations": configurations,
        "best": None if best is None else best.config_id,
    }
    front = front_ids(records, summaries)
    if front is not None:
        summary["pareto_front"] = [s.config_id for s in summaries if s.config_id in front]
    if comparison is not None:
        for entry in configurations:
            entry["baseline"] = comparison.statuses.get(entry["config_id"])
        summary["baseline"] = {"file": comparison.source, "verdicts": [dict(v) for v in comparison.verdicts]}
    return summary


@contextmanager
def _figure(path: Path, title: str) -> Iterator[Any]:
    """A figure's axes to draw on, saved to ``path`` as the block ends. matplotlib is imported
    here only."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        yield ax
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def convergence_plot(
    path: Path, title: str, values: Sequence[tuple[int, float | None]], objective: Objective | None
) -> None:
    """Save a study's convergence plot: each trial's objective and the best so far, by trial.
    Failed trials (``None``) are marked on the x axis."""
    direction = objective.direction if objective is not None else "min"
    pick = min if direction == "min" else max
    ok = sorted((i, v) for i, v in values if v is not None and math.isfinite(v))
    failed = sorted(i for i, v in values if v is None or not math.isfinite(v))
    best: list[float] = []
    for _, v in ok:
        best.append(v if not best else pick(best[-1], v))
    with _figure(path, title) as ax:
        if ok:
            ax.plot([i for i, _ in ok], [v for _, v in ok], "o", color="tab:blue", alpha=0.5, label="trial")
            ax.step(
                [i for i, _ in ok], best, where="post", color="tab:orange", label=f"best so far ({direction})"
            )
        if failed:
            bottom = ax.get_ylim()[0] if ok else 0.0
            ax.plot(failed, [bottom] * len(failed), "x", color="tab:red", label="failed")
        ax.set_xlabel("trial")
        ax.set_ylabel(objective.name if objective is not None else "objective")


def front_plot(
    path: Path,
    title: str,
    values: Sequence[tuple[int, tuple[float, ...]]],
    front: Sequence[int],
    objectives: Sequence[Objective],
) -> None:
    """Save a multi-objective study's trials over its first two objectives, the Pareto front
    (``front``, trial numbers) joined in order and labelled with its trials."""
    x, y = objectives[0], objectives[1]
    on = [(i, v) for i, v in values if i in set(front)]
    off = [(i, v) for i, v in values if i not in set(front)]
    with _figure(path, title) as ax:
        if off:
            ax.plot(
                [v[0] for _, v in off],
                [v[1] for _, v in off],
                "o",
                color="tab:blue",
                alpha=0.4,
                label="trial",
            )
        if on:
            line = sorted(on, key=lambda iv: x.signed(iv[1][0]))
            ax.plot(
                [v[0] for _, v in line],
                [v[1] for _, v in line],
                "o-",
                color="tab:orange",
                label="Pareto front",
            )
            for i, v in line:
                ax.annotate(
                    f"trial-{i:03d}", (v[0], v[1]), textcoords="offset points", xytext=(4, 4), fontsize=7
                )
        ax.set_xlabel(f"{x.name} ({x.direction})")
        ax.set_ylabel(f"{y.name} ({y.direction})")
