"""The plugin's settings: one definition each, shared by the command line, ini file and marker.

Precedence, lowest first: default < ini file < ``@pytest.mark.space(...)`` keyword < command line.
The command line wins because it is what the person running pytest asked for this time
(``--exp-space`` replaces every marker's space, and ``--exp-repeat 1`` must be able to make a
quick run of tests whose markers say ``repeat=5``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, NamedTuple

from pytest_exp.space import MAX_GRID
from pytest_exp.study.pruning import NAMES as PRUNERS
from pytest_exp.study.skopt import ACQUISITIONS, LIARS, SURROGATES
from pytest_exp.tolerance import SPEC_FORM, tolerance_setting
from pytest_exp.trial import objectives

REPORT_FORMATS = (".csv", ".jsonl", ".md")
NO_STORE = "none"  # --exp-store none: the run stores nothing (a directory of that name: ./none)


class SettingError(ValueError):
    """A setting with a value it cannot take; the message says where the value came from."""


def int_at_least(minimum: int) -> Callable[[object], int]:
    """An integer (or its text) of ``minimum`` or more; bools are refused."""

    def parse(value: object) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer >= {minimum}") from None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"expected an integer >= {minimum}")
        return value

    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)


def trial_budget(value: object) -> int:
    """A study's size: each trial is a test item, so at most as many as a grid may have."""
    n = positive_int(value)
    if n > MAX_GRID:
        raise ValueError(f"expected an integer from 1 to {MAX_GRID:,} (each trial is a test item)")
    return n


def seed_value(value: object) -> int | str:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("last", "random"):
            return text
        try:
            value = int(text)
        except ValueError:
            raise ValueError('expected an integer, "last" or "random"') from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError('expected an integer, "last" or "random"')
    return value


def marker_seed(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("expected an integer")
    return value


_OPTIMIZER = re.compile(r"[A-Za-z_][\w.]*(:[\w.]+)?")


def optimizer_value(value: object) -> str:
    if not isinstance(value, str) or _OPTIMIZER.fullmatch(value.strip()) is None:
        raise ValueError("expected NAME[:VARIANT] (e.g. skopt:gp, random, optuna:tpe) or module:object")
    return value.strip()


def objective_value(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("expected NAME, NAME:min or NAME:max, or several separated by commas")
    return ",".join(map(str, objectives(value)))


def report_format(path: str) -> str:
    """The export format a path's suffix names (``.csv``, ``.jsonl``, ``.md``), or ValueError."""
    suffix = PurePath(path).suffix
    if suffix.lower() not in REPORT_FORMATS:
        raise ValueError(f"unknown format {suffix!r} (expected .csv, .jsonl or .md)")
    return suffix.lower()


def report_value(value: object) -> str:
    path = path_value(value)
    report_format(path)
    return path


def path_value(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a path")
    return value.strip()


def choice(*options: str) -> Callable[[object], str]:
    """A case-insensitive pick from ``options``, returned as spelled there."""
    by_lower = {o.lower(): o for o in options}

    def parse(value: object) -> str:
        if not isinstance(value, str) or value.strip().lower() not in by_lower:
            raise ValueError(f"expected one of {', '.join(options)}")
        return by_lower[value.strip().lower()]

    return parse


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


MAX_DEVICE_ID = 2**31 - 1  # CUDA's device ordinals are C ints


def gpus_value(value: object) -> str | tuple[int, ...]:
    """``auto``, ``none`` or distinct device ids such as ``0,2,3`` (a tuple)."""
    expected = "expected auto, none or distinct device ids such as 0,2,3"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # one device, as a TOML config file may give it
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in ("auto", "none"):
        return text
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(expected)
    ids = tuple(int(p) for p in parts)
    too_big = next((i for i in ids if i > MAX_DEVICE_ID), None)
    if too_big is not None:
        limit = f"CUDA numbers devices up to {MAX_DEVICE_ID}"
        raise ValueError(f"{expected} ({too_big} is not a device id: {limit})")
    twice = next((i for n, i in enumerate(ids) if i in ids[:n]), None)
    if twice is not None:
        raise ValueError(f"{expected} ({twice} is listed twice)")
    return ids


class Setting(NamedTuple):
    name: str
    help: str
    parse: Callable[[object], Any]
    default: Any = None
    metavar: str = "N"
    # How a marker keyword is checked; None when the setting is not a marker keyword.
    marker: Callable[[object], Any] | None = None
    # A command-line switch without a value (ini: true/false).
    switch: bool = False
    # What a TOML config file (pytest.toml, [tool.pytest]) may give besides a string.
    toml: type | None = None

    @property
    def flag(self) -> str:
        return "--exp-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "exp_" + self.name


SETTINGS = (
    Setting(
        "space",
        "TOML parameter space for every @pytest.mark.space test, replacing the marker's own.",
        path_value,
        metavar="FILE",
    ),
    Setting(
        "sample",
        "run N distinct configurations drawn from each grid (all of them when N >= its size).",
        positive_int,
        marker=positive_int,
        toml=int,
    ),
    Setting(
        "repeat",
        "run every configuration N times (run 1..N, each with its own seed).",
        positive_int,
        default=1,
        marker=positive_int,
        toml=int,
    ),
    Setting(
        "objective",
        "the metric that ranks trials, NAME[:min|max] (min when omitted); several, comma-separated, "
        "make a study multi-objective (loss:min,latency:min).",
        objective_value,
        metavar="NAME[:min|max]",
        marker=objective_value,
    ),
    Setting(
        "store",
        "directory of the trial store (default .pytest-exp at the rootdir), or none: store nothing.",
        path_value,
        metavar="DIR",
    ),
    Setting(
        "report",
        "write the trials to PATH at the end: .csv, .jsonl or .md (Markdown, for CI job summaries).",
        report_value,
        metavar="PATH",
    ),
    Setting(
        "top",
        "configurations shown per test in the summary table (default 10).",
        positive_int,
        default=10,
        metavar="K",
        toml=int,
    ),
    Setting(
        "optimize",
        "run each space-marked test as a Bayesian optimization study of N trials (trial-000 ...).",
        trial_budget,
        marker=trial_budget,
        toml=int,
    ),
    Setting(
        "optimizer",
        "the optimizer backend, NAME[:VARIANT]: skopt (default; skopt:gp, skopt:rf, skopt:et), random, "
        "optuna:tpe, optuna:cmaes, optuna:qmc, optuna:random, optuna:gp (pytest-exp[optuna]), a "
        "backend registered in the pytest_exp.optimizers entry-point group, or module:object.",
        optimizer_value,
        default="skopt",
        metavar="NAME[:VARIANT]",
        marker=optimizer_value,
    ),
    Setting(
        "pruner",
        "stop unpromising study trials early: none (default), median, halving (successive "
        "halving) or hyperband; a test asks with exp_trial.should_prune() after "
        "record_metric(name, value, step=k).",
        choice(*PRUNERS),
        default="none",
        metavar="PRUNER",
        marker=choice(*PRUNERS),
    ),
    Setting(
        "prune_warmup",
        "steps a trial runs before the pruner judges it (default 0; for halving and hyperband, the "
        "first rung).",
        nonnegative_int,
        default=0,
        marker=nonnegative_int,
        toml=int,
    ),
    Setting(
        "surrogate",
        "the optimizer's model: GP (default), RF, ET, or random (random search, a baseline).",
        choice(*SURROGATES),
        default="GP",
        metavar="MODEL",
        marker=choice(*SURROGATES),
    ),
    Setting(
        "acq",
        "acquisition function: EI (default), PI, LCB or gp_hedge.",
        choice(*ACQUISITIONS),
        default="EI",
        metavar="FUNC",
        marker=choice(*ACQUISITIONS),
    ),
    Setting(
        "initial_points",
        "random trials before the model proposes (default 10).",
        positive_int,
        default=10,
        metavar="K",
        marker=positive_int,
        toml=int,
    ),
    Setting(
        "liar",
        "value told for trials in flight when another is proposed: cl_min (default), cl_mean, cl_max.",
        choice(*LIARS),
        default="cl_min",
        metavar="LIAR",
        marker=choice(*LIARS),
    ),
    Setting(
        "fresh",
        "start every study over instead of resuming it from the store.",
        boolean,
        default=False,
        switch=True,
        toml=bool,
    ),
    Setting(
        "plot",
        "save a convergence plot per study to PATH, a Pareto front for a multi-objective one (PNG; "
        "needs the 'plot' extra, matplotlib).",
        path_value,
        metavar="PATH",
    ),
    Setting(
        "seed",
        "seed for random parameters, sampling and trial seeds: an integer, 'last' "
        "(the previous run's) or 'random' (default 0: the same sweep every run).",
        seed_value,
        default=0,
        metavar="SEED",
        marker=marker_seed,
        toml=int,
    ),
    Setting(
        "gpus",
        "GPUs for the test processes: auto (CUDA_VISIBLE_DEVICES, else nvidia-smi or NVML), ids such "
        "as 0,2,3, or none (default: the environment is left alone). Each xdist worker sees only its own.",
        gpus_value,
        default="none",
        metavar="auto|none|IDS",
        toml=int,
    ),
    Setting(
        "gpus_per_worker",
        "GPUs each worker (or the single process) gets with --exp-gpus (default 1).",
        positive_int,
        default=1,
        metavar="K",
        toml=int,
    ),
    Setting(
        "gpus_share",
        "with --exp-gpus, let more xdist workers than GPU groups share the groups, round robin.",
        boolean,
        default=False,
        switch=True,
        toml=bool,
    ),
    Setting(
        "baseline",
        "compare each configuration's mean metrics with the baseline file PATH; a metric worse "
        "beyond its tolerance fails the test (see --exp-tolerance).",
        path_value,
        metavar="PATH",
    ),
    Setting(
        "save_baseline",
        "write every trial's metrics to the baseline file PATH at the end (JSON lines, sorted).",
        path_value,
        metavar="PATH",
    ),
    Setting(
        "update_baseline",
        "rewrite the --exp-baseline file from this run: verdicts are shown, nothing fails.",
        boolean,
        default=False,
        switch=True,
        toml=bool,
    ),
    Setting(
        "tolerance",
        f"how far metrics may move towards worse, {SPEC_FORM}, comma-separated; DIRECTION is min, "
        "max, any, report (never fails) or ignore; a marker's specs beat these for its test "
        "(default: the objective's direction, exact; any other metric: report).",
        tolerance_setting,
        metavar="SPECS",
        marker=tolerance_setting,
    ),
    Setting(
        "baseline_show",
        "which verdicts the baseline comparison lists: failures (default: those that fail, and "
        "missing or new entries) or all.",
        choice("failures", "all"),
        default="failures",
        metavar="failures|all",
    ),
    Setting(
        "baseline_strict",
        "fail, not warn, when a configuration or metric is missing from the baseline or new in this run.",
        boolean,
        default=False,
        switch=True,
        marker=boolean,
        toml=bool,
    ),
)
BY_NAME = {s.name: s for s in SETTINGS}
MARKER_KEYWORDS = tuple(s.name for s in SETTINGS if s.marker is not None)


def ini_name(inipath: PurePath | None, start: PurePath) -> str:
    """How messages name the ini file: relative to where pytest started, where it can be."""
    if inipath is None:
        return "the config file"
    try:
        return str(PurePath(os.path.relpath(inipath, start)))
    except ValueError:  # another drive (Windows)
        return str(inipath)


def parse_ini(setting: Setting, raw: object, inifile: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as e:
        raise SettingError(f"{inifile}: invalid {setting.ini} = {raw!r}: {e}") from None


def parse_marker(setting: Setting, raw: object) -> Any:
    assert setting.marker is not None
    try:
        return setting.marker(raw)
    except ValueError as e:
        raise SettingError(f"invalid space marker keyword {setting.name}={raw!r}: {e}") from None


def resolve(name: str, cli: Mapping[str, Any], marker: Mapping[str, Any], ini: Mapping[str, Any]) -> Any:
    """The value of one setting for one test, by the precedence in this module's docstring."""
    for layer in (cli, marker, ini):
        if layer.get(name) is not None:
            return layer[name]
    return BY_NAME[name].default
