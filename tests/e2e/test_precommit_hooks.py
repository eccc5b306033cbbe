"""The pre-commit hooks in .pre-commit-hooks.yaml: their settings, and a run through pre-commit itself.

The slow tests do what a team does: pre-commit installs this repository (its own virtual environment, the core
install) and runs each hook on a git repository that holds only specs/ and generated/. pre-commit clones a
committed revision, so the test commits a copy of the working tree into a temporary repository first.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.cli import main
from tests.helpers.worktree import REPO, checked, copy_of_the_project, copy_of_the_tree, run

GIT = ["git", "-c", "user.name=mtc tests", "-c", "user.email=tests@mtc.invalid", "-c", "commit.gpgsign=false"]


def hooks() -> list[dict]:
    return YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())


def test_hook_ids_and_settings():
    listed = {hook["id"]: hook for hook in hooks()}
    assert set(listed) == {"mtc-lint", "mtc-compile-check"}
    for hook in listed.values():
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        assert hook["entry"].startswith("mtc ")


@pytest.mark.parametrize("hook", hooks(), ids=lambda hook: hook["id"])
def test_each_hook_passes_on_the_example(hook, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_info:
        main(shlex.split(hook["entry"])[1:])
    assert exit_info.value.code == 0, capsys.readouterr().err


def committed(folder: Path) -> Path:
    checked([*GIT, "init", "-q"], folder)
    checked([*GIT, "add", "-A"], folder)
    checked([*GIT, "commit", "-q", "-m", "snapshot"], folder)
    return folder


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory) -> Path:
    return committed(copy_of_the_tree(tmp_path_factory.mktemp("hooks")))


@pytest.fixture
def team(hooks_repo, tmp_path) -> Path:
    """A team's repository holding the example project (uncommitted: the test may change it first)."""
    return copy_of_the_project(hooks_repo, tmp_path)


@pytest.fixture(scope="module")
def pre_commit_env(tmp_path_factory) -> dict[str, str]:
    return {**os.environ, "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home"))}


def try_repo(hooks_repo: Path, hook: str, team: Path, env: dict[str, str]):
    command = [sys.executable, "-m", "pre_commit", "try-repo", hooks_repo, hook, "--all-files"]
    return run(command, cwd=team, env=env, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize("hook", ["mtc-lint", "mtc-compile-check"])
def test_pre_commit_installs_and_runs_the_hook(hooks_repo, pre_commit_env, team, hook):
    started = time.monotonic()
    done = try_repo(hooks_repo, hook, committed(team), pre_commit_env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Passed" in output and "Traceback" not in output
    print(f"{hook}: pre-commit install and first run took {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_the_compile_check_hook_fails_on_a_stale_module(hooks_repo, pre_commit_env, team):
    spec = team / "specs" / "deployment.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("timeout: 24h", "timeout: 12h"), "utf-8")
    done = try_repo(hooks_repo, "mtc-compile-check", committed(team), pre_commit_env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Failed" in output and "out of date" in output and "Traceback" not in output
