"""Readers for the three data formats, each yielding the same thing: chunks of windows and labels.

A :class:`Chunk` is ``name, windows, labels, lengths, groups``: ``windows`` float32 ``(n, C, T)``, ``labels``
int64 ``(n,)`` per window or ``(n, T)`` per timestep, ``lengths`` the valid steps of each window (the rest is
padding; None: all ``T``), ``groups`` the recording each window comes from (None: unknown), ``name`` the file
(or generator chunk) it came from, used in every error message. Malformed input raises :class:`DataError`
naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np

from runtime.core.errors import UserError
from runtime.data.memory import available_memory, format_bytes

GROUP_ARRAYS = ("groups", "recording")  # npz arrays naming each window's recording (or subject)


class Chunk(NamedTuple):
    name: str
    windows: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray | None = None
    groups: np.ndarray | None = None  # str per window


SPLITS = ("train", "val", "test")
SYNTHETIC_CHUNK = 512
MAX_CLASSES = 256  # per-timestep labels are cached as uint8
MEMORY_CHECK_BYTES = 2**26  # smaller arrays are read without asking how much memory is free (it costs more)


class DataError(UserError, ValueError):
    """Data could not be used; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class SplitSource:
    """Where one split comes from: a list of files (npz, ts) or a synthetic generator."""

    split: str
    format: str
    files: tuple[Path, ...] = ()
    shown: tuple[str, ...] = ()  # the files as the user named them (container paths), for messages
    classes: tuple[str, ...] = ()  # ts: class names in index order
    groups: tuple[str | None, ...] = ()  # npz: the manifest's recording of each file (None: not named)


# ------------------------------------------------------------------------------------------------- npz


def npz_files(path: Path, shown: str, split: str) -> tuple[list[Path], list[str]]:
    """The npz files of ``split`` under ``path``: one file, the manifest's list, or every ``*.npz`` below."""
    if path.is_file():
        return [path], [shown]
    if not path.is_dir():
        raise DataError(f"{shown}: no such file or folder")
    manifest = path / "manifest.json"
    if manifest.is_file():
        names = _manifest_files(manifest, f"{shown.rstrip('/')}/manifest.json", split)
        if names is not None:
            return [path / n for n in names], [f"{shown.rstrip('/')}/{n}" for n in names]
    found = sorted(p for p in path.rglob("*.npz") if p.is_file())
    if not found:
        raise DataError(
            f"{shown}: no *.npz files in this folder (and no manifest.json listing the {split} files)"
        )
    return found, [f"{shown.rstrip('/')}/{p.relative_to(path).as_posix()}" for p in found]


def _manifest(manifest: Path, shown: str):
    try:
        return json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{shown}: not readable JSON ({exc})") from None


def manifest_groups(folder: Path, shown: str) -> dict[str, str]:
    """The manifest's ``"groups": {"file.npz": "recording or subject"}`` map (empty without one)."""
    manifest = folder / "manifest.json"
    if not (folder.is_dir() and manifest.is_file()):
        return {}
    shown = f"{shown.rstrip('/')}/manifest.json"
    content = _manifest(manifest, shown)
    groups = content.get("groups", {}) if isinstance(content, dict) else {}
    if not isinstance(groups, dict) or not all(isinstance(v, str | int) for v in groups.values()):
        raise DataError(
            f'{shown}: expected "groups" to map file names to recording names, as in {{"a.npz": "s01"}}'
        )
    return {name: str(group) for name, group in groups.items()}


def _manifest_files(manifest: Path, shown: str, split: str) -> list[str] | None:
    """The files the manifest lists for ``split``; None when it lists none for it."""
    content = _manifest(manifest, shown)
    if isinstance(content, dict) and isinstance(content.get("splits"), dict):
        content = content["splits"]
    names = content.get(split) if isinstance(content, dict) else content
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise DataError(
            f'{shown}: expected a list of file names under \'{split}\', as in {{"{split}": ["a.npz"]}}'
        )
    missing = [n for n in names if not (manifest.parent / n).is_file()]
    if missing:
        raise DataError(f"{shown}: lists {len(missing)} missing file(s) for '{split}', first {missing[0]!r}")
    return names


def read_npz(path: Path, shown: str, group: str | None = None) -> Chunk:
    """The windows and labels of one npz file, each array's header checked before anything is allocated.

    Each window's recording is the file's ``groups`` (or ``recording``) array when it has one, else ``group``
    (the manifest's name for the file), else the file itself."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            if not {"windows", "labels"} <= members.keys():
                found = ", ".join(sorted(members)) or "nothing"
                raise DataError(f"{shown}: expected arrays 'windows' and 'labels', found {found}")
            windows, labels = (
                _read_member(archive, members[key], shown, key) for key in ("windows", "labels")
            )
            named = next((key for key in GROUP_ARRAYS if key in members), None)
            groups = _read_member(archive, members[named], shown, named) if named else None
    except DataError:
        raise
    except zipfile.BadZipFile as exc:
        raise DataError(
            f"{shown}: not a valid .npz file ({_first_line(exc)}); expected a zip archive as numpy.savez "
            "writes"
        ) from None
    except (
        OSError,
        ValueError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
    ) as exc:  # RuntimeError: encrypted
        raise DataError(f"{shown}: not a readable .npz file ({_first_line(exc)})") from None
    windows, labels = _check_windows(windows, shown), _check_labels(labels, windows, shown)
    if groups is None:
        groups = np.full(len(windows), group or shown)
    return Chunk(shown, windows, labels, None, _check_groups(groups, len(windows), shown, named))


def npz_length(path: Path, shown: str) -> int:
    """The timesteps of an npz file's windows, from the array's header (no data is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open(archive.getinfo("windows.npy")) as member:
                shape, _, _ = _array_header(member, shown, "windows")
    except KeyError:
        raise DataError(f"{shown}: expected arrays 'windows' and 'labels'") from None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise DataError(f"{shown}: not a readable .npz file ({_first_line(exc)})") from None
    if len(shape) != 3:
        raise DataError(f"{shown}: 'windows' has shape {shape}; expected (n, channels, timesteps)")
    return shape[2]


def _check_groups(groups: np.ndarray, count: int, shown: str, key: str | None) -> np.ndarray:
    if groups.shape != (count,):
        raise DataError(
            f"{shown}: '{key}' has shape {groups.shape}; expected ({count},), one name per window"
        )
    if groups.dtype.kind not in "USiub":
        raise DataError(f"{shown}: '{key}' has dtype {groups.dtype}; expected strings or integers")
    return groups.astype(str)


def _read_member(archive: zipfile.ZipFile, name: str, shown: str, key: str) -> np.ndarray:
    """One array of an npz, refused when its header declares more bytes than the member holds (a damaged
    or hostile header would otherwise allocate what it declares) or than this machine has free."""
    info = archive.getinfo(name)
    with archive.open(info) as member:
        shape, fortran_order, dtype = _array_header(member, shown, key)
        held = info.file_size - member.tell()
        declared = math.prod(shape) * dtype.itemsize
        if declared > held:
            raise DataError(
                f"{shown}: '{key}' declares shape {shape} of {dtype} ({format_bytes(declared)}), but the "
                f"file holds only {format_bytes(held)} of it; the file is damaged or truncated"
            )
        if declared > MEMORY_CHECK_BYTES and declared > (room := available_memory()):
            raise DataError(
                f"{shown}: '{key}' is {format_bytes(declared)} ({shape} of {dtype}), more than the "
                f"{format_bytes(room)} of memory available; split it into smaller files"
            )
        data = member.read(declared)
    if len(data) < declared:
        raise DataError(
            f"{shown}: '{key}' ends after {len(data)} of its {declared} bytes; the file is truncated"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _array_header(member, shown: str, key: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from an .npy header (format 3.0 differs from 2.0 only in encoding)."""
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
    except (ValueError, EOFError) as exc:
        raise DataError(f"{shown}: '{key}' is not a valid .npy array ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise DataError(
            f"{shown}: '{key}' holds Python objects (dtype {dtype}); expected an array of numbers"
        )
    return shape, fortran_order, dtype


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _check_windows(windows: np.ndarray, shown: str) -> np.ndarray:
    if windows.ndim != 3:
        raise DataError(f"{shown}: 'windows' has shape {windows.shape}; expected (n, channels, timesteps)")
    if 0 in windows.shape[1:]:
        raise DataError(
            f"{shown}: 'windows' has shape {windows.shape}: windows of {windows.shape[1]} channel(s) x "
            f"{windows.shape[2]} timestep(s); expected at least 1 channel and 1 timestep"
        )
    if not (np.issubdtype(windows.dtype, np.floating) or np.issubdtype(windows.dtype, np.integer)):
        raise DataError(
            f"{shown}: 'windows' has dtype {windows.dtype}; expected float32 (or another number type)"
        )
    return np.ascontiguousarray(windows, dtype=np.float32)


def _check_labels(labels: np.ndarray, windows: np.ndarray, shown: str) -> np.ndarray:
    n, _, length = windows.shape
    if labels.shape not in ((n,), (n, length)):
        raise DataError(
            f"{shown}: 'labels' has shape {labels.shape}; "
            f"expected ({n},) per window or ({n}, {length}) per timestep"
        )
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise DataError(f"{shown}: 'labels' holds non-integer values; expected class indices 0, 1, ...")
    elif not np.issubdtype(labels.dtype, np.integer) and labels.dtype != np.bool_:
        raise DataError(f"{shown}: 'labels' has dtype {labels.dtype}; expected integer class indices")
    if labels.size and labels.min() < 0:
        raise DataError(
            f"{shown}: 'labels' holds negative values (min {labels.min()}); expected class indices 0, 1, ..."
        )
    if labels.size and labels.max() >= MAX_CLASSES:
        raise DataError(
            f"{shown}: 'labels' holds the class index {labels.max():.0f}; class indices must lie in "
            f"0..{MAX_CLASSES - 1} (at most {MAX_CLASSES} classes)"
        )
    return labels.astype(np.int64)


# -------------------------------------------------------------------------------------------------- ts


def ts_header(path: Path, shown: str) -> dict[str, str]:
    """The ``@key value`` lines before ``@data`` (keys lower-cased)."""
    header: dict[str, str] = {}
    for _, line in _ts_lines(path, shown):
        if not line.startswith("@"):
            raise DataError(f"{shown}: data before '@data'; a .ts file starts with @-header lines")
        key, _, value = line[1:].partition(" ")
        if key.lower() == "data":
            return header
        header[key.lower()] = value.strip()
    raise DataError(f"{shown}: no '@data' line; not a UEA/UCR .ts file")


def ts_classes(path: Path, shown: str) -> tuple[str, ...]:
    """Class names in index order: the ``@classLabel true ...`` list, else the sorted labels of the file."""
    header = ts_header(path, shown)
    declared = header.get("classlabel", "").split()
    if not declared or declared[0].lower() != "true":
        raise DataError(
            f"{shown}: '@classLabel true <labels>' missing; only classification problems are supported"
        )
    if len(declared) > 1:
        classes = tuple(declared[1:])
    else:
        labels = {row[-1] for _, row in _ts_rows(path, shown)}
        numeric = all(_is_number(label) for label in labels)
        classes = tuple(sorted(labels, key=float if numeric else str))
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{shown}: {len(classes)} classes; at most {MAX_CLASSES} are supported")
    return classes


def read_ts(path: Path, shown: str, classes: Sequence[str]) -> Chunk:
    header = ts_header(path, shown)
    if header.get("timestamps", "false").lower() == "true":
        raise DataError(f"{shown}: '@timeStamps true' series are not supported; export without timestamps")
    index = {name: i for i, name in enumerate(classes)}
    series, labels = [], []
    for number, row in _ts_rows(path, shown):
        label = row[-1]
        if label not in index:
            raise DataError(f"{shown}:{number}: class label {label!r} is not one of {', '.join(classes)}")
        series.append(_ts_dimensions(row[:-1], shown, number))
        labels.append(index[label])
    if not series:
        raise DataError(f"{shown}: no series after '@data'")
    channels = series[0].shape[0]
    for number, values in enumerate(series, start=1):
        if values.shape[0] != channels:
            raise DataError(
                f"{shown}: series {number} has {values.shape[0]} dimension(s), series 1 has {channels}; "
                "every series needs the same dimensions (channels)"
            )
    windows, lengths = pad_series(series)
    return Chunk(shown, windows, np.asarray(labels, dtype=np.int64), lengths)


def pad_series(series: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(n, C, longest) float32 windows, zero-padded at the end, and each series' own length."""
    lengths = np.array([values.shape[1] for values in series], dtype=np.int64)
    windows = np.zeros((len(series), series[0].shape[0], int(lengths.max())), dtype=np.float32)
    for row, values in enumerate(series):
        windows[row, :, : values.shape[1]] = values
    return windows, lengths


def _ts_dimensions(fields: list[str], shown: str, number: int) -> np.ndarray:
    rows = []
    for dimension in fields:
        try:
            rows.append([np.nan if v.strip() == "?" else float(v) for v in dimension.split(",")])
        except ValueError:
            raise DataError(f"{shown}:{number}: a value is not a number in {dimension[:40]!r}") from None
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise DataError(
            f"{shown}:{number}: the dimensions of this series have different lengths {sorted(lengths)}"
        )
    return np.asarray(rows, dtype=np.float64)


def _ts_rows(path: Path, shown: str) -> Iterator[tuple[int, list[str]]]:
    in_data = False
    for number, line in _ts_lines(path, shown):
        if not in_data:
            in_data = line.lower().startswith("@data")
            continue
        row = line.split(":")
        if len(row) < 2:
            raise DataError(f"{shown}:{number}: expected 'values:...:label', got {line[:40]!r}")
        yield number, [field.strip() for field in row]


def _ts_lines(path: Path, shown: str) -> Iterator[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if line and not line.startswith("#"):
                    yield number, line
    except FileNotFoundError:
        raise DataError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{shown}: is a folder; format 'ts' expects one .ts file per split") from None
    except UnicodeDecodeError:
        raise DataError(f"{shown}: not a text file (not UTF-8); expected a UEA/UCR .ts file") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- synthetic


def synthetic_chunks(cfg, split: str) -> list[Callable[[], Chunk]]:
    """EEG-like windows: coloured noise and a background rhythm, with rhythmic spike-wave bursts as signal.

    Class 0 is background only; class k > 0 adds a burst whose rhythm is the k-th of a fixed set, on a random
    subset of channels, for a random stretch of the window. A pure function of (seed, split, chunk).
    """
    total = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split]
    return [
        partial(_synthetic_chunk, cfg, split, chunk, min(SYNTHETIC_CHUNK, total - start))
        for chunk, start in enumerate(range(0, total, SYNTHETIC_CHUNK))
    ]


def _synthetic_chunk(cfg, split: str, chunk: int, n: int) -> Chunk:
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), chunk])
    windows, labels = _synthetic_windows(rng, n, cfg)
    return Chunk(f"synthetic:{split}:{chunk}", windows, labels)


def _synthetic_windows(rng: np.random.Generator, n: int, cfg) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import lfilter

    c, t = cfg.channels, cfg.length
    time = np.arange(t)
    # background: AR(1) coloured noise + a drifting rhythm of random frequency and phase, unit variance
    noise = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n, c, t)), axis=-1) * np.sqrt(1 - 0.81)
    rhythm_freq = rng.uniform(0.05, 0.15, (n, 1, 1))
    rhythm = rng.uniform(0.3, 0.8, (n, c, 1)) * np.sin(
        2 * np.pi * rhythm_freq * time + rng.uniform(0, 2 * np.pi, (n, c, 1))
    )
    windows = noise + rhythm + 0.3 * rng.standard_normal((n, c, t))
    windows /= windows.std(axis=(1, 2), keepdims=True)

    classes = np.where(rng.random(n) < cfg.burst_fraction, rng.integers(1, cfg.num_classes, n), 0)
    steps = np.zeros((n, t), dtype=np.int64)
    for i in np.flatnonzero(classes):
        duration = int(rng.uniform(0.25, 0.6) * t)
        begin = int(rng.integers(0, t - duration + 1))
        channels = rng.random(c) < 0.6
        channels[rng.integers(c)] = True
        period = 6.0 + 5.0 * (classes[i] - 1)  # samples per cycle of class k's rhythm
        phase = 2 * np.pi * (time[begin : begin + duration] - begin) / period
        spike_wave = np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 3 + 0.5 * np.sin(phase / 2)
        envelope = np.hanning(duration + 2)[1:-1]
        amplitude = cfg.burst_snr * rng.uniform(0.7, 1.3, channels.sum())[:, None]
        windows[i, channels, begin : begin + duration] += amplitude * envelope * spike_wave
        steps[i, begin : begin + duration] = classes[i]
    labels = steps if cfg.labels == "timestep" else classes.astype(np.int64)
    return windows.astype(np.float32), labels
