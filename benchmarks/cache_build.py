"""Cache build time against plain reading of the same npz folder: many small files.

Writes ``--files`` npz files of ``--per-file`` windows (4 channels x 64 timesteps, per-window labels) into a
temporary folder, then measures in this one run:

- read:  every file through the runtime's npz reader (``runtime.data.formats.read_npz``), nothing kept
- cache: ``runtime.data.build_caches`` from scratch (the same reads, plus writing, hashing and recording
         progress so that a killed build resumes)

and prints both times and their ratio. Target: cache within about 3x plain reading for 10,000 files.

    python benchmarks/cache_build.py [--files 10000] [--per-file 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.config import load_config  # noqa: E402
from runtime.data import build_caches  # noqa: E402
from runtime.data.formats import read_npz  # noqa: E402


def write_source(folder: Path, files: int, per_file: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(files):
        path = folder / f"rec{index:05d}.npz"
        windows = rng.standard_normal((per_file, 4, 64)).astype(np.float32)
        np.savez(path, windows=windows, labels=rng.integers(0, 2, per_file))
        paths.append(path)
    return paths


def time_reading(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        read_npz(path, path.name)
    return time.perf_counter() - started


def time_cache_build(root: Path, source: Path) -> float:
    cache_dir = root / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    config = root / "train.yaml"
    config.write_text(
        json.dumps(
            {
                "output_dir": str(root / "runs"),
                "data": {
                    "format": "npz",
                    "train": str(source),
                    "cache_dir": str(cache_dir),
                    "val_fraction": 0.1,
                },
            }
        )
    )
    data = load_config(str(config)).data
    started = time.perf_counter()
    build_caches(data, log=lambda message: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs; the best of each is shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtc-cache-bench-") as tmp:
        root = Path(tmp)
        source = root / "source"
        source.mkdir()
        paths = write_source(source, args.files, args.per_file)
        time_reading(paths)  # warm the page cache for both measurements
        reads, builds = [], []
        for _ in range(args.repeats):
            reads.append(time_reading(paths))
            builds.append(time_cache_build(root, source))
        read, build = min(reads), min(builds)
        print(f"{args.files} npz files of {args.per_file} windows (4 x 64), best of {args.repeats}:")
        print(f"  plain reading: {read:6.2f} s  ({args.files / read:,.0f} files/s)")
        print(f"  cache build:   {build:6.2f} s  ({args.files / build:,.0f} files/s)")
        print(f"  ratio: cache build / plain reading = {build / read:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
