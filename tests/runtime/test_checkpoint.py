"""runtime.train.checkpoint: atomic writes with one previous generation, damaged files skipped, RNG states."""

from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from runtime.core import files
from runtime.train import checkpoint


def state(step: int) -> dict:
    return {
        "model": {"w": torch.full((3,), float(step))},
        "step": step,
        "epoch": 0,
        "batch": step,
        "model_config": {"d_model": 8},
        "in_channels": 2,
        "num_classes": 2,
        "per_timestep": False,
    }


def test_save_keeps_the_previous_generation_and_no_temp_files(tmp_path):
    path = tmp_path / "run" / "last.pt"
    checkpoint.save(state(1), path)
    checkpoint.save(state(2), path)
    assert checkpoint.load(path)["step"] == 2
    assert checkpoint.load(tmp_path / "run" / "last.prev.pt")["step"] == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.prev.pt", "last.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_a_damaged_last_checkpoint_falls_back_with_a_warning(tmp_path, damage):
    path = tmp_path / "last.pt"
    checkpoint.save(state(1), path)
    checkpoint.save(state(2), path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    else:
        torch.save({"weights": torch.zeros(2)}, path)
    with pytest.warns(RuntimeWarning, match=r"skipping a damaged checkpoint: .*last\.pt"):
        found = checkpoint.load_latest(tmp_path)
    assert found is not None
    loaded, source = found
    assert loaded["step"] == 1 and source.name == "last.prev.pt"


def test_no_checkpoint_at_all(tmp_path):
    assert checkpoint.load_latest(tmp_path) is None
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "best.pt")


def test_both_generations_damaged_is_none_with_two_warnings(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"x")
    (tmp_path / "last.prev.pt").write_bytes(b"y")
    with pytest.warns(RuntimeWarning) as warned:
        assert checkpoint.load_latest(tmp_path) is None
    assert len(warned) == 2


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    checkpoint.save({**state(0), "rng": checkpoint.rng_state()}, tmp_path / "last.pt")
    expected = (random.random(), np.random.rand(), torch.rand(2))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    checkpoint.restore_rng_state(checkpoint.load(tmp_path / "last.pt")["rng"])
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(2), expected[2])


def test_write_atomic_replaces_content(tmp_path):
    path = tmp_path / "report.json"
    files.write_atomic(path, b"one")
    files.write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_checkpoint_without_the_model_description_is_named_as_not_an_mtc_checkpoint(tmp_path):
    incomplete = {key: value for key, value in state(1).items() if key != "model_config"}
    torch.save({"format": checkpoint.FORMAT_VERSION, **incomplete}, tmp_path / "last.pt")
    with pytest.raises(
        checkpoint.CheckpointError, match=r"last\.pt: not an mtc checkpoint.*model_config missing"
    ):
        checkpoint.load(tmp_path / "last.pt")


def test_a_checkpoint_holding_objects_is_refused_without_advice_to_turn_weights_only_off(tmp_path):
    torch.save({**state(1), "format": 1, "when": datetime.datetime(2026, 1, 1)}, tmp_path / "last.pt")
    with pytest.raises(checkpoint.CheckpointError) as refused:
        checkpoint.load(tmp_path / "last.pt")
    message = str(refused.value)
    assert "damaged or not an mtc checkpoint" in message and "no code in it ran" in message
    assert "weights_only" not in message and "trust" not in message


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    live_pid = os.getppid()  # the process that started pytest: alive, and not this one
    for pid in (dead_pid, live_pid, os.getpid()):
        (tmp_path / f".last.pt.{pid}.k2j4x9_a.tmp").write_bytes(b"partial checkpoint")
    (tmp_path / "last.pt").write_bytes(b"kept")
    removed = files.remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [f".last.pt.{dead_pid}.k2j4x9_a.tmp", f".last.pt.{os.getpid()}.k2j4x9_a.tmp"]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".last.pt.{live_pid}.k2j4x9_a.tmp", "last.pt"]
    )
