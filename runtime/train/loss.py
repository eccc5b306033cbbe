"""The training loss: class-weighted cross-entropy or focal loss, and the weights the config asks for.

Per-timestep labels of padding are ``IGNORE_LABEL`` (-100, torch's ``ignore_index``) and count nowhere."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from runtime.config import Config
from runtime.data import DataBundle
from runtime.data.loading import IGNORE_LABEL
from runtime.train.errors import TrainingError


class ClassificationLoss(torch.nn.Module):
    """Class-weighted cross-entropy or focal loss, for (B, K) or (B, K, T) logits; computed in fp32."""

    def __init__(self, kind: str, weights: torch.Tensor | None, focal_gamma: float, label_smoothing: float):
        super().__init__()
        self.kind, self.gamma, self.smoothing = kind, focal_gamma, label_smoothing
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "cross_entropy":
            return F.cross_entropy(
                logits, labels, weight=self.weights, label_smoothing=self.smoothing, ignore_index=IGNORE_LABEL
            )
        valid = labels != IGNORE_LABEL
        safe = torch.where(valid, labels, 0)
        log_p = F.log_softmax(logits, dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        weight = valid.float() if self.weights is None else self.weights[safe] * valid
        return (loss * weight).sum() / weight.sum().clamp_min(1e-12)

    def total_weight(self, labels: torch.Tensor) -> torch.Tensor:
        """The denominator of ``forward``'s weighted mean (the count of real labels when unweighted)."""
        valid = labels != IGNORE_LABEL
        if self.weights is None:
            return valid.sum().float()
        return (self.weights[torch.where(valid, labels, 0)] * valid).sum()


def make_loss(cfg: Config, bundle: DataBundle) -> ClassificationLoss:
    spec = cfg.train.loss
    counts = np.asarray(bundle.train_label_counts[: bundle.num_classes], dtype=np.float64)
    if spec.class_weights == "none":
        weights = None
    elif spec.class_weights == "balanced":
        weights = np.where(counts > 0, counts.sum() / (bundle.num_classes * np.maximum(counts, 1)), 1.0)
    else:
        if len(spec.class_weights) != bundle.num_classes:
            raise TrainingError(
                f"train.loss.class_weights has {len(spec.class_weights)} weights, but the data has "
                f"{bundle.num_classes} classes ({', '.join(bundle.class_names)})"
            )
        weights = np.asarray(spec.class_weights)
    tensor = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    return ClassificationLoss(spec.kind, tensor, spec.focal_gamma, spec.label_smoothing)


def compute_loss(loss_fn, logits: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
    """The training loss of one batch (a seam for tests that inject a NaN at a given step)."""
    return loss_fn(logits, labels)


def global_loss(
    loss_fn, local: torch.Tensor, labels: torch.Tensor, world
) -> tuple[torch.Tensor, torch.Tensor]:
    """(what to backpropagate, the loss of the whole global batch).

    ``local`` is the (weighted) mean over this rank's share. Scaled by world size x local weight / global
    weight, DDP's average of the ranks' gradients is the gradient of the global batch's mean, also when
    class weights make the shares weigh differently.
    """
    if not world.distributed:
        return local, local.detach()
    weight = loss_fn.total_weight(labels).detach().float()
    sums = world.sum_(torch.stack([local.detach() * weight, weight]))
    return local * (weight * world.size / sums[1]), sums[0] / sums[1]
