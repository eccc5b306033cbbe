"""The split cache: each split converted once into one contiguous, memory-mapped array on fast local disk.

A cache folder ``<cache_dir>/<split>-<fingerprint>/`` holds ``windows.f32`` (n, C, T) float32, ``labels.bin``
(int64 per window, or uint8 per timestep), ``lengths.i32`` (each window's steps before its padding),
``groups.i32`` (each window's recording: an index into ``meta.json``'s ``group_names``, -1 for none) and
``meta.json``. The fingerprint covers the format, the source
files (path, size, modification time), the synthetic generator's settings and the NaN/Inf policy, so a changed
source builds a new cache and an unchanged one is reused. A build happens in ``<name>.partial/`` and appends
each source chunk's offset and SHA-256 to ``progress.jsonl`` in batches (every ``PROGRESS_EVERY_FILES``
chunks or ``PROGRESS_EVERY_SECONDS``, after the data is fsynced), so a killed build resumes after the last
recorded chunk; the folder is renamed into place only when complete. Builders of one folder take turns under
an flock on ``<name>.lock``, so a second one reuses what the first built; the lock file goes when the build
ends, and :func:`remove_stale_builds` removes what killed builds left (partial folders, lock files) once no
process holds their lock. ``verify`` re-reads what was written and checks every digest.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.data.cache_build import (
    ARRAY_FILES,
    CACHE_VERSION,
    GROUPS_FILE,
    LABELS_FILE,
    LENGTHS_FILE,
    LOCK,
    META_FILE,
    PARTIAL,
    WINDOWS_FILE,
    build,
)
from runtime.data.formats import Chunk, DataError, SplitSource
from runtime.data.memory import available_memory, format_bytes


@dataclass
class CachedSplit:
    """An opened cache folder: memory-mapped arrays plus what the build recorded about them."""

    path: Path
    meta: dict
    reused: bool = False
    _arrays: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _lengths: np.ndarray | None = field(default=None, repr=False)
    _groups: np.ndarray | None = field(default=None, repr=False)
    _window_classes: np.ndarray | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return self.meta["count"]

    @property
    def shape(self) -> tuple[int, int]:
        """(channels, timesteps) of one window."""
        return tuple(self.meta["window_shape"])

    @property
    def per_timestep(self) -> bool:
        return self.meta["per_timestep"]

    @property
    def label_counts(self) -> list[int]:
        return self.meta["label_counts"]

    @property
    def lengths(self) -> np.ndarray:
        """Each window's steps before its padding (int64, in RAM: 4 bytes a window on disk)."""
        if self._lengths is None:
            self._lengths = np.fromfile(self.path / LENGTHS_FILE, dtype=np.int32).astype(np.int64)
        return self._lengths

    @property
    def groups(self) -> np.ndarray:
        """Each window's recording as an index into :attr:`group_names` (-1: not known)."""
        if self._groups is None:
            self._groups = np.fromfile(self.path / GROUPS_FILE, dtype=np.int32).astype(np.int64)
        return self._groups

    @property
    def group_names(self) -> list[str]:
        return self.meta["group_names"]

    @property
    def window_classes(self) -> np.ndarray:
        """One class per window: its label, or the highest class among its valid timesteps (a window holding
        a seizure is a seizure window); read once, block by block."""
        if self._window_classes is None:
            _, labels = self.arrays()
            if not self.per_timestep:
                self._window_classes = np.asarray(labels, dtype=np.int64)
            else:
                self._window_classes = np.concatenate(
                    [block.max(axis=1) for block in self._valid_label_blocks(np.arange(self.count))]
                    or [np.zeros(0, np.int64)]
                )
        return self._window_classes

    def label_counts_of(self, rows: np.ndarray, num_classes: int) -> list[int]:
        """Windows per class among ``rows`` (per-timestep labels: timesteps per class, not padding)."""
        counts = np.zeros(num_classes, dtype=np.int64)
        if not self.per_timestep:
            return np.bincount(self.window_classes[rows], minlength=num_classes).tolist()
        for block in self._valid_label_blocks(rows):
            counts += np.bincount(block[block >= 0], minlength=num_classes)[:num_classes]
        return counts.tolist()

    def _valid_label_blocks(self, rows: np.ndarray, size: int = 4096):
        """Per-timestep labels of ``rows`` in blocks, padding set to -1 (a split never sits in RAM whole)."""
        _, labels = self.arrays()
        for start in range(0, len(rows), size):
            chosen = rows[start : start + size]
            block = np.asarray(labels[chosen], dtype=np.int64)
            block[np.arange(block.shape[1]) >= self.lengths[chosen, None]] = -1
            yield block

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(windows, labels) as read-only memory maps, opened on first use (so each worker opens its own)."""
        if self._arrays is None:
            self._arrays = open_arrays(self.path, self.meta)
        return self._arrays

    def load_into_memory(self) -> None:
        """Replace the memory maps by copies in RAM (DataLoader workers started by fork share them); refused
        with a message when they do not fit in the memory available."""
        windows, labels = self.arrays()
        if not isinstance(windows, np.memmap):
            return  # already in RAM (train and a val held out of it share one cache)
        size, room = self.meta["windows_bytes"] + self.meta["labels_bytes"], available_memory()
        if size > room:
            raise DataError(
                f"data.in_memory: the cache {self.path} is {format_bytes(size)}, more than the "
                f"{format_bytes(room)} of memory available; leave this split memory-mapped (data.in_memory "
                "false, or a list without it)"
            )
        self._arrays = (np.array(windows), np.array(labels))

    def __getstate__(self) -> dict:
        # DataLoader workers get the path, not the mapped pages: pickling a memmap would copy the whole array
        return {**self.__dict__, "_arrays": None, "_groups": None, "_window_classes": None}


def fingerprint(source: SplitSource, settings: dict) -> str:
    """A stable digest of everything the cache content depends on."""
    files = []
    for path, shown in zip(source.files, source.shown, strict=True):
        try:
            stat = path.stat()
        except OSError:
            raise DataError(f"{shown}: no such file") from None
        files.append([shown, stat.st_size, stat.st_mtime_ns])
    key = {
        "version": CACHE_VERSION,
        "split": source.split,
        "format": source.format,
        "files": files,
        "classes": list(source.classes),
        **settings,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def load_or_build(
    cache_dir: Path,
    source: SplitSource,
    settings: dict,
    chunks: list[Callable[[], Chunk]],
    *,
    nonfinite: str,
    verify: bool = False,
    progress: Callable[[], None] | None = None,
) -> CachedSplit:
    """The cache of ``source``: reused when its fingerprint matches, else built (resuming a partial build)."""
    digest = fingerprint(source, settings)
    final = cache_dir / f"{source.split}-{digest}"
    reused = (final / META_FILE).is_file()
    if not reused:
        try:
            with _build_lock(final):  # a second builder (populate_cache, another rank) waits, then reuses
                reused = (final / META_FILE).is_file()
                if not reused:
                    build(final, digest, chunks, nonfinite, progress)
        except OSError as exc:
            raise _cache_error(exc, cache_dir) from None
    split = open_cache(final)
    split.reused = reused
    if verify:
        verify_cache(split)
    return split


def _cache_error(exc: OSError, cache_dir: Path) -> DataError:
    """A failed read of a source file names that file; anything else is the cache folder's problem."""
    name = Path(exc.filename) if exc.filename else None
    if name and not name.is_relative_to(cache_dir):
        return DataError(f"{name}: cannot read ({exc.strerror or exc})")
    return DataError(
        f"data.cache_dir: cannot write the cache in {cache_dir} ({exc.strerror or exc}); point "
        "data.cache_dir at a writable folder with room for the cache"
    )


class _NoLocks(Exception):
    """The file system refuses flock."""


@contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    path = final.with_name(final.name + LOCK)
    try:
        handle = _lock(path, wait=True)
    except _NoLocks:
        handle = None  # concurrent builders are then the user's to avoid
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # still held: a builder waiting on this file finds it gone and retries
        if handle:
            handle.close()


def _lock(path: Path, *, wait: bool):
    """An open handle holding the flock of ``path``; None when ``wait`` is False and another process holds
    it. A file removed or replaced while this one waited is opened again, so removing a held lock file is
    safe."""
    while True:
        handle = open(path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.close()
            return None
        except OSError:
            handle.close()
            raise _NoLocks from None
        if _same_file(handle, path):
            return handle
        handle.close()


def _same_file(handle, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def remove_stale_builds(cache_dir: Path) -> list[Path]:
    """Remove the partial folders and lock files of builds that were killed (whose lock no one holds).

    Called once every split is ready, so none of them is the caller's own. Returns what was removed."""
    names = {p.name.removesuffix(PARTIAL) for p in cache_dir.glob(f"*{PARTIAL}")}
    names |= {p.name.removesuffix(LOCK) for p in cache_dir.glob(f"*{LOCK}")}
    removed = []
    for name in sorted(names):
        lock_path = cache_dir / (name + LOCK)
        try:
            handle = _lock(lock_path, wait=False)
        except (OSError, _NoLocks):
            return removed  # a read-only folder, or one without locks: whose build is dead is unknowable
        if handle is None:
            continue  # a live builder
        with handle:
            partial = cache_dir / (name + PARTIAL)
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
                removed.append(partial)
            lock_path.unlink(missing_ok=True)
    return removed


def open_cache(path: Path) -> CachedSplit:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: unreadable cache metadata ({exc}); delete the folder to rebuild it"
        ) from None
    split = CachedSplit(path, meta)
    if meta.get("version") != CACHE_VERSION:
        raise DataError(
            f"{path}: a cache of format {meta.get('version')}, this version reads format {CACHE_VERSION}; "
            "delete the folder to rebuild it"
        )
    for key, name in ARRAY_FILES.items():
        expected = meta[f"{key}_bytes"]
        size = (path / name).stat().st_size if (path / name).exists() else -1
        if size != expected:
            raise DataError(
                f"{path / name}: {size} bytes, expected {expected}; "
                "the cache is damaged, delete it to rebuild"
            )
    return split


def open_arrays(path: Path, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    count, (channels, length) = meta["count"], meta["window_shape"]
    if count == 0:
        return np.zeros((0, channels, length), np.float32), np.zeros((0,), np.int64)
    windows = np.memmap(path / WINDOWS_FILE, dtype=np.float32, mode="r", shape=(count, channels, length))
    label_shape = (count, length) if meta["per_timestep"] else (count,)
    labels = np.memmap(path / LABELS_FILE, dtype=np.dtype(meta["labels_dtype"]), mode="r", shape=label_shape)
    return windows, labels


def verify_cache(split: CachedSplit) -> None:
    """Re-read every chunk written and compare its SHA-256 with the one recorded while writing."""
    for key, name in ARRAY_FILES.items():
        with open(split.path / name, "rb") as handle:
            for chunk in split.meta["chunks"]:
                handle.seek(chunk[f"{key}_offset"])
                data = handle.read(chunk[f"{key}_bytes"])
                if hashlib.sha256(data).hexdigest() != chunk[f"{key}_sha256"]:
                    raise DataError(
                        f"{split.path / name}: the bytes of {chunk['name']} do not match what was written; "
                        "the cache is damaged, delete the folder to rebuild it"
                    )
