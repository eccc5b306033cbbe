"""Where a process computes: device, precision (autocast), rank among the data-parallel processes, seeds.

Process-specific choices live in :class:`Placement`; only its ``is_main`` decides who writes checkpoints,
metrics and progress.
"""

from __future__ import annotations

import random
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from runtime.train import checkpoint
from runtime.train.distributed import SINGLE, World
from runtime.train.errors import TrainingError


@dataclass(frozen=True)
class Placement:
    """Where this process computes: device, precision, and its rank among the data-parallel processes."""

    device: torch.device
    precision: str  # "fp32" | "bf16" | "fp16"
    world: World = SINGLE

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()


def place(requested_precision: str, world: World = SINGLE) -> Placement:
    """The GPU (rank r of a data-parallel run: GPU r), else the CPU."""
    if not torch.cuda.is_available():
        device = torch.device("cpu")
    else:
        device = torch.device("cuda", world.device_index) if world.distributed else torch.device("cuda")
    return Placement(device, choose_precision(requested_precision, device), world)


def choose_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 on Ampere or newer, fp16 (with a GradScaler) on older GPUs, fp32 on CPU."""
    if device.type != "cuda":
        if requested == "fp16":
            raise TrainingError("train.precision is 'fp16', which needs a GPU; use 'auto' or 'fp32' on CPU")
        return "fp32" if requested == "auto" else requested
    bf16_ok = torch.cuda.get_device_capability(device)[0] >= 8
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    if requested == "bf16" and not bf16_ok:
        raise TrainingError(
            f"train.precision is 'bf16', but {torch.cuda.get_device_name(device)} is older than "
            "Ampere; use 'auto' (fp16 with loss scaling) or 'fp32'"
        )
    return requested


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seed_rank(seed: int, rank: int, step: int) -> None:
    """A stream of its own for a rank other than 0 (dropout draws), a function of (seed, rank, step)."""
    seed_everything(int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0]))


def data_parallel(model: torch.nn.Module, placement: Placement) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel in a data-parallel run (it averages the gradients)."""
    if not placement.world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    devices = [placement.device.index] if placement.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=devices)


def restore_rng(state: dict, world, seed: int) -> None:
    """Each rank's own RNG states when the checkpoint has one per rank of this world, else new streams."""
    by_rank = state.get("rng_by_rank")
    if not world.distributed:
        checkpoint.restore_rng_state(state["rng"])
    elif by_rank and len(by_rank) == world.size:
        checkpoint.restore_rng_state(by_rank[world.rank])
    else:  # written with another number of processes: the data order is kept, dropout draws are not
        seed_rank(seed, world.rank, state["step"])
