"""Helpers for the tests that install mtc as a user would: copy the working tree, run a command or fail."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run(command: list, cwd: Path | None = None, timeout: int = 600, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def checked(command: list, cwd: Path | None = None, env=None) -> subprocess.CompletedProcess:
    done = run(command, cwd, env=env)
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done


def copy_of_the_tree(dest: Path) -> Path:
    """The files git would see in the working tree (tracked or not ignored), without .venv, build/ or .git."""
    listed = checked(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def copy_of_the_project(tree: Path, dest: Path) -> Path:
    """A team's project as mtc sees it: only specs/ and generated/, taken from ``tree`` (a copy of the tree,
    so that the spec and its module match the compiler under test even while the checkout changes)."""
    for name in ("specs", "generated"):
        shutil.copytree(tree / name, dest / name)
    return dest
