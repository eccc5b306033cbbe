"""``test_mamba_cuda``: the smoke check a deployment runs before training, and ``python -m runtime.smoke``.

On a CUDA machine it checks that mamba-ssm's fused kernels import and give the same numbers as the PyTorch
path: the same Mamba weights and inputs through both paths, forward and backward, compared at fp32 tolerance
(rtol 6e-4, atol 2e-3, as mamba-ssm's own tests use), both timed. Without CUDA it says so plainly and checks
the PyTorch path on CPU instead: the scan against a float64 step-by-step reference, and a SignalMamba forward
and backward. Every check is recorded in the returned report; any failure raises :class:`SmokeCheckFailed`
with what to fix, and the command line exits 1.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable

import torch

from runtime.nn.models.signal import SignalMamba
from runtime.nn.modules.mamba import Mamba
from runtime.nn.ops import scan as ssm

RTOL, ATOL = 6e-4, 2e-3
FIXES = {
    "fused kernels import": ssm.GPU_INSTALL_HINT,
    "fused vs torch": "the fused kernels disagree with the PyTorch path: rebuild mamba-ssm and causal-conv1d "
    "against this torch and CUDA (pip install --no-build-isolation --force-reinstall '.[gpu]'), or set "
    "`kernels: torch`",
}


class SmokeCheckFailed(RuntimeError):
    """A smoke check failed; ``report`` holds every check's result."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report

    def __reduce__(self):  # Modal pickles a remote function's exception to show it locally
        return type(self), (str(self), self.report)


def environment() -> dict:
    """Versions and device: what a person needs to read a failure."""
    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": cuda,
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "mamba_ssm": _installed_version("mamba-ssm"),
        "causal_conv1d": _installed_version("causal-conv1d"),
        "force_torch_scan": ssm.torch_scan_forced(),
    }


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def compare(actual: torch.Tensor, expected: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> dict:
    """Largest absolute and relative differences, and whether |a - e| <= atol + rtol |e| everywhere."""
    actual, expected = actual.detach().double(), expected.detach().double()
    difference = (actual - expected).abs()
    return {
        "max_abs": difference.max().item(),
        "max_rel": (difference / expected.abs().clamp_min(1e-12)).max().item(),
        "ok": bool((difference <= atol + rtol * expected.abs()).all()),
    }


def compare_runs(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], **tolerance) -> dict:
    """:func:`compare` for every named tensor of two runs; ``worst`` sums them up."""
    results = {name: compare(actual[name], expected[name], **tolerance) for name in expected}
    return {
        "ok": all(r["ok"] for r in results.values()),
        "worst_abs": max(r["max_abs"] for r in results.values()),
        "worst_rel": max(r["max_rel"] for r in results.values()),
        "failing": sorted(name for name, r in results.items() if not r["ok"]),
    }


def forward_backward(module: torch.nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Output, input gradient and every parameter gradient of ``sum(output * fixed weights)``."""
    module.zero_grad(set_to_none=True)
    inputs = inputs.detach().clone().requires_grad_()
    output = module(inputs)
    weights = torch.linspace(-1, 1, output.numel(), device=output.device).view_as(output)
    (output * weights).sum().backward()
    tensors = {"output": output, "input.grad": inputs.grad}
    tensors.update({f"{name}.grad": p.grad for name, p in module.named_parameters()})
    return tensors


def seconds_per_call(function: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``function`` after one warm-up call, synchronising CUDA around each call."""
    function()
    times = []
    for _ in range(repeats):
        _synchronize()
        start = time.perf_counter()
        function()
        _synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _check(report: dict, name: str, run: Callable[[], dict]) -> None:
    """Run one check; record its result, or its exception as a failure."""
    try:
        result = run()
    except Exception as error:  # a smoke check reports every failure instead of stopping at the first
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    report["checks"][name] = result


def mixer_pair(device: str, fused_kernels: str, seed: int = 0) -> tuple[Mamba, Mamba]:
    """Two Mamba mixers with the same weights: one on ``fused_kernels``, one on the PyTorch path."""
    torch.manual_seed(seed)
    fused = Mamba(64, d_state=16, expand=2, kernels=fused_kernels).to(device)
    plain = copy.deepcopy(fused)
    plain.kernels = "torch"
    return fused, plain


def check_fused_against_torch(batch: int = 4, length: int = 512) -> dict:
    """Same weights and inputs through mamba-ssm's fused path and the PyTorch path on the GPU."""
    fused, plain = mixer_pair("cuda", "fused")
    inputs = torch.randn(batch, length, 64, device="cuda")
    result = compare_runs(forward_backward(fused, inputs), forward_backward(plain, inputs))
    result["fused_seconds"] = seconds_per_call(lambda: forward_backward(fused, inputs))
    result["torch_seconds"] = seconds_per_call(lambda: forward_backward(plain, inputs))
    result["speedup"] = result["torch_seconds"] / result["fused_seconds"]
    result["shape"] = [batch, length, 64]
    return result


def check_scan_against_reference(device: str) -> dict:
    """The PyTorch scan (float32, several chunks) and its gradients against the float64 reference."""
    generator = torch.Generator().manual_seed(0)
    batch, dim, d_state, length = 2, 8, 4, 300

    def rand(*shape, low=-1.0, high=1.0):
        values = torch.rand(*shape, generator=generator) * (high - low) + low
        return values.to(device).requires_grad_()

    args = [
        rand(batch, dim, length),
        rand(batch, dim, length, low=-3.0, high=1.0),
        rand(dim, d_state, low=-4.0, high=-0.5),
        rand(batch, d_state, length),
        rand(batch, d_state, length),
        rand(dim),
        rand(batch, dim, length),
        rand(dim),
    ]
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]

    def run(scan) -> dict[str, torch.Tensor]:
        out = scan(*args, delta_softplus=True)
        grads = torch.autograd.grad((out * out.detach().sign()).sum(), args)
        return {"output": out, **{f"{name}.grad": grad for name, grad in zip(names, grads, strict=True)}}

    return compare_runs(
        run(ssm.selective_scan_torch), run(ssm.selective_scan_reference), rtol=1e-4, atol=1e-5
    )


def check_signal_model(device: str, kernels: str) -> dict:
    """A small SignalMamba on an odd-length EEG-like window: finite outputs and gradients, right shapes."""
    torch.manual_seed(0)
    model = SignalMamba(19, 2, head="timestep", d_model=32, n_layers=2, downsample=4, kernels=kernels).to(
        device
    )
    window = torch.randn(2, 19, 1023, device=device)
    logits = model(window)
    logits.float().square().mean().backward()
    finite = bool(torch.isfinite(logits).all()) and all(
        bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None
    )
    shape_ok = tuple(logits.shape) == (2, 2, 1023)
    return {
        "ok": finite and shape_ok,
        "backend": model.scan_backend,
        "finite": finite,
        "shape": list(logits.shape),
    }


def test_mamba_cuda() -> dict:
    """Run the smoke checks for this machine: the report, or SmokeCheckFailed saying what to fix."""
    report = {"environment": environment(), "checks": {}}
    if torch.cuda.is_available():
        report["mode"] = "cuda"
        _check(report, "fused kernels import", lambda: {"ok": ssm.fused_ops() is not None})
        _check(report, "fused vs torch", check_fused_against_torch)
        _check(report, "torch scan vs float64 reference", lambda: check_scan_against_reference("cuda"))
        _check(report, "SignalMamba kernels=auto", lambda: check_signal_model("cuda", "auto"))
    else:
        report["mode"] = "cpu"
        report["note"] = (
            "CUDA is not available here: the fused mamba-ssm path was NOT checked; checked the CPU path"
        )
        _check(report, "torch scan vs float64 reference", lambda: check_scan_against_reference("cpu"))
        _check(report, "SignalMamba kernels=auto", lambda: check_signal_model("cpu", "auto"))
    failed = [name for name, result in report["checks"].items() if not result["ok"]]
    report["ok"] = not failed
    if failed:
        fixes = "".join(
            f"\n  {name}: {FIXES.get(name, _describe(report['checks'][name]))}" for name in failed
        )
        raise SmokeCheckFailed(f"smoke check failed: {', '.join(failed)}{fixes}", report)
    return report


def _describe(result: dict) -> str:
    return (
        result.get("error") or f"mismatching tensors: {', '.join(result.get('failing', [])) or 'see report'}"
    )


def format_report(report: dict) -> str:
    """Readable lines: environment, then one line per check."""
    env = report["environment"]
    lines = [
        f"torch {env['torch']} (CUDA build {env['torch_cuda']}), device: {env['device']}",
        f"mamba-ssm {env['mamba_ssm'] or 'not installed'}, "
        f"causal-conv1d {env['causal_conv1d'] or 'not installed'}"
        + (f", {ssm.FORCE_TORCH_ENV} set" if env["force_torch_scan"] else ""),
    ]
    if report.get("note"):
        lines.append(report["note"])
    for name, result in report["checks"].items():
        details = {k: v for k, v in result.items() if k != "ok"}
        shown = ", ".join(f"{k}={_short(v)}" for k, v in details.items())
        lines.append(f"[{'ok' if result['ok'] else 'FAIL'}] {name}: {shown}")
    return "\n".join(lines)


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.smoke", description="Mamba CUDA/CPU smoke check")
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    args = parser.parse_args(argv)
    try:
        report, code = test_mamba_cuda(), 0
    except SmokeCheckFailed as failure:
        report, code = failure.report, 1
        print(str(failure), file=sys.stderr)
    print(format_report(report), file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
