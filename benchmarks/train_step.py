"""Training-loop overhead: runtime.train's loop vs a bare loop of the same forward/backward/step.

Both loops train the debug config's model (specs/train.debug.yaml) on the same batches for ``--steps`` steps:

- bare:    batches already in memory; forward, loss, backward, clip, optimizer and scheduler step
- trainer: runtime.train.trainer.Trainer.fit with its loader, progress bar, metrics.jsonl, NaN checks and
           data-position bookkeeping (validation and checkpoints are switched off here: they run at their
           own cadence, and the time of one checkpoint write is printed separately)

The two alternate ``--repeats`` times and the fastest run of each counts (a shared machine adds noise, never
speed), by wall time and by this process's CPU time (the debug config loads in the main process, so CPU time
covers the loader too). Torch runs on one thread. Target: trainer overhead <= 10 %.

    python benchmarks/train_step.py [--steps 40] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.config import load_config  # noqa: E402
from runtime.data import prepare_data  # noqa: E402
from runtime.train import checkpoint
from runtime.train import trainer as train  # noqa: E402
from runtime.train.placement import place, seed_everything  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def make_trainer(cfg, bundle, steps: int) -> train.Trainer:
    cfg = replace(
        cfg, train=replace(cfg.train, max_steps=steps, log_every=10, checkpoint_every=0, eval_every=0)
    )
    seed_everything(0)
    trainer = train.Trainer(cfg, bundle, place("fp32"), on_checkpoint=None)
    trainer.validate_and_save = lambda: None  # measured separately
    trainer.save = lambda **_: None
    return trainer


def timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``: CPU time is steadier on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_trainer(cfg, bundle, steps: int) -> tuple[float, float]:
    return timed(make_trainer(cfg, bundle, steps).fit)


def time_bare(cfg, bundle, steps: int) -> tuple[float, float]:
    trainer = make_trainer(cfg, bundle, steps)  # same model, optimizer, scheduler, loss
    batches = [b for _, b in zip(range(steps), trainer.train_loader, strict=False)]
    model, optimizer, scheduler, loss_fn = (
        trainer.model,
        trainer.optimizer,
        trainer.scheduler,
        trainer.loss_fn,
    )

    def loop() -> None:
        for windows, labels, lengths in batches:
            loss = loss_fn(model(windows, lengths), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            optimizer.step()
            scheduler.step()

    return timed(loop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    # one thread: OpenMP threads that spin while another job holds the cores make timings swing 10x here
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="mtc-bench-") as tmp:
        cfg = load_config(
            str(REPO / "specs" / "train.debug.yaml"),
            {"output_dir": f"{tmp}/runs", "data.cache_dir": f"{tmp}/cache"},
        )
        bundle = prepare_data(cfg.data, seed=0, log=lambda m: None)
        time_bare(cfg, bundle, 3)  # warm-up: the first steps in a process pay one-time costs
        bare, loop = [], []
        for _ in range(args.repeats):
            bare.append(time_bare(cfg, bundle, args.steps))
            loop.append(time_trainer(cfg, bundle, args.steps))
        trainer = make_trainer(cfg, bundle, args.steps)
        started = time.perf_counter()
        checkpoint.save(trainer.checkpoint_state(), Path(tmp) / "last.pt")
        save_s = time.perf_counter() - started
    windows = args.steps * cfg.data.loader.batch_size
    print(
        f"{args.steps} steps of batch {cfg.data.loader.batch_size}, best of {args.repeats} alternating runs"
    )
    for index, clock in enumerate(("wall", "CPU")):
        best_bare = min(t[index] for t in bare)
        best_loop = min(t[index] for t in loop)
        print(
            f"  {clock:>4} time: bare {best_bare:.2f}s ({windows / best_bare:.0f} win/s), "
            f"trainer {best_loop:.2f}s ({windows / best_loop:.0f} win/s), "
            f"overhead {100 * (best_loop / best_bare - 1):+.1f}%"
        )
    print(f"  one checkpoint write: {save_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
