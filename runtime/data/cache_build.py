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
from pathlib import Path

import numpy as np

from runtime.core.files import fsync_dir, remove_stale_temporaries, write_atomic
from runtime.data.formats import Chunk, DataError

CACHE_VERSION = 1
WINDOWS_FILE, LABELS_FILE, META_FILE, PROGRESS_FILE = (
    "windows.f32",
    "labels.bin",
    "meta.json",
    "progress.jsonl",
)
CHUNK_KEYS = {"name", "count", "nonfinite", "label_counts"} | {
    f"{array}_{field}" for array in ("windows", "labels") for field in ("offset", "bytes", "sha256")
}
PARTIAL, LOCK = ".partial", ".lock"
PROGRESS_EVERY_FILES, PROGRESS_EVERY_SECONDS = 256, 1.0


def build(final: Path, digest: str, chunks: list[Callable[[], Chunk]], nonfinite: str, progress) -> None:
    partial = final.with_name(final.name + PARTIAL)
    state = _resume_state(partial, digest)
    mode = "r+b" if state["chunks"] else "wb"
    with (
        open(partial / WINDOWS_FILE, mode) as windows_out,
        open(partial / LABELS_FILE, mode) as labels_out,
        open(partial / PROGRESS_FILE, "a", encoding="utf-8") as log,
    ):
        _truncate_to(windows_out, labels_out, state)
        recorder = _ProgressRecorder(log, (windows_out, labels_out))
        try:
            for load in chunks[len(state["chunks"]) :]:  # the first ones were written by an interrupted build
                name, windows, labels = load()
                windows, labels, bad = _apply_nonfinite(name, windows, labels, nonfinite)
                _check_consistent(state, name, windows, labels)
                record = _append(windows_out, labels_out, name, windows, labels, bad)
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
    }


def _holds_recorded_bytes(partial: Path, last: dict) -> bool:
    """Whether the data files still reach the end of the last recorded chunk (nobody cut them short)."""
    try:
        windows, labels = ((partial / name).stat().st_size for name in (WINDOWS_FILE, LABELS_FILE))
    except OSError:
        return False
    return windows >= last["windows_offset"] + last["windows_bytes"] and (
        labels >= last["labels_offset"] + last["labels_bytes"]
    )


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
    """Write one chunk (labels are already checked to be class indices below 256 by the format readers)."""
    label_bytes = (labels.astype(np.uint8) if labels.ndim == 2 else labels.astype(np.int64)).tobytes()
    window_bytes = np.ascontiguousarray(windows, dtype=np.float32).tobytes()
    record = {
        "name": name,
        "count": len(windows),
        "nonfinite": bad,
        "label_counts": np.bincount(labels.reshape(-1)).tolist(),
    }
    for key, handle, data in (("windows", windows_out, window_bytes), ("labels", labels_out, label_bytes)):
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
