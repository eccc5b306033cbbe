"""runtime.train: the loop learns, resumes exactly after SIGKILL, survives a corrupt last.pt, stops on NaN."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from runtime.core.diagnostics import SpecError
from runtime.train import checkpoint, entry, metrics_log, runlock
from runtime.train import loss as losses
from runtime.train import placement as placements
from runtime.train import trainer as train
from runtime.train.errors import TrainingError
from runtime.train.optim import make_scheduler

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, **sections) -> str:
    """A tiny synthetic training config (2-4 s of CPU per run); ``sections`` update its top-level sections."""
    config = {
        "run_name": "tiny",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "format": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "synthetic": {
                "n_train": 256,
                "n_val": 64,
                "n_test": 64,
                "channels": 2,
                "length": 32,
                "burst_snr": 3.0,
            },
            "loader": {"batch_size": 32},
        },
        "model": {"d_model": 8, "n_layers": 1, "d_state": 4, "downsample": 2},
        "optim": {"lr": 0.005, "warmup_steps": 3},
        "train": {"epochs": 2, "log_every": 2, "checkpoint_every": 4, "seed": 3},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values} if isinstance(values, dict) else values
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "train.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return str(path)


def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "tiny"


@pytest.fixture
def one_thread():
    """Small models on a shared 2-core machine run faster on one thread than on two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_short_run_learns_the_synthetic_task(tmp_path, one_thread):
    config = write_config(
        tmp_path,
        data={
            "format": "synthetic",
            "cache_dir": str(tmp_path / "cache"),
            "loader": {"batch_size": 32},
            "synthetic": {
                "n_train": 1024,
                "n_val": 128,
                "n_test": 256,
                "channels": 4,
                "length": 64,
                "burst_snr": 3.0,
            },
        },
        model={"d_model": 32, "n_layers": 1, "d_state": 4, "downsample": 2},
        train={
            "epochs": 5,
            "log_every": 10,
            "checkpoint_every": 0,
            "seed": 0,
            "early_stopping": {"metric": "val_accuracy"},
        },
    )
    summary = entry.main(config, resume=False)
    assert summary["steps"] == 5 * (1024 // 32)
    assert summary["test_metrics"]["accuracy"] >= 0.9, summary["test_metrics"]
    assert summary["test_metrics"]["auroc"] >= 0.95
    assert summary["scan_backend"] == "torch"
    report = json.loads(Path(summary["report"]).read_text())
    assert report["split"] == "test" and report["windows"] == 256
    records = metrics_log.read_metrics(Path(summary["run_dir"]))
    train_losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert train_losses[-1] < train_losses[0] * 0.7
    assert all(r["windows_per_s"] > 0 for r in records if r["kind"] == "train")
    for plot in summary["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoints_hold_everything_needed_to_resume(tmp_path):
    commits = []
    summary = entry.main(write_config(tmp_path), resume=False, on_checkpoint=lambda: commits.append(1))
    state = checkpoint.load(Path(summary["last_checkpoint"]))
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "loop", "model_config"):
        assert key in state
    assert (state["step"], state["epoch"], state["batch"]) == (16, 2, 0)
    assert state["model_config"]["head"] == "window"
    # every 4 steps, at each epoch end, plus the report's commit
    assert len(commits) >= 16 // 4 + 1
    assert (run_dir(tmp_path) / "last.prev.pt").exists()


def test_resume_continues_and_resume_false_starts_over(tmp_path):
    config = write_config(tmp_path)
    entry.main(config, resume=False, **{"train.max_steps": 6})
    summary = entry.main(config, **{"train.max_steps": 10})
    assert summary["steps"] == 10
    steps = [r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path)) if r["kind"] == "train"]
    assert steps == [2, 4, 6, 8, 10]  # no step logged twice across the restart
    summary = entry.main(config, resume=False, **{"train.max_steps": 4})
    assert summary["steps"] == 4
    assert max(r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path))) == 4


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from runtime.train import entry, trainer as train
    config, kill_at = sys.argv[1], int(sys.argv[2])
    real_loss = train.compute_loss

    def loss_or_die(loss_fn, logits, labels, step):
        if step == kill_at:  # preempted in the middle of a step, between two checkpoints
            os.kill(os.getpid(), signal.SIGKILL)
        return real_loss(loss_fn, logits, labels, step)

    train.compute_loss = loss_or_die
    entry.main(config)
    """
)


def _run_child(config: str, kill_at: int = -1) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, config, str(kill_at)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(done.stderr[-3000:])
    return done.returncode


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path):
    sections = {
        "train": {"epochs": 3, "log_every": 1, "checkpoint_every": 5, "seed": 11},
        "model": {"d_model": 8, "n_layers": 1, "d_state": 4, "downsample": 2, "dropout": 0.1},
    }
    straight = write_config(tmp_path / "straight", **sections)
    killed = write_config(tmp_path / "killed", **sections)
    assert _run_child(straight) == 0
    assert _run_child(killed, kill_at=13) == -signal.SIGKILL  # in step 14; checkpoints at 5, 8, 10, 15, 16
    assert checkpoint.load(run_dir(tmp_path / "killed") / "last.pt")["step"] == 10
    logged = [
        r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path / "killed")) if r["kind"] == "train"
    ]
    assert logged[-1] == 13  # steps 11-13 ran and were logged after the checkpoint
    assert _run_child(killed) == 0
    expected = checkpoint.load(run_dir(tmp_path / "straight") / "last.pt")
    resumed = checkpoint.load(run_dir(tmp_path / "killed") / "last.pt")
    assert resumed["step"] == expected["step"] == 24
    for name, tensor in expected["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    assert resumed["loop"] == expected["loop"]
    logged = [
        r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path / "killed")) if r["kind"] == "train"
    ]
    assert logged == list(range(1, 25))  # each step logged once: the lines after the checkpoint were dropped


def test_a_corrupt_last_checkpoint_falls_back_to_the_previous_one(tmp_path):
    config = write_config(tmp_path)
    entry.main(config, resume=False, **{"train.max_steps": 8})
    last = run_dir(tmp_path) / "last.pt"
    previous_step = checkpoint.load(run_dir(tmp_path) / "last.prev.pt")["step"]
    last.write_bytes(last.read_bytes()[:1000])  # truncated, as by a crash of a non-atomic writer
    with pytest.warns(RuntimeWarning, match="damaged checkpoint.*last.pt"):
        summary = entry.main(config, **{"train.max_steps": 10})
    assert previous_step < 8
    assert summary["steps"] == 10
    assert checkpoint.load(last)["step"] == 10


def test_a_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real = train.compute_loss

    def poisoned(loss_fn, logits, labels, step):
        loss = real(loss_fn, logits, labels, step)
        return loss * float("nan") if step >= 6 else loss  # step index 6 is the 7th step

    monkeypatch.setattr(train, "compute_loss", poisoned)
    with pytest.raises(TrainingError) as stopped:
        entry.main(write_config(tmp_path), resume=False)
    message = str(stopped.value)
    assert "the training loss became nan at step 7; training stopped" in message
    assert (
        f"The last good checkpoint is {run_dir(tmp_path) / 'last.pt'} (step 4): starting again resumes"
        in message
    )
    assert "a changed optim section only takes effect with resume=False" in message
    assert "no checkpoint" not in message.lower()
    kept = checkpoint.load(run_dir(tmp_path) / "last.pt")
    assert kept["step"] == 4
    assert all(torch.isfinite(t).all() for t in kept["model"].values())


def test_a_nan_loss_before_any_checkpoint_says_a_restart_begins_at_step_0(tmp_path, monkeypatch):
    real = train.compute_loss
    monkeypatch.setattr(train, "compute_loss", lambda *args: real(*args) * float("nan"))
    with pytest.raises(TrainingError) as stopped:
        entry.main(write_config(tmp_path), resume=False)
    message = str(stopped.value)
    assert "No checkpoint was written in this run directory, so starting again trains from step 0" in message
    assert "resumes from" not in message
    assert not (run_dir(tmp_path) / "last.pt").exists()
    monkeypatch.setattr(train, "compute_loss", real)
    entry.main(write_config(tmp_path), **{"train.max_steps": 2})  # an earlier run leaves a checkpoint
    monkeypatch.setattr(train, "compute_loss", lambda *args: real(*args) * float("nan"))
    with pytest.raises(TrainingError, match=r"This run wrote no checkpoint; .*last\.pt is an earlier run's"):
        entry.main(write_config(tmp_path), resume=False)


def test_a_partial_last_line_in_metrics_is_skipped_by_the_one_reader(tmp_path):
    config = write_config(tmp_path)
    entry.main(config, resume=False, **{"train.max_steps": 4})
    metrics = run_dir(tmp_path) / metrics_log.METRICS_FILE
    whole = metrics_log.read_metrics(run_dir(tmp_path))
    with open(metrics, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "step": 5, "lo')  # killed in the middle of a write
    assert metrics_log.read_metrics(run_dir(tmp_path)) == whole
    summary = entry.main(config, **{"train.max_steps": 6})  # resumes, and the final evaluation plots them
    assert summary["steps"] == 6
    logged = [r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path)) if r["kind"] == "train"]
    assert logged == [2, 4, 6]  # log_every 2; the torn line is gone


def test_a_metrics_log_that_is_not_text_is_named_as_damaged(tmp_path):
    run_dir(tmp_path).mkdir(parents=True)
    (run_dir(tmp_path) / metrics_log.METRICS_FILE).write_bytes(b"\x9c\xff" + bytes(range(256)))
    with pytest.raises(TrainingError, match=r"metrics\.jsonl: not a metrics log \(not UTF-8 text\)"):
        metrics_log.read_metrics(run_dir(tmp_path))


HOLD_LOCK = """
import sys, time
from pathlib import Path
from runtime.train import runlock
with runlock.hold(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_second_training_on_a_run_directory_is_refused_until_the_first_dies(tmp_path):
    import socket

    config = write_config(tmp_path, train={"epochs": 1})
    run_dir(tmp_path).mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir(tmp_path))], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(runlock.RunDirError) as refused:
            entry.main(config)
        message = str(refused.value)
        assert f"in use by another training (PID {holder.pid} on {socket.gethostname()}, started" in message
        assert "another run_name" in message
        assert not (run_dir(tmp_path) / "metrics.jsonl").exists()  # refused before writing anything
    finally:
        holder.kill()  # SIGKILL: the kernel releases its lock; the file stays behind
        holder.wait()
    assert (run_dir(tmp_path) / ".lock").exists()
    assert entry.main(config)["steps"] > 0


def test_a_temporary_checkpoint_left_by_a_killed_writer_is_removed_at_the_next_start(tmp_path):
    config = write_config(tmp_path)
    run_dir(tmp_path).mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    litter = run_dir(tmp_path) / f".last.pt.{int(dead.stdout)}.k2j4x9_a.tmp"
    litter.write_bytes(b"\0" * 4096)
    entry.main(config, **{"train.max_steps": 2})
    assert not litter.exists()
    assert not list(run_dir(tmp_path).glob(".*.tmp"))


def test_a_model_too_large_for_memory_is_refused_before_it_is_built(tmp_path):
    started = time.perf_counter()
    with pytest.raises(TrainingError) as refused:
        entry.main(write_config(tmp_path), **{"model.d_model": 100000})
    message = str(refused.value)
    assert "the model does not fit in memory: its " in message
    assert "parameters (model.d_model 100000, model.n_layers 1, " in message
    assert "for weights, gradients and AdamW states, more than the" in message
    assert "lower model.d_model" in message
    assert time.perf_counter() - started < 30


def test_resuming_with_another_model_says_how_to_go_on(tmp_path):
    config = write_config(tmp_path)
    entry.main(config, resume=False, **{"train.max_steps": 2})
    with pytest.raises(TrainingError, match=r"last\.pt does not fit this config .*resume=False"):
        entry.main(config, **{"model.d_model": 12})


def test_early_stopping_ends_the_run_and_survives_a_restart(tmp_path):
    config = write_config(
        tmp_path,
        optim={"lr": 1e-12, "warmup_steps": 0},  # nothing improves
        train={
            "epochs": 5,
            "eval_every": 2,
            "checkpoint_every": 0,
            "early_stopping": {"metric": "val_accuracy", "patience": 2},
        },
    )
    summary = entry.main(config, resume=False)
    assert summary["stopped_early"] and summary["steps"] == 6 and summary["best_step"] == 2
    assert entry.main(config)["steps"] == 6  # a retry of a finished run does not train again


def test_overrides_are_validated_like_the_file(tmp_path):
    with pytest.raises(SpecError, match=r"train\.max_steps: .*from the override"):
        entry.main(write_config(tmp_path), **{"train.max_steps": 0})


def test_loss_functions_weight_classes():
    logits = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 0, 0, 0, 1])
    plain = losses.ClassificationLoss("cross_entropy", None, 2.0, 0.0)(logits, labels)
    weighted = losses.ClassificationLoss("cross_entropy", torch.tensor([1.0, 5.0]), 2.0, 0.0)(logits, labels)
    per_sample = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.isclose(plain, per_sample.mean())
    assert torch.isclose(weighted, (per_sample[:5].sum() + 5 * per_sample[5]) / 10)
    focal = losses.ClassificationLoss("focal", None, 0.0, 0.0)(logits, labels)
    assert torch.isclose(focal, plain)  # gamma 0 is cross-entropy
    sharper = losses.ClassificationLoss("focal", None, 2.0, 0.0)(logits, labels)
    assert sharper < plain
    timestep = losses.ClassificationLoss("focal", torch.tensor([1.0, 2.0]), 2.0, 0.0)(
        torch.randn(3, 2, 5), torch.randint(0, 2, (3, 5))
    )
    assert timestep.ndim == 0 and torch.isfinite(timestep)


def test_the_schedule_warms_up_then_decays_to_the_floor():
    from runtime.config import OptimConfig

    optim = OptimConfig(
        lr=1.0,
        weight_decay=0.0,
        betas=(0.9, 0.999),
        eps=1e-8,
        warmup_steps=10,
        min_lr_ratio=0.1,
        grad_clip=1.0,
    )
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = make_scheduler(optimizer, optim, 10, total_steps=110)
    rates = []
    for _ in range(110):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_precision_follows_the_device():
    assert placements.choose_precision("auto", torch.device("cpu")) == "fp32"
    with pytest.raises(TrainingError, match="fp16.*needs a GPU"):
        placements.choose_precision("fp16", torch.device("cpu"))


def test_the_module_cli_reports_bad_input_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: /tmp/x\ndata:\n  format: npz\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "runtime.train", str(bad)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert f"{bad}:2:1: error: data.train: required for format 'npz'" in done.stderr
    assert "Traceback" not in done.stderr
