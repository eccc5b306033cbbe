"""Score one checkpoint on the test split (or val) and write report.json and plots beside the run.

Training ends with this step for its best checkpoint (:mod:`runtime.train.entry`), and ``runtime.evaluate``
runs it for any checkpoint. Metrics: accuracy, balanced accuracy, macro-F1, the confusion matrix; AUROC and
AUPRC for binary tasks; for per-timestep binary labels also event sensitivity and false alarms per 24 h at the
configured thresholds, and the best sensitivity at or under each false-alarm target (:mod:`runtime.metrics`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from runtime.config import Config
from runtime.core import files
from runtime.data import DataBundle, DataError, make_loader
from runtime.metrics import sensitivity_at_false_alarm_rates
from runtime.nn.config import ModelConfig
from runtime.train import checkpoint
from runtime.train.errors import TrainingError
from runtime.train.loss import make_loss
from runtime.train.model import build, check_model_fits
from runtime.train.plots import write_plots
from runtime.train.predict import evaluate_loader

REPORT_FILE = "report.json"


def evaluate_run(
    cfg: Config,
    checkpoint_path: Path,
    bundle: DataBundle,
    placement,
    on_checkpoint: Callable[[], None] | None = None,
) -> dict:
    """Evaluate one checkpoint on the configured split; write report.json and plots next to the run."""
    state = checkpoint.load(checkpoint_path, map_location=placement.device)
    _check_compatible(state, bundle, checkpoint_path)
    model = _model_from(state, bundle, placement, checkpoint_path)
    split = _split(cfg, bundle)
    loader = make_loader(
        bundle.splits[split],
        cfg.data.loader,
        batch_size=cfg.data.loader.eval_batch_size,
        seed=cfg.train.seed,
        shuffle=False,
        device=placement.device.type,
    )
    metrics = evaluate_loader(
        model,
        loader,
        make_loss(cfg, bundle).to(placement.device),
        placement,
        bundle,
        sample_rate_hz=cfg.data.sample_rate_hz,
        thresholds=cfg.evaluate.thresholds,
    )
    if "events" in metrics:
        metrics["events"]["sensitivity_at_fa_per_24h"] = sensitivity_at_false_alarm_rates(
            metrics["events"], cfg.evaluate.fa_per_24h_targets
        )
    run_dir = cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "checkpoint": str(checkpoint_path),
        "step": state["step"],
        "split": split,
        "windows": len(bundle.splits[split]),
        "class_names": bundle.class_names,
        "scan_backend": model.scan_backend,
        "precision": placement.precision,
        "metrics": metrics,
    }
    report_path = run_dir / REPORT_FILE
    files.write_atomic(report_path, json.dumps(report, indent=2).encode())
    plots = write_plots(run_dir, metrics, bundle.class_names)
    if on_checkpoint:
        on_checkpoint()
    return {**report, "report_path": str(report_path), "plots": [str(p) for p in plots]}


def _split(cfg: Config, bundle: DataBundle) -> str:
    wanted = cfg.evaluate.split
    if wanted == "auto":
        return "test" if "test" in bundle.splits else "val"
    if wanted not in bundle.splits:
        raise DataError(f"evaluate.split is '{wanted}', but the data config names no {wanted} split")
    return wanted


def _model_from(state: dict, bundle: DataBundle, placement, path: Path) -> torch.nn.Module:
    """The checkpoint's model, checked to fit in memory before it is built; a model_config or weights that
    make no model are the file's fault, not a bug."""
    try:
        model_cfg = ModelConfig.from_dict(state["model_config"])
        check_model_fits(model_cfg, bundle, placement)
        model = build(model_cfg, bundle).to(placement.device)
        model.load_state_dict(state["model"])
    except TrainingError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise checkpoint.CheckpointError(
            f"{path}: its model_config and weights do not make a model ({type(exc).__name__}); the file is "
            "damaged or not an mtc checkpoint"
        ) from None
    return model


def _check_compatible(state: dict, bundle: DataBundle, path: Path) -> None:
    wanted = (state["in_channels"], state["num_classes"], state["per_timestep"])
    have = (bundle.in_channels, bundle.num_classes, bundle.per_timestep)
    if wanted != have:
        raise DataError(
            f"{path}: trained on {wanted[0]} channels, {wanted[1]} classes, per_timestep={wanted[2]}; "
            f"the data has {have[0]} channels, {have[1]} classes, per_timestep={have[2]}: "
            "evaluate it with the config it was "
            "trained with"
        )


def headline(metrics: dict) -> dict:
    """The scalar metrics (and sensitivity at the false-alarm targets): what a summary returns."""
    out = {k: v for k, v in metrics.items() if v is None or isinstance(v, int | float)}
    if "events" in metrics:
        out["sensitivity_at_fa_per_24h"] = metrics["events"]["sensitivity_at_fa_per_24h"]
    return out


def default_checkpoint(run_dir: Path) -> Path:
    """The run's best.pt, else last.pt (each falling back to its previous generation when damaged)."""
    for name in (checkpoint.BEST, checkpoint.LAST):
        found = checkpoint.load_latest(run_dir, name)
        if found:
            return found[1]
    raise checkpoint.CheckpointError(
        f"{run_dir}: no best.pt or last.pt here; train first, or pass a checkpoint"
    )
