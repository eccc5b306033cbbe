"""Where a container path lives on this machine.

On Modal, volumes are mounted at their declared paths (``/results``, ``/data``) and paths are used as
they are. The local backend of ``mtc run`` cannot mount anything at ``/results``, so it maps each mount point
to a local folder and passes the map in ``MTC_VOLUME_MAP`` (JSON: mount path -> local folder). Every path the
runtime opens from a config or argument goes through :func:`resolve`, so the same config works in both places.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path, PurePosixPath

from runtime.core.env import VOLUME_MAP as VOLUME_MAP_ENV


@cache
def _volume_map(raw: str) -> tuple[tuple[PurePosixPath, Path], ...]:
    mapping = json.loads(raw) if raw else {}
    pairs = [(PurePosixPath(mount), Path(local)) for mount, local in mapping.items()]
    return tuple(sorted(pairs, key=lambda pair: len(pair[0].parts), reverse=True))


def resolve(path: str | os.PathLike[str]) -> Path:
    """``path`` with the longest matching mount point replaced by its local folder; unchanged otherwise."""
    pure = PurePosixPath(os.fspath(path))
    for mount, local in _volume_map(os.environ.get(VOLUME_MAP_ENV, "")):
        if pure == mount or mount in pure.parents:
            return local.joinpath(*pure.parts[len(mount.parts) :])
    return Path(os.fspath(path))
