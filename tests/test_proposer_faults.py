"""Faults at the proposer's connection (issue 15, item 1): a stray, silent, garbled or wrongly
keyed client costs only itself, and a worker that gets no point fails that trial, in bounded
time, with a message naming the address, what it tried, how long it waited and what to do.

Session tests run the inner pytest in a subprocess with a timeout, so a hang fails them."""

from __future__ import annotations

import os
import pickle
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from pytest_exp.store import Store
from pytest_exp.study.proposer import ProposerError, ProposerServer, RemoteProposer, StudySpec
from pytest_exp.trial import Point

SPEC = StudySpec(key="k/1", function="t.py::t", space={}, objective=None, budget=9, settings={})

CONNECT_TODO = (
    "the xdist controller serves it to its workers on 127.0.0.1: allow loopback connections "
    "between pytest's processes, or run without -n"
)
STUCK_TODO = (
    "the controller is stuck or overloaded: rerun (the study resumes from its stored trials), "
    "or run without -n"
)
KEY_TODO = (
    "the key comes from this run's controller in the worker's workerinput (exp_authkey): "
    "check that no plugin changes it"
)
OTHER_TODO = "another process answers at that address: rerun"
ASK_TODO = (
    "the controller is stuck, overloaded or stopping (see its output): "
    "rerun (the study resumes from its stored trials)"
)


def expected(text: str) -> re.Pattern[str]:
    """The exact message, but for the seconds it measured (written WAITED)."""
    return re.compile(re.escape(text).replace("WAITED", r"\d+\.\d"))


def message(
    trial: int, step: str, address: tuple[str, int], why: str, allowed: str, todo: str, test: str = "t.py::t"
) -> re.Pattern[str]:
    host, port = address
    return expected(
        f"no point for trial-{trial:03d} of {test}: {step} the proposer at {host}:{port} failed: "
        f"{why} (waited WAITED s of {allowed} s allowed); {todo}"
    )


class Points:
    """A stand-in proposer: trial i gets x=i; while ``hold`` is clear, every ask waits for it."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.hold.set()
        self.on_ask: Callable[[], None] = lambda: None

    def ask(self, spec: StudySpec, index: int) -> Point:
        self.on_ask()
        self.hold.wait(30)
        return {"x": index}


@pytest.fixture
def points() -> Iterator[Points]:
    points = Points()
    yield points
    points.hold.set()  # no server thread outlives the test waiting


@pytest.fixture
def server(points: Points) -> Iterator[ProposerServer]:
    server = ProposerServer(points, key_timeout=2.0, request_timeout=2.0)
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[Callable[..., RemoteProposer]]:
    made: list[RemoteProposer] = []

    def make(address: tuple[str, int], key: bytes, **timeouts: float) -> RemoteProposer:
        made.append(
            RemoteProposer(address, key, **{"connect_timeout": 5.0, "answer_timeout": 5.0, **timeouts})
        )
        return made[-1]

    yield make
    for proposer in made:
        proposer.close()


def dropped(server: ProposerServer, within: float = 10.0) -> Counter[str]:
    """What the server dropped, once it dropped something (its threads report on their own)."""
    deadline = time.monotonic() + within
    while not server.dropped and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and anything dropped with it
    return server.dropped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --------------------------------------------------------------------------- the server


def stray_close(address: tuple[str, int]) -> None:
    socket.create_connection(address).close()


def stray_garbage(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(1024)  # our greeting; then the server hangs up


def stray_half_frame(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as s:
        s.sendall(b"\x00\x00")


@pytest.mark.parametrize(
    ("stray", "why"),
    [
        (stray_close, "closed before proving the key"),
        (stray_garbage, "a message over the size limit before proving the key"),
        (stray_half_frame, "closed before proving the key"),
    ],
    ids=["close", "garbage", "half-a-frame"],
)
def test_a_stray_client_costs_only_itself(
    server: ProposerServer, client: Callable[..., RemoteProposer], stray: Callable[..., None], why: str
) -> None:
    before = client(server.address, server.authkey)
    assert before.ask(SPEC, 0) == {"x": 0}
    stray(server.address)
    assert dropped(server) == Counter({why: 1})
    assert before.ask(SPEC, 1) == {"x": 1}  # connected before: still served
    assert client(server.address, server.authkey).ask(SPEC, 2) == {"x": 2}  # and a newcomer


def test_a_wrong_key_is_refused_with_a_message_and_others_are_served(
    server: ProposerServer, client: Callable[..., RemoteProposer]
) -> None:
    wrong = client(server.address, b"not the key")
    with pytest.raises(ProposerError) as raised:
        wrong.ask(SPEC, 3)
    assert message(
        3, "exchanging keys with", server.address, "it refused this worker's key", "5", KEY_TODO
    ).fullmatch(str(raised.value))
    assert dropped(server) == Counter({"refused: a wrong key": 1})
    assert client(server.address, server.authkey).ask(SPEC, 4) == {"x": 4}


def test_a_silent_client_delays_no_one_and_is_dropped_at_its_bound(
    server: ProposerServer, client: Callable[..., RemoteProposer]
) -> None:
    with socket.create_connection(server.address) as silent:
        connected = time.monotonic()
        assert client(server.address, server.authkey).ask(SPEC, 0) == {"x": 0}
        assert time.monotonic() - connected < 1.0  # served while the silent client waits for its bound
        silent.settimeout(10)
        received = b""
        while chunk := silent.recv(1024):  # the greeting, then the end of the connection
            received += chunk
        waited = time.monotonic() - connected
    assert received.startswith(b"\x00\x00\x00\x36pytest-exp proposer 1\n")
    assert 2.0 <= waited < 8.0
    assert server.dropped == Counter({"no key within 2 s": 1})


def authenticated(proposer: RemoteProposer) -> socket.socket:
    """The socket of a worker that proved the key: what a broken worker would write on."""
    assert proposer.ask(SPEC, 0) == {"x": 0}
    assert proposer._channel is not None
    return proposer._channel.sock


@pytest.mark.parametrize(
    ("request_bytes", "then_close", "why"),
    [
        ((100).to_bytes(4, "big") + b"abc", True, "closed mid-request"),
        ((100).to_bytes(4, "big") + b"abc", False, "stalled mid-request for 2 s"),
        (b"\xff\xff\xff\xff", False, "a request over the size limit"),
    ],
    ids=["leaves", "stalls", "oversized"],
)
def test_a_worker_broken_mid_request_costs_only_itself(
    server: ProposerServer,
    client: Callable[..., RemoteProposer],
    request_bytes: bytes,
    then_close: bool,
    why: str,
) -> None:
    other = client(server.address, server.authkey)
    assert other.ask(SPEC, 1) == {"x": 1}
    broken = client(server.address, server.authkey)
    sock = authenticated(broken)
    sock.sendall(request_bytes)
    if then_close:
        broken.close()
    assert dropped(server) == Counter({why: 1})
    assert other.ask(SPEC, 2) == {"x": 2}
    assert client(server.address, server.authkey).ask(SPEC, 3) == {"x": 3}


def test_an_unreadable_request_is_answered_with_an_error_and_the_connection_stays(
    server: ProposerServer, client: Callable[..., RemoteProposer]
) -> None:
    proposer = client(server.address, server.authkey)
    sock = authenticated(proposer)
    sock.sendall(len(b"not a pickle").to_bytes(4, "big") + b"not a pickle")
    assert proposer._channel is not None
    reply = proposer._channel.recv(1 << 20, time.monotonic() + 5)
    assert pickle.loads(reply) == ("error", "UnpicklingError: invalid load key, 'n'.")
    assert proposer.ask(SPEC, 5) == {"x": 5}
    assert server.dropped == Counter()


def test_close_ends_the_accept_loop_and_every_connection(
    server: ProposerServer, client: Callable[..., RemoteProposer]
) -> None:
    proposer = client(server.address, server.authkey)
    assert proposer.ask(SPEC, 0) == {"x": 0}
    server.close()
    server._thread.join(5)
    assert not server._thread.is_alive()
    with pytest.raises(ProposerError) as raised:
        proposer.ask(SPEC, 1)
    assert message(1, "asking", server.address, "it closed the connection", "5", ASK_TODO).fullmatch(
        str(raised.value)
    )
    with pytest.raises(ProposerError) as raised:
        proposer.ask(SPEC, 2)  # connects afresh: nothing listens now
    why = "Connection refused"
    assert message(2, "connecting to", server.address, why, "5", CONNECT_TODO).fullmatch(str(raised.value))


# --------------------------------------------------------------------------- the worker


def test_nothing_listening_fails_the_trial_at_once(client: Callable[..., RemoteProposer]) -> None:
    address = ("127.0.0.1", free_port())
    started = time.monotonic()
    with pytest.raises(ProposerError) as raised:
        client(address, b"key").ask(SPEC, 3)
    assert time.monotonic() - started < 2.0
    assert message(3, "connecting to", address, "Connection refused", "5", CONNECT_TODO).fullmatch(
        str(raised.value)
    )


def test_a_silent_proposer_fails_the_trial_at_the_connect_bound(
    client: Callable[..., RemoteProposer],
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:  # connections wait in its backlog, unanswered
        address = listening.getsockname()[:2]
        started = time.monotonic()
        with pytest.raises(ProposerError) as raised:
            client(address, b"key", connect_timeout=0.5).ask(SPEC, 3)
        waited = time.monotonic() - started
    assert 0.5 <= waited < 3.0
    assert message(3, "exchanging keys with", address, "no answer", "0.5", STUCK_TODO).fullmatch(
        str(raised.value)
    )


def impostor(greeting: bytes, reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A server that greets and replies with what it is given, whatever the client says."""
    listening = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        sock, _ = listening.accept()
        with sock:
            sock.sendall(len(greeting).to_bytes(4, "big") + greeting)
            sock.recv(1024)
            sock.sendall(len(reply).to_bytes(4, "big") + reply)
            sock.recv(1024)  # until the client hangs up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listening, thread


@pytest.mark.parametrize(
    ("greeting", "reply", "why"),
    [
        (b"#CHALLENGE#{sha256}" + bytes(40), b"", "what answers is not a pytest-exp proposer"),
        (b"pytest-exp proposer 1\n" + bytes(32), b"welcome\n" + bytes(32), "it did not prove this run's key"),
    ],
    ids=["another-protocol", "unproven-key"],
)
def test_a_process_that_is_not_the_proposer_is_not_trusted(
    client: Callable[..., RemoteProposer], greeting: bytes, reply: bytes, why: str
) -> None:
    listening, thread = impostor(greeting, reply)
    with listening:
        address = listening.getsockname()[:2]
        with pytest.raises(ProposerError) as raised:
            client(address, b"key").ask(SPEC, 3)
        thread.join(5)
    assert message(3, "exchanging keys with", address, why, "5", OTHER_TODO).fullmatch(str(raised.value))


def test_no_answer_fails_the_trial_at_its_bound_and_the_next_trial_connects_afresh(
    server: ProposerServer, points: Points, client: Callable[..., RemoteProposer]
) -> None:
    proposer = client(server.address, server.authkey, answer_timeout=0.5)
    points.hold.clear()
    started = time.monotonic()
    with pytest.raises(ProposerError) as raised:
        proposer.ask(SPEC, 3)
    waited = time.monotonic() - started
    assert 0.5 <= waited < 3.0
    assert message(3, "asking", server.address, "no answer", "0.5", ASK_TODO).fullmatch(str(raised.value))
    points.hold.set()
    assert proposer.ask(SPEC, 4) == {"x": 4}


def test_a_proposer_that_stops_mid_answer_fails_the_trial(
    server: ProposerServer, points: Points, client: Callable[..., RemoteProposer]
) -> None:
    points.on_ask = server.close  # the session ends while a worker waits for its point
    with pytest.raises(ProposerError) as raised:
        client(server.address, server.authkey).ask(SPEC, 3)
    assert message(3, "asking", server.address, "it closed the connection", "5", ASK_TODO).fullmatch(
        str(raised.value)
    )


def test_the_proposers_own_error_is_the_trials(
    server: ProposerServer, points: Points, client: Callable[..., RemoteProposer]
) -> None:
    def fail() -> None:
        raise TypeError("unhashable type: 'list'")

    points.on_ask = fail
    with pytest.raises(ProposerError, match=r"^TypeError: unhashable type: 'list'$"):
        client(server.address, server.authkey).ask(SPEC, 3)
    assert server.dropped == Counter()


# --------------------------------------------------------------------------- whole sessions

STRAY_THEN_CRASH = """
import os, socket, subprocess, sys, pytest
from multiprocessing.connection import Client

FAULT = {fault!r}

def fault(host, port):
    if FAULT == "close":
        socket.create_connection((host, port)).close()
    elif FAULT == "garbage":
        with socket.create_connection((host, port)) as s:
            s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    elif FAULT == "wrong-key":
        try:
            Client((host, port), authkey=b"not the key").close()
        except Exception:
            pass
    elif FAULT == "silent":  # held open by a process that outlives this worker
        code = (
            "import socket, sys, time; s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); "
            "print(flush=True); time.sleep(300)"
        )
        helper = subprocess.Popen(
            [sys.executable, "-c", code, host, str(port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        helper.stdout.readline()
        with open("helper.pid", "w") as f:
            f.write(str(helper.pid))

@pytest.mark.space({{"x": {{"type": "range", "bounds": [-5, 5]}}}})
def test_quad(x, record_metric, request):
    if request.config.workerinput["workerid"] in ("gw0", "gw1"):  # the first two workers
        fault(*request.config.workerinput["exp_proposer"])
        os._exit(1)  # dies: its replacement must reach the proposer
    record_metric("y", x * x)
"""

ARGS = ("-p", "no:cacheprovider", "-n", "2", "--exp-surrogate", "random")


@pytest.mark.parametrize("fault", ["close", "garbage", "wrong-key", "silent"])
def test_a_stray_client_then_a_crash_leaves_the_study_whole(pytester: pytest.Pytester, fault: str) -> None:
    pytester.makepyfile(test_quad=STRAY_THEN_CRASH.format(fault=fault))
    try:
        result = pytester.runpytest_subprocess(*ARGS, "--exp-optimize", "8", timeout=120)
    finally:
        helper = pytester.path / "helper.pid"
        if helper.exists():
            os.kill(int(helper.read_text()), signal.SIGKILL)
    result.assert_outcomes(passed=6, failed=2)
    with Store.open_existing(pytester.path / ".pytest-exp") as store:
        trials = [t for run in store.runs() for t in store.trials(run.id)]
    assert sorted(t.trial for t in trials) == list(range(8))
    assert sorted((t.status, t.worker) for t in trials if t.status == "crashed") == [
        ("crashed", "gw0"),
        ("crashed", "gw1"),
    ]
    assert {t.worker for t in trials if t.status == "passed"} <= {"gw2", "gw3"}  # the replacements


REDIRECT = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        workerinput[{key!r}] = {value!r}
"""

QUAD = """
import pytest

@pytest.mark.space({"x": {"type": "range", "bounds": [-5, 5]}})
def test_quad(x, record_metric):
    record_metric("y", x * x)
"""


@pytest.mark.parametrize("case", ["unreachable", "wrong-key"])
def test_a_worker_without_its_proposer_fails_each_trial_with_a_message(
    pytester: pytest.Pytester, case: str
) -> None:
    if case == "unreachable":
        address = ("127.0.0.1", free_port())
        pytester.makeconftest(REDIRECT.format(key="exp_proposer", value=address))
        step, why, todo = "connecting to", "Connection refused", CONNECT_TODO
    else:
        pytester.makeconftest(REDIRECT.format(key="exp_authkey", value=b"not the key"))
        step, why, todo = "exchanging keys with", "it refused this worker's key", KEY_TODO
    pytester.makepyfile(test_quad=QUAD)
    result = pytester.runpytest_subprocess(*ARGS, "--exp-optimize", "4", timeout=120)
    result.assert_outcomes(errors=4)
    lines = [line for line in result.outlines if line.startswith("no point for ")]
    assert len(lines) == 4
    for line in lines:
        trial = int(line.split("trial-")[1][:3])
        host, port = line.split("the proposer at ")[1].split(" ")[0].split(":")
        if case == "unreachable":
            assert (host, int(port)) == address
        assert message(trial, step, (host, int(port)), why, "30", todo, "test_quad.py::test_quad").fullmatch(
            line
        )
    assert "Traceback" not in result.stdout.str()
    assert "proposer.py" not in result.stdout.str()
