"""The PyTorch selective scan against a float64 step-by-step reference, and the scan backend choice."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from runtime.nn.ops import scan as ssm

ALL_INPUTS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def reference_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """mamba-ssm's recurrence, one time step at a time, in float64. Returns (out, last_state)."""
    u, delta, A, B, C = (t.double() for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.double()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=torch.float64)
    ys = []
    for t in range(u.shape[2]):
        h = (
            torch.exp(delta[:, :, t, None] * A) * h
            + delta[:, :, t, None] * u[:, :, t, None] * B[:, None, :, t]
        )
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    y = torch.stack(ys, dim=2)
    if D is not None:
        y = y + u * D.double()[:, None]
    if z is not None:
        y = y * F.silu(z.double())
    return y, h


def make_inputs(batch=2, dim=5, d_state=3, length=37, dtype=torch.float64, delta_scale=1.0, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape, low=-1.0, high=1.0):
        return (torch.rand(*shape, generator=generator, dtype=dtype) * (high - low) + low).requires_grad_()

    return {
        "u": rand(batch, dim, length),
        "delta": rand(batch, dim, length, low=0.0, high=delta_scale),
        "A": rand(dim, d_state, low=-2.0, high=-0.1),
        "B": rand(batch, d_state, length),
        "C": rand(batch, d_state, length),
        "D": rand(dim),
        "z": rand(batch, dim, length),
        "delta_bias": rand(dim),
    }


def relative_error(actual, expected):
    return ((actual.double() - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


def assert_matches_reference(inputs, used, tolerance, delta_softplus=False):
    """Outputs, last state and the gradient of every input in ``used`` agree with the reference."""
    kwargs = {name: inputs[name] for name in used}
    out, last = ssm.selective_scan_torch(**kwargs, delta_softplus=delta_softplus, return_last_state=True)
    as_double = {name: tensor.detach().double().requires_grad_() for name, tensor in kwargs.items()}
    expected_out, expected_last = reference_scan(**as_double, delta_softplus=delta_softplus)
    assert out.dtype == inputs["u"].dtype
    assert relative_error(out, expected_out) < tolerance
    assert relative_error(last, expected_last) < tolerance
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = torch.autograd.grad((out.double() * weights).sum(), [kwargs[name] for name in used])
    expected = torch.autograd.grad((expected_out * weights).sum(), [as_double[name] for name in used])
    for name, grad, want in zip(used, grads, expected, strict=True):
        assert relative_error(grad, want) < tolerance, name


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 steps for the default shapes, so a 37-step sequence has a partial last chunk."""
    monkeypatch.setattr(ssm, "CHUNK_ELEMENTS", 2 * 5 * 3 * 4)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize(
    "used, softplus",
    [
        (("u", "delta", "A", "B", "C"), False),
        (ALL_INPUTS, True),
        (("u", "delta", "A", "B", "C", "D"), False),
        (("u", "delta", "A", "B", "C", "z", "delta_bias"), True),
    ],
)
def test_matches_reference_with_every_gradient(small_chunks, dtype, tolerance, used, softplus):
    assert_matches_reference(make_inputs(dtype=dtype), used, tolerance, delta_softplus=softplus)


@pytest.mark.parametrize("length", [1, 2, 7, 1025])
def test_odd_and_long_lengths_with_default_chunks(length):
    inputs = make_inputs(batch=2, dim=4, d_state=3, length=length)
    assert_matches_reference(inputs, ALL_INPUTS, 1e-12, delta_softplus=True)


def test_single_chunk_covers_whole_sequence(monkeypatch):
    monkeypatch.setattr(ssm, "CHUNK_ELEMENTS", 1 << 30)
    assert_matches_reference(make_inputs(), ALL_INPUTS, 1e-12, delta_softplus=True)


def test_gradcheck_float64(small_chunks):
    inputs = make_inputs(length=9)

    def scan(*tensors):
        return ssm.selective_scan_torch(*tensors, delta_softplus=True)

    assert torch.autograd.gradcheck(scan, tuple(inputs[name] for name in ALL_INPUTS))


def test_strong_decays_stay_finite_and_exact():
    inputs = make_inputs(length=64, dtype=torch.float32, delta_scale=200.0)
    out, last = ssm.selective_scan_torch(
        *(inputs[n] for n in ("u", "delta", "A", "B", "C")), return_last_state=True
    )
    out.sum().backward()
    for tensor in (out, last, *(inputs[n].grad for n in ("u", "delta", "A", "B", "C"))):
        assert torch.isfinite(tensor).all()
    assert_matches_reference(inputs, ("u", "delta", "A", "B", "C"), 1e-5)


def test_bfloat16_input_is_computed_in_float32_and_returned_in_bfloat16():
    inputs = {name: tensor.detach() for name, tensor in make_inputs(dtype=torch.float32).items()}
    low = {name: tensor.bfloat16() for name, tensor in inputs.items()}
    out = ssm.selective_scan_torch(**low, delta_softplus=True)
    expected, _ = reference_scan(
        **{name: tensor.double() for name, tensor in low.items()}, delta_softplus=True
    )
    assert out.dtype == torch.bfloat16
    assert relative_error(out.float(), expected) < 1e-2


def test_last_state_shape_and_no_gradient():
    inputs = make_inputs()
    out, last = ssm.selective_scan_torch(
        *(inputs[n] for n in ("u", "delta", "A", "B", "C")), return_last_state=True
    )
    assert out.shape == (2, 5, 37)
    assert last.shape == (2, 5, 3)
    assert not last.requires_grad


def test_reference_in_runtime_agrees_with_test_reference():
    inputs = make_inputs(length=11)
    out, last = ssm.selective_scan_reference(**inputs, delta_softplus=True, return_last_state=True)
    expected_out, expected_last = reference_scan(**inputs, delta_softplus=True)
    assert relative_error(out, expected_out) < 1e-12
    assert relative_error(last, expected_last) < 1e-12


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("B", (2, 3, 36), "B must be (batch, d_state, length)"),
        ("A", (4, 3), "A must be (dim=5, d_state)"),
        ("delta", (2, 5, 36), "u and delta must both be"),
    ],
)
def test_wrong_shapes_are_explained(name, shape, message):
    inputs = {n: t.detach() for n, t in make_inputs().items()}
    inputs[name] = torch.zeros(shape, dtype=torch.float64)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ssm.selective_scan_torch(inputs["u"], inputs["delta"], inputs["A"], inputs["B"], inputs["C"])


# ------------------------------------------------------------------------------------------ backend choice


@pytest.fixture
def no_force(monkeypatch):
    monkeypatch.delenv(ssm.FORCE_TORCH_ENV, raising=False)


@pytest.fixture
def fake_mamba_ssm(monkeypatch):
    """An importable stand-in for mamba-ssm's ops module, recording the calls it gets."""
    calls = []
    interface = types.ModuleType("mamba_ssm.ops.selective_scan_interface")
    interface.selective_scan_fn = lambda *args: calls.append(args) or "fused-result"
    ops = types.ModuleType("mamba_ssm.ops")
    ops.selective_scan_interface = interface
    package = types.ModuleType("mamba_ssm")
    package.ops = ops
    monkeypatch.setitem(sys.modules, "causal_conv1d", types.ModuleType("causal_conv1d"))
    for name, module in (
        ("mamba_ssm", package),
        ("mamba_ssm.ops", ops),
        ("mamba_ssm.ops.selective_scan_interface", interface),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


@pytest.fixture
def missing_mamba_ssm(monkeypatch):
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # makes `import mamba_ssm` raise ImportError


def test_auto_is_torch_on_cpu(no_force, missing_mamba_ssm):
    assert ssm.resolve_backend("auto", "cpu") == "torch"


def test_fused_on_cpu_is_a_clear_error(no_force):
    with pytest.raises(ssm.FusedKernelsUnavailable, match="kernels=fused needs a CUDA device.*kernels: auto"):
        ssm.resolve_backend("fused", "cpu")


def test_auto_on_cuda_without_mamba_ssm_is_an_error_saying_how_to_fix(no_force, missing_mamba_ssm):
    with pytest.raises(ssm.FusedKernelsUnavailable) as raised:
        ssm.resolve_backend("auto", torch.device("cuda", 0))
    message = str(raised.value)
    assert "pip install --no-build-isolation '.[gpu]'" in message
    assert "kernels: torch" in message


def test_auto_on_cuda_with_mamba_ssm_is_fused(no_force, fake_mamba_ssm):
    assert ssm.resolve_backend("auto", "cuda") == "fused"


def test_torch_on_cuda_is_allowed_on_purpose(no_force, missing_mamba_ssm):
    assert ssm.resolve_backend("torch", "cuda") == "torch"


@pytest.mark.parametrize("kernels", ["auto", "fused", "torch"])
def test_environment_variable_forces_torch(monkeypatch, missing_mamba_ssm, kernels):
    monkeypatch.setenv(ssm.FORCE_TORCH_ENV, "1")
    assert ssm.resolve_backend(kernels, "cuda") == "torch"
    assert ssm.resolve_backend(kernels, "cpu") == "torch"


def test_unknown_kernels_value_is_rejected():
    with pytest.raises(ValueError, match="kernels must be one of auto, fused, torch, got 'cuda'"):
        ssm.resolve_backend("cuda", "cpu")


def test_selective_scan_dispatches_to_fused_kernel_when_chosen(no_force, fake_mamba_ssm, monkeypatch):
    monkeypatch.setattr(ssm, "resolve_backend", lambda kernels, device: "fused")
    inputs = make_inputs()
    assert ssm.selective_scan(*(inputs[n] for n in ("u", "delta", "A", "B", "C"))) == "fused-result"
    assert len(fake_mamba_ssm) == 1


def test_selective_scan_on_cpu_is_the_torch_path(no_force):
    inputs = make_inputs()
    args = [inputs[n] for n in ("u", "delta", "A", "B", "C")]
    assert torch.equal(ssm.selective_scan(*args, kernels="torch"), ssm.selective_scan_torch(*args))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_kernel_matches_torch_path_on_cuda():
    pytest.importorskip("mamba_ssm", reason="needs mamba-ssm (pip install --no-build-isolation '.[gpu]')")
    inputs = {
        name: t.detach().float().cuda()
        for name, t in make_inputs(batch=2, dim=64, d_state=16, length=300).items()
    }
    fused = ssm.selective_scan(**inputs, delta_softplus=True, kernels="fused")
    reference = ssm.selective_scan(**inputs, delta_softplus=True, kernels="torch")
    torch.testing.assert_close(fused, reference, rtol=6e-4, atol=2e-3)
