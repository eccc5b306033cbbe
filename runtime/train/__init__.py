"""Training: ``runtime.train:main`` is the entry point every spec names (see :mod:`runtime.train.trainer`)."""

from runtime.train.trainer import main

__all__ = ["main"]
