"""The model a run trains: its ModelConfig resolved against the data, a memory check, then the model."""

from __future__ import annotations

import json
from dataclasses import replace

import torch

from runtime.config import Config
from runtime.data import DataBundle
from runtime.data.memory import available_memory, format_bytes
from runtime.nn.config import ModelConfig
from runtime.nn.models.signal import build_model, parameter_count
from runtime.train.errors import TrainingError
from runtime.train.placement import Placement

TRAINING_BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and AdamW's two moments
MODEL_SIZE_KEYS = ("d_model", "n_layers", "expand", "d_state", "d_conv", "downsample", "bidirectional")


def resolved_model_config(cfg: Config, bundle: DataBundle) -> ModelConfig:
    """The config's model with its head fitted to the data's labels ("auto": whichever they need) and the
    data's normalisation."""
    wanted = "timestep" if bundle.per_timestep else "window"
    model = replace(cfg.model, normalize=cfg.data.normalize)
    if model.head == "auto":
        return model.with_head(wanted)
    if cfg.model.head != wanted:
        kind = "per-timestep" if bundle.per_timestep else "per-window"
        raise TrainingError(
            f"model.head is '{cfg.model.head}' but the data has {kind} labels; "
            f"set model.head to '{wanted}' or 'auto'"
        )
    return model


def build(model_cfg: ModelConfig, bundle: DataBundle) -> torch.nn.Module:
    return build_model(model_cfg, bundle.in_channels, bundle.num_classes)


def check_model_fits(model_cfg: ModelConfig, bundle: DataBundle, placement: Placement) -> None:
    """Refuse, before building it, a model whose weights, gradients and AdamW states alone (activations come
    on top) need more memory than the device has available; CPU ranks of one machine share its RAM."""
    parameters = parameter_count(model_cfg, bundle.in_channels, bundle.num_classes)
    copies = placement.world.size if placement.device.type == "cpu" else 1
    needed = parameters * TRAINING_BYTES_PER_PARAMETER * copies
    available = available_memory(placement.device)
    if needed <= available:
        return
    sizes = ", ".join(f"model.{key} {json.dumps(getattr(model_cfg, key))}" for key in MODEL_SIZE_KEYS)
    ranks = f" for {copies} processes" if copies > 1 else ""
    raise TrainingError(
        f"the model does not fit in memory: its {parameters:,} parameters ({sizes}) need "
        f"{format_bytes(needed)}{ranks} for weights, gradients and AdamW states, more than the "
        f"{format_bytes(available)} available on {placement.device}; lower model.d_model (the count grows "
        "with its square), model.n_layers or model.expand"
    )
