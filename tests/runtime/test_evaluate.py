"""runtime.evaluate: report.json and plots for a trained run, per-window and per-timestep, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import run_dir, write_config

from runtime import evaluate
from runtime.data import DataError
from runtime.train import checkpoint, entry, metrics_log


@pytest.fixture(scope="module")
def timestep_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("timestep")
    config = write_config(
        tmp_path,
        data={
            "format": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "sample_rate_hz": 8,
            "synthetic": {
                "n_train": 128,
                "n_val": 32,
                "n_test": 48,
                "channels": 2,
                "length": 64,
                "labels": "timestep",
                "burst_snr": 3.0,
            },
            "loader": {"batch_size": 16},
        },
        train={"epochs": 1, "log_every": 2, "checkpoint_every": 4},
        evaluate={"thresholds": [0.3, 0.6], "fa_per_24h_targets": [100, 10]},
    )
    entry.main(config, resume=False)
    return tmp_path, config


def test_evaluate_writes_event_metrics_for_per_timestep_detection(timestep_run, capsys):
    tmp_path, config = timestep_run
    summary = evaluate.main(config)
    assert summary["checkpoint"] == str(run_dir(tmp_path) / "best.pt")
    report = json.loads(Path(summary["report"]).read_text())
    assert report["split"] == "test" and report["windows"] == 48 and report["scan_backend"] == "torch"
    metrics = report["metrics"]
    assert metrics["windows_or_timesteps"] == 48 * 64
    assert 0 <= metrics["auroc"] <= 1 and len(metrics["confusion_matrix"]) == 2
    events = metrics["events"]
    assert [row["threshold"] for row in events["at_thresholds"]] == [0.3, 0.6]
    assert events["hours"] == pytest.approx(48 * 64 / 8 / 3600)
    assert set(events["sensitivity_at_fa_per_24h"]) == {"100", "10"}
    assert {Path(p).name for p in summary["plots"]} == {"curves.png", "roc.png", "confusion_matrix.png"}
    assert summary["metrics"]["sensitivity_at_fa_per_24h"] == events["sensitivity_at_fa_per_24h"]
    assert "roc" not in summary["metrics"] and "events" not in summary["metrics"]  # the summary stays small
    assert "report:" in capsys.readouterr().err


def test_evaluate_an_explicit_checkpoint_and_commit_after_writing(timestep_run):
    tmp_path, config = timestep_run
    commits = []
    last = run_dir(tmp_path) / "last.pt"
    summary = evaluate.main(config, checkpoint=str(last), on_checkpoint=lambda: commits.append(1))
    assert summary["checkpoint"] == str(last) and commits == [1]
    assert json.loads(Path(summary["report"]).read_text())["step"] == checkpoint.load(last)["step"]


def test_evaluate_without_a_checkpoint_says_so(tmp_path):
    config = write_config(tmp_path)
    with pytest.raises(checkpoint.CheckpointError, match="no best.pt or last.pt here; train first"):
        evaluate.main(config)
    with pytest.raises(checkpoint.CheckpointError, match="missing.pt: no such checkpoint"):
        evaluate.main(config, checkpoint=str(tmp_path / "missing.pt"))


def test_evaluate_refuses_a_checkpoint_trained_on_other_data(timestep_run, tmp_path):
    _, config = timestep_run
    other = write_config(
        tmp_path,
        data={
            "format": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "synthetic": {"channels": 3, "length": 32, "n_train": 64, "n_val": 8, "n_test": 8},
        },
    )
    trained = json.loads(Path(config).read_text())
    best = Path(trained["output_dir"]) / "tiny" / "best.pt"
    with pytest.raises(DataError, match="trained on 2 channels"):
        evaluate.main(other, checkpoint=str(best))


def test_evaluate_skips_a_partial_last_line_of_metrics_like_training_does(timestep_run):
    tmp_path, config = timestep_run
    metrics = run_dir(tmp_path) / metrics_log.METRICS_FILE
    whole = metrics.read_bytes()
    metrics.write_bytes(whole + b'{"kind": "val", "step": 9, "val_lo')  # a run killed mid-write
    try:
        summary = evaluate.main(config)
    finally:
        metrics.write_bytes(whole)
    assert Path(summary["report"]).is_file() and any(p.endswith("curves.png") for p in summary["plots"])


def test_a_checkpoint_without_its_model_config_is_a_message_naming_the_file(timestep_run, tmp_path):
    import subprocess
    import sys

    import torch

    _, config = timestep_run
    source, _ = checkpoint.load_latest(run_dir(timestep_run[0]))
    del source["model_config"]
    stripped = tmp_path / "stripped.pt"
    torch.save(source, stripped)
    with pytest.raises(
        checkpoint.CheckpointError, match=r"stripped\.pt: not an mtc checkpoint.*model_config missing"
    ):
        evaluate.main(config, checkpoint=str(stripped))
    done = subprocess.run(
        [sys.executable, "-m", "runtime.evaluate", config, str(stripped)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "stripped.pt: not an mtc checkpoint" in done.stderr


def test_a_checkpoint_whose_model_config_makes_no_model_is_the_files_fault(timestep_run, tmp_path):
    import torch

    _, config = timestep_run
    source, _ = checkpoint.load_latest(run_dir(timestep_run[0]))
    for bad in ({**source["model_config"], "d_model": "64"}, {**source["model_config"], "wings": 2}):
        torch.save({**source, "model_config": bad}, tmp_path / "odd.pt")
        with pytest.raises(
            checkpoint.CheckpointError, match=r"odd\.pt: its model_config and weights do not make a model"
        ):
            evaluate.main(config, checkpoint=str(tmp_path / "odd.pt"))
