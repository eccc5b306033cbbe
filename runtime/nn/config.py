"""``ModelConfig``: the model's constructor arguments, with their defaults and checks, and no torch.

A training config's ``model:`` section becomes one (:func:`runtime.config.load_config`); a checkpoint saves it
as a plain dict (``to_dict``) and reads it back with ``from_dict``, where a field the checkpoint predates
takes its default. Torch-free, so the compiler's lint may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from runtime.core.diagnostics import did_you_mean

HEADS = ("window", "timestep")  # what the model builds; "auto" is resolved against the data first
KERNELS = ("auto", "fused", "torch")  # see runtime.nn.ops.scan.resolve_backend
NORMALIZE = ("channel", "window", "none")  # the training config's data.normalize
POSITIVE_INTEGERS = ("d_model", "n_layers", "d_state", "d_conv", "expand", "downsample")


@dataclass(frozen=True)
class ModelConfig:
    """Keyword arguments of :class:`runtime.nn.models.signal.SignalMamba` (``head`` may still be "auto")."""

    head: str = "auto"
    d_model: int = 64
    n_layers: int = 2
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    downsample: int = 4
    bidirectional: bool = False
    dropout: float = 0.0
    kernels: str = "auto"
    normalize: str = "none"  # set from data.normalize; "none" for checkpoints that predate it

    def __post_init__(self):
        check_choice("head", self.head, ("auto", *HEADS))
        check_choice("kernels", self.kernels, KERNELS)
        check_choice("normalize", self.normalize, NORMALIZE)
        for key in POSITIVE_INTEGERS:
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        """A ``model:`` section or a checkpoint's ``model_config``; a missing key takes its default."""
        names = [field.name for field in fields(cls)]
        unknown = [key for key in values if key not in names]
        if unknown:
            hints = "".join(f"\n  {key}{did_you_mean(key, names)}" for key in unknown)
            raise ValueError(f"unknown key(s) in model config (expected some of {', '.join(names)}):{hints}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_head(self, head: str) -> ModelConfig:
        return replace(self, head=head)


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}{did_you_mean(str(value), choices)}"
        )
