"""The split cache: each split converted once into one contiguous, memory-mapped array on fast local disk.

A cache folder ``<cache_dir>/<split>-<fingerprint>/`` holds ``windows.f32`` (n, C, T) float32, ``labels.bin``
(int64 per window, or uint8 per timestep) and ``meta.json``. The fingerprint covers the format, the source
files (path, size, modification time), the synthetic generator's settings and the NaN/Inf policy, so a changed
source builds a new cache and an unchanged one is reused. A build happens in ``<name>.partial/``, records each
source chunk's offset and SHA-256 in ``progress.json`` as it goes (a killed build resumes after the last whole
chunk), and is renamed into place only when complete. Builders of one folder take turns under an flock on
``<name>.lock``, so a second one reuses what the first built. ``verify`` re-reads what was written and checks
every digest.
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

from runtime.checkpoint import fsync_dir, write_atomic
from runtime.data.formats import Chunk, DataError, SplitSource

CACHE_VERSION = 1
WINDOWS_FILE, LABELS_FILE, META_FILE, PROGRESS_FILE = (
    "windows.f32",
    "labels.bin",
    "meta.json",
    "progress.json",
)


@dataclass
class CachedSplit:
    """An opened cache folder: memory-mapped arrays plus what the build recorded about them."""

    path: Path
    meta: dict
    reused: bool = False
    _arrays: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

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

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(windows, labels) as read-only memory maps, opened on first use (so each worker opens its own)."""
        if self._arrays is None:
            self._arrays = open_arrays(self.path, self.meta)
        return self._arrays

    def load_into_memory(self) -> None:
        """Replace the memory maps by copies in RAM (DataLoader workers started by fork share them)."""
        windows, labels = self.arrays()
        self._arrays = (np.array(windows), np.array(labels))

    def __getstate__(self) -> dict:
        # DataLoader workers get the path, not the mapped pages: pickling a memmap would copy the whole array
        return {**self.__dict__, "_arrays": None}


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
        with _build_lock(final):  # a second builder (populate_cache, another rank) waits, then reuses
            reused = (final / META_FILE).is_file()
            if not reused:
                _build(final, digest, chunks, nonfinite, progress)
    split = open_cache(final)
    split.reused = reused
    if verify:
        verify_cache(split)
    return split


@contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    with open(final.with_name(final.name + ".lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: concurrent builders are then the user's to avoid
        yield


def open_cache(path: Path) -> CachedSplit:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path}: unreadable cache metadata ({exc}); delete the folder to rebuild it"
        ) from None
    split = CachedSplit(path, meta)
    for name, expected in ((WINDOWS_FILE, meta["windows_bytes"]), (LABELS_FILE, meta["labels_bytes"])):
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
    for name, key in ((WINDOWS_FILE, "windows"), (LABELS_FILE, "labels")):
        with open(split.path / name, "rb") as handle:
            for chunk in split.meta["chunks"]:
                handle.seek(chunk[f"{key}_offset"])
                data = handle.read(chunk[f"{key}_bytes"])
                if hashlib.sha256(data).hexdigest() != chunk[f"{key}_sha256"]:
                    raise DataError(
                        f"{split.path / name}: the bytes of {chunk['name']} do not match what was written; "
                        "the cache is damaged, delete the folder to rebuild it"
                    )


# ----------------------------------------------------------------------------------------------- build


def _build(final: Path, digest: str, chunks: list[Callable[[], Chunk]], nonfinite: str, progress) -> None:
    partial = final.with_name(final.name + ".partial")
    state = _resume_state(partial, digest)
    windows_out = open(partial / WINDOWS_FILE, "r+b" if state["chunks"] else "wb")
    labels_out = open(partial / LABELS_FILE, "r+b" if state["chunks"] else "wb")
    with windows_out, labels_out:
        _truncate_to(windows_out, labels_out, state)
        for load in chunks[len(state["chunks"]) :]:  # the first ones were written by an interrupted build
            name, windows, labels = load()
            windows, labels, bad = _apply_nonfinite(name, windows, labels, nonfinite)
            _check_consistent(state, name, windows, labels)
            state["chunks"].append(_append(windows_out, labels_out, name, windows, labels, bad))
            _update_counts(state, windows, labels)
            _sync(windows_out, labels_out)
            _write_json(partial / PROGRESS_FILE, state)
            if progress:
                progress()
    if state["window_shape"] is None:
        raise DataError(f"{final.name}: the source holds no windows")
    meta = _meta(state)
    _write_json(partial / META_FILE, meta)
    (partial / PROGRESS_FILE).unlink()
    os.replace(partial, final)
    fsync_dir(final.parent)


def _resume_state(partial: Path, digest: str) -> dict:
    try:
        state = json.loads((partial / PROGRESS_FILE).read_text(encoding="utf-8"))
        if state.get("fingerprint") == digest:
            return state
    except (OSError, ValueError):
        pass
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return {
        "fingerprint": digest,
        "chunks": [],
        "window_shape": None,
        "per_timestep": None,
        "label_counts": [],
    }


def _truncate_to(windows_out, labels_out, state: dict) -> None:
    """Drop whatever a killed build wrote after its last recorded chunk."""
    last = state["chunks"][-1] if state["chunks"] else None
    windows_out.truncate(last["windows_offset"] + last["windows_bytes"] if last else 0)
    labels_out.truncate(last["labels_offset"] + last["labels_bytes"] if last else 0)
    windows_out.seek(0, os.SEEK_END)
    labels_out.seek(0, os.SEEK_END)


def _apply_nonfinite(name: str, windows: np.ndarray, labels: np.ndarray, policy: str):
    bad = ~np.isfinite(windows).all(axis=(1, 2))
    count = int(bad.sum())
    if not count:
        return windows, labels, 0
    if policy == "error":
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{name}: {count} window(s) hold NaN or Inf values (first: window {first}); "
            "set data.nonfinite to 'drop' or 'zero' to continue without them"
        )
    if policy == "drop":
        return windows[~bad], labels[~bad], count
    return np.nan_to_num(windows, nan=0.0, posinf=0.0, neginf=0.0), labels, count


def _check_consistent(state: dict, name: str, windows: np.ndarray, labels: np.ndarray) -> None:
    shape, per_timestep = list(windows.shape[1:]), labels.ndim == 2
    if state["window_shape"] is None:
        state["window_shape"], state["per_timestep"] = shape, per_timestep
        return
    if shape != state["window_shape"]:
        first = state["chunks"][0]["name"]
        raise DataError(
            f"{name}: windows are {shape[0]} channels x {shape[1]} timesteps, but {first} has "
            f"{state['window_shape'][0]} x {state['window_shape'][1]}; every file of a split must match"
        )
    if per_timestep != state["per_timestep"]:
        kinds = ("per window", "per timestep")
        raise DataError(
            f"{name}: labels are {kinds[per_timestep]}, but {state['chunks'][0]['name']} has them "
            f"{kinds[state['per_timestep']]}; use one kind of labels for all files"
        )


def _append(windows_out, labels_out, name: str, windows: np.ndarray, labels: np.ndarray, bad: int) -> dict:
    if labels.ndim == 2 and labels.size and labels.max() > 255:
        raise DataError(
            f"{name}: per-timestep labels go up to {labels.max()}; at most 256 classes are supported"
        )
    label_bytes = (labels.astype(np.uint8) if labels.ndim == 2 else labels.astype(np.int64)).tobytes()
    window_bytes = np.ascontiguousarray(windows, dtype=np.float32).tobytes()
    record = {"name": name, "count": len(windows), "nonfinite": bad}
    for key, handle, data in (("windows", windows_out, window_bytes), ("labels", labels_out, label_bytes)):
        record[f"{key}_offset"] = handle.tell()
        record[f"{key}_bytes"] = len(data)
        record[f"{key}_sha256"] = hashlib.sha256(data).hexdigest()
        handle.write(data)
    return record


def _update_counts(state: dict, windows: np.ndarray, labels: np.ndarray) -> None:
    counts = np.bincount(labels.reshape(-1), minlength=len(state["label_counts"]))
    previous = np.zeros(len(counts), dtype=np.int64)
    previous[: len(state["label_counts"])] = state["label_counts"]
    state["label_counts"] = (previous + counts).tolist()


def _meta(state: dict) -> dict:
    count = sum(c["count"] for c in state["chunks"])
    return {
        "version": CACHE_VERSION,
        "fingerprint": state["fingerprint"],
        "count": count,
        "window_shape": state["window_shape"],
        "per_timestep": state["per_timestep"],
        "labels_dtype": "uint8" if state["per_timestep"] else "int64",
        "label_counts": state["label_counts"],
        "nonfinite": sum(c["nonfinite"] for c in state["chunks"]),
        "windows_bytes": sum(c["windows_bytes"] for c in state["chunks"]),
        "labels_bytes": sum(c["labels_bytes"] for c in state["chunks"]),
        "chunks": state["chunks"],
    }


def _sync(*handles) -> None:
    for handle in handles:
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, content: dict) -> None:
    write_atomic(path, json.dumps(content).encode())
