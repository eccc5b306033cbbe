"""format edf: one EDF/EDF+ recording in, one chunk of windows with per-timestep labels out.

Per recording, :func:`preprocess_recording` (run in a worker process by :mod:`runtime.data.edf_convert`)
reads it with edfio, picks the configured channels by name (aliases, an optional bipolar montage),
resamples each to ``data.sample_rate_hz`` with scipy's polyphase filter, band-passes and notch-filters it
(zero-phase) and labels every sample from its events (:mod:`runtime.data.annotations`); then
:func:`cut_windows` (in the process that writes the cache) cuts windows of ``window_seconds`` every
``stride_seconds``. Every window carries the recording's id (its path under the data folder, without the
suffix), so the val hold-out groups by recording. A recording that cannot be used raises
:class:`RecordingError` naming it and why; ``data.edf.unreadable`` decides whether that stops the
conversion.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime.data.annotations import csv_events, edf_events, sidecar, timestep_labels
from runtime.data.formats import Chunk, DataError
from runtime.edf_config import EdfConfig

REFERENCE_SUFFIXES = ("-REF", "-LE", "-AR", "-AVG")
CHANNEL_PREFIX = "EEG "
MAX_RESAMPLE_DENOMINATOR = 1000  # rates are matched as a ratio up/down of integers no larger than this
FILTER_ORDER, NOTCH_QUALITY = 4, 30.0


class RecordingError(DataError):
    """One recording cannot be used; the message names its path and the reason."""


def edf_files(path: Path, shown: str) -> tuple[list[Path], list[str]]:
    """The ``*.edf`` files under the folder ``path`` (any depth, sorted), or ``path`` itself."""
    if path.is_file():
        return [path], [shown]
    if not path.is_dir():
        raise DataError(f"{shown}: no such file or folder")
    found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".edf" and p.is_file())
    if not found:
        raise DataError(f"{shown}: no *.edf recordings in this folder")
    return found, [f"{shown.rstrip('/')}/{p.relative_to(path).as_posix()}" for p in found]


def recording_id(path: Path, root: Path) -> str:
    """A recording's id: its path under the data folder, without the suffix (``s001/aaaaaaac_t000``)."""
    return (path.relative_to(root) if path != root else Path(path.name)).with_suffix("").as_posix()


def window_steps(cfg: EdfConfig, rate: float) -> tuple[int, int]:
    """(samples per window, samples between window starts)."""
    return round(cfg.window_seconds * rate), round(cfg.stride_seconds * rate)


def empty_chunk(name: str, cfg: EdfConfig, rate: float) -> Chunk:
    """No windows, in the shape of this config's windows (what a skipped recording adds to the cache)."""
    steps = window_steps(cfg, rate)[0]
    channels = len(cfg.output_channels)
    return Chunk(
        name,
        np.zeros((0, channels, steps), np.float32),
        np.zeros((0, steps), np.int64),
        None,
        np.zeros(0, dtype=str),
    )


def preprocess_recording(
    path: Path, shown: str, cfg: EdfConfig, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """One EDF file as (channels, samples) float32 at ``rate``, filtered, and its per-sample uint8 labels: the
    compact form a worker process hands back (windows overlap, so they are cut by :func:`cut_windows`)."""
    edf = _read(path, shown)
    signals = [_resampled(signal, rate, shown) for signal in _selected(edf, cfg, shown)]
    steps = min(len(values) for values in signals)
    data = np.stack([values[:steps] for values in signals])
    if cfg.montage:
        data = data[0::2] - data[1::2]
    data = _filtered(data, cfg, rate)
    labels = timestep_labels(
        _events(path, shown, edf, cfg, rate),
        steps,
        rate,
        cfg.label_map,
        cfg.default_label,
        strict=_uses_csv(path, cfg),
    )
    return data.astype(np.float32), labels


def edf_reader():
    """edfio's ``read_edf``; a DataError naming the extra to install when edfio is missing (an optional
    import: an image that reads no EDF needs no edfio)."""
    try:
        from edfio import read_edf
    except ModuleNotFoundError:
        raise DataError(
            "data.format 'edf' needs the 'edf' extra (edfio not installed); install it with: "
            "pip install 'mtc[edf]'"
        ) from None
    return read_edf


def _read(path: Path, shown: str):
    read_edf = edf_reader()
    try:
        return read_edf(path)
    except Exception as exc:  # noqa: BLE001 - a damaged file raises whatever edfio's parser meets first
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise RecordingError(f"{shown}: not a readable EDF file ({reason})") from None


def normalised(name: str) -> str:
    """A channel label as compared: upper case, without an ``EEG `` prefix or a reference suffix."""
    name = name.strip().upper()
    name = name.removeprefix(CHANNEL_PREFIX).strip()
    for suffix in REFERENCE_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def _selected(edf, cfg: EdfConfig, shown: str) -> list:
    """The signals for the configured channels (montage: first and second of each pair, interleaved)."""
    by_name: dict[str, object] = {}
    for signal in edf.signals:
        by_name.setdefault(normalised(signal.label), signal)
    wanted = cfg.channels or [name for pair in cfg.montage for name in pair]
    return [_signal(by_name, name, cfg, shown, edf) for name in wanted]


def _signal(by_name: dict, name: str, cfg: EdfConfig, shown: str, edf):
    names = (name, *cfg.aliases.get(name, ()))
    for candidate in names:
        if normalised(candidate) in by_name:
            return by_name[normalised(candidate)]
    tried = f" (nor {', '.join(names[1:])})" if len(names) > 1 else ""
    present = ", ".join(signal.label for signal in edf.signals) or "none"
    raise RecordingError(
        f"{shown}: no channel {name!r}{tried}; the recording has {present}. Add the name it has here to "
        f"data.edf.aliases, as in {{{name}: [...]}}"
    )


def _resampled(signal, rate: float, shown: str) -> np.ndarray:
    values = np.asarray(signal.data, dtype=np.float64)
    source = float(signal.sampling_frequency)
    if source <= 0:
        raise RecordingError(f"{shown}: channel {signal.label!r} has sampling rate {source}")
    ratio = Fraction(rate / source).limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    if ratio == 1:
        return values
    from scipy.signal import resample_poly

    return resample_poly(values, ratio.numerator, ratio.denominator)


def _filtered(data: np.ndarray, cfg: EdfConfig, rate: float) -> np.ndarray:
    if cfg.bandpass is None and cfg.notch is None:
        return data
    from scipy.signal import butter, filtfilt, iirnotch, sosfiltfilt

    if cfg.bandpass is not None:
        sos = butter(FILTER_ORDER, cfg.bandpass, btype="bandpass", fs=rate, output="sos")
        data = sosfiltfilt(sos, data, axis=-1)
    if cfg.notch is not None:
        b, a = iirnotch(cfg.notch, NOTCH_QUALITY, fs=rate)
        data = filtfilt(b, a, data, axis=-1)
    return data


def _uses_csv(path: Path, cfg: EdfConfig) -> bool:
    return cfg.annotation_kind == "csv" or (cfg.annotation_kind == "auto" and sidecar(path) is not None)


def _events(path: Path, shown: str, edf, cfg: EdfConfig, rate: float):
    if not _uses_csv(path, cfg):
        return edf_events(edf.annotations, shown, rate)
    found = sidecar(path)
    if found is None:
        names = " or ".join(path.with_suffix(s).name for s in (".csv_bi", ".csv"))
        raise RecordingError(
            f"{shown}: no events file {names} beside it (data.edf.annotations.kind is 'csv')"
        )
    return csv_events(found, str(Path(shown).with_name(found.name)))


def cut_windows(shown: str, data: np.ndarray, labels: np.ndarray, group: str, cfg: EdfConfig, rate: float):
    """The chunk of one recording: windows as views of it, copied once into the (n, C, T) float32 output."""
    size, stride = window_steps(cfg, rate)
    if data.shape[1] < size:
        return empty_chunk(shown, cfg, rate)
    view = sliding_window_view(data, size, axis=1)[:, ::stride]
    windows = np.ascontiguousarray(view.transpose(1, 0, 2))
    steps = sliding_window_view(labels, size)[::stride].astype(np.int64)
    return Chunk(shown, windows, steps, None, np.full(len(windows), group))
