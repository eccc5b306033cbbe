"""Checkpoints (and other files) that survive preemption: atomic writes, one previous generation kept.

``save`` writes to a temporary file in the same folder, fsyncs it, moves the current file aside as
``<name>.prev.pt`` and renames the new one into place, then fsyncs the folder. A reader therefore always finds
either the new or the old checkpoint whole. ``load_latest`` tries ``last.pt`` and then ``last.prev.pt``,
warning about any file it has to skip. Files are read with ``weights_only=True``: no code runs when a
checkpoint loads. Temporary files are those of :func:`runtime.core.files.write_atomic`;
:func:`runtime.core.files.remove_stale_temporaries` removes the ones whose writer was killed.
"""

from __future__ import annotations

import os
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runtime.core.errors import UserError
from runtime.core.files import write_atomic

FORMAT_VERSION = 1
LAST, BEST = "last.pt", "best.pt"
REQUIRED_KEYS = (
    "format",
    "model",
    "step",
    "epoch",
    "batch",
    "model_config",
    "in_channels",
    "num_classes",
    "per_timestep",
)


class CheckpointError(UserError, RuntimeError):
    """No usable checkpoint where one was required."""


def previous_of(path: Path) -> Path:
    return path.with_name(path.stem + ".prev" + path.suffix)


def save(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically, keeping the file it replaces as ``<stem>.prev.pt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(
        path,
        lambda handle: torch.save({"format": FORMAT_VERSION, **state}, handle),
        before_replace=_keep_previous,
    )


def _keep_previous(path: Path) -> None:
    if path.exists():
        os.replace(path, previous_of(path))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read one checkpoint; raise CheckpointError saying what is wrong with it."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises many types for damaged zips and pickles
        raise CheckpointError(f"{path}: {_why_unreadable(exc)}") from None
    missing = [key for key in REQUIRED_KEYS if key not in state] if isinstance(state, dict) else REQUIRED_KEYS
    if missing:
        raise CheckpointError(
            f"{path}: not an mtc checkpoint, or one damaged: {', '.join(missing)} missing "
            f"(an mtc checkpoint holds {', '.join(REQUIRED_KEYS)})"
        )
    if state["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {state['format']}, this version reads {FORMAT_VERSION}"
        )
    return state


def load_latest(
    run_dir: Path, name: str = LAST, map_location: str | torch.device = "cpu"
) -> tuple[dict, Path] | None:
    """The newest readable generation of ``name`` in ``run_dir``, or None when there is none at all."""
    candidates = [run_dir / name, previous_of(run_dir / name)]
    for path in candidates:
        if not path.exists():
            continue
        try:
            return load(path, map_location), path
        except CheckpointError as exc:
            warnings.warn(f"skipping a damaged checkpoint: {exc}", RuntimeWarning, stacklevel=2)
    return None


def rng_state() -> dict[str, Any]:
    """Every random number generator a training step may draw from."""
    numpy_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuples(state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _as_tuples(value: Any) -> Any:
    """random.setstate needs tuples; a saved state may come back with lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def _why_unreadable(exc: Exception) -> str:
    """Why a file did not load. Torch's own messages advise turning weights_only off, which would let the
    file run code, so they are never shown."""
    if isinstance(exc, pickle.UnpicklingError):
        return (
            "holds data other than tensors and plain values, so it was not loaded (no code in it ran); "
            "the file is damaged or not an mtc checkpoint"
        )
    return f"unreadable ({type(exc).__name__}): the file is truncated, damaged or not an mtc checkpoint"
