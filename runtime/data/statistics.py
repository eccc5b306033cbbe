"""Per-channel statistics of the training split, for the model's ``normalize: channel``.

Computed once when a run starts (a resumed run reads them back from its checkpoint, where they live as model
buffers), over padding-free steps only, from at most ``STATISTICS_WINDOWS`` windows drawn with the seed, so
a split of millions of windows costs seconds, not a pass over the data.
"""

from __future__ import annotations

import numpy as np

STATISTICS_WINDOWS = 4096
BLOCK_WINDOWS = 256
STATISTICS_STREAM = 11  # a draw of its own, apart from the hold-out's and the batch orders'
FLAT_CHANNEL_STD = 1e-8  # a channel this flat is left unscaled (its std is taken as 1)


def channel_statistics(view, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per channel over the valid steps of ``view``'s windows (float64 arrays of C values)."""
    rows = view.indices
    if len(rows) > STATISTICS_WINDOWS:
        rng = np.random.default_rng([seed, STATISTICS_STREAM])
        rows = np.sort(rng.choice(rows, STATISTICS_WINDOWS, replace=False))
    windows, _ = view.cache.arrays()
    channels = windows.shape[1]
    total, squares, count = np.zeros(channels), np.zeros(channels), 0
    for start in range(0, len(rows), BLOCK_WINDOWS):
        block = rows[start : start + BLOCK_WINDOWS]
        values = np.asarray(windows[block], dtype=np.float64)
        valid = np.arange(values.shape[-1]) < view.cache.lengths[block, None]  # (n, T)
        values = values * valid[:, None, :]
        total += values.sum(axis=(0, 2))
        squares += np.square(values).sum(axis=(0, 2))
        count += int(valid.sum())
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean**2, 0.0))
    return mean, np.where(std < FLAT_CHANNEL_STD, 1.0, std)
