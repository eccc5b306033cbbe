"""EDF recordings written with edfio for tests, the conversion benchmark and the docs' example folder.

Each recording holds EEG-like background (AR(1) noise plus an alpha rhythm) on TUH-style channel labels
(``EEG FP1-REF``, or ``EEG T7-LE`` at 512 Hz), with 3 Hz spike-wave bursts during its seizure events; the
events go to a TUH ``.csv_bi`` file beside it or into its own EDF+ annotations.

    python -m tests.helpers.edf_files OUT_DIR [--recordings 8] [--minutes 10]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TEN_TWENTY = ("FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T3", "T4")
TEN_TWENTY += ("T5", "T6", "FZ", "CZ", "PZ")
NEW_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}  # the 10-10 names some recordings use
LINKED_EARS_512HZ = {f"EEG {NEW_NAMES.get(name, name)}-LE": 512.0 for name in TEN_TWENTY}
CSV_HEADER = (
    "# version = csv_v1.0.0\n# bname = {name}\n# duration = {seconds:.4f} secs\n#\n"
    "channel,start_time,stop_time,label,confidence\n"
)


def eeg(seconds: float, rate: float, events: Sequence[tuple[float, float, str]], seed: int) -> np.ndarray:
    """One channel in microvolts: background, plus a spike-wave burst during each event."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * rate)) / rate
    values = 20 * lfilter([1.0], [1.0, -0.95], rng.standard_normal(len(time)))
    values += 15 * np.sin(2 * np.pi * 10 * time + rng.uniform(0, 2 * np.pi))
    for start, stop, _ in events:
        inside = (time >= start) & (time < stop)
        phase = 2 * np.pi * 3 * time[inside]
        values[inside] += 120 * (np.sign(np.sin(phase)) * np.abs(np.sin(phase)) ** 3)
    return values


def write_recording(
    path: Path,
    *,
    seconds: float = 120,
    channels: dict[str, float] | None = None,
    events: Sequence[tuple[float, float, str]] = (),
    annotations: str = "csv",
    seed: int = 0,
) -> Path:
    """An EDF file at ``path`` with ``channels`` (label -> sampling rate) and ``events`` (start, stop, label)
    written to ``<path>.csv_bi`` (annotations "csv") or as EDF+ annotations ("edf+")."""
    from edfio import Edf, EdfAnnotation, EdfSignal

    channels = channels or {f"EEG {name}-REF": 256.0 for name in TEN_TWENTY}
    signals = [
        EdfSignal(eeg(seconds, rate, events, seed + i), rate, label=label, physical_range=(-2000, 2000))
        for i, (label, rate) in enumerate(channels.items())
    ]
    notes = [EdfAnnotation(start, stop - start, label) for start, stop, label in events]
    path.parent.mkdir(parents=True, exist_ok=True)
    Edf(signals, annotations=notes if annotations == "edf+" else None).write(path)
    if annotations == "csv":
        write_events_csv(path.with_suffix(".csv_bi"), path.stem, seconds, events)
    return path


def write_events_csv(
    path: Path, name: str, seconds: float, events: Sequence[tuple[float, float, str]]
) -> None:
    rows = [f"TERM,{start:.4f},{stop:.4f},{label},1.0000\n" for start, stop, label in events]
    path.write_text(CSV_HEADER.format(name=name, seconds=seconds) + "".join(rows), encoding="utf-8")


def write_folder(folder: Path, recordings: int, seconds: float, seed: int = 0) -> list[Path]:
    """``recordings`` 19-channel recordings, each with one or two seizures; every third one has its events
    as EDF+ annotations, the others in ``.csv_bi`` files; every fourth one is recorded at 512 Hz against
    linked ears, with the 10-10 names T7, T8, P7, P8 (``EEG T7-LE``)."""
    rng = np.random.default_rng(seed)
    written = []
    for index in range(recordings):
        starts = sorted(rng.uniform(0.1, 0.8, 1 + index % 2) * seconds)
        events = [(round(s, 2), round(s + rng.uniform(20, 60), 2), "seiz") for s in starts]
        kind = "edf+" if index % 3 == 2 else "csv"
        path = folder / f"s{index // 4:03d}" / f"rec{index:03d}_t000.edf"
        channels = LINKED_EARS_512HZ if index % 4 == 3 else None
        written.append(
            write_recording(
                path, seconds=seconds, channels=channels, events=events, annotations=kind, seed=index
            )
        )
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--recordings", type=int, default=8)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    files = write_folder(args.out, args.recordings, args.minutes * 60)
    print(f"wrote {len(files)} recordings under {args.out}")


if __name__ == "__main__":
    main()
