"""``runtime.train:main``: train a SignalMamba from a training config, resuming from the last checkpoint.

The loop is a handful of small methods on :class:`Trainer`. Everything that must survive preemption (model,
optimizer, scheduler, scaler, RNG states, step, data position, early-stopping state) goes into each
checkpoint, and the batch order is a pure function of (seed, epoch), so a run killed at any point and
restarted ends with the weights an uninterrupted run would have had (exactly, on CPU). Process-specific
choices (device, precision, rank and world size) live in :class:`Placement`; only its ``is_main`` decides who
writes checkpoints, metrics and progress.

Data parallelism (:mod:`runtime.train.distributed`): with more than one process (one per GPU, or
``MTC_NPROC``),
``main`` spawns the ranks and supervises them. ``data.loader.batch_size`` stays the global batch; each rank
trains on its share of every batch, and the loss is normalised over the global batch, so DDP's gradient
average is the single-process gradient. Rank 0 validates alone (the others wait for its verdict) and writes
every file; all ranks resume from the same ``last.pt``.

Run it as ``python -m runtime.train CONFIG [key=value ...]``.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from runtime.config import Config, load_config, make_dir
from runtime.core import files
from runtime.core.errors import UserError, user_message
from runtime.data import DataBundle, make_loader, prepare_data
from runtime.data.memory import available_memory, format_bytes
from runtime.train import checkpoint, distributed, runlock
from runtime.train.distributed import SINGLE, World

METRICS_FILE = "metrics.jsonl"
TRAINING_BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and AdamW's two moments
MODEL_SIZE_KEYS = ("d_model", "n_layers", "expand", "d_state", "d_conv", "downsample", "bidirectional")
VAL_METRICS = ("loss", "accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc")
CONFIG_COPY = "config.json"


class TrainingError(UserError, RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""


# errors caused by the config, the data or the run's files: show the message and exit 1, no traceback
# ------------------------------------------------------------------------------------------ placement


@dataclass(frozen=True)
class Placement:
    """Where this process computes: device, precision, and its rank among the data-parallel processes."""

    device: torch.device
    precision: str  # "fp32" | "bf16" | "fp16"
    world: World = SINGLE

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()


def place(requested_precision: str, world: World = SINGLE) -> Placement:
    """The GPU (rank r of a data-parallel run: GPU r), else the CPU."""
    if not torch.cuda.is_available():
        device = torch.device("cpu")
    else:
        device = torch.device("cuda", world.rank) if world.distributed else torch.device("cuda")
    return Placement(device, choose_precision(requested_precision, device), world)


def choose_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 on Ampere or newer, fp16 (with a GradScaler) on older GPUs, fp32 on CPU."""
    if device.type != "cuda":
        if requested == "fp16":
            raise TrainingError("train.precision is 'fp16', which needs a GPU; use 'auto' or 'fp32' on CPU")
        return "fp32" if requested == "auto" else requested
    bf16_ok = torch.cuda.get_device_capability(device)[0] >= 8
    if requested == "auto":
        return "bf16" if bf16_ok else "fp16"
    if requested == "bf16" and not bf16_ok:
        raise TrainingError(
            f"train.precision is 'bf16', but {torch.cuda.get_device_name(device)} is older than "
            "Ampere; use 'auto' (fp16 with loss scaling) or 'fp32'"
        )
    return requested


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seed_rank(seed: int, rank: int, step: int) -> None:
    """A stream of its own for a rank other than 0 (dropout draws), a function of (seed, rank, step)."""
    seed_everything(int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0]))


# ------------------------------------------------------------------------------------------ pieces


def resolved_model_config(cfg: Config, bundle: DataBundle) -> dict:
    model_cfg = dict(cfg.model)
    wanted = "timestep" if bundle.per_timestep else "window"
    if model_cfg["head"] == "auto":
        model_cfg["head"] = wanted
    elif model_cfg["head"] != wanted:
        kind = "per-timestep" if bundle.per_timestep else "per-window"
        raise TrainingError(
            f"model.head is '{model_cfg['head']}' but the data has {kind} labels; "
            f"set model.head to '{wanted}' or 'auto'"
        )
    return model_cfg


def build(model_cfg: dict, bundle: DataBundle) -> torch.nn.Module:
    from runtime.nn.models.signal import build_model

    return build_model(model_cfg, bundle.in_channels, bundle.num_classes)


def check_model_fits(model_cfg: dict, bundle: DataBundle, placement: Placement) -> None:
    """Refuse, before building it, a model whose weights, gradients and AdamW states alone (activations come
    on top) need more memory than the device has available; CPU ranks of one machine share its RAM."""
    from runtime.nn.models.signal import parameter_count

    parameters = parameter_count(model_cfg, bundle.in_channels, bundle.num_classes)
    copies = placement.world.size if placement.device.type == "cpu" else 1
    needed = parameters * TRAINING_BYTES_PER_PARAMETER * copies
    available = available_memory(placement.device)
    if needed <= available:
        return
    sizes = ", ".join(
        f"model.{key} {json.dumps(model_cfg[key])}" for key in MODEL_SIZE_KEYS if key in model_cfg
    )
    ranks = f" for {copies} processes" if copies > 1 else ""
    raise TrainingError(
        f"the model does not fit in memory: its {parameters:,} parameters ({sizes}) need "
        f"{format_bytes(needed)}{ranks} for weights, gradients and AdamW states, more than the "
        f"{format_bytes(available)} available on {placement.device}; lower model.d_model (the count grows "
        "with its square), model.n_layers or model.expand"
    )


class ClassificationLoss(torch.nn.Module):
    """Class-weighted cross-entropy or focal loss, for (B, K) or (B, K, T) logits; computed in fp32."""

    def __init__(self, kind: str, weights: torch.Tensor | None, focal_gamma: float, label_smoothing: float):
        super().__init__()
        self.kind, self.gamma, self.smoothing = kind, focal_gamma, label_smoothing
        self.register_buffer("weights", weights, persistent=False)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "cross_entropy":
            return F.cross_entropy(logits, labels, weight=self.weights, label_smoothing=self.smoothing)
        log_p = F.log_softmax(logits, dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.weights is None:
            return loss.mean()
        weight = self.weights[labels]
        return (loss * weight).sum() / weight.sum()

    def total_weight(self, labels: torch.Tensor) -> torch.Tensor:
        """The denominator of ``forward``'s weighted mean (the label count when unweighted)."""
        if self.weights is None:
            return torch.tensor(float(labels.numel()), device=labels.device)
        return self.weights[labels].sum()


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


def data_parallel(model: torch.nn.Module, placement: Placement) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel in a data-parallel run (it averages the gradients)."""
    if not placement.world.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    devices = [placement.device.index] if placement.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=devices)


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


def make_scheduler(optimizer, optim, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup to lr over warmup_steps, then a cosine down to lr x min_lr_ratio at total_steps."""
    warmup = min(optim.warmup_steps, max(total_steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------------------------------ logging


class MetricsLog:
    """metrics.jsonl in the run directory (one JSON object per line), plus TensorBoard when installed."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.path = run_dir / METRICS_FILE
        self.enabled = enabled
        self.tensorboard = _tensorboard_writer(run_dir) if enabled else None

    def reset(self, keep_until_step: int) -> None:
        """Drop lines logged after ``keep_until_step`` (a killed run wrote them after its last checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [record for record in read_metrics(self.path.parent) if record["step"] <= keep_until_step]
        files.write_atomic(self.path, "".join(json.dumps(record) + "\n" for record in kept).encode())

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard:
            for key, value in record.items():
                if isinstance(value, int | float) and key not in ("step", "epoch"):
                    self.tensorboard.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self.tensorboard:
            self.tensorboard.close()


def _tensorboard_writer(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional; metrics.jsonl always has everything
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of the run's metrics.jsonl; a line that is not a whole record (the last one, cut short when
    a run was killed mid-write) is skipped. A file that is not text at all was damaged otherwise: an error."""
    path = run_dir / METRICS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TrainingError(
            f"{path}: not a metrics log (not UTF-8 text), so it was damaged; move it aside and start again "
            "(training writes a new one, the checkpoints are not affected)"
        ) from None
    return [record for line in text.splitlines() if (record := _record(line))]


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    valid = isinstance(record, dict) and isinstance(record.get("step"), int)
    return record if valid else None


# ------------------------------------------------------------------------------------------ the loop


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
        self.train_loader = self._loader("train", shuffle=True)
        self.val_loader = self._loader("val", shuffle=False)
        self.sampler = self.train_loader.sampler
        self.total_steps = self._total_steps()
        self.optimizer = make_optimizer(self.model, cfg.optim)
        self.scheduler = make_scheduler(self.optimizer, cfg.optim, self.total_steps)
        self.scaler = torch.amp.GradScaler("cuda", enabled=placement.precision == "fp16")
        self.state = LoopState()
        self.log = MetricsLog(self.run_dir, placement.is_main)
        self.pending_losses: list[torch.Tensor] = []
        self.window_count, self.interval_start = 0, time.perf_counter()
        self.last_checkpoint_step: int | None = None
        self.recent_loss = float("nan")
        self.latest_val: dict = {}

    def _loader(self, split: str, *, shuffle: bool):
        """The train loader gives this rank its share of each global batch; rank 0 validates on all of val."""
        loader_cfg = self.cfg.data.loader
        size = loader_cfg.batch_size if shuffle else loader_cfg.eval_batch_size
        world = self.placement.world if shuffle else SINGLE
        if len(self.bundle.splits[split]) < world.size:
            raise TrainingError(
                f"the {split} split has {len(self.bundle.splits[split])} window(s), fewer than the "
                f"{world.size} data-parallel processes; use fewer processes ({distributed.NPROC_ENV})"
            )
        return make_loader(
            self.bundle.splits[split],
            loader_cfg,
            batch_size=size,
            seed=self.cfg.train.seed,
            shuffle=shuffle,
            device=self.placement.device.type,
            rank=world.rank,
            world_size=world.size,
        )

    def _total_steps(self) -> int:
        per_epoch = self.sampler.batches_per_epoch
        by_epochs = self.cfg.train.epochs * per_epoch
        return min(by_epochs, self.cfg.train.max_steps) if self.cfg.train.max_steps else by_epochs

    # -------------------------------------------------------------------- state in and out

    def restore(self, state: dict, source: Path) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            self._restore_rng(state)
            self.state = LoopState(**state["loop"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(
                f"{source} does not fit this config ({first_line[:300]}); it was written by a run with "
                "another model or optimizer. Use another run_name, or resume=False to start this run over"
            ) from None
        self.last_checkpoint_step = self.state.step
        self.log.reset(keep_until_step=self.state.step)
        self._say(
            f"resumed from {source} at step {self.state.step} (epoch {self.state.epoch}, "
            f"batch {self.state.batch})"
        )

    def _restore_rng(self, state: dict) -> None:
        """Each rank's own RNG states when the checkpoint has one per rank of this world, else new streams."""
        world = self.placement.world
        by_rank = state.get("rng_by_rank")
        if not world.distributed:
            checkpoint.restore_rng_state(state["rng"])
        elif by_rank and len(by_rank) == world.size:
            checkpoint.restore_rng_state(by_rank[world.rank])
        else:  # written with another number of processes: the data order is kept, dropout draws are not
            seed_rank(self.cfg.train.seed, world.rank, state["step"])

    def start_fresh(self) -> None:
        self.log.reset(keep_until_step=-1)

    def checkpoint_state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": checkpoint.rng_state(),
            "loop": asdict(self.state),
            "step": self.state.step,
            "epoch": self.state.epoch,
            "batch": self.state.batch,
            "model_config": self.model_cfg,
            "in_channels": self.bundle.in_channels,
            "num_classes": self.bundle.num_classes,
            "class_names": self.bundle.class_names,
            "per_timestep": self.bundle.per_timestep,
        }

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
        s = self.state
        return s.stopped_early or s.step >= self.total_steps or s.epoch >= self.cfg.train.epochs

    def fit(self) -> None:
        progress = self._progress_bar()
        try:
            while not self.finished():
                self.sampler.set_position(self.state.epoch, self.state.batch)
                for windows, labels in self.train_loader:
                    self.train_step(windows, labels)
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

    def train_step(self, windows: torch.Tensor, labels: torch.Tensor) -> None:
        device = self.placement.device
        windows = windows.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        self.network.train()
        with self.placement.autocast():
            logits = self.network(windows)
        local_loss = compute_loss(self.loss_fn, logits, labels, self.state.step)
        loss, batch_loss = self._global_loss(local_loss, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.pending_losses.append(batch_loss)
        self.window_count += len(windows) * self.placement.world.size
        self.state.step += 1
        self.state.batch += 1

    def _global_loss(self, local: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(what to backpropagate, the loss of the whole global batch).

        ``local`` is the (weighted) mean over this rank's share. Scaled by world size x local weight / global
        weight, DDP's average of the ranks' gradients is the gradient of the global batch's mean, also when
        class weights make the shares weigh differently.
        """
        world = self.placement.world
        if not world.distributed:
            return local, local.detach()
        weight = self.loss_fn.total_weight(labels).detach().float()
        sums = world.sum_(torch.stack([local.detach() * weight, weight]))
        return local * (weight * world.size / sums[1]), sums[0] / sums[1]

    def after_step(self, progress, epoch_done: bool) -> None:
        """Log, validate and checkpoint at their cadences; validate and checkpoint at each epoch end."""
        train = self.cfg.train
        step = self.state.step
        if step % train.log_every == 0:
            self.log_train(progress)
        if epoch_done or (train.eval_every and step % train.eval_every == 0):
            self.validate_and_save()
        elif train.checkpoint_every and step % train.checkpoint_every == 0:
            self.save()

    def validate_and_save(self) -> None:
        """Rank 0 validates alone (exactly the single-process metrics); every rank adopts its verdict."""
        self._check_losses()
        improved = False
        if self.placement.is_main:
            improved = self._track_best(self.validate())
        self.state, improved = self.placement.world.from_main((self.state, improved))
        self.save(best=improved)

    # -------------------------------------------------------------------- measuring

    def _check_losses(self) -> None:
        """Raise on the first NaN/Inf training loss since the last check (one device sync per check)."""
        if not self.pending_losses:
            return
        values = torch.stack(self.pending_losses).float().cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            first = self.state.step - len(values) + int(bad[0]) + 1
            raise TrainingError(
                f"the training loss became {values[bad[0]]} at step {first}; training stopped. "
                f"{self._what_a_restart_does()} Lower optim.lr, keep optim.grad_clip on, try train.precision "
                "fp32, and check the data for extreme values"
            )
        self.recent_loss = float(values.mean())
        self.pending_losses = []

    def _what_a_restart_does(self) -> str:
        last = self.run_dir / checkpoint.LAST
        if self.last_checkpoint_step is None and last.exists():
            return (
                f"This run wrote no checkpoint; {last} is an earlier run's: starting again resumes from it, "
                "and resume=False (--no-resume) trains from step 0."
            )
        if self.last_checkpoint_step is None:
            return "No checkpoint was written in this run directory, so starting again trains from step 0."
        return (
            f"The last good checkpoint is {last} (step {self.last_checkpoint_step}): starting again "
            "resumes from it with its optimizer state and learning-rate schedule, so a changed optim section "
            "only takes effect with resume=False (--no-resume) or another run_name."
        )

    def log_train(self, progress) -> None:
        self._check_losses()
        elapsed = time.perf_counter() - self.interval_start
        rate = self.window_count / elapsed if elapsed > 0 else 0.0
        record = {
            "kind": "train",
            "step": self.state.step,
            "epoch": self.state.epoch,
            "loss": self.recent_loss,
            "lr": self.scheduler.get_last_lr()[0],
            "windows_per_s": rate,
        }
        self.log.write(record)
        postfix = {"loss": f"{self.recent_loss:.4f}", "lr": f"{record['lr']:.2e}", "win_s": f"{rate:.0f}"}
        progress.set_postfix(postfix, refresh=False)  # the bar redraws at its own interval (30 s in logs)
        self.window_count, self.interval_start = 0, time.perf_counter()

    def validate(self) -> dict:
        from runtime.evaluate import evaluate_loader

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

    def _track_best(self, metrics: dict) -> bool:
        """Update the best value of the early-stopping metric; True when this validation is the new best."""
        stopping = self.cfg.train.early_stopping
        value = metrics.get(stopping.metric)
        if value is None:  # e.g. AUROC while val holds a single class: this validation cannot be ranked
            return False
        best = self.state.best_value
        better = best is None or (value < best if stopping.mode == "min" else value > best)
        if better:
            self.state.best_value, self.state.best_step, self.state.stale_evals = value, self.state.step, 0
            return True
        self.state.stale_evals += 1
        if stopping.patience and self.state.stale_evals >= stopping.patience:
            self.state.stopped_early = True
            self._say(
                f"early stopping at step {self.state.step}: {stopping.metric} has not improved for "
                f"{stopping.patience} validations (best {best:.4f} at step {self.state.best_step})"
            )
        return False

    def _progress_bar(self):
        from tqdm import tqdm

        tty = sys.stderr.isatty()
        return tqdm(
            total=self.total_steps,
            initial=self.state.step,
            unit="step",
            dynamic_ncols=True,
            mininterval=0.5 if tty else 30.0,
            disable=not self.placement.is_main,
            file=sys.stderr,
        )

    def _say(self, message: str) -> None:
        if self.placement.is_main:
            print(message, file=sys.stderr, flush=True)


def compute_loss(loss_fn, logits: torch.Tensor, labels: torch.Tensor, step: int) -> torch.Tensor:
    """The training loss of one batch (a seam for tests that inject a NaN at a given step)."""
    return loss_fn(logits, labels)


# ------------------------------------------------------------------------------------------ entry point


def main(
    config: str, resume: bool = True, on_checkpoint: Callable[[], None] | None = None, **overrides
) -> dict:
    """Train as ``config`` says (``overrides``: dotted keys such as ``train.max_steps=10``), resuming from the
    run directory's ``last.pt`` unless ``resume`` is False; evaluate the best checkpoint at the end.

    ``on_checkpoint`` is called after every checkpoint write (on Modal: the results volume's commit).
    Returns a summary: run_dir, best/last checkpoint, final and best metrics, steps, scan_backend.

    With more than one process (:func:`runtime.train.distributed.process_count`: one per GPU, or
    ``MTC_NPROC``)
    the ranks are spawned from here and this process supervises them and calls ``on_checkpoint``.
    """
    cfg = load_config(config, overrides)
    with runlock.hold(make_dir(cfg.run_dir, "output_dir", TrainingError)):
        files.remove_stale_temporaries(cfg.run_dir)
        return _train(cfg, config, overrides, resume, on_checkpoint)


def _train(cfg: Config, config: str, overrides: dict, resume: bool, on_checkpoint: Callable | None) -> dict:
    """``main`` once the run directory is locked: this process trains, or spawns the ranks that do."""
    processes = distributed.process_count()
    if processes == 1:
        return train_in(cfg, SINGLE, resume, on_checkpoint=on_checkpoint)
    batch = check_global_batch(cfg, processes)
    print(
        f"data-parallel training: {processes} processes ({distributed.backend()}), global batch {batch}, "
        f"{batch // processes} per process",
        file=sys.stderr,
    )
    args = (config, overrides, resume)
    return distributed.launch(_train_rank, processes, args, on_checkpoint=on_checkpoint)


def check_global_batch(cfg: Config, processes: int) -> int:
    batch = cfg.data.loader.batch_size
    if batch % processes:
        lower, higher = batch - batch % processes, batch + processes - batch % processes
        options = f"{lower} or {higher}" if lower else str(higher)
        raise TrainingError(
            f"data.loader.batch_size is {batch}, the global batch of all {processes} data-parallel "
            f"processes, and must be divisible by {processes}; use {options}, or another process count "
            f"({distributed.NPROC_ENV})"
        )
    return batch


def _train_rank(world: World, config: str, overrides: dict, resume: bool, *, on_checkpoint) -> dict | None:
    """One rank of a data-parallel run (spawned by :func:`runtime.train.distributed.launch`)."""
    return train_in(load_config(config, overrides), world, resume, on_checkpoint=on_checkpoint)


def train_in(cfg: Config, world: World, resume: bool, *, on_checkpoint: Callable | None) -> dict | None:
    """Train as rank ``world.rank``; rank 0 then evaluates and returns the summary, the others None."""
    placement = place(cfg.train.precision, world)
    say = (lambda m: print(m, file=sys.stderr)) if world.is_main else (lambda m: None)
    if world.distributed:  # tqdm's default lock is a semaphore that outlives a spawned rank (a warning)
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    seed_everything(cfg.train.seed)
    bundle = prepare_data(cfg.data, seed=cfg.train.seed, log=say)
    say(bundle.summary())
    trainer = Trainer(cfg, bundle, placement, on_checkpoint=on_checkpoint)
    if not world.is_main:  # after the model is built, so that every rank starts from the same weights
        seed_rank(cfg.train.seed, world.rank, 0)
    if world.is_main:
        _save_config(cfg)
    previous = checkpoint.load_latest(trainer.run_dir) if resume else None
    if previous:
        trainer.restore(*previous)
    else:
        trainer.start_fresh()
    scan_backend = trainer.model.scan_backend
    say(
        f"training on {placement.device} ({placement.precision}), scan backend {scan_backend}, "
        f"{trainer.total_steps} steps, run dir {trainer.run_dir}"
    )
    trainer.fit()
    if not world.is_main:
        return None
    return _finish(cfg, trainer, scan_backend, on_checkpoint)


def _save_config(cfg: Config) -> None:
    files.write_atomic(cfg.run_dir / CONFIG_COPY, json.dumps(cfg.raw, indent=2).encode())


def _finish(cfg: Config, trainer: Trainer, scan_backend: str, on_checkpoint) -> dict:
    from runtime.evaluate import default_checkpoint, evaluate_run, headline

    evaluated = default_checkpoint(cfg.run_dir)  # best.pt (or its previous generation), else last.pt
    report = evaluate_run(cfg, evaluated, trainer.bundle, trainer.placement, on_checkpoint=on_checkpoint)
    best = cfg.run_dir / checkpoint.BEST
    summary = {
        "run_dir": str(cfg.run_dir),
        "evaluated_checkpoint": str(evaluated),
        "best_checkpoint": str(best) if best.exists() else None,
        "last_checkpoint": str(cfg.run_dir / checkpoint.LAST),
        "steps": trainer.state.step,
        "stopped_early": trainer.state.stopped_early,
        "best_step": trainer.state.best_step,
        "best_metric": {cfg.train.early_stopping.metric: trainer.state.best_value},
        "final_metrics": trainer.latest_val,
        "test_metrics": headline(report["metrics"]),
        "report": report["report_path"],
        "plots": report["plots"],
        "scan_backend": scan_backend,
        "precision": trainer.placement.precision,
    }
    print(_human_summary(summary, report["split"]), file=sys.stderr)
    return summary


def _human_summary(summary: dict, split: str) -> str:
    metrics = summary["test_metrics"]
    shown = ", ".join(
        f"{k} {metrics[k]:.4f}"
        for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc")
        if metrics.get(k) is not None
    )
    return "\n".join(
        [
            f"done: {summary['steps']} steps" + (" (stopped early)" if summary["stopped_early"] else ""),
            f"  {split}: {shown}",
            f"  best checkpoint: {summary['best_checkpoint']} (step {summary['best_step']})",
            f"  last checkpoint: {summary['last_checkpoint']}",
            f"  metrics:         {Path(summary['run_dir']) / METRICS_FILE}",
            f"  report:          {summary['report']}",
            f"  plots:           {', '.join(summary['plots'])}",
        ]
    )


USAGE = "usage: python -m runtime.train CONFIG [--no-resume] [key=value ...]   (e.g. train.max_steps=100)"


def cli(argv: list[str] | None = None) -> int:
    """The module's command line; exit 1 with a message on bad input, 3 on bad usage."""
    args = list(sys.argv[1:] if argv is None else argv)
    resume = "--no-resume" not in args
    args = [a for a in args if a != "--no-resume"]
    if not args or args[0].startswith("-") or any("=" not in a for a in args[1:]):
        print(USAGE, file=sys.stderr)
        return 3
    overrides = dict(a.split("=", 1) for a in args[1:])
    try:
        main(args[0], resume=resume, **overrides)
    except UserError as exc:
        print(user_message(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(cli())
