"""Default-config accuracy on public UCR/UEA classification sets, next to a baseline measured in the same run.

For each dataset a training config is written that names only the data (``format: ts``, the TRAIN and TEST
files), ``cache_dir`` and ``output_dir``, as a new user would; ``python -m runtime.train`` trains it from
scratch in a subprocess and the test accuracy of ``best.pt`` is read from ``report.json``. Beside it:

- a 1-nearest-neighbour classifier with Euclidean distance, measured here on the same files (series of
  unequal lengths resampled to the longest), the classic UCR baseline;
- published figures, quoted from the papers (not measured here): ResNet (Ismail Fawaz et al. 2019, "Deep
  learning for time series classification: a review", mean of 10 runs; UEA sets from Ruiz et al. 2021, "The
  great multivariate time series classification bake off") and 1-NN DTW (the UCR archive's full-window DTW;
  for UEA sets the dependent DTW_D of Ruiz et al. 2021).

The ``.ts`` files come from the ``aeon`` package's bundled datasets (``pip install --no-deps aeon==1.6.0``
puts them on disk without its dependencies), or any folder laid out as ``NAME/NAME_TRAIN.ts``.

    python benchmarks/ucr_accuracy.py [--datasets GunPoint,ArrowHead] [--data-dir DIR] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runtime.data.formats import read_ts, ts_classes  # noqa: E402

DATASETS = ("GunPoint", "ArrowHead", "ItalyPowerDemand", "OSULeaf", "BasicMotions", "JapaneseVowels")
# dataset: (ResNet accuracy, 1-NN DTW accuracy) as published; None where a paper has no figure
PUBLISHED = {
    "GunPoint": (0.991, 0.907),
    "ArrowHead": (0.845, 0.703),
    "ItalyPowerDemand": (0.963, 0.950),
    "OSULeaf": (0.979, 0.591),
    "BasicMotions": (1.000, 0.975),
    "JapaneseVowels": (0.992, 0.949),
    "PickupGestureWiimoteZ": (None, 0.660),
    "ACSF1": (None, 0.640),
}


def aeon_data_dir() -> Path | None:
    spec = importlib.util.find_spec("aeon")  # finds the package without importing it (or its dependencies)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def split_files(data_dir: Path, name: str) -> tuple[Path, Path]:
    train, test = (data_dir / name / f"{name}_{split}.ts" for split in ("TRAIN", "TEST"))
    if not (train.is_file() and test.is_file()):
        sys.exit(f"{data_dir / name}: no {name}_TRAIN.ts and {name}_TEST.ts; see --data-dir")
    return train, test


def train_default(name: str, train: Path, test: Path, work: Path, threads: int) -> tuple[float, float, int]:
    """(test accuracy, seconds, optimiser steps) of a run with the default config."""
    config = work / f"{name}.yaml"
    data = {"format": "ts", "train": str(train), "test": str(test), "cache_dir": str(work / "cache")}
    config.write_text(json.dumps({"run_name": name, "output_dir": str(work / "runs"), "data": data}))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "runtime.train", str(config)], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{name}: training failed\n{result.stderr[-3000:]}")
    report = json.loads((work / "runs" / name / "report.json").read_text())
    steps = int(re.search(r"^done: (\d+) steps", result.stderr, re.M).group(1))  # best.pt may be earlier
    return report["metrics"]["accuracy"], seconds, steps


def one_nn_euclidean(train: Path, test: Path) -> float:
    classes = ts_classes(train, str(train))
    train_chunk, test_chunk = (read_ts(path, str(path), classes) for path in (train, test))
    length = max(train_chunk.windows.shape[-1], test_chunk.windows.shape[-1])
    x_train, x_test = (resampled(chunk, length) for chunk in (train_chunk, test_chunk))
    distances = ((x_test[:, None, :] - x_train[None, :, :]) ** 2).sum(-1)
    predicted = train_chunk.labels[distances.argmin(axis=1)]
    return float((predicted == test_chunk.labels).mean())


def resampled(chunk, length: int) -> np.ndarray:
    """(n, C * length): each series interpolated from its own length to ``length``, missing values as 0."""
    rows = []
    for series, own in zip(chunk.windows, chunk.lengths, strict=True):
        grid, source = np.linspace(0, 1, length), np.linspace(0, 1, own)
        rows.append(np.concatenate([np.interp(grid, source, np.nan_to_num(ch[:own])) for ch in series]))
    return np.asarray(rows)


def shape_of(train: Path) -> str:
    chunk = read_ts(train, str(train), ts_classes(train, str(train)))
    lengths = chunk.lengths
    span = str(lengths.max()) if lengths.min() == lengths.max() else f"{lengths.min()}-{lengths.max()}"
    return f"{len(chunk.labels)} x {chunk.windows.shape[1]}ch x {span}, {len(set(chunk.labels.tolist()))} cl"


def fmt(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per training (1 is fastest here)"
    )
    args = parser.parse_args()
    data_dir = args.data_dir or aeon_data_dir()
    if data_dir is None:
        sys.exit("no --data-dir and no aeon package: pip install --no-deps aeon==1.6.0, or give --data-dir")
    print(
        f"{'dataset':<22}{'train set':<30}{'mtc':>7}{'1NN-ED':>8}{'ResNet*':>9}{'DTW*':>7}"
        f"{'mtc/ResNet':>11}{'steps':>7}{'seconds':>9}"
    )
    with tempfile.TemporaryDirectory(prefix="ucr-") as work:
        for name in args.datasets.split(","):
            train, test = split_files(data_dir, name)
            accuracy, seconds, steps = train_default(name, train, test, Path(work), args.threads)
            resnet, dtw = PUBLISHED.get(name, (None, None))
            ratio = f"{accuracy / resnet:.2f}" if resnet else "-"
            print(
                f"{name:<22}{shape_of(train):<30}{accuracy:>7.3f}{one_nn_euclidean(train, test):>8.3f}"
                f"{fmt(resnet):>9}{fmt(dtw):>7}{ratio:>11}{steps:>7}{seconds:>9.0f}",
                flush=True,
            )
    print(
        "* published, not measured here: ResNet (Ismail Fawaz et al. 2019; UEA: Ruiz et al. 2021), "
        "1-NN DTW (UCR archive; UEA: DTW_D, Ruiz et al. 2021)"
    )


if __name__ == "__main__":
    main()
