"""Facts read from source files, cached by the file's content so that a lint parses only what changed.

Reading a run target, or the imports of every project module it reaches, means parsing Python with
:mod:`ast`, which was most of `mtc lint`'s time. A :class:`SourceCache` keeps what a reader took from each
file (JSON data) under the sha256 of the file's bytes, in memory and in a JSON file in the user's cache
folder (``$XDG_CACHE_HOME/mtc``, else ``~/.cache/mtc``). The file is written atomically
(:func:`runtime.core.files.write_atomic`) after merging what another process wrote meanwhile; a damaged,
unreadable or older-version cache is ignored and rewritten, and a write that fails is not an error: the
cache only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

MOST_ENTRIES = 4096  # per cache file; the oldest entries are dropped first


def cache_folder() -> Path | None:
    """Where the caches live; None when there is no home folder to put them in."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        return (Path(base) if base else Path.home() / ".cache") / "mtc"
    except RuntimeError:  # no home folder
        return None


def content_key(source: bytes, *context: str) -> str:
    """The cache key of a file's ``source`` (and of anything else its facts depend on)."""
    return content_key_of(hashlib.sha256(source).hexdigest(), *context)


def content_key_of(sha256: str, *context: str) -> str:
    """The cache key of a file whose content hashes to ``sha256``."""
    return ":".join([sha256, *context])


class SourceCache:
    """One cache file (``name``.json): loaded on first use, saved when a reader added to it."""

    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version
        self.entries: dict[str, Any] | None = None
        self.added: dict[str, Any] = {}

    def path(self) -> Path | None:
        folder = cache_folder()
        return folder / f"{self.name}.json" if folder else None

    def get(self, key: str) -> Any | None:
        if self.entries is None:
            self.entries = self._read()
        return self.entries.get(key)

    def put(self, key: str, value: Any) -> None:
        self.added[key] = value
        if self.entries is not None:
            self.entries[key] = value

    def save(self) -> None:
        path = self.path()
        if not self.added or path is None:
            return
        merged = {**self._read(), **self.added}  # keep what another process wrote meanwhile
        kept = dict(list(merged.items())[-MOST_ENTRIES:])
        data = json.dumps({"version": self.version, "entries": kept}, separators=(",", ":"))
        try:
            from runtime.core.files import write_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data.encode())
        except OSError:
            return  # a read-only or full disk: the next run reads the sources again
        self.added.clear()

    def _read(self) -> dict[str, Any]:
        """The entries on disk; empty when the file is missing, unreadable, damaged or of another version."""
        path = self.path()
        try:
            data = json.loads(path.read_bytes()) if path else None
            entries = data["entries"] if data["version"] == self.version else {}
            return entries if isinstance(entries, dict) else {}
        except (OSError, ValueError, TypeError, KeyError, RecursionError):
            return {}
