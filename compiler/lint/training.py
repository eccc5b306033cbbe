"""Lint rules that read two files: a function in deployment.yaml and the training config its args name.

The seed team's costliest mistakes sat between those files: 8 DataLoader workers on 8 cores starved the GPU,
a validation split did not fit in RAM, an image lacked a package the code imported. These rules catch them
before a GPU is billed. They register with :mod:`compiler.lint` like every other rule, so each has an id, and
a warning can be silenced per function with ``lint: {ignore: {RULE: reason}}``.

A config path in ``args`` is read as the container sees it: relative paths against the image's ``workdir``,
then mapped back to the spec's folder through the image's ``add_local`` dirs. numpy is imported only when
an npz header has to be read.
"""

from __future__ import annotations

import ast
import math
import posixpath
import re
import stat
import sys
import zipfile
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any

from compiler.lint import ERROR, WARNING, LintContext, rule
from compiler.spec.ir import Function, Image, Mount
from compiler.spec.targets import module_file, parse_module, project_folders
from runtime import config_schema
from runtime.core.diagnostics import Diagnostic, SpecError
from runtime.core.yamlfile import SourceDoc

# the schema runtime.config validates with, without importing the runtime's config module into the lint
TRAINING_SCHEMA = config_schema.SCHEMA

CORES_PER_WORKER = 4  # the seed's finding: 8 workers fed a GPU once they had 32 cores
SPLITS = ("train", "val", "test")
MISSING_FILE = "load/not-found"  # runtime.core.files's rule for a file that is not there
# import name -> the distribution that provides it, where they differ beyond '_' vs '-'
DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "ruamel": "ruamel.yaml",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "google.protobuf": "protobuf",
    "torch.utils.tensorboard": "tensorboard",  # part of torch's tree, but needs the tensorboard package
    "attr": "attrs",
    "dateutil": "python-dateutil",
    "skimage": "scikit-image",
}
ALWAYS_PRESENT = {"modal"}  # Modal puts its client in every container
# what a well-known distribution always installs with it, so importing it is not a missing package
IMPLIED = {
    "scikit-learn": ("scipy", "numpy", "joblib", "threadpoolctl"),
    "matplotlib": ("numpy", "pillow", "pyparsing", "packaging", "python-dateutil", "kiwisolver", "cycler"),
    "torch": ("filelock", "jinja2", "networkx", "sympy", "fsspec", "typing-extensions"),
    "jsonschema": ("attrs", "referencing", "jsonschema-specifications", "rpds-py"),
    "pandas": ("numpy", "python-dateutil", "pytz", "tzdata"),
}


# ------------------------------------------------------------------------------------------ the config


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


def _config_arg(fn: Function) -> str | None:
    value = fn.arg_dict.get("config")
    return value if isinstance(value, str) and value.endswith((".yaml", ".yml")) else None


def _container_path(arg: str, image: Image | None) -> str:
    workdir = "/"
    for step in image.steps if image else ():
        if step.kind == "workdir":
            workdir = str(step.value)
    return posixpath.normpath(posixpath.join(workdir, arg))


def _shipped_from(container_path: str, image: Image | None) -> Path | None:
    """The local path of ``container_path`` when an ``add_local`` dir of the image ships it; else None."""
    for local, remote in image.local_dirs if image else ():
        remote = posixpath.normpath(remote)
        if container_path == remote or container_path.startswith(remote.rstrip("/") + "/"):
            return Path(local) / posixpath.relpath(container_path, remote)
    return None


def _on_volume(container_path: str, fn: Function) -> bool:
    return any(container_path.startswith(m.path.rstrip("/") + "/") for m in fn.mounts)


def training_config(fn: Function, ctx: LintContext) -> TrainingConfig | None:
    """The function's training config as shipped into its image, or None (no config arg, or not shipped)."""
    arg = _config_arg(fn)
    image = ctx.app.images.get(fn.image) if fn.image else None
    if arg is None:
        return None
    shipped = _shipped_from(_container_path(arg, image), image)
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

    try:
        return TrainingConfig(arg, Path(local), load_yaml(local, display_path=arg))
    except SpecError as exc:
        return TrainingConfig(arg, Path(local), None, tuple(exc.diagnostics))


def container_path(path: str, image: Image | None) -> str:
    """``path`` as the container sees it: relative to the image's workdir, ``..`` and ``//`` resolved."""
    return "/" + _container_path(path, image).lstrip("/")  # normpath keeps '//x', which Linux reads as '/x'


def mount_at(path: str, fn: Function, image: Image | None) -> Mount | None:
    """The mount of ``fn`` that holds ``path`` (see :func:`container_path`), the innermost one when mounts
    nest; None when the path is on no mount."""
    where = container_path(path, image)
    holding = [m for m in fn.mounts if where == m.path or where.startswith(m.path.rstrip("/") + "/")]
    return max(holding, key=lambda m: len(m.path), default=None)


# ------------------------------------------------------------------------------------------------ rules


@rule(
    "config-not-shipped",
    ERROR,
    "a training config named in args is inside a folder the image ships (add_local dirs) or on a volume",
    "add its folder to the image's add_local.dirs, e.g. {specs: /app/specs}",
)
def _config_not_shipped(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    arg = _config_arg(fn)
    if arg is None:
        return
    image = ctx.app.images.get(fn.image) if fn.image else None
    inside = _container_path(arg, image)
    if _shipped_from(inside, image) is None and not _on_volume(inside, fn):
        dirs = ", ".join(remote for _, remote in image.local_dirs) if image and image.local_dirs else ""
        shipped = f"ships only {dirs}" if dirs else "ships no local dirs"
        message = (
            f"args.config '{arg}' is {inside} in the container, but image '{fn.image}' {shipped}; "
            "add its folder to add_local.dirs"
        )
        yield ctx.at_field("config-not-shipped", fn, "args[config]", message)


@rule(
    "config-missing",
    WARNING,
    "a training config named in args exists in the project folder that the image ships it from",
    "create the config, or point args.config at an existing file",
)
def _config_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    if config is not None and any(p.rule == MISSING_FILE for p in config.problems):
        message = (
            f"args.config '{config.arg}' does not exist here ({config.local}); the run would stop at start"
        )
        yield ctx.at_field("config-missing", fn, "args[config]", message)


@rule(
    "config-invalid",
    ERROR,
    "a training config named in args can be read and passes its own checks (the training config schema)",
    "fix the config at the position shown",
)
def _config_invalid(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    if config is None:
        return
    if config.doc is None:
        for problem in config.problems:
            if problem.rule != MISSING_FILE:
                message = f"training config {config.arg}: {problem.message} [{problem.rule}]"
                yield ctx.at_field("config-invalid", fn, "args[config]", message)
        return
    for problem in _schema_problems(config):
        yield Diagnostic(problem.path, problem.line, problem.col, ERROR, problem.message, "config-invalid")


def _schema_problems(config: TrainingConfig) -> list[Diagnostic]:
    from runtime.core.schema import schema_diagnostics

    return schema_diagnostics(config.doc, TRAINING_SCHEMA)


WRITTEN_DIRS = {("output_dir",): "run directories (checkpoints, metrics)", ("data", "cache_dir"): "cache"}


@rule(
    "config-dir-read-only",
    ERROR,
    "the folders a training config writes (output_dir, data.cache_dir) are not on a volume that its function "
    "mounts read-only",
    "point them at a writable volume (e.g. /results/cache), or mount the volume without read_only",
)
def _config_dir_read_only(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    if config is None or config.doc is None:
        return
    image = ctx.app.images.get(fn.image) if fn.image else None
    for key, written in WRITTEN_DIRS.items():
        value = config.get(*key)
        mount = mount_at(value, fn, image) if isinstance(value, str) else None
        volume = ctx.app.volumes.get(mount.volume) if mount else None
        if volume is None or not volume.read_only:
            continue
        line, _ = config.doc.position(key)
        name = ".".join(key)
        message = (
            f"{name} {value} ({config.arg}:{line}) is on volume '{mount.volume}', mounted read-only at "
            f"{mount.path}: the run would stop writing its {written}; point {name} at a writable volume"
        )
        yield ctx.at_field("config-dir-read-only", fn, f"volumes[{mount.path}]", message)


@rule(
    "workers-vs-cpu",
    WARNING,
    f"a GPU function gives each DataLoader worker about {CORES_PER_WORKER} cores (8 on 8 starved the GPU)",
    f"lower data.loader.num_workers to cpu / {CORES_PER_WORKER}, or raise cpu",
)
def _workers_vs_cpu(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx) if fn.resources.gpus else None  # CPU-only jobs have no GPU to starve
    workers = config.get("data", "loader", "num_workers", default=0) if config else 0
    if not isinstance(workers, int) or workers <= 0:
        return
    cpu = fn.resources.cpu if fn.resources.cpu is not None else 0.125
    needed = workers * CORES_PER_WORKER
    if cpu >= needed:
        return
    line, _ = config.doc.position(("data", "loader", "num_workers"))
    fitting = max(0, math.floor(cpu / CORES_PER_WORKER))
    message = (
        f"cpu {cpu:g} cannot feed data.loader.num_workers {workers} ({config.arg}:{line}): about "
        f"{CORES_PER_WORKER} cores per worker are needed, {needed} in all; set num_workers to {fitting} "
        f"or cpu to {needed}"
    )
    yield ctx.at_field("workers-vs-cpu", fn, "cpu", message)


@rule(
    "memory-vs-data",
    ERROR,
    "the splits a training config keeps in RAM (data.in_memory) fit in the function's memory",
    "raise memory, or keep fewer splits in RAM (the memory-mapped cache needs no RAM for them)",
)
def _memory_vs_data(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    if config is None or config.doc is None or fn.resources.memory_mib is None or _schema_problems(config):
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
    line, _ = config.doc.position(("data", "in_memory"))
    parts = ", ".join(f"{split} {size:,} MiB" for split, size in known.items())
    message = (
        f"the splits {config.arg}:{line} keeps in RAM need {total:,} MiB ({parts}) but memory is "
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
    cached = _cache_bytes(_local(cache_dir, fn, ctx), split) if isinstance(cache_dir, str) else None
    if cached is not None:
        return math.ceil(cached / 2**20)
    source = config.get("data", split)
    local = _local(source, fn, ctx) if fmt == "npz" and isinstance(source, str) else None
    found = _npz_bytes(local) if local else None
    return None if found is None else math.ceil(found / 2**20)


def _local(path: str, fn: Function, ctx: LintContext) -> Path | None:
    """Where a config path lives here: under a mount, the local backend's folder for that volume; else where
    the image's ``add_local`` dirs ship it from; None when it is neither."""
    from compiler.backends.local.run import storage_folder, volumes_dir

    image = ctx.app.images.get(fn.image) if fn.image else None
    mount = mount_at(path, fn, image)
    if mount is not None and mount.volume in ctx.app.volumes:
        folder = volumes_dir(None) / storage_folder(ctx.app.volumes[mount.volume])
        return folder / posixpath.relpath(container_path(path, image), mount.path)
    if mount is not None:
        return None  # an undeclared volume: ref-volume's finding
    shipped = _shipped_from(container_path(path, image), image)
    return None if shipped is None else ctx.root / shipped


def _cache_bytes(cache_dir: Path, split: str) -> int | None:
    """Bytes of the newest cached ``split`` from its meta.json; None when there is none or it is unusable."""
    import json

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
    try:
        return sum(_npz_file_bytes(f) for f in files)
    except (OSError, ValueError, KeyError, TypeError, SyntaxError, RecursionError, zipfile.BadZipFile):
        return None


def _npz_file_bytes(path: Path) -> int:
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


# --------------------------------------------------------------------------------------- image packages


@rule(
    "image-missing-package",
    WARNING,
    "every package the run target imports (and the project modules it imports) is installed in its image",
    "add the package to a pip step of the image, or silence the rule with the reason the base image has it",
)
def _image_missing_package(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    image = ctx.app.images.get(fn.image) if fn.image else None
    if image is None:
        return
    installed = _installed(image)
    shipped = set(image.local_python) | {p.split(".")[0] for p in image.local_python}
    for name, where in _imports_of(fn.module, str(ctx.root), tuple(sorted(shipped))).items():
        distribution = _distribution(name)
        if distribution in installed or name.split(".")[0] in ALWAYS_PRESENT:
            continue
        # no function name in the message: functions sharing an image from `defaults` get one diagnostic
        message = (
            f"image '{image.name}' does not install '{distribution}', which {where} imports; add it to pip"
        )
        yield ctx.at_field("image-missing-package", fn, "image" if "image" in fn.origins else "run", message)


def _distribution(import_name: str) -> str:
    for name in (import_name, import_name.split(".")[0]):
        if name in DISTRIBUTIONS:
            return _normal(DISTRIBUTIONS[name])
    return _normal(import_name.split(".")[0])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(image: Image) -> set[str]:
    """Normalised names of the distributions the image's pip steps and `pip install` commands install."""
    requirements: list[str] = []
    for step in image.steps:
        values = step.value if isinstance(step.value, list) else [step.value]
        if step.kind == "pip":
            requirements += [str(v) for v in values]
        elif step.kind == "run":
            for command in values:
                for match in re.finditer(r"pip3? install\s+([^;&|]+)", str(command)):
                    requirements += [w for w in match.group(1).split() if not w.startswith("-")]
    names = {re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()) for r in requirements}
    installed = {_normal(m.group(0)) for m in names if m}
    return installed | {implied for name in installed for implied in IMPLIED.get(name, ())}


@cache
def _imports_of(module: str, root: str, shipped: tuple[str, ...]) -> dict[str, str]:
    """Third-party imports (name -> file:line) of ``module`` and of the shipped project modules it imports."""
    found: dict[str, str] = {}
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        path = module_file(current, Path(root))
        if current in seen or path is None:
            continue
        seen.add(current)
        for name, line in _imported_names(path, current):
            top = name.split(".")[0]
            if top in shipped:
                pending.append(name)
            elif top not in sys.stdlib_module_names and not module_file(top, Path(root)):
                key = name if name in DISTRIBUTIONS else top
                found.setdefault(key, f"{path.relative_to(project_folders(Path(root))[-1])}:{line}")
    return found


@cache
def _imported_names(path: Path, module: str) -> tuple[tuple[str, int], ...]:
    """Modules the file imports, except in ``try`` blocks that handle ImportError (optional imports).

    Walks statements only, breadth first (imports are statements): a whole-tree ``ast.walk`` of every
    runtime module made this rule most of `mtc lint`'s time. Cached per file: functions share modules.
    """
    tree = parse_module(path)
    if tree is None:
        return ()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    pending: deque[ast.AST] = deque([tree])
    while pending:
        node = pending.popleft()
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base:  # `from runtime import train` names a module too
                found += [(base, node.lineno)] + [(f"{base}.{a.name}", node.lineno) for a in node.names]
        children = ast.iter_child_nodes(node)
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            children = iter([*node.handlers, *node.orelse, *node.finalbody])  # the body is optional
        pending.extend(c for c in children if isinstance(c, ast.stmt | ast.excepthandler | ast.match_case))
    return tuple(found)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    parent = ".".join(parts[: len(parts) - node.level + 1])
    return f"{parent}.{node.module}" if node.module else parent


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)
