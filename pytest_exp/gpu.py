"""GPU devices: discovery, groups of K per worker, and pinning each test process to its group.

Device ids are physical: nvidia-smi's numbering, PCI bus order. Every pinned process gets
``CUDA_DEVICE_ORDER=PCI_BUS_ID`` so CUDA numbers devices the same way, ``CUDA_VISIBLE_DEVICES``
set to its group, and ``PYTEST_EXP_GPUS`` (the same ids) so code can tell who pinned it.

Where the environment is set, and why there:

- **xdist workers**: the controller rewrites each worker's ``--tx`` spec to
  ``popen//env:CUDA_VISIBLE_DEVICES=...`` in ``pytest_configure``. execnet sets those variables
  in the new interpreter before the worker imports anything, so they hold at ``conftest.py``
  import, and xdist restarts a crashed worker from the same spec object, so the replacement
  (``gw2`` for ``gw0``) gets the crashed worker's devices. Nothing is derived from worker names.
- **one process** (no xdist): ``pytest_load_initial_conftests``, before the first ``conftest.py``;
  the previous values come back at ``pytest_unconfigure``.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pytest

from pytest_exp import settings

VISIBLE = "CUDA_VISIBLE_DEVICES"
ORDER = "CUDA_DEVICE_ORDER"
OWNED = "PYTEST_EXP_GPUS"
PCI_BUS_ID = "PCI_BUS_ID"
WORKERINPUT_KEY = "exp_gpus"
WORKERINPUT_NONE = "exp_gpus_none"
SMI_TIMEOUT = 10.0

Ids = tuple[int, ...]
Probe = Callable[[], tuple[Ids | None, str]]


class GpuError(ValueError):
    """A GPU request that cannot be met; the message is a usage error's one line."""


def ids_text(ids: Iterable[int]) -> str:
    return ",".join(str(i) for i in ids)


def parse_ids(text: str) -> Ids:
    """``"0,2"`` -> ``(0, 2)``; ``""`` -> ``()``. For values this module wrote itself."""
    return tuple(int(p) for p in text.split(",") if p.strip())


def parse_visible(text: str) -> Ids:
    """The devices an outer ``CUDA_VISIBLE_DEVICES`` lists, read as CUDA reads it: empty hides
    every device, and a negative id ends the list (``-1`` alone hides every device)."""
    ids: list[int] = []
    if not text.strip():
        return ()
    for part in text.split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise GpuError(
                f"{VISIBLE}={text}: pytest-exp needs device indexes such as 0,2 "
                f"(got {part!r}; GPU UUIDs and MIG devices are not supported)"
            ) from None
        if value < 0:
            break
        if value in ids:
            raise GpuError(f"{VISIBLE}={text} lists device {value} twice")
        ids.append(value)
    return tuple(ids)


# --------------------------------------------------------------------------- discovery


def nvidia_smi() -> tuple[Ids | None, str]:
    """The GPU indexes ``nvidia-smi -L`` lists (``()`` when it lists none), or ``None`` and why."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "no nvidia-smi on PATH"
    try:
        done = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=SMI_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None, f"nvidia-smi -L did not answer in {SMI_TIMEOUT:g} s"
    except OSError as e:
        return None, f"nvidia-smi -L failed ({e.strerror or e})"
    if done.returncode != 0:
        return None, f"nvidia-smi -L failed (exit status {done.returncode})"
    # MIG devices are indented lines under their GPU; only whole GPUs are handed out.
    ids = tuple(int(m.group(1)) for m in re.finditer(r"^GPU (\d+):", done.stdout, re.MULTILINE))
    return ids, "" if ids else "nvidia-smi -L listed no GPU"


def nvml() -> tuple[Ids | None, str]:
    """The GPUs NVML counts (the ``nvidia-ml-py`` package), or ``None`` and why not."""
    try:
        with warnings.catch_warnings():  # the old ``pynvml`` package warns on import
            warnings.simplefilter("ignore")
            pynvml = importlib.import_module("pynvml")
    except ImportError:
        return None, "no pynvml module for NVML"
    try:
        pynvml.nvmlInit()
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError as e:
        return None, f"NVML failed ({e})"
    return tuple(range(count)), "" if count else "NVML counted no GPU"


PROBES: dict[str, Probe] = {"nvidia-smi": nvidia_smi, "NVML": nvml}


class Inventory(NamedTuple):
    """The physical devices to hand out, where they came from, and why there are none."""

    devices: Ids
    source: str
    note: str = ""


def discover(
    request: str | Ids,
    label: str,
    environ: Mapping[str, str],
    probes: Mapping[str, Probe] = PROBES,
) -> Inventory:
    """The devices ``--exp-gpus`` (named ``label`` in messages) asks for.

    ``auto``: the ids an outer ``CUDA_VISIBLE_DEVICES`` lists when it is set, else the first
    probe that runs (nvidia-smi, then NVML), else none, with a note that says what was tried.
    A list of ids: physical ids; with an outer ``CUDA_VISIBLE_DEVICES`` they index into it, as
    CUDA's own ids do in that environment (``--exp-gpus 1`` under ``CUDA_VISIBLE_DEVICES=3,5`` is
    physical 5), so one command works on whatever devices a scheduler hands out.
    """
    outer = environ.get(VISIBLE)
    if request == "auto":
        if outer is not None:
            visible = parse_visible(outer)
            if visible:
                return Inventory(visible, f"from {VISIBLE}={outer}")
            return Inventory((), "", f"{label} auto found none: {VISIBLE}={outer!r} hides every GPU")
        tried = [f"no {VISIBLE}"]
        for name, probe in probes.items():
            ids, why = probe()
            if ids:
                return Inventory(ids, f"from {name}")
            tried.append(why)
            if ids is not None:  # the probe worked and found nothing: the next would agree
                break
        return Inventory((), "", f"{label} auto found none ({', '.join(tried)})")
    if request == "none" or not isinstance(request, tuple):
        return Inventory((), "")
    if outer is None:
        _check_listed(request, label, probes)
        return Inventory(request, f"from {label}")
    visible = parse_visible(outer)
    outside = [i for i in request if i >= len(visible)]
    if outside:
        shown = f"0..{len(visible) - 1}" if visible else "none"
        raise GpuError(
            f"{label} {ids_text(request)}: {VISIBLE}={outer} makes {len(visible)} GPU"
            f"{'s' if len(visible) != 1 else ''} visible ({shown}), so {outside[0]} is not one of them; "
            f"under {VISIBLE} the ids count its devices from 0"
        )
    return Inventory(tuple(visible[i] for i in request), f"{label} {ids_text(request)} of {VISIBLE}={outer}")


def _check_listed(request: Ids, label: str, probes: Mapping[str, Probe]) -> None:
    """Physical ids must be devices the first probe that runs lists. Where none runs (no
    nvidia-smi, no NVML), the ids are taken as given: the user may know devices we cannot see."""
    for name, probe in probes.items():
        ids, _ = probe()
        if ids is None:
            continue
        missing = [i for i in request if i not in ids]
        if missing:
            found = f"GPUs {ids_text(ids)}" if ids else "no GPU"
            raise GpuError(
                f"{label} {ids_text(request)}: {name} lists {found}, so {missing[0]} is not one of them; "
                "give ids it lists, or auto"
            )
        return


# --------------------------------------------------------------------------- plan


class Plan(NamedTuple):
    """The inventory cut into groups of ``per_worker`` devices, one group per process."""

    inventory: Inventory
    per_worker: int = 1
    share: bool = False

    @property
    def groups(self) -> list[Ids]:
        """Consecutive groups of ``per_worker`` devices; a remainder is left unused."""
        devices, k = self.inventory.devices, self.per_worker
        return [devices[i : i + k] for i in range(0, len(devices) - k + 1, k)]

    def assign(self, workers: int) -> list[Ids]:
        """Each worker's group, in worker order. More workers than groups is an error unless
        sharing was asked for, when groups are dealt round robin."""
        groups = self.groups
        if workers > len(groups) and not self.share:
            raise GpuError(
                f"{workers} workers but only {len(groups)} fit: GPUs {ids_text(self.inventory.devices)} "
                f"({self.inventory.source}) at {self.per_worker} per worker; use -n {len(groups)} "
                "(or -n auto), or --exp-gpus-share to let workers share GPUs"
            )
        return [groups[i % len(groups)] for i in range(workers)]

    def describe(self, assigned: Sequence[Ids], who: str) -> str:
        """The report header line: what there is and who gets which."""
        inventory = self.inventory
        if not inventory.devices:
            return f"exp: GPUs none: {inventory.note}; {VISIBLE} left as it is"
        used = {i for group in assigned for i in group}
        unused = [i for i in inventory.devices if i not in used]
        shared = len(set(assigned)) < len(assigned)
        return (
            f"exp: GPUs {ids_text(inventory.devices)} ({inventory.source}), {self.per_worker} per worker; "
            f"{who} {' | '.join(ids_text(g) for g in assigned)}"
            + (" (shared)" if shared else "")
            + (f"; {ids_text(unused)} unused" if unused else "")
        )


def make_plan(
    request: str | Ids,
    per_worker: int,
    share: bool,
    labels: Mapping[str, str],
    environ: Mapping[str, str],
    probes: Mapping[str, Probe] = PROBES,
) -> Plan | None:
    """The plan for these settings, ``None`` for ``none``. ``labels`` names each setting as the
    user gave it (``--exp-gpus`` or ``exp_gpus``) for messages."""
    if request == "none":
        return None
    inventory = discover(request, labels["gpus"], environ, probes)
    devices = inventory.devices
    if devices and per_worker > len(devices):
        raise GpuError(
            f"{labels['gpus_per_worker']} {per_worker} needs {per_worker} GPUs per worker, but there "
            f"{'is' if len(devices) == 1 else 'are'} only {len(devices)} "
            f"({ids_text(devices)}, {inventory.source})"
        )
    return Plan(inventory, per_worker, share)


def environment(group: Ids) -> dict[str, str]:
    """The variables that pin a process to ``group``."""
    return {VISIBLE: ids_text(group), ORDER: PCI_BUS_ID, OWNED: ids_text(group)}


def expand_specs(specs: Iterable[str]) -> list[str]:
    """xdist's ``--tx`` values with ``N*spec`` written out, as xdist reads them."""
    out: list[str] = []
    for spec in specs:
        count, star, rest = spec.partition("*")
        if star and count.isdigit():
            out += [rest] * int(count)
        else:
            out.append(spec)
    return out


def pin_specs(specs: Iterable[str], plan: Plan) -> tuple[list[str], list[Ids]]:
    """Each worker's spec with its group's environment added, and the groups in worker order."""
    expanded = expand_specs(specs)
    for spec in expanded:
        keys = {part.partition("=")[0] for part in spec.split("//")}
        if "popen" not in keys:
            raise GpuError(f"--exp-gpus pins local workers only, and --tx {spec} is not one (popen)")
        taken = sorted(k[4:] for k in keys if k[4:] in (VISIBLE, ORDER, OWNED))
        if taken:
            raise GpuError(f"--tx {spec} sets {taken[0]} itself; drop it or leave --exp-gpus at none")
    groups = plan.assign(len(expanded))
    pinned = [
        "//".join([spec, *(f"env:{k}={v}" for k, v in environment(g).items())])
        for spec, g in zip(expanded, groups, strict=True)
    ]
    return pinned, groups


# --------------------------------------------------------------------------- a pytest process


class Pinning:
    """This process's side of the plan: what it owns, and what it must restore."""

    def __init__(
        self,
        plan: Plan | None = None,
        role: str = "single",  # "single", "controller" or "worker"
        owned: Ids = (),
        pinned: bool = False,
        assigned: list[Ids] | None = None,
    ) -> None:
        self.plan = plan
        self.role = role
        self.owned = owned
        self.pinned = pinned
        self.assigned = [] if assigned is None else assigned
        self.saved: dict[str, str | None] = {}
        # A worker without GPUs: why, in the controller's words (the worker probes nothing itself).
        self.none_reason: str | None = None


STATE = pytest.StashKey[Pinning]()
PLAN = pytest.StashKey[Plan | None]()
NAMES = ("gpus", "gpus_per_worker", "gpus_share")


def _settings(config: pytest.Config) -> tuple[dict[str, Any], dict[str, str]]:
    """The three GPU settings and how the user named each; read from the early command line, so
    this works before ``pytest_configure`` (``config.option`` is not parsed yet then)."""
    namespace = getattr(config, "known_args_namespace", config.option)
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for name in NAMES:
        setting = settings.BY_NAME[name]
        cli = getattr(namespace, setting.flag, None)
        raw = config.getini(setting.ini)
        inifile = settings.ini_name(config.inipath, config.invocation_params.dir)
        ini = {name: settings.parse_ini(setting, raw, inifile)} if raw not in ("", None) else {}
        values[name] = settings.resolve(name, {name: cli}, {}, ini)
        labels[name] = setting.ini if ini and cli is None else setting.flag
    return values, labels


def plan_of(config: pytest.Config) -> Plan | None:
    """This run's plan, worked out once (devices are probed at most once per process)."""
    if PLAN not in config.stash:
        try:
            values, labels = _settings(config)
            config.stash[PLAN] = make_plan(
                values["gpus"], values["gpus_per_worker"], bool(values["gpus_share"]), labels, os.environ
            )
        except (GpuError, settings.SettingError) as e:
            raise pytest.UsageError(str(e)) from None
    return config.stash[PLAN]


def _will_distribute(namespace: Any) -> bool:
    """Whether xdist will start workers, as its ``pytest_cmdline_main`` and ``pytest_configure``
    will decide from these (early) options."""
    if getattr(namespace, "collectonly", False):
        return False
    n: object = getattr(namespace, "numprocesses", None)
    if n is not None:
        return n != 0
    dist: object = getattr(namespace, "dist", "no")
    return bool(getattr(namespace, "tx", None)) and (
        dist != "no" or bool(getattr(namespace, "distload", False))
    )


def _distributing(config: pytest.Config) -> bool:
    """xdist's own test, once its ``pytest_cmdline_main`` has run."""
    if config.getoption("collectonly", False):
        return False
    return config.getoption("dist", "no") != "no" and bool(config.getoption("tx", None))


def _pin_single(config: pytest.Config) -> None:
    plan = plan_of(config)
    state = config.stash[STATE] = Pinning(plan)
    if plan is None or not plan.groups:
        return
    group = plan.groups[0]
    new = environment(group)
    state.saved = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    state.owned, state.pinned, state.assigned = group, True, [group]


def pin_early(config: pytest.Config) -> None:
    """``pytest_load_initial_conftests``: pin a process that will run tests itself, before any
    ``conftest.py`` is imported. xdist's processes are left to ``configure``."""
    if STATE not in config.stash and not _will_distribute(getattr(config, "known_args_namespace", None)):
        _pin_single(config)


def configure(config: pytest.Config) -> None:
    """``pytest_configure``: a worker reads what it was given; the xdist controller writes every
    worker's devices into its spec; a single process not pinned early is pinned now."""
    if STATE in config.stash:
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = workerinput.get(WORKERINPUT_KEY)
        owned = parse_ids(given) if given is not None else ()
        state = config.stash[STATE] = Pinning(None, "worker", owned, given is not None, [owned])
        state.none_reason = workerinput.get(WORKERINPUT_NONE)
    elif _distributing(config):
        plan = plan_of(config)
        state = config.stash[STATE] = Pinning(plan, "controller")
        if plan is not None and plan.groups:
            try:
                config.option.tx, state.assigned = pin_specs(config.getoption("tx"), plan)
            except GpuError as e:
                raise pytest.UsageError(str(e)) from None
    else:
        _pin_single(config)


def unconfigure(config: pytest.Config) -> None:
    """Give a single process its environment back (``pytest.main`` may be called again)."""
    state = config.stash.get(STATE, None)
    if state is None:
        return
    for name, value in state.saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    state.saved = {}


def auto_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per group, when there are GPUs."""
    plan = plan_of(config)
    return len(plan.groups) if plan is not None and plan.groups else None


def node_input(node: Any) -> None:
    """``pytest_configure_node``: tell the worker which devices its spec gave it (its spec is
    reused for a replacement, so this holds for that too)."""
    env = node.gateway.spec.env
    if OWNED in env:
        node.workerinput[WORKERINPUT_KEY] = env[OWNED]
    else:
        node.workerinput[WORKERINPUT_NONE] = skip_reason(node.config)


def header(config: pytest.Config) -> list[str]:
    state = config.stash.get(STATE, None)
    if state is None or state.plan is None:
        return []
    who = "this process gets" if state.role == "single" else "workers get"
    return [state.plan.describe(state.assigned, who)]


def owned(config: pytest.Config) -> list[int]:
    """The physical ids of the GPUs this process owns; ``[]`` when none."""
    state = config.stash.get(STATE, None)
    return list(state.owned) if state is not None else []


def drift(config: pytest.Config) -> str | None:
    """Why ``CUDA_VISIBLE_DEVICES`` no longer says what pytest-exp set, or ``None``."""
    state = config.stash.get(STATE, None)
    if state is None or not state.pinned:
        return None
    expected = ids_text(state.owned)
    now = os.environ.get(VISIBLE)
    if now == expected:
        return None
    found = f"is now {now!r}" if now is not None else "was removed"
    return (
        f"{VISIBLE} {found}, but pytest-exp pinned this process to GPU{'s' if len(state.owned) != 1 else ''} "
        f"{expected} ({VISIBLE}={expected}); a test, fixture or library changed it, and CUDA may already "
        "be using the old value: leave it as set and pick devices among exp_gpus"
    )


def skip_reason(config: pytest.Config) -> str | None:
    """Why a ``needs_gpu`` test cannot run in this process, or ``None`` when it can."""
    state = config.stash.get(STATE, None)
    if state is not None and state.owned:
        return None
    if state is not None and state.none_reason:
        return state.none_reason
    plan = state.plan if state is not None else None
    why = plan.inventory.note if plan is not None else "--exp-gpus is none (try --exp-gpus auto)"
    return f"needs a GPU, and this process owns none: {why}"
