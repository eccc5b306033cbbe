"""Training: ``runtime.train:main`` is the entry point every spec names (see :mod:`runtime.train.entry`).

placement (device, precision) → model, loss, optim, metrics_log, predict → trainer (the loop) → entry (main,
CLI); checkpoint, distributed and runlock beside them.
"""

from runtime.train.entry import main

__all__ = ["main"]
