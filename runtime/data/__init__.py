"""Training data: four formats (npz, ts, synthetic, edf), a memory-mapped split cache, and resumable loaders.

``runtime.data:populate_cache`` is the entry point of the one-time copy of a source tree into the cache.
"""

from runtime.data.cache import CachedSplit, verify_cache
from runtime.data.formats import DataError
from runtime.data.loading import (
    DataBundle,
    EpochBatchSampler,
    SplitView,
    WindowBatches,
    build_caches,
    make_loader,
    prepare_data,
)
from runtime.data.populate import populate_cache

__all__ = [
    "CachedSplit",
    "DataBundle",
    "DataError",
    "EpochBatchSampler",
    "SplitView",
    "WindowBatches",
    "build_caches",
    "make_loader",
    "populate_cache",
    "prepare_data",
    "verify_cache",
]
