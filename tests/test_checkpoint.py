"""runtime.checkpoint: atomic writes with one previous generation, damaged files skipped, RNG states."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from runtime import checkpoint


def state(step: int) -> dict:
    return {"model": {"w": torch.full((3,), float(step))}, "step": step, "epoch": 0, "batch": step}


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
    checkpoint.write_atomic(path, b"one")
    checkpoint.write_atomic(path, b"two")
    assert path.read_bytes() == b"two" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
