"""Selective scan (Mamba's S6 recurrence) with mamba-ssm's ``selective_scan_fn`` interface; backend choice.

For every batch b, channel d and state n::

    delta = softplus(delta + delta_bias)            (each step optional)
    h[t]  = exp(delta[t] * A) * h[t-1] + delta[t] * B[t] * u[t]
    y[t]  = sum_n C[t] * h[t]  + D * u[t]           (D optional)
    out   = y * silu(z)                             (z optional)

Shapes as in mamba-ssm: u, delta, z (b, d, l); A (d, n); B, C (b, n, l); D, delta_bias (d,).

Two implementations sit behind :func:`selective_scan`: mamba-ssm's fused CUDA kernel, and a pure-PyTorch one
(a custom autograd Function with a hand-written backward) for CPUs, CI and machines without mamba-ssm. Which
one runs is decided by :func:`resolve_backend` and never silently: on a CUDA device the fused kernel is
required unless the caller asks for the PyTorch path (``kernels="torch"``) or sets ``MTC_FORCE_TORCH_SCAN=1``.
mamba-ssm is imported lazily, only when the fused path is chosen, so importing this module never needs CUDA.

The PyTorch path works time-major and in chunks of time steps: per chunk it builds the decays exp(delta*A) and
the inputs delta*u*B in one vectorised op each, runs the recurrence as one in-place multiply-add per step, and
reduces the outputs with batched matrix products. Only the state entering each chunk is kept for the backward
pass, which recomputes a chunk's states, runs the adjoint recurrence backwards and reduces every gradient with
batched ops. Chunks are sized so their working set stays in cache, and memory does not grow with b*d*n*l.
"""

from __future__ import annotations

import os
from types import ModuleType

import torch
import torch.nn.functional as F

from runtime.core.env import FORCE_TORCH_SCAN as FORCE_TORCH_ENV
from runtime.core.errors import UserError
from runtime.nn.config import KERNELS

GPU_INSTALL_HINT = (
    "install the GPU extra on a CUDA devel image (nvcc present), built against the installed torch: "
    "pip install --no-build-isolation '.[gpu]'; or set `kernels: torch` in the model config to run the "
    "(slower) PyTorch scan on purpose"
)
# Elements of one chunk-sized (steps, b, d, n) buffer: 2**21 floats = 8 MiB, so the few such buffers a chunk
# uses stay in the last-level cache while few enough ops run per chunk. Measured on 2 cores: 32 steps of
# b*d*n = 65536 run 15% faster than 8 or 64 steps, and 2x faster than 256 steps (benchmarks/scan.py).
CHUNK_ELEMENTS = 1 << 21


class FusedKernelsUnavailable(UserError, RuntimeError):
    """The fused mamba-ssm path was required but cannot be used here."""


def torch_scan_forced() -> bool:
    """True when the environment forces the PyTorch scan (for diagnosing the fused path)."""
    return os.environ.get(FORCE_TORCH_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def fused_ops() -> ModuleType:
    """mamba-ssm's ``selective_scan_interface`` module, imported on first use; clear error if it can't be."""
    try:
        import causal_conv1d  # noqa: F401  (mamba_inner_fn needs its kernels)
        from mamba_ssm.ops import selective_scan_interface
    except Exception as error:  # ImportError, or a broken build raising OSError/RuntimeError at import
        raise FusedKernelsUnavailable(
            f"mamba-ssm's fused kernels cannot be imported ({type(error).__name__}: {error}); "
            f"{GPU_INSTALL_HINT}"
        ) from error
    return selective_scan_interface


def resolve_backend(kernels: str, device: torch.device | str) -> str:
    """The scan backend ("fused" or "torch") for ``kernels`` (auto|fused|torch) on ``device``.

    ``auto`` means fused on CUDA (required: a missing mamba-ssm is an error, not a fallback), torch elsewhere.
    ``MTC_FORCE_TORCH_SCAN=1`` overrides everything with the PyTorch path.
    """
    if kernels not in KERNELS:
        raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    if torch_scan_forced():
        return "torch"
    if kernels == "torch":
        return "torch"
    on_cuda = torch.device(device).type == "cuda"
    if kernels == "fused" and not on_cuda:
        raise FusedKernelsUnavailable(
            f"kernels=fused needs a CUDA device, but the model is on {torch.device(device)}; "
            "use `kernels: auto` (PyTorch scan on CPU) or run on a GPU"
        )
    if not on_cuda:
        return "torch"
    fused_ops()
    return "fused"


def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    *,
    kernels: str = "auto",
):
    """mamba-ssm's ``selective_scan_fn``: returns ``out`` (b, d, l), or ``(out, last_state)`` with last_state
    (b, d, n) when ``return_last_state``. ``kernels`` picks the implementation (:func:`resolve_backend`)."""
    if resolve_backend(kernels, u.device) == "fused":
        return fused_ops().selective_scan_fn(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        )
    return selective_scan_torch(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def selective_scan_torch(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The pure-PyTorch selective scan (any device). Computes in float32, or float64 for float64 input."""
    _check_shapes(u, delta, A, B, C)
    result = selective_scan_time_major(
        *(_time_major_view(t) for t in (u, delta)),
        A,
        *(_time_major_view(t) for t in (B, C)),
        D,
        _time_major_view(z) if z is not None else None,
        delta_bias,
        delta_softplus,
        return_last_state,
    )
    if return_last_state:
        return result[0].permute(1, 2, 0), result[1]
    return result.permute(1, 2, 0)


def selective_scan_time_major(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """:func:`selective_scan_torch` on time-major tensors, the layout the PyTorch path runs in: u, delta,
    z and the output are (l, b, d); B, C (l, b, n). Lets a model skip two layout copies per tensor."""
    compute = torch.float64 if u.dtype == torch.float64 else torch.float32
    u_compute = u.to(compute)
    delta = delta.to(compute)
    if delta_bias is not None:
        delta = delta + delta_bias.to(compute)
    if delta_softplus:
        delta = F.softplus(delta)
    with torch.autocast(device_type=u.device.type, enabled=False):  # the scan's products stay in `compute`
        y, last_state = _SelectiveScan.apply(
            u_compute.contiguous(),
            delta.contiguous(),
            A.to(compute),
            B.to(compute).contiguous(),
            C.to(compute).contiguous(),
            None if D is None else D.to(compute),
            None if z is None else z.to(compute).contiguous(),
        )
    y = y.to(u.dtype)
    return (y, last_state) if return_last_state else y


def selective_scan_reference(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The recurrence written out step by step with autograd, in float64: slow, obviously right; an oracle for
    the smoke check. Returns float64 results."""
    u, delta, A, B, C = (tensor.double() for tensor in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.double().unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    state = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    outputs = []
    for t in range(u.shape[-1]):
        decay = torch.exp(delta[:, :, t, None] * A)
        state = decay * state + (delta[:, :, t] * u[:, :, t]).unsqueeze(-1) * B[:, None, :, t]
        outputs.append((state * C[:, None, :, t]).sum(-1))
    out = torch.stack(outputs, dim=-1)
    if D is not None:
        out = out + u * D.double().unsqueeze(-1)
    if z is not None:
        out = out * F.silu(z.double())
    return (out, state) if return_last_state else out


def _check_shapes(u, delta, A, B, C) -> None:
    if A.is_complex():
        raise NotImplementedError("the PyTorch selective scan supports real A only")
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (batch, dim, length); got {tuple(u.shape)} and {tuple(delta.shape)}"
        )
    batch, dim, length = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be (dim={dim}, d_state); got {tuple(A.shape)}")
    expected = (batch, A.shape[1], length)
    for name, tensor in (("B", B), ("C", C)):
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{name} must be (batch, d_state, length) = {expected}; got {tuple(tensor.shape)}"
            )


def _time_major_view(tensor: torch.Tensor) -> torch.Tensor:
    """(b, x, l) -> (l, b, x)."""
    return tensor.permute(2, 0, 1)


def _chunk_bounds(length: int, batch: int, dim: int, d_state: int) -> list[tuple[int, int]]:
    steps = max(1, min(length, CHUNK_ELEMENTS // (batch * dim * d_state)))
    return [(start, min(start + steps, length)) for start in range(0, length, steps)]


def _chunk_states(states, decays, u, delta, A, B) -> None:
    """For one chunk of ``steps`` time steps, with ``states[0]`` already holding the entering state: fill
    ``decays[t] = exp(delta[t] A)`` and ``states[t + 1] = decays[t] * states[t] + delta[t] u[t] B[t]``.

    states (steps + 1, b, d, n), decays (steps, b, d, n); u, delta (steps, b, d); B (steps, b, n).
    """
    torch.mul(delta.unsqueeze(-1), A, out=decays)
    decays.exp_()
    torch.mul((delta * u).unsqueeze(-1), B.unsqueeze(2), out=states[1:])
    per_step_states = states.unbind(0)
    for step, decay in enumerate(decays.unbind(0)):
        per_step_states[step + 1].addcmul_(decay, per_step_states[step])


def _rows_times(
    vectors: torch.Tensor, matrices: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """``out[k] = vectors[k] @ matrices[k]`` for row vectors (k, 1, m) and matrices (k, m, p) -> (k, 1, p).

    Every contraction below is put in this row-vector form, with a transposed matrix view where needed: on CPU
    it runs 2-3x faster than the matrix-times-column-vector form of the same product."""
    return torch.bmm(vectors, matrices, out=out)


class _SelectiveScan(torch.autograd.Function):
    """out[t] = (sum_n C[t] h[t] + D u[t]) * silu(z[t]) with h as in the module docstring (D and z optional);
    time-major inputs (l, b, d) / (l, b, n). The D and z terms are applied chunk by chunk, while the chunk is
    in cache, rather than as separate passes over whole tensors."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z):
        length, batch, dim = u.shape
        d_state = A.shape[1]
        bounds = _chunk_bounds(length, batch, dim, d_state)
        steps = bounds[0][1] - bounds[0][0]
        out = u.new_empty(length, batch, dim)
        # y + D u before the gate; the backward of the gate needs it.
        ungated = out if z is None else u.new_empty(length, batch, dim)
        entering = u.new_empty(len(bounds), batch, dim, d_state)
        states = u.new_empty(steps + 1, batch, dim, d_state)
        states[0].zero_()
        decays = u.new_empty(steps, batch, dim, d_state)
        for index, (start, stop) in enumerate(bounds):
            count = stop - start
            chunk = slice(start, stop)
            entering[index] = states[0]
            _chunk_states(states[: count + 1], decays[:count], u[chunk], delta[chunk], A, B[chunk])
            _rows_times(
                C[chunk].reshape(-1, 1, d_state),
                states[1 : count + 1].view(-1, dim, d_state).transpose(1, 2),
                out=ungated[chunk].view(-1, 1, dim),
            )
            if D is not None:
                ungated[chunk].addcmul_(u[chunk], D)
            if z is not None:
                torch.mul(ungated[chunk], F.silu(z[chunk]), out=out[chunk])
            states[0] = states[count]
        ctx.save_for_backward(u, delta, A, B, C, D, z, entering, None if z is None else ungated)
        last_state = states[0].clone()
        ctx.mark_non_differentiable(last_state)
        return out, last_state

    @staticmethod
    def backward(ctx, grad_out, _grad_last_state):
        u, delta, A, B, C, D, z, entering, ungated = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        length, batch, dim = u.shape
        d_state = A.shape[1]
        bounds = _chunk_bounds(length, batch, dim, d_state)
        steps = bounds[0][1] - bounds[0][0]
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(delta)
        grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
        grad_A = torch.zeros_like(A)
        grad_D = None if D is None else torch.zeros_like(D)
        grad_z = None if z is None else torch.empty_like(z)
        states = u.new_empty(steps + 1, batch, dim, d_state)
        decays = u.new_empty(steps, batch, dim, d_state)
        adjoint = u.new_empty(steps, batch, dim, d_state)
        # Gradient reaching the state at the end of the current chunk from later chunks.
        carry = u.new_zeros(batch, dim, d_state)
        for index in reversed(range(len(bounds))):
            start, stop = bounds[index]
            count = stop - start
            chunk = slice(start, stop)
            grad_y = grad_out[chunk]
            if z is not None:
                grad_y = grad_y * F.silu(z[chunk])
                torch.ops.aten.silu_backward(
                    grad_out[chunk] * ungated[chunk], z[chunk], grad_input=grad_z[chunk]
                )
            h, dA, g = states[: count + 1], decays[:count], adjoint[:count]
            h[0] = entering[index]
            _chunk_states(h, dA, u[chunk], delta[chunk], A, B[chunk])
            _adjoint_states(g, dA, carry, grad_y, C[chunk])
            torch.mul(dA[0], g[0], out=carry)

            rows = (-1, 1, dim)
            state_rows = (-1, dim, d_state)
            _rows_times(grad_y.reshape(rows), h[1:].view(state_rows), out=grad_C[chunk].view(-1, 1, d_state))
            delta_u = delta[chunk] * u[chunk]
            _rows_times(delta_u.view(rows), g.view(state_rows), out=grad_B[chunk].view(-1, 1, d_state))
            grad_delta_u = _rows_times(B[chunk].reshape(-1, 1, d_state), g.view(state_rows).transpose(1, 2))
            grad_delta_u = grad_delta_u.view(count, batch, dim)
            torch.mul(grad_delta_u, delta[chunk], out=grad_u[chunk])
            torch.mul(grad_delta_u, u[chunk], out=grad_delta[chunk])
            if D is not None:
                grad_u[chunk].addcmul_(grad_y, D)
                grad_D.add_((grad_y * u[chunk]).sum(dim=(0, 1)))

            # d loss / d(delta A), elementwise: g[t] * h[t-1] * exp(delta[t] A), written over the decays.
            decay_grad = dA.mul_(g).mul_(h[:-1])
            by_channel = decay_grad.view(state_rows).transpose(0, 1)  # (d, t*b, n), no copy
            grad_delta[chunk].view(-1, dim).add_(
                _rows_times(A.unsqueeze(1), by_channel.transpose(1, 2)).squeeze(1).t()
            )
            grad_A.add_(
                torch.mul(decay_grad, delta[chunk].unsqueeze(-1), out=g)
                .view(-1, dim * d_state)
                .sum(0)
                .view(dim, d_state)
            )
        return grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D, grad_z


def _adjoint_states(g, decays, carry, grad_y, C) -> None:
    """g[t] = dL/dh[t] = grad_y[t] C[t] + exp(delta[t+1] A) g[t+1] over one chunk, backwards; ``carry`` is the
    term reaching the chunk's last state from the next chunk."""
    torch.mul(grad_y.unsqueeze(-1), C.unsqueeze(2), out=g)
    count = g.shape[0]
    g[count - 1].add_(carry)
    per_step_adjoint, per_step_decay = g.unbind(0), decays.unbind(0)
    for step in range(count - 2, -1, -1):
        per_step_adjoint[step].addcmul_(per_step_decay[step + 1], per_step_adjoint[step + 1])
