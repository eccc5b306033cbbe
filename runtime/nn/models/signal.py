"""The Mamba models the training code builds: mamba-ssm's mixer, residual blocks, a model for signal windows.

:class:`Mamba` has exactly mamba-ssm's constructor, parameter names, shapes and initialisation, so a
state_dict saved with mamba-ssm's ``Mamba`` (or on either of our paths) loads here. On CUDA it runs
mamba-ssm's fused ``mamba_inner_fn``; elsewhere the PyTorch path of :mod:`runtime.nn.ops.scan`. Which one is
decided
by ``kernels`` (auto|fused|torch, see :func:`runtime.nn.ops.scan.resolve_backend`): a missing mamba-ssm on a
GPU is an
error that says how to fix it, never a silent switch to another model. :class:`SignalMamba` logs its backend
(logger ``runtime.nn.models.signal``) when it is built and whenever it is moved to another device.

:class:`SignalMamba` takes windows of multichannel signals (batch, channels, time), e.g. EEG 19 x 15,360: a
strided convolutional stem downsamples time, residual Mamba blocks (optionally bidirectional) mix it, and a
head gives one prediction per window or one per input time step.
"""

from __future__ import annotations

import inspect
import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from runtime.core.diagnostics import did_you_mean
from runtime.nn.ops import scan as ssm

log = logging.getLogger("runtime.nn.models.signal")

HEADS = ("window", "timestep")


class Mamba(nn.Module):
    """mamba-ssm's Mamba mixer: (batch, length, d_model) -> (batch, length, d_model)."""

    def __init__(
        self,
        d_model,
        d_state=16,
        d_conv=4,
        expand=2,
        dt_rank="auto",
        dt_min=0.001,
        dt_max=0.1,
        dt_init="random",
        dt_scale=1.0,
        dt_init_floor=1e-4,
        conv_bias=True,
        bias=False,
        use_fast_path=True,
        layer_idx=None,
        device=None,
        dtype=None,
        kernels="auto",
    ):
        factory = {"device": device, "dtype": dtype}
        super().__init__()
        if kernels not in ssm.KERNELS:
            raise ValueError(f"kernels must be one of {', '.join(ssm.KERNELS)}, got {kernels!r}")
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.use_fast_path = use_fast_path
        self.layer_idx = layer_idx
        self.kernels = kernels

        self.in_proj = nn.Linear(d_model, self.d_inner * 2, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=conv_bias,
            **factory,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False, **factory)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True, **factory)
        self._init_dt_proj(dt_init, dt_scale, dt_min, dt_max, dt_init_floor)
        # S4D-real initialisation: A = -(1, 2, ..., d_state) for every channel, stored as log in float32.
        a = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(self.d_inner, device=device))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def _init_dt_proj(self, dt_init, dt_scale, dt_min, dt_max, dt_init_floor) -> None:
        """Weights keep the variance of dt; the bias makes softplus(bias) log-uniform in [dt_min, dt_max]."""
        std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -std, std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        bias = self.dt_proj.bias
        log_dt = torch.rand(self.d_inner, device=bias.device) * (math.log(dt_max) - math.log(dt_min))
        dt = torch.exp(log_dt + math.log(dt_min)).clamp(min=dt_init_floor)
        with torch.no_grad():
            bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        bias._no_reinit = True

    @property
    def scan_backend(self) -> str:
        """The scan :meth:`forward` runs on the parameters' device now: "fused" or "torch"."""
        return ssm.resolve_backend(self.kernels, self.A_log.device)

    def forward(self, hidden_states):
        backend = self.scan_backend
        if backend == "fused" and self.use_fast_path:
            return self._forward_fused(hidden_states)
        return self._forward_time_major(hidden_states, backend)

    def _forward_fused(self, hidden_states):
        """mamba-ssm's fast path: one fused kernel from in_proj's output to out_proj's."""
        xz = self.in_proj(hidden_states).transpose(1, 2)  # (b, 2 * d_inner, l)
        return ssm.fused_ops().mamba_inner_fn(
            xz,
            self.conv1d.weight,
            self.conv1d.bias,
            self.x_proj.weight,
            self.dt_proj.weight,
            self.out_proj.weight,
            self.out_proj.bias,
            -torch.exp(self.A_log.float()),
            None,
            None,
            self.D.float(),
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
        )

    def _forward_time_major(self, hidden_states, backend):
        """mamba-ssm's unfused path, computed time-major (l, b, channels) so every time step is contiguous."""
        xz = self.in_proj(hidden_states.transpose(0, 1))
        x, z = xz.chunk(2, dim=-1)
        x = self._causal_conv_silu(x)
        dt, B, C = self.x_proj(x).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.linear(dt, self.dt_proj.weight)  # the bias is added inside the scan, in float32
        scan = {"D": self.D.float(), "delta_bias": self.dt_proj.bias.float(), "delta_softplus": True}
        A = -torch.exp(self.A_log.float())
        if backend == "torch":
            y = ssm.selective_scan_time_major(x, dt, A, B, C, z=z, **scan)
        else:
            x, dt, B, C, z = (t.permute(1, 2, 0) for t in (x, dt, B, C, z))  # mamba-ssm's (b, d, l)
            y = ssm.selective_scan(x, dt, A, B, C, z=z, kernels=backend, **scan).permute(2, 0, 1)
        return self.out_proj(y).transpose(0, 1)

    def _causal_conv_silu(self, x):
        """silu(depthwise causal ``conv1d``) on time-major x (l, b, d_inner); see :class:`_CausalConvSiLU`."""
        return _CausalConvSiLU.apply(x, self.conv1d.weight.squeeze(1), self.conv1d.bias)


class _CausalConvSiLU(torch.autograd.Function):
    """silu(conv) with conv[t] = bias + sum_k w[k] x[t-K+1+k], x time-major (l, b, d), weight (d, K).

    A few shifted multiply-adds, much faster on CPU than a grouped convolution (same weights), with a
    hand-written backward: autograd through the same ops pads, copies and concatenates full-size tensors, and
    this is about a third fewer passes over them."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        taps = weight.shape[1]
        conv = x * weight[:, taps - 1] if bias is None else torch.addcmul(bias, x, weight[:, taps - 1])
        for tap, shift in _shifted_taps(taps, x.shape[0]):
            conv[shift:].addcmul_(x[:-shift], weight[:, tap])
        ctx.save_for_backward(x, weight, conv)
        ctx.has_bias = bias is not None
        return F.silu(conv)

    @staticmethod
    def backward(ctx, grad):
        x, weight, conv = ctx.saved_tensors
        taps = weight.shape[1]
        grad_conv = torch.ops.aten.silu_backward(grad, conv)
        grad_x = grad_conv * weight[:, taps - 1]
        grad_weight = torch.zeros_like(weight)
        grad_weight[:, taps - 1] = (grad_conv * x).sum(dim=(0, 1))
        for tap, shift in _shifted_taps(taps, x.shape[0]):
            grad_x[:-shift].addcmul_(grad_conv[shift:], weight[:, tap])
            grad_weight[:, tap] = (grad_conv[shift:] * x[:-shift]).sum(dim=(0, 1))
        grad_bias = grad_conv.sum(dim=(0, 1)) if ctx.has_bias else None
        return grad_x, grad_weight, grad_bias


def _shifted_taps(taps: int, length: int):
    """(tap, shift) of the conv taps reaching back ``shift`` >= 1 steps, within a sequence of ``length``."""
    return [(tap, taps - 1 - tap) for tap in range(taps - 1) if taps - 1 - tap < length]


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

    def forward(self, x):  # (batch, length, d_model)
        normed = self.norm(x)
        mixed = self.mixer(normed)
        if self.mixer_reverse is not None:
            mixed = mixed + self.mixer_reverse(normed.flip(1)).flip(1)
        return x + self.dropout(mixed)


class SignalMamba(nn.Module):
    """Windowed multichannel signals (e.g. EEG 19 ch x 15360 steps).

    ``forward(x)``: x (batch, in_channels, time) -> logits (batch, num_classes) for ``head="window"``, or
    (batch, num_classes, time) at the input's time resolution for ``head="timestep"`` (any time length).
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
    ):
        super().__init__()
        _check_choice("head", head, HEADS)
        _check_choice("kernels", kernels, ssm.KERNELS)
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

    def forward(self, x):
        length = x.shape[-1]
        features = self.stem(x).transpose(1, 2)  # (batch, steps, d_model)
        for block in self.blocks:
            features = block(features)
        features = self.norm(features)
        if self.head_kind == "window":
            return self.head(features.mean(dim=1))
        logits = self.head(features).transpose(1, 2)  # (batch, classes, steps)
        if logits.shape[-1] == length:
            return logits
        return F.interpolate(logits, size=length, mode="linear", align_corners=False)


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(choices)}, got {value!r}{did_you_mean(str(value), choices)}"
        )


MODEL_KEYS = (
    "head",
    "d_model",
    "n_layers",
    "d_state",
    "d_conv",
    "expand",
    "downsample",
    "bidirectional",
    "dropout",
    "kernels",
)


def build_model(model_cfg: dict, in_channels: int, num_classes: int) -> SignalMamba:
    """The model described by a training config's ``model:`` section (keyword arguments of SignalMamba)."""
    unknown = [key for key in model_cfg if key not in MODEL_KEYS]
    if unknown:
        hints = "".join(f"\n  {key}{did_you_mean(key, MODEL_KEYS)}" for key in unknown)
        raise ValueError(f"unknown key(s) in model config (expected some of {', '.join(MODEL_KEYS)}):{hints}")
    return SignalMamba(in_channels, num_classes, **model_cfg)


def parameter_count(model_cfg: dict, in_channels: int, num_classes: int) -> int:
    """How many parameters ``build_model(model_cfg, in_channels, num_classes)`` has, from the layer shapes
    alone (nothing is allocated, so a size far beyond the machine's memory can be refused with a message)."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(SignalMamba.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    options = {**defaults, **model_cfg}
    for key in ("d_model", "n_layers", "d_state", "d_conv", "expand", "downsample"):
        if not isinstance(options[key], int) or isinstance(options[key], bool) or options[key] < 1:
            raise ValueError(f"{key} must be a positive integer, got {options[key]!r}")
    d_model, downsample = options["d_model"], options["downsample"]
    mixers = 2 if options["bidirectional"] else 1
    mixer = mamba_parameter_count(d_model, options["d_state"], options["d_conv"], options["expand"])
    stem = in_channels * d_model * (2 * downsample + 1) + d_model
    block = d_model + mixers * mixer  # RMSNorm + Mamba (x2 when bidirectional)
    head = d_model + d_model * num_classes + num_classes  # final RMSNorm + Linear
    return stem + options["n_layers"] * block + head


def mamba_parameter_count(d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2) -> int:
    """Parameters of one :class:`Mamba` mixer with its default options (biases on conv1d and dt_proj only)."""
    d_inner = int(expand * d_model)
    dt_rank = math.ceil(d_model / 16)
    in_proj, out_proj = d_model * 2 * d_inner, d_inner * d_model
    conv1d = d_inner * d_conv + d_inner
    x_proj = d_inner * (dt_rank + 2 * d_state)
    dt_proj = dt_rank * d_inner + d_inner
    a_log_and_d = d_inner * d_state + d_inner
    return in_proj + conv1d + x_proj + dt_proj + a_log_and_d + out_proj
