"""Helpers the rule families share: where a path lies in a function's container (on a mount, or shipped by
an image's ``add_local`` dirs and files), a message for an unknown name, and folder and file checks that
never raise."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from pathlib import Path

from compiler.spec.ir import Function, Image, Mount
from runtime.core.diagnostics import did_you_mean


def container_path(path: str, image: Image | None) -> str:
    """``path`` as the container sees it: relative to the image's workdir, ``..`` and ``//`` resolved."""
    workdir = "/"
    for step in image.steps if image else ():
        if step.kind == "workdir":
            workdir = str(step.value)
    joined = posixpath.normpath(posixpath.join(workdir, path))
    return "/" + joined.lstrip("/")  # normpath keeps '//x', which Linux reads as '/x'


def is_under(path: str, folder: str) -> bool:
    """Whether the container path ``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def mount_at(path: str, fn: Function, image: Image | None) -> Mount | None:
    """The mount of ``fn`` that holds ``path`` (see :func:`container_path`), the innermost one when mounts
    nest; None when the path is on no mount."""
    where = container_path(path, image)
    holding = [m for m in fn.mounts if is_under(where, m.path)]
    return max(holding, key=lambda m: len(m.path), default=None)


def shipped_from(path: str, image: Image | None) -> Path | None:
    """The local path (relative to the spec's folder) of the container path ``path`` when an ``add_local``
    dir or file of the image ships it; else None."""
    for local, remote in image.local_dirs if image else ():
        remote = posixpath.normpath(remote)
        if is_under(path, remote):
            return Path(local) / posixpath.relpath(path, remote)
    for local, remote in image.local_files if image else ():
        if path == posixpath.normpath(remote):
            return Path(local)
    return None


def unknown_name(kind: str, name: str, declared: Iterable[str]) -> str:
    """The message for a reference to an undeclared ``kind`` (image, volume), with a did-you-mean."""
    declared = list(declared)
    listed = ", ".join(declared) if declared else f"none (add a `{kind}s:` section)"
    return f"unknown {kind} '{name}'{did_you_mean(name, declared)}; declared {kind}s: {listed}"
