"""The ``memory-vs-data`` rule: the splits a training config keeps in RAM fit in its function's memory.

A split's size comes from the synthetic counts, else the data cache's meta.json, else the headers of its npz
files (read without numpy and without loading any data)."""

from __future__ import annotations

import ast
import json
import math
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from compiler.lint.configs import TrainingConfig, training_config
from compiler.lint.registry import ERROR, LintContext, rule
from compiler.lint.shared import container_path, mount_at, shipped_from
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic

SPLITS = ("train", "val", "test")


@rule(
    "memory-vs-data",
    ERROR,
    "the splits a training config keeps in RAM (data.in_memory) fit in the function's memory",
    "raise memory, or keep fewer splits in RAM (the memory-mapped cache needs no RAM for them)",
)
def _memory_vs_data(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    if config is None or config.doc is None or fn.resources.memory_mib is None or config.schema_problems:
        return  # an invalid config is config-invalid's finding; its sizes may not even be numbers
    in_memory = config.get("data", "in_memory", default=False)
    kept = (
        SPLITS
        if in_memory is True
        else tuple(s for s in SPLITS if isinstance(in_memory, list) and s in in_memory)
    )
    sizes = {split: _split_mib(config, split, fn, ctx) for split in kept}
    known = {split: size for split, size in sizes.items() if size is not None}
    total = sum(known.values())
    if total <= fn.resources.memory_mib:
        return
    parts = ", ".join(f"{split} {size:,} MiB" for split, size in known.items())
    where = config.where("data", "in_memory")
    message = (
        f"the splits {where} keeps in RAM need {total:,} MiB ({parts}) but memory is "
        f"{fn.resources.memory_mib:,} MiB; raise memory to at least {total + 1024:,} MiB or keep fewer in RAM"
    )
    yield ctx.at_field("memory-vs-data", fn, "memory", message)


def _split_mib(config: TrainingConfig, split: str, fn: Function, ctx: LintContext) -> int | None:
    """MiB of a split: synthetic counts, else the cache's meta.json, else npz headers."""
    fmt = config.get("data", "format")
    if fmt == "synthetic":
        synthetic = config.get("data", "synthetic", default={})
        defaults = {"n_train": 2048, "n_val": 512, "n_test": 512, "channels": 4, "length": 256}
        value = {key: synthetic.get(key, default) for key, default in defaults.items()}
        windows = value[f"n_{split}"]
        return math.ceil(windows * (value["channels"] * value["length"] * 4 + 8) / 2**20)
    cache_dir = config.get("data", "cache_dir")
    cached = _cache_bytes(local_path(cache_dir, fn, ctx), split) if isinstance(cache_dir, str) else None
    if cached is not None:
        return math.ceil(cached / 2**20)
    source = config.get("data", split)
    local = local_path(source, fn, ctx) if fmt == "npz" and isinstance(source, str) else None
    found = _npz_bytes(local) if local else None
    return None if found is None else math.ceil(found / 2**20)


def local_path(path: str, fn: Function, ctx: LintContext) -> Path | None:
    """Where a config path lives here: under a mount, the local backend's folder for that volume; else where
    the image's ``add_local`` dirs ship it from; None when it is neither."""
    from compiler.platform.local_storage import storage_folder, volumes_dir

    image = ctx.image_of(fn)
    mount = mount_at(path, fn, image)
    if mount is not None and mount.volume in ctx.app.volumes:
        folder = volumes_dir(None) / storage_folder(ctx.app.volumes[mount.volume])
        return folder / posixpath.relpath(container_path(path, image), mount.path)
    if mount is not None:
        return None  # an undeclared volume: ref-volume's finding
    shipped = shipped_from(container_path(path, image), image)
    return None if shipped is None else ctx.root / shipped


def _cache_bytes(cache_dir: Path, split: str) -> int | None:
    """Bytes of the newest cached ``split`` from its meta.json; None when there is none or it is unusable."""

    from runtime.core.files import UnreadableFile, read_limited

    metas = (
        sorted(cache_dir.glob(f"{split}-*/meta.json"), key=lambda p: p.stat().st_mtime)
        if cache_dir.is_dir()
        else []
    )
    try:
        meta = json.loads(read_limited(metas[-1], kind="cache meta.json")) if metas else None
        return int(meta.get("windows_bytes", 0)) + int(meta.get("labels_bytes", 0)) if meta else None
    except (UnreadableFile, ValueError, TypeError, AttributeError, RecursionError):
        return None  # a damaged cache: the runtime rebuilds it, and the size is not known here


def _npz_bytes(source: Path) -> int | None:
    """Bytes of every array in the npz files at ``source``, from their headers, without loading any data;
    None when there are none or one cannot be read (the runtime reports that with its name)."""
    files = sorted(source.glob("*.npz")) if source.is_dir() else ([source] if source.suffix == ".npz" else [])
    if not files or not all(f.is_file() for f in files):
        return None
    import zipfile  # only when a split's size comes from npz files: not at start-up

    try:
        return sum(_npz_file_bytes(f) for f in files)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, RecursionError, zipfile.BadZipFile):
        return None


def _npz_file_bytes(path: Path) -> int:
    import zipfile

    total = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as stream:
                    total += _npy_array_bytes(stream)
    return total


NPY_MAGIC = b"\x93NUMPY"


NPY_MAX_HEADER = 10_000  # numpy's own limit on the header it reads without allow_pickle


NPY_ITEM = re.compile(r"^[<>|=]?[biufc](\d+)$")  # a plain numeric dtype such as '<f4' and its item size


def _npy_array_bytes(stream: IO[bytes]) -> int:
    """Bytes of the array an .npy stream holds, from its header alone (the format's documented layout: magic,
    version, header length, a Python literal dict), so the core install's lint needs no numpy."""
    prefix = stream.read(8)
    if len(prefix) != 8 or not prefix.startswith(NPY_MAGIC) or prefix[6] not in (1, 2, 3):
        raise ValueError("not an .npy array")
    width = 2 if prefix[6] == 1 else 4
    length = int.from_bytes(stream.read(width), "little")
    if length > NPY_MAX_HEADER:
        raise ValueError("an .npy header longer than numpy writes")
    header = ast.literal_eval(stream.read(length).decode("latin-1"))
    item = NPY_ITEM.match(header["descr"]) if isinstance(header, dict) else None
    if item is None or not all(isinstance(n, int) and n >= 0 for n in header["shape"]):
        raise ValueError("an .npy header mtc cannot size")
    return math.prod(header["shape"]) * int(item.group(1))
