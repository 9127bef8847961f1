"""State of one pytest run: resolved settings, the session seed, loaded spaces, expansion."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_exp import settings
from pytest_exp.interrupt import Guard
from pytest_exp.items import SLOT, OptSlot, Plan, Slot, StudyPlan
from pytest_exp.space import MAX_GRID, Grid, Space, SpaceError, suggest
from pytest_exp.study import backend
from pytest_exp.study.proposer import Proposing
from pytest_exp.study.resume import StoredStudies
from pytest_exp.trial import objectives

if TYPE_CHECKING:
    from pytest_exp.baseline import Baseline
    from pytest_exp.gate import TestGate
    from pytest_exp.tolerance import Tolerance

SEED_CACHE_KEY = "exp/seed"
RESERVED = frozenset({"request", "exp_params", "exp_trial", SLOT})


class CollectError(Exception):
    """A space or marker that cannot be expanded; reported as a collection error of its test."""


def _refuse_shadowed_fixtures(metafunc: pytest.Metafunc, space: Space, passed: list[str]) -> None:
    """A parameter the test takes must not be a fixture too: parametrize would silently hand the
    test the parameter's values in place of the fixture (``record_metric = [1, 2]``)."""
    fixtures = metafunc._arg2fixturedefs  # what pytest resolved for this test, by name
    for name in passed:
        defs = fixtures.get(name)
        if defs:
            where = defs[-1].func.__module__
            raise SpaceError(
                f"parameter {name!r} has the name of the fixture {name} (from {where}) that the test "
                "uses, and would replace it: rename the parameter",
                source=space.source,
                param=name,
            )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class ExpSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.cli = {s.name: config.getoption(s.flag) for s in settings.SETTINGS}
        self.ini: dict[str, Any] = {}
        inifile = settings.ini_name(config.inipath, config.invocation_params.dir)
        for s in settings.SETTINGS:
            raw = config.getini(s.ini)
            if raw not in ("", None):
                try:
                    self.ini[s.name] = settings.parse_ini(s, raw, inifile)
                except settings.SettingError as e:
                    raise pytest.UsageError(str(e)) from None
        self.seed, self.seed_note = self._session_seed()
        workerinput = getattr(config, "workerinput", {})
        self.worker: str = workerinput.get("workerid", "main")  # as the records name it
        self.remote = "workerid" in workerinput  # an xdist worker, whose reports go to a controller
        self.gpus: list[int] = []  # the GPUs this process owns, once pinned (set by the plugin)
        self.run_name: str = workerinput.get("exp_run") or (
            time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(2).hex()  # secrets would load hmac too
        )
        self.store_dir = self._store_dir()
        # What opening the store reported (journals recovered), for the end of the run.
        self.store_notes: list[str] = []
        self.studies = StoredStudies(self.store_dir, self.run_name, self.store_notes)
        # Set by the plugin: the Proposer (controller or only process) or a worker's RemoteProposer.
        self.proposer: Proposing | None = None
        self.guard = Guard(config)  # Ctrl-C and SIGTERM (installed by the plugin at session start)
        # --setup-show (and --setup-plan) print each fixture pytest sets up: none is handed over.
        self.serve_fixtures = not getattr(config.option, "setupshow", False)
        if settings.resolve("plot", self.cli, {}, self.ini) is not None and find_spec("matplotlib") is None:
            raise pytest.UsageError(
                "--exp-plot needs matplotlib, which is not installed: pip install 'pytest-exp[plot]'"
            )
        if self.cli["optimize"] is not None:
            # The command line and the ini file alone: a usage error, before collection. Not for
            # module:object, which may be importable only once collection puts its folder on sys.path.
            optimizer = settings.resolve("optimizer", self.cli, {}, self.ini)
            if ":" not in optimizer or backend.named(optimizer):
                try:
                    self.optimizer_settings(optimizer, {})
                except CollectError as e:
                    raise pytest.UsageError(str(e)) from None
            for grid_only in ("sample", "repeat"):
                if self.cli[grid_only] is not None:
                    raise pytest.UsageError(
                        f"--exp-{grid_only} is a grid option and does not apply to --exp-optimize"
                    )
        self.marked_tests = 0
        self._spaces: dict[tuple[str, int], Space] = {}
        self._grids: dict[tuple[str, int], Grid] = {}
        space = self.cli["space"]
        if space is not None and not self.cli_space_path().is_file():
            raise pytest.UsageError(f"--exp-space {space}: space file not found")
        self.baseline: Baseline | None = None
        self._baseline_options()

    # baselines --------------------------------------------------------------

    def _baseline_options(self) -> None:
        """Check the baseline options together, and read the baseline to compare with."""
        compare = self.setting_path("baseline")
        save = self.setting_path("save_baseline")
        self.baseline_path, self.save_path = compare, save
        if compare is None:
            for needs in ("update_baseline", "tolerance", "baseline_strict"):
                if self.cli[needs] is not None:
                    raise pytest.UsageError(
                        f"{settings.BY_NAME[needs].flag} applies to a baseline comparison: add "
                        "--exp-baseline PATH (make the baseline once with --exp-save-baseline PATH)"
                    )
        if self.cli["optimize"] is not None:
            if self.cli["baseline"] is not None or self.cli["save_baseline"] is not None:
                raise pytest.UsageError(
                    "--exp-baseline and --exp-save-baseline are for grid sweeps; they do not apply to "
                    "--exp-optimize"
                )
            # A project's ini baseline gates its sweeps; a study run from the same project is none.
            self.baseline_path = self.save_path = None
            return
        if compare is None:
            return
        if save is not None and save.resolve() == compare.resolve():
            raise pytest.UsageError(
                f"--exp-save-baseline names the baseline this run compares with ({self.shown(compare)}): "
                "use --exp-update-baseline to rewrite it from this run"
            )
        if self.updating_baseline and not compare.exists():
            return  # the update creates it
        from pytest_exp.baseline import BaselineError, read_baseline  # only runs with a baseline need it

        shown = self.shown(compare)
        try:
            self.baseline = read_baseline(compare, shown)
        except BaselineError as e:
            hint = "" if compare.exists() else f"; make one with --exp-save-baseline {shown}"
            raise pytest.UsageError(f"{e}{hint}") from None

    @property
    def updating_baseline(self) -> bool:
        return bool(settings.resolve("update_baseline", self.cli, {}, self.ini))

    @property
    def gating(self) -> bool:
        """Whether trials carry what the controller needs to save or compare a baseline."""
        return self.baseline_path is not None or self.save_path is not None

    def tolerances(self) -> dict[str, Tolerance]:
        """The default tolerances: the ini file's, then the command line's spec for each name."""
        return {**self.ini.get("tolerance", {}), **(self.cli["tolerance"] or {})}

    def _test_gate(self, function: str, space: Space, options: dict[str, Any], repeat: int) -> TestGate:
        from pytest_exp.baseline import fingerprint_error
        from pytest_exp.gate import TestGate

        fingerprint = space.fingerprint()
        if self.baseline is not None and not self.updating_baseline:
            # The function's own entry, or those of its sweeps by other parameters (group_of).
            for name, saved in self.baseline.tests.items():
                if saved != fingerprint and (name == function or name.startswith(function + "[")):
                    raise CollectError(str(fingerprint_error(self.baseline.path, name, saved, fingerprint)))
        tolerance = options.get("tolerance") or {}
        strict = settings.resolve("baseline_strict", self.cli, options, self.ini)
        specs = ",".join(t.spec(name) for name, t in tolerance.items())
        return TestGate(fingerprint=fingerprint, runs=repeat, tolerance=specs, strict=bool(strict))

    def unused_space_note(self) -> str | None:
        """Why --exp-space did nothing, when this process collected tests and none was marked."""
        collected = self.config.pluginmanager.hasplugin("dsession") or self.marked_tests
        if self.cli["space"] is None or collected:
            return None
        return (
            f"exp: --exp-space {self.cli['space']} was not used: no collected test is marked with "
            "@pytest.mark.space (the option replaces the space of marked tests only)"
        )

    def _store_dir(self) -> Path | None:
        """The store's directory; None for ``none``, a run that stores nothing."""
        if settings.resolve("store", self.cli, {}, self.ini) == settings.NO_STORE:
            return None
        return self.setting_path("store") or self.config.rootpath / ".pytest-exp"

    def setting_path(self, name: str) -> Path | None:
        """The file a path setting names: on the command line relative to where pytest started,
        in the ini file relative to it; None when unset."""
        if self.cli[name] is not None:
            return Path(self.config.invocation_params.dir, self.cli[name])
        if name in self.ini:
            return Path(self._ini_dir(), self.ini[name])
        return None

    def shown(self, path: Path) -> str:
        """``path`` as messages show it: relative to where pytest started, where it can be."""
        return _relative(path, self.config.invocation_params.dir)

    def _ini_dir(self) -> Path:
        inipath = self.config.inipath
        return inipath.parent if inipath is not None else self.config.rootpath

    # seed -------------------------------------------------------------------

    def _session_seed(self) -> tuple[int, str]:
        workerinput = getattr(self.config, "workerinput", None)
        if workerinput is not None and "exp_seed" in workerinput:
            # xdist workers take the controller's decision, so every worker collects the same.
            return int(workerinput["exp_seed"]), ""
        wanted = settings.resolve("seed", self.cli, {}, self.ini)
        cache = self.config.cache if hasattr(self.config, "cache") else None
        if wanted == "random":
            return random.SystemRandom().randrange(2**32), ""
        if wanted == "last":
            if cache is None:
                raise pytest.UsageError("--exp-seed last needs pytest's cache (-p cacheprovider)")
            last = cache.get(SEED_CACHE_KEY, None)
            if last is None:
                return 0, " (no earlier run recorded a seed)"
            return int(last), ""
        return int(wanted), ""

    def remember_seed(self) -> None:
        cache = self.config.cache if hasattr(self.config, "cache") else None
        if cache is not None and not hasattr(self.config, "workerinput"):
            cache.set(SEED_CACHE_KEY, self.seed)

    def header(self) -> str:
        line = f"exp: seed {self.seed}{self.seed_note} (reproduce with --exp-seed {self.seed})"
        if self.store_dir is None:
            line += f"\nexp: trials are not stored (--exp-store {settings.NO_STORE})"
        return line

    # spaces -----------------------------------------------------------------

    def cli_space_path(self) -> Path:
        return Path(self.config.invocation_params.dir, self.cli["space"])

    def _space_source(self, definition: pytest.Function, spec: object) -> Path | Mapping[str, Any]:
        """Where a test's space comes from: --exp-space, then the marker, then ini exp_space."""
        if self.cli["space"] is not None:
            return self.cli_space_path()
        if isinstance(spec, (str, os.PathLike)):
            return Path(definition.path.parent, spec)
        if isinstance(spec, Mapping):
            return spec
        if spec is not None:
            raise CollectError(
                f"@pytest.mark.space takes a path to a TOML file or a dict (got {type(spec).__name__})"
            )
        if "space" in self.ini:
            return Path(self._ini_dir(), self.ini["space"])
        raise CollectError(
            "@pytest.mark.space() names no space: give one in the marker "
            '(@pytest.mark.space("space.toml")), with --exp-space FILE, or with exp_space in the ini file'
        )

    def load(self, source: Path | Mapping[str, Any]) -> Space:
        if isinstance(source, Mapping):
            return Space.from_dict(source, source="space dict")
        shown = _relative(source, self.config.rootpath)
        try:
            key = (str(source), source.stat().st_mtime_ns)
        except OSError:
            raise SpaceError("space file not found", source=shown) from None
        if key not in self._spaces:
            self._spaces[key] = Space.from_file(source, source=shown)
        return self._spaces[key]

    def grid(self, space: Space, seed: int) -> Grid:
        # One grid per space and seed: tests sharing a space share its values and id labels.
        # Keyed by meaning: a dict space dies after collection and its id() gets reused.
        key = (space.fingerprint(), seed)
        if key not in self._grids:
            self._grids[key] = space.grid(seed)
        return self._grids[key]

    # expansion --------------------------------------------------------------

    def parametrize(self, metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
        try:
            self._parametrize(metafunc, marker)
        except (CollectError, SpaceError, settings.SettingError) as e:
            error = f"{e}; used by {metafunc.definition.nodeid}"
        else:
            return
        # Outside the except block, so pytest shows the message alone, not a chained traceback.
        pytest.fail(error, pytrace=False)

    def _marker_options(self, marker: pytest.Mark) -> tuple[object, dict[str, Any]]:
        kwargs = dict(marker.kwargs)
        if len(marker.args) > 1:
            raise CollectError(
                f"@pytest.mark.space takes one space, a path or a dict (got {len(marker.args)} arguments)"
            )
        spec = marker.args[0] if marker.args else kwargs.pop("path_or_dict", None)
        options = {}
        for key, raw in kwargs.items():
            setting = settings.BY_NAME.get(key)
            if setting is None or setting.marker is None:
                known = settings.MARKER_KEYWORDS
                raise CollectError(
                    f'@pytest.mark.space has no keyword "{key}" '
                    f"(expected one of {', '.join(f'{k!r}' for k in known)}{suggest(key, known)})"
                )
            options[key] = settings.parse_marker(setting, raw)
        return spec, options

    def _parametrize(self, metafunc: pytest.Metafunc, marker: pytest.Mark) -> None:
        self.marked_tests += 1
        spec, options = self._marker_options(marker)
        space = self.load(self._space_source(metafunc.definition, spec))
        clash = RESERVED.intersection(space.names)
        if clash:
            raise SpaceError(f"parameter name {sorted(clash)[0]!r} is reserved", source=space.source)
        seed = self.seed if "seed" not in options or self.cli["seed"] is not None else options["seed"]
        passed = [n for n in space.names if n in set(metafunc.fixturenames)]
        _refuse_shadowed_fixtures(metafunc, space, passed)
        # Items get their values the way plain parametrize gives them, plus a slot for the rest.
        metafunc.fixturenames.append(SLOT)
        if settings.resolve("optimize", self.cli, options, self.ini) is not None:
            argvalues, ids = self._study_items(metafunc.definition.nodeid, space, options, seed, passed)
        else:
            argvalues, ids = self._grid_items(metafunc.definition.nodeid, space, options, seed, passed)
        metafunc.parametrize([*passed, SLOT], argvalues, ids=ids, indirect=[SLOT])

    def _grid_items(
        self, function: str, space: Space, options: dict[str, Any], seed: int, passed: list[str]
    ) -> tuple[list[Any], list[str]]:
        sample = settings.resolve("sample", self.cli, options, self.ini)
        repeat = settings.resolve("repeat", self.cli, options, self.ini)
        grid = self.grid(space, seed)
        # The one place a grid is expanded whole; a sample takes any size (Grid.size, not len()).
        if sample is None and grid.size > MAX_GRID:
            raise SpaceError(
                f"the grid has {grid.size:,} points, too many to collect (limit {MAX_GRID:,}); "
                "run a sample of it with --exp-sample N or search it with --exp-optimize N",
                source=space.source,
            )
        gate = self._test_gate(function, space, options, repeat) if self.gating else None
        objective = settings.resolve("objective", self.cli, options, self.ini)
        plan = Plan(function, grid, objective, gate, own=frozenset([*passed, SLOT]), repeat=repeat)
        argvalues: list[Any] = []
        ids = []
        for i, values, label in grid.rows(passed, grid.sample(sample) if sample is not None else None):
            for run in range(1, repeat + 1):
                argvalues.append((*values, Slot(plan, point=i, run=run)))
                ids.append(label if repeat == 1 else f"{label}-run={run}")
        return argvalues, ids

    def optimizer_settings(
        self, optimizer: str, options: Mapping[str, Any]
    ) -> tuple[backend.Backend, dict[str, Any]]:
        """The backend ``optimizer`` names and the settings its studies get (``seed`` aside).
        A setting of another backend, or one its variant contradicts, is an error."""
        try:
            chosen, variant = backend.choose(optimizer)
        except backend.BackendError as e:
            raise CollectError(str(e)) from None
        missing = getattr(chosen, "missing", None)  # what an optional backend lacks to run
        problem = missing(variant) if missing is not None else None
        if problem:
            raise CollectError(f"--exp-optimizer {optimizer}: {problem}")
        given = {n: label for n in backend.BACKEND_SETTINGS if (label := self._given_as(n, options))}
        foreign = sorted(set(given) - set(chosen.SETTINGS))
        if foreign:
            raise CollectError(
                f"{given[foreign[0]]} is a setting of the skopt backend, which --exp-optimizer "
                f"{optimizer} does not use"
            )
        opt = {k: settings.resolve(k, self.cli, options, self.ini) for k in chosen.SETTINGS}
        implied = getattr(chosen, "implied", None)
        for name, value in (implied(variant) if implied is not None and variant else {}).items():
            if name in given and opt[name] != value:
                raise CollectError(
                    f"{given[name]} {opt[name]} conflicts with --exp-optimizer {optimizer}, which means "
                    f"{name} {value}"
                )
            opt[name] = value
        return chosen, {**opt, "variant": variant}

    def _given_as(self, name: str, marker: Mapping[str, Any]) -> str | None:
        """How setting ``name`` was given where it wins (its flag, marker keyword or ini key), or
        None when it is left at its default."""
        setting = settings.BY_NAME[name]
        for layer, label in ((self.cli, setting.flag), (marker, f"{name}="), (self.ini, setting.ini)):
            if layer.get(name) is not None:
                return label
        return None

    def _study_items(
        self, function: str, space: Space, options: dict[str, Any], seed: int, passed: list[str]
    ) -> tuple[list[Any], list[str]]:
        for grid_only in ("sample", "repeat"):
            if options.get(grid_only) is not None:
                raise CollectError(
                    f"@pytest.mark.space({grid_only}=...) does not apply to an optimization study"
                )
        optimizer = settings.resolve("optimizer", self.cli, options, self.ini)
        chosen, opt = self.optimizer_settings(optimizer, options)
        chosen.check(space)
        objective = settings.resolve("objective", self.cli, options, self.ini)
        pruner = settings.resolve("pruner", self.cli, options, self.ini)
        count = len(objectives(objective)) if objective else 1
        if count > 1:
            if not backend.multi_objective(chosen, opt["variant"]):
                raise CollectError(
                    f"--exp-optimizer {optimizer} optimizes one objective, and objective {objective!r} "
                    f"names {count}: use optuna:nsga2, optuna:tpe, optuna:gp, optuna:qmc or optuna:random"
                )
            if pruner != "none":
                raise CollectError(
                    f"--exp-pruner {pruner}: a multi-objective study cannot be pruned "
                    f"(objective {objective!r} names {count}); use --exp-pruner none"
                )
            opt["objectives"] = count
        budget = settings.resolve("optimize", self.cli, options, self.ini)
        fresh = bool(settings.resolve("fresh", self.cli, {}, self.ini))
        key, done = self.studies.resume(function, space, fresh=fresh)
        plan = StudyPlan(
            key=key,
            function=function,
            space=space,
            objective=objective,
            budget=budget,
            settings={**opt, "seed": seed},
            replayed=len(done),
            backend=optimizer,
            pruner=pruner,
            prune_warmup=settings.resolve("prune_warmup", self.cli, options, self.ini),
        )
        width = max(3, len(str(budget - 1)))
        remaining = [i for i in range(budget) if i not in done]
        if not remaining:
            reason = (
                f"study complete: {budget} of {budget} trials done in earlier runs "
                "(raise --exp-optimize to extend it, or --exp-fresh to start over)"
            )
            return [pytest.param(*([None] * len(passed)), None, marks=pytest.mark.skip(reason=reason))], [
                "study-complete"
            ]
        placeholders = [None] * len(passed)  # the proposer fills them in at setup
        return [(*placeholders, OptSlot(plan, number=i)) for i in remaining], [
            f"trial-{i:0{width}d}" for i in remaining
        ]


STASH = pytest.StashKey[ExpSession]()
