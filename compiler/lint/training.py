"""Lint rules that read two files: a function in deployment.yaml and the training config its args name.

The seed team's costliest mistakes sat between those files: 8 DataLoader workers on 8 cores starved the GPU,
a validation split did not fit in RAM, an image lacked a package the code imported. These rules, with
:mod:`compiler.lint.datasize` (memory) and :mod:`compiler.lint.images` (packages), catch them before a GPU is
billed. :mod:`compiler.lint.configs` reads the config as the container sees it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from compiler.lint.configs import MISSING_FILE, config_arg, training_config
from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import container_path, mount_at, shipped_from
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic

CORES_PER_WORKER = 4  # the seed's finding: 8 workers fed a GPU once they had 32 cores


@rule(
    "config-not-shipped",
    ERROR,
    "a training config named in args is inside a folder the image ships (add_local dirs) or on a volume",
    "add its folder to the image's add_local.dirs, e.g. {specs: /app/specs}",
)
def _config_not_shipped(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    arg = config_arg(fn)
    if arg is None:
        return
    image = ctx.image_of(fn)
    inside = container_path(arg, image)
    if shipped_from(inside, image) is None and mount_at(arg, fn, image) is None:
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
    for problem in config.schema_problems:
        yield Diagnostic(problem.path, problem.line, problem.col, ERROR, problem.message, "config-invalid")


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
    image = ctx.image_of(fn)
    for key, written in WRITTEN_DIRS.items():
        value = config.get(*key)
        mount = mount_at(value, fn, image) if isinstance(value, str) else None
        volume = ctx.app.volumes.get(mount.volume) if mount else None
        if volume is None or not volume.read_only:
            continue
        name = ".".join(key)
        message = (
            f"{name} {value} ({config.where(*key)}) is on volume '{mount.volume}', mounted read-only at "
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
    fitting = max(0, math.floor(cpu / CORES_PER_WORKER))
    where = config.where("data", "loader", "num_workers")
    message = (
        f"cpu {cpu:g} cannot feed data.loader.num_workers {workers} ({where}): about "
        f"{CORES_PER_WORKER} cores per worker are needed, {needed} in all; set num_workers to {fitting} "
        f"or cpu to {needed}"
    )
    yield ctx.at_field("workers-vs-cpu", fn, "cpu", message)
