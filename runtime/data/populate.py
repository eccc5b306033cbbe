"""``runtime.data:populate_cache``: the one-time conversion of a config's data into the cache.

Run on a CPU function before training (the S3 -> SSD copy of npz windows, or the conversion of EDF
recordings), so that a GPU function only ever reads the ready cache.
"""

from __future__ import annotations

import time

from runtime.data.loading import build_caches
from runtime.paths import resolve


def populate_cache(config: str = "specs/train.yaml", verify: bool = True, **overrides) -> dict:
    """Convert every split of ``config``'s data into the cache (the one-time S3 -> SSD copy), resumable.

    Re-running after an interruption continues after the last whole source file; with ``verify`` every
    chunk written is read back and checked against its SHA-256. Returns what was built or reused.
    """
    from runtime.config import load_config

    cfg = load_config(config, overrides)
    started = time.perf_counter()
    caches = build_caches(cfg.data, verify=verify)
    splits = {
        split: {
            "path": str(cache.path),
            "windows": cache.count,
            "bytes": cache.meta["windows_bytes"] + cache.meta["labels_bytes"],
            "reused": cache.reused,
            "nonfinite_windows": cache.meta["nonfinite"],
            "verified": verify,
        }
        for split, cache in caches.items()
    }
    summary = {
        "cache_dir": str(resolve(cfg.data.cache_dir)),
        "splits": splits,
        "seconds": time.perf_counter() - started,
    }
    for split, info in splits.items():
        state = "reused" if info["reused"] else "built"
        print(f"{split}: {info['windows']} windows, {info['bytes'] / 2**20:.1f} MiB, {state}, {info['path']}")
    return summary
