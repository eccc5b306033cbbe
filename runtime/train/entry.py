"""``runtime.train:main`` and ``python -m runtime.train``: lock the run directory, train (spawning the
data-parallel ranks when there is more than one process), evaluate the best checkpoint, summarise.

Run it as ``python -m runtime.train CONFIG [key=value ...]``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from runtime.config import Config, load_config, make_dir
from runtime.core import files
from runtime.core.errors import UserError, user_message
from runtime.data import prepare_data
from runtime.data.describe import describe_data, render
from runtime.data.split import few_val_warning, windows_per_class
from runtime.train import checkpoint, distributed, runlock, topology
from runtime.train.distributed import SINGLE, World
from runtime.train.errors import TrainingError
from runtime.train.metrics_log import METRICS_FILE
from runtime.train.placement import place, seed_everything, seed_rank
from runtime.train.report import default_checkpoint, evaluate_run, headline
from runtime.train.schedule import describe as describe_schedule
from runtime.train.trainer import Trainer

CONFIG_COPY, DATASET_REPORT, SPLIT_RECORD = "config.json", "dataset.json", "split.json"


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

    Across nodes (torchrun's ``WORLD_SIZE``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``, see
    :mod:`runtime.train.topology`) every node calls this; node 0 holds the run directory's lock and returns
    the summary, the others return None. A process torchrun started as a worker trains as its own rank.
    """
    cfg = load_config(config, overrides)
    worker = topology.torchrun_rank()
    if worker is not None:
        return _train_as_worker(cfg, worker, resume, on_checkpoint)
    layout = topology.from_environment(distributed.process_count())
    run_dir = make_dir(cfg.run_dir, "output_dir", TrainingError)
    if layout.node_rank:  # node 0 holds the lock for the whole job
        return _train(cfg, layout, (config, overrides, resume), on_checkpoint)
    with runlock.hold(run_dir):
        files.remove_stale_temporaries(cfg.run_dir)
        return _train(cfg, layout, (config, overrides, resume), on_checkpoint)


def _train(cfg: Config, layout: topology.Topology, args: tuple, on_checkpoint: Callable | None) -> dict:
    """This process trains alone, or spawns this node's ranks of the job and supervises them."""
    if layout.world_size == 1:
        return train_in(cfg, SINGLE, args[2], on_checkpoint=on_checkpoint)
    batch = check_global_batch(cfg, layout.world_size)
    nodes = ""
    if layout.multi_node:
        nodes = f"{layout.nodes} nodes x {layout.per_node}, node {layout.node_rank}: "
    print(
        f"data-parallel training: {nodes}{layout.world_size} processes ({distributed.backend()}), "
        f"global batch {batch}, {batch // layout.world_size} per process",
        file=sys.stderr,
    )
    return distributed.launch(_train_rank, layout, args, on_checkpoint=on_checkpoint)


def _train_as_worker(cfg: Config, worker: tuple[int, int, int], resume: bool, on_checkpoint) -> dict | None:
    """A rank torchrun started: join its process group, train, leave it."""
    rank, local_rank, size = worker
    world = World(rank, size, local_rank)
    check_global_batch(cfg, size)
    distributed.join(world, max(1, torch.get_num_threads()))
    try:
        if world.is_main:
            with runlock.hold(make_dir(cfg.run_dir, "output_dir", TrainingError)):
                return train_in(cfg, world, resume, on_checkpoint=on_checkpoint)
        return train_in(cfg, world, resume, on_checkpoint=None)
    finally:
        distributed.destroy()


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
        say(_report_dataset(cfg, trainer, world.size))
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


def _report_dataset(cfg: Config, trainer: Trainer, processes: int) -> str:
    """The dataset report with the resolved schedule; written to the run directory (dataset.json, and
    split.json when val was held out of train) and returned for printing."""
    description = describe_data(trainer.bundle, cfg.data.sample_rate_hz)
    description["schedule"] = trainer.schedule.as_dict()
    lines = [describe_schedule(trainer.schedule, processes)]
    record = trainer.bundle.split_record
    val_per_class = windows_per_class(trainer.bundle.splits["val"], trainer.bundle.num_classes)
    warning = few_val_warning(val_per_class, cfg.train.early_stopping.metric)
    if warning:
        lines.append(warning)
    files.write_atomic(cfg.run_dir / DATASET_REPORT, json.dumps(description, indent=2).encode())
    if record is not None:
        files.write_atomic(cfg.run_dir / SPLIT_RECORD, json.dumps(record).encode())
    return render(description, lines)


def _finish(cfg: Config, trainer: Trainer, scan_backend: str, on_checkpoint) -> dict:
    """Evaluate the best checkpoint (report.json, plots) and summarise the run."""
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
