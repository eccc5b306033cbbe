"""The training config a function's ``args.config`` names, read as its container sees it.

A config path in ``args`` is read as the container sees it: relative paths against the image's ``workdir``,
then mapped back to the spec's folder through the image's ``add_local`` dirs. Each file is read once per
version (mtime, size) in a process, and a config read before is taken from a
:class:`compiler.spec.sourcecache.SourceCache` by the hash of its content: YAML parsing was a good part of
`mtc lint`'s time."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from compiler.lint.registry import LintContext
from compiler.lint.shared import container_path, shipped_from
from compiler.spec.ir import Function
from compiler.spec.sourcecache import SourceCache, content_key_of
from runtime import config_schema
from runtime.core.diagnostics import Diagnostic, SpecError
from runtime.core.yamlfile import SourceDoc

TRAINING_SCHEMA = config_schema.SCHEMA


MISSING_FILE = "load/not-found"  # runtime.core.files's rule for a file that is not there


@dataclass(frozen=True)
class TrainingConfig:
    arg: str  # as written in args
    local: Path  # the file on this machine
    doc: SourceDoc | None  # None when it cannot be read
    problems: tuple[Diagnostic, ...] = ()

    def get(self, *path: str, default: Any = None) -> Any:
        node: Any = self.doc.data if self.doc else None
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def where(self, *path: str) -> str:
        """``file:line`` of the value at ``path`` (or its nearest ancestor), for a message."""
        line, _ = self.doc.position(path) if self.doc else (1, 1)
        return f"{self.arg}:{line}"

    @cached_property
    def schema_problems(self) -> list[Diagnostic]:
        """What the training config schema finds wrong in the file, validated once per version of it."""
        from runtime.core.schema import schema_diagnostics

        return schema_diagnostics(self.doc, TRAINING_SCHEMA) if self.doc else []


def config_arg(fn: Function) -> str | None:
    value = fn.arg_dict.get("config")
    return value if isinstance(value, str) and value.endswith((".yaml", ".yml")) else None


def training_config(fn: Function, ctx: LintContext) -> TrainingConfig | None:
    """The function's training config as shipped into its image, or None (no config arg, or not shipped)."""
    arg = config_arg(fn)
    image = ctx.image_of(fn)
    if arg is None:
        return None
    shipped = shipped_from(container_path(arg, image), image)
    if shipped is None:
        return None
    local = ctx.root / shipped
    return _load(str(local), arg, _stamp(local))


def _stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a regular file, the cache key of its contents; None for anything else."""
    try:
        found = path.stat()
    except (OSError, ValueError):
        return None
    return (found.st_mtime_ns, found.st_size) if stat.S_ISREG(found.st_mode) else None


@cache
def _load(local: str, arg: str, stamp: tuple[int, int] | None) -> TrainingConfig:
    """The config at ``local``; ``stamp`` (mtime, size) keys the cache so an edited file is read again."""
    from runtime.core.yamlfile import load_yaml

    remembered = _remembered(Path(local), arg) if stamp is not None else None
    if remembered is not None:
        return TrainingConfig(arg, Path(local), remembered)
    try:
        doc = load_yaml(local, display_path=arg)
    except SpecError as exc:
        return TrainingConfig(arg, Path(local), None, tuple(exc.diagnostics))
    if stamp is not None:  # a regular file: a FIFO's next reader may see other content
        _remember(doc)
    return TrainingConfig(arg, Path(local), doc)


_DOCS = SourceCache("training-configs", version=1)


def _remember(doc: SourceDoc) -> None:
    entry = {"text": doc.text, "data": doc.data}
    entry["keys"] = [[list(path), *where] for path, where in doc.key_positions.items()]
    entry["values"] = [[list(path), *where] for path, where in doc.value_positions.items()]
    _DOCS.put(content_key_of(doc.sha256, doc.path), entry)
    _DOCS.save()


def _remembered(path: Path, arg: str) -> SourceDoc | None:
    """The document read before from a file with ``path``'s content; None when there is none."""
    from runtime.core.files import UnreadableFile, read_limited

    try:
        raw = read_limited(path, kind="YAML file")
    except UnreadableFile:
        return None  # load_yaml reports it
    sha256 = hashlib.sha256(raw).hexdigest()
    entry = _DOCS.get(content_key_of(sha256, arg))
    try:
        keys = {tuple(where): (line, col) for where, line, col in entry["keys"]}
        values = {tuple(where): (line, col) for where, line, col in entry["values"]}
        return SourceDoc(arg, entry["text"], entry["data"], keys, values, sha256=sha256)
    except (TypeError, KeyError, ValueError):
        return None  # not cached, or an entry mtc cannot use
