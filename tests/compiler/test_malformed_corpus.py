"""The malformed-spec corpus: each file holds one mistake, found at the recorded line and column.

Each YAML file's second line records what is expected: ``# expect: LINE:COL RULE exit=CODE [profile=NAME]``.
Files that cannot carry a comment (empty, binary, not UTF-8) take theirs from ``TABLE``. Every file goes
through ``check()`` and through the CLI (``mtc lint`` and ``mtc compile -o``): the exit code, the position in
the output, no traceback, and no file written.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from compiler.lint.check import check
from runtime.core.files import MAX_FILE_BYTES

CORPUS = Path(__file__).parents[1] / "specs" / "malformed"
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (\S+) exit=(\d)(?: profile=(\S+))?$")


@dataclass(frozen=True)
class Case:
    path: Path
    line: int
    col: int
    rule: str
    exit_code: int
    profile: str | None = None


TABLE = {
    "zero-bytes.yaml": (1, 1, "load/empty"),
    "non-utf8.yaml": (2, 16, "load/encoding"),
    "binary.yaml": (1, 1, "load/binary"),
}


def corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.iterdir()):
        if path.name in TABLE:
            line, col, rule = TABLE[path.name]
            cases.append(Case(path, line, col, rule, 1))
            continue
        header = path.read_text(encoding="utf-8").splitlines()[1]
        match = EXPECT.match(header)
        assert match, f"{path.name}: second line must be '# expect: LINE:COL RULE exit=CODE', got {header!r}"
        line, col, rule, code, profile = match.groups()
        cases.append(Case(path, int(line), int(col), rule, int(code), profile))
    return cases


CASES = corpus()


def test_the_corpus_is_large_and_every_table_entry_exists():
    assert len(CASES) >= 30
    assert all((CORPUS / name).exists() for name in TABLE)
    assert len({case.rule for case in CASES}) >= 25  # many different mistakes, not one mistake many times


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.path.stem)
def test_check_finds_the_mistake_where_recorded(case):
    result = check(case.path, case.profile)
    assert result.has_errors == (case.exit_code == 1)
    found = [(d.line, d.col, d.rule) for d in result.diagnostics]
    assert (case.line, case.col, case.rule) in found, [d.format() for d in result.diagnostics]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.path.stem)
def test_the_cli_reports_it_and_writes_nothing(case, tmp_path, capsys):
    build = pytest.importorskip("compiler.cli.options", exc_type=ImportError)
    from compiler.cli import main

    profile = ["--profile", case.profile] if case.profile else []
    lint_code, lint_output = run_cli(main, ["lint", str(case.path), *profile], capsys)
    target = tmp_path / "out.py"
    compile_code, compile_output = run_cli(
        main, ["compile", str(case.path), "-o", str(target), *profile], capsys
    )
    assert (lint_code, compile_code) == (case.exit_code, case.exit_code)
    shown = re.escape(build.display_path(str(case.path)))
    expected = re.compile(
        rf"^{shown}:{case.line}:{case.col}: error: .+ \[{re.escape(case.rule)}\]$", re.MULTILINE
    )
    for output in (lint_output, compile_output):
        assert expected.search(output), output
        assert "Traceback" not in output
    assert not target.exists() and list(tmp_path.iterdir()) == []


def run_cli(main, argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    return exited.value.code, captured.out + captured.err


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text("version: 1\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    (diagnostic,) = check(path).diagnostics
    assert (diagnostic.line, diagnostic.col, diagnostic.rule) == (1, 1, "load/too-large")


def test_a_real_process_exits_cleanly_on_the_worst_inputs():
    root = Path(__file__).parents[2]
    for name in ("alias-bomb.yaml", "binary.yaml", "gpu-unknown.yaml"):
        relative = (CORPUS / name).relative_to(root).as_posix()
        result = subprocess.run(
            [sys.executable, "-m", "compiler.cli", "lint", relative],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=root,
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and f"{relative}:" in result.stderr
