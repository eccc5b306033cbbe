"""Series of unequal lengths made into windows of one length per split: pad (with a mask), crop or resample.

A split's cache holds windows of one length ``T``; each window records how many of its steps are real
(``lengths``), the rest being zeros that the model, the loss, the metrics and the normalisation statistics
never count. ``data.length_policy`` chooses how a chunk of series meets the split's length:

- ``pad``: every series is padded to the split's longest (:func:`split_length` finds it);
- ``crop``: a series longer than ``data.length`` keeps its first ``length`` steps, a shorter one is padded;
- ``resample``: each series is linearly interpolated from its own length to ``length`` steps (per-timestep
  labels take the nearest step's label), so no window holds padding.
"""

from __future__ import annotations

import numpy as np

from runtime.data.formats import Chunk, DataError


def conform(chunk: Chunk, policy: str, length: int) -> Chunk:
    """``chunk`` with windows of exactly ``length`` steps, as ``policy`` says."""
    count, _, steps = chunk.windows.shape
    lengths = chunk.lengths if chunk.lengths is not None else np.full(count, steps, dtype=np.int64)
    if policy == "resample":
        return _resample(chunk, lengths, length)
    if policy == "pad" and steps > length:
        raise DataError(f"{chunk.name}: windows of {steps} steps, longer than the split's {length}")
    windows, labels = _fit(chunk.windows, length), chunk.labels
    if labels.ndim == 2:
        labels = _fit(labels[:, None, :], length)[:, 0, :]
    return chunk._replace(windows=windows, labels=labels, lengths=np.minimum(lengths, length))


def _fit(array: np.ndarray, length: int) -> np.ndarray:
    """The first ``length`` steps of ``array`` (n, C, T), zero-padded at the end when it is shorter."""
    steps = array.shape[-1]
    if steps >= length:
        return np.ascontiguousarray(array[..., :length])
    return np.pad(array, ((0, 0), (0, 0), (0, length - steps)))


def _resample(chunk: Chunk, lengths: np.ndarray, length: int) -> Chunk:
    count, channels, _ = chunk.windows.shape
    windows = np.empty((count, channels, length), dtype=np.float32)
    labels = np.empty((count, length), dtype=np.int64) if chunk.labels.ndim == 2 else chunk.labels
    target = np.linspace(0.0, 1.0, length)
    for row, own in enumerate(lengths):
        source = np.linspace(0.0, 1.0, own) if own > 1 else np.zeros(1)
        for channel in range(channels):
            windows[row, channel] = np.interp(target, source, chunk.windows[row, channel, :own])
        if chunk.labels.ndim == 2:
            nearest = np.minimum(np.rint(target * (own - 1)).astype(np.int64), own - 1)
            labels[row] = chunk.labels[row, nearest]
    return chunk._replace(windows=windows, labels=labels, lengths=np.full(count, length, dtype=np.int64))
