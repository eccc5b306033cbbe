"""Data-parallel training on CPU (gloo, 2 processes): the loss curve of one process with the same global
batch, resume after a SIGKILL, failures that end the run with their message, `mtc run --processes 2`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from runtime.data.loading import EpochBatchSampler
from runtime.train import checkpoint, distributed, entry, metrics_log
from runtime.train import loss as losses
from runtime.train import trainer as train
from runtime.train.errors import TrainingError
from tests.runtime.test_train import run_dir, write_config

REPO = Path(__file__).resolve().parents[2]
SMALL = {"n_train": 128, "n_val": 32, "n_test": 32, "channels": 2, "length": 32, "burst_snr": 3.0}


def small_config(tmp_path: Path, **sections) -> str:
    """4 global batches of 32 per epoch."""
    data = {
        "format": "synthetic",
        "cache_dir": str(tmp_path / "cache"),
        "synthetic": SMALL,
        "loader": {"batch_size": 32},
    }
    return write_config(tmp_path, data={**data, **sections.pop("data", {})}, **sections)


class Preempted(Exception):
    pass


def curve(path: Path) -> tuple[list[int], np.ndarray]:
    records = [r for r in metrics_log.read_metrics(path) if r["kind"] in ("train", "val")]
    return [r["step"] for r in records], np.array([r.get("loss", r.get("val_loss")) for r in records])


# ------------------------------------------------------------------------------------------ in-process pieces


def test_each_rank_takes_its_share_of_every_global_batch():
    single = EpochBatchSampler(70, 16, seed=1, shuffle=True, drop_last=False)
    shares = [
        EpochBatchSampler(70, 16, seed=1, shuffle=True, drop_last=False, rank=r, world_size=2) for r in (0, 1)
    ]
    for sampler in (single, *shares):
        sampler.set_position(epoch=3, start_batch=1)  # a resumed epoch starts at the same global batch
    for whole, first, second in zip(single, *shares, strict=True):
        assert np.array_equal(whole, np.concatenate([first, second]))
        assert abs(len(first) - len(second)) <= 1  # the last, partial batch (6 windows) splits 3 + 3


@pytest.mark.parametrize(
    "kind, weights, smoothing",
    [
        ("cross_entropy", None, 0.0),
        ("cross_entropy", [1.0, 4.0, 0.5], 0.1),
        ("focal", None, 0.0),
        ("focal", [1.0, 4.0, 0.5], 0.0),
    ],
)
@pytest.mark.parametrize("per_timestep", [False, True])
def test_shares_weighted_by_their_total_weight_give_the_global_loss(kind, weights, smoothing, per_timestep):
    generator = torch.Generator().manual_seed(0)
    shape = (12, 3, 5) if per_timestep else (12, 3)
    logits = torch.randn(*shape, generator=generator)
    labels = torch.tensor([0] * 9 + [1, 2, 1])  # unbalanced, so shares weigh differently
    if per_timestep:
        labels = labels[:, None].repeat(1, 5)
    loss_fn = losses.ClassificationLoss(
        kind, None if weights is None else torch.tensor(weights), 2.0, smoothing
    )
    shares = [(logits[:6], labels[:6]), (logits[6:], labels[6:])]
    total = sum(loss_fn.total_weight(y) for _, y in shares)
    combined = sum(loss_fn(x, y) * loss_fn.total_weight(y) / total for x, y in shares)
    assert torch.isclose(combined, loss_fn(logits, labels), rtol=1e-5)


def test_the_process_count_comes_from_the_machine_or_mtc_nproc(monkeypatch):
    monkeypatch.delenv(distributed.NPROC_ENV, raising=False)
    assert distributed.process_count() == max(1, torch.cuda.device_count())
    monkeypatch.setenv(distributed.NPROC_ENV, "3")
    assert distributed.process_count() == 3
    monkeypatch.setenv(distributed.NPROC_ENV, "two")
    with pytest.raises(distributed.WorldError, match="MTC_NPROC='two': expected a whole number"):
        distributed.process_count()


def test_a_global_batch_that_does_not_split_evenly_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    config = small_config(tmp_path, data={"loader": {"batch_size": 33}})
    with pytest.raises(
        TrainingError, match=r"batch_size is 33, the global batch .* divisible by 2; use 32 or 34"
    ):
        entry.main(config, resume=False)


# ------------------------------------------------------------------------------------------ 2 processes


@pytest.mark.parametrize(
    "loss, alone_until",
    [({}, 0), ({"class_weights": [1.0, 3.0], "label_smoothing": 0.1}, 3)],
    ids=["plain", "class-weighted, resumed by 2 processes from a 1-process checkpoint at step 3"],
)
def test_two_processes_follow_the_loss_curve_of_one(tmp_path, monkeypatch, loss, alone_until):
    sections = {"train": {"epochs": 2, "log_every": 1, "checkpoint_every": 3, "seed": 5, "loss": loss}}
    monkeypatch.setenv(distributed.NPROC_ENV, "1")
    single = entry.main(small_config(tmp_path / "single", **sections), resume=False)
    config = small_config(tmp_path / "double", **sections)
    if alone_until:  # one process trains until it is stopped after the checkpoint at step `alone_until`
        real = train.compute_loss

        def stop_after_checkpoint(loss_fn, logits, labels, step):
            if step == alone_until:
                raise Preempted
            return real(loss_fn, logits, labels, step)

        monkeypatch.setattr(train, "compute_loss", stop_after_checkpoint)  # the spawned ranks do not see it
        with pytest.raises(Preempted):
            entry.main(config, resume=False)
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    commits = []
    double = entry.main(config, resume=bool(alone_until), on_checkpoint=lambda: commits.append(1))
    assert double["steps"] == single["steps"] == 8
    steps, losses = curve(Path(single["run_dir"]))
    double_steps, double_losses = curve(Path(double["run_dir"]))
    assert double_steps == steps
    np.testing.assert_allclose(double_losses, losses, rtol=1e-4)
    assert double["test_metrics"]["accuracy"] == pytest.approx(single["test_metrics"]["accuracy"], abs=1e-6)
    # checkpoints at steps 3 (unless written by the single process), 4 (epoch end), 6, 8, and the report
    assert len(commits) == (4 if alone_until else 5)
    # the checkpoint holds plain module weights (no DDP "module." prefix) and each rank's RNG states
    state = checkpoint.load(Path(double["last_checkpoint"]))
    assert not any(key.startswith("module.") for key in state["model"])
    assert len(state["rng_by_rank"]) == 2


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from runtime.train import entry, trainer as train

    real_loss = train.compute_loss

    def loss_or_die(loss_fn, logits, labels, step):
        # spawned ranks re-run this file's top level, so rank 1 gets the patch too
        if os.environ.get("RANK") == "1" and step == int(os.environ["KILL_AT"]):
            if os.environ["KILL"] == "everything":  # the container is preempted
                os.killpg(0, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)  # only this rank dies (e.g. the OOM killer)
        return real_loss(loss_fn, logits, labels, step)

    train.compute_loss = loss_or_die

    if __name__ == "__main__":
        entry.main(sys.argv[1])
    """
)


def run_distributed(tmp_path: Path, config: str, *, kill_at: int = -1, kill: str = "everything"):
    script = tmp_path / "ddp_child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        distributed.NPROC_ENV: "2",
        "OMP_NUM_THREADS": "1",
        "KILL_AT": str(kill_at),
        "KILL": kill,
    }
    return subprocess.run(
        [sys.executable, str(script), config],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        start_new_session=True,  # its own process group, which "everything" kills
    )


# 12 steps with dropout, checkpoints every 5: a run killed and resumed must end as an uninterrupted one
KILLED_RUN = {
    "train": {"epochs": 3, "log_every": 1, "checkpoint_every": 5, "seed": 11},
    "model": {"d_model": 8, "n_layers": 1, "d_state": 4, "downsample": 2, "dropout": 0.1},
}


def assert_resumed_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    """The run in ``tmp_path/killed`` ended as the one in ``tmp_path/straight``, logging each step once."""
    expected = checkpoint.load(run_dir(tmp_path / "straight") / "last.pt")
    resumed = checkpoint.load(run_dir(tmp_path / "killed") / "last.pt")
    assert resumed["loop"] == expected["loop"] and resumed["step"] == expected["step"] == 12
    for name, tensor in expected["model"].items():  # dropout included: each rank's RNG was restored
        torch.testing.assert_close(resumed["model"][name], tensor, rtol=1e-5, atol=1e-7, msg=name)
    logged = [
        r["step"] for r in metrics_log.read_metrics(run_dir(tmp_path / "killed")) if r["kind"] == "train"
    ]
    assert logged == list(range(1, 13))


def test_a_distributed_run_killed_with_sigkill_resumes_to_the_uninterrupted_weights(tmp_path):
    straight = small_config(tmp_path / "straight", **KILLED_RUN)
    killed = small_config(tmp_path / "killed", **KILLED_RUN)
    done = run_distributed(tmp_path, straight)
    assert done.returncode == 0, done.stderr[-3000:]
    # in step 7; checkpoints at 4, 5, 8 (rank 0 has written step 5's: step 6 needed it to exchange gradients)
    done = run_distributed(tmp_path, killed, kill_at=6)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert checkpoint.load(run_dir(tmp_path / "killed") / "last.pt")["step"] == 5
    done = run_distributed(tmp_path, killed)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stderr and "at step 5" in done.stderr
    assert_resumed_to_the_uninterrupted_weights(tmp_path)


def test_a_rank_that_dies_ends_the_run_with_a_message_instead_of_a_hang(tmp_path):
    done = run_distributed(tmp_path, small_config(tmp_path), kill_at=1, kill="rank")
    assert done.returncode == 1
    assert "rank 1 of 2 data-parallel processes was killed by signal 9" in done.stderr


def test_a_ranks_error_reaches_the_caller_as_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(distributed.NPROC_ENV, "2")
    config = small_config(tmp_path, model={"head": "timestep"})  # the synthetic data has per-window labels
    with pytest.raises(TrainingError, match="model.head is 'timestep' but the data has per-window") as caught:
        entry.main(config, resume=False)
    assert any("raised in data-parallel rank" in note for note in caught.value.__notes__)


def test_mtc_run_with_two_processes_trains_end_to_end(tmp_path):
    config = small_config(tmp_path)
    volumes = tmp_path / "volumes"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler.cli",
            "run",
            "train",
            "--profile",
            "debug",
            "--arg",
            f"config={config}",
            "--volumes-dir",
            str(volumes),
            "--processes",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"data-parallel: 2 processes on \d+ core\(s\), \d+ thread\(s\) each", done.stderr)
    assert "data-parallel training: 2 processes (gloo), global batch 32, 16 per process" in done.stderr
    assert (run_dir(tmp_path) / "report.json").is_file()


def test_local_process_counts_are_capped_by_the_cores_and_usage_errors_exit_3(tmp_path):
    from compiler.backends.local import prepare as localrun
    from compiler.platform.resources import Gpu

    run = localrun.LocalRun(
        function="train",
        target="runtime.train:main",
        workdir=tmp_path,
        kwargs={},
        mounts=(),
        path_map={},
        cores=2,
        declared_cpu=8,
        memory_mib=None,
        timeout_s=60,
        attempts=1,
        retry_delays_s=(),
    )
    said = []
    assert localrun.with_processes(run, 8, said.append).env[localrun.NPROC_ENV] == "2"
    assert said == ["8 data-parallel processes asked for, but train may use 2 core(s) here; running 2"]
    assert localrun.with_processes(run, 2, said.append).env[localrun.NPROC_ENV] == "2" and len(said) == 1
    resources = SimpleNamespace(gpus=(Gpu("H100", 8), Gpu("A100")))  # H100:8, falling back to one A100
    assert localrun.declared_gpu_count(SimpleNamespace(resources=resources)) == 8
    assert localrun.declared_gpu_count(SimpleNamespace(resources=SimpleNamespace(gpus=()))) == 1
    for extra in (
        ["--ddp", "--backend", "modal"],
        ["--processes", "2", "--ddp"],
        ["--processes", "2", "--sweep"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "compiler.cli", "run", "train", *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 3 and "--processes and --ddp" in done.stderr, extra
