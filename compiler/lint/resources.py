"""Rules on what a function asks Modal for: GPUs, CPU, memory, timeout, preemption and scaling, within
Modal's limits."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.platform import gpus, regions
from compiler.platform.modal_limits import MAX_TIMEOUT_S, MIN_MEMORY_MIB, SCALEDOWN_RANGE_S
from compiler.spec import units
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic, did_you_mean


@rule(
    "gpu-unknown",
    ERROR,
    "every GPU type is one Modal offers",
    "use one of the listed types (case does not matter): T4, L4, A10, L40S, A100, A100-40GB, A100-80GB, ...",
)
def _gpu_unknown(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for index, gpu in enumerate(fn.resources.gpus):
        if gpus.canonical(gpu.type) is None:
            message = f"unknown GPU type '{gpu.type}'{did_you_mean(gpu.type, gpus.names())}"
            message += f"; valid types: {', '.join(gpus.names())}"
            yield ctx.at_field("gpu-unknown", fn, "gpu", message, index=index)


@rule(
    "gpu-count",
    ERROR,
    "a GPU count is 1 to 8 per container (A10: 1 to 4)",
    "lower the count after ':' (\"H100:8\"), or split the work across functions",
)
def _gpu_count(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for index, gpu in enumerate(fn.resources.gpus):
        most = gpus.max_count(gpu.type)
        if not 1 <= gpu.count <= most:
            message = f"{gpu.count} x {gpu.type} requested; a container has 1 to {most} {gpu.type} GPUs"
            yield ctx.at_field("gpu-count", fn, "gpu", message, index=index)


@rule(
    "timeout-range",
    ERROR,
    "the timeout is between 1 s and 24 h (Modal's limits, per attempt)",
    "set a timeout from 1s to 24h; for longer training, checkpoint and rely on retries",
)
def _timeout_range(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    timeout = fn.resources.timeout_s
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT_S:
        shown = units.format_seconds(timeout) if timeout >= 0 else f"{timeout}s"
        yield ctx.at_field("timeout-range", fn, "timeout", f"timeout {shown} is outside Modal's 1s..24h")


@rule(
    "startup-timeout-range",
    ERROR,
    "the startup_timeout is between 1 s and 24 h (Modal's limits for a timeout)",
    "set startup_timeout from 1s to 24h, e.g. 10m for a large image or slow imports",
)
def _startup_timeout_range(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    startup = fn.startup_timeout_s
    if startup is not None and not 1 <= startup <= MAX_TIMEOUT_S:
        message = f"startup_timeout {units.format_seconds(startup)} is outside Modal's 1s..24h"
        yield ctx.at_field("startup-timeout-range", fn, "startup_timeout", message)


@rule(
    "timeout-missing",
    WARNING,
    "the function sets a timeout (Modal's default of 300 s kills a training run after 5 minutes)",
    "add `timeout:` to the function or to defaults, e.g. timeout: 24h",
)
def _timeout_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.resources.timeout_s is None:
        message = f"function '{fn.name}' has no timeout; Modal stops it after 300 s (5 minutes)"
        yield ctx.at("timeout-missing", ("functions", fn.name), message, key=True)


@rule("cpu-range", ERROR, "cpu is a positive number of physical cores", "set cpu to a number above 0, e.g. 8")
def _cpu_range(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    cpu = fn.resources.cpu
    if cpu is not None and cpu <= 0:
        yield ctx.at_field(
            "cpu-range", fn, "cpu", f"cpu {cpu:g} is not above 0 (Modal's minimum is 0.125 cores)"
        )


@rule("memory-min", ERROR, "memory is at least 128 MiB", "raise memory to 128MiB or more, e.g. 32GiB")
def _memory_min(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    memory = fn.resources.memory_mib
    if memory is not None and memory < MIN_MEMORY_MIB:
        yield ctx.at_field(
            "memory-min", fn, "memory", f"memory {memory} MiB is below Modal's minimum of 128 MiB"
        )


@rule(
    "region-unknown",
    ERROR,
    "every region is one Modal documents (us, eu, ap, a broad region such as us-east, or a provider region "
    "such as us-east-1)",
    "use a region from Modal's region selection guide; a broad one (us-east) also keeps more GPUs in reach",
)
def _region_unknown(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for index, name in enumerate(fn.region):
        if not regions.is_known(name):
            known = f"; Modal's regions: {', '.join([*regions.CONTINENTS, *regions.BROAD])}, or a provider "
            known += "region within one, such as us-east-1 (all of them: docs/spec.md)"
            message = f"unknown region '{name}'" + (did_you_mean(name, regions.names()) or known)
            yield ctx.at_field("region-unknown", fn, "region", message, index=index)


@rule(
    "nonpreemptible-gpu",
    ERROR,
    "nonpreemptible is only set on CPU functions (Modal does not offer it with a GPU)",
    "remove `nonpreemptible` and checkpoint to a volume instead",
)
def _nonpreemptible_gpu(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.nonpreemptible and fn.resources.gpus:
        message = "nonpreemptible is not available for GPU functions"
        yield ctx.at_field("nonpreemptible-gpu", fn, "nonpreemptible", message)


@rule(
    "containers-range",
    ERROR,
    "min_containers is not above max_containers",
    "lower min_containers or raise max_containers",
)
def _containers_range(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    low, high = fn.min_containers, fn.max_containers
    if low is not None and high is not None and low > high:
        message = f"min_containers {low} is above max_containers {high}"
        yield ctx.at_field("containers-range", fn, "min_containers", message)


@rule(
    "scaledown-range",
    ERROR,
    "scaledown_window is between 2 s and 1 h",
    "set scaledown_window from 2s to 1h",
)
def _scaledown_range(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    window = fn.scaledown_window_s
    low, high = SCALEDOWN_RANGE_S
    if window is not None and not low <= window <= high:
        message = f"scaledown_window {window}s is outside Modal's 2s..1h"
        yield ctx.at_field("scaledown-range", fn, "scaledown_window", message)
