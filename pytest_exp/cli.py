"""``python -m pytest_exp``: read the trial store without re-running anything.

``runs`` lists the runs of a store; ``show`` prints one run's tables (the summary pytest printed at
the end of that run, re-ranked by any objective) and can export its trials as ``--exp-report`` does.

Each stored trial keeps the objective its test ran with, so ``show`` ranks as pytest did;
``--objective`` re-ranks every test function shown by another metric.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
import textwrap
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn

from pytest_exp import report
from pytest_exp.settings import report_format
from pytest_exp.store import FILENAME, RunInfo, Store, StoreError
from pytest_exp.summary import MISSING
from pytest_exp.trial import Objective, TrialRecord, by_function, primary

PROG = "python -m pytest_exp"
DEFAULT_STORE = ".pytest-exp"
DEFAULT_TOP = 10
GIT_SHORT = 8
HELP_WIDTH = 78
ERROR = "pytest-exp: error: "


class CliError(Exception):
    """A request the CLI cannot carry out: reported as one line on stderr, exit status 2."""


class _Exit(Exception):
    """argparse asked to exit (``--help``, a usage error): main() returns the status instead."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``pytest-exp: error:`` line, and which never calls
    ``sys.exit`` itself (so ``main()`` returns its status). Subcommand parsers share the class."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{ERROR}{message}; see '{self.prog} --help'\n")
        raise _Exit(2)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


# --------------------------------------------------------------------------- argument types


def stored_objective(trials: list[TrialRecord]) -> Objective | None:
    text = next((t.objective for t in trials if t.objective), None)
    return primary(text) if text else None


def _objective(text: str) -> Objective:
    try:
        return Objective.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"invalid value {text!r} ({e})") from None


def _positive_or(word: str, expected: str) -> Callable[[str], int | None]:
    """An argparse type: a positive integer, or ``word`` meaning None (all, latest)."""

    def parse(text: str) -> int | None:
        if text.strip().lower() == word:
            return None
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected {expected} or {word!r})")
        return value

    return parse


_top = _positive_or("all", "a positive integer")
_run_id = _positive_or("latest", "a run id")


# --------------------------------------------------------------------------- parser


def _wrap(*paragraphs: str) -> str:
    return "\n\n".join(textwrap.fill(p, HELP_WIDTH) for p in paragraphs)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m pytest_exp``."""
    formatter = argparse.RawDescriptionHelpFormatter
    root = _Parser(
        prog=PROG,
        description="Read pytest-exp results from the trial store without re-running the tests.",
        epilog=(
            "examples:\n"
            f"  {PROG} runs\n"
            f"  {PROG} show --objective val_loss:min --top 5\n"
            f"  {PROG} show --run 3 --test test_train --report results/run3.csv\n\n"
            f"Run '{PROG} COMMAND --help' for a command's options."
        ),
        formatter_class=formatter,
    )
    commands = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    store_help = (
        f"directory of the trial store (default: {DEFAULT_STORE} in the current directory; pytest "
        "keeps it at the rootdir unless --exp-store or exp_store says otherwise)"
    )

    runs = commands.add_parser(
        "runs",
        help="list the runs in the store",
        description=_wrap(
            "List every run recorded in the store, oldest first: id, start (local time), status, "
            "number of trials, session seed, git commit (with '-dirty' when tracked files had "
            "changes) and the pytest command line."
        ),
        formatter_class=formatter,
    )
    runs.add_argument("--store", metavar="DIR", default=DEFAULT_STORE, help=store_help)

    show = commands.add_parser(
        "show",
        help="print a run's summary tables and optionally export its trials",
        description=_wrap(
            "Print one run's summary: a line about the run, then one table per test function, one "
            "row per configuration (mean \u00b1 std over repeats).",
            "Rows are ranked by the objective each test ran with; --objective re-ranks every test "
            "function shown by another metric.",
        ),
        formatter_class=formatter,
    )
    show.add_argument("--store", metavar="DIR", default=DEFAULT_STORE, help=store_help)
    show.add_argument(
        "--run",
        metavar="ID",
        type=_run_id,
        default=None,
        help=f"the run to show, as '{PROG} runs' lists them (default: the latest run)",
    )
    show.add_argument(
        "--objective",
        metavar="NAME[:min|max]",
        type=_objective,
        default=None,
        help="rank configurations by this metric's mean, lowest first unless ':max' "
        "(default: the objective each test ran with)",
    )
    show.add_argument(
        "--top",
        metavar="K",
        type=_top,
        default=DEFAULT_TOP,
        help=f"configurations shown per test function (default: {DEFAULT_TOP}; 'all' for every one)",
    )
    show.add_argument(
        "--test",
        metavar="SUBSTRING",
        default=None,
        help="show only the test functions whose node id contains SUBSTRING (e.g. 'test_train')",
    )
    show.add_argument(
        "--report",
        metavar="PATH",
        default=None,
        help=(
            "also write every trial of the test functions shown (not only the top K) to PATH, in the "
            "format its suffix names: .csv (one row per trial), .jsonl (one record per trial) or .md "
            "(the tables as Markdown)"
        ),
    )
    return root


# --------------------------------------------------------------------------- formatting


def local_time(timestamp: float) -> str:
    """``2026-11-25 14:31:02``: a Unix time as local ISO date and time, to the second."""
    return datetime.fromtimestamp(timestamp).isoformat(sep=" ", timespec="seconds")


def git_text(run: RunInfo) -> str | None:
    """The short commit, ``-dirty`` when tracked files differed from it; None outside git."""
    if run.git_commit is None:
        return None
    return run.git_commit[:GIT_SHORT] + ("-dirty" if run.git_dirty else "")


def command_text(run: RunInfo) -> str:
    """The pytest command line of a run, quoted as a shell would need it."""
    return shlex.join(["pytest", *run.argv])


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def run_header(run: RunInfo, store: str) -> str:
    """``run 3 of .pytest-exp: 2026-11-25 14:31:02, finished, 120 trials, seed 0, git 1a2b3c4d, `pytest```"""
    git = git_text(run)
    parts = [
        local_time(run.started),
        run.status,
        _plural(run.trials, "trial"),
        f"seed {run.seed}",
        f"git {git}" if git is not None else "no git commit",
        f"`{command_text(run)}`",
    ]
    return f"run {run.id} of {store}: {', '.join(parts)}"


def runs_table(runs: Sequence[RunInfo]) -> str:
    """The runs as an aligned table: numbers right-aligned, text left, no trailing spaces."""
    headers = ["id", "started", "status", "trials", "seed", "git", "command"]
    right = [True, False, False, True, True, False, False]
    rows = [
        [
            str(r.id),
            local_time(r.started),
            r.status,
            str(r.trials),
            str(r.seed),
            git_text(r) or MISSING,
            command_text(r),
        ]
        for r in runs
    ]
    widths = [max(len(h), *(len(row[j]) for row in rows)) for j, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True))
        return report.GAP.join(padded).rstrip()

    out = [line(headers), report.GAP.join("-" * w for w in widths)]
    out += [line(row) for row in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- commands


def _open(directory: str, defaulted: bool) -> Store:
    if not (Path(directory) / FILENAME).is_file():
        hint = "; run from pytest's rootdir, or pass --store DIR" if defaulted else ""
        raise CliError(f"no pytest-exp store at {directory} (expected {Path(directory) / FILENAME}){hint}")
    store = Store.open_existing(directory)
    notes = list(store.notes)
    if store.read_only:
        notes.append(f"{store.path} is read-only: shown as it is, without recovering killed runs' journals")
    for note in notes:
        sys.stderr.write(f"pytest-exp: note: {note}\n")
    return store


def cmd_runs(args: argparse.Namespace) -> int:
    with _open(args.store, args.store == DEFAULT_STORE) as store:
        runs = store.runs()
    if not runs:
        print(f"no runs in {args.store}")
    else:
        print(runs_table(runs))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    report_path: Path | None = None
    if args.report is not None:
        report_path = Path(args.report)
        try:
            report_format(args.report)
        except ValueError as e:
            raise CliError(f"--report {args.report}: {e}") from None
    with _open(args.store, args.store == DEFAULT_STORE) as store:
        run = store.run(args.run)
        records = store.trials(run.id)
    if not records:
        raise CliError(f"run {run.id} of {args.store} has no trials")
    functions = by_function(records)
    if args.test is not None:
        functions = {name: trials for name, trials in functions.items() if args.test in name}
        if not functions:
            names = ", ".join(by_function(records))
            raise CliError(
                f"--test {args.test}: no test function of run {run.id} matches (functions: {names})"
            )
    # --objective ranks every function; without it, each uses the objective it ran with.
    objectives = {name: args.objective or stored_objective(trials) for name, trials in functions.items()}
    out = [run_header(run, args.store)]
    for name, trials in functions.items():
        out += ["", report.table(trials, objectives[name], args.top)]
    print("\n".join(out))
    if report_path is not None:
        try:
            report.export(functions, objectives, report_path)
        except OSError as e:
            raise CliError(f"--report {args.report}: cannot write ({e.strerror or e})") from None
        print(f"wrote {args.report}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"runs": cmd_runs, "show": cmd_show}


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m pytest_exp`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit
    status: 0; 2 after one ``pytest-exp: error:`` line on stderr (usage errors included); 1 when
    stdout was closed early (``| head``); 130 on Ctrl-C. Never a traceback for any of these."""
    try:
        args = parser().parse_args(argv)
    except _Exit as e:
        return e.status
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at interpreter exit
        return status
    except (CliError, StoreError) as e:
        sys.stderr.write(f"{ERROR}{e}\n")
        return 2
    except sqlite3.Error as e:
        sys.stderr.write(f"{ERROR}{Path(args.store) / FILENAME}: cannot read ({e})\n")
        return 2
    except BrokenPipeError:
        # The reader went away (``show | head``): stop quietly, and keep Python's exit-time flush
        # of stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
