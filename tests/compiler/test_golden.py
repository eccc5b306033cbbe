"""The committed example module is the golden file: compiling the example reproduces it byte for byte, and
`mtc compile --check` catches drift. (A second copy under tests/ would only drift from this one.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.helpers.cli_runner import exit_code as mtc

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "specs/deployment.yaml"
GOLDEN = ROOT / "generated" / "mamba_eeg.py"


def test_compiling_the_example_reproduces_the_golden_file(workspace):
    # a copy of the example project compiles to the same bytes: the module finds the spec's folder from
    # where it is written (SPEC_DIR), so the same layout elsewhere gives the same module
    assert (workspace / "generated" / "mamba_eeg.py").read_bytes() == GOLDEN.read_bytes()


def test_the_committed_module_is_up_to_date(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert mtc("compile", "--check") == 0
    assert capsys.readouterr().out == ""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A copy of the example project: the spec, the local dirs it adds, and its compiled module."""
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / EXAMPLE, tmp_path / EXAMPLE)
    shutil.copytree(ROOT / "runtime", tmp_path / "runtime", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.chdir(tmp_path)
    assert mtc("compile") == 0
    return tmp_path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_check_passes_on_a_fresh_compile(workspace, capsys):
    capsys.readouterr()
    assert mtc("compile", "--check") == 0
    assert capsys.readouterr().out == ""


def test_check_reports_a_changed_spec_with_a_diff_and_writes_nothing(workspace, capsys):
    spec = workspace / EXAMPLE
    spec.write_text(spec.read_text().replace("timeout: 24h", "timeout: 12h"))
    before = snapshot(workspace)
    capsys.readouterr()
    assert mtc("compile", "--check") == 2
    diff = capsys.readouterr().out
    assert "-    timeout=24 * 60 * 60," in diff and "+    timeout=12 * 60 * 60," in diff
    assert diff.startswith("--- generated/mamba_eeg.py\n+++ generated/mamba_eeg.py (from the spec)\n")
    assert snapshot(workspace) == before


def test_check_reports_a_hand_edited_module(workspace, capsys):
    module = workspace / "generated" / "mamba_eeg.py"
    module.write_text(module.read_text().replace('gpu="A100-80GB"', 'gpu="H100"'))
    capsys.readouterr()
    assert mtc("compile", "--check") == 2
    assert '+    gpu="A100-80GB",' in capsys.readouterr().out


def test_check_reports_a_missing_module_and_does_not_create_it(workspace, capsys):
    (workspace / "generated" / "mamba_eeg.py").unlink()
    capsys.readouterr()
    assert mtc("compile", "--check") == 2
    assert "(missing)" in capsys.readouterr().out
    assert not (workspace / "generated" / "mamba_eeg.py").exists()


def test_compiling_twice_gives_identical_bytes(workspace):
    first = (workspace / "generated" / "mamba_eeg.py").read_bytes()
    assert mtc("compile") == 0
    assert (workspace / "generated" / "mamba_eeg.py").read_bytes() == first
