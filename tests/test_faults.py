"""Faults injected for real: kill -9 of the run, of a worker and of the xdist controller,
Ctrl-C and SIGTERM (to the process group and to the controller alone), pytest-timeout ending the
process, damaged journals, a full database, a store that cannot be written, a read-only store.
No finished trial is lost without the run saying so and failing; none is stored twice."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from records import die

from pytest_exp.interrupt import Guard
from pytest_exp.store import FILENAME, RECORD_START, Store
from pytest_exp.trial import TrialRecord


def trial(i: int) -> TrialRecord:
    return TrialRecord("t.py::t", "t.py::t", f"c{i}", 1, {"i": i}, i, {"m": [i / 3]}, status="passed")


# --------------------------------------------------------------------------- journals


def test_damage_in_a_journal_costs_only_the_records_it_hit(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run_id = store.start_run(seed=0, argv=[], rootdir=str(tmp_path))
    for i in range(10):
        store.add_trial(run_id, trial(i))
    journal = tmp_path / "journal-1.pickle"
    data = bytearray(journal.read_bytes())
    starts = [m.start() for m in re.finditer(re.escape(RECORD_START), bytes(data))]
    assert len(starts) == 10
    data[starts[4] + 5 : starts[4] + 25] = b"\xff" * 20  # 20 bytes of the fifth record overwritten
    journal.write_bytes(bytes(data))
    die(store)

    with Store.open_existing(tmp_path) as reader:
        assert [t.config_id for t in reader.trials(run_id)] == [f"c{i}" for i in range(10) if i != 4]
        assert reader.run(run_id).status == "killed"
        (note,) = reader.notes
    (aside,) = tmp_path.glob("damaged-journal-1-*.pickle")
    assert note == (
        f"{journal}: recovered 9 trials of run 1; 1 damaged record skipped "
        f"(the journal is kept as {aside.name})"
    )
    assert aside.read_bytes() == bytes(data)
    assert not journal.exists()
    with Store.open_existing(tmp_path) as again:  # recovered once: nothing twice, no second note
        assert (len(again.trials(run_id)), again.notes) == (9, [])


def test_a_run_killed_after_its_trials_were_committed_is_marked_killed(tmp_path: Path) -> None:
    # The journal is empty after each commit: a kill then left no trial to recover, only the run.
    code = textwrap.dedent(
        """
        import os, signal, sys
        from pytest_exp.store import Store
        from pytest_exp.trial import TrialRecord

        store = Store(sys.argv[1])
        run_id = store.start_run(seed=5, argv=["-q"], rootdir=sys.argv[1])
        store.add_trial(run_id, TrialRecord("t", "f", "c0", 1, {"i": 0}, 0, {"m": [0.5]}))
        store.flush()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    assert (tmp_path / "journal-1.pickle").read_bytes() == b""
    with Store.open_existing(tmp_path) as store:
        (run,) = store.runs()
    assert (run.status, run.trials, run.finished) == ("killed", 1, None)


# --------------------------------------------------------------------------- a full database


def test_a_full_database_reports_its_own_error_and_keeps_the_journal(tmp_path: Path) -> None:
    store = Store(tmp_path)
    run_id = store.start_run(seed=0, argv=[], rootdir=str(tmp_path))
    store.flush()
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own quota: no page more
    for i in range(100):  # fewer than a batch: they wait in the journal for the flush below
        store.add_trial(run_id, TrialRecord("t", "f", f"c{i}", 1, {"i": i}, i, {"m": [i / 3] * 50}))
    with pytest.raises(sqlite3.OperationalError, match=r"^database or disk is full$"):
        store.flush()
    with pytest.raises(sqlite3.OperationalError, match=r"^database or disk is full$"):
        store.close()
    assert (tmp_path / "journal-1.pickle").stat().st_size > 0  # kept, for the next store to recover
    with Store.open_existing(tmp_path) as reader:
        assert len(reader.trials(run_id)) == 100
        assert reader.run(run_id).status == "killed"


# --------------------------------------------------------------------------- whole runs

SPACE_TEST = """
import pytest

@pytest.mark.space({"x": [1, 2, 3, 4, 5, 6]})
def test_a(x, record_metric):
    record_metric("y", x * 2)
"""


@pytest.mark.parametrize("args", [[], ["-q"], ["-n", "2"]], ids=["plain", "quiet", "xdist"])
def test_a_store_that_cannot_be_written_fails_the_run(pytester: pytest.Pytester, args: list[str]) -> None:
    pytester.makepyfile(test_a=SPACE_TEST)
    store = pytester.path / ".pytest-exp"
    store.mkdir()
    (store / FILENAME).write_bytes(b"this is not a database, but it is where the trials should go\n" * 50)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes()["passed"] == 6
    message = (
        f"exp: FAILED to store trials: {pytester.path}/.pytest-exp/exp.sqlite: not a pytest-exp store "
        "(file is not a database); this run fails. Use --exp-store DIR to store them elsewhere, or "
        "--exp-store none to run without storing"
    )
    assert result.outlines.count(message) == 2  # when it happened, and at the end


WRITE_LIMIT_CONFTEST = """
import resource, signal

def pytest_configure(config):
    # No file this process writes grows past 120 kB: the database's WAL file reaches it first,
    # while the journal of what has not been committed since stays below it.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, resource.RLIM_INFINITY))
"""


def test_a_write_error_mid_run_fails_the_run_and_the_next_run_recovers_every_trial(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.space({"x": {"type": "range", "bounds": [0, 600], "dtype": "int"}})
        def test_a(x, record_metric):
            record_metric("y", x / 7)
        """
    )
    pytester.makeconftest(WRITE_LIMIT_CONFTEST)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes()["passed"] == 600
    message = (
        "exp: FAILED to store trials in .pytest-exp/exp.sqlite: disk I/O error; this run fails. "
        "Use --exp-store DIR to store them elsewhere, or --exp-store none to run without storing"
    )
    assert result.outlines.count(message) == 2
    assert "cannot rollback" not in result.stdout.str()
    assert "test_a.py::test_a: 600 trials, 600 configurations (600 passed)" in result.outlines

    (pytester.path / "conftest.py").unlink()
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        (run,) = store.runs()
        stored = store.trials(run.id)
    assert (run.status, len(stored), len({t.config_id for t in stored})) == ("killed", 600, 600)


# --------------------------------------------------------------------------- read-only stores


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[Path]:
    """``directory`` made impossible to write: by its modes, or, for root (whom modes do not
    bind), by a read-only bind mount."""
    if os.geteuid() != 0:
        (directory / FILENAME).chmod(0o444)
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(directory), str(directory)], check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root, and a read-only bind mount is not allowed here")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@pytest.fixture
def read_only_store(tmp_path: Path) -> Iterator[Path]:
    """A store with one finished run, in a directory that cannot be written."""
    directory = tmp_path / "store"
    with Store(directory) as store:
        run_id = store.start_run(seed=3, argv=["-q"], rootdir=str(tmp_path))
        for i in range(3):
            store.add_trial(run_id, trial(i))
        store.finish_run(run_id, status="finished")
    with read_only(directory):
        yield directory


def test_an_older_store_that_cannot_be_written_is_read_as_it_is(tmp_path: Path) -> None:
    # It cannot be migrated: the columns added since its version read as their defaults.
    directory = tmp_path / "store"
    with Store(directory) as store:
        run_id = store.start_run(seed=3, argv=["-q"], rootdir=str(tmp_path))
        store.add_trial(run_id, trial(0))
    db = sqlite3.connect(directory / FILENAME)
    db.execute("ALTER TABLE trials DROP COLUMN steps")
    db.execute("PRAGMA user_version = 2")
    db.close()
    with read_only(directory), Store.open_existing(directory) as store:
        assert store.read_only
        assert [(t.config_id, t.steps) for t in store.trials(run_id)] == [(trial(0).config_id, {})]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_exp", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_runs_and_show_read_a_read_only_store(read_only_store: Path) -> None:
    assert not os.access(read_only_store, os.W_OK)
    note = (
        f"pytest-exp: note: {read_only_store / FILENAME} is read-only: shown as it is, without "
        "recovering killed runs' journals\n"
    )
    runs = cli("runs", "--store", str(read_only_store))
    assert (runs.returncode, runs.stderr) == (0, note)
    fields = runs.stdout.splitlines()[2].split()  # id, date, time, status, trials, seed, ...
    assert (fields[0], *fields[3:6]) == ("1", "finished", "3", "3")
    show = cli("show", "--store", str(read_only_store))
    assert (show.returncode, show.stderr) == (0, note)
    assert "t.py::t: 3 trials, 3 configurations (3 passed)" in show.stdout
    assert sorted(p.name for p in read_only_store.iterdir()) == [FILENAME]  # nothing written


# --------------------------------------------------------------------------- opting out


def test_exp_store_none_stores_nothing_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import pytest

        @pytest.mark.space({"x": [1, 2, 3]})
        def test_a(x, exp_dir, record_metric):
            (exp_dir / "out.txt").write_text(str(x))
            assert exp_dir.parts[-4] == "exp-artifacts"
            record_metric("y", x)
        """
    )
    for args in (["--exp-store", "none"], ["--exp-store", "none", "-n", "2"]):
        result = pytester.runpytest(*args)
        result.assert_outcomes(passed=3)
        assert "exp: trials are not stored (--exp-store none)" in result.outlines
        assert result.outlines[-2] == "trials not stored (--exp-store none)"
    assert not (pytester.path / ".pytest-exp").exists()
    assert not (pytester.path / "none").exists()


# --------------------------------------------------------------------------- signals
#
# Each run is a real pytest process in a session of its own; a trial sends the signal itself, as
# a terminal's Ctrl-C (the whole process group) or a scheduler's SIGTERM would. Whatever the
# signal hit, every trial the terminal reported PASSED is stored passed, pytest's count agrees
# with the store, the trial that was running is stored as interrupted, nothing is stored twice.

SIGNALLED = """
import os, signal, time

import pytest

@pytest.mark.space({{"a": list(range(12))}}{marker})
def test_a(a, record_metric):
    time.sleep(0.05)
    record_metric("loss", float(a))
    if a == {at}:
        {send}
        time.sleep(20)  # where the signal finds it: KeyboardInterrupt ends the trial here
"""


def signalled_run(tmp_path: Path, send: str, *args: str, at: int = 5, marker: str = "") -> tuple[int, str]:
    (tmp_path / "test_s.py").write_text(SIGNALLED.format(send=send, at=at, marker=marker))
    command = [sys.executable, "-m", "pytest", "-v", "-p", "no:randomly", "-p", "no:cacheprovider", *args]
    child = subprocess.Popen(
        command,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # As a terminal starts it: a shell starts background jobs with SIGINT ignored, which the
        # child would inherit (and Python then leaves ignored), so Ctrl-C would never reach it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        out, _ = child.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # workers a killed controller left behind
    return child.returncode, out


def check_signalled(tmp_path: Path, out: str, interrupted: set[str]) -> list[TrialRecord]:
    """The checks above; ``interrupted`` must be stored as such, and so may the trials pytest
    counts as failed (xdist's report of a worker that stopped mid-test) when they had started."""
    with Store.open_existing(tmp_path / ".pytest-exp") as store:
        (run,) = store.runs()
        trials = store.trials(run.id)
    assert run.status == "interrupted", out
    assert len({t.test for t in trials}) == len(trials), out  # nothing twice
    node = re.compile(r"test_s\.py::test_a\[[^\]]+\]")
    shown = {node.findall(line)[0] for line in out.splitlines() if " PASSED" in line}
    passed = {t.test for t in trials if t.status == "passed"}
    assert passed == shown, out
    counted = re.search(r"(\d+) passed", out.splitlines()[-1])
    assert counted is not None, out
    assert int(counted.group(1)) == len(passed), out
    cut = {t.test for t in trials if t.status == "interrupted"}
    assert interrupted <= cut <= interrupted | set(re.findall(r"FAILED (\S+)", out)), out
    assert {t.status for t in trials} <= {"passed", "interrupted"}, out
    return trials


def test_ctrl_c_under_xdist_keeps_every_reported_trial(tmp_path: Path) -> None:
    # 4 runs in 11 lost a trial the terminal had shown PASSED (issue 15).
    rc, out = signalled_run(tmp_path, "os.killpg(os.getpgid(0), signal.SIGINT)", "-n", "2")
    assert rc == pytest.ExitCode.INTERRUPTED, out
    check_signalled(tmp_path, out, {"test_s.py::test_a[a=5]"})


def test_ctrl_c_of_the_controller_alone_lets_the_workers_report(tmp_path: Path) -> None:
    # The workers were not interrupted: they finish their running tests, and all of it is stored.
    send = "os.kill(os.getppid(), signal.SIGINT)  # the worker's parent: the controller\n        return"
    rc, out = signalled_run(tmp_path, send, "-n", "2")
    assert rc == pytest.ExitCode.INTERRUPTED, out
    assert (
        "exp: SIGINT: stopping; waiting up to 30 s for the workers' finished trials "
        "(Ctrl-C again to stop at once)"
    ) in out
    assert "Interrupted: SIGINT: stopped the workers and stored their finished trials" in out
    trials = check_signalled(tmp_path, out, set())
    assert "test_s.py::test_a[a=5]" in {t.test for t in trials if t.status == "passed"}


@pytest.mark.parametrize(
    ("send", "args"),
    [
        ("os.kill(os.getpid(), signal.SIGTERM)", ()),
        ("os.killpg(os.getpgid(0), signal.SIGTERM)", ("-n", "2")),
    ],
    ids=["one-process", "xdist"],
)
def test_sigterm_ends_the_run_as_ctrl_c_does(tmp_path: Path, send: str, args: tuple[str, ...]) -> None:
    # A scheduler's SIGTERM killed the run mid-write; now it ends interrupted, every trial kept.
    rc, out = signalled_run(tmp_path, send, *args)
    assert rc == pytest.ExitCode.INTERRUPTED, out
    check_signalled(tmp_path, out, {"test_s.py::test_a[a=5]"})


def test_a_study_cut_off_counts_only_the_trials_that_ran(tmp_path: Path) -> None:
    # "15 of 40 trials done" with 14 passed: the interrupted trial was counted as done (issue 15).
    (tmp_path / "test_s.py").write_text(
        textwrap.dedent(
            """
            import os, signal, time

            import pytest

            @pytest.mark.space({"x": {"type": "range", "bounds": [0, 1]}}, objective="loss")
            def test_a(x, record_metric, request):
                record_metric("loss", x)
                if request.node.name == "test_a[trial-004]" and "STOP" in os.environ:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(20)
            """
        )
    )
    args = [
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "--exp-optimize",
        "12",
        "--exp-initial-points",
        "3",
    ]
    env = {**os.environ, "STOP": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    out = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.INTERRUPTED, out
    assert re.search(r"^study \w+/\S+: 4 of 12 trials done; new study$", out, re.MULTILINE), out
    assert "4 passed in" in out.splitlines()[-1], out
    with Store.open_existing(tmp_path / ".pytest-exp") as store:
        (run,) = store.runs()
        statuses = [(t.trial, t.status) for t in store.trials(run.id)]
    assert statuses == [(0, "passed"), (1, "passed"), (2, "passed"), (3, "passed"), (4, "interrupted")]
    # The next run resumes with the 4 that ran, and runs trial-004 again.
    again = subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0, again.stdout
    assert re.search(
        r"^study \w+/\S+: 12 of 12 trials done; resumed: 4 trials of earlier runs replayed into the "
        r"optimizer$",
        again.stdout,
        re.MULTILINE,
    ), again.stdout
    assert "8 passed in" in again.stdout.splitlines()[-1], again.stdout


class FakeConfig:
    """What Guard reads of a config: its plugins (xdist's session, the terminal)."""

    def __init__(self, plugins: dict[str, object]) -> None:
        self.pluginmanager = self
        self.plugins = plugins

    def get_plugin(self, name: str) -> object:
        return self.plugins.get(name)


def test_a_signal_during_a_report_waits_for_its_end_and_a_second_does_not() -> None:
    guard = Guard(FakeConfig({}))  # type: ignore[arg-type]
    guard.enter()
    guard._handle(signal.SIGINT, None)  # waits
    with pytest.raises(KeyboardInterrupt):
        guard.leave()
    guard.enter()
    guard._handle(signal.SIGTERM, None)
    with pytest.raises(KeyboardInterrupt):
        guard._handle(signal.SIGINT, None)  # asked twice: at once


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt here even when this process inherited it ignored (a
    shell's background job)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("sigint_raises")
def test_under_xdist_the_first_signal_drains_and_the_wait_is_bounded() -> None:
    dsession = SimpleNamespace(sched=object(), shouldstop=False)
    guard = Guard(FakeConfig({"dsession": dsession}), drain_timeout=0.2)  # type: ignore[arg-type]
    guard._handle(signal.SIGTERM, None)
    assert dsession.shouldstop == "SIGTERM: stopped the workers and stored their finished trials"
    with pytest.raises(KeyboardInterrupt):  # the drain's bound, as a second Ctrl-C would
        time.sleep(30)
    with pytest.raises(KeyboardInterrupt):
        guard._handle(signal.SIGINT, None)
    # A drain the loop finished in time is called off: no interrupt reaches what follows.
    calm = Guard(
        FakeConfig({"dsession": SimpleNamespace(sched=object(), shouldstop=False)}), drain_timeout=0.2
    )  # type: ignore[arg-type]
    calm._handle(signal.SIGINT, None)
    calm.uninstall()
    time.sleep(0.5)


# --------------------------------------------------------------------------- pytest-timeout

TIMED = """
import time

import pytest

@pytest.mark.timeout(1, method="thread")
@pytest.mark.space({"a": [0, 1, 2, 3]})
def test_a(a, record_metric):
    record_metric("loss", a / 2)
    if a == 2:
        time.sleep(60)  # pytest-timeout's thread ends the whole process here
"""


@pytest.mark.parametrize("func_only", ["false", "true"])
def test_a_trial_pytest_timeout_ends_the_run_on_is_stored_as_timeout(tmp_path: Path, func_only: str) -> None:
    # The timed-out trial was missing from the store, its run "killed" (issue 15).
    (tmp_path / "test_t.py").write_text(TIMED)
    (tmp_path / "pytest.ini").write_text(f"[pytest]\ntimeout_func_only = {func_only}\n")
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout
    assert "+ Timeout +" in done.stdout + done.stderr  # pytest-timeout 2.1 writes it to stderr
    with Store.open_existing(tmp_path / ".pytest-exp") as store:  # the next store recovers the journal
        (run,) = store.runs()
        trials = store.trials(run.id)
    assert run.status == "killed"
    assert [(t.params["a"], t.status) for t in trials] == [(0, "passed"), (1, "passed"), (2, "timeout")]
    assert trials[2].message == (
        "the process ended while this trial ran under pytest-timeout's thread method (timeout 1 s), "
        "which ends the process when a test runs over"
    )
    assert trials[2].metrics == {}  # journaled as the call began: what it recorded died with it


# --------------------------------------------------------------------------- kill -9


def stored_after_a_kill(tmp_path: Path) -> tuple[str, list[TrialRecord]]:
    with Store.open_existing(tmp_path / ".pytest-exp") as store:  # recovers the dead run's journal
        (run,) = store.runs()
        trials = store.trials(run.id)
    assert len({t.test for t in trials}) == len(trials)  # nothing twice
    return run.status, trials


def test_kill_9_of_the_run_keeps_every_finished_trial(tmp_path: Path) -> None:
    rc, out = signalled_run(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)")
    assert rc == -signal.SIGKILL, out
    status, trials = stored_after_a_kill(tmp_path)
    assert status == "killed"
    assert [(t.params["a"], t.status) for t in trials] == [(a, "passed") for a in range(5)]


def test_kill_9_of_a_worker_crashes_its_trial_only(tmp_path: Path) -> None:
    rc, out = signalled_run(tmp_path, "os.kill(os.getpid(), signal.SIGKILL)", "-n", "2")
    assert rc == pytest.ExitCode.TESTS_FAILED, out
    assert "12 trials, 12 configurations (11 passed, 1 crashed)" in out
    with Store.open_existing(tmp_path / ".pytest-exp") as store:
        (run,) = store.runs()
        trials = store.trials(run.id)
    assert run.status == "finished"
    assert sorted((t.params["a"], t.status) for t in trials) == [
        (a, "crashed" if a == 5 else "passed") for a in range(12)
    ]


def test_kill_9_of_the_controller_under_xdist_keeps_what_it_was_told(tmp_path: Path) -> None:
    # The workers die with their channel. What the controller had read is stored once; a trial a
    # worker finished and the controller never heard of is lost with it (workers keep no journal).
    rc, out = signalled_run(tmp_path, "os.kill(os.getppid(), signal.SIGKILL)", "-n", "2")
    assert rc == -signal.SIGKILL, out
    status, trials = stored_after_a_kill(tmp_path)
    assert status == "killed"
    assert {t.status for t in trials} == {"passed"}
    assert {t.params["a"] for t in trials} < set(range(12)) - {5}


def test_a_worker_dying_after_its_trial_reported_does_not_store_it_twice(tmp_path: Path) -> None:
    # The teardown's report reached the controller, then the worker died before it said the item
    # was done: xdist's crash report for it stored the trial a second time, as crashed.
    (tmp_path / "conftest.py").write_text(
        "import os\n\n"
        "WORKER = []\n\n"
        "def pytest_configure(config):\n"
        "    WORKER.append(hasattr(config, 'workerinput'))  # the controller relays logfinish too\n\n"
        "def pytest_runtest_logfinish(nodeid):\n"
        "    if nodeid.endswith('[a=5]') and WORKER[0]:\n"
        "        os._exit(1)\n"
    )
    rc, out = signalled_run(tmp_path, "pass", "-n", "2", at=-1)  # no trial sends anything
    assert rc == pytest.ExitCode.TESTS_FAILED, out  # xdist counts its crash report as a failure
    status, trials = stored_after_a_kill(tmp_path)  # nothing twice
    assert status == "finished"
    assert sorted((t.params["a"], t.status) for t in trials) == [(a, "passed") for a in range(12)]
