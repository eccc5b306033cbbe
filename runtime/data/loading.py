"""From a data config to DataLoaders: resolve the sources, build or reuse the split caches, hold out val,
batch.

The batch order is a pure function of (seed, epoch), and a loader can start at any batch of an epoch, so a
resumed run reads exactly the batches an uninterrupted run would have read.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from runtime.config import make_dir
from runtime.data.cache import CachedSplit, load_or_build, remove_stale_builds
from runtime.data.edf_convert import edf_settings, edf_sources, recording_chunks
from runtime.data.formats import (
    SPLITS,
    DataError,
    SplitSource,
    manifest_groups,
    npz_files,
    npz_length,
    read_npz,
    read_ts,
    synthetic_chunks,
    ts_classes,
)
from runtime.data.lengths import conform
from runtime.data.split import hold_out
from runtime.paths import resolve

IGNORE_LABEL = -100  # per-timestep labels of padding: no loss, no metric (torch's cross-entropy default)


@dataclass
class SplitView:
    """The windows of one split: a cache and the rows of it that belong to the split."""

    cache: CachedSplit
    indices: np.ndarray
    note: str = ""

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class DataBundle:
    splits: dict[str, SplitView]
    in_channels: int
    length: int
    num_classes: int
    class_names: list[str]
    per_timestep: bool
    train_label_counts: list[int]
    split_record: dict | None = None  # how val was held out of train (split.json), None when given

    def summary(self) -> str:
        parts = []
        for name, view in self.splits.items():
            origin = "reused" if view.cache.reused else "built"
            dropped = view.cache.meta["nonfinite"]
            bad = f", {dropped} NaN/Inf window(s) handled" if dropped else ""
            parts.append(f"{name} {len(view)} windows{view.note} (cache {origin}: {view.cache.path}{bad})")
        kind = "per-timestep" if self.per_timestep else "per-window"
        shape = f"{self.in_channels} channels x {self.length} timesteps, {self.num_classes} classes"
        shape += f", {kind} labels"
        return "data: " + shape + "\n  " + "\n  ".join(parts)


# ------------------------------------------------------------------------------------------ sources


def split_sources(data) -> dict[str, SplitSource]:
    """The splits the config names (train always; val and test when given or listed by a manifest)."""
    if data.format == "synthetic":
        return {split: SplitSource(split, "synthetic") for split in SPLITS}
    if data.format == "edf":
        return edf_sources(data)
    if data.format == "ts":
        classes = ts_classes(resolve(data.train), data.train)
        return {
            split: SplitSource(split, "ts", (resolve(path),), (path,), classes)
            for split in SPLITS
            if (path := getattr(data, split))
        }
    sources = {}
    for split in SPLITS:
        path = getattr(data, split) or (data.train if _manifest_lists(resolve(data.train), split) else None)
        if path:
            files, shown = npz_files(resolve(path), path, split)
            named = manifest_groups(resolve(path), path)
            groups = tuple(
                named.get(file.relative_to(resolve(path)).as_posix()) if named else None for file in files
            )
            sources[split] = SplitSource(split, "npz", tuple(files), tuple(shown), groups=groups)
    return sources


def _manifest_lists(folder: Path, split: str) -> bool:
    import json

    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        content = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # npz_files reports the broken manifest when the train split reads it
    if isinstance(content, dict) and isinstance(content.get("splits"), dict):
        content = content["splits"]
    return isinstance(content, dict) and split in content


def _chunks(source: SplitSource, data) -> list[Callable]:
    """One loader per source chunk (file), called only when the chunk is converted."""
    if source.format == "synthetic":
        return synthetic_chunks(data.synthetic, source.split)
    if source.format == "ts":
        loads = [partial(read_ts, source.files[0], source.shown[0], source.classes)]
    else:
        groups = source.groups or (None,) * len(source.files)
        loads = [partial(read_npz, *args) for args in zip(source.files, source.shown, groups, strict=True)]
    length = _SplitLength(source, data)
    return [partial(_conformed, load, data.length_policy, length) for load in loads]


class _SplitLength:
    """The length of a split's windows, worked out on first use (only a cache build needs it): the
    configured one for crop and resample; for pad the longest file's (npz: from every file's header)."""

    def __init__(self, source: SplitSource, data):
        self.source, self.data, self.value = source, data, None

    def __call__(self, chunk_length: int) -> int:
        if self.data.length_policy != "pad":
            return self.data.length
        if self.source.format == "ts":
            return chunk_length  # one file, one chunk: already padded to its longest series
        if self.value is None:
            pairs = zip(self.source.files, self.source.shown, strict=True)
            self.value = max(npz_length(path, shown) for path, shown in pairs)
        return self.value


def _conformed(load: Callable, policy: str, length: _SplitLength):
    chunk = load()
    return conform(chunk, policy, length(chunk.windows.shape[-1]))


def _split_chunks(source: SplitSource, data, log: Callable[[str], None]):
    """A context giving the split's chunk loaders (edf: backed by a process pool that lives as long)."""
    if source.format == "edf":
        return recording_chunks(source, data, log)
    return nullcontext(_chunks(source, data))


def _settings(data, source: SplitSource) -> dict:
    settings = {"nonfinite": data.nonfinite, "length_policy": data.length_policy, "length": data.length}
    if data.format == "synthetic":
        settings["synthetic"] = asdict(data.synthetic)
    if data.format == "edf":
        settings.update(edf_settings(data, source), sample_rate_hz=data.sample_rate_hz)
    return settings


def build_caches(data, *, verify: bool = False, log: Callable[[str], None] = print) -> dict[str, CachedSplit]:
    """Every split's cache, built where missing or stale."""
    cache_dir = make_dir(resolve(data.cache_dir), "data.cache_dir", DataError)
    out = {}
    for split, source in split_sources(data).items():
        started = time.perf_counter()
        with _split_chunks(source, data, log) as chunks:
            unit = "recording" if source.format == "edf" else "file"
            progress = _FileProgress(f"cache {split}", len(chunks), unit)
            try:
                out[split] = load_or_build(
                    cache_dir,
                    source,
                    _settings(data, source),
                    chunks,
                    nonfinite=data.nonfinite,
                    verify=verify,
                    progress=progress.advance,
                )
            finally:
                progress.close()
        if not out[split].reused:
            log(f"cache: built {split} ({out[split].count} windows) in {time.perf_counter() - started:.1f}s")
    for removed in remove_stale_builds(cache_dir):
        log(f"cache: removed {removed}, left by a build that was killed")
    return out


class _FileProgress:
    """Files (or recordings) converted so far, with their rate and the time left (a populate_cache can take
    hours); the bar appears with the first converted file, so a reused cache shows none."""

    def __init__(self, label: str, files: int, unit: str = "file"):
        self.label, self.files, self.unit, self.bar = label, files, unit, None

    def advance(self) -> None:
        if self.bar is None:
            from tqdm import tqdm

            interval = 0.5 if sys.stderr.isatty() else 30.0
            self.bar = tqdm(
                total=self.files,
                desc=self.label,
                unit=self.unit,
                mininterval=interval,
                disable=self.files < 2,
            )
        self.bar.update()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------------------ bundle


def prepare_data(data, *, seed: int, verify: bool = False, log: Callable[[str], None] = print) -> DataBundle:
    caches = build_caches(data, verify=verify, log=log)
    train = caches["train"]
    for split, cache in caches.items():
        if cache.shape[0] != train.shape[0] or cache.per_timestep != train.per_timestep:
            raise DataError(
                f"the {split} split has windows of {cache.shape[0]} channel(s) with {_kind(cache)} labels, "
                f"but train has {train.shape[0]} with {_kind(train)} labels; the splits must match"
            )
    for split, cache in caches.items():
        _check_not_empty(split, cache)
    splits = {split: SplitView(cache, np.arange(cache.count)) for split, cache in caches.items()}
    record = None
    if "val" not in splits:
        held = hold_out(train, data.val_fraction, seed, data.split_by)
        note = f" (held out {data.val_fraction:.0%} of train, {held.method})"
        splits["train"], splits["val"] = SplitView(train, held.train), SplitView(train, held.val, note)
        record = held.record
    for split, view in splits.items():
        if data.in_memory is True or split in (data.in_memory or ()):
            view.cache.load_into_memory()
    names = _class_names(data, caches)
    return DataBundle(
        splits={name: splits[name] for name in SPLITS if name in splits},
        in_channels=train.shape[0],
        length=train.shape[1],
        num_classes=len(names),
        class_names=names,
        per_timestep=train.per_timestep,
        train_label_counts=label_counts(splits["train"], len(names)),
        split_record=record,
    )


def _class_names(data, caches: dict[str, CachedSplit]) -> list[str]:
    """ts: the file's class names; else "0", "1", ... up to the largest label seen (at least 2 classes)."""
    if data.format == "ts":
        return list(split_sources(data)["train"].classes)
    if data.format == "synthetic":
        count = data.synthetic.num_classes
    else:
        count = max(2, *(len(cache.label_counts) for cache in caches.values()))
    return [str(i) for i in range(count)]


def _check_not_empty(split: str, cache: CachedSplit) -> None:
    if cache.count:
        return
    dropped = cache.meta["nonfinite"]
    if dropped:
        raise DataError(
            f"the {split} split has no windows left: all {dropped} of them hold NaN/Inf values and were "
            "dropped (data.nonfinite: drop); fix the data, or set data.nonfinite to 'zero' to keep them with "
            "those values set to 0"
        )
    raise DataError(f"the {split} split holds no windows: its files contain 0 windows")


def _kind(cache: CachedSplit) -> str:
    return "per-timestep" if cache.per_timestep else "per-window"


def label_counts(view: SplitView, num_classes: int) -> list[int]:
    """Windows per class of ``view`` (per-timestep labels: timesteps); a whole cache's from its metadata."""
    if len(view) == view.cache.count:
        counts = np.zeros(num_classes, dtype=np.int64)
        recorded = view.cache.label_counts[:num_classes]
        counts[: len(recorded)] = recorded
        return counts.tolist()
    return view.cache.label_counts_of(view.indices, num_classes)


# ------------------------------------------------------------------------------------------ loading


class WindowBatches(Dataset):
    """Map-style dataset whose items are whole batches: one fancy-indexed read of the memory map per batch."""

    def __init__(self, view: SplitView):
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.sort(self.view.indices[positions])  # sorted rows read the file forwards
        windows, labels = self.view.cache.arrays()
        lengths = self.view.cache.lengths[rows]
        labels = labels[rows].astype(np.int64)
        if labels.ndim == 2:
            labels[np.arange(labels.shape[1]) >= lengths[:, None]] = IGNORE_LABEL
        return (
            torch.from_numpy(np.asarray(windows[rows])),
            torch.from_numpy(labels),
            torch.from_numpy(lengths),
        )


class EpochBatchSampler(Sampler):
    """Batches of positions in an order that is a pure function of (seed, epoch), starting at any batch.

    In data-parallel training ``batch_size`` is the global batch and each of the ``world_size`` ranks takes
    its ``rank``-th share of every batch, so the data order and the positions a run resumes from are those
    of a single process.
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        seed: int,
        shuffle: bool,
        drop_last: bool,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.drop_last = drop_last and size >= batch_size
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    @property
    def batches_per_epoch(self) -> int:
        whole, rest = divmod(self.size, self.batch_size)
        return whole if self.drop_last or not rest else whole + 1

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch - self.start_batch)

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        else:
            order = np.arange(self.size)
        for batch in range(self.start_batch, self.batches_per_epoch):
            positions = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield positions if self.world_size == 1 else np.array_split(positions, self.world_size)[self.rank]


def make_loader(
    view: SplitView,
    loader_cfg,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool,
    device: str,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Batches of ``view``; with ``world_size`` > 1, this rank's share of each (global) batch."""
    sampler = EpochBatchSampler(
        len(view), batch_size, seed=seed, shuffle=shuffle, drop_last=shuffle, rank=rank, world_size=world_size
    )
    workers = loader_cfg.num_workers
    return DataLoader(
        WindowBatches(view),
        batch_size=None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=loader_cfg.pin_memory and device == "cuda",
        persistent_workers=loader_cfg.persistent_workers and workers > 0,
        prefetch_factor=loader_cfg.prefetch_factor if workers > 0 else None,
        # each iter() draws a worker seed; from its own generator it leaves the global RNG (dropout) alone,
        # so a run resumed mid-epoch draws exactly what an uninterrupted one draws
        generator=torch.Generator().manual_seed(seed),
    )
