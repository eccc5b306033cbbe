"""The training config (``specs/train.yaml``): load, apply overrides, validate, fill in defaults.

Problems are reported like the compiler reports deployment.yaml problems (``file:line:col: error: ...
[rule]``) by raising :class:`runtime.core.diagnostics.SpecError`. Defaults live in one place, the JSON
Schema's
``default`` keywords, and are filled in after validation, so the schema file is the reference for every key.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from runtime.config_schema import SCHEMA
from runtime.core.diagnostics import Diagnostic, SpecError
from runtime.core.schema import schema_diagnostics
from runtime.core.yamlfile import SourceDoc, load_yaml
from runtime.edf_config import EdfConfig, edf_config, edf_diagnostics
from runtime.nn.config import ModelConfig
from runtime.paths import resolve

MAX_UNKNOWN_TOP_LEVEL_KEYS = 3  # more, and the file is reported as not a training config, its keys unechoed


@dataclass(frozen=True)
class SyntheticConfig:
    n_train: int
    n_val: int
    n_test: int
    channels: int
    length: int
    num_classes: int
    labels: str
    burst_fraction: float
    burst_snr: float
    seed: int


@dataclass(frozen=True)
class LoaderConfig:
    batch_size: int
    eval_batch_size: int
    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    prefetch_factor: int


@dataclass(frozen=True)
class DataConfig:
    format: str
    train: str | None
    val: str | None
    test: str | None
    val_fraction: float
    split_by: str
    length_policy: str
    length: int | None
    normalize: str
    cache_dir: str
    nonfinite: str
    in_memory: bool | tuple[str, ...]
    sample_rate_hz: float
    synthetic: SyntheticConfig
    loader: LoaderConfig
    edf: EdfConfig | None = None  # format edf only


@dataclass(frozen=True)
class OptimConfig:
    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    warmup_steps: int
    min_lr_ratio: float
    grad_clip: float


@dataclass(frozen=True)
class EarlyStoppingConfig:
    metric: str
    patience: int

    @property
    def mode(self) -> str:
        return "min" if self.metric.endswith("loss") else "max"


@dataclass(frozen=True)
class LossConfig:
    kind: str
    class_weights: str | tuple[float, ...]
    focal_gamma: float
    label_smoothing: float


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | str  # or "auto"
    min_steps: int
    max_steps: int | None
    precision: str
    seed: int
    log_every: int
    eval_every: int | str  # or "auto"
    checkpoint_every: int
    early_stopping: EarlyStoppingConfig
    loss: LossConfig


@dataclass(frozen=True)
class EvaluateConfig:
    split: str
    thresholds: tuple[float, ...]
    fa_per_24h_targets: tuple[float, ...]


@dataclass(frozen=True)
class Config:
    """A validated training config with every default filled in."""

    path: str
    run_name: str
    output_dir: str
    data: DataConfig
    model: ModelConfig  # head may still be "auto"
    optim: OptimConfig
    train: TrainConfig
    evaluate: EvaluateConfig
    raw: dict[str, Any]  # the merged, defaulted document, as saved next to the run

    @property
    def run_dir(self) -> Path:
        return resolve(self.output_dir) / self.run_name


def make_dir(path: Path, key: str, error: type[Exception]) -> Path:
    """Create the folder a config key names, or raise ``error`` saying which key and how to fix it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(
            f"{key}: cannot create {path} ({exc.strerror or exc}); point {key} at a writable folder, or "
            "run through `mtc run --backend local`, which maps mount points such as /results to local folders"
        ) from None
    return path


def load_config(path: str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``path`` (through the volume map), apply dotted ``overrides``, validate, and fill in defaults."""
    doc = load_yaml(resolve(path), display_path=path)
    _check_looks_like_a_config(doc)
    overrides = normalise_overrides(overrides or {})
    for key, value in overrides.items():
        _set_dotted(doc.data, key, value)
    schema = SCHEMA
    diagnostics = [_mark_override(d, overrides) for d in schema_diagnostics(doc, schema)]
    if not diagnostics:
        diagnostics = _semantic_diagnostics(doc)
    if diagnostics:
        raise SpecError(diagnostics)
    data = fill_defaults(copy.deepcopy(doc.data), schema, schema)
    return _build(path, data)


def _check_looks_like_a_config(doc: SourceDoc) -> None:
    """Refuse, without echoing any of it, a file that is plainly something else (a path pointing at a
    credentials file would otherwise have every key listed back as an unknown key)."""
    known = SCHEMA["properties"].keys()
    unknown = sum(key not in known for key in doc.data)
    if unknown > MAX_UNKNOWN_TOP_LEVEL_KEYS or (unknown > 1 and unknown == len(doc.data)):
        message = (
            f"this does not look like a training config: {unknown} of its {len(doc.data)} top-level keys are "
            f"not training-config keys ({', '.join(known)}); check the path (the file's content is not shown)"
        )
        raise SpecError([Diagnostic(doc.path, 1, 1, "error", message, "config/not-a-config")])


def normalise_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train.max_steps": "10"}`` or ``{"train__max_steps": 10}`` -> ``{"train.max_steps": 10}``.

    String values are read as JSON when they parse (``"10"`` -> 10, ``"[0.9, 0.99]"`` -> a list), so overrides
    typed on a command line get their natural types; anything else stays a string.
    """
    out = {}
    for key, value in overrides.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key.replace("__", ".")] = value
    return out


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _mark_override(diagnostic: Diagnostic, overrides: Mapping[str, Any]) -> Diagnostic:
    """Say so when a problem comes from an override rather than from the file."""
    for key, value in overrides.items():
        if diagnostic.message.startswith((f"{key}:", f"{key}.", f"{key}[")):
            message = f"{diagnostic.message} (from the override {key}={value!r})"
            return Diagnostic(
                diagnostic.path,
                diagnostic.line,
                diagnostic.col,
                diagnostic.severity,
                message,
                diagnostic.rule,
            )
    return diagnostic


def _semantic_diagnostics(doc: SourceDoc) -> list[Diagnostic]:
    data = doc.data["data"]
    out = []
    if data["format"] != "synthetic" and "train" not in data:
        message = f"data.train: required for format '{data['format']}': the path of the training data"
        out.append(doc.diagnostic(("data",), message, "config/missing-train", key=True))
    if data.get("length_policy") in ("crop", "resample") and "length" not in data:
        message = (
            f"data.length: required with length_policy '{data['length_policy']}': the series length to use"
        )
        out.append(doc.diagnostic(("data", "length_policy"), message, "config/missing-length"))
    if "length" in data and data.get("length_policy", "pad") == "pad":
        message = (
            "data.length: only used with length_policy crop or resample; remove it, or set length_policy"
        )
        out.append(doc.diagnostic(("data", "length"), message, "config/unused-length", key=True))
    for split in ("train", "val", "test"):
        if data["format"] == "synthetic" and split in data:
            message = (
                f"data.{split}: format 'synthetic' generates its data and reads no path; remove this key"
            )
            out.append(doc.diagnostic(("data", split), message, "config/unused-path", key=True))
    return out + edf_diagnostics(doc)


def fill_defaults(value: Any, schema: Mapping, root: Mapping) -> Any:
    """Add every missing key that has a ``default`` in ``schema`` (following ``$ref``), recursively."""
    schema = _deref(schema, root)
    if not isinstance(value, dict):
        return value
    for name, sub in schema.get("properties", {}).items():
        sub = _deref(sub, root)
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        if name in value:
            value[name] = fill_defaults(value[name], sub, root)
    return value


def _deref(schema: Mapping, root: Mapping) -> Mapping:
    while "$ref" in schema:
        ref = schema["$ref"]
        target = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        merged = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **merged}
    return schema


def _build(path: str, data: dict) -> Config:
    section = data["data"]
    loader = dict(section["loader"])
    loader.setdefault("eval_batch_size", 2 * loader["batch_size"])
    train = dict(data["train"])
    train.setdefault("max_steps", None)
    loss = dict(train["loss"])
    if isinstance(loss["class_weights"], list):
        loss["class_weights"] = tuple(float(w) for w in loss["class_weights"])
    optim = dict(data["optim"], betas=tuple(data["optim"]["betas"]))
    evaluate = data["evaluate"]
    return Config(
        path=path,
        run_name=data["run_name"],
        output_dir=data["output_dir"],
        data=_make(
            DataConfig,
            section,
            train=section.get("train"),
            val=section.get("val"),
            test=section.get("test"),
            length=section.get("length"),
            in_memory=tuple(section["in_memory"])
            if isinstance(section["in_memory"], list)
            else section["in_memory"],
            synthetic=_make(SyntheticConfig, section["synthetic"]),
            loader=_make(LoaderConfig, loader),
            edf=edf_config(section.get("edf")),
        ),
        model=ModelConfig.from_dict(data["model"]),
        optim=_make(OptimConfig, optim),
        train=_make(
            TrainConfig,
            train,
            early_stopping=_make(EarlyStoppingConfig, train["early_stopping"]),
            loss=_make(LossConfig, loss),
        ),
        evaluate=_make(
            EvaluateConfig,
            evaluate,
            thresholds=tuple(evaluate["thresholds"]),
            fa_per_24h_targets=tuple(evaluate["fa_per_24h_targets"]),
        ),
        raw=data,
    )


def _make(cls: type, values: Mapping[str, Any], **replaced: Any) -> Any:
    merged = {**values, **replaced}
    return cls(**{f.name: merged[f.name] for f in fields(cls)})
