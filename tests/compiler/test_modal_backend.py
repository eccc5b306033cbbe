"""`mtc run --backend modal`: a stale generated module is refused; without a token Modal says so, fast."""

from __future__ import annotations

import time

import pytest

from compiler.backends.modal import modal_flags
from tests.helpers.cli_runner import mtc

SPEC = """\
version: 1
app: {name: modal-backend-test}
images:
  base: {from: debian_slim, python: "3.11", add_local: {python: [tests]}}
defaults: {image: base, cpu: 1, memory: 512, timeout: 10m}
functions:
  hello:
    run: tests.targets:exit_with
    args: {code: 0}
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with a compiled spec, and no Modal credentials anywhere."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET", "MODAL_PROFILE", "MODAL_CONFIG_PATH"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "deployment.yaml").write_text(SPEC)
    return tmp_path


def test_stale_module_is_refused_with_the_compile_hint(capsys, project):
    code, _, err = mtc(capsys, "run", "hello", "--backend", "modal")
    assert code == 1
    assert "generated/modal_backend_test.py is missing or out of date" in err and "mtc compile" in err
    assert mtc(capsys, "compile")[0] == 0
    (project / "specs" / "deployment.yaml").write_text(SPEC.replace("cpu: 1", "cpu: 2"))
    code, _, err = mtc(capsys, "run", "hello", "--backend", "modal")
    assert code == 1 and "out of date" in err and "Token" not in err


def test_without_a_token_modal_fails_fast_with_its_own_message(capfd, project):
    assert mtc(capfd, "compile")[0] == 0
    started = time.monotonic()
    code, _, err = mtc(capfd, "run", "hello", "--backend", "modal", "--arg", "code=3")
    assert code == 1
    assert "Token missing" in err and "out of date" not in err
    assert time.monotonic() - started < 30


def test_detach_needs_the_modal_backend(capsys, project):
    code, _, err = mtc(capsys, "run", "hello", "--detach")
    assert code == 3 and "--backend modal" in err


def test_modal_flags_follow_modal_cli_conventions():
    flags = modal_flags(
        {"config": "specs/x.yaml", "resume": False, "max_steps": 5, "dry_run": True, "ids": [1, 2]}
    )
    assert flags == [
        "--config",
        "specs/x.yaml",
        "--no-resume",
        "--max-steps",
        "5",
        "--dry-run",
        "--ids",
        "[1, 2]",
    ]


def test_app_commands_pass_through_to_modal(capfd, project):
    code, _, err = mtc(capfd, "apps")
    assert code == 1 and "Token missing" in err
