"""Parameter spaces: exp's TOML schema, validated, expanded into seeded grids.

Pure Python on purpose: no pytest and no optimizer import. What an optimizer searches is read
from a space by its backend (``study/``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import random
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple, overload

from pytest_exp.trial import Trial, canonical_json, derive_seed, plain


def _toml() -> Any:
    """The TOML reader, imported on first use: a run that reads no space file never needs it."""
    if sys.version_info >= (3, 11):
        import tomllib as toml
    else:  # pragma: no cover - Python 3.10 only
        import tomli as toml
    return toml


TYPES = ("value", "list", "range", "random")
DTYPES = ("float", "int")
PRIORS = ("uniform", "log-uniform")
KEYS = {
    "value": ("type", "value"),
    "list": ("type", "value"),
    "range": ("type", "bounds", "step", "dtype"),
    "random": ("type", "bounds", "prior", "dtype", "n"),
}
# Beyond this a grid cannot become test items in any reasonable memory: a grid collected whole
# is refused over it, while sampling and optimizing take a space of any size.
MAX_GRID = 1_000_000
# Arrays and tables nested deeper than this are refused: the recursive code that copies, hashes
# and prints values (and the TOML reader itself) would hit Python's recursion limit.
MAX_DEPTH = 100


class SpaceError(ValueError):
    """A space that cannot be used, with the file and parameter it came from."""

    def __init__(self, message: str, *, source: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.param = param

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        if self.param is not None:
            where += f"[{self.param}] "
        return where + self.message


def suggest(found: str, choices: Iterable[str]) -> str:
    import difflib  # here: only a misspelled name needs it

    close = difflib.get_close_matches(found.lower(), list(choices), n=1)
    return f"; did you mean {_show(close[0])}?" if close else ""


def _choice(found: object, choices: Sequence[str], what: str) -> str:
    """Case-insensitive pick from a fixed set, with a did-you-mean when it fails."""
    if isinstance(found, type) and found.__name__ in choices:
        return found.__name__  # add_range(dtype=int) as in exp
    if isinstance(found, str) and found.lower() in choices:
        return found.lower()
    shown = ", ".join(_show(c) for c in choices)
    hint = suggest(found, choices) if isinstance(found, str) else ""
    raise SpaceError(f"unknown {what} {_show(found)} (expected one of {shown}{hint})")


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _show(x: object) -> str:
    """A value as the user wrote it in TOML, for error messages."""
    try:
        return _toml_value(x)
    except (TypeError, ValueError):  # ValueError: an int too long to print (see _check_value)
        return repr(x) if not isinstance(x, int) else f"an integer of {x.bit_length():,} bits"


def _kind(x: object) -> str:
    if isinstance(x, bool):
        return "bool"
    if _is_number(x):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, (list, tuple)):
        return "array"
    if isinstance(x, Mapping):
        return "table"
    if isinstance(x, (dt.date, dt.time)):
        return "datetime"
    return type(x).__name__


def _freeze(x: Any) -> Any:
    """A hashable key under which equal TOML values collide (1 == 1.0, as Python has it)."""
    if isinstance(x, (list, tuple)):
        return ("array", tuple(_freeze(v) for v in x))
    if isinstance(x, Mapping):
        return ("table", tuple(sorted((k, _freeze(v)) for k, v in x.items())))
    try:
        hash(x)
    except TypeError:  # a set or another unhashable object of a dict space: only itself is equal
        return ("object", id(x))
    return (_kind(x), x)


def _check_value(x: Any) -> None:
    """Refuse what the recursive code after it cannot take, before it runs: arrays and tables
    nested more than MAX_DEPTH deep (a cycle among them included), and integers too long to
    print (Python refuses to print an int of more than 4,300 digits by default)."""
    digits = getattr(sys, "get_int_max_str_digits", lambda: 0)()  # 0: no limit (before 3.10.7)
    stack = [(x, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, int) and digits and v.bit_length() > 3 * digits:  # 3 bits < 1 digit
            try:
                str(v)
            except ValueError:
                raise SpaceError(
                    f"integer of {v.bit_length():,} bits is too large (expected at most {digits:,} digits)"
                ) from None
        inner = [*v, *v.values()] if isinstance(v, Mapping) else v if isinstance(v, (list, tuple)) else ()
        if inner and depth == MAX_DEPTH:
            raise SpaceError(f"arrays and tables nest more than {MAX_DEPTH} levels deep (limit {MAX_DEPTH})")
        stack.extend((w, depth + 1) for w in inner)


def _decimal(x: int | float) -> Decimal:
    # repr gives the shortest decimal that round-trips, i.e. what the user typed: 0.1 stays 0.1.
    return Decimal(x) if isinstance(x, int) else Decimal(repr(x))


# --------------------------------------------------------------------------- parameters


class Value(NamedTuple):
    """One fixed value (any TOML value)."""

    name: str
    value: Any

    def grid_values(self, seed: int) -> Sequence[Any]:
        return (self.value,)

    @property
    def grid_size(self) -> int:
        return 1

    def table(self) -> dict[str, Any]:
        return {"type": "value", "value": self.value}


class Choice(NamedTuple):
    """A list parameter: distinct values of one kind, in first-seen order."""

    name: str
    values: tuple[Any, ...]

    def grid_values(self, seed: int) -> Sequence[Any]:
        return self.values

    @property
    def grid_size(self) -> int:
        return len(self.values)

    def table(self) -> dict[str, Any]:
        return {"type": "list", "value": list(self.values)}


class _Arange(Sequence[Any]):
    """low, low+step, ... < high, each value computed from its index in decimal arithmetic."""

    def __init__(self, low: int | float, step: int | float, count: int, integer: bool) -> None:
        # Integer grids stay in int arithmetic; float grids go through Decimal.
        self._low = int(low) if integer else _decimal(low)
        self._step = int(step) if integer else _decimal(step)
        self._count = count
        self._integer = integer
        self.size = count  # len() ends at sys.maxsize; a range sampled from has no such limit

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Any]:
        # Sequence's own goes through __getitem__ and its bounds check, value by value.
        if self._integer:
            return iter(range(self._low, self._low + self._count * self._step, self._step))  # type: ignore[arg-type]
        return (float(self._low + i * self._step) for i in range(self._count))

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._count))]
        if not -self._count <= i < self._count:
            raise IndexError(i)
        v = self._low + (i % self._count) * self._step
        return v if self._integer else float(v)


class Range(NamedTuple):
    """A grid of evenly spaced values in [low, high); the optimizer searches [low, high]."""

    name: str
    low: int | float
    high: int | float
    step: int | float = 1
    dtype: str = "float"

    @property
    def grid_size(self) -> int:
        """How many values the grid has, in time that does not grow with the count."""
        low, high, step = _decimal(self.low), _decimal(self.high), _decimal(self.step)
        count = math.ceil((high - low) / step)
        if count > MAX_GRID:
            # Where 28-digit decimal division can round. Below the limit the count stays what it
            # always was (pinned ids); above it, where parsing used to refuse, it is exact.
            count = math.ceil((Fraction(high) - Fraction(low)) / Fraction(step))
        if self.dtype == "int" or count <= 1:
            return count

        def below(i: int) -> bool:  # the expression _Arange computes value i with
            return float(low + i * step) < self.high

        # A value just under high in decimal can round to high as a float; the grid excludes high.
        # Values rise with i, so the last one below high is found by bisection (it is nearly
        # always the first or second tried).
        if below(count - 1):
            return count
        first, last = 1, count - 1  # the count is in [first, last]; value 0 is low < high
        while first < last:
            mid = (first + last + 1) // 2
            if below(mid - 1):
                first = mid
            else:
                last = mid - 1
        return first

    def grid_values(self, seed: int) -> Sequence[Any]:
        integer = self.dtype == "int"
        return _Arange(self.low, self.step, self.grid_size, integer)

    def table(self) -> dict[str, Any]:
        return {"type": "range", "bounds": [self.low, self.high], "step": self.step, "dtype": self.dtype}


class Draw(NamedTuple):
    """A random parameter: ``n`` seeded draws in [low, high) for a grid; a prior for the optimizer."""

    name: str
    low: int | float = 0
    high: int | float = 1
    prior: str = "uniform"
    dtype: str = "float"
    n: int = 1

    @property
    def grid_size(self) -> int:
        return self.n

    def grid_values(self, seed: int) -> Sequence[Any]:
        rng = random.Random(derive_seed(seed, "random", self.name, bits=64))
        log = self.prior == "log-uniform"
        lo, hi = (math.log(self.low), math.log(self.high)) if log else (self.low, self.high)
        wide = _huge(hi - lo)  # int bounds whose span no float holds; interpolating needs none

        def draw() -> float:
            r = rng.random()
            u = lo * (1 - r) + hi * r if wide else lo + r * (hi - lo)
            if not log:
                return u
            try:
                return math.exp(u)
            except OverflowError:  # u rounded past log(high) near the largest float: clamped below
                return sys.float_info.max

        if self.dtype == "float":
            # Rounding (exp(log(x)) != x) can land on high or just under low; the grid promises [low, high).
            top = math.nextafter(self.high, -math.inf)
            return tuple(sorted(min(max(draw(), float(self.low)), top) for _ in range(self.n)))
        drawn: set[int] = set()
        for _ in range(100 * self.n + 1000):
            drawn.add(max(int(self.low), min(math.floor(draw()), int(self.high) - 1)))
            if len(drawn) == self.n:
                return tuple(sorted(drawn))
        raise SpaceError(
            f"could not draw n = {self.n} distinct integers from [{self.low}, {self.high}) "
            f"with prior {_show(self.prior)} (got {len(drawn)}); lower n or widen bounds",
            param=self.name,
        )

    def table(self) -> dict[str, Any]:
        return {
            "type": "random",
            "bounds": [self.low, self.high],
            "prior": self.prior,
            "dtype": self.dtype,
            "n": self.n,
        }


Param = Value | Choice | Range | Draw


# --------------------------------------------------------------------------- parsing


def _check_keys(spec: Mapping[str, Any], type_: str) -> None:
    allowed = KEYS[type_]
    for key in spec:
        if key not in allowed:
            others = [k for k in allowed if k != "type"]
            raise SpaceError(
                f"unknown key {_show(key)} for type {_show(type_)} "
                f"(expected {', '.join(_show(k) for k in others)}{suggest(key, others)})"
            )


def _huge(x: object) -> bool:
    """An int beyond float range, which math.isfinite and every float operation refuse."""
    return isinstance(x, int) and not isinstance(x, bool) and abs(x) > sys.float_info.max


def _bounds(spec: Mapping[str, Any], required: bool) -> tuple[int | float, int | float]:
    if "bounds" not in spec:
        if required:
            raise SpaceError('missing key "bounds" (expected bounds = [low, high])')
        return 0, 1
    bounds = spec["bounds"]
    if (
        not isinstance(bounds, (list, tuple))
        or len(bounds) != 2
        or not all(_is_number(b) and (_huge(b) or math.isfinite(b)) for b in bounds)
    ):
        raise SpaceError(f"bounds must be [low, high] of two finite numbers (got {_show(bounds)})")
    if any(_huge(b) for b in bounds):
        raise SpaceError(f"bounds must be within float range, +-1.8e308 (got {_show(bounds)})")
    low, high = bounds
    if not low < high:
        raise SpaceError(f"bounds must be [low, high] with low < high (got {_show(bounds)})")
    return low, high


def _integral(x: int | float) -> bool:
    return isinstance(x, int) or x.is_integer()


def _as_int(name: str, x: int | float, bounds: object) -> int:
    if not _integral(x):
        raise SpaceError(f'dtype "int" needs integer bounds and step (got {name} {_show(bounds)})')
    return int(x)


def _value_param(name: str, value: Any) -> Value:
    return Value(name, plain(value))


def _choice_param(name: str, values: Any) -> Choice:
    if not isinstance(values, (list, tuple)):
        raise SpaceError(f"a list needs value = [..] (got {_show(values)})")
    if not values:
        raise SpaceError("a list needs at least one value (got [])")
    kinds: dict[str, Any] = {}
    for v in values:
        kinds.setdefault(_kind(v), v)
    if len(kinds) > 1:
        shown = ", ".join(f"{k} {_show(v)}" for k, v in kinds.items())
        raise SpaceError(f"list values must all be of one kind (got {shown})")
    unique: dict[Any, Any] = {}
    for v in values:
        unique.setdefault(_freeze(v), plain(v))
    return Choice(name, tuple(unique.values()))


def _range_param(name: str, low: Any, high: Any, step: Any = 1, dtype: Any = "float") -> Range:
    low, high = _bounds({"bounds": [low, high]}, required=True)
    dtype = _choice(dtype, DTYPES, "dtype")
    if not _is_number(step) or not (_huge(step) or math.isfinite(step)):
        raise SpaceError(f"step must be a finite number > 0 (got {_show(step)})")
    if step <= 0:
        raise SpaceError(f"step must be > 0 (got {_show(step)})")
    if _huge(step):
        raise SpaceError(f"step must be within float range, at most 1.8e308 (got {_show(step)})")
    if dtype == "int":
        low, high = _as_int("bounds", low, [low, high]), _as_int("bounds", high, [low, high])
        step = _as_int("step", step, step)
    # No limit on the count here: a sample or a study takes a range of any size, and a grid
    # collected whole is refused where it is expanded (MAX_GRID).
    return Range(name, low, high, step, dtype)


def _draw_param(
    name: str, low: Any = 0, high: Any = 1, prior: Any = "uniform", dtype: Any = "float", n: Any = 1
) -> Draw:
    low, high = _bounds({"bounds": [low, high]}, required=True)
    prior = _choice(prior, PRIORS, "prior")
    dtype = _choice(dtype, DTYPES, "dtype")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise SpaceError(f"n must be an integer >= 1 (got {_show(n)})")
    if n > MAX_GRID:
        raise SpaceError(f"n = {n:,} draws is over the limit of {MAX_GRID:,}")
    if prior == "log-uniform" and low <= 0:
        raise SpaceError(f'prior "log-uniform" needs low > 0 (got bounds {_show([low, high])})')
    if dtype == "int":
        low, high = _as_int("bounds", low, [low, high]), _as_int("bounds", high, [low, high])
        if n > high - low:
            raise SpaceError(f"n = {n} exceeds the {high - low} integers in [{low}, {high})")
    return Draw(name, low, high, prior, dtype, n)


def parse_param(name: str, spec: Any) -> Param:
    """One parameter from its TOML/dict form; shorthand ``name = [..]`` and ``name = 1`` included."""
    try:
        if not isinstance(spec, Mapping):
            if isinstance(spec, (list, tuple)):
                return _choice_param(name, spec)
            return _value_param(name, spec)
        if "type" not in spec:
            raise SpaceError(f'missing key "type" (expected one of {", ".join(map(_show, TYPES))})')
        type_ = _choice(spec["type"], TYPES, "type")
        _check_keys(spec, type_)
        if type_ in ("value", "list") and "value" not in spec:
            raise SpaceError(f'missing key "value" for type {_show(type_)}')
        if type_ == "value":
            return _value_param(name, spec["value"])
        if type_ == "list":
            return _choice_param(name, spec["value"])
        options = {k: spec[k] for k in ("step", "dtype", "prior", "n") if k in spec}
        low, high = _bounds(spec, required=type_ == "range")
        if type_ == "range":
            return _range_param(name, low, high, **options)
        return _draw_param(name, low, high, **options)
    except SpaceError as e:
        if e.param is None:
            e.param = name
        raise


# --------------------------------------------------------------------------- ids


def _format_number(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    return text.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


def format_values(values: Sequence[Any]) -> list[str]:
    """Short id forms of one parameter's values: floats get the fewest significant digits
    (at least 3) that keep every value of the parameter distinct."""
    if not any(isinstance(v, float) for v in values):
        return [_id_text(v) for v in values]
    for digits in range(3, 18):
        texts = [_format_number(v, digits) if isinstance(v, float) else _id_text(v) for v in values]
        if len(set(texts)) == len(texts):
            return texts
    return [repr(v) if isinstance(v, float) else _id_text(v) for v in values]


def _id_text(x: Any) -> str:
    if type(x) is int or type(x) is str:  # before the checks below, one of which is an ABC's
        return str(x)
    if isinstance(x, float):
        # The shortest form (at least 3 digits) that reads back as x: distinct floats stay distinct.
        digits = next((d for d in range(3, 17) if float(f"{x:.{d}g}") == x), 17)
        return _format_number(x, digits)
    if isinstance(x, str):
        return x
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_id_text(v) for v in x) + "]"
    if isinstance(x, Mapping):
        return "{" + ",".join(f"{k}:{_id_text(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (dt.date, dt.time)):
        return x.isoformat()
    return str(x)


# --------------------------------------------------------------------------- trials


def _count(values: Sequence[Any]) -> int:
    return values.size if isinstance(values, _Arange) else len(values)


class _Labels:
    """The id labels of a parameter too large to format whole (more than MAX_GRID values, so
    only ever sampled from): each value's own shortest form, made when asked for."""

    def __init__(self, name: str, values: Sequence[Any]) -> None:
        self.name = name
        self.values = values

    def __getitem__(self, d: int) -> str:
        return f"{self.name}={_id_text(self.values[d])}"


class Grid(Sequence[dict[str, Any]]):
    """The grid of a space for one seed: point ``i`` is the ``i``-th combination in file order,
    last parameter varying fastest (as ``itertools.product``), computed on demand.

    ``size`` is the number of points, of any size; ``len()`` stops at ``sys.maxsize``.
    """

    def __init__(self, space: Space, seed: int) -> None:
        self.names = space.names
        self.seed = seed
        self.values: list[Sequence[Any]] = []
        for p in space.params.values():
            try:
                self.values.append(p.grid_values(seed))
            except SpaceError as e:
                e.source = e.source or space.source
                raise
        self.sizes = [_count(v) for v in self.values]
        self.size = math.prod(self.sizes)
        self._labels: list[list[str] | _Labels] | None = None

    def __len__(self) -> int:
        if self.size > sys.maxsize:
            raise OverflowError(
                f"the grid has {self.size:,} points, more than len() can count: use Grid.size"
            )
        return self.size

    def _digits(self, i: int) -> list[int]:
        if not -self.size <= i < self.size:
            raise IndexError(i)
        i %= self.size
        digits = []
        for n in reversed(self.sizes):
            i, d = divmod(i, n)
            digits.append(d)
        return digits[::-1]

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.size))]
        return {n: plain(v[d]) for n, v, d in zip(self.names, self.values, self._digits(i), strict=True)}

    def _label_lists(self) -> list[list[str] | _Labels]:
        if self._labels is None:
            self._labels = [
                [f"{n}={t}" for t in format_values(v)] if size <= MAX_GRID else _Labels(n, v)
                for n, v, size in zip(self.names, self.values, self.sizes, strict=True)
            ]
        return self._labels

    def label(self, i: int) -> str:
        """The test id of point ``i``: ``name=value`` joined by ``-``, in file order."""
        return "-".join(ls[d] for ls, d in zip(self._label_lists(), self._digits(i), strict=True))

    def rows(
        self, names: Sequence[str], indices: Sequence[int] | None = None
    ) -> Iterator[tuple[int, tuple[Any, ...], str]]:
        """``(index, values of names, label)`` for each point (all of them when ``indices`` is None).

        What collection needs, without building a dict per point: values are converted once per
        parameter, so items share them as they share plain parametrize's values.
        """
        labels = self._label_lists()
        where = [self.names.index(n) for n in names]
        columns = {k: [plain(v) for v in self.values[k]] for k in where} if indices is None else {}

        def value(k: int, d: int) -> Any:
            return columns[k][d] if columns else plain(self.values[k][d])

        if indices is None:
            points: Iterable[tuple[int, Sequence[int]]] = enumerate(
                itertools.product(*(range(n) for n in self.sizes))
            )
        else:
            points = ((i, self._digits(i)) for i in indices)
        for i, digits in points:
            label = "-".join(ls[d] for ls, d in zip(labels, digits, strict=True))
            yield i, tuple(value(k, digits[k]) for k in where), label

    def sample(self, k: int, seed: int | None = None) -> list[int]:
        """Indices of ``k`` distinct points (all of them when ``k`` >= size), in grid order, by
        index arithmetic: a grid of any size, none of its points built but the chosen."""
        if k >= self.size:
            return list(range(self.size))
        rng = random.Random(derive_seed(self.seed if seed is None else seed, "sample", bits=64))
        if self.size <= sys.maxsize:
            return sorted(rng.sample(range(self.size), k))  # as always: pinned picks stay
        # random.sample needs len(); beyond it, what random.sample does for a large population:
        # draw an index, draw again when it was drawn before.
        picked: set[int] = set()
        while len(picked) < k:
            picked.add(rng.randrange(self.size))
        return sorted(picked)

    def trial(self, i: int, run: int = 1) -> Trial:
        """Point ``i`` as run ``run`` of its configuration: its id and seed (see :meth:`Trial.of`)."""
        return Trial.of(self[i], self.seed, run)

    def trials(self, repeat: int = 1, indices: Iterable[int] | None = None) -> Iterator[Trial]:
        for i in range(self.size) if indices is None else indices:
            for run in range(1, repeat + 1):
                yield self.trial(i, run)


# --------------------------------------------------------------------------- spaces


class Space:
    """A parameter space: exp's ``ParamSpace`` with validation and seeded grids.

    >>> s = Space().add_value("p1", 1).add_list("p2", [True, False]).add_range("p3", 0, 10, dtype=int)
    >>> s.size
    20
    """

    def __init__(self, params: Iterable[Param] = (), *, source: str | None = None) -> None:
        self.source = source
        self.params: dict[str, Param] = {}
        for p in params:
            self._add(p)

    # construction ------------------------------------------------------------

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], *, source: str | None = None) -> Space:
        if not isinstance(spec, Mapping):
            raise SpaceError(f"a space must be a table of parameters (got {_show(spec)})", source=source)
        if not spec:
            raise SpaceError("the space defines no parameters", source=source)
        space = cls(source=source)
        for name, item in spec.items():
            try:
                _check_value(name)
                key = str(name)
            except SpaceError as e:
                e.source, e.param = source, _show(name)
                raise
            try:
                _check_value(item)
                space._add(parse_param(key, plain(item)))
            except SpaceError as e:
                e.source, e.param = source, key if e.param is None else e.param
                raise
        return space

    @classmethod
    def from_toml(cls, text: str, *, source: str | None = None) -> Space:
        toml = _toml()
        try:
            data = toml.loads(text)
        except toml.TOMLDecodeError as e:
            raise SpaceError(f"invalid TOML: {e}", source=source) from None
        except RecursionError:  # the reader recurses into inline tables
            raise SpaceError(
                f"invalid TOML: arrays and tables nest too deeply (limit {MAX_DEPTH})", source=source
            ) from None
        except ValueError as e:  # what the reader lets through: an integer too long to read
            raise SpaceError(f"invalid TOML: {e}", source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path, *, source: str | None = None) -> Space:
        """Load a TOML space; ``source`` is how errors name the file (default: the path)."""
        path = Path(path)
        source = source or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpaceError("space file not found", source=source) from None
        except (OSError, UnicodeDecodeError) as e:
            raise SpaceError(f"cannot read space file: {e}", source=source) from None
        return cls.from_toml(text, source=source)

    def _add(self, param: Param) -> Space:
        if not param.name.strip():
            raise SpaceError(
                "a parameter needs a name (got an empty one)", source=self.source, param=f'"{param.name}"'
            )
        if param.name in self.params:
            raise SpaceError("parameter defined twice", source=self.source, param=param.name)
        self.params[param.name] = param
        return self

    def _build(self, name: str, make: Any, *args: Any, **kwargs: Any) -> Space:
        try:
            for v in (*args, *kwargs.values()):
                _check_value(v)
            values = {k: plain(v) for k, v in kwargs.items()}
            return self._add(make(name, *map(plain, args), **values))
        except SpaceError as e:
            e.source = self.source
            e.param = name if e.param is None else e.param
            raise

    def add_value(self, name: str, value: Any) -> Space:
        return self._build(name, _value_param, value)

    def add_list(self, name: str, values: Sequence[Any]) -> Space:
        return self._build(name, _choice_param, values)

    def add_range(
        self, name: str, low: float, high: float, step: float = 1, dtype: str | type = "float"
    ) -> Space:
        return self._build(name, _range_param, low, high, step, dtype)

    def add_random(
        self,
        name: str,
        low: float = 0,
        high: float = 1,
        prior: str = "uniform",
        dtype: str | type = "float",
        n: int = 1,
    ) -> Space:
        return self._build(name, _draw_param, low, high, prior, dtype, n)

    # queries -----------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def size(self) -> int:
        """Number of grid points (before repeats)."""
        return math.prod(p.grid_size for p in self.params.values())

    def grid(self, seed: int = 0) -> Grid:
        return Grid(self, seed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.grid())

    def points(self, seed: int = 0, repeat: int = 1) -> Iterator[Trial]:
        """Every grid point, each ``repeat`` times, as trials with ids, runs and seeds."""
        return self.grid(seed).trials(repeat)

    def sample(self, k: int, seed: int = 0) -> list[dict[str, Any]]:
        """``k`` distinct grid points drawn with ``seed`` (the whole grid when ``k`` >= size)."""
        grid = self.grid(seed)
        return [grid[i] for i in grid.sample(k)]

    def fixed(self) -> dict[str, Any]:
        """The ``value`` parameters, which the optimizer does not search."""
        return {p.name: p.value for p in self.params.values() if isinstance(p, Value)}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: p.table() for name, p in self.params.items()}

    def _canonical(self) -> str:
        # Parameter order stays: it decides grid order and ids. JSON keeps 1, 1.0 and true apart.
        return canonical_json(list(self.to_dict().items()))

    def fingerprint(self) -> str:
        """Changes exactly when the space's meaning changes (not its file's formatting)."""
        return hashlib.sha256(self._canonical().encode()).hexdigest()[:16]

    def to_toml(self) -> str:
        """The space as a TOML document that loads back into an equal space."""
        blocks = []
        for name, table in self.to_dict().items():
            lines = [f"[{_toml_key(name)}]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()]
            blocks.append("\n".join(lines) + "\n")
        return "\n".join(blocks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self._canonical() == other._canonical()

    def __repr__(self) -> str:
        inner = ", ".join(repr(p) for p in self.params.values())
        return f"Space([{inner}], source={self.source!r})"


# --------------------------------------------------------------------------- TOML output


def _toml_string(text: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else _toml_string(key)


def _toml_value(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return repr(x) if math.isfinite(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, str):
        return _toml_string(x)
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in x) + "]"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (dt.date, dt.time)):
        return x.isoformat()
    raise TypeError(f"no TOML form for {type(x).__name__}")


__all__ = [
    "Choice",
    "Draw",
    "Grid",
    "Param",
    "Range",
    "Space",
    "SpaceError",
    "Value",
]
