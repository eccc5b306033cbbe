"""Building one split's cache folder: chunks appended in ``<name>.partial/``, journalled, resumable.

Each source chunk's offset and SHA-256 go to ``progress.jsonl`` in batches (every ``PROGRESS_EVERY_FILES``
chunks or ``PROGRESS_EVERY_SECONDS``, after the data is fsynced), so a killed build resumes after the last
recorded chunk; the folder is renamed into place only when complete (see :mod:`runtime.data.cache`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from runtime.core.files import fsync_dir, remove_stale_temporaries, write_atomic
from runtime.data.formats import Chunk, DataError

CACHE_VERSION = 2
WINDOWS_FILE, LABELS_FILE, LENGTHS_FILE, GROUPS_FILE, META_FILE, PROGRESS_FILE = (
    "windows.f32",
    "labels.bin",
    "lengths.i32",
    "groups.i32",
    "meta.json",
    "progress.jsonl",
)
ARRAY_FILES = {"windows": WINDOWS_FILE, "labels": LABELS_FILE, "lengths": LENGTHS_FILE, "groups": GROUPS_FILE}
CHUNK_KEYS = {"name", "count", "nonfinite", "label_counts", "new_groups"} | {
    f"{array}_{field}" for array in ARRAY_FILES for field in ("offset", "bytes", "sha256")
}
PARTIAL, LOCK = ".partial", ".lock"
PROGRESS_EVERY_FILES, PROGRESS_EVERY_SECONDS = 256, 1.0


def build(final: Path, digest: str, chunks: list[Callable[[], Chunk]], nonfinite: str, progress) -> None:
    partial = final.with_name(final.name + PARTIAL)
    state = _resume_state(partial, digest)
    mode = "r+b" if state["chunks"] else "wb"
    with ExitStack() as stack:
        outs = {key: stack.enter_context(open(partial / name, mode)) for key, name in ARRAY_FILES.items()}
        log = stack.enter_context(open(partial / PROGRESS_FILE, "a", encoding="utf-8"))
        _truncate_to(outs, state)
        recorder = _ProgressRecorder(log, tuple(outs.values()))
        try:
            for load in chunks[len(state["chunks"]) :]:  # the first ones were written by an interrupted build
                chunk, bad = _apply_nonfinite(load(), nonfinite)
                _check_consistent(state, chunk)
                record = _append(outs, chunk, bad, state)
                _add_chunk(state, record)
                recorder.add(_progress_line(state, record))
                if progress:
                    progress()
        except BaseException:
            recorder.flush_quietly()  # an exception is not a kill: keep every chunk written whole
            raise
        recorder.flush()
    if state["window_shape"] is None:
        raise DataError(f"{final.name}: the source holds no windows")
    _write_json(partial / META_FILE, _meta(state))
    (partial / PROGRESS_FILE).unlink()
    os.replace(partial, final)
    fsync_dir(final.parent)


class _ProgressRecorder:
    """Appends progress lines in batches: every PROGRESS_EVERY_FILES chunks or PROGRESS_EVERY_SECONDS,
    whichever comes first, always after fsyncing the data they describe (a line never outruns its bytes)."""

    def __init__(self, log, data_files: tuple):
        self.log, self.data_files = log, data_files
        self.pending: list[str] = []
        self.last_flush = time.monotonic()

    def add(self, line: dict) -> None:
        self.pending.append(json.dumps(line) + "\n")
        due = time.monotonic() - self.last_flush >= PROGRESS_EVERY_SECONDS
        if due or len(self.pending) >= PROGRESS_EVERY_FILES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            _sync(*self.data_files)
            self.log.write("".join(self.pending))
            _sync(self.log)
            self.pending = []
        self.last_flush = time.monotonic()

    def flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError:
            pass  # the exception being raised says more than this one


def _progress_line(state: dict, record: dict) -> dict:
    return {"chunk": record, "window_shape": state["window_shape"], "per_timestep": state["per_timestep"]}


def _resume_state(partial: Path, digest: str) -> dict:
    """The chunks a killed build recorded (a torn last line is dropped), or a fresh partial folder."""
    lines = _progress_lines(partial / PROGRESS_FILE)
    if len(lines) > 1 and lines[0].get("fingerprint") == digest:
        state = _fresh_state(digest)
        for line in lines[1:]:
            state["window_shape"], state["per_timestep"] = line["window_shape"], line["per_timestep"]
            _add_chunk(state, line["chunk"])
        if _holds_recorded_bytes(partial, state["chunks"][-1]):
            remove_stale_temporaries(partial)
            write_atomic(partial / PROGRESS_FILE, "".join(json.dumps(line) + "\n" for line in lines).encode())
            return state
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    write_atomic(partial / PROGRESS_FILE, (json.dumps({"fingerprint": digest}) + "\n").encode())
    return _fresh_state(digest)


def _fresh_state(digest: str) -> dict:
    return {
        "fingerprint": digest,
        "chunks": [],
        "window_shape": None,
        "per_timestep": None,
        "label_counts": [],
        "group_names": [],
        "group_ids": {},
    }


def _holds_recorded_bytes(partial: Path, last: dict) -> bool:
    """Whether the data files still reach the end of the last recorded chunk (nobody cut them short)."""
    try:
        sizes = {key: (partial / name).stat().st_size for key, name in ARRAY_FILES.items()}
    except OSError:
        return False
    return all(sizes[key] >= last[f"{key}_offset"] + last[f"{key}_bytes"] for key in ARRAY_FILES)


def _progress_lines(path: Path) -> list[dict]:
    """The whole lines of a progress log, up to the first torn or foreign one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    lines = []
    for raw in text.splitlines(keepends=True):
        try:
            line = json.loads(raw) if raw.endswith("\n") else None
        except ValueError:
            line = None
        if not (_is_header(line) if not lines else _is_chunk_line(line)):
            break
        lines.append(line)
    return lines


def _is_header(line) -> bool:
    return isinstance(line, dict) and isinstance(line.get("fingerprint"), str)


def _is_chunk_line(line) -> bool:
    chunk = line.get("chunk") if isinstance(line, dict) else None
    return (
        isinstance(chunk, dict)
        and CHUNK_KEYS <= chunk.keys()
        and {"window_shape", "per_timestep"} <= line.keys()
    )


def _add_chunk(state: dict, record: dict) -> None:
    state["chunks"].append(record)
    totals, counts = state["label_counts"], record["label_counts"]
    totals.extend([0] * (len(counts) - len(totals)))
    for label, count in enumerate(counts):
        totals[label] += count
    for name in record["new_groups"]:
        state["group_ids"][name] = len(state["group_names"])
        state["group_names"].append(name)


def _truncate_to(outs: dict, state: dict) -> None:
    """Drop whatever a killed build wrote after its last recorded chunk."""
    last = state["chunks"][-1] if state["chunks"] else None
    for key, handle in outs.items():
        handle.truncate(last[f"{key}_offset"] + last[f"{key}_bytes"] if last else 0)
        handle.seek(0, os.SEEK_END)


def _apply_nonfinite(chunk: Chunk, policy: str) -> tuple[Chunk, int]:
    bad = ~np.isfinite(chunk.windows).all(axis=(1, 2))
    count = int(bad.sum())
    if not count:
        return chunk, 0
    if policy == "error":
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{chunk.name}: {count} window(s) hold NaN or Inf values (first: window {first}); "
            "set data.nonfinite to 'drop' or 'zero' to continue without them"
        )
    if policy == "drop":
        keep = ~bad
        return chunk._replace(
            windows=chunk.windows[keep],
            labels=chunk.labels[keep],
            lengths=None if chunk.lengths is None else chunk.lengths[keep],
            groups=None if chunk.groups is None else chunk.groups[keep],
        ), count
    return chunk._replace(windows=np.nan_to_num(chunk.windows, nan=0.0, posinf=0.0, neginf=0.0)), count


def _check_consistent(state: dict, chunk: Chunk) -> None:
    name, windows, labels = chunk.name, chunk.windows, chunk.labels
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


def _append(outs: dict, chunk: Chunk, bad: int, state: dict) -> dict:
    """Write one chunk (labels are already checked to be class indices below 256 by the format readers)."""
    windows, labels = chunk.windows, chunk.labels
    count, _, steps = windows.shape
    lengths = np.full(count, steps) if chunk.lengths is None else chunk.lengths
    new_groups = []
    if chunk.groups is None:
        group_ids = np.full(count, -1)
    else:
        known = state["group_ids"]
        new_groups = [name for name in dict.fromkeys(chunk.groups.tolist()) if name not in known]
        lookup = {**known, **{name: len(known) + i for i, name in enumerate(new_groups)}}
        group_ids = np.array([lookup[name] for name in chunk.groups.tolist()])
    arrays = {
        # a view of the windows, not a copy: for EDF they are the largest thing a build writes
        "windows": np.ascontiguousarray(windows, dtype=np.float32).reshape(-1).view(np.uint8),
        "labels": (labels.astype(np.uint8) if labels.ndim == 2 else labels.astype(np.int64)).tobytes(),
        "lengths": lengths.astype(np.int32).tobytes(),
        "groups": group_ids.astype(np.int32).tobytes(),
    }
    record = {
        "name": chunk.name,
        "count": count,
        "nonfinite": bad,
        "label_counts": _valid_label_counts(labels, lengths),
        "new_groups": new_groups,
    }
    for key, data in arrays.items():
        handle = outs[key]
        record[f"{key}_offset"] = handle.tell()
        record[f"{key}_bytes"] = len(data)
        record[f"{key}_sha256"] = hashlib.sha256(data).hexdigest()
        handle.write(data)
    return record


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
        "group_names": state["group_names"],
        "nonfinite": sum(c["nonfinite"] for c in state["chunks"]),
        **{f"{key}_bytes": sum(c[f"{key}_bytes"] for c in state["chunks"]) for key in ARRAY_FILES},
        "chunks": state["chunks"],
    }


def _valid_label_counts(labels: np.ndarray, lengths: np.ndarray) -> list[int]:
    """Windows per class (per-window labels) or timesteps per class, padding not counted."""
    if labels.ndim == 1:
        return np.bincount(labels).tolist()
    valid = np.arange(labels.shape[1]) < lengths[:, None]
    return np.bincount(labels[valid]).tolist()


def _sync(*handles) -> None:
    for handle in handles:
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: Path, content: dict) -> None:
    write_atomic(path, json.dumps(content).encode())
