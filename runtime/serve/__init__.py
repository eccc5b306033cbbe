"""Serving a trained run: :class:`Predictor` loads a checkpoint once and classifies windows.

The checkpoint (a run's ``best.pt``) holds everything a prediction needs: the model's config, its weights
with the training data's normalisation buffers, the channel count, the class names and whether labels are
per timestep. :meth:`Predictor.predict` takes a batch of windows ``(n, channels, length)`` and returns the
per-window class probabilities, and for a per-timestep model the per-timestep ones too. :meth:`Predictor.web`
is the same as an HTTP app (:mod:`runtime.serve.web`, needs the ``serve`` extra: FastAPI).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from runtime.core.errors import UserError
from runtime.nn.config import ModelConfig
from runtime.nn.models.signal import build_model
from runtime.paths import resolve
from runtime.train import checkpoint as checkpoint_file

MAX_WINDOWS = 4096  # per request: a bigger batch is split by the caller


class ServeError(UserError, ValueError):
    """A request the predictor cannot answer: the message says what the windows should be."""


class Predictor:
    """A run's checkpoint, loaded once (in ``__init__``: Modal's ``@modal.enter``), answering each call."""

    def __init__(self, checkpoint: str, device: str = "auto"):
        self.device = torch.device(_device(device))
        self.path = resolve(checkpoint)
        state = checkpoint_file.load(self.path, map_location=self.device)
        self.in_channels = int(state["in_channels"])
        self.per_timestep = bool(state["per_timestep"])
        self.class_names = [str(name) for name in state.get("class_names") or range(state["num_classes"])]
        try:
            model = build_model(
                ModelConfig.from_dict(state["model_config"]), self.in_channels, state["num_classes"]
            )
            model.load_state_dict(state["model"])
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            raise checkpoint_file.CheckpointError(
                f"{self.path}: its model_config and weights do not make a model ({type(exc).__name__})"
            ) from None
        self.model = model.to(self.device).eval()
        self._lock = threading.Lock()  # @modal.concurrent runs calls in threads; one forward pass at a time

    def describe(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.path),
            "channels": self.in_channels,
            "classes": self.class_names,
            "per_timestep": self.per_timestep,
            "device": str(self.device),
        }

    @torch.no_grad()
    def predict(self, windows: Any) -> dict[str, Any]:
        """Class probabilities of each window: ``probabilities`` (n, classes); a per-timestep model also
        gives ``timestep_probabilities`` (n, classes, length) and per window their mean over time."""
        batch = self.windows(windows)
        with self._lock:
            logits = self.model(torch.from_numpy(batch).to(self.device))
        probs = torch.softmax(logits.float(), dim=1).cpu()
        out: dict[str, Any] = {"classes": self.class_names, "windows": len(batch)}
        if self.per_timestep:
            out["probabilities"] = probs.mean(dim=-1).tolist()
            out["timestep_probabilities"] = probs.tolist()
        else:
            out["probabilities"] = probs.tolist()
        return out

    def windows(self, windows: Any) -> np.ndarray:
        """``windows`` as a float32 array (n, channels, length), or ServeError saying what is wrong."""
        try:
            batch = np.asarray(windows, dtype=np.float32)
        except (ValueError, TypeError):
            raise ServeError("windows must be numbers: a list of windows, each a list of channels") from None
        if batch.ndim == 2:
            batch = batch[None]
        expected = f"(windows, {self.in_channels} channels, samples)"
        if batch.ndim != 3 or batch.shape[1] != self.in_channels or batch.shape[2] == 0:
            raise ServeError(f"windows have shape {tuple(batch.shape)}; this model takes {expected}")
        if not 0 < len(batch) <= MAX_WINDOWS:
            raise ServeError(f"{len(batch)} windows in one request; send 1 to {MAX_WINDOWS}")
        if not np.isfinite(batch).all():
            raise ServeError("windows hold NaN or infinite values")
        return batch

    def web(self):
        """The predictor as an ASGI app: POST /predict (JSON or .npz), GET /health."""
        from runtime.serve.web import make_app

        return make_app(self)


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
