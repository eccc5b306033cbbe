"""A tiny checkpoint as training writes one, for the tests that serve it."""

from __future__ import annotations

from pathlib import Path

import torch

from runtime.nn.config import ModelConfig
from runtime.nn.models.signal import build_model
from runtime.train import checkpoint

CHANNELS, LENGTH = 3, 32


def write_checkpoint(path: Path, *, per_timestep: bool = False, seed: int = 0) -> Path:
    """A tiny trained-looking checkpoint: config, weights (with channel statistics) and data shape."""
    torch.manual_seed(seed)
    config = ModelConfig(
        head="timestep" if per_timestep else "window", d_model=8, n_layers=1, d_state=4, normalize="channel"
    )
    model = build_model(config, CHANNELS, 2)
    model.set_channel_statistics(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]))
    state = {
        "model": model.state_dict(),
        "model_config": config.to_dict(),
        "step": 10,
        "epoch": 1,
        "batch": 0,
        "in_channels": CHANNELS,
        "num_classes": 2,
        "per_timestep": per_timestep,
        "class_names": ["background", "seizure"],
    }
    checkpoint.save(state, path)
    return path
