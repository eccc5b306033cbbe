"""Every example marked runnable in README.md and docs/*.md runs as written.

A runnable example is a fenced ``console`` or ``sh`` block right after the line ``<!-- runnable -->`` (or
``<!-- runnable exit=N -->`` when the last command is meant to exit N). Its commands (the ``$ `` lines of a
``console`` block, every line of an ``sh`` block) run one after the other in one bash shell, in a fresh copy
of the repository, with ``.venv/bin`` first on PATH and the copy first on PYTHONPATH (so the copy's code
runs): every command but the last must succeed, the last must exit N (0 unless the marker says otherwise),
and every output line the block shows (``...`` skips) must appear in what the commands printed.

Mark only examples that are fast (under 30 s) and need no network or GPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.worktree import REPO, copy_of_the_tree

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- runnable(?: exit=(\d+))? -->\n```(console|sh)\n(.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    commands: tuple[str, ...]
    output: tuple[str, ...]
    exit_code: int

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def examples_in(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in MARKER.finditer(text):
        exit_code, kind, body = match.groups()
        lines = body.splitlines()
        if kind == "sh":
            commands, output = lines, []
        else:
            commands = [line[2:] for line in lines if line.startswith("$ ")]
            output = [line for line in lines if not line.startswith("$ ") and line.strip() not in ("", "...")]
        line = text.count("\n", 0, match.start()) + 1
        found.append(
            Example(
                page.relative_to(REPO).as_posix(), line, tuple(commands), tuple(output), int(exit_code or 0)
            )
        )
    return found


EXAMPLES = [example for page in PAGES for example in examples_in(page)]


def test_the_pages_have_runnable_examples():
    assert len(EXAMPLES) >= 5
    assert all(example.commands for example in EXAMPLES)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One copy of the working tree; each example gets its own copy of this one."""
    return copy_of_the_tree(tmp_path_factory.mktemp("pristine"))


def script(example: Example) -> str:
    """All commands but the last must succeed; the shell exits with the last one's code."""
    *before, last = example.commands
    return "set -eo pipefail\n" + "".join(f"{command}\n" for command in before) + f"set +e\n{last}\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.name)
def test_the_example_runs_as_written(example, pristine, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(pristine, copy, symlinks=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(copy),
        "MTC_VOLUMES_DIR": str(tmp_path / "volumes"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        ["bash", "-c", script(example)], cwd=copy, env=env, capture_output=True, text=True, timeout=60
    )
    printed = done.stdout + done.stderr
    assert done.returncode == example.exit_code, f"{example.name}: exit {done.returncode}\n{printed}"
    missing = [line for line in example.output if line not in printed]
    assert not missing, f"{example.name}: not printed: {missing}\n{printed}"
