"""Loader throughput: the memory-mapped split cache vs reading the npz files directly, workers 0/1/2.

Builds an EEG-shaped npz source (``--files`` files of ``--per-file`` windows, 19 channels) in a temporary
folder, converts it with the runtime's cache, and measures windows per second through a shuffled DataLoader:

- cache:  runtime.data's loader (one fancy-indexed read of the memory map per batch)
- direct: a per-window Dataset that opens the window's npz and takes its row (default collate), as a
          straightforward PyTorch loader over the source files would

It then measures what the debug model (specs/train.debug.yaml) consumes per second in training steps on
this machine and the cache loader's rate on the debug data's shape. Everything is measured in this one run;
the output is the rates and their ratios. Targets: cache >= 10x direct, and >= 5x the debug model's rate.

    python benchmarks/loader.py [--files 24] [--per-file 64] [--length 2048] [--batches 30]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.config import load_config  # noqa: E402
from runtime.data import make_loader, prepare_data  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


class DirectNpz(Dataset):
    """One window per item, read from its npz file on every access."""

    def __init__(self, files: list[Path], per_file: int):
        self.files, self.per_file = files, per_file

    def __len__(self) -> int:
        return len(self.files) * self.per_file

    def __getitem__(self, index: int):
        path = self.files[index // self.per_file]
        with np.load(path) as archive:
            row = index % self.per_file
            return torch.from_numpy(archive["windows"][row]), int(archive["labels"][row])


def windows_per_second(loader, batches: int) -> float:
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    count, started = 0, time.perf_counter()
    for _ in range(batches):
        windows, *_ = next(iterator)
        count += len(windows)
    return count / (time.perf_counter() - started)


def make_source(folder: Path, files: int, per_file: int, length: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(files):
        path = folder / f"rec{index:03d}_windows.npz"
        np.savez(
            path,
            windows=rng.standard_normal((per_file, 19, length), dtype=np.float32),
            labels=rng.integers(0, 2, per_file),
        )
        paths.append(path)
    return paths


def shuffled_train_loader(cfg, bundle):
    """The train split's loader as training builds it (configured batch size, seeded shuffle, CPU)."""
    return make_loader(
        bundle.splits["train"],
        cfg.data.loader,
        batch_size=cfg.data.loader.batch_size,
        seed=0,
        shuffle=True,
        device="cpu",
    )


def debug_model_rate(steps: int = 12) -> tuple[float, object]:
    """Windows per second the debug config's model trains on, on this machine (after two warm-up steps)."""
    from runtime.train.loss import make_loss
    from runtime.train.model import build, resolved_model_config
    from runtime.train.optim import make_optimizer

    cfg = load_config(str(REPO / "specs" / "train.debug.yaml"))
    cfg = replace(cfg, data=replace(cfg.data, cache_dir=tempfile.mkdtemp(prefix="mtc-bench-")))
    bundle = prepare_data(cfg.data, seed=0, log=lambda m: None)
    model = build(resolved_model_config(cfg, bundle), bundle)
    optimizer = make_optimizer(model, cfg.optim)
    loss_fn = make_loss(cfg, bundle)
    loader = shuffled_train_loader(cfg, bundle)
    batches = [b for _, b in zip(range(steps + 2), loader, strict=False)]
    started = None
    for index, (windows, labels) in enumerate(batches):
        if index == 2:
            started = time.perf_counter()
        loss = loss_fn(model(windows), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rate = steps * cfg.data.loader.batch_size / (time.perf_counter() - started)
    return rate, (cfg, bundle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--per-file", type=int, default=64)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the loaders compete for 2 cores; keep torch's own threads out of it

    with tempfile.TemporaryDirectory(prefix="mtc-bench-") as tmp:
        folder = Path(tmp)
        (folder / "src").mkdir()
        files = make_source(folder / "src", args.files, args.per_file, args.length)
        config = folder / "train.yaml"
        config.write_text(
            f"output_dir: {folder}/runs\ndata:\n  format: npz\n  train: {folder}/src\n"
            f"  cache_dir: {folder}/cache\n  loader:\n    batch_size: {args.batch_size}\n"
        )
        cfg = load_config(str(config))
        started = time.perf_counter()
        bundle = prepare_data(cfg.data, seed=0, log=lambda m: None)
        build_s = time.perf_counter() - started
        total_mib = len(files) * args.per_file * 19 * args.length * 4 / 2**20
        print(
            f"source: {len(files)} npz files, {len(files) * args.per_file} windows of 19 x {args.length} "
            f"({total_mib:.0f} MiB); cache built in {build_s:.1f}s"
        )
        view = bundle.splits["train"]
        rows = []
        for workers in (0, 1, 2):
            loader_cfg = replace(cfg.data.loader, num_workers=workers, prefetch_factor=4)
            cache = make_loader(
                view, loader_cfg, batch_size=args.batch_size, seed=0, shuffle=True, device="cpu"
            )
            direct = DataLoader(
                DirectNpz(files, args.per_file),
                batch_size=args.batch_size,
                shuffle=True,
                num_workers=workers,
                persistent_workers=False,
                prefetch_factor=4 if workers else None,
            )
            rows.append(
                (workers, windows_per_second(cache, args.batches), windows_per_second(direct, args.batches))
            )
        print(f"{'workers':>8} {'cache win/s':>12} {'direct npz win/s':>17} {'ratio':>7}")
        for workers, cache_rate, direct_rate in rows:
            print(f"{workers:>8} {cache_rate:>12.0f} {direct_rate:>17.0f} {cache_rate / direct_rate:>6.1f}x")

    torch.set_num_threads(threads)  # the model trains as it would in a run
    model_rate, (debug_cfg, debug_bundle) = debug_model_rate()
    debug_loader = shuffled_train_loader(debug_cfg, debug_bundle)
    debug_loader_rate = windows_per_second(debug_loader, 40)
    print(
        f"debug model (specs/train.debug.yaml) trains on {model_rate:.0f} win/s; "
        "the cache loader on its data "
        f"({debug_cfg.data.loader.num_workers} workers) delivers {debug_loader_rate:.0f} win/s = "
        f"{debug_loader_rate / model_rate:.0f}x"
    )


if __name__ == "__main__":
    main()
