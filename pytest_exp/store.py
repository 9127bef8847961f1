"""The trial store: every pytest run and each trial it finished, in one file, ``<directory>/exp.sqlite``.

Why SQLite and not a JSON-lines file: trials reach it in atomic batches, so it never holds half a
trial; once a run is over it is one file, with no lock files or sidecar indexes of our own (WAL
mode keeps ``-wal``/``-shm`` next to it while a connection is open, managed by SQLite, and a run
keeps its not yet committed trials in a journal, see :meth:`Store.add_trial`); readers
(a report while the sweep runs) never block the writer; and the data can be queried with any sqlite
tool (``sqlite3 .pytest-exp/exp.sqlite "select ..."``) without pytest-exp. The standard library is enough.

Layout (``PRAGMA user_version`` is the schema version):

- ``runs``: one row per pytest run (never overwritten): seed, command line, rootdir, git commit and
  dirty flag, Python, platform, package versions, start and finish times and a status ("running"
  until :meth:`Store.finish_run`; a killed run is marked "killed" when its journal is recovered).
- ``trials``: one row per trial in the order trials finished. ``params``, ``metrics`` (each metric's
  series) and ``gpus`` are JSON text written with ``allow_nan=True`` (NaN and Infinity survive; SQLite's
  own JSON functions read those from SQLite 3.42 on). A metric's value is the last of its series.

What round-trips: JSON values exactly (ints and bools apart, floats bit for bit, key order kept).
Params that JSON cannot hold (TOML dates and times, objects from dict spaces) are stored as their
``str``; tuples come back as lists. Text with lone surrogates (which UTF-8 cannot hold) is stored
as a BLOB of its ``surrogatepass`` encoding and read back exactly. Trial times come back as given,
except that a NaN ``finished`` reads as None (SQLite stores NaN as NULL). Seeds beyond 64 bits are
kept as decimal text and read back as ints.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import pickle
import platform
import re
import sqlite3
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from pytest_exp.trial import FIELDS, TrialRecord, field_values

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

FILENAME = "exp.sqlite"
SCHEMA_VERSION = 3
# What each older version needs to become the next one. 1 -> 2 adds statuses only: runs marked
# "killed" and trials marked "timeout" (see Store.add_running), which a version-1 reader would
# not know; the tables are unchanged. 2 -> 3 adds the trials' ``steps`` (and the status "pruned").
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("ALTER TABLE trials ADD COLUMN steps TEXT NOT NULL DEFAULT '{}'",),
}
# Columns added since version 1, and what a store from before them reads as (a reader that
# cannot write, so cannot migrate, reads an older store as it is).
ADDED_COLUMNS = {"steps": "'{}'"}
BUSY_TIMEOUT_S = 5.0
GIT_TIMEOUT_S = 5.0
PACKAGES = ("pytest", "pytest-xdist", "pytest-exp", "scikit-optimize", "numpy", "pytest-json-report")

# Seeds and trial times have no declared type, hence no affinity, and keep what they are given: a
# seed beyond 64 bits as its decimal text (INTEGER affinity would make that an inexact REAL), a time
# as the int or float it was, -0.0 included (REAL affinity stores whole floats as integers).
SCHEMA = """
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seed NOT NULL,
    argv TEXT NOT NULL,
    rootdir TEXT NOT NULL,
    git_commit TEXT,
    git_dirty INTEGER,
    python TEXT NOT NULL,
    platform TEXT NOT NULL,
    packages TEXT NOT NULL,
    started REAL NOT NULL,
    finished REAL,
    status TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE trials (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER NOT NULL REFERENCES runs (id),
    test TEXT NOT NULL,
    function TEXT NOT NULL,
    config_id TEXT NOT NULL,
    run INTEGER NOT NULL,
    params TEXT NOT NULL,
    seed NOT NULL,
    metrics TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    duration,
    worker TEXT NOT NULL,
    gpus TEXT NOT NULL,
    started,
    finished,
    objective TEXT,
    study TEXT,
    trial INTEGER,
    seq INTEGER NOT NULL,
    steps TEXT NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX trials_by_run ON trials (run_id, seq);
"""

RUN_COLUMNS = (
    "id, seed, argv, rootdir, git_commit, git_dirty, python, platform, packages, started, finished, status, "
    "name, (SELECT count(*) FROM trials WHERE trials.run_id = runs.id)"
)
TRIAL_FIELDS = FIELDS  # the trials table's columns are TrialRecord's fields, in its order
TRIAL_COLUMNS = ", ".join(TRIAL_FIELDS)
# OR IGNORE: recovering a journal may meet trials a flush committed just before the kill.
INSERT_TRIAL = (
    f"INSERT OR IGNORE INTO trials (run_id, seq, {TRIAL_COLUMNS}) "
    f"VALUES (?, ?, {', '.join('?' * len(TRIAL_FIELDS))})"
)
JOURNAL_GLOB = "journal-*.pickle"
_JOURNAL_NAME = re.compile(r"journal-([0-9]+)\.pickle")
# Each journal record is one pickled INSERT_TRIAL row: binary floats, so a trial is not encoded as
# text twice (its JSON columns are text already), and a reader refuses anything but plain data.
PICKLE_PROTOCOL = 5
# How every record of protocol 5 begins (PROTO 5, FRAME): where reading starts again after damage.
RECORD_START = b"\x80\x05\x95"
# A trial waits in the journal for at most this long, or this many others, before SQLite has it.
FLUSH_AFTER_S = 1.0
FLUSH_EVERY = 256
TEXT_FIELDS = ("test", "function", "config_id", "status", "message", "worker")
JSON_FIELDS = ("params", "metrics", "gpus", "steps")
_TEXT_AT = tuple(TRIAL_FIELDS.index(f) for f in TEXT_FIELDS)
_PARAMS_AT, _METRICS_AT, _GPUS_AT, _STEPS_AT = (TRIAL_FIELDS.index(f) for f in JSON_FIELDS)
_SEED_AT = TRIAL_FIELDS.index("seed")
_INT64 = range(-(2**63), 2**63)


class StoreError(Exception):
    """A store that cannot be opened or read as asked; the message names the file or directory."""


class RunInfo(NamedTuple):
    """One pytest run as recorded: ``trials`` is the number of trials stored for it so far."""

    id: int
    seed: int
    argv: list[str]
    rootdir: str
    git_commit: str | None
    git_dirty: bool | None
    python: str
    platform: str
    packages: dict[str, str]
    started: float
    finished: float | None
    status: str
    name: str
    trials: int


class Store:
    """The trial store of one directory. One writer at a time (the pytest controller); any number
    of readers. Every write is committed before the method returns."""

    def __init__(self, directory: str | Path) -> None:
        self._open(Path(directory), create=True)

    @classmethod
    def open_existing(cls, directory: str | Path) -> Store:
        """The store in ``directory``; StoreError when there is none (no file is created)."""
        store = cls.__new__(cls)
        store._open(Path(directory), create=False)
        return store

    def _open(self, directory: Path, *, create: bool) -> None:
        self.directory = directory
        self.path = directory / FILENAME
        # What opening found and did that a person should hear of (journals recovered).
        self.notes: list[str] = []
        self.read_only = False
        # The error of the last commit that failed: from then on trials are only journaled.
        self.failed: BaseException | None = None
        self._seq: dict[int, int] = {}
        self._journals: dict[int, int] = {}
        self._pending: list[tuple[Any, ...]] = []
        # Journal records of trials still running that must outlive the process (add_running).
        self._running: dict[tuple[int, str], bytes] = {}
        self._flushed = time.monotonic()
        if create:
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create store directory {directory}: {e.strerror or e}") from None
            target, uri = str(self.path), False
        elif self.path.is_file():
            # mode=rw: should the file vanish after the check, fail rather than create an empty store.
            target, uri = f"{self.path.absolute().as_uri()}?mode=rw", True
            if not (os.access(self.path, os.W_OK) and os.access(directory, os.W_OK)):
                # Readable as it is: no journal recovery (the writer's job) and no WAL index, which
                # a directory that cannot be written cannot hold.
                self.read_only = True
                target = f"{self.path.absolute().as_uri()}?mode=ro&immutable=1"
        else:
            raise StoreError(f"no pytest-exp store at {directory} (expected {self.path})")
        try:
            self._db = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri)
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: cannot open ({e})") from None
        try:
            if self.read_only:
                self._check_columns(older=self._check_version() < SCHEMA_VERSION)
            else:
                self._prepare()
                self._recover()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreError(f"{self.path}: not a pytest-exp store ({e})") from None
        except BaseException:
            self._db.close()
            raise

    def _check_version(self) -> int:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this pytest-exp supports "
                f"({SCHEMA_VERSION}); upgrade pytest-exp to read it"
            )
        return version

    def _prepare(self) -> None:
        db = self._db
        version = self._check_version()
        # OFF while a new file gets its WAL header and schema: syncing an empty store protects
        # nothing, and cost four fsyncs per fresh store.
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA journal_mode = WAL")
        # Checkpoints are where NORMAL syncs: every 40 MB of log instead of every 4 MB halves the
        # cost of a trial's commit; closing the store checkpoints what is left.
        db.execute("PRAGMA wal_autocheckpoint = 10000")
        db.execute("PRAGMA foreign_keys = ON")
        if version == SCHEMA_VERSION:
            self._check_columns()
        else:
            self._create_schema()
        # In WAL mode NORMAL survives the death of the process (a commit is in the OS's hands when
        # it returns); FULL would add an fsync per trial to survive power loss, which sweeps of
        # many short trials cannot afford.
        db.execute("PRAGMA synchronous = NORMAL")

    def _create_schema(self) -> None:
        """Create the schema in a new file, or migrate an older store to this version."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have created the schema meanwhile.
            version = self._version()
            if version == 0:
                if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise StoreError(f"{self.path}: not a pytest-exp store (tables but no schema version)")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
            else:
                self._check_columns(older=True)
                for step in range(version, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        db.execute(statement)
            self._check_columns()
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _check_columns(self, *, older: bool = False) -> None:
        """Refuse a store that lacks columns its version has (written while the schema was still
        moving, before a release); an ``older`` version's store may lack those added since, which
        its trials read as their defaults."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(trials)")}
        missing = [f for f in TRIAL_FIELDS if f not in have and not (older and f in ADDED_COLUMNS)]
        if missing:
            raise StoreError(
                f"{self.path}: written by an older pytest-exp (no column {missing[0]!r}); "
                "move it away or use another --exp-store"
            )
        self._columns = ", ".join(f if f in have else f"{ADDED_COLUMNS[f]} AS {f}" for f in TRIAL_FIELDS)

    def _version(self) -> int:
        version: int = self._db.execute("PRAGMA user_version").fetchone()[0]
        return version

    # lifetime -----------------------------------------------------------------

    def close(self) -> None:
        """Commit what is journaled and close. Should the commit fail, the journals stay on disk
        (unlocked) for the next store opened on the directory to recover, and the error is raised."""
        try:
            self.flush()
        except BaseException:
            for fd in self._journals.values():
                os.close(fd)
            self._journals.clear()
            raise
        finally:
            for run_id in list(self._journals):
                self._drop_journal(run_id)
            self._db.close()

    def _rollback(self) -> None:
        # A failed COMMIT (a full disk, say) may have rolled back already: a second ROLLBACK would
        # raise "no transaction is active" and hide the error that matters.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # writing ------------------------------------------------------------------

    def start_run(
        self, *, seed: int, argv: list[str], rootdir: str, started: float | None = None, name: str = ""
    ) -> int:
        """Record a new run and return its id (1, 2, ...; never reused). ``name`` is the run's
        artifacts folder (``artifacts/<name>/``)."""
        commit, dirty = git_state(rootdir)
        cursor = self._db.execute(
            "INSERT INTO runs (seed, argv, rootdir, git_commit, git_dirty, python, platform, packages, "
            "started, finished, status, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'running', ?)",
            (
                _int_in(seed),
                _dumps([str(a) for a in argv]),
                _text(rootdir),
                commit,
                dirty,
                platform.python_version(),
                platform.platform(),
                _dumps(package_versions()),
                time.time() if started is None else float(started),
                name,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_trial(self, run_id: int, record: TrialRecord) -> None:
        """Store one trial of run ``run_id``. Durable on return: the trial is appended to the run's
        journal (one write, so a SIGKILL cannot lose it) and reaches SQLite in batches, at the
        latest after FLUSH_AFTER_S, on any read through this store, and when it closes. A journal
        left by a killed process is recovered by the next store opened on the directory."""
        if run_id not in self._seq:  # once per run: this runs for every trial
            self._require_run(run_id)
            last = self._db.execute("SELECT max(seq) FROM trials WHERE run_id = ?", (run_id,)).fetchone()[0]
            self._seq[run_id] = last or 0
        self._seq[run_id] += 1
        seq = self._seq[run_id]
        row = _trial_row(run_id, seq, record)
        if fcntl is None:  # no advisory locks (Windows): commit each trial as it comes
            self._db.execute(INSERT_TRIAL, row)
            return
        data = pickle.dumps(row, PICKLE_PROTOCOL)
        self._write_journal(run_id, data)
        if self._running:
            self._running.pop((run_id, record.test), None)
        self._pending.append(row)
        if self.failed is not None:
            return  # journaled; the database is tried again when the store closes
        if len(self._pending) >= FLUSH_EVERY or time.monotonic() - self._flushed >= FLUSH_AFTER_S:
            self.flush()

    def add_running(self, run_id: int, record: TrialRecord) -> None:
        """Journal a trial that is still running, as ``record`` says it should be stored if the
        process dies before :meth:`add_trial` stores it for real (a pytest-timeout that ends the
        process marks it "timeout" so). Used only where such a death is expected: it costs a write."""
        if fcntl is None:  # no journals (Windows)
            return
        self._require_run(run_id)
        data = pickle.dumps(_trial_row(run_id, 0, record), PICKLE_PROTOCOL)  # seq 0: not a finished trial
        self._running[(run_id, record.test)] = data
        self._write_journal(run_id, data)

    def _write_journal(self, run_id: int, data: bytes) -> None:
        written = os.write(self._journal(run_id), data)
        if written != len(data):
            raise OSError(f"{self._journal_path(run_id)}: only {written} of {len(data)} bytes written")

    def flush(self) -> None:
        """Commit the journaled trials to SQLite (one transaction) and empty the journals."""
        if not self._pending:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(INSERT_TRIAL, self._pending)
            self._db.execute("COMMIT")
        except BaseException as e:
            self._rollback()
            self.failed = e
            raise
        self._pending = []
        self._flushed = time.monotonic()
        for fd in self._journals.values():
            os.ftruncate(fd, 0)
        for (run_id, _), data in self._running.items():  # still running: still journaled
            self._write_journal(run_id, data)

    def _journal(self, run_id: int) -> int:
        fd = self._journals.get(run_id)
        if fd is None:
            # Created under a temporary name and locked before it gets its real one, so a store
            # recovering journals never takes a live writer's for an orphan.
            final = self._journal_path(run_id)
            temporary = final.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            assert fcntl is not None
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(temporary, final)
            self._journals[run_id] = fd
        return fd

    def _journal_path(self, run_id: int) -> Path:
        return self.directory / f"journal-{run_id}.pickle"

    def _drop_journal(self, run_id: int) -> None:
        fd = self._journals.pop(run_id)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._journal_path(run_id))
        os.close(fd)

    def _recover(self) -> None:
        """Commit the trials of journals whose writer died (no one holds their lock), and mark
        their runs killed: a run's journal lives from its first trial until the run closes."""
        if fcntl is None:
            return
        for path in sorted(self.directory.glob(JOURNAL_GLOB)):
            name = _JOURNAL_NAME.fullmatch(path.name)
            if name is None:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its writer is alive
                run_id = int(name[1])
                rows, damaged = journaled_rows(path.read_bytes(), run_id)
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._still_running(run_id, rows)
                    self._db.executemany(INSERT_TRIAL, rows)
                    self._db.execute(
                        "UPDATE runs SET status = 'killed' WHERE id = ? AND finished IS NULL", (run_id,)
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
                if damaged:
                    aside = path.with_name(f"damaged-{path.stem}-{int(time.time())}.pickle")
                    path.rename(aside)
                    self.notes.append(
                        f"{path}: recovered {len(rows)} trials of run {run_id}; {damaged} damaged "
                        f"record{'s' if damaged > 1 else ''} skipped (the journal is kept as {aside.name})"
                    )
                else:
                    path.unlink()
            finally:
                os.close(fd)

    def _still_running(self, run_id: int, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """A dead run's journal rows, with those of trials that were still running (seq 0, see
        :meth:`add_running`) kept only when the trial has no stored row, and numbered after the rest."""
        finished = [r for r in rows if r[1] != 0]
        stored = {r[2] for r in finished}
        last = self._db.execute("SELECT max(seq) FROM trials WHERE run_id = ?", (run_id,)).fetchone()[0] or 0
        last = max([last, *(r[1] for r in finished)])
        for row in rows:
            test = row[2]
            if row[1] != 0 or test in stored:
                continue
            if self._db.execute(
                "SELECT 1 FROM trials WHERE run_id = ? AND test = ?", (run_id, test)
            ).fetchone():
                continue
            last += 1
            stored.add(test)
            finished.append((run_id, last, *row[2:]))
        return finished

    def finish_run(self, run_id: int, *, status: str, finished: float | None = None) -> None:
        """Mark run ``run_id`` over: ``status`` e.g. "finished" or "interrupted"."""
        self.flush()
        self._require_run(run_id)
        self._db.execute(
            "UPDATE runs SET status = ?, finished = ? WHERE id = ?",
            (_text(status), time.time() if finished is None else float(finished), run_id),
        )

    # reading ------------------------------------------------------------------

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        self.flush()
        rows = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id").fetchall()
        return [_run_info(row) for row in rows]

    def run(self, run_id: int | None = None) -> RunInfo:
        """Run ``run_id``, or the latest run when None."""
        self.flush()
        if run_id is None:
            row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                raise StoreError(f"no runs in {self.directory}")
        else:
            row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(self._no_run(run_id))
        return _run_info(row)

    def trials(self, run_id: int) -> list[TrialRecord]:
        """The trials of run ``run_id`` in the order they were added."""
        self.flush()
        self._require_run(run_id)
        rows = self._db.execute(
            f"SELECT {self._columns} FROM trials WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        return [_trial(row) for row in rows]

    def study_trials(self, study: str, *, before_run: str = "") -> list[TrialRecord]:
        """The stored trials of an optimization study in the order added, leaving out those of
        the run named ``before_run`` (a study's history as it stood when that run started)."""
        self.flush()
        rows = self._db.execute(
            f"SELECT {self._columns} FROM trials WHERE study = ? "
            "AND run_id NOT IN (SELECT id FROM runs WHERE name = ?) ORDER BY id",
            (study, before_run),
        ).fetchall()
        return [_trial(row) for row in rows]

    def latest_study(self, function: str) -> tuple[str, int] | None:
        """The study of the most recent optimization trial of a test function, and its run."""
        self.flush()
        row = self._db.execute(
            "SELECT study, run_id FROM trials WHERE function = ? AND study IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            (function,),
        ).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def study_functions(self) -> list[str]:
        """The test functions that ran optimization trials, as their node ids were then."""
        self.flush()
        rows = self._db.execute("SELECT DISTINCT function FROM trials WHERE study IS NOT NULL").fetchall()
        return [str(row[0]) for row in rows]

    def _require_run(self, run_id: int) -> None:
        if self._db.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise StoreError(self._no_run(run_id))

    def _no_run(self, run_id: int) -> str:
        low, high = self._db.execute("SELECT min(id), max(id) FROM runs").fetchone()
        if low is None:
            return f"no run {run_id} in {self.directory} (no runs yet)"
        runs = str(low) if low == high else f"{low}..{high}"
        return f"no run {run_id} in {self.directory} (runs: {runs})"


# --------------------------------------------------------------------------- run context


def git_state(rootdir: str) -> tuple[str | None, bool | None]:
    """The commit checked out at ``rootdir`` and whether tracked files differ from it; (None, None)
    outside a repository, without git, or when git takes longer than a few seconds."""
    if not _in_repository(rootdir):
        return None, None  # without starting git: that alone costs a few ms per run
    out = _git(rootdir, "rev-parse", "HEAD")
    commit = out.strip() if out is not None else ""
    if not commit or any(c not in "0123456789abcdef" for c in commit):
        return None, None
    # Untracked files are ignored: the store directory itself is often one.
    status = _git(rootdir, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status.strip())


def _in_repository(rootdir: str) -> bool:
    """Whether git could find a repository for ``rootdir``: a ``.git`` there or above (a
    directory, or a worktree's file), or one named by ``GIT_DIR``."""
    if "GIT_DIR" in os.environ:
        return True
    path = Path(rootdir).absolute()
    return any(os.path.exists(p / ".git") for p in (path, *path.parents))


def _git(cwd: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a run's results; those not installed are left out.

    Read from the names of the ``NAME-VERSION.dist-info`` folders on ``sys.path`` (the first
    wins, as for imports), which is what installers write: importlib.metadata parses each
    package's METADATA, about 4 ms for these six. Anything else is asked of importlib.metadata.
    """
    wanted = {_project(name): name for name in PACKAGES}
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for folder in names:
            if folder.endswith(".dist-info"):
                project, _, version = folder[: -len(".dist-info")].rpartition("-")
                name = wanted.get(_project(project))
                if name is not None and version:
                    versions.setdefault(name, version)
    for name in PACKAGES:
        if name not in versions:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions[name] = metadata.version(name)
    return {name: versions[name] for name in PACKAGES if name in versions}


def _project(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # as packaging normalizes project names


# --------------------------------------------------------------------------- encoding


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"a journal holds only plain data, not {module}.{name}")


def journaled_rows(data: bytes, run_id: int) -> tuple[list[tuple[Any, ...]], int]:
    """The INSERT_TRIAL rows of run ``run_id``'s journal, and how many damaged stretches were
    skipped: a record cut by a kill, bytes overwritten, anything but a row of plain data of this
    run. Reading starts again at the next record's start, so damage costs only what it hit."""
    stream = io.BytesIO(data)
    rows: list[tuple[Any, ...]] = []
    damaged, in_damage, at = 0, False, 0
    while 0 <= at < len(data):
        stream.seek(at)
        try:
            row = _PlainUnpickler(stream).load()
        except Exception:  # what a damaged record raises depends on the damage
            row = None
        if isinstance(row, tuple) and len(row) == len(TRIAL_FIELDS) + 1 and row[:1] == (run_id,):
            row += ("{}",)  # journaled by a version without steps (schema 2), killed before its commit
        if isinstance(row, tuple) and len(row) == len(TRIAL_FIELDS) + 2 and row[0] == run_id:
            rows.append(row)
            in_damage, at = False, stream.tell()
            continue
        damaged += not in_damage
        in_damage, at = True, data.find(RECORD_START, at + 1)
    return rows, damaged


def _trial_row(run_id: int, seq: int, record: TrialRecord) -> tuple[Any, ...]:
    """A trial's INSERT_TRIAL parameters."""
    row = list(field_values(record))
    # One check for all of a trial's text, which is nearly always ASCII.
    if not "".join([row[i] for i in _TEXT_AT]).isascii():
        for i in _TEXT_AT:
            row[i] = _text(row[i])
    row[_PARAMS_AT] = _dumps(record.params)
    row[_METRICS_AT] = _dumps(record.metrics)
    row[_GPUS_AT] = _gpus_text(record.gpus)
    row[_STEPS_AT] = _dumps(record.steps) if record.steps else "{}"
    row[_SEED_AT] = _int_in(row[_SEED_AT])
    return (run_id, seq, *row)


# ensure_ascii (the default) keeps lone surrogates representable; default=str stores what JSON
# cannot hold (TOML dates, arbitrary objects) as text rather than failing the run. No circular
# check: a trial's values went through trial.plain (params) or record_metric (numbers) already.
_ENCODER = json.JSONEncoder(allow_nan=True, default=str, separators=(",", ":"), check_circular=False)
_dumps = _ENCODER.encode
_GPUS_TEXT: dict[tuple[int, ...], str] = {}


def _gpus_text(gpus: list[int]) -> str:
    """A process's GPU ids as JSON text, encoded once per distinct list: every trial of a worker
    has the same one, and a call of the encoder costs about as much as a trial's metrics."""
    key = tuple(gpus)
    text = _GPUS_TEXT.get(key)
    if text is None:
        text = _GPUS_TEXT[key] = _dumps(gpus)
    return text


def _text(s: str) -> str | bytes:
    # Lone surrogates (undecodable file names, say) cannot be UTF-8 text: such a string is stored as
    # a BLOB of its surrogatepass encoding, which ``_str`` reads back exactly.
    if s.isascii():  # nearly always, and much cheaper than encoding
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")
    return s


def _str(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else value


def _int_in(n: int) -> int | str:
    return n if n in _INT64 else str(n)


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    (
        id_,
        seed,
        argv,
        rootdir,
        commit,
        dirty,
        python,
        platform_,
        packages,
        started,
        finished,
        status,
        name,
        n,
    ) = row
    return RunInfo(
        id=id_,
        seed=int(seed),
        argv=json.loads(argv),
        rootdir=_str(rootdir),
        git_commit=commit,
        git_dirty=None if dirty is None else bool(dirty),
        python=python,
        platform=platform_,
        packages=json.loads(packages),
        started=started,
        finished=finished,
        status=_str(status),
        name=name,
        trials=n,
    )


def _trial(row: tuple[Any, ...]) -> TrialRecord:
    data = dict(zip(TRIAL_FIELDS, row, strict=True))
    for key in JSON_FIELDS:
        data[key] = json.loads(data[key])
    data["seed"] = int(data["seed"])
    for key in TEXT_FIELDS:
        data[key] = _str(data[key])
    # SQLite stores NaN as NULL; these two are never None, so NULL can only have been NaN.
    for key in ("duration", "started"):
        if data[key] is None:
            data[key] = math.nan
    return TrialRecord(**data)
