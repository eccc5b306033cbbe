"""The training loop of one run, read top to bottom: build the parts, restore or start, fit, checkpoint.

Everything that must survive preemption (model, optimizer, scheduler, scaler, RNG states, step, data
position, early-stopping state) goes into each checkpoint, and the batch order is a pure function of
(seed, epoch), so a run killed at any point and restarted ends with the weights an uninterrupted run would
have had (exactly, on CPU).

Data parallelism (:mod:`runtime.train.distributed`): ``data.loader.batch_size`` stays the global batch; each
rank trains on its share of every batch, and the loss is normalised over the global batch, so DDP's gradient
average is the single-process gradient. Rank 0 validates alone (the others wait for its verdict) and writes
every file; all ranks resume from the same ``last.pt``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from runtime.config import Config, make_dir
from runtime.data import DataBundle, make_loader
from runtime.data.statistics import channel_statistics
from runtime.train import checkpoint, distributed
from runtime.train.distributed import SINGLE
from runtime.train.errors import TrainingError
from runtime.train.loss import compute_loss, global_loss, make_loss
from runtime.train.metrics_log import MetricsLog
from runtime.train.model import build, check_model_fits, resolved_model_config
from runtime.train.optim import make_optimizer, make_scheduler
from runtime.train.placement import Placement, data_parallel, restore_rng
from runtime.train.predict import evaluate_loader
from runtime.train.schedule import clamp_batch, resolve_schedule

VAL_METRICS = ("loss", "accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc")


@dataclass
class LoopState:
    """The loop's position and early-stopping bookkeeping; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0
    batch: int = 0  # the next batch of ``epoch`` to train on
    best_value: float | None = None
    best_step: int | None = None
    stale_evals: int = 0
    stopped_early: bool = False

    def finished(self, total_steps: int, epochs: int) -> bool:
        return self.stopped_early or self.step >= total_steps or self.epoch >= epochs

    def record_validation(self, value: float | None, stopping) -> tuple[bool, str | None]:
        """Track the best value of the early-stopping metric: (is this validation the new best, a message
        when it stops the run)."""
        if value is None:  # e.g. AUROC while val holds a single class: this validation cannot be ranked
            return False, None
        best = self.best_value
        if best is None or (value < best if stopping.mode == "min" else value > best):
            self.best_value, self.best_step, self.stale_evals = value, self.step, 0
            return True, None
        self.stale_evals += 1
        if not (stopping.patience and self.stale_evals >= stopping.patience):
            return False, None
        self.stopped_early = True
        return False, (
            f"early stopping at step {self.step}: {stopping.metric} has not improved for "
            f"{stopping.patience} validations (best {best:.4f} at step {self.best_step})"
        )


class Trainer:
    """Model, optimizer, schedule, loaders and loop state of one run, with the loop as small methods."""

    def __init__(
        self, cfg: Config, bundle: DataBundle, placement: Placement, *, on_checkpoint: Callable | None
    ):
        self.cfg, self.bundle, self.placement = cfg, bundle, placement
        self.on_checkpoint = on_checkpoint
        self.run_dir = cfg.run_dir
        if placement.is_main:
            make_dir(self.run_dir, "output_dir", TrainingError)
        self.model_cfg = resolved_model_config(cfg, bundle)
        check_model_fits(self.model_cfg, bundle, placement)
        self.model = build(self.model_cfg, bundle).to(placement.device)
        self.network = data_parallel(self.model, placement)  # what trains; self.model is what is saved
        self.loss_fn = make_loss(cfg, bundle).to(placement.device)
        requested = cfg.data.loader.batch_size
        batch = clamp_batch(requested, len(bundle.splits["train"]), placement.world.size)
        self.train_loader = split_loader(cfg, bundle, placement, "train", batch)
        self.val_loader = split_loader(cfg, bundle, placement, "val", cfg.data.loader.eval_batch_size)
        self.sampler = self.train_loader.sampler
        self.schedule = resolve_schedule(
            cfg.train,
            cfg.optim,
            requested_batch=requested,
            batch=batch,
            per_epoch=self.sampler.batches_per_epoch,
        )
        self.total_steps = self.schedule.total_steps
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.scheduler = make_scheduler(
            self.optimizer, cfg.optim, self.schedule.warmup_steps, self.total_steps
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=placement.precision == "fp16")
        self.state = LoopState()
        self.log = MetricsLog(self.run_dir, placement.is_main)
        self.losses = LossWatch()
        self.last_checkpoint_step: int | None = None
        self.latest_val: dict = {}

    # -------------------------------------------------------------------- state in and out

    def restore(self, state: dict, source: Path) -> None:
        load_checkpoint_state(self, state, source)
        self.last_checkpoint_step = self.state.step
        self.log.reset(keep_until_step=self.state.step)
        self._say(
            f"resumed from {source} at step {self.state.step} (epoch {self.state.epoch}, "
            f"batch {self.state.batch})"
        )

    def start_fresh(self) -> None:
        """Step 0: the normalisation statistics of the training split go into the model (and so into every
        checkpoint)."""
        self.log.reset(keep_until_step=-1)
        if self.model_cfg.normalize == "channel":
            mean, std = channel_statistics(self.bundle.splits["train"], self.cfg.train.seed)
            self.model.set_channel_statistics(torch.from_numpy(mean), torch.from_numpy(std))

    def checkpoint_state(self) -> dict:
        return checkpoint_state(self)

    def save(self, *, best: bool = False) -> None:
        """Write last.pt (and best.pt); every rank calls it, rank 0 writes (with every rank's RNG states)."""
        self._check_losses()  # never write weights that a NaN/Inf loss has already touched
        world = self.placement.world
        rng_by_rank = world.gather(checkpoint.rng_state()) if world.distributed else None
        self.last_checkpoint_step = self.state.step
        if not world.is_main:
            return
        state = self.checkpoint_state()
        if rng_by_rank:
            state["rng_by_rank"] = rng_by_rank
        checkpoint.save(state, self.run_dir / checkpoint.LAST)
        if best:
            checkpoint.save(state, self.run_dir / checkpoint.BEST)
        if self.on_checkpoint:
            self.on_checkpoint()

    # -------------------------------------------------------------------- training

    def finished(self) -> bool:
        return self.state.finished(self.total_steps, self.schedule.epochs)

    def fit(self) -> None:
        progress = progress_bar(self.total_steps, self.state.step, enabled=self.placement.is_main)
        try:
            while not self.finished():
                self.sampler.set_position(self.state.epoch, self.state.batch)
                for windows, labels, lengths in self.train_loader:
                    self.train_step(windows, labels, lengths)
                    progress.update(1)
                    epoch_done = self.state.batch == self.sampler.batches_per_epoch
                    if epoch_done:
                        self.state.epoch, self.state.batch = self.state.epoch + 1, 0
                    self.after_step(progress, epoch_done)
                    if self.finished():
                        break
            if self.last_checkpoint_step != self.state.step:
                self.validate_and_save()
        finally:
            progress.close()
            self.log.close()

    def train_step(self, windows: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> None:
        device = self.placement.device
        windows = windows.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        self.network.train()
        with self.placement.autocast():
            logits = self.network(windows, lengths.to(device, non_blocking=True))
        local_loss = compute_loss(self.loss_fn, logits, labels, self.state.step)
        loss, batch_loss = global_loss(self.loss_fn, local_loss, labels, self.placement.world)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.losses.add(batch_loss, len(windows) * self.placement.world.size)
        self.state.step += 1
        self.state.batch += 1

    def after_step(self, progress, epoch_done: bool) -> None:
        """Log, validate and checkpoint at their cadences (validations write checkpoints)."""
        train = self.cfg.train
        step = self.state.step
        if step % train.log_every == 0:
            self.log_train(progress)
        if step % self.schedule.eval_every == 0:
            self.validate_and_save()
        elif (train.checkpoint_every and step % train.checkpoint_every == 0) or (
            epoch_done and not train.checkpoint_every
        ):
            self.save()

    def validate_and_save(self) -> None:
        """Rank 0 validates alone (exactly the single-process metrics); every rank adopts its verdict."""
        self._check_losses()
        improved = False
        if self.placement.is_main:
            metrics = self.validate()
            improved, stop_message = self.state.record_validation(
                metrics.get(self.cfg.train.early_stopping.metric), self.cfg.train.early_stopping
            )
            if stop_message:
                self._say(stop_message)
        self.state, improved = self.placement.world.from_main((self.state, improved))
        self.save(best=improved)

    # -------------------------------------------------------------------- measuring

    def _check_losses(self) -> None:
        self.losses.check(
            self.state.step, lambda: what_a_restart_does(self.run_dir, self.last_checkpoint_step)
        )

    def log_train(self, progress) -> None:
        self._check_losses()
        record = self.losses.train_record(self.state, self.scheduler.get_last_lr()[0])
        self.log.write(record)
        postfix = {
            "loss": f"{record['loss']:.4f}",
            "lr": f"{record['lr']:.2e}",
            "win_s": f"{record['windows_per_s']:.0f}",
        }
        progress.set_postfix(postfix, refresh=False)  # the bar redraws at its own interval (30 s in logs)

    def validate(self) -> dict:
        results = evaluate_loader(
            self.model,
            self.val_loader,
            self.loss_fn,
            self.placement,
            self.bundle,
            sample_rate_hz=self.cfg.data.sample_rate_hz,
            events=False,
        )
        metrics = {f"val_{k}": v for k, v in results.items() if k in VAL_METRICS and v is not None}
        self.log.write({"kind": "val", "step": self.state.step, "epoch": self.state.epoch, **metrics})
        self.latest_val = metrics
        return metrics

    def _say(self, message: str) -> None:
        if self.placement.is_main:
            print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ what a checkpoint holds


def checkpoint_state(trainer: Trainer) -> dict:
    """Everything a restarted run needs to go on exactly where ``trainer`` is now."""
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "rng": checkpoint.rng_state(),
        "loop": asdict(trainer.state),
        "step": trainer.state.step,
        "epoch": trainer.state.epoch,
        "batch": trainer.state.batch,
        "model_config": trainer.model_cfg.to_dict(),
        "in_channels": trainer.bundle.in_channels,
        "num_classes": trainer.bundle.num_classes,
        "class_names": trainer.bundle.class_names,
        "per_timestep": trainer.bundle.per_timestep,
    }


def load_checkpoint_state(trainer: Trainer, state: dict, source: Path) -> None:
    """Put ``state`` (from :func:`checkpoint_state`) back into ``trainer``; a checkpoint of another model or
    optimizer is the config's mismatch, said as such."""
    try:
        trainer.model.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.scaler.load_state_dict(state["scaler"])
        restore_rng(state, trainer.placement.world, trainer.cfg.train.seed)
        trainer.state = LoopState(**state["loop"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            f"{source} does not fit this config ({first_line[:300]}); it was written by a run with "
            "another model or optimizer. Use another run_name, or resume=False to start this run over"
        ) from None


# ------------------------------------------------------------------------ the loop's helpers


class LossWatch:
    """The training losses since the last check (kept on the device: one sync per check) and the throughput
    since the last log line."""

    def __init__(self):
        self.pending: list[torch.Tensor] = []
        self.recent = float("nan")
        self.window_count, self.interval_start = 0, time.perf_counter()

    def add(self, batch_loss: torch.Tensor, windows: int) -> None:
        self.pending.append(batch_loss)
        self.window_count += windows

    def check(self, step: int, what_a_restart_does: Callable[[], str]) -> None:
        """Raise on the first NaN/Inf training loss since the last check."""
        if not self.pending:
            return
        values = torch.stack(self.pending).float().cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            first = step - len(values) + int(bad[0]) + 1
            raise TrainingError(
                f"the training loss became {values[bad[0]]} at step {first}; training stopped. "
                f"{what_a_restart_does()} Lower optim.lr, keep optim.grad_clip on, try train.precision "
                "fp32, and check the data for extreme values"
            )
        self.recent = float(values.mean())
        self.pending = []

    def windows_per_second(self) -> float:
        """Windows trained per second since the last call (which starts the next interval)."""
        elapsed = time.perf_counter() - self.interval_start
        rate = self.window_count / elapsed if elapsed > 0 else 0.0
        self.window_count, self.interval_start = 0, time.perf_counter()
        return rate

    def train_record(self, state: LoopState, lr: float) -> dict:
        """The metrics log's line for the interval since the last one (which starts the next interval)."""
        rate = self.windows_per_second()
        return {
            "kind": "train",
            "step": state.step,
            "epoch": state.epoch,
            "loss": self.recent,
            "lr": lr,
            "windows_per_s": rate,
        }


def split_loader(cfg: Config, bundle: DataBundle, placement: Placement, split: str, size: int):
    """The train loader gives this rank its share of each global batch; rank 0 validates on all of val."""
    shuffle = split == "train"
    loader_cfg = cfg.data.loader
    world = placement.world if shuffle else SINGLE
    if len(bundle.splits[split]) < world.size:
        raise TrainingError(
            f"the {split} split has {len(bundle.splits[split])} window(s), fewer than the "
            f"{world.size} data-parallel processes; use fewer processes ({distributed.NPROC_ENV})"
        )
    return make_loader(
        bundle.splits[split],
        loader_cfg,
        batch_size=size,
        seed=cfg.train.seed,
        shuffle=shuffle,
        device=placement.device.type,
        rank=world.rank,
        world_size=world.size,
    )


def what_a_restart_does(run_dir: Path, last_checkpoint_step: int | None) -> str:
    last = run_dir / checkpoint.LAST
    if last_checkpoint_step is None and last.exists():
        return (
            f"This run wrote no checkpoint; {last} is an earlier run's: starting again resumes from it, "
            "and resume=False (--no-resume) trains from step 0."
        )
    if last_checkpoint_step is None:
        return "No checkpoint was written in this run directory, so starting again trains from step 0."
    return (
        f"The last good checkpoint is {last} (step {last_checkpoint_step}): starting again "
        "resumes from it with its optimizer state and learning-rate schedule, so a changed optim section "
        "only takes effect with resume=False (--no-resume) or another run_name."
    )


def progress_bar(total: int, initial: int, *, enabled: bool):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5 if tty else 30.0,
        disable=not enabled,
        file=sys.stderr,
    )
