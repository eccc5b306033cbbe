"""The prediction loop both validation and evaluation use: a model's metrics over every batch of a loader."""

from __future__ import annotations

import torch

from runtime.data import DataBundle
from runtime.metrics import MetricAccumulator


@torch.no_grad()
def evaluate_loader(
    model,
    loader,
    loss_fn,
    placement,
    bundle: DataBundle,
    *,
    sample_rate_hz: float,
    thresholds=(0.5,),
    events: bool = True,
) -> dict:
    """Metrics of ``model`` over every batch of ``loader`` (the model is left in eval mode); ``events``
    adds the detection metrics of per-timestep binary tasks (skipped by validations during training)."""
    model.eval()
    accumulator = MetricAccumulator(
        bundle.num_classes,
        detect_events=bundle.per_timestep and events,
        sample_rate_hz=sample_rate_hz,
        thresholds=thresholds,
    )
    for windows, labels, lengths in loader:
        windows = windows.to(placement.device, non_blocking=True)
        labels = labels.to(placement.device, non_blocking=True)
        with placement.autocast():
            logits = model(windows, lengths.to(placement.device, non_blocking=True))
        loss = loss_fn(logits, labels)
        probs = torch.softmax(logits.float(), dim=1)
        accumulator.update(
            probs.cpu().numpy(), labels.cpu().numpy(), float(loss) * len(windows), len(windows)
        )
    return accumulator.result()
