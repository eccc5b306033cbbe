"""``runtime.evaluate:main``: score any checkpoint of a run and write report.json and plots.

The scoring itself is training's last step (:mod:`runtime.train.report`); this entry point loads the config
and data for it. Run it as ``python -m runtime.evaluate CONFIG [CHECKPOINT]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from runtime.config import load_config
from runtime.core.errors import UserError, user_message
from runtime.data import prepare_data
from runtime.paths import resolve
from runtime.train import checkpoint as checkpoint_file  # main's parameter is named checkpoint
from runtime.train.placement import place
from runtime.train.report import default_checkpoint, evaluate_run, headline


def main(config: str, checkpoint: str = "", on_checkpoint: Callable[[], None] | None = None) -> dict:
    """Evaluate ``checkpoint`` (empty: the run directory's best.pt, else its last.pt) as ``config`` says.

    Returns a summary: run_dir, checkpoint, split, metrics, report and plot paths.
    """
    cfg = load_config(config)
    placement = place(cfg.train.precision)
    path = resolve(checkpoint) if checkpoint else default_checkpoint(cfg.run_dir)
    checkpoint_file.load(path)  # fail early, before the data is prepared, if it is unusable
    bundle = prepare_data(cfg.data, seed=cfg.train.seed, log=lambda m: print(m, file=sys.stderr))
    report = evaluate_run(cfg, path, bundle, placement, on_checkpoint=on_checkpoint)
    metrics = report["metrics"]
    shown = ", ".join(
        f"{k} {metrics[k]:.4f}"
        for k in ("accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc")
        if metrics.get(k) is not None
    )
    print(
        f"evaluated {path} (step {report['step']}) on {report['split']} "
        f"({report['windows']} windows): {shown}\n"
        f"  report: {report['report_path']}\n  plots:  {', '.join(report['plots'])}",
        file=sys.stderr,
    )
    return {
        "run_dir": str(cfg.run_dir),
        "checkpoint": str(path),
        "split": report["split"],
        "metrics": headline(metrics),
        "report": report["report_path"],
        "plots": report["plots"],
    }


USAGE = "usage: python -m runtime.evaluate CONFIG [CHECKPOINT]   (default: the run's best.pt)"


def cli(argv: list[str] | None = None) -> int:
    """The module's command line; exit 1 with a message on bad input, 3 on bad usage."""

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or len(args) > 2:
        print(USAGE, file=sys.stderr)
        return 3
    try:
        main(args[0], args[1] if len(args) > 1 else "")
    except UserError as exc:
        print(user_message(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
