"""mamba-ssm's ``Mamba`` block: the same constructor, parameter names, shapes and initialisation.

A state_dict saved with mamba-ssm's ``Mamba`` (or on either of our paths) loads here. On CUDA it runs
mamba-ssm's fused ``mamba_inner_fn``; elsewhere the PyTorch path of :mod:`runtime.nn.ops.scan`. Which one is
decided by ``kernels`` (auto|fused|torch, see :func:`runtime.nn.ops.scan.resolve_backend`): a missing
mamba-ssm on a GPU is an error that says how to fix it, never a silent switch to another model.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from runtime.nn.ops import scan as ssm


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
