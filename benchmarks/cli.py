"""Whole-process start-to-exit time of `mtc lint` and `mtc compile` on the example spec, side by side with
`python -c pass` (the interpreter's floor) and `check-jsonschema` (a schema-only validator), in one run.

    python benchmarks/cli.py [--runs N]

Commands run interleaved, so drift in machine load hits all of them alike; medians are printed with ratios.
Target: `mtc lint` at most 0.8x the time of check-jsonschema, although it also lints.

`mtc lint` keeps what it read from the project's Python modules and training configs in a cache by content
hash (``$XDG_CACHE_HOME/mtc``): the target is measured as a developer or a CI job with a cache meets it,
after one warm-up run. `mtc lint (cold cache)` runs each time with an empty cache folder, for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SPEC = "specs/deployment.yaml"
SCHEMA = "specs/schema/deployment.schema.json"
TARGET_RATIO = 0.8
COLD = "mtc lint (cold cache)"


def commands(output: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "check-jsonschema": [str(BIN / "check-jsonschema"), "--schemafile", SCHEMA, SPEC],
        "mtc lint": [str(BIN / "mtc"), "lint", SPEC],
        COLD: [str(BIN / "mtc"), "lint", SPEC],
        "mtc compile": [str(BIN / "mtc"), "compile", SPEC, "-o", str(output)],
    }


def time_once(argv: list[str], cache: Path | None = None) -> float:
    """Seconds ``argv`` takes; with ``cache``, a new empty cache folder under it."""
    env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(dir=cache)) if cache else None
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        named = commands(Path(folder) / "out.py")
        for argv in named.values():  # warm the file cache, .pyc files and mtc's source cache
            time_once(argv)
        samples: dict[str, list[float]] = {name: [] for name in named}
        for _ in range(runs):
            for name, argv in named.items():
                samples[name].append(time_once(argv, Path(folder) if name == COLD else None))
    medians = {name: statistics.median(times) for name, times in samples.items()}
    baseline, validator = medians["python -c pass"], medians["check-jsonschema"]
    print(f"median of {runs} runs, whole process, {SPEC}")
    print(f"{'command':<22} {'median':>9} {'x python':>9} {'x check-jsonschema':>19}")
    for name, median in medians.items():
        print(f"{name:<22} {median * 1000:>7.0f}ms {median / baseline:>8.2f}x {median / validator:>18.2f}x")
    ratio = medians["mtc lint"] / validator
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"target mtc lint <= {TARGET_RATIO}x check-jsonschema: {ratio:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
