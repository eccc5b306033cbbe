"""CPU benchmark of the PyTorch selective scan inside a model: forward + backward time and peak memory.

Two residual layers (RMSNorm + Mamba mixer, B=32, d_model=64, d_state=16, expand=2) on 2 threads, at L=256 and
L=1024, for three contenders measured in this one run:

- ``runtime``: :class:`runtime.model.Mamba` on its PyTorch path (chunked scan with a hand-written backward);
- ``mambapy``: PyPI ``mambapy``'s own model of the same size (``mambapy.mamba.Mamba``, parallel ``pscan``),
  the baseline the ratios are against;
- ``naive``: :class:`runtime.model.Mamba` with the scan replaced by autograd through a Python loop that
  indexes ``x[:, :, t]`` (mamba-ssm's reference formulation). It is so slow that it runs once, at L=256 only.

Time: median of several forward + backward passes after one warm-up pass. Memory: each contender runs in a
fresh subprocess; its peak resident set size (``getrusage(RUSAGE_SELF).ru_maxrss``) after the passes minus the
same figure just before the first pass (model and input already built), i.e. the extra memory one forward +
backward needs. Fresh processes keep one contender's freed-but-cached memory out of another's figure.

Run: ``python benchmarks/scan.py`` (about three minutes on 2 cores). ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

THREADS = 2
BATCH, D_MODEL, D_STATE, EXPAND, N_LAYERS = 32, 64, 16, 2, 2
LENGTHS = (256, 1024)
# (contender, length) -> timed repeats after the warm-up; absent pairs are not run.
PLAN = {
    ("runtime", 256): 7,
    ("runtime", 1024): 5,
    ("mambapy", 256): 3,
    ("mambapy", 1024): 2,
    ("naive", 256): 1,
}


def build_runtime_layers(kernels: str = "torch"):
    """The two residual layers (RMSNorm + runtime.model.Mamba) every figure here is about."""
    import torch.nn as nn

    from runtime.model import Mamba, RMSNorm

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


def naive_selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """Autograd through a per-step loop over full-size tensors (what a straightforward port does)."""
    import torch
    import torch.nn.functional as F

    if delta_bias is not None:
        delta = delta + delta_bias.unsqueeze(-1)
    if delta_softplus:
        delta = F.softplus(delta)
    decay = torch.exp(delta.unsqueeze(-1) * A.unsqueeze(1))  # (b, d, l, n)
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    outputs = []
    for t in range(u.shape[-1]):
        h = decay[:, :, t] * h + drive[:, :, t]
        outputs.append((h * C[:, :, t].unsqueeze(1)).sum(-1))
    y = torch.stack(outputs, dim=-1) + u * D.unsqueeze(-1)
    return y * F.silu(z)


def build_naive_layers():
    from runtime import ssm

    ssm.selective_scan_torch = naive_selective_scan
    return build_runtime_layers()


BUILDERS = {"runtime": build_runtime_layers, "mambapy": build_mambapy, "naive": build_naive_layers}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(contender: str, length: int, repeats: int) -> dict:
    """Runs in the worker subprocess: time and extra peak memory of forward + backward."""
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

    warmup = step() if repeats > 1 else None
    times = [step() for _ in range(repeats)]
    return {
        "contender": contender,
        "length": length,
        "seconds": statistics.median(times),
        "runs": len(times),
        "warmup_seconds": warmup,
        "peak_extra_mib": peak_rss_mib() - baseline,
    }


def run_worker(contender: str, length: int, repeats: int) -> dict:
    command = [sys.executable, __file__, "--worker", contender, str(length), str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{contender} at L={length} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(results: list[dict]) -> None:
    by_key = {(r["contender"], r["length"]): r for r in results}
    print(
        f"fwd+bwd, 2 layers, B={BATCH} d_model={D_MODEL} d_state={D_STATE} expand={EXPAND}, {THREADS} threads"
    )
    header = f"{'contender':<10}{'L':>6}{'seconds':>10}{'peak MiB':>10}"
    print(header + f"{'speed-up vs mambapy':>22}{'memory vs mambapy':>20}")
    for result in results:
        base = by_key.get(("mambapy", result["length"]))
        speed = base["seconds"] / result["seconds"] if base else float("nan")
        memory = result["peak_extra_mib"] / base["peak_extra_mib"] if base else float("nan")
        print(
            f"{result['contender']:<10}{result['length']:>6}{result['seconds']:>10.3f}"
            f"{result['peak_extra_mib']:>10.0f}{speed:>21.1f}x{memory:>19.2f}x"
        )
    print("naive loop: one run at L=256 only (L=1024 would take minutes).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--worker", nargs=3, metavar=("CONTENDER", "LENGTH", "REPEATS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--only", choices=sorted(BUILDERS), action="append", help="run only these contenders")
    args = parser.parse_args()
    if args.worker:
        contender, length, repeats = args.worker
        print(json.dumps(measure(contender, int(length), int(repeats))))
        return
    results = [
        run_worker(contender, length, repeats)
        for (contender, length), repeats in PLAN.items()
        if not args.only or contender in args.only
    ]
    results.sort(key=lambda r: (r["length"], r["contender"]))
    report(results)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
