"""Stopping a run without losing a trial: Ctrl-C (SIGINT) and SIGTERM in the process that keeps
the results.

Python raises KeyboardInterrupt wherever the main thread is. Between the terminal printing a
trial PASSED and the store writing it, that loses the trial; under xdist it also drops every
report the workers had sent and the controller had not read. So, in the controller:

- while a report is being handled, a signal waits until every hook has seen the report;
- under xdist, the first signal asks the workers to stop and keeps reading their reports until
  they are down (at most ``DRAIN_TIMEOUT`` seconds); the second stops at once;
- SIGTERM (a scheduler preempting the job) is handled as Ctrl-C, so the run ends interrupted
  with every finished trial stored instead of dying mid-write.

xdist workers have the same guard: a signal waits until a report is sent, and SIGTERM ends the
running test as Ctrl-C does, so its trial is stored as interrupted rather than crashed.

Handlers are installed only over Python's defaults: a handler the user's code set is left alone.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

DRAIN_TIMEOUT = 30.0
Handler = Callable[[int, FrameType | None], Any] | int | None
SIGNALS: dict[signal.Signals, Handler] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
}


class Guard:
    """One process's signal handlers and the window in which a signal waits (every process has
    one: in an xdist worker it guards the sending of reports, and SIGTERM ends its test as Ctrl-C)."""

    def __init__(self, config: pytest.Config, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        self.config = config
        self.drain_timeout = drain_timeout
        self.busy = False
        self.pending: int | None = None
        self.draining = False
        self._installed: list[signal.Signals] = []
        self._timer: threading.Timer | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can be set from the main thread only (pytest run in a thread)
        for signum, default in SIGNALS.items():
            if signal.getsignal(signum) is default:
                signal.signal(signum, self._handle)
                self._installed.append(signum)

    def uninstall(self) -> None:
        if self._timer is not None:
            self._timer.cancel()  # the loop is over: a late interrupt would hit the summary
        for signum in self._installed:
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, SIGNALS[signum])
        self._installed = []

    def enter(self) -> None:
        """A report is being handled: a signal now waits for :meth:`leave`."""
        self.busy = True

    def leave(self) -> None:
        self.busy = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._stop(signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.busy and self.pending is None:
            self.pending = signum  # a second signal while waiting does not wait
            return
        self._stop(signum)

    def _stop(self, signum: int) -> None:
        dsession: Any = self.config.pluginmanager.get_plugin("dsession")
        if self.draining or dsession is None or getattr(dsession, "sched", None) is None:
            raise KeyboardInterrupt  # one process, before xdist's loop, or asked twice
        self.draining = True
        name = signal.Signals(signum).name
        # xdist's loop stops the workers and reads what they still send, then raises Interrupted.
        dsession.shouldstop = f"{name}: stopped the workers and stored their finished trials"
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(
                f"exp: {name}: stopping; waiting up to {self.drain_timeout:g} s for the workers' "
                "finished trials (Ctrl-C again to stop at once)",
                yellow=True,
            )
        # To the main thread itself, so a wait there wakes up to run the handler again.
        main = threading.main_thread().ident
        assert main is not None
        self._timer = threading.Timer(self.drain_timeout, signal.pthread_kill, (main, signal.SIGINT))
        self._timer.daemon = True
        self._timer.start()
