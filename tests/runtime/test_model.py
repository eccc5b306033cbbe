"""The Mamba mixer (mamba-ssm's parameters and maths), SignalMamba's heads, build_model, backend logging."""

from __future__ import annotations

import dataclasses
import inspect
import io
import logging
import math
import sys

import pytest
import torch
import torch.nn.functional as F

from runtime.nn.config import ModelConfig
from runtime.nn.models import signal as model_module
from runtime.nn.models.signal import SignalMamba, build_model, parameter_count
from runtime.nn.modules.mamba import Mamba
from runtime.nn.ops import scan as ssm


@pytest.fixture(autouse=True)
def no_forced_backend(monkeypatch):
    monkeypatch.delenv(ssm.FORCE_TORCH_ENV, raising=False)


def mamba_ssm_state_dict_shapes(d_model, d_state=16, d_conv=4, expand=2):
    """Names and shapes of mamba-ssm's ``Mamba(d_model, ...)`` state_dict, from its definition."""
    d_inner, dt_rank = expand * d_model, math.ceil(d_model / 16)
    return {
        "A_log": (d_inner, d_state),
        "D": (d_inner,),
        "in_proj.weight": (2 * d_inner, d_model),
        "conv1d.weight": (d_inner, 1, d_conv),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * d_state, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "out_proj.weight": (d_model, d_inner),
    }


def reference_mixer(mixer: Mamba, hidden):
    """mamba-ssm's slow path written out with plain ops and a float64 step loop."""
    params = {name: p.detach().double() for name, p in mixer.named_parameters()}
    hidden = hidden.double()
    length = hidden.shape[1]
    x, z = (hidden @ params["in_proj.weight"].T).transpose(1, 2).chunk(2, dim=1)
    x = F.silu(
        F.conv1d(
            x, params["conv1d.weight"], params["conv1d.bias"], padding=mixer.d_conv - 1, groups=mixer.d_inner
        )[..., :length]
    )
    dt, B, C = (x.transpose(1, 2) @ params["x_proj.weight"].T).split(
        [mixer.dt_rank, mixer.d_state, mixer.d_state], dim=-1
    )
    delta = F.softplus(dt @ params["dt_proj.weight"].T + params["dt_proj.bias"])  # (b, l, d)
    A = -torch.exp(params["A_log"])
    h = torch.zeros(hidden.shape[0], mixer.d_inner, mixer.d_state, dtype=torch.float64)
    ys = []
    for t in range(length):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, :, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + params["D"] * x[:, :, t])
    y = torch.stack(ys, dim=1) * F.silu(z.transpose(1, 2))
    return y @ params["out_proj.weight"].T


def test_mixer_parameters_are_mamba_ssm_names_and_shapes():
    mixer = Mamba(48, d_state=8, d_conv=3, expand=3)
    shapes = {name: tuple(t.shape) for name, t in mixer.state_dict().items()}
    assert shapes == mamba_ssm_state_dict_shapes(48, d_state=8, d_conv=3, expand=3)


def test_mixer_initialisation_follows_mamba_ssm():
    torch.manual_seed(0)
    mixer = Mamba(64, dt_min=0.001, dt_max=0.1)
    assert torch.equal(mixer.A_log, torch.log(torch.arange(1, 17, dtype=torch.float32)).repeat(128, 1))
    assert torch.equal(mixer.D, torch.ones(128))
    dt = F.softplus(mixer.dt_proj.bias.detach())
    assert dt.min() >= 0.001 * 0.999 and dt.max() <= 0.1 * 1.001
    bound = mixer.dt_rank**-0.5
    assert mixer.dt_proj.weight.abs().max() <= bound
    assert mixer.A_log.dtype == torch.float32 and mixer.D.dtype == torch.float32


def test_state_dict_with_exactly_mamba_ssm_keys_loads_strictly_and_gives_reference_outputs():
    generator = torch.Generator().manual_seed(3)
    foreign = {
        name: torch.randn(shape, generator=generator) * 0.3
        for name, shape in mamba_ssm_state_dict_shapes(32, d_state=4).items()
    }
    mixer = Mamba(32, d_state=4, kernels="torch")
    mixer.load_state_dict(foreign, strict=True)
    hidden = torch.randn(2, 23, 32, generator=generator)
    expected = reference_mixer(mixer, hidden)
    assert torch.allclose(mixer(hidden).double(), expected, rtol=1e-4, atol=1e-5)


def test_mixer_gradients_reach_every_parameter():
    mixer = Mamba(16, d_state=4)
    mixer(torch.randn(2, 9, 16)).square().sum().backward()
    for name, parameter in mixer.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "head, length, expected",
    [
        ("window", 1001, (3, 5)),
        ("timestep", 1001, (3, 5, 1001)),
        ("timestep", 15, (3, 5, 15)),
        ("timestep", 1, (3, 5, 1)),
        ("window", 7, (3, 5)),
    ],
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_heads_have_the_right_shapes_for_odd_lengths(head, length, expected, bidirectional):
    net = SignalMamba(
        4, 5, head=head, d_model=16, n_layers=1, d_state=4, downsample=4, bidirectional=bidirectional
    )
    out = net(torch.randn(3, 4, length))
    assert out.shape == expected
    out.sum().backward()
    assert torch.isfinite(net.stem.weight.grad).all()


def test_timestep_head_without_downsampling_keeps_length():
    net = SignalMamba(2, 3, head="timestep", d_model=8, n_layers=1, d_state=2, downsample=1)
    assert net(torch.randn(1, 2, 33)).shape == (1, 3, 33)


def test_bidirectional_block_sees_the_future():
    """A per-step output of a unidirectional stack ignores later inputs; a bidirectional one does not."""
    x = torch.randn(1, 2, 40)
    later = x.clone()
    later[..., 30:] += 1.0
    outputs = {}
    for bidirectional in (False, True):
        torch.manual_seed(0)
        net = SignalMamba(
            2, 3, head="timestep", d_model=8, n_layers=1, d_state=4, downsample=1, bidirectional=bidirectional
        )
        outputs[bidirectional] = (net(x)[..., :20], net(later)[..., :20])
    assert torch.allclose(*outputs[False])
    assert not torch.allclose(*outputs[True])


def test_state_dict_round_trip_through_a_file():
    torch.manual_seed(0)
    net = build_model(ModelConfig(head="timestep", d_model=16, n_layers=2, bidirectional=True), 19, 2)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    torch.manual_seed(1)
    other = build_model(ModelConfig(head="timestep", d_model=16, n_layers=2, bidirectional=True), 19, 2)
    x = torch.randn(2, 19, 101)
    assert not torch.allclose(net(x), other(x))
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(net(x), other(x))


def test_build_model_passes_the_config_through():
    config = ModelConfig(head="window", d_model=24, n_layers=3, d_state=8, downsample=2, dropout=0.1)
    net = build_model(config, 5, 4)
    assert len(net.blocks) == 3
    assert net.blocks[0].mixer.d_state == 8
    assert net.stem.stride == (2,)


def test_build_model_rejects_unknown_keys_with_a_suggestion():
    with pytest.raises(ValueError, match="d_modle; did you mean 'd_model'"):
        ModelConfig.from_dict({"d_modle": 32})


@pytest.mark.parametrize(
    "config, message",
    [
        ({"head": "windows"}, "head must be one of auto, window, timestep, got 'windows'; did you mean"),
        ({"kernels": "cuda"}, "kernels must be one of auto, fused, torch"),
        ({"downsample": 0}, "downsample must be a positive integer"),
    ],
)
def test_bad_model_config_values_are_explained(config, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_dict(config)


def test_the_model_refuses_a_head_left_on_auto():
    with pytest.raises(ValueError, match="head must be one of window, timestep, got 'auto'"):
        build_model(ModelConfig(), 19, 2)


def test_the_model_config_lists_exactly_the_models_keyword_arguments():
    keywords = set(inspect.signature(SignalMamba).parameters) - {"in_channels", "num_classes"}
    assert {field.name for field in dataclasses.fields(ModelConfig)} == keywords


def test_a_checkpoints_model_config_round_trips_and_old_ones_take_defaults():
    config = ModelConfig(head="timestep", d_model=16, bidirectional=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    older = {key: value for key, value in config.to_dict().items() if key != "kernels"}
    assert ModelConfig.from_dict(older).kernels == "auto"


# ------------------------------------------------------------------------------------------ backend


def test_built_model_logs_its_backend(caplog):
    with caplog.at_level(logging.INFO, logger="runtime.nn.models.signal"):
        net = SignalMamba(3, 2, d_model=8, n_layers=1)
    assert net.scan_backend == "torch"
    messages = [r.getMessage() for r in caplog.records if r.name == "runtime.nn.models.signal"]
    assert len(messages) == 1
    assert "scan backend torch" in messages[0] and "kernels=auto" in messages[0]


def test_fused_kernels_on_cpu_fail_when_the_model_is_built():
    with pytest.raises(ssm.FusedKernelsUnavailable, match="kernels=fused needs a CUDA device"):
        build_model(ModelConfig(head="window", kernels="fused"), 3, 2)


def test_environment_variable_forces_torch_and_says_so(monkeypatch, caplog):
    monkeypatch.setenv(ssm.FORCE_TORCH_ENV, "1")
    with caplog.at_level(logging.INFO, logger="runtime.nn.models.signal"):
        net = build_model(ModelConfig(head="window", kernels="fused", d_model=8, n_layers=1), 3, 2)
    assert net.scan_backend == "torch"
    assert f"{ssm.FORCE_TORCH_ENV} is set" in caplog.text
    assert net(torch.randn(1, 3, 16)).shape == (1, 2)


def test_moving_to_cuda_without_mamba_ssm_fails_right_away(monkeypatch):
    """.to(device) re-checks the backend for the new device; here the "move" is simulated on CPU tensors."""
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)
    net = SignalMamba(3, 2, d_model=8, n_layers=1)
    real_resolve = ssm.resolve_backend
    monkeypatch.setattr(
        model_module.ssm, "resolve_backend", lambda kernels, device: real_resolve(kernels, "cuda")
    )
    net._logged_device = torch.device("meta")  # pretend the model was elsewhere before this move
    with pytest.raises(ssm.FusedKernelsUnavailable, match="pip install --no-build-isolation"):
        net.to(torch.float32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_and_torch_mixers_agree_on_cuda():
    pytest.importorskip("mamba_ssm", reason="needs mamba-ssm (pip install --no-build-isolation '.[gpu]')")
    torch.manual_seed(0)
    fused = Mamba(64, kernels="fused").cuda()
    plain = Mamba(64, kernels="torch").cuda()
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(2, 300, 64, device="cuda")
    torch.testing.assert_close(fused(x), plain(x), rtol=6e-4, atol=2e-3)


def fake_mamba_inner_fn(
    xz,
    conv_weight,
    conv_bias,
    x_proj_weight,
    dt_proj_weight,
    out_proj_weight,
    out_proj_bias,
    A,
    B=None,
    C=None,
    D=None,
    delta_bias=None,
    delta_softplus=True,
):
    """mamba-ssm's ``mamba_inner_fn`` as its reference computes it, with the float64 reference scan."""
    assert B is None and C is None  # input-dependent B and C, as Mamba passes them
    length = xz.shape[-1]
    x, z = xz.chunk(2, dim=1)
    x = F.silu(
        F.conv1d(x, conv_weight, conv_bias, padding=conv_weight.shape[-1] - 1, groups=x.shape[1])[
            ..., :length
        ]
    )
    dt, B, C = (x.transpose(1, 2) @ x_proj_weight.T).split(
        [dt_proj_weight.shape[1], A.shape[1], A.shape[1]], dim=-1
    )
    delta = (dt @ dt_proj_weight.T).transpose(1, 2)
    y = ssm.selective_scan_reference(
        x, delta, A, B.transpose(1, 2), C.transpose(1, 2), D, z, delta_bias, delta_softplus
    ).float()
    return F.linear(y.transpose(1, 2), out_proj_weight, out_proj_bias)


@pytest.mark.parametrize("use_fast_path", [True, False])
def test_fused_branches_pass_mamba_ssm_its_arguments_in_order(monkeypatch, use_fast_path):
    """The fused branches, run on CPU against a stand-in for mamba-ssm that follows its reference maths."""
    interface = type(sys)("mamba_ssm.ops.selective_scan_interface")
    interface.mamba_inner_fn = fake_mamba_inner_fn
    interface.selective_scan_fn = lambda *args: ssm.selective_scan_reference(*args).float()
    monkeypatch.setattr(ssm, "fused_ops", lambda: interface)
    monkeypatch.setattr(ssm, "resolve_backend", lambda kernels, device: kernels)
    torch.manual_seed(0)
    fused = Mamba(32, d_state=8, bias=True, use_fast_path=use_fast_path, kernels="fused")
    plain = Mamba(32, d_state=8, bias=True, kernels="torch")
    plain.load_state_dict(fused.state_dict())
    hidden = torch.randn(2, 19, 32)
    assert torch.allclose(fused(hidden), plain(hidden), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("length", "taps", "with_bias"), [(7, 4, True), (2, 4, False), (5, 3, True), (1, 4, True)]
)
def test_causal_conv_silu_matches_conv1d_and_passes_gradcheck(length, taps, with_bias):
    from runtime.nn.modules.mamba import _CausalConvSiLU

    generator = torch.Generator().manual_seed(length * 10 + taps)
    batch, channels = 2, 3
    x = torch.randn(length, batch, channels, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(channels, taps, dtype=torch.float64, generator=generator, requires_grad=True)
    bias = (
        torch.randn(channels, dtype=torch.float64, generator=generator, requires_grad=True)
        if with_bias
        else None
    )

    channels_first = x.permute(1, 2, 0)  # (b, d, l), as nn.Conv1d sees it
    padded = torch.nn.functional.conv1d(
        channels_first, weight.unsqueeze(1), bias, padding=taps - 1, groups=channels
    )
    expected = torch.nn.functional.silu(padded[..., :length]).permute(2, 0, 1)
    torch.testing.assert_close(_CausalConvSiLU.apply(x, weight, bias), expected)
    assert torch.autograd.gradcheck(_CausalConvSiLU.apply, (x, weight, bias))


@pytest.mark.parametrize(
    ("config", "in_channels", "num_classes"),
    [
        ({"d_model": 8, "n_layers": 1, "d_state": 4, "downsample": 2}, 2, 2),
        ({"d_model": 64, "n_layers": 2, "bidirectional": True, "head": "timestep"}, 19, 3),
        ({"d_model": 100, "n_layers": 3, "d_state": 7, "d_conv": 3, "expand": 3, "downsample": 16}, 5, 256),
        ({"d_model": 17, "n_layers": 1, "d_state": 1, "d_conv": 1, "expand": 1, "downsample": 1}, 1, 2),
    ],
)
def test_the_parameter_count_from_the_config_is_exact(config, in_channels, num_classes):
    config = ModelConfig(**{"head": "window", **config})
    built = build_model(dataclasses.replace(config, kernels="torch"), in_channels, num_classes)
    assert parameter_count(config, in_channels, num_classes) == sum(p.numel() for p in built.parameters())


def test_the_parameter_count_of_a_huge_config_is_computed_without_allocating():
    count = parameter_count(ModelConfig(d_model=100_000, n_layers=4), 19, 2)
    assert count > 10**11  # about 1.6 TB for weights, gradients and AdamW states
    with pytest.raises(ValueError, match="d_model must be a positive integer, got '64'"):
        ModelConfig(d_model="64")
