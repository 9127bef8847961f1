"""Unit and property tests of the trial store (pytest_exp/store.py)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from records import die

from pytest_exp.store import (
    FILENAME,
    PACKAGES,
    PICKLE_PROTOCOL,
    SCHEMA_VERSION,
    RunInfo,
    Store,
    StoreError,
    _PlainUnpickler,
    _trial_row,
    git_state,
    journaled_rows,
    package_versions,
)
from pytest_exp.trial import TrialRecord

PROPS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def record(n: int = 0, **fields: Any) -> TrialRecord:
    base: dict[str, Any] = {
        "test": f"test_a.py::test_fit[c{n}-1]",
        "function": "test_a.py::test_fit",
        "config_id": f"c{n}",
        "run": 1,
        "params": {"lr": 0.1 * n, "opt": "adam"},
        "seed": 1000 + n,
        "metrics": {"loss": [1.0, 0.5 / (n + 1)]},
        "status": "passed",
        "duration": 0.25,
        "started": 1700000000.0 + n,
        "finished": 1700000001.0 + n,
    }
    return TrialRecord(**{**base, **fields})


def key(r: TrialRecord) -> str:
    """NaN-aware exact equality: JSON text tells 1 from 1.0 and True, and writes NaN as NaN."""
    return json.dumps(r.to_dict(), allow_nan=True)


def error(make: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(StoreError) as info:
        make(*args, **kwargs)
    return str(info.value)


def start(store: Store, seed: int = 7, rootdir: Path | str = "/nonexistent/root", **kw: Any) -> int:
    return store.start_run(seed=seed, argv=["-x", "tests"], rootdir=str(rootdir), **kw)


@pytest.fixture
def no_git_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # tmp_path must not be taken for part of a repository that happens to enclose it.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))


# --------------------------------------------------------------------------- files and schema


def test_creates_directory_and_wal_database(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    with Store(directory) as store:
        assert store.path == directory / FILENAME
        assert store.path.is_file()
        # Unsynced only while the file is created: the trials' commits are NORMAL (1).
        assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)
    with Store(directory) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)
    db = sqlite3.connect(directory / FILENAME)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"runs", "trials"} <= tables
    finally:
        db.close()


def test_open_existing_missing_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert (
        error(Store.open_existing, missing)
        == f"no pytest-exp store at {missing} (expected {missing}/exp.sqlite)"
    )
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        error(Store.open_existing, str(empty))
        == f"no pytest-exp store at {empty} (expected {empty}/exp.sqlite)"
    )
    assert list(empty.iterdir()) == []


def test_open_existing_reads_what_store_wrote(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        run_id = start(store)
        store.add_trial(run_id, record())
    with Store.open_existing(tmp_path) as store:
        assert [key(t) for t in store.trials(run_id)] == [key(record())]


def test_newer_schema_is_refused_naming_the_file(tmp_path: Path) -> None:
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    expected = (
        f"{tmp_path}/exp.sqlite: schema version {SCHEMA_VERSION + 1} is newer than this pytest-exp "
        f"supports ({SCHEMA_VERSION}); upgrade pytest-exp to read it"
    )
    assert error(Store, tmp_path) == expected
    assert error(Store.open_existing, tmp_path) == expected


def older_store(directory: Path, version: int) -> int:
    """A store as pytest-exp wrote it at schema ``version`` (1 and 2 had no ``steps`` column;
    2 added the statuses "killed" and "timeout"), with three trials; its run id."""
    with Store(directory) as store:
        run_id = start(store)
        for n in range(3):
            store.add_trial(run_id, record(n))
        store.finish_run(run_id, status="finished")
    db = sqlite3.connect(directory / FILENAME)
    db.execute("ALTER TABLE trials DROP COLUMN steps")
    db.execute(f"PRAGMA user_version = {version}")
    db.close()
    return run_id


@pytest.mark.parametrize("version", [1, 2])
def test_an_older_store_is_migrated_and_keeps_everything(tmp_path: Path, version: int) -> None:
    run_id = older_store(tmp_path, version)
    stepped = record(9, steps={"loss": [0, 5]})
    with Store.open_existing(tmp_path) as old:  # a reader, as a writer, migrates it first
        assert [key(t) for t in old.trials(run_id)] == [key(record(n)) for n in range(3)]
    with Store(tmp_path) as store:
        (run,) = store.runs()
        assert (run.id, run.status, run.trials) == (run_id, "finished", 3)
        assert [key(t) for t in store.trials(run_id)] == [key(record(n)) for n in range(3)]
        store.add_trial(later := store.start_run(seed=1, argv=[], rootdir="/r"), stepped)
    with Store.open_existing(tmp_path) as store:
        assert [key(t) for t in store.trials(later)] == [key(stepped)]
    db = sqlite3.connect(tmp_path / FILENAME)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
    db.close()


def test_a_journal_of_a_version_without_steps_is_recovered(tmp_path: Path) -> None:
    # Killed before its commit by pytest-exp of schema 2, whose journal rows had no steps.
    run_id = older_store(tmp_path, 2)
    with Store(tmp_path) as store:  # migrated; the dead writer's run goes on
        pass
    old_row = _trial_row(run_id, 4, record(4))[:-1]
    (tmp_path / f"journal-{run_id}.pickle").write_bytes(pickle.dumps(old_row, protocol=PICKLE_PROTOCOL))
    with Store(tmp_path) as store:
        assert [key(t) for t in store.trials(run_id)] == [key(record(n)) for n in (0, 1, 2, 4)]


def test_a_running_trial_is_kept_only_if_its_process_died(tmp_path: Path) -> None:
    cut = record(1, status="timeout", message="cut off")
    with Store(tmp_path) as store:  # closed properly: what it finished is all there is
        run_id = start(store)
        store.add_running(run_id, cut)
        store.add_trial(run_id, record(1))
        store.add_running(run_id, record(2, status="timeout"))
        store.flush()  # a flush keeps the journal record of the trial still running
        store.add_trial(run_id, record(2))
    with Store.open_existing(tmp_path) as store:
        assert [t.status for t in store.trials(run_id)] == ["passed", "passed"]
    store = Store(tmp_path)
    run_id = start(store)
    store.add_trial(run_id, record(0))
    store.add_running(run_id, cut)
    store.flush()
    die(store)
    with Store.open_existing(tmp_path) as store:
        assert [(t.config_id, t.status, t.message) for t in store.trials(run_id)] == [
            ("c0", "passed", ""),
            ("c1", "timeout", "cut off"),
        ]
        assert store.run(run_id).status == "killed"


def test_not_a_store(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"not sqlite at all, just some bytes " * 10)
    assert error(Store, tmp_path).startswith(f"{tmp_path}/exp.sqlite: not a pytest-exp store (")
    (tmp_path / FILENAME).unlink()
    db = sqlite3.connect(tmp_path / FILENAME)
    db.execute("CREATE TABLE other (x)")
    db.close()
    assert error(Store.open_existing, tmp_path) == (
        f"{tmp_path}/exp.sqlite: not a pytest-exp store (tables but no schema version)"
    )


# --------------------------------------------------------------------------- runs


def test_runs_are_never_overwritten(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        first = start(store, seed=1, started=10.0)
        store.add_trial(first, record(0))
        store.add_trial(first, record(1))
        store.finish_run(first, status="finished", finished=20.0)
    with Store(tmp_path) as store:
        second = start(store, seed=2, started=30.0)
        store.add_trial(second, record(2))
        assert (first, second) == (1, 2)
        runs = store.runs()
        assert [(r.id, r.seed, r.trials, r.status, r.started, r.finished) for r in runs] == [
            (1, 1, 2, "finished", 10.0, 20.0),
            (2, 2, 1, "running", 30.0, None),
        ]
        assert store.run(None) == store.run() == runs[1]
        assert store.run(1) == runs[0]
        assert [t.config_id for t in store.trials(1)] == ["c0", "c1"]
        assert [t.config_id for t in store.trials(2)] == ["c2"]


def test_run_context(tmp_path: Path, no_git_above: None) -> None:
    with Store(tmp_path / "store") as store:
        run_id = store.start_run(seed=3, argv=["-k", "fit", "--exp-seed=3"], rootdir=str(tmp_path))
        info = store.run(run_id)
    assert isinstance(info, RunInfo)
    assert info.argv == ["-k", "fit", "--exp-seed=3"]
    assert info.rootdir == str(tmp_path)
    assert (info.git_commit, info.git_dirty) == (None, None)
    assert info.python == ".".join(map(str, sys.version_info[:3]))
    assert info.platform
    assert info.packages["pytest"] == pytest.__version__
    assert set(info.packages) <= {
        "pytest",
        "pytest-xdist",
        "pytest-exp",
        "scikit-optimize",
        "numpy",
        "pytest-json-report",
    }
    assert info.status == "running"
    assert info.finished is None
    assert info.trials == 0
    assert abs(info.started - time.time()) < 60


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_and_dirty_flag(tmp_path: Path, no_git_above: None) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=exp@example.com", "-c", "user.name=exp", "-c", "commit.gpgsign=false"]
    (repo / "a.txt").write_text("one\n")
    for args in (["init", "-q"], ["add", "a.txt"], ["commit", "-q", "-m", "first"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    # The store lives in the repository, untracked: that alone does not make the tree dirty.
    with Store(repo / ".exp") as store:
        clean = store.run(start(store, rootdir=repo))
        (repo / "a.txt").write_text("two\n")
        dirty = store.run(start(store, rootdir=repo))
    assert clean.git_commit == dirty.git_commit == head.stdout.strip()
    assert (clean.git_dirty, dirty.git_dirty) == (False, True)


def test_package_versions_agree_with_importlib_metadata() -> None:
    expected = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            expected[name] = metadata.version(name)
    assert package_versions() == expected


def test_package_versions_come_from_the_first_dist_info_on_sys_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pytest_xdist-99.1.dist-info").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path))
    versions = package_versions()
    assert versions["pytest-xdist"] == "99.1"
    assert versions["pytest"] == pytest.__version__


def test_git_is_started_only_where_a_repository_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any((p / ".git").exists() for p in (tmp_path, *tmp_path.parents)):
        pytest.skip("tmp_path lies in a git repository")
    monkeypatch.delenv("GIT_DIR", raising=False)
    started: list[list[str]] = []

    def run(args: list[str], **kwargs: Any) -> None:
        started.append(args)
        raise OSError("no git here")

    monkeypatch.setattr("pytest_exp.store.subprocess.run", run)
    assert git_state(str(tmp_path)) == (None, None)
    assert started == []
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub").mkdir()
    assert git_state(str(tmp_path / "sub")) == (None, None)
    assert started == [["git", "rev-parse", "HEAD"]]


def test_missing_run_errors(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        assert error(store.run) == f"no runs in {tmp_path}"
        assert error(store.run, 1) == f"no run 1 in {tmp_path} (no runs yet)"
        start(store)
        assert error(store.run, 2) == f"no run 2 in {tmp_path} (runs: 1)"
        start(store)
        start(store)
        assert error(store.run, 9) == f"no run 9 in {tmp_path} (runs: 1..3)"
        assert error(store.trials, 0) == f"no run 0 in {tmp_path} (runs: 1..3)"
        assert error(store.add_trial, 4, record()) == f"no run 4 in {tmp_path} (runs: 1..3)"
        assert error(store.finish_run, 4, status="finished") == f"no run 4 in {tmp_path} (runs: 1..3)"
        assert store.trials(3) == []


def test_finish_run_defaults_to_now(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        run_id = start(store)
        store.finish_run(run_id, status="interrupted")
        info = store.run(run_id)
    assert info.status == "interrupted"
    assert info.finished is not None
    assert info.finished >= info.started


# --------------------------------------------------------------------------- trials


def test_add_trial_keeps_order_per_run(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        a, b = start(store), start(store)
        for run_id, i in ((a, 0), (b, 1), (a, 2)):
            store.add_trial(run_id, record(i))
        assert [t.config_id for t in store.trials(a)] == ["c0", "c2"]
        assert [r.trials for r in store.runs()] == [2, 1]


def test_edge_values_round_trip(tmp_path: Path) -> None:
    odd = record(
        params={"x": [1, 1.0, True, None, {"b": 2, "a": [-0.0, 1e308]}], "big": 10**30, "s": "é\x00\n☃𝄞"},
        seed=2**70,
        metrics={"loss": [math.nan, math.inf, -math.inf, 5e-324], "ok": [True, False], "n": [3, 2**63]},
        status="failed",
        message="Traceback...\nAssertionError: é \udcff",
        duration=math.nan,
        worker="gw3",
        gpus=[0, 3],
        started=math.inf,
        finished=None,
    )
    with Store(tmp_path) as store:
        run_id = start(store, seed=-(2**80))
        store.add_trial(run_id, odd)
        (back,) = store.trials(run_id)
        assert key(back) == key(odd)
        assert back.last() == {"loss": 5e-324, "ok": False, "n": 2**63}
        assert type(back.params["x"][1]) is float
        assert type(back.params["x"][2]) is bool
        assert math.copysign(1.0, back.params["x"][4]["a"][0]) == -1.0
        assert list(back.params["x"][4]) == ["b", "a"]
        assert store.run(run_id).seed == -(2**80)


def test_lossy_values_do_not_fail_the_run(tmp_path: Path) -> None:
    import datetime as dt

    with Store(tmp_path) as store:
        run_id = start(store)
        store.add_trial(run_id, record(params={"day": dt.date(2024, 1, 2), "pair": (1, 2)}))
        (back,) = store.trials(run_id)
    assert back.params == {"day": "2024-01-02", "pair": [1, 2]}


def test_readable_with_plain_sqlite(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        run_id = start(store)
        store.add_trial(run_id, record(3))
        store.flush()  # trials reach the database in batches; flush() hands them over now
        db = sqlite3.connect(tmp_path / FILENAME)
        try:
            row = db.execute("SELECT config_id, status, json_extract(params, '$.opt') FROM trials").fetchone()
        finally:
            db.close()
    assert row == ("c3", "passed", "adam")


# --------------------------------------------------------------------------- durability


def test_trials_survive_sigkill(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import os, signal, sys
        from pytest_exp.store import Store
        from pytest_exp.trial import TrialRecord

        store = Store(sys.argv[1])
        run_id = store.start_run(seed=5, argv=["-q"], rootdir=sys.argv[1])
        for i in range(5):
            store.add_trial(run_id, TrialRecord("t", "f", f"c{i}", 1, {"i": i}, i, {"m": [i / 3]}))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    # Never closed: the trials are in the run's journal, not yet in the database.
    rows, damaged = journaled_rows((tmp_path / "journal-1.pickle").read_bytes(), 1)
    assert (len(rows), damaged) == (5, 0)
    with Store.open_existing(tmp_path) as store:  # recovers the dead writer's journal
        (run,) = store.runs()
        assert (run.id, run.seed, run.trials, run.finished, run.status) == (1, 5, 5, None, "killed")
        trials = store.trials(1)
    assert [(t.config_id, t.params, t.metrics) for t in trials] == [
        (f"c{i}", {"i": i}, {"m": [i / 3]}) for i in range(5)
    ]


def test_a_live_writers_journal_is_left_alone_and_a_dead_ones_recovered_once(tmp_path: Path) -> None:
    writer = Store(tmp_path)
    run_id = start(writer)
    writer.add_trial(run_id, record(0))
    with Store.open_existing(tmp_path) as reader:
        assert reader.trials(run_id) == []  # still in the writer's journal, which is locked
    assert (tmp_path / "journal-1.pickle").is_file()
    writer.flush()
    with Store.open_existing(tmp_path) as reader:
        assert [t.config_id for t in reader.trials(run_id)] == ["c0"]
    # As if killed right after a flush's commit and before it emptied the journal, with a last
    # line cut short: recovery adds nothing twice and drops the cut line.
    committed = tmp_path / "journal-1.pickle"
    writer.add_trial(run_id, record(1))
    journal = committed.read_bytes()
    writer.flush()
    committed.write_bytes(journal + journal[: len(journal) // 2])
    writer._db.close()  # dies without closing: its lock goes with the process's descriptor
    os.close(writer._journals.pop(run_id))
    with Store.open_existing(tmp_path) as reader:
        assert [t.config_id for t in reader.trials(run_id)] == ["c0", "c1"]
        assert reader.run(run_id).status == "killed"
    assert not committed.exists()


class _Shell:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo unpickled",))


def test_a_journal_gives_back_plain_rows_and_nothing_else(tmp_path: Path) -> None:
    # A record that would load an object (here one that runs a command) is skipped as damage.
    with Store(tmp_path) as writer:
        run_id = start(writer)
    added = record(3, metrics={"m": [1, math.nan]}, gpus=[0])
    row = _trial_row(run_id, 1, added)
    second = (*row[:1], 2, *row[2:])
    data = b"".join(pickle.dumps(r, PICKLE_PROTOCOL) for r in (row, _Shell(), second))
    assert journaled_rows(data, run_id) == ([row, second], 1)
    assert journaled_rows(data, run_id + 1) == ([], 1)  # rows of another run are not this journal's
    with pytest.raises(pickle.UnpicklingError, match=r"a journal holds only plain data, not posix\.system$"):
        _PlainUnpickler(io.BytesIO(pickle.dumps(_Shell()))).load()
    (tmp_path / "journal-1.pickle").write_bytes(data)
    with Store.open_existing(tmp_path) as reader:
        trials = reader.trials(run_id)
    assert [repr(t) for t in trials] == [repr(added), repr(added)]


# --------------------------------------------------------------------------- Hypothesis property

TEXT = st.text(st.characters() | st.sampled_from('"\\\x00\n é☃𝄞'), max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NUMBERS = st.one_of(st.integers(), FLOATS, st.booleans())
JSON_VALUES = st.recursive(
    st.none() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
RECORDS = st.builds(
    TrialRecord,
    test=TEXT,
    function=TEXT,
    config_id=TEXT,
    run=st.integers(1, 2**31),
    params=st.dictionaries(TEXT, JSON_VALUES, max_size=4),
    seed=st.integers(),
    metrics=st.dictionaries(TEXT, st.lists(NUMBERS, max_size=4), max_size=3),
    status=st.sampled_from(["passed", "failed", "error", "skipped", "crashed", "running"]),
    message=TEXT,
    duration=FLOATS,
    worker=TEXT,
    gpus=st.lists(st.integers(0, 15), max_size=3),
    started=FLOATS,
    finished=st.none() | st.floats(allow_nan=False),
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # One store for every example: each example is a run of its own, so runs must stay apart too.
    with Store(tmp_path_factory.mktemp("property")) as store:
        yield store


@PROPS
@given(st.lists(RECORDS, min_size=1, max_size=3), st.integers())
def test_any_record_round_trips(shared_store: Store, records: list[TrialRecord], seed: int) -> None:
    run_id = shared_store.start_run(seed=seed, argv=[], rootdir="/nonexistent/root")
    for r in records:
        shared_store.add_trial(run_id, r)
    back = shared_store.trials(run_id)
    assert [key(t) for t in back] == [key(r) for r in records]
    info = shared_store.run(None)
    assert (info.id, info.seed, info.trials) == (run_id, seed, len(records))
