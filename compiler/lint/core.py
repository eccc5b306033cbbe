"""The core rule family: Modal's limits on a function's resources, references between spec sections,
mounts, schedules, preemption, and silenced warnings."""

from __future__ import annotations

import keyword
import posixpath
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from compiler.codegen.render import (
    MODULE_NAMES,  # names the generated module defines: a function must not take one
)
from compiler.lint import ERROR, RULES, WARNING, LintContext, rule
from compiler.platform import gpus
from compiler.platform.modal_limits import MAX_TIMEOUT_S, MIN_MEMORY_MIB, RESERVED_MOUNTS, SCALEDOWN_RANGE_S
from compiler.spec import targets, units
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic, did_you_mean

LONG_RUN_S = 3600  # a GPU run longer than this without checkpoints loses real money when preempted
CUDA_BUILT_PACKAGES = re.compile(r"\b(mamba[-_]ssm|causal[-_]conv1d)\b", re.IGNORECASE)


# --------------------------------------------------------------------------------------- function rules


@rule(
    "function-name",
    ERROR,
    "a function name is a Python identifier, not a keyword, and not a name the generated module uses",
    "rename the function, e.g. populate_cache instead of populate-cache",
)
def _function_name(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    problem = _identifier_problem(fn.name)
    if not problem and fn.name in MODULE_NAMES:
        problem = f"is a name the generated module defines ({', '.join(sorted(MODULE_NAMES))})"
    if problem:
        yield ctx.at(
            "function-name", ("functions", fn.name), f"function name '{fn.name}' {problem}", key=True
        )


@rule(
    "arg-name",
    ERROR,
    "an argument name is a Python identifier and not a keyword (it becomes a parameter)",
    "rename the argument, e.g. max_epochs instead of max-epochs",
)
def _arg_name(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for name, _ in fn.args:
        problem = _identifier_problem(name)
        if problem:
            yield ctx.at_field("arg-name", fn, f"args[{name}]", f"argument name '{name}' {problem}", key=True)


def _identifier_problem(name: str) -> str | None:
    if not name.isidentifier() or not name.isascii():
        return "is not a Python identifier (letters, digits and '_', not starting with a digit)"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    return None


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
    "ref-image", ERROR, "`image:` names an image declared under `images`", "declare the image or fix the name"
)
def _ref_image(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.image is not None and fn.image not in ctx.app.images:
        yield ctx.at_field("ref-image", fn, "image", _unknown("image", fn.image, ctx.app.images))


@rule(
    "ref-volume",
    ERROR,
    "every mounted volume is declared under `volumes`",
    "declare the volume or fix the name",
)
def _ref_volume(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for mount in fn.mounts:
        if mount.volume not in ctx.app.volumes:
            message = _unknown("volume", mount.volume, ctx.app.volumes)
            yield ctx.at_field("ref-volume", fn, f"volumes[{mount.path}]", message)


def _unknown(kind: str, name: str, declared: Iterable[str]) -> str:
    declared = list(declared)
    listed = ", ".join(declared) if declared else f"none (add a `{kind}s:` section)"
    return f"unknown {kind} '{name}'{did_you_mean(name, declared)}; declared {kind}s: {listed}"


@rule(
    "mount-path",
    ERROR,
    "a mount path is absolute and canonical, and not /, /root or /tmp",
    "use a path such as /data or /results (no trailing '/', no '..')",
)
def _mount_path(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for mount in fn.mounts:
        if not mount.path.startswith("/"):
            problem = "is relative; a mount path starts with '/'"
        elif posixpath.normpath(mount.path) != mount.path or mount.path.startswith("//"):
            problem = f"is not canonical; write {posixpath.normpath('/' + mount.path.lstrip('/'))}"
        elif mount.path in RESERVED_MOUNTS:
            problem = "is reserved by Modal; mount somewhere else, e.g. /data"
        else:
            continue
        yield ctx.at_field(
            "mount-path", fn, f"volumes[{mount.path}]", f"mount path '{mount.path}' {problem}", key=True
        )


@rule(
    "mount-duplicate",
    ERROR,
    "no two volumes are mounted on the same path",
    "give each volume its own mount path",
)
def _mount_duplicate(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    first: dict[str, str] = {}
    for mount in fn.mounts:
        normal = posixpath.normpath("/" + mount.path.lstrip("/"))
        if normal in first:
            message = f"mount path '{mount.path}' is the same as '{first[normal]}'"
            yield ctx.at_field("mount-duplicate", fn, f"volumes[{mount.path}]", message, key=True)
        else:
            first[normal] = mount.path


@rule(
    "schedule-with-args",
    ERROR,
    "a scheduled function takes no args (Modal calls it without arguments)",
    "remove `args` or `schedule`; put fixed values in the target's own defaults",
)
def _schedule_with_args(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.schedule is not None and fn.args:
        names = ", ".join(name for name, _ in fn.args)
        message = f"has a schedule and args ({names}); Modal cannot pass arguments to a scheduled call"
        yield ctx.at_field("schedule-with-args", fn, "schedule", message)


@rule(
    "schedule-timezone",
    ERROR,
    "a cron schedule's timezone is an IANA time zone name",
    "use a name such as Europe/Paris or America/New_York",
)
def _schedule_timezone(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    zone = fn.schedule.timezone if fn.schedule else None
    known = _time_zones() if zone else frozenset()
    if zone and known and zone not in known:  # without a time zone database on this machine, trust the spec
        path = (*fn.origins["schedule"], "timezone")
        message = f"function '{fn.name}': unknown time zone '{zone}'{did_you_mean(zone, known)}"
        yield ctx.at("schedule-timezone", path, message)


@cache
def _time_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


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


@rule(
    "checkpoint-volume",
    WARNING,
    "a GPU function with retries or a timeout over 1 h mounts a writable volume for its checkpoints",
    "mount a Modal Volume (not read-only) and save checkpoints there; Modal preempts GPU functions",
)
def _checkpoint_volume(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    long_run = (fn.resources.timeout_s or 0) > LONG_RUN_S
    retried = fn.retries is not None and fn.retries.max_retries > 0
    if not fn.resources.gpus or not (long_run or retried):
        return
    volumes = ctx.app.volumes
    if any(m.volume in volumes and not volumes[m.volume].read_only for m in fn.mounts):
        return
    reason = "retries" if retried else f"a timeout of {units.format_seconds(fn.resources.timeout_s or 0)}"
    message = (
        f"GPU function '{fn.name}' has {reason} but no writable volume; after a preemption or retry "
        "it starts from scratch"
    )
    yield ctx.at("checkpoint-volume", ("functions", fn.name), message, key=True)


def _ignore_problem(rule_id: str) -> str | None:
    if rule_id not in RULES:
        return f"lint.ignore names unknown rule '{rule_id}'{did_you_mean(rule_id, RULES)}"
    if RULES[rule_id].severity == ERROR:
        return f"rule '{rule_id}' reports errors, which cannot be ignored (Modal would reject the app)"
    return None


# -------------------------------------------------------------------------------------------- app rules


@rule(
    "lint-ignore",
    WARNING,
    "`lint.ignore` names existing warning rules (errors cannot be silenced)",
    "fix the rule id, or fix the error instead of ignoring it",
    scope="app",
)
def _lint_ignore(ctx: LintContext) -> Iterator[Diagnostic]:
    for rule_id, _ in ctx.app.lint_ignores:
        problem = _ignore_problem(rule_id)
        if problem:
            yield ctx.at("lint-ignore", ("lint", "ignore", rule_id), problem, key=True)
    for fn in ctx.app.functions.values():
        for rule_id, _ in fn.lint_ignores:
            problem = _ignore_problem(rule_id)
            if problem:
                yield ctx.at_field("lint-ignore", fn, f"lint.ignore[{rule_id}]", problem, key=True)


@rule(
    "bucket-prefix",
    ERROR,
    "a bucket's key_prefix ends with '/'",
    "add the trailing slash: key_prefix: tusz/",
    scope="app",
)
def _bucket_prefix(ctx: LintContext) -> Iterator[Diagnostic]:
    for volume in ctx.app.volumes.values():
        if volume.key_prefix is not None and not volume.key_prefix.endswith("/"):
            message = f"volume '{volume.name}': key_prefix '{volume.key_prefix}' must end with '/'"
            yield ctx.at("bucket-prefix", ("volumes", volume.name, "key_prefix"), message)


@rule(
    "mamba-needs-devel",
    WARNING,
    "an image that builds mamba-ssm or causal-conv1d starts from a CUDA -devel image (they need nvcc)",
    "use from: nvidia/cuda:<version>-devel-<os>, e.g. nvidia/cuda:12.1.0-devel-ubuntu22.04",
    scope="app",
)
def _mamba_needs_devel(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        if _is_cuda_devel(image.base):
            continue
        for index, step in enumerate(image.steps):
            found = CUDA_BUILT_PACKAGES.search(" ".join(_strings(step.value)))
            if step.kind in ("pip", "run") and found:
                message = (
                    f"image '{image.name}' installs {found.group(1)} but starts from '{image.base}', "
                    "which has no nvcc; the build fails or falls back to slow code"
                )
                yield ctx.at("mamba-needs-devel", ("images", image.name, "steps", index, step.kind), message)


def _is_cuda_devel(base: str) -> bool:
    return "cuda" in base.lower() and "devel" in base.lower()


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []


@rule(
    "local-path-missing",
    ERROR,
    "every add_local directory exists (relative to the spec's folder) and every add_local Python package is "
    "found (in the spec's folder or a parent up to the project root, or installed)",
    "fix the path: a relative one starts at the folder of the spec file",
    scope="app",
)
def _local_path_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        base = ("images", image.name, "add_local")
        for local, _ in image.local_dirs:
            if not _is_dir(ctx.root / local):
                message = f"image '{image.name}': local directory '{local}' does not exist in {ctx.root}"
                yield ctx.at("local-path-missing", (*base, "dirs", local), message, key=True)
        for index, module in enumerate(image.local_python):
            if targets.locate(module, ctx.root) is None:
                message = (
                    f"image '{image.name}': Python package '{module}' is not found in {ctx.root}, its "
                    "parents up to the project root, or the installed packages"
                )
                yield ctx.at("local-path-missing", (*base, "python", index), message)


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


@rule(
    "profile-function",
    ERROR,
    "a profile only overrides functions that exist",
    "fix the function name in the profile",
    scope="app",
)
def _profile_function(ctx: LintContext) -> Iterator[Diagnostic]:
    for profile, spec in (ctx.doc.data.get("profiles") or {}).items():
        for name in (spec or {}).get("functions", {}):
            if name not in ctx.app.functions:
                message = f"profile '{profile}' overrides unknown function '{name}'"
                message += (
                    did_you_mean(name, ctx.app.functions) or f"; functions: {', '.join(ctx.app.functions)}"
                )
                yield ctx.at("profile-function", ("profiles", profile, "functions", name), message, key=True)
