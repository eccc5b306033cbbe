"""The ``data.edf`` section of a training config: its dataclass and the checks the JSON Schema cannot make.

The schema (:mod:`runtime.config_schema`) holds every key, type and default; this module adds what needs two
keys at once (a band-pass below half the sample rate, channels or a montage but not both), each problem
reported at its key's ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.core.diagnostics import Diagnostic
from runtime.core.yamlfile import SourceDoc

BUILTIN_SAMPLE_RATE = 256.0  # data.sample_rate_hz's schema default


@dataclass(frozen=True)
class EdfConfig:
    channels: tuple[str, ...]
    montage: tuple[tuple[str, str], ...]
    aliases: dict[str, tuple[str, ...]]
    window_seconds: float
    stride_seconds: float
    bandpass: tuple[float, float] | None
    notch: float | None
    annotation_kind: str
    label_map: dict[str, int]
    default_label: int
    unreadable: str
    workers: int | str  # or "auto"

    @property
    def output_channels(self) -> tuple[str, ...]:
        """The names of a window's channels: the channels, or ``A-B`` per montage pair."""
        return self.channels or tuple(f"{a}-{b}" for a, b in self.montage)

    def settings(self) -> dict[str, Any]:
        """Everything the converted windows depend on (the cache fingerprint); workers change nothing."""
        return {
            "channels": list(self.channels),
            "montage": [list(pair) for pair in self.montage],
            "aliases": {name: list(names) for name, names in sorted(self.aliases.items())},
            "window_seconds": self.window_seconds,
            "stride_seconds": self.stride_seconds,
            "bandpass": list(self.bandpass) if self.bandpass else None,
            "notch": self.notch,
            "annotation_kind": self.annotation_kind,
            "label_map": dict(sorted(self.label_map.items())),
            "default_label": self.default_label,
        }


def edf_config(section: Mapping[str, Any] | None) -> EdfConfig | None:
    """The dataclass of a defaulted ``data.edf`` section (None when the config has none)."""
    if section is None:
        return None
    filters, annotations = section["filters"], section["annotations"]
    return EdfConfig(
        channels=tuple(section.get("channels", ())),
        montage=tuple((a, b) for a, b in section.get("montage", ())),
        aliases={name: tuple(names) for name, names in section["aliases"].items()},
        window_seconds=float(section["window_seconds"]),
        stride_seconds=float(section["stride_seconds"]),
        bandpass=tuple(float(f) for f in filters["bandpass"]) if "bandpass" in filters else None,
        notch=float(filters["notch"]) if "notch" in filters else None,
        annotation_kind=annotations["kind"],
        label_map={str(label).lower(): int(cls) for label, cls in annotations["label_map"].items()},
        default_label=annotations["default_label"],
        unreadable=section["unreadable"],
        workers=section["workers"],
    )


def edf_diagnostics(doc: SourceDoc) -> list[Diagnostic]:
    """What is wrong with ``data.edf`` beyond the schema, or with its absence under format edf."""
    data = doc.data["data"]
    section = data.get("edf")
    if data["format"] != "edf":
        if section is None:
            return []
        fmt = data["format"]
        message = f"data.edf: only used with format 'edf' (this config has format '{fmt}'); remove it"
        return [doc.diagnostic(("data", "edf"), message, "config/unused-edf", key=True)]
    if section is None:
        message = (
            "data.edf: required with format 'edf': the channels to read and the window length, as in "
            "edf: {channels: [Fp1, Fp2, ...], window_seconds: 60, stride_seconds: 10}"
        )
        return [doc.diagnostic(("data",), message, "config/missing-edf", key=True)]
    rate = float(data.get("sample_rate_hz", BUILTIN_SAMPLE_RATE))
    return [
        *_channel_problems(doc, section),
        *_filter_problems(doc, section.get("filters", {}), rate),
        *_window_problems(doc, section, rate),
    ]


def _channel_problems(doc: SourceDoc, section: Mapping[str, Any]) -> list[Diagnostic]:
    if ("channels" in section) == ("montage" in section):
        given = "both" if "channels" in section else "neither"
        message = f"data.edf: give channels (the channels to read) or montage (bipolar pairs), not {given}"
        return [doc.diagnostic(("data", "edf"), message, "config/edf-channels", key=True)]
    return []


def _filter_problems(doc: SourceDoc, filters: Mapping[str, Any], rate: float) -> list[Diagnostic]:
    out = []
    nyquist = rate / 2
    band = filters.get("bandpass")
    if band is not None and not band[0] < band[1] < nyquist:
        message = (
            f"data.edf.filters.bandpass: [{band[0]}, {band[1]}] Hz; expected low < high < {nyquist:g} "
            f"(half of sample_rate_hz {rate:g})"
        )
        out.append(doc.diagnostic(("data", "edf", "filters", "bandpass"), message, "config/edf-filter"))
    notch = filters.get("notch")
    if notch is not None and notch >= nyquist:
        message = (
            f"data.edf.filters.notch: {notch} Hz is not below {nyquist:g} Hz (half of sample_rate_hz "
            f"{rate:g}); remove it, or raise sample_rate_hz"
        )
        out.append(doc.diagnostic(("data", "edf", "filters", "notch"), message, "config/edf-filter"))
    return out


def _window_problems(doc: SourceDoc, section: Mapping[str, Any], rate: float) -> list[Diagnostic]:
    out = []
    for key in ("window_seconds", "stride_seconds"):
        seconds = section.get(key)
        if seconds is not None and round(seconds * rate) < 1:
            message = (
                f"data.edf.{key}: {seconds} s is less than one sample at {rate:g} Hz; "
                f"expected at least {1 / rate:g} s"
            )
            out.append(doc.diagnostic(("data", "edf", key), message, "config/edf-window"))
    return out
