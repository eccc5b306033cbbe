"""Event annotations of an EEG recording and the per-timestep labels they give.

Two sources: a CSV events file beside the recording (``<recording>.csv_bi`` or ``.csv``, columns
``channel,start_time,stop_time,label,confidence`` as in the TUH EEG Seizure Corpus, ``#`` comment lines
allowed) and the recording's own EDF+ annotations (onset, duration, text). Times are seconds from the start
of the recording; an event covers the samples ``[round(start x rate), round(stop x rate))``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.data.formats import DataError

SIDECAR_SUFFIXES = (".csv_bi", ".csv")
REQUIRED_COLUMNS = ("start_time", "stop_time", "label")


@dataclass(frozen=True)
class Event:
    start: float  # seconds from the start of the recording
    stop: float
    label: str
    where: str  # file:line (CSV) or file (EDF+), for messages


def sidecar(recording: Path) -> Path | None:
    """The CSV events file beside ``recording`` (``x.edf`` -> ``x.csv_bi``, else ``x.csv``), if any."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = recording.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def csv_events(path: Path, shown: str) -> list[Event]:
    """The events of a CSV file; a missing column, a time that is not a number or ends before it starts is a
    DataError naming the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{shown}: cannot read the events file ({exc})") from None
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise DataError(f"{shown}: no header line; expected {','.join(('channel', *REQUIRED_COLUMNS))}")
    rows = csv.reader(line for _, line in numbered)
    header = [name.strip().lower() for name in next(rows)]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise DataError(
            f"{shown}:{numbered[0][0]}: the header lacks {', '.join(missing)}; expected the columns "
            "channel,start_time,stop_time,label,confidence"
        )
    columns = [header.index(column) for column in REQUIRED_COLUMNS]
    return [
        _csv_event(row, columns, f"{shown}:{number}")
        for (number, _), row in zip(numbered[1:], rows, strict=True)
    ]


def _csv_event(row: list[str], columns: list[int], where: str) -> Event:
    if len(row) <= max(columns):
        raise DataError(f"{where}: {len(row)} fields; expected at least {max(columns) + 1}")
    start, stop, label = (row[i].strip() for i in columns)
    try:
        begin, end = float(start), float(stop)
    except ValueError:
        raise DataError(f"{where}: start_time {start!r} or stop_time {stop!r} is not a number") from None
    if not 0 <= begin <= end:
        raise DataError(f"{where}: the event runs from {start} to {stop} s; expected 0 <= start <= stop")
    return Event(begin, end, label, where)


def edf_events(annotations: Iterable, shown: str, rate: float) -> list[Event]:
    """Events from EDF+ annotations (``onset``, ``duration``, ``text``); one without a duration covers one
    sample."""
    return [
        Event(a.onset, a.onset + (a.duration or 1 / rate), a.text.strip(), shown)
        for a in annotations
        if a.text.strip()
    ]


def timestep_labels(
    events: Iterable[Event],
    steps: int,
    rate: float,
    label_map: Mapping[str, int],
    default: int,
    *,
    strict: bool,
) -> np.ndarray:
    """uint8 labels of ``steps`` samples: ``default`` where no event lies, else the highest class of the
    events covering the sample. An event whose label the map lacks is an error when ``strict`` (CSV), else
    ignored (EDF+ free text)."""
    labels = np.full(steps, default, dtype=np.uint8)
    for event in events:
        cls = label_map.get(event.label.lower())
        if cls is None:
            if strict:
                known = ", ".join(sorted(label_map)) or "none"
                raise DataError(
                    f"{event.where}: the label {event.label!r} is not in data.edf.annotations.label_map "
                    f"(it maps {known}); add it, e.g. {{{event.label}: 0}} for background"
                )
            continue
        begin, end = max(0, round(event.start * rate)), min(round(event.stop * rate), steps)
        span = labels[begin:end]
        np.maximum(span, cls, out=span)
    return labels
