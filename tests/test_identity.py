"""Trial ids, seeds, fingerprints, study keys and sampled points, pinned byte for byte.

Stored studies resume and committed baselines match only while these stay what they were: a
change here must be deliberate (and say so in the CHANGELOG), never a side effect of a refactor.
"""

from __future__ import annotations

import pytest

from pytest_exp.space import Space
from pytest_exp.study.resume import resumed_seed, study_key
from pytest_exp.trial import derive_seed

BASIC = """
[x]
type = "range"
bounds = [-10, 10]
dtype = "int"
[lr]
type = "random"
bounds = [1e-4, 1e-1]
prior = "log-uniform"
n = 3
[opt]
type = "list"
value = ["adam", "sgd"]
"""

# Every kind of value an id is made of: non-ASCII text, bools, arrays, tables, dates, big ints,
# floats that print in exponent form, NaN, infinity and negative zero.
MIXED = """
name = "caf\u00e9"
flag = [true, false]
dims = [[1, 2], [3]]
table = {type = "value", value = {a = 1, b = 0.5}}
when = 2024-01-02
big = 12345678901234567890
f = [0.1, 1e-7, 1e300, nan, inf, -0.0]
"""

SPACES = {"basic": BASIC, "mixed": MIXED}

# (space, seed) -> (config id, trial seed) of points 0, 1, size // 2 and size - 1, runs 1 and 2.
TRIALS = {
    ("basic", 0): [
        ("e10f3374de34", 411217350), ("e10f3374de34", 865249770),
        ("cfefa1a55014", 3307870123), ("cfefa1a55014", 1139756333),
        ("e67e446ed165", 3166207865), ("e67e446ed165", 1595628175),
        ("d6135cc5cf50", 4185596886), ("d6135cc5cf50", 2369489215),
    ],
    ("basic", 7): [
        ("dbe26cb7ea23", 3098379112), ("dbe26cb7ea23", 3429878889),
        ("10a8719a0e9b", 960308223), ("10a8719a0e9b", 1187787046),
        ("0f1bc8a52e34", 2733050126), ("0f1bc8a52e34", 333526642),
        ("5dd982bc84b3", 658920890), ("5dd982bc84b3", 3633444321),
    ],
    ("mixed", 0): [
        ("69eb00a0f146", 611627805), ("69eb00a0f146", 1568384660),
        ("66ca25541fd2", 2258717276), ("66ca25541fd2", 3415795991),
        ("f6df094c7f72", 3662169991), ("f6df094c7f72", 997803694),
        ("1bbba6bd4171", 2972816091), ("1bbba6bd4171", 1332012911),
    ],
    ("mixed", 7): [
        ("69eb00a0f146", 372626993), ("69eb00a0f146", 3273588666),
        ("66ca25541fd2", 3351213691), ("66ca25541fd2", 192951579),
        ("f6df094c7f72", 1057841911), ("f6df094c7f72", 4087559119),
        ("1bbba6bd4171", 4149451728), ("1bbba6bd4171", 1107986666),
    ],
}  # fmt: skip

# (space, seed) -> grid.sample(5) and grid.sample(3, seed=11): what --exp-sample runs.
SAMPLES = {
    ("basic", 0): ([6, 56, 65, 92, 119], [3, 10, 12]),
    ("basic", 7): ([2, 28, 77, 91, 97], [3, 10, 12]),
    ("mixed", 0): ([1, 11, 14, 16, 23], [0, 2, 3]),
    ("mixed", 7): ([0, 7, 19, 20, 22], [0, 2, 3]),
}

FINGERPRINTS = {"basic": "0b0e38473716e113", "mixed": "3308bc4e0a31da5c"}
STUDY_KEYS = {"basic": "c225b84893ba23b8", "mixed": "86eddbfaa35a9cf0"}


def space(name: str) -> Space:
    return Space.from_toml(SPACES[name], source=f"{name}.toml")


@pytest.mark.parametrize(("name", "seed"), sorted(TRIALS))
def test_trial_ids_and_seeds_are_pinned(name: str, seed: int) -> None:
    grid = space(name).grid(seed)
    points = [0, 1, len(grid) // 2, len(grid) - 1]
    assert [(t.id, t.seed) for i in points for t in (grid.trial(i, 1), grid.trial(i, 2))] == TRIALS[
        name, seed
    ]


@pytest.mark.parametrize(("name", "seed"), sorted(SAMPLES))
def test_sampled_points_are_pinned(name: str, seed: int) -> None:
    grid = space(name).grid(seed)
    assert (grid.sample(5), grid.sample(3, seed=11)) == SAMPLES[name, seed]


@pytest.mark.parametrize("name", sorted(SPACES))
def test_fingerprints_and_study_keys_are_pinned(name: str) -> None:
    assert space(name).fingerprint() == FINGERPRINTS[name]
    assert study_key("tests/test_a.py::test_fit", space(name)) == STUDY_KEYS[name]


def test_random_draws_and_derived_seeds_are_pinned() -> None:
    lr = space("basic").grid(0)[0:6:2]
    assert [p["lr"] for p in lr] == [0.00153496812012246, 0.0023908136255695596, 0.0040567303968739475]
    # An optimization trial's seed: the study's seed, the study key's base and the slot number.
    assert derive_seed(0, "0123456789abcdef", 7) == 115305049
    # The optimizer's seed in a run resuming a study: the first run's, and then per trials replayed.
    assert [resumed_seed(0, n) for n in (0, 3, 4)] == [0, 450596238, 912663516]
