"""The run's schedule, resolved against the size of the data: batch, epochs, steps, warm-up, validations.

A config written for a large dataset must not starve a small one (issue: 45 training windows with batch 32 and
10 epochs made 10 optimiser steps, all inside a 100-step warm-up). So the defaults adapt:

- a batch larger than the training split is clamped to it (to a multiple of the process count);
- ``train.epochs: auto`` trains for at least ``train.min_steps`` optimiser steps and at least
  ``MIN_AUTO_EPOCHS`` epochs, so a small dataset gets enough steps and a large one stops through early
  stopping rather than a fixed step count;
- the warm-up is at most ``MAX_WARMUP_FRACTION`` of the steps;
- ``train.eval_every: auto`` validates at each epoch end, or every few epochs when there are more than
  ``MAX_AUTO_VALIDATIONS`` epochs (each validation writes a checkpoint).

Every adjustment is said in :attr:`Schedule.notes`; :func:`describe` is the line ``train`` prints at start.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

MIN_AUTO_EPOCHS = 10
MAX_WARMUP_FRACTION = 0.1
MAX_AUTO_VALIDATIONS = 100


@dataclass(frozen=True)
class Schedule:
    batch_size: int  # global: all data-parallel processes together
    batches_per_epoch: int
    epochs: int
    total_steps: int
    warmup_steps: int
    eval_every: int  # steps between validations (there is always one at the end)
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        return {**asdict(self), "notes": list(self.notes)}


def resolve_schedule(train_cfg, optim_cfg, *, requested_batch: int, batch: int, per_epoch: int) -> Schedule:
    """The schedule of a run whose epochs are ``per_epoch`` batches of ``batch`` windows (``batch`` is
    :func:`clamp_batch` of the config's ``requested_batch``)."""
    notes = []
    if batch != requested_batch:
        notes.append(
            f"data.loader.batch_size {requested_batch} is larger than the training split: batches of "
            f"{batch} (every training window) instead"
        )
    epochs = resolve_epochs(train_cfg, per_epoch)
    total = epochs * per_epoch
    if train_cfg.max_steps:
        total = min(total, train_cfg.max_steps)
    warmup = min(optim_cfg.warmup_steps, math.floor(MAX_WARMUP_FRACTION * total))
    if warmup < optim_cfg.warmup_steps:
        notes.append(
            f"optim.warmup_steps {optim_cfg.warmup_steps} capped to {warmup}: at most "
            f"{MAX_WARMUP_FRACTION:.0%} of the {total} steps"
        )
    eval_every = resolve_eval_every(train_cfg, per_epoch, epochs)
    return Schedule(batch, per_epoch, epochs, total, warmup, eval_every, tuple(notes))


def clamp_batch(batch_size: int, train_windows: int, processes: int) -> int:
    """The batch, at most the training split (rounded down to a multiple of the process count)."""
    if batch_size <= train_windows:
        return batch_size
    return max(processes, train_windows - train_windows % processes)


def resolve_epochs(train_cfg, per_epoch: int) -> int:
    if train_cfg.epochs != "auto":
        return train_cfg.epochs
    return max(MIN_AUTO_EPOCHS, math.ceil(train_cfg.min_steps / per_epoch))


def resolve_eval_every(train_cfg, per_epoch: int, epochs: int) -> int:
    if train_cfg.eval_every == "auto":
        return per_epoch * math.ceil(epochs / MAX_AUTO_VALIDATIONS)
    return train_cfg.eval_every or per_epoch


def describe(schedule: Schedule, processes: int = 1) -> str:
    share = f" ({schedule.batch_size // processes} per process)" if processes > 1 else ""
    lines = [
        f"schedule: {schedule.total_steps} steps = {schedule.epochs} epochs x {schedule.batches_per_epoch} "
        f"batches of {schedule.batch_size}{share}, warm-up {schedule.warmup_steps} steps, validation every "
        f"{schedule.eval_every} steps"
    ]
    return "\n".join(lines + [f"  note: {note}" for note in schedule.notes])
