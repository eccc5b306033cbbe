"""The smoke check: its CPU mode here, failure reporting and exit codes, and the comparison it relies on."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest
import torch

from runtime import smoke
from runtime.nn.ops import scan as ssm

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU mode of the smoke check")


@pytest.fixture(autouse=True)
def no_forced_backend(monkeypatch):
    monkeypatch.delenv(ssm.FORCE_TORCH_ENV, raising=False)


@pytest.fixture
def wrong_scan(monkeypatch):
    """A PyTorch scan that is off by 1%: the smoke check must catch it."""
    real = ssm.selective_scan_torch
    monkeypatch.setattr(ssm, "selective_scan_torch", lambda *args, **kwargs: real(*args, **kwargs) * 1.01)


@needs_no_cuda
def test_cpu_mode_says_cuda_was_not_checked_and_checks_the_torch_path():
    report = smoke.test_mamba_cuda()
    assert report["ok"] and report["mode"] == "cpu"
    assert "fused mamba-ssm path was NOT checked" in report["note"]
    assert set(report["checks"]) == {"torch scan vs float64 reference", "SignalMamba kernels=auto"}
    assert report["checks"]["SignalMamba kernels=auto"]["backend"] == "torch"
    assert report["environment"]["torch"] == torch.__version__
    assert report["environment"]["cuda_available"] is False


@needs_no_cuda
def test_a_wrong_scan_fails_the_check_with_the_failing_tensors_named(wrong_scan):
    with pytest.raises(smoke.SmokeCheckFailed, match="torch scan vs float64 reference") as raised:
        smoke.test_mamba_cuda()
    failing = raised.value.report["checks"]["torch scan vs float64 reference"]["failing"]
    assert "output" in failing


@needs_no_cuda
def test_command_line_exit_codes_and_readable_report(wrong_scan, capsys):
    assert smoke.main([]) == 1
    err = capsys.readouterr().err
    assert "[FAIL] torch scan vs float64 reference" in err
    assert "mismatching tensors: " in err


@needs_no_cuda
def test_command_line_json_report(capsys):
    assert smoke.main(["--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["ok"] is True
    assert "CUDA is not available here" in captured.err


def test_module_runs_as_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "runtime.smoke"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "[ok] SignalMamba kernels=auto" in done.stderr


def test_failure_survives_pickling_with_its_report():
    failure = smoke.SmokeCheckFailed("smoke check failed: x", {"ok": False, "checks": {}})
    copy = pickle.loads(pickle.dumps(failure))
    assert str(copy) == "smoke check failed: x"
    assert copy.report == {"ok": False, "checks": {}}


def test_a_check_that_raises_is_recorded_as_a_failure():
    report = {"checks": {}}
    smoke._check(report, "boom", lambda: 1 / 0)
    assert report["checks"]["boom"] == {"ok": False, "error": "ZeroDivisionError: division by zero"}


def test_compare_uses_mamba_ssm_tolerances():
    expected = torch.tensor([1.0, -2.0, 0.0])
    assert smoke.compare(expected + torch.tensor([5e-4, 0.0, 1.9e-3]), expected)["ok"]
    result = smoke.compare(expected + torch.tensor([0.0, 0.0, 2.5e-3]), expected)
    assert not result["ok"]
    assert result["max_abs"] == pytest.approx(2.5e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_smoke_check_passes():
    report = smoke.test_mamba_cuda()
    assert report["mode"] == "cuda" and report["ok"]
