"""The optimiser (AdamW with decoupled weight decay) and its learning-rate schedule (warmup, cosine)."""

from __future__ import annotations

import math

import torch


def make_optimizer(model: torch.nn.Module, optim) -> torch.optim.AdamW:
    """AdamW; no weight decay on biases, norms and parameters marked ``_no_weight_decay`` (A_log, D)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        plain = parameter.ndim < 2 or getattr(parameter, "_no_weight_decay", False)
        (no_decay if plain else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps)


def make_scheduler(
    optimizer, optim, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to lr over warmup_steps, then a cosine down to lr x min_lr_ratio at total_steps."""
    warmup = min(warmup_steps, max(total_steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
