"""Rules on multi-node clusters (``cluster: {size, rdma}``): Modal's requirements for ``@modal.clustered``,
as recorded with their source in :mod:`compiler.platform.clusters`."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.lint.registry import ERROR, LintContext, rule
from compiler.platform import clusters
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic


@rule(
    "cluster-size",
    ERROR,
    f"a cluster has {clusters.MIN_NODES} to {clusters.MAX_NODES} containers (Modal's limit per cluster)",
    "set cluster.size from 2 to 32, or remove `cluster` for a single container",
)
def _cluster_size(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    size = fn.cluster.size if fn.cluster else None
    if size is not None and not clusters.MIN_NODES <= size <= clusters.MAX_NODES:
        hint = "a cluster of one is a plain function: remove `cluster`" if size < 2 else "Modal's limit is 32"
        message = f"cluster.size is {size}; expected 2 to {clusters.MAX_NODES} containers ({hint})"
        yield ctx.at_field("cluster-size", fn, "cluster[size]", message)


@rule(
    "cluster-gpu",
    ERROR,
    f"every container of a cluster takes a whole GPU host: {clusters.WHOLE_HOST_GPUS} GPUs of one type "
    "(CPU-only clusters are not supported)",
    'set gpu to a whole host, e.g. gpu: "H100:8", or remove `cluster`',
)
def _cluster_gpu(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.cluster is None:
        return
    if not fn.resources.gpus:
        message = 'a cluster needs GPUs (Modal has no CPU-only clusters); set e.g. gpu: "H100:8"'
        yield ctx.at_field("cluster-gpu", fn, "cluster", message, key=True)
        return
    for index, gpu in enumerate(fn.resources.gpus):
        if clusters.whole_host(gpu.type) and gpu.count == clusters.WHOLE_HOST_GPUS:
            continue
        message = (
            f"gpu {gpu.modal_string()} in a cluster: each container must take all GPUs of its host, "
            f"{gpu.type}:{clusters.WHOLE_HOST_GPUS}"
            if clusters.whole_host(gpu.type)
            else f"gpu {gpu.modal_string()} in a cluster: {gpu.type} does not come in whole "
            f"{clusters.WHOLE_HOST_GPUS}-GPU hosts; use e.g. H100:8, H200:8 or B200:8"
        )
        yield ctx.at_field("cluster-gpu", fn, "gpu", message, index=index)


@rule(
    "cluster-containers",
    ERROR,
    "min_containers and max_containers of a clustered function are multiples of cluster.size (they count "
    "containers, not clusters)",
    "set them to a multiple of the size: size 4 with min_containers: 8 keeps two clusters warm",
)
def _cluster_containers(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.cluster is None or fn.cluster.size < 1:
        return
    size = fn.cluster.size
    for key in ("min_containers", "max_containers"):
        count = getattr(fn, key)
        if count is not None and count % size:
            lower, higher = count - count % size, count + size - count % size
            options = f"{lower} or {higher}" if lower else str(higher)
            message = (
                f"{key} is {count}, not a multiple of cluster.size {size} (it counts containers); "
                f"use {options}"
            )
            yield ctx.at_field("cluster-containers", fn, key, message)
