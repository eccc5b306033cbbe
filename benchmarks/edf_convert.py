"""EDF conversion speed: recordings/s, windows/s and MB/s into the cache, 1 process against ``--processes``.

Writes ``--recordings`` 19-channel 256 Hz EDF recordings of ``--minutes`` each (TUH channel labels, seizure
events in ``.csv_bi`` files or EDF+ annotations) into a temporary folder, then converts them in this one run
with the TUH-like settings (60 s windows every 10 s, 0.5-120 Hz band-pass, 60 Hz notch) into a fresh cache,
once with 1 process and once with ``--processes``, and prints both and the speed-up, then the speed-up of a
pure CPU loop with as many processes (the ceiling the machine gives at that moment: other jobs on shared cores
lower it). The parallel time includes starting the worker processes (forked: milliseconds).

    python benchmarks/edf_convert.py [--recordings 16] [--minutes 10] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.config import load_config  # noqa: E402
from runtime.data import build_caches  # noqa: E402
from tests.helpers.edf_files import NEW_NAMES, TEN_TWENTY, write_folder  # noqa: E402


def config(folder: Path, cache: Path, workers: int) -> str:
    path = folder / f"train-{workers}.yaml"
    edf = {
        "channels": list(TEN_TWENTY),
        "aliases": {old: [new] for old, new in NEW_NAMES.items()},
        "window_seconds": 60,
        "stride_seconds": 10,
        "filters": {"bandpass": [0.5, 120], "notch": 60},
        "workers": workers,
    }
    data = {"format": "edf", "train": str(folder / "edf"), "cache_dir": str(cache), "edf": edf}
    path.write_text(json.dumps({"output_dir": str(folder / "runs"), "data": data}), encoding="utf-8")
    return str(path)


def measure(folder: Path, workers: int) -> tuple[float, int]:
    data = load_config(config(folder, folder / f"cache-{workers}", workers)).data
    started = time.perf_counter()
    split = build_caches(data, log=lambda _: None)["train"]
    return time.perf_counter() - started, split.count


def _burn(_: int) -> int:
    total = 0
    for i in range(3_000_000):
        total += i * i
    return total


def control(processes: int) -> float:
    """The speed-up of a pure CPU loop with ``processes``: the ceiling this machine gives right now (other
    jobs on shared cores lower it)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    jobs = range(2 * processes)
    started = time.perf_counter()
    for job in jobs:
        _burn(job)
    serial = time.perf_counter() - started
    with ProcessPoolExecutor(processes, mp_context=get_context("fork")) as pool:
        started = time.perf_counter()
        list(pool.map(_burn, jobs))
        return serial / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=16)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = write_folder(folder / "edf", args.recordings, args.minutes * 60)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"{len(files)} recordings, {megabytes:.0f} MB of EDF, 19 channels at 256 Hz, "
            f"{args.minutes:g} min each"
        )
        results = {workers: measure(folder, workers) for workers in (1, args.processes)}
    for workers, (seconds, windows) in results.items():
        print(
            f"{workers} process(es): {seconds:6.1f} s  {len(files) / seconds:6.2f} recordings/s  "
            f"{windows / seconds:7.1f} windows/s  {megabytes / seconds:6.2f} MB/s of EDF"
        )
    serial, parallel = results[1][0], results[args.processes][0]
    print(f"speed-up with {args.processes} processes: {serial / parallel:.2f}x")
    print(f"control: a pure CPU loop in {args.processes} processes: {control(args.processes):.2f}x")


if __name__ == "__main__":
    main()
