"""The signal classifier: :class:`SignalMamba` over windows of multichannel signals.

It takes (batch, channels, time), e.g. EEG 19 x 15,360: a strided convolutional stem downsamples time,
residual :class:`~runtime.nn.modules.mamba.Mamba` blocks (optionally bidirectional) mix it, and a head gives
one prediction per window or one per input time step. It logs its scan backend (logger
``runtime.nn.models.signal``) when it is built and whenever it is moved to another device.
"""

from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from runtime.nn.config import HEADS, KERNELS, NORMALIZE, ModelConfig, check_choice
from runtime.nn.modules.mamba import Mamba, mamba_parameter_count
from runtime.nn.ops import scan as ssm

log = logging.getLogger("runtime.nn.models.signal")


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last dimension with a learned scale ``weight``."""

    def __init__(self, d_model: int, eps: float = 1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, x):
        scale = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (x.float() * scale).to(x.dtype) * self.weight


class ResidualBlock(nn.Module):
    """``x + Mamba(RMSNorm(x))``; bidirectional adds a second Mamba run over the time-reversed sequence."""

    def __init__(
        self,
        d_model: int,
        *,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        bidirectional: bool = False,
        dropout: float = 0.0,
        kernels: str = "auto",
        layer_idx=None,
    ):
        super().__init__()
        mixer = {
            "d_state": d_state,
            "d_conv": d_conv,
            "expand": expand,
            "kernels": kernels,
            "layer_idx": layer_idx,
        }
        self.norm = RMSNorm(d_model)
        self.mixer = Mamba(d_model, **mixer)
        self.mixer_reverse = Mamba(d_model, **mixer) if bidirectional else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, lengths=None):  # (batch, length, d_model); lengths: valid steps of each sequence
        normed = self.norm(x)
        mixed = self.mixer(normed)
        if self.mixer_reverse is not None:
            mixed = mixed + reverse_within(self.mixer_reverse(reverse_within(normed, lengths)), lengths)
        return x + self.dropout(mixed)


def reverse_within(x, lengths=None):
    """``x`` (batch, steps, d) with each sequence's first ``lengths`` steps reversed and its padding left in
    place, so a scan over the result sees the real steps first and padding cannot reach them."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
    last = lengths.to(x.device)[:, None] - 1
    order = torch.where(steps <= last, last - steps, steps)
    return x.gather(1, order[..., None].expand_as(x))


def valid_mask(lengths, steps: int, device) -> torch.Tensor:
    """(batch, steps) booleans: True on each sequence's first ``lengths`` steps."""
    return torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]


class SignalMamba(nn.Module):
    """Windowed multichannel signals (e.g. EEG 19 ch x 15360 steps).

    ``forward(x, lengths=None)``: x (batch, in_channels, time) -> logits (batch, num_classes) for
    ``head="window"``, or (batch, num_classes, time) at the input's time resolution for ``head="timestep"``
    (any time length). ``lengths`` (batch,) gives each window's valid steps; what follows is padding, which
    changes nothing in the valid steps' outputs (the scans are causal, the reverse scan runs within each
    length, pooling counts valid steps only).

    ``normalize``: "channel" standardises each channel with statistics of the training data, held in the
    buffers ``channel_mean``/``channel_std`` (so every consumer of a checkpoint applies them); "window" with
    each window's own statistics; "none" not at all.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        head: str = "window",
        d_model: int = 64,
        n_layers: int = 2,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        downsample: int = 4,
        bidirectional: bool = False,
        dropout: float = 0.0,
        kernels: str = "auto",
        normalize: str = "none",
    ):
        super().__init__()
        check_choice("head", head, HEADS)
        check_choice("kernels", kernels, KERNELS)
        check_choice("normalize", normalize, NORMALIZE)
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("d_model", d_model),
            ("n_layers", n_layers),
            ("downsample", downsample),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.head_kind = head
        self.kernels = kernels
        self.normalize = normalize
        if normalize == "channel":
            self.register_buffer("channel_mean", torch.zeros(in_channels))
            self.register_buffer("channel_std", torch.ones(in_channels))
        self.downsample = downsample
        # Kernel 2s+1 with padding s and stride s gives ceil(T / s) steps, each seeing its whole stride.
        self.stem = nn.Conv1d(
            in_channels, d_model, kernel_size=2 * downsample + 1, stride=downsample, padding=downsample
        )
        self.blocks = nn.ModuleList(
            ResidualBlock(
                d_model,
                d_state=d_state,
                d_conv=d_conv,
                expand=expand,
                bidirectional=bidirectional,
                dropout=dropout,
                kernels=kernels,
                layer_idx=index,
            )
            for index in range(n_layers)
        )
        self.norm = RMSNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self._logged_device: torch.device | None = None
        self._log_backend()

    @property
    def scan_backend(self) -> str:
        """The scan backend on the device the model is on now: "fused" or "torch" (raises if fused is required
        but missing)."""
        return ssm.resolve_backend(self.kernels, self.head.weight.device)

    def _log_backend(self) -> None:
        device = self.head.weight.device
        if device == self._logged_device:
            return
        backend = self.scan_backend
        self._logged_device = device
        note = ""
        if ssm.torch_scan_forced():
            note = f" ({ssm.FORCE_TORCH_ENV} is set)"
        elif backend == "torch" and self.kernels == "auto":
            note = " (kernels=auto: mamba-ssm's fused kernels will be required once on CUDA)"
        log.info("SignalMamba on %s: scan backend %s, kernels=%s%s", device, backend, self.kernels, note)

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda() end here: check and log the backend for the new device right away, not at first batch.
        moved = super()._apply(fn, *args, **kwargs)
        if hasattr(self, "_logged_device"):
            self._log_backend()
        return moved

    def set_channel_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """The training data's per-channel mean and standard deviation (normalize="channel")."""
        self.channel_mean.copy_(mean)
        self.channel_std.copy_(std)

    def normalized(self, x, mask=None):
        """``x`` standardised as ``normalize`` says, with padding (``mask`` False) set to zero."""
        if self.normalize == "channel":
            x = (x - self.channel_mean[:, None].to(x.dtype)) / self.channel_std[:, None].to(x.dtype)
        elif self.normalize == "window":
            weight = torch.ones_like(x[:, :1]) if mask is None else mask[:, None].to(x.dtype)
            count = weight.sum(-1, keepdim=True).clamp_min(1)
            mean = (x * weight).sum(-1, keepdim=True) / count
            std = (((x - mean) * weight).pow(2).sum(-1, keepdim=True) / count).sqrt()
            x = (x - mean) / (std + 1e-5)
        return x if mask is None else x * mask[:, None].to(x.dtype)

    def forward(self, x, lengths=None):
        length = x.shape[-1]
        mask = None if lengths is None else valid_mask(lengths, length, x.device)
        features = self.stem(self.normalized(x, mask)).transpose(1, 2)  # (batch, steps, d_model)
        steps = None if lengths is None else -(-lengths.to(x.device) // self.downsample)
        for block in self.blocks:
            features = block(features, steps)
        features = self.norm(features)
        if self.head_kind == "window":
            if steps is None:
                return self.head(features.mean(dim=1))
            weight = valid_mask(steps, features.shape[1], x.device)[..., None].to(features.dtype)
            return self.head((features * weight).sum(1) / weight.sum(1).clamp_min(1))
        logits = self.head(features).transpose(1, 2)  # (batch, classes, steps)
        if logits.shape[-1] == length:
            return logits
        return F.interpolate(logits, size=length, mode="linear", align_corners=False)


def build_model(config: ModelConfig, in_channels: int, num_classes: int) -> SignalMamba:
    """The model a :class:`ModelConfig` describes (its head resolved: "window" or "timestep")."""
    return SignalMamba(in_channels, num_classes, **config.to_dict())


def parameter_count(config: ModelConfig, in_channels: int, num_classes: int) -> int:
    """How many parameters ``build_model(config, in_channels, num_classes)`` has, from the layer shapes
    alone (nothing is allocated, so a size far beyond the machine's memory can be refused with a message)."""
    d_model, downsample = config.d_model, config.downsample
    mixers = 2 if config.bidirectional else 1
    mixer = mamba_parameter_count(d_model, config.d_state, config.d_conv, config.expand)
    stem = in_channels * d_model * (2 * downsample + 1) + d_model
    block = d_model + mixers * mixer  # RMSNorm + Mamba (x2 when bidirectional)
    head = d_model + d_model * num_classes + num_classes  # final RMSNorm + Linear
    return stem + config.n_layers * block + head
