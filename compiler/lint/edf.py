"""Rules for training configs that read raw EEG (``format: edf``).

``edf-reader-missing``: the image of a function that converts recordings installs edfio (the runtime imports
it only to convert, so the package rules cannot ask for it). ``edf-convert-on-gpu``: a GPU function whose
cache no CPU function populates converts the recordings itself, while the GPU is billed and idle.

The cache is taken as populated first when another function without a GPU runs a training config with the
same data source and cache settings on the same volume (``populate_cache`` in the example spec), or when the
local backend's copy of the cache folder already holds a built train split. Otherwise the warning prices the
conversion: the EDF bytes under ``data.train`` when they are on this machine (a folder of the spec, or the
local backend's folder for the volume), converted at the rate ``benchmarks/edf_convert.py`` measured per
process, one process per core of the function, at the function's price per hour. Light on purpose: no numpy,
scipy or edfio at lint time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from compiler.lint.configs import TrainingConfig, training_config
from compiler.lint.datasize import local_path
from compiler.lint.packages import may_install, ships
from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import mount_at
from compiler.platform.pricing import PricingError, hourly_cost
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic

EDF_BYTES_PER_PROCESS_SECOND = 6e6  # benchmarks/edf_convert.py on this project's 2-core CI machine
CACHE_KEYS = ("format", "train", "val", "test", "cache_dir", "sample_rate_hz", "edf", "nonfinite")


@rule(
    "edf-reader-missing",
    ERROR,
    "a function that converts EDF recordings (a CPU function, or a GPU one whose cache no CPU function "
    "populates) runs in an image that installs edfio",
    "add edfio and scipy (the 'edf' extra) to a pip step of the image: edfio>=0.4, scipy>=1.10",
)
def _edf_reader_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx)
    image = ctx.image_of(fn)
    if config is None or image is None or config.get("data", "format") != "edf":
        return
    if fn.resources.gpus and _populated_by_cpu_function(fn, config, ctx):
        return  # it reads the ready cache: no EDF file is opened
    if ships(image, "edfio") or may_install(image, "edfio", in_project=False):
        return
    message = (
        f"{config.where('data', 'format')} reads format edf, but image '{image.name}' does not install edfio "
        '(the \'edf\' extra); the run would stop at its first recording: add "edfio>=0.4" and "scipy>=1.10" '
        "to a pip step"
    )
    yield ctx.at_field("edf-reader-missing", fn, "image" if "image" in fn.origins else "run", message)


@rule(
    "edf-convert-on-gpu",
    WARNING,
    "a GPU function reading format edf has its cache populated first by a CPU function (else it converts the "
    "recordings while the GPU waits)",
    "run populate_cache (a CPU function with the same training config's data) before train",
)
def _edf_convert_on_gpu(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx) if fn.resources.gpus else None
    if config is None or config.get("data", "format") != "edf" or config.schema_problems:
        return
    if _populated_by_cpu_function(fn, config, ctx) or _cache_built_here(fn, config, ctx):
        return
    try:
        hourly = hourly_cost(fn.resources).total
    except PricingError:
        return  # an unpriced GPU is the resources rules' finding
    gpu = fn.resources.gpu
    message = (
        f"runs on {gpu.type}{f':{gpu.count}' if gpu.count > 1 else ''} and reads format edf "
        f"({config.where('data', 'format')}), but no CPU function populates its cache "
        f"({config.get('data', 'cache_dir', default='.cache/mtc')}) first: it would convert the recordings "
        f"while the GPU waits; {_estimate(fn, config, ctx, hourly)}. Run populate_cache first (a function "
        "without a GPU whose config has the same data section)"
    )
    yield ctx.at_field("edf-convert-on-gpu", fn, "args[config]", message)


def _populated_by_cpu_function(fn: Function, config: TrainingConfig, ctx: LintContext) -> bool:
    wanted = _cache_identity(fn, config, ctx)
    for other in ctx.app.functions.values():
        if other.resources.gpus:
            continue
        theirs = training_config(other, ctx)
        if theirs is not None and theirs.doc is not None and _cache_identity(other, theirs, ctx) == wanted:
            return True
    return False


def _cache_identity(fn: Function, config: TrainingConfig, ctx: LintContext) -> tuple:
    """What decides which cache a config builds: its data source and cache settings, and the volume the
    cache folder lives on."""
    data = {key: config.get("data", key) for key in CACHE_KEYS}
    cache_dir = config.get("data", "cache_dir", default=".cache/mtc")
    mount = mount_at(cache_dir, fn, ctx.image_of(fn)) if isinstance(cache_dir, str) else None
    return json.dumps(data, sort_keys=True, default=str), mount.volume if mount else None


def _cache_built_here(fn: Function, config: TrainingConfig, ctx: LintContext) -> bool:
    cache_dir = config.get("data", "cache_dir", default=".cache/mtc")
    folder = local_path(cache_dir, fn, ctx) if isinstance(cache_dir, str) else None
    return folder is not None and folder.is_dir() and any(folder.glob("train-*/meta.json"))


def _estimate(fn: Function, config: TrainingConfig, ctx: LintContext, hourly: float) -> str:
    source = config.get("data", "train")
    folder = local_path(source, fn, ctx) if isinstance(source, str) else None
    size = _edf_bytes(folder) if folder is not None else None
    if not size:
        return (
            f"the recordings at {source} are not on this machine, so the time is unknown: each hour of "
            f"conversion costs about ${hourly:,.2f} on this function"
        )
    processes = max(1, int(fn.resources.cpu or 1))
    hours = size / (EDF_BYTES_PER_PROCESS_SECOND * processes) / 3600
    cost = hours * hourly
    return (
        f"{size / 1e9:,.1f} GB of EDF at {source} take about {_duration(hours)} at "
        f"{EDF_BYTES_PER_PROCESS_SECOND / 1e6:g} MB/s per process on {processes} cores, "
        f"{'under $0.01' if cost < 0.01 else f'about ${cost:,.2f}'} at ${hourly:,.2f}/h"
    )


def _duration(hours: float) -> str:
    return f"{hours:,.1f} h" if hours >= 1 else f"{max(hours * 60, 0.1):.1f} min"


def _edf_bytes(folder: Path) -> int | None:
    try:
        if folder.is_file():
            return folder.stat().st_size
        return sum(p.stat().st_size for p in folder.rglob("*") if p.suffix.lower() == ".edf" and p.is_file())
    except OSError:
        return None
