"""Small data files in the formats the runtime reads (npz, UEA/UCR .ts) and configs that point at them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from runtime.config import load_config


def config_file(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "train.yaml"
    data = {"cache_dir": str(tmp_path / "cache"), **data}
    path.write_text(json.dumps({"output_dir": str(tmp_path / "runs"), "data": data}), encoding="utf-8")
    return str(path)


def data_config(tmp_path: Path, **data):
    return load_config(config_file(tmp_path, data)).data


def write_npz(path: Path, n=6, channels=3, length=16, *, per_timestep=False, seed=0, **arrays) -> Path:
    rng = np.random.default_rng(seed)
    content = {
        "windows": rng.standard_normal((n, channels, length)).astype(np.float32),
        "labels": rng.integers(0, 2, (n, length) if per_timestep else n),
    }
    content.update(arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **content)
    return path


TS_HEADER = (
    "# a comment\n@problemName Toy\n@timeStamps false\n@univariate {uni}\n@classLabel true {classes}\n@data\n"
)


def write_ts(path: Path, rows: list[str], *, classes="up down", univariate="true") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TS_HEADER.format(uni=univariate, classes=classes) + "\n".join(rows) + "\n")
    return path
