"""CPU benchmark of the PyTorch selective scan inside a model: forward + backward time and peak memory.

Two residual layers (RMSNorm + Mamba mixer, B=32, d_model=64, d_state=16, expand=2) on 2 threads, at L=256 and
L=1024, for three contenders measured in this one run:

- ``runtime``: :class:`runtime.nn.modules.mamba.Mamba` on its PyTorch path (chunked scan with a hand-written
  backward);
- ``mambapy``: PyPI ``mambapy``'s own model of the same size (``mambapy.mamba.Mamba``, parallel ``pscan``),
  the baseline the ratios are against;
- ``naive``: :class:`runtime.nn.modules.mamba.Mamba` with the scan replaced by autograd through a Python loop
  that
  indexes ``x[:, :, t]`` (mamba-ssm's reference formulation). It is so slow that it runs once, at L=256 only.

Time: every measurement runs in a fresh subprocess (one warm-up pass, then a few timed passes), in
``--rounds`` interleaved rounds so that load from other processes hits all contenders alike; the table shows
the median and the best pass. Memory: the peak resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``) after
the passes minus the same figure just before the first pass (model and input already built), i.e. the extra
memory one forward + backward needs; fresh processes keep one contender's freed-but-cached memory out of
another's figure.

Run: ``python benchmarks/scan.py`` (about four minutes on 2 cores). ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

THREADS = 2
BATCH, D_MODEL, D_STATE, EXPAND, N_LAYERS = 32, 64, 16, 2, 2
LENGTHS = (256, 1024)
# (contender, length) -> timed repeats after the warm-up, per round; absent pairs are not run.
PLAN = {
    ("runtime", 256): 5,
    ("runtime", 1024): 3,
    ("mambapy", 256): 3,
    ("mambapy", 1024): 2,
    ("naive", 256): 1,
}


def build_runtime_layers(kernels: str = "torch"):
    """The two residual layers (RMSNorm + runtime.nn.modules.mamba.Mamba) every figure here is about."""
    import torch.nn as nn

    from runtime.nn.models.signal import RMSNorm
    from runtime.nn.modules.mamba import Mamba

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = RMSNorm(D_MODEL)
            self.mixer = Mamba(D_MODEL, d_state=D_STATE, expand=EXPAND, kernels=kernels)

        def forward(self, x):
            return x + self.mixer(self.norm(x))

    return nn.Sequential(*(Layer() for _ in range(N_LAYERS)))


def build_mambapy():
    from mambapy.mamba import Mamba, MambaConfig

    config = MambaConfig(
        d_model=D_MODEL, n_layers=N_LAYERS, d_state=D_STATE, expand_factor=EXPAND, pscan=True
    )
    return Mamba(config)


def naive_selective_scan_time_major(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """Autograd through a per-step loop indexing full-size tensors (what a straightforward port does), on the
    time-major layout the model's PyTorch path uses: u, delta, z (l, b, d); B, C (l, b, n)."""
    import torch
    import torch.nn.functional as F

    if delta_bias is not None:
        delta = delta + delta_bias
    if delta_softplus:
        delta = F.softplus(delta)
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (l, b, d, n)
    drive = (delta * u).unsqueeze(-1) * B.unsqueeze(2)
    h = u.new_zeros(u.shape[1], u.shape[2], A.shape[1])
    outputs = []
    for t in range(u.shape[0]):
        h = decay[t] * h + drive[t]
        outputs.append((h * C[t].unsqueeze(1)).sum(-1))
    y = torch.stack(outputs) + u * D
    return y * F.silu(z)


def build_naive_layers():
    from runtime.nn.ops import scan as ssm

    ssm.selective_scan_time_major = naive_selective_scan_time_major
    return build_runtime_layers()


BUILDERS = {"runtime": build_runtime_layers, "mambapy": build_mambapy, "naive": build_naive_layers}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(contender: str, length: int, repeats: int) -> dict:
    """Runs in the worker subprocess: times and extra peak memory of forward + backward."""
    import torch

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = BUILDERS[contender]()
    x = torch.randn(BATCH, length, D_MODEL, requires_grad=True)
    baseline = peak_rss_mib()

    def step() -> float:
        start = time.perf_counter()
        model(x).square().mean().backward()
        elapsed = time.perf_counter() - start
        model.zero_grad(set_to_none=True)
        x.grad = None
        return elapsed

    if repeats > 1:
        step()  # warm-up
    times = [step() for _ in range(repeats)]
    return {"times": times, "peak_extra_mib": peak_rss_mib() - baseline}


def run_worker(contender: str, length: int, repeats: int) -> dict:
    command = [sys.executable, __file__, "--worker", contender, str(length), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{contender} at L={length} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_plan(contenders: list[str], rounds: int) -> list[dict]:
    """Every planned (contender, length) once per round, rounds interleaved, so a burst of load from other
    processes hits all contenders alike. The naive loop runs in the first round only."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for round_index in range(rounds):
        for (contender, length), repeats in PLAN.items():
            if contender in contenders and (contender != "naive" or round_index == 0):
                runs.setdefault((contender, length), []).append(run_worker(contender, length, repeats))
    results = []
    for (contender, length), worker_runs in runs.items():
        times = [t for run in worker_runs for t in run["times"]]
        results.append(
            {
                "contender": contender,
                "length": length,
                "runs": len(times),
                "median_seconds": statistics.median(times),
                "best_seconds": min(times),
                "peak_extra_mib": statistics.median(run["peak_extra_mib"] for run in worker_runs),
            }
        )
    return sorted(results, key=lambda r: (r["length"], r["contender"]))


def report(results: list[dict], load: tuple[float, float]) -> None:
    by_key = {(r["contender"], r["length"]): r for r in results}
    print(
        f"fwd+bwd, 2 layers, B={BATCH} d_model={D_MODEL} d_state={D_STATE} expand={EXPAND}, {THREADS} threads"
    )
    print(f"load average (1 min) before/after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} cores")
    print(
        f"{'contender':<10}{'L':>6}{'runs':>5}{'median s':>10}{'best s':>9}{'peak MiB':>10}"
        f"{'speed-up median/best':>23}{'memory':>8}"
    )
    for result in results:
        base = by_key.get(("mambapy", result["length"]))
        if base:
            speed = (
                f"{base['median_seconds'] / result['median_seconds']:.1f}x / "
                f"{base['best_seconds'] / result['best_seconds']:.1f}x"
            )
            memory = f"{result['peak_extra_mib'] / base['peak_extra_mib']:.2f}x"
        else:
            speed = memory = "-"
        print(
            f"{result['contender']:<10}{result['length']:>6}{result['runs']:>5}{result['median_seconds']:>10.3f}"
            f"{result['best_seconds']:>9.3f}{result['peak_extra_mib']:>10.0f}{speed:>23}{memory:>8}"
        )
    print("speed-up and memory are relative to mambapy at the same length; naive: one run at L=256 only.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", nargs=3, metavar=("CONTENDER", "LENGTH", "REPEATS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--only", choices=sorted(BUILDERS), action="append", help="run only these contenders")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every measurement")
    args = parser.parse_args()
    if args.worker:
        contender, length, repeats = args.worker
        print(json.dumps(measure(contender, int(length), int(repeats))))
        return
    load_before = os.getloadavg()[0]
    results = run_plan(args.only or sorted(BUILDERS), args.rounds)
    report(results, (load_before, os.getloadavg()[0]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
