"""The code blocks of the Markdown docs, and what each asks of the test that runs it.

A block's directives are HTML comments on the lines just above its fence (invisible on the
rendered page):

- ``<!-- file: PATH -->`` writes the block to PATH in the page's sandbox;
- ``<!-- exit: N -->`` the block's commands exit with N (default 0);
- ``<!-- skip: REASON -->`` the block is not run, for the reason given;
- ``<!-- ci -->`` the block is run by ``.ci/run``, in a fresh copy of the project
  (``python3 tests/doctool.py ci README.md`` prints its commands).

Stdlib only: ``.ci/run`` uses it before any virtual environment exists.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

DIRECTIVES = ("file", "exit", "skip", "ci")
LANGUAGES = ("sh", "python", "toml", "ini", "text", "yaml")
_DIRECTIVE = re.compile(r"<!--\s*([a-z]+)(?::\s*(.*?))?\s*-->$")
_FENCE = re.compile(r"(`{3,})\s*([\w-]*)\s*$")


class DocError(ValueError):
    """A block the doc tests cannot run as written: the message names the page and line."""


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        """A shell block's commands, or a text block's ``$ `` lines: continuations joined,
        comment lines left out."""
        if self.language == "text":
            lines = [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]
        else:
            lines = self.text.splitlines()
        commands: list[str] = []
        pending = ""
        for raw in lines:
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            commands.append(pending + line)
            pending = ""
        if pending:
            raise DocError(f"{self.where}: the last command ends with a line continuation")
        return commands


def blocks(path: Path, root: Path) -> list[Block]:
    """Every fenced block of one page, with its directives, checked against the convention."""
    page = path.relative_to(root).as_posix()
    found: list[Block] = []
    directives: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    while number < len(lines):
        line = lines[number].strip()
        number += 1
        directive = _DIRECTIVE.match(line)
        if directive:
            name, value = directive.group(1), directive.group(2) or ""
            if name not in DIRECTIVES:
                raise DocError(
                    f"{page}:{number}: unknown directive {name!r} (expected one of {', '.join(DIRECTIVES)})"
                )
            directives[name] = value
            continue
        fence = _FENCE.match(line)
        if not fence:
            if directives and line:
                raise DocError(f"{page}:{number - 1}: a directive must stand just above a code fence")
            continue
        start, ticks, language = number, fence.group(1), fence.group(2)
        body: list[str] = []
        while number < len(lines) and lines[number].strip() != ticks:
            body.append(lines[number])
            number += 1
        if number == len(lines):
            raise DocError(f"{page}:{start}: the code block is never closed")
        number += 1
        if language not in LANGUAGES:
            raise DocError(
                f"{page}:{start}: code block language {language!r} (expected one of {', '.join(LANGUAGES)})"
            )
        block = Block(page, start, language, "\n".join(body) + "\n", directives)
        _check(block)
        found.append(block)
        directives = {}
    return found


def _check(block: Block) -> None:
    d = block.directives
    if "skip" in d and not d["skip"]:
        raise DocError(f"{block.where}: <!-- skip: REASON --> needs a reason")
    if "file" in d and not d["file"]:
        raise DocError(f"{block.where}: <!-- file: PATH --> needs a path")
    if "exit" in d and not d["exit"].isdigit():
        raise DocError(f"{block.where}: <!-- exit: N --> needs an integer, got {d['exit']!r}")
    if block.language in ("ini", "yaml") and not ({"file", "skip"} & d.keys()):
        raise DocError(
            f"{block.where}: {block.language} blocks need <!-- file: PATH --> or <!-- skip: ... -->"
        )


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "ci":
        print("usage: python3 tests/doctool.py ci PAGE.md", file=sys.stderr)
        return 2
    path = Path(argv[1]).resolve()
    for block in blocks(path, path.parent):
        if "ci" in block.directives:
            print("\n".join(block.commands()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
