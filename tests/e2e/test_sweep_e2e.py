"""End to end: `mtc run train --sweep` trains each trial of a 2-trial sweep locally, in its own run directory,
with its own config values, and prints a summary table; a failing trial is reported without stopping the
other, and a second run of the sweep resumes each trial from its own checkpoint. A tiny synthetic config
keeps each trial to seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.tiny_config import TINY_CONFIG

pytest.importorskip("runtime.train")

REPO = Path(__file__).resolve().parents[2]


# The config lives on the results volume (locally the folder named after the Modal volume), so the spec
# needs no add_local dirs.
SPEC = """\
version: 1
app: {{name: e2e-sweep}}
images:
  base: {{from: debian_slim, python: "3.11", add_local: {{python: [runtime]}}}}
volumes:
  results: {{volume: e2e-sweep-results}}
functions:
  train:
    image: base
    run: runtime.train:main
    args: {{config: /results/tiny.yaml}}
    cpu: 1
    memory: 4GiB
    timeout: 5m
    volumes: {{/results: results}}
    sweep:
{sweep}
"""


def sweep_run(tmp_path: Path, sweep: str, *extra: str) -> subprocess.CompletedProcess:
    volumes = tmp_path / "volumes"
    (volumes / "e2e-sweep-results").mkdir(parents=True, exist_ok=True)
    (volumes / "e2e-sweep-results" / "tiny.yaml").write_text(TINY_CONFIG)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sweep=sweep))
    command = ["run", "train", str(spec), "--sweep", "--volumes-dir", str(volumes), *extra]
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_two_trial_sweep_trains_each_trial_in_its_own_run_and_resumes_them(tmp_path):
    sweep = "      grid: {optim.lr: [0.01, 0.003]}\n      max_parallel: 2\n"
    done = sweep_run(tmp_path, sweep, "--parallel", "2")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = tmp_path / "volumes" / "e2e-sweep-results" / "runs"
    for index, lr in enumerate((0.01, 0.003)):
        run_dir = runs / f"train-t{index:02d}-lr_{lr}"
        saved = json.loads((run_dir / "config.json").read_text())
        assert saved["optim"]["lr"] == lr and saved["run_name"] == run_dir.name
        assert (run_dir / "last.pt").is_file() and (run_dir / "report.json").is_file()
        row = next(line for line in done.stdout.splitlines() if f"optim.lr={lr}" in line)
        assert str(run_dir) in row and "val_loss" in row and row.split()[2] == "0"  # trial, values, exit
    assert sorted(p.name for p in runs.iterdir()) == ["train-t00-lr_0.01", "train-t01-lr_0.003"]
    assert "sweep of train: 2 trials, 2 at a time" in done.stderr

    again = sweep_run(tmp_path, sweep)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("resumed from") == 2
    assert str(runs / "train-t00-lr_0.01") in again.stderr.split("resumed from")[1]


def test_a_failing_trial_is_reported_and_the_other_still_runs(tmp_path):
    sweep = "      trials: [{optim.lr: -1.0}, {train.max_steps: 2}]\n"
    done = sweep_run(tmp_path, sweep)
    assert done.returncode == 1, done.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert rows["0"][2] == "1" and rows["1"][2] == "0"
    assert "1 of 2 trials failed: 0" in done.stderr
    assert "optim.lr: -1.0 is not above 0 (from the override optim.lr=-1.0)" in done.stderr
    assert (
        tmp_path / "volumes" / "e2e-sweep-results" / "runs" / "train-t01-max_steps_2" / "last.pt"
    ).is_file()
