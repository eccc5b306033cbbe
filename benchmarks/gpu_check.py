"""One prepared GPU check: the smoke check, then mamba-ssm's fused path against the PyTorch path on the GPU.

Run on a CUDA machine: ``python benchmarks/gpu_check.py`` (a few minutes on an H100/H200). It prints a compact
report and, when ``$OUT`` is set, writes ``$OUT/gpu_check.json``.

1. ``runtime.smoke.test_mamba_cuda()`` (versions, fused vs torch on the same weights, fp32 tolerances).
2. Two residual layers (RMSNorm + Mamba, B=32, d_model=64, d_state=16, expand=2) at L=256, 1024, 4096:
   forward + backward time (median after a warm-up) and peak GPU memory of the fused path
   (``mamba_inner_fn``) and of the PyTorch path on the same weights and inputs, and the largest absolute /
   relative differences of their outputs and of every gradient.
3. SignalMamba on EEG-sized windows (B=16, 19 channels x 15,360 steps, downsample 4, bidirectional): forward +
   backward time on both paths.

Without mamba-ssm the fused columns say why and only the PyTorch path is timed. Without CUDA it says so, runs
the CPU smoke checks and exits 0 when they pass.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan  # noqa: E402  (benchmarks/scan.py: the same two-layer model as the CPU benchmark)

from runtime import smoke
from runtime.nn.models.signal import SignalMamba  # noqa: E402
from runtime.nn.modules.mamba import Mamba  # noqa: E402
from runtime.nn.ops import scan as ssm  # noqa: E402

LENGTHS = (256, 1024, 4096)
EEG = {"batch": 16, "channels": 19, "steps": 15360}
BUDGET_SECONDS = 420  # stop starting new measurements after this, so the run fits a 10-minute slot


def with_kernels(model: torch.nn.Module, kernels: str) -> torch.nn.Module:
    """A copy of ``model`` (same weights) whose Mamba mixers use ``kernels``."""
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if isinstance(module, Mamba | SignalMamba):
            module.kernels = kernels
    return twin


def peak_memory_mib(function) -> float:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    function()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def measure_pair(model: torch.nn.Module, inputs: torch.Tensor, fused_ok: bool, repeats: int) -> dict:
    """Time, memory and differences of the fused and torch paths of ``model`` on ``inputs``."""
    paths = {"torch": with_kernels(model, "torch")}
    if fused_ok:
        paths["fused"] = with_kernels(model, "fused")
    result = {}
    runs = {}
    for name, twin in paths.items():
        step = functools.partial(smoke.forward_backward, twin, inputs)
        runs[name] = step()
        result[f"{name}_seconds"] = smoke.seconds_per_call(step, repeats=repeats)
        result[f"{name}_peak_mib"] = peak_memory_mib(step)
    if fused_ok:
        result["speedup"] = result["torch_seconds"] / result["fused_seconds"]
        result.update(smoke.compare_runs(runs["fused"], runs["torch"]))
    return result


def layer_benchmark(fused_ok: bool, deadline: float) -> dict:
    results = {}
    for length in LENGTHS:
        if time.monotonic() > deadline:
            results[f"L={length}"] = {"skipped": "time budget used up"}
            continue
        torch.manual_seed(0)
        layers = scan.build_runtime_layers("torch").cuda()
        inputs = torch.randn(scan.BATCH, length, scan.D_MODEL, device="cuda")
        results[f"L={length}"] = _guarded(measure_pair, layers, inputs, fused_ok, repeats=5)
    return results


def eeg_benchmark(fused_ok: bool, deadline: float) -> dict:
    if time.monotonic() > deadline:
        return {"skipped": "time budget used up"}
    torch.manual_seed(0)
    model = SignalMamba(
        EEG["channels"],
        2,
        head="timestep",
        d_model=64,
        n_layers=2,
        downsample=4,
        bidirectional=True,
        kernels="torch",
    ).cuda()
    windows = torch.randn(EEG["batch"], EEG["channels"], EEG["steps"], device="cuda")
    return _guarded(measure_pair, model, windows, fused_ok, repeats=3)


def _guarded(run, *args, **kwargs) -> dict:
    try:
        return run(*args, **kwargs)
    except Exception as error:  # keep going: one failing section must not hide the others
        return {"error": f"{type(error).__name__}: {error}"}


def run_smoke() -> dict:
    try:
        return smoke.test_mamba_cuda()
    except smoke.SmokeCheckFailed as failure:
        return failure.report


def fused_status() -> tuple[bool, str]:
    try:
        ssm.fused_ops()
    except ssm.FusedKernelsUnavailable as error:
        return False, str(error)
    return True, "available"


def print_report(report: dict) -> None:
    print(smoke.format_report(report["smoke"]))
    if "layers" not in report:
        return
    print(f"fused kernels: {report['fused']}")
    print("two residual Mamba layers, B=32 d_model=64 d_state=16 expand=2, fwd+bwd:")
    for label, row in [*report["layers"].items(), ("EEG SignalMamba", report["eeg"])]:
        print(f"  {label:<16} {_row(row)}")


def _row(row: dict) -> str:
    if "error" in row or "skipped" in row:
        return row.get("error") or row["skipped"]
    text = f"torch {row['torch_seconds'] * 1e3:.1f} ms / {row['torch_peak_mib']:.0f} MiB"
    if "fused_seconds" in row:
        text += (
            f" | fused {row['fused_seconds'] * 1e3:.1f} ms / {row['fused_peak_mib']:.0f} MiB"
            f" | {row['speedup']:.1f}x | max abs {row['worst_abs']:.2e} rel {row['worst_rel']:.2e}"
            f" | {'ok' if row['ok'] else 'MISMATCH ' + ','.join(row['failing'])}"
        )
    return text


def main() -> int:
    started = time.monotonic()
    report = {"smoke": run_smoke()}
    if torch.cuda.is_available():
        fused_ok, report["fused"] = fused_status()
        deadline = started + BUDGET_SECONDS
        report["layers"] = layer_benchmark(fused_ok, deadline)
        report["eeg"] = eeg_benchmark(fused_ok, deadline)
    report["seconds"] = time.monotonic() - started
    print_report(report)
    out = os.environ.get("OUT")
    if out:
        Path(out, "gpu_check.json").write_text(json.dumps(report, indent=2, default=str))
    if not torch.cuda.is_available():
        print("CUDA is not available: ran the CPU smoke checks only; no GPU figures.")
    return 0 if report["smoke"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
