"""Fail when .ci/lowest.txt does not pin the floors pyproject.toml promises, or when the Python
that runs this is not the requires-python floor: the lowest-versions stage tests those promises."""

from __future__ import annotations

import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
NOT_RUN = {"ruff", "mypy", "mkdocs-material"}  # dev tools the lowest stage does not run
FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)\s*(?:;.*)?$")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)\s*==\s*([0-9][0-9.]*?)(\.\*)?\s*(?:;.*)?$")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for ds in project["optional-dependencies"].values() for d in ds)]
    floors: dict[str, str] = {}
    problems = []
    for spec in wanted:
        match = FLOOR.match(spec)
        if match is None:
            problems.append(f"pyproject.toml: {spec!r} has no plain '>=' floor")
        elif norm(match[1]) not in NOT_RUN:
            floors[norm(match[1])] = match[2]
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = PIN.match(line)
            if match is None:
                problems.append(f".ci/lowest.txt: {line!r} is not 'name==VERSION' or 'name==VERSION.*'")
            else:
                pins[norm(match[1])] = match[2]
    for name, floor in sorted(floors.items()):
        if name not in pins:
            problems.append(f".ci/lowest.txt: no pin for {name} (pyproject.toml: >={floor})")
        elif pins[name] != floor:
            problems.append(f".ci/lowest.txt: {name}=={pins[name]} but pyproject.toml's floor is >={floor}")
    problems += [
        f".ci/lowest.txt: {name} is not a direct dependency" for name in sorted(set(pins) - set(floors))
    ]
    python = re.fullmatch(r">=\s*(\d+)\.(\d+)", project["requires-python"])
    if python is None:
        problems.append(f"pyproject.toml: requires-python {project['requires-python']!r} is not '>=X.Y'")
    elif sys.version_info[:2] != (int(python[1]), int(python[2])):
        problems.append(
            f"the lowest stage runs Python {sys.version_info[0]}.{sys.version_info[1]},"
            f" but requires-python is {project['requires-python']}"
        )
    for problem in problems:
        print(f"check_lowest: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
