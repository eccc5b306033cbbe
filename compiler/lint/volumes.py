"""Rules on volumes and mounts: every mount names a declared volume on a usable path, buckets' key
prefixes, and somewhere writable for the checkpoints of a GPU run that Modal may preempt."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import unknown_name
from compiler.platform.modal_limits import RESERVED_MOUNTS
from compiler.spec import units
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic

LONG_RUN_S = 3600  # a GPU run longer than this without checkpoints loses real money when preempted


@rule(
    "ref-volume",
    ERROR,
    "every mounted volume is declared under `volumes`",
    "declare the volume or fix the name",
)
def _ref_volume(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for mount in fn.mounts:
        if mount.volume not in ctx.app.volumes:
            message = unknown_name("volume", mount.volume, ctx.app.volumes)
            yield ctx.at_field("ref-volume", fn, f"volumes[{mount.path}]", message)


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
    nodes = f" (a cluster of {fn.nodes} containers: losing any one restarts them all)" if fn.cluster else ""
    message = (
        f"GPU function '{fn.name}'{nodes} has {reason} but no writable volume; after a preemption or retry "
        "it starts from scratch"
    )
    yield ctx.at("checkpoint-volume", ("functions", fn.name), message, key=True)
