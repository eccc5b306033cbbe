"""Where the local backend keeps volumes on this machine: the volumes dir and one folder per storage.

The lint reads these too (it looks for a config's data in a volume's local folder), so they live below both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from runtime.core.env import VOLUMES_DIR as VOLUMES_DIR_ENV

DEFAULT_VOLUMES_DIR = Path(".mtc") / "volumes"


class Storage(Protocol):
    """What :func:`storage_folder` reads of a spec's volume (:class:`compiler.spec.ir.Volume`)."""

    name: str
    kind: str
    volume: str | None
    bucket: str | None
    key_prefix: str | None


def volumes_dir(option: str | None) -> Path:
    """The folder with one sub-folder per volume: the option, else ``$MTC_VOLUMES_DIR``, else .mtc/volumes."""
    chosen = option or os.environ.get(VOLUMES_DIR_ENV) or DEFAULT_VOLUMES_DIR
    return Path(chosen).expanduser().resolve()


def storage_folder(volume: Storage) -> Path:
    """The folder of a volume under the volumes dir, named after what it stores, so that spec entries over
    the same storage share it: the Modal volume's name, or ``bucket-<bucket>/<key prefix>``."""
    if volume.kind == "bucket":
        prefix = [_safe_name(part) for part in (volume.key_prefix or "").split("/") if part]
        return Path(_safe_name(f"bucket-{volume.bucket}"), *prefix)
    return Path(_safe_name(volume.volume or volume.name))


def _safe_name(text: str) -> str:
    """One path component from a storage name: letters, digits, ``.-_`` kept, the rest ``_``; never ``..``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return "_" if set(safe) <= {"."} else safe
