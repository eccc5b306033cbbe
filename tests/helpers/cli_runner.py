"""Run the `mtc` CLI inside the test process and collect its exit code and output."""

from __future__ import annotations

import pytest

from compiler.cli import main


def exit_code(*argv: str) -> int:
    """The exit code of `mtc ARGV` (its output is left to pytest's capture)."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return exited.value.code


def mtc(capture: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """`mtc ARGV` -> (exit code, stdout, stderr); ``capture`` is capsys, or capfd for child output."""
    code = exit_code(*argv)
    out, err = capture.readouterr()
    return code, out, err
