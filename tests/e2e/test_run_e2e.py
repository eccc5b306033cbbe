"""End to end: `mtc run train --profile debug` on the example spec trains, evaluates and reports; a crashed
attempt is retried and resumes from its checkpoint. A tiny synthetic config keeps each run to seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_config import TINY_CONFIG

pytest.importorskip("runtime.train")

REPO = Path(__file__).resolve().parents[2]


RETRY_SPEC = """\
version: 1
app: {{name: e2e-retry}}
images:
  base: {{from: debian_slim, python: "3.11", add_local: {{dirs: {{{config_dir}: /cfg}}, python: [tests]}}}}
volumes:
  results: {{volume: e2e-results}}
functions:
  train:
    image: base
    run: tests.targets:train_crashing_once
    args: {{config: /cfg/tiny.yaml}}
    cpu: 2
    memory: 4GiB
    timeout: 5m
    retries: 1
    volumes: {{/results: results}}
"""


def mtc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_CONFIG)
    return path


def test_run_train_debug_profile_trains_and_reports(tmp_path, tiny_config):
    volumes = tmp_path / "volumes"
    done = mtc(
        "run", "train", "--profile", "debug", "--arg", f"config={tiny_config}", "--volumes-dir", str(volumes)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = volumes / "mamba-results" / "runs" / "tiny"
    report = json.loads((run_dir / "report.json").read_text())
    assert 0.0 <= report["metrics"]["accuracy"] <= 1.0
    assert (run_dir / "last.pt").is_file() and (run_dir / "metrics.jsonl").is_file()
    assert f"lives in {volumes / 'mamba-results'} (read-write)" in done.stderr
    assert f"report:          {run_dir / 'report.json'}" in done.stderr


def test_a_failed_attempt_is_retried_and_resumes_from_its_checkpoint(tmp_path, tiny_config):
    spec = tmp_path / "spec.yaml"
    spec.write_text(RETRY_SPEC.format(config_dir=tiny_config.parent))  # the config ships in the image
    done = mtc("run", "train", str(spec), "--volumes-dir", str(tmp_path / "volumes"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "simulated crash after 3 steps" in done.stderr
    assert "retrying train (attempt 2 of 2)" in done.stderr
    assert "at step 3" in done.stderr.split("retrying train")[1]  # resumed, not restarted
