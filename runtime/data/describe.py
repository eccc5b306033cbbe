"""The dataset report ``train`` prints before its first step and writes to the run directory (dataset.json).

One screen: windows per split and class, channels, series lengths, sample rate, class balance, how val was
held out; the trainer adds the resolved schedule. It is the place to catch a wrong label map, a split with a
missing class, or a dataset far smaller than the config was written for, before any GPU time is spent.
"""

from __future__ import annotations

import numpy as np

from runtime.data.loading import DataBundle, SplitView, label_counts


def describe_data(bundle: DataBundle, sample_rate_hz: float) -> dict:
    """What the report shows, as plain JSON values."""
    return {
        "channels": bundle.in_channels,
        "classes": bundle.class_names,
        "labels": "per-timestep" if bundle.per_timestep else "per-window",
        "sample_rate_hz": sample_rate_hz,
        "splits": {name: _describe_split(view, bundle) for name, view in bundle.splits.items()},
        "val_hold_out": None if bundle.split_record is None else bundle.split_record["method"],
    }


def _describe_split(view: SplitView, bundle: DataBundle) -> dict:
    lengths = view.cache.lengths[view.indices]
    return {
        "windows": len(view),
        "per_class": label_counts(view, bundle.num_classes),
        "length": {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
            "padded_to": view.cache.shape[1],
        },
        "recordings": len(np.unique(view.cache.groups[view.indices][view.cache.groups[view.indices] >= 0])),
    }


def render(description: dict, extra_lines: list[str] = ()) -> str:
    """The report as text: a header, then a table of splits by class."""
    classes = description["classes"]
    lines = [
        f"dataset: {description['channels']} channel(s), {len(classes)} classes ({', '.join(classes)}), "
        f"{description['labels']} labels, {description['sample_rate_hz']:g} Hz"
    ]
    unit = "timesteps" if description["labels"] == "per-timestep" else "windows"
    lines.append(f"  {'split':<7}{'windows':>9}  length min/median/max  {unit} per class")
    for name, split in description["splits"].items():
        length = split["length"]
        span = f"{length['min']}/{length['median']:g}/{length['max']}"
        total = max(sum(split["per_class"]), 1)
        shares = ", ".join(
            f"{cls} {count} ({count / total:.0%})"
            for cls, count in zip(classes, split["per_class"], strict=True)
        )
        recordings = f", {split['recordings']} recordings" if split["recordings"] else ""
        lines.append(f"  {name:<7}{split['windows']:>9}  {span:<21}  {shares}{recordings}")
    if description["val_hold_out"]:
        lines.append(f"  val held out of train: {description['val_hold_out']}")
    return "\n".join(lines + list(extra_lines))
