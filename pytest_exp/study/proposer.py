"""The proposer: owns the studies of a run and hands out their points, in the controller (or
the only process), and the handle xdist workers ask it through (see :mod:`pytest_exp.study.wire`).

Every wait has a bound: a client that errs or stalls is dropped without delaying the others, and
a worker that gets no point fails that trial with a message. Results are told in the controller,
from the reports it receives, so a worker that dies mid-trial loses nothing the proposer knew.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from pytest_exp.space import Space
from pytest_exp.study import backend, wire
from pytest_exp.study.pruning import Curve
from pytest_exp.study.resume import counts_towards_budget, resumed_seed
from pytest_exp.study.study import Finished, Study, objective_curve, objective_value
from pytest_exp.trial import Point, TrialRecord, objectives, plain, safe_name

# Every wait of the protocol is bounded by one of these (seconds).
# A worker's connection and key exchange: the controller answers each connection at once in a
# thread of its own, taking no lock, so only a machine starved of CPU comes near this.
CONNECT_TIMEOUT = 30.0
# A point: an ask waits its turn behind the other workers' asks and the controller's results
# (each may refit the model), and a study's first ask imports its backend and replays the
# stored trials. Well past that, an unanswered ask means a stuck controller.
ANSWER_TIMEOUT = 600.0
# What the controller gives a client to prove the key: a worker needs no time at all.
KEY_TIMEOUT = 30.0
# The rest of a request, once its first byte came: a worker sends it in one piece. Between
# requests a worker's connection waits without a bound for its next trial (which may run for
# hours), until the session's end shuts it down.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class StudySpec:
    """What a process asking for a point says of its study: enough to start it anywhere."""

    key: str
    function: str
    space: dict[str, Any]  # Space.to_dict(): plain data
    objective: str | None
    budget: int
    settings: dict[str, Any]
    backend: str = backend.DEFAULT
    pruner: str = "none"
    prune_warmup: int = 0


class Proposing(Protocol):
    """What a running trial asks, for its point at setup and whether to stop (pruning): the
    proposer itself, or a worker's handle on it."""

    def ask(self, spec: StudySpec, index: int) -> Point: ...

    def prune(self, spec: StudySpec, index: int, curve: Curve) -> str | None: ...


class Proposer:
    """Owns the studies of this run. Thread-safe: the server serves workers from threads.

    ``history`` gives a study's stored trials, ``previous`` the latest stored study of a test
    function and its run (see :class:`~pytest_exp.study.resume.StoredStudies`).
    """

    def __init__(
        self,
        history: Callable[[str], list[TrialRecord]],
        previous: Callable[[str], tuple[str, int] | None],
    ) -> None:
        self._history = history
        self._previous = previous
        self._lock = threading.Lock()
        self.studies: dict[str, Study] = {}
        self.origins: dict[str, str] = {}  # how each study began: resumed, new, restarted
        self.resumed: set[str] = set()  # test functions whose study has trials of earlier runs
        self.functions: dict[str, str] = {}

    def ask(self, spec: StudySpec, index: int) -> Point:
        with self._lock:
            # A copy (plain copies arrays and tables): a test that changes its list must change
            # neither the study's point nor the space's values.
            point: Point = plain(self._study(spec).ask(index))
            return point

    def prune(self, spec: StudySpec, index: int, curve: Curve) -> str | None:
        with self._lock:
            return self._study(spec).prune(index, curve)

    def _study(self, spec: StudySpec) -> Study:
        study = self.studies.get(spec.key)
        if study is None:
            study = self.studies[spec.key] = self._start(spec)
        return study

    def tell(self, record: TrialRecord) -> None:
        with self._lock:
            study = self.studies.get(record.study or "")
            # A trial cut off by an interruption did not run: it is not done, nor a failure.
            if study is not None and record.trial is not None and counts_towards_budget(record):
                told = _finished(record)
                study.tell(told.number, told.value, told.curve, pruned=told.pruned)

    def _start(self, spec: StudySpec) -> Study:
        named = objectives(spec.objective) if spec.objective else ()
        objective = named[0] if named else None
        space = Space.from_dict(spec.space, source=spec.function)
        done = [r for r in self._history(spec.key) if counts_towards_budget(r)]
        settings = {**spec.settings, "seed": resumed_seed(spec.settings["seed"], len(done))}
        optimizer = backend.load(spec.backend).create(space, settings)
        study = Study(
            spec.key, objective, spec.budget, optimizer, spec.pruner, spec.prune_warmup, objectives=named
        )
        study.replay([_finished(r) for r in done])
        self.functions[spec.key] = spec.function
        self.origins[spec.key] = self._origin(spec, len(done))
        if done:
            self.resumed.add(spec.function)
        return study

    def _origin(self, spec: StudySpec, replayed: int) -> str:
        if replayed:
            return f"resumed: {replayed} trials of earlier runs replayed into the optimizer"
        previous = self._previous(spec.function)
        if previous is None or previous[0] == spec.key:
            return "new study"
        if previous[0].split("/")[0] == spec.key.split("/")[0]:
            return f"started over (--exp-fresh); the study of run {previous[1]} stays in the store"
        return f"the space changed since run {previous[1]}: a new study (the old one stays in the store)"

    def plot(self, path: Path) -> list[tuple[str, Path]]:
        """A convergence plot per study (the Pareto front of a multi-objective one): ``path``
        itself for one study, ``path-<test>.png`` for several."""
        from pytest_exp.report import convergence_plot, front_plot

        written = []
        for key, study in self.studies.items():
            function = self.functions[key]
            target = path
            if len(self.studies) > 1:
                target = path.with_name(f"{path.stem}-{safe_name(function)}{path.suffix}")
            if len(study.objectives) > 1:
                done = [(i, y) for i, y in sorted(study.finished.items()) if isinstance(y, tuple)]
                front_plot(target, function, done, [i for i, _ in study.front()], study.objectives)
                written.append(("Pareto front plot", target))
            else:
                values = [(i, y) for i, y in sorted(study.finished.items()) if not isinstance(y, tuple)]
                convergence_plot(target, function, values, study.objective)
                written.append(("convergence plot", target))
        return written

    def summaries(self) -> dict[str, str]:
        """One line per study, by test function: progress, how it began, and the best trial."""
        lines = {}
        for key, study in self.studies.items():
            done = len(study.finished)
            line = f"study {key}: {done} of {study.budget} trials done; {self.origins[key]}"
            best = study.best()
            if len(study.objectives) > 1:
                line += self._front_lines(study)
            elif best is not None:
                index, value = best
                name = study.objective.name if study.objective else "objective"
                params = ", ".join(f"{k}={v!r}" for k, v in study.assigned[index].items())
                line += f"\nbest of the study: trial-{index:03d} {name}={value:.6g} ({params})"
            lines[self.functions[key]] = line
        return lines

    @staticmethod
    def _front_lines(study: Study) -> str:
        front = study.front()
        if not front:
            return "\nPareto front of the study: no trial has finished with every objective yet"
        shown = ", ".join(str(o) for o in study.objectives)
        text = f"\nPareto front of the study ({len(front)} of {len(study.finished)} trials; {shown}):"
        for index, values in front:
            scores = " ".join(f"{o.name}={v:.6g}" for o, v in zip(study.objectives, values, strict=True))
            params = ", ".join(f"{k}={v!r}" for k, v in study.assigned[index].items())
            text += f"\n  trial-{index:03d} {scores} ({params})"
        return text


def _finished(record: TrialRecord) -> Finished:
    assert record.trial is not None  # a study's trial
    curve = objective_curve(record)
    return Finished(record.trial, record.params, objective_value(record), curve, record.status == "pruned")


class ProposerError(RuntimeError):
    """The proposer could not give a point; the trial errors at setup with this message."""


class ProposerServer:
    """Serves a proposer to xdist workers on 127.0.0.1, each connection in a thread of its own
    from its key exchange on: a client that errs, stalls or leaves costs only itself.

    ``dropped`` counts the clients dropped, by why (what a stray or broken client did).
    """

    def __init__(
        self,
        proposer: Proposing,
        *,
        key_timeout: float = KEY_TIMEOUT,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.proposer = proposer
        self.authkey = os.urandom(32)
        self.key_timeout = key_timeout
        self.request_timeout = request_timeout
        self.dropped: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._socket = socket.create_server(("127.0.0.1", 0))
        host, port = self._socket.getsockname()[:2]
        self.address: tuple[str, int] = (host, port)
        self._thread = threading.Thread(target=self._accept, name="pytest-exp-proposer", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._socket.accept()
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)  # a client reset before it was accepted, or no descriptor left
                continue
            try:
                threading.Thread(
                    target=self._serve, args=(sock,), name="pytest-exp-client", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: that client only
                sock.close()

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            with self._lock:
                if self._closed:
                    return
                self._open.add(sock)
            try:
                channel = wire.Channel(sock)
                if self._admit(channel):
                    self._answer(channel)
            finally:
                with self._lock:
                    self._open.discard(sock)

    def _admit(self, channel: wire.Channel) -> bool:
        """The key exchange: the client proves the key on our challenge, then we prove it on its."""
        deadline = time.monotonic() + self.key_timeout
        challenge = os.urandom(wire.NONCE)
        try:
            channel.send(wire.HELLO + challenge, deadline)
            answer = channel.recv(wire.KEY_LIMIT, deadline)
            given, theirs = answer[: -wire.NONCE], answer[-wire.NONCE :]
            expected = wire.proof(self.authkey, wire.WORKER, challenge)
            if len(answer) != 2 * wire.NONCE or not wire.same(given, expected):
                with contextlib.suppress(OSError, TimeoutError):
                    channel.send(wire.REFUSED, deadline)
                return self._drop("refused: a wrong key")
            channel.send(wire.WELCOME + wire.proof(self.authkey, wire.PROPOSER, theirs), deadline)
            return True
        except TimeoutError:
            return self._drop(f"no key within {self.key_timeout:g} s")
        except (EOFError, ConnectionError):  # it left (a reset when it left before our greeting)
            return self._drop("closed before proving the key")
        except wire.TooLong:
            return self._drop("a message over the size limit before proving the key")
        except OSError as e:
            return self._drop(f"{type(e).__name__} before proving the key")

    def _answer(self, channel: wire.Channel) -> None:
        """Answer a worker's requests, one at a time, until it closes or the session ends."""
        try:
            while channel.wait():
                request = channel.recv(wire.LIMIT, time.monotonic() + self.request_timeout)
                channel.send(self._reply(request), time.monotonic() + self.request_timeout)
        except TimeoutError:
            self._drop(f"stalled mid-request for {self.request_timeout:g} s")
        except (EOFError, ConnectionError):
            self._drop("closed mid-request")
        except wire.TooLong:
            self._drop("a request over the size limit")
        except OSError as e:
            self._drop(f"{type(e).__name__} mid-request")

    def _reply(self, request: bytes) -> bytes:
        import pickle

        try:
            kind, fields, index, curve = pickle.loads(request)  # from a client that proved the key
            spec = StudySpec(**fields)
            if kind == "prune":
                return pickle.dumps(("ok", self.proposer.prune(spec, index, curve)))
            return pickle.dumps(("ok", self.proposer.ask(spec, index)))
        except Exception as e:  # the worker reports it as its trial's setup error
            return pickle.dumps(("error", f"{type(e).__name__}: {e}"))

    def _drop(self, why: str) -> bool:
        """Count a client dropped for ``why``; not when the server's own close cut it off."""
        with self._lock:
            if not self._closed:
                self.dropped[why] += 1
        return False

    def close(self) -> None:
        """Stop serving: the accept loop and every connection's thread end now."""
        with self._lock:
            self._closed = True
            connections, self._open = list(self._open), set()
        for sock in [self._socket, *connections]:
            with contextlib.suppress(OSError):  # a listening socket may refuse it (not on Linux)
                sock.shutdown(socket.SHUT_RDWR)
        self._socket.close()


_CONNECT_TODO = (
    "the xdist controller serves it to its workers on 127.0.0.1: allow loopback connections "
    "between pytest's processes, or run without -n"
)
_STUCK_TODO = (
    "the controller is stuck or overloaded: rerun (the study resumes from its stored trials), "
    "or run without -n"
)
_KEY_TODO = (
    "the key comes from this run's controller in the worker's workerinput (exp_authkey): "
    "check that no plugin changes it"
)
_OTHER_TODO = "another process answers at that address: rerun"
_ASK_TODO = (
    "the controller is stuck, overloaded or stopping (see its output): "
    "rerun (the study resumes from its stored trials)"
)


class RemoteProposer:
    """A worker's handle on the controller's proposer. Every wait has a bound: a trial that gets
    no point fails at setup with a :class:`ProposerError` that says where, what was tried, how
    long it waited and what to do, and the next trial connects afresh."""

    def __init__(
        self,
        address: tuple[str, int],
        authkey: bytes,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        host, port = address  # execnet hands a tuple over as a list
        self._address = (str(host), int(port))
        self._authkey = authkey
        self.connect_timeout = connect_timeout
        self.answer_timeout = answer_timeout
        self._channel: wire.Channel | None = None
        self._closer: weakref.finalize[Any, Any] | None = None

    def ask(self, spec: StudySpec, index: int) -> Point:
        return dict(self._request("ask", spec, index, []))

    def prune(self, spec: StudySpec, index: int, curve: Curve) -> str | None:
        reason: str | None = self._request("prune", spec, index, curve)
        return reason

    def _request(self, kind: str, spec: StudySpec, index: int, curve: Curve) -> Any:
        import pickle

        what = "point" if kind == "ask" else "pruning decision"
        trial = f"{what} for trial-{index:03d} of {spec.function}"
        channel = self._channel
        if channel is None:
            channel = self._channel = self._connect(trial)
        started = time.monotonic()
        deadline = started + self.answer_timeout
        try:
            channel.send(pickle.dumps((kind, asdict(spec), index, curve)), deadline)  # plain data only
            reply = channel.recv(wire.LIMIT, deadline)
        except (OSError, EOFError, wire.TooLong) as e:
            self.close()
            raise self._failure(trial, "asking", _why(e), started, self.answer_timeout, _ASK_TODO) from None
        try:
            status, value = pickle.loads(reply)
        except Exception as e:  # from the proposer, which proved the key: a bug, said as one
            self.close()
            why = f"its reply could not be read ({type(e).__name__}: {e})"
            raise self._failure(trial, "asking", why, started, self.answer_timeout, _ASK_TODO) from None
        if status != "ok":
            raise ProposerError(value)
        return value

    def _connect(self, trial: str) -> wire.Channel:
        """Connect and exchange keys, within ``connect_timeout`` in all."""
        started = time.monotonic()
        deadline = started + self.connect_timeout
        allowed = self.connect_timeout
        try:
            sock = socket.create_connection(self._address, timeout=allowed)
        except OSError as e:
            why = "no connection" if isinstance(e, TimeoutError) else e.strerror or type(e).__name__
            raise self._failure(trial, "connecting to", why, started, allowed, _CONNECT_TODO) from None
        closer = weakref.finalize(self, sock.close)  # at exit too: no ResourceWarning for -W error
        try:
            channel = wire.Channel(sock)
            hello = channel.recv(wire.KEY_LIMIT, deadline)
            if not hello.startswith(wire.HELLO) or len(hello) != len(wire.HELLO) + wire.NONCE:
                why = "what answers is not a pytest-exp proposer"
                raise self._failure(trial, "exchanging keys with", why, started, allowed, _OTHER_TODO)
            ours = os.urandom(wire.NONCE)
            channel.send(wire.proof(self._authkey, wire.WORKER, hello[len(wire.HELLO) :]) + ours, deadline)
            reply = channel.recv(wire.KEY_LIMIT, deadline)
            if reply == wire.REFUSED:
                why = "it refused this worker's key"
                raise self._failure(trial, "exchanging keys with", why, started, allowed, _KEY_TODO)
            if not wire.same(reply, wire.WELCOME + wire.proof(self._authkey, wire.PROPOSER, ours)):
                why = "it did not prove this run's key"
                raise self._failure(trial, "exchanging keys with", why, started, allowed, _OTHER_TODO)
        except (OSError, EOFError, wire.TooLong) as e:
            closer()
            raise self._failure(
                trial, "exchanging keys with", _why(e), started, allowed, _STUCK_TODO
            ) from None
        except ProposerError:
            closer()
            raise
        self._closer = closer
        return channel

    def _failure(
        self, trial: str, step: str, why: str, started: float, allowed: float, todo: str
    ) -> ProposerError:
        host, port = self._address
        waited = time.monotonic() - started
        return ProposerError(
            f"no {trial}: {step} the proposer at {host}:{port} failed: {why} "
            f"(waited {waited:.1f} s of {allowed:g} s allowed); {todo}"
        )

    def close(self) -> None:
        """Drop the connection; the next ask connects afresh."""
        if self._closer is not None:
            self._closer()
        self._channel = self._closer = None


def _why(error: BaseException) -> str:
    """What went wrong on a connection that was open."""
    if isinstance(error, TimeoutError):
        return "no answer"
    if isinstance(error, (EOFError, ConnectionError)):  # a reset, when it closed with our bytes unread
        return "it closed the connection"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)
