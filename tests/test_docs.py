"""Every shell command and Python snippet of README.md and docs/ runs, as a reader would run it.

Each page gets a sandbox directory; its blocks run there in page order (see ``doctool`` for the
directives): files are written, shell commands and the ``$`` lines of text blocks run with this
environment's ``pytest`` and ``python`` first on PATH, Python blocks run as scripts and TOML blocks
must be valid spaces. Blocks marked ``skip`` are reported as skipped with their reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from doctool import Block, DocError, blocks

from pytest_exp import Space
from pytest_exp.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 300


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def environment() -> dict[str, str]:
    """This process's environment without pytest's and xdist's variables, this venv's bin first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_block(block: Block, sandbox: Path) -> None:
    """Run one block in the sandbox; fail with its page and line when it does not do what it says."""
    if "file" in block.directives:
        target = sandbox / block.directives["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.text, encoding="utf-8")
        return
    if block.language == "toml":
        try:
            Space.from_toml(block.text)
        except ValueError as e:
            pytest.fail(f"{block.where}: the TOML block is not a valid space: {e}")
        return
    if block.language == "python":
        run(block, sandbox, [sys.executable, "-"], block.text, "the Python block")
        return
    for command in block.commands():
        run(block, sandbox, ["bash", "-c", command], None, f"`{command}`")


def run(block: Block, sandbox: Path, argv: list[str], stdin: str | None, what: str) -> None:
    expected = int(block.directives.get("exit", "0"))
    try:
        done = subprocess.run(
            argv,
            cwd=sandbox,
            env=environment(),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: {what} did not finish in {TIMEOUT} s")
    if done.returncode != expected:
        output = (done.stdout + done.stderr)[-4000:]
        pytest.fail(
            f"{block.where}: {what} exited with {done.returncode}, expected {expected}\n{output}",
            pytrace=False,
        )


def run_page(page: Path, root: Path, sandbox: Path) -> int:
    """Run a page's blocks in order; the number run (a page may have none to run)."""
    ran = 0
    for block in blocks(page, root):
        if {"skip", "ci"} & block.directives.keys():
            continue
        run_block(block, sandbox)
        ran += 1
    return ran


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page(page: Path, tmp_path: Path) -> None:
    run_page(page, ROOT, tmp_path)


SKIPPED = [b for page in PAGES for b in blocks(page, ROOT) if {"skip", "ci"} & b.directives.keys()]


@pytest.mark.parametrize("block", SKIPPED, ids=lambda b: b.where)
def test_block_not_run_here(block: Block) -> None:
    """Lists, with `-rs`, each block the page tests leave out and why."""
    reason = block.directives.get("skip") or "run by .ci/run in a fresh copy of the project"
    pytest.skip(f"{block.where}: {reason}")


def test_the_options_reference_lists_every_setting() -> None:
    rows = {
        line.split("|")[1].strip(): line
        for line in (ROOT / "docs" / "options.md").read_text().splitlines()
        if line.startswith("| `--exp-")
    }
    for setting in SETTINGS:
        where = f"docs/options.md: the {setting.flag} row"
        found = next((row for flag, row in rows.items() if flag.startswith(f"`{setting.flag}")), None)
        assert found is not None, f"docs/options.md has no row for {setting.flag}"
        assert f"`{setting.ini}`" in found, f"{where} lacks `{setting.ini}`"
        if setting.marker is not None:
            assert f"`{setting.name}=" in found, f"{where} lacks `{setting.name}=`"
    assert len(rows) == len(SETTINGS)


def test_the_ci_block_is_what_ci_runs() -> None:
    ci = [b for b in blocks(ROOT / "README.md", ROOT) if "ci" in b.directives]
    assert [[c.split("#")[0].rstrip() for c in b.commands()] for b in ci] == [
        [
            "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/pytest examples/basic -v",
            'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && '
            ".venv/bin/python -m pytest -n auto",
        ]
    ]
    assert "python3 tests/doctool.py ci README.md" in (ROOT / ".ci" / "run").read_text()


def test_the_readme_links_resolve() -> None:
    """mkdocs checks the links between docs pages; the README, read on GitHub or PyPI, is not
    part of the site, so its links to files are checked here."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert targets, "README.md links to no page"
    missing = [t for t in targets if "://" not in t and not (ROOT / t).is_file()]
    assert missing == []


def page(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_failing_command_fails_with_its_page_and_line(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        # A page

        ```sh
        true
        python -c "raise SystemExit(3)"
        ```
        """,
    )
    expected = r'^page.md:3: `python -c "raise SystemExit\(3\)"` exited with 3, expected 0\n'
    with pytest.raises(pytest.fail.Exception, match=expected):
        run_page(path, tmp_path, tmp_path)


def test_files_then_commands_and_expected_exit(tmp_path: Path) -> None:
    path = page(
        tmp_path,
        """\
        <!-- file: space.toml -->
        ```toml
        lr = [0.1, 0.01]
        ```

        <!-- file: test_a.py -->
        ```python
        import pytest

        @pytest.mark.space("space.toml")
        def test_a(lr):
            assert lr < 0.05
        ```

        <!-- exit: 1 -->
        ```text
        $ pytest -q
        1 failed, 1 passed
        ```
        """,
    )
    assert run_page(path, tmp_path, tmp_path) == 3
    assert (tmp_path / "space.toml").read_text() == "lr = [0.1, 0.01]\n"


def test_a_python_block_that_raises_fails(tmp_path: Path) -> None:
    snippet = "import pytest_exp\npytest_exp.Space.from_dict({'x': {'type': 'no'}})\n"
    path = page(tmp_path, f"```python\n{snippet}```\n")
    with pytest.raises(pytest.fail.Exception) as info:
        run_page(path, tmp_path, tmp_path)
    first, *_, last = str(info.value).splitlines()
    assert first == "page.md:1: the Python block exited with 1, expected 0"
    assert last == (
        'pytest_exp.space.SpaceError: [x] unknown type "no" '
        '(expected one of "value", "list", "range", "random")'
    )


def test_a_toml_block_must_be_a_valid_space(tmp_path: Path) -> None:
    path = page(tmp_path, '```toml\n[x]\ntype = "range"\n```\n')
    with pytest.raises(pytest.fail.Exception, match=r"^page.md:1: the TOML block is not a valid space: "):
        run_page(path, tmp_path, tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "<!-- nope -->\n```sh\ntrue\n```\n",
            "page.md:1: unknown directive 'nope' (expected one of file, exit, skip, ci)",
        ),
        ("<!-- skip -->\n```sh\ntrue\n```\n", "page.md:2: <!-- skip: REASON --> needs a reason"),
        ("<!-- exit: one -->\n```sh\ntrue\n```\n", "page.md:2: <!-- exit: N --> needs an integer, got 'one'"),
        (
            "<!-- skip: later -->\ntext\n```sh\ntrue\n```\n",
            "page.md:1: a directive must stand just above a code fence",
        ),
        ("```sh\ntrue\n", "page.md:1: the code block is never closed"),
        (
            "```bash\ntrue\n```\n",
            "page.md:1: code block language 'bash' (expected one of sh, python, toml, ini, text, yaml)",
        ),
        ("```ini\n[pytest]\n```\n", "page.md:1: ini blocks need <!-- file: PATH --> or <!-- skip: ... -->"),
        ("```sh\npytest \\\n```\n", "page.md:1: the last command ends with a line continuation"),
    ],
)
def test_bad_pages_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = page(tmp_path, text)
    with pytest.raises(DocError) as info:
        [block.commands() for block in blocks(path, tmp_path)]
    assert str(info.value) == message
