"""A trial's identity and record: who it is (params, config id, seed), what it produced, and
the plain values both are made of.

The bottom of the layout: no other module of the package is imported here. Ids and seeds are
hashes of :func:`canonical_json`; stored studies and committed baselines rely on them staying
byte-identical across versions (``tests/test_identity.py`` pins them).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

STATUSES = ("passed", "failed", "error", "skipped", "crashed", "interrupted", "running")
Number = int | float | bool
Point = dict[str, Any]
"""A configuration: parameter name to plain value, in the space's order."""

# Exactly these types (not np.float64, a float subclass) are plain as they are.
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


# --------------------------------------------------------------------------- plain values


def plain(x: Any) -> Any:
    """``x`` as plain Python: numpy and torch scalars and arrays become Python scalars and lists,
    tuples become lists, mappings dicts with ``str`` keys; anything else (a TOML date) stays.
    Only plain values may cross a process boundary: a numpy scalar in a report breaks xdist."""
    if type(x) in JSON_SCALARS:
        return x
    module = type(x).__module__
    if (module == "numpy" or module.startswith("torch")) and hasattr(x, "tolist"):
        return plain(x.tolist())
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, Mapping):
        return {str(k): plain(v) for k, v in x.items()}
    return x


def json_value(x: Any) -> Any:
    """:func:`plain`, with what JSON cannot hold (dates, arbitrary objects) as its ``str``: how
    reports and the store carry a parameter."""
    x = plain(x)
    if type(x) in JSON_SCALARS:
        return x
    if isinstance(x, list):
        return [json_value(v) for v in x]
    if isinstance(x, dict):
        return {k: json_value(v) for k, v in x.items()}
    if isinstance(x, (int, float)):  # a subclass (an IntEnum): its value
        return int(x) if isinstance(x, int) else float(x)
    return str(x)


def json_params(params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as reports and records carry them (see :func:`json_value`): the same
    dict when it holds only scalars, as it nearly always does."""
    if all(type(v) in JSON_SCALARS for v in params.values()):
        return params
    return {k: json_value(v) for k, v in params.items()}


# --------------------------------------------------------------------------- identity

# Built once: json.dumps with options builds an encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def canonical_json(x: Any) -> str:
    """The one text of a value that ids and fingerprints hash: sorted keys, no spaces."""
    return _CANONICAL.encode(x)


def config_id(params: Mapping[str, Any]) -> str:
    """Stable id of a configuration: the same params give the same id in any run or space."""
    return hashlib.sha256(canonical_json(params).encode()).hexdigest()[:12]


def derive_seed(*parts: object, bits: int = 32) -> int:
    """A seed that depends only on its parts, identical in every process (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - bits)


class Trial(NamedTuple):
    """One run of one configuration: what ``exp_trial`` gives a test."""

    id: str
    run: int
    seed: int
    params: dict[str, Any]

    @classmethod
    def of(cls, params: dict[str, Any], seed: int, run: int = 1) -> Trial:
        """Run ``run`` of a grid configuration, under the session ``seed``."""
        cid = config_id(params)
        return cls(cid, run, derive_seed(seed, cid, run), params)


# --------------------------------------------------------------------------- results


class Objective(NamedTuple):
    """The metric that orders trials (and drives the optimizer)."""

    name: str
    direction: str = "min"

    @classmethod
    def parse(cls, text: str) -> Objective:
        if "," in text:
            raise ValueError("expected NAME, NAME:min or NAME:max (one objective)")
        name, sep, direction = text.strip().rpartition(":")
        if not sep:
            name, direction = direction, "min"
        direction = direction.strip().lower()
        if not name.strip() or direction not in ("min", "max"):
            raise ValueError("expected NAME, NAME:min or NAME:max")
        return cls(name.strip(), direction)

    def signed(self, value: float) -> float:
        """``value`` as a quantity to minimize."""
        return -value if self.direction == "max" else value

    def better(self, value: float) -> float:
        """A key that sorts the best value first; NaN and missing sort last."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return math.inf
        return value if self.direction == "min" else -value

    def __str__(self) -> str:
        return f"{self.name}:{self.direction}"


def objectives(text: str) -> tuple[Objective, ...]:
    """The objectives ``text`` names: ``loss`` or ``acc:max`` for one, ``loss:min,latency:min``
    for a multi-objective study (whose first objective also ranks its summary)."""
    parts = text.split(",")
    parsed = []
    for part in parts:
        try:
            parsed.append(Objective.parse(part))
        except ValueError as e:
            if len(parts) == 1:
                raise
            raise ValueError(f"objective {part.strip()!r}: {e}") from None
    names = [o.name for o in parsed]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"objective {twice[0]!r} named twice")
    return tuple(parsed)


def primary(text: str) -> Objective:
    """The objective that ranks trials: the only one, or a multi-objective study's first."""
    return objectives(text)[0]


@dataclass(slots=True)
class TrialRecord:
    """One trial as the controller sees it; ``metrics`` holds each metric's series, in order, and
    ``steps`` the steps of those recorded with ``step=``.
    ``study`` and ``trial`` are set for optimization trials: the study and the trial's slot in it
    (trial-007 is 7). The store's columns are these fields, in this order."""

    test: str
    function: str
    config_id: str
    run: int
    params: dict[str, Any]
    seed: int
    metrics: dict[str, list[Number]] = field(default_factory=dict)
    status: str = "running"
    message: str = ""
    duration: float = 0.0
    worker: str = "main"
    gpus: list[int] = field(default_factory=list)
    started: float = 0.0
    finished: float | None = None
    objective: str | None = None
    study: str | None = None
    trial: int | None = None
    # The step of each value, for the metrics recorded with ``step=`` (learning curves).
    steps: dict[str, list[int]] = field(default_factory=dict)

    def last(self) -> dict[str, Number]:
        """Each metric's value for this trial: the last one recorded."""
        return {name: series[-1] for name, series in self.metrics.items() if series}

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, its lists and dicts copied (the record may still change)."""
        return copy.deepcopy(dict(zip(FIELDS, field_values(self), strict=True)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(**data)


FIELDS = tuple(f.name for f in dataclasses.fields(TrialRecord))
field_values = operator.attrgetter(*FIELDS)  # a record's fields as a tuple, in FIELDS order


def by_function(records: Iterable[TrialRecord]) -> dict[str, list[TrialRecord]]:
    """Trials grouped by test function, functions in first-seen order."""
    grouped: dict[str, list[TrialRecord]] = {}
    for record in records:
        grouped.setdefault(record.function, []).append(record)
    return grouped


def safe_name(text: str) -> str:
    """A test id as a file name: ``tests/test_a.py::test_fit`` -> ``tests_test_a.py_test_fit``."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_")


def same_test(function: str, known: Iterable[str]) -> list[str]:
    """The node ids of ``known`` that name the test ``function`` seen from another rootdir: those
    ending with the same path segments as ``function`` (or whose segments ``function``'s end
    with), the longest match winning; several only when they match equally well. A rootdir moves
    when pytest reads a space-separated option value (``--exp-store /elsewhere``) as a path."""
    wanted = _segments(function)
    scores = {name: _related(_segments(name), wanted) for name in known}
    best = max(scores.values(), default=0)
    return [name for name, score in scores.items() if score == best and best]


def _segments(nodeid: str) -> list[str]:
    """A node id's path segments: ``a/b.py::C::f[x/y]`` gives ``a``, ``b.py``, ``C``, ``f[x/y]``."""
    head, bracket, ids = nodeid.partition("[")
    parts = re.split(r"/|::", head)
    parts[-1] += bracket + ids
    return parts


def _related(a: Sequence[str], b: Sequence[str]) -> int:
    """How many trailing segments ``a`` and ``b`` share when one ends with the whole other; else 0."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) if list(long[len(long) - len(short) :]) == list(short) else 0
