"""The pre-commit hooks run mtc commands that pass on the example project."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.cli import main

REPO = Path(__file__).resolve().parents[1]


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
