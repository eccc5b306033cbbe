"""Clustered functions in the generated module: ``@modal.clustered(size=N, rdma=...)`` below
``@app.function``, and the body's first line, which turns the Modal cluster's context into torchrun's
environment before the target is called.

The helper the body calls (``set_torchrun_environment``, in ``templates/cluster_helpers.py.j2``) is written
once per module that has a clustered function. It sets ``MASTER_ADDR`` (rank 0's container, Modal's IPv6
cluster address), ``MASTER_PORT``, ``NODE_RANK`` (the container's rank), ``WORLD_SIZE`` (containers x GPUs
per container) and ``LOCAL_WORLD_SIZE`` (GPUs per container); the runtime spawns one process per GPU with
``RANK`` and ``LOCAL_RANK``, as torchrun's agent does, and never imports modal.
"""

from __future__ import annotations

from compiler.codegen.layout import Group, call
from compiler.codegen.literals import literal
from compiler.spec.ir import App, Function

MASTER_PORT = 29500  # torchrun's default
HELPER = "set_torchrun_environment"


def clustered(function: Function) -> Group | None:
    """``@modal.clustered(size=2, rdma=True)``, or None for a function without a cluster."""
    if function.cluster is None:
        return None
    rdma = literal(True) if function.cluster.rdma else None
    return call("@modal.clustered", size=literal(function.cluster.size), rdma=rdma)


def environment_call(function: Function) -> str | None:
    """The body's first line: ``set_torchrun_environment(gpus_per_node=8)``."""
    if function.cluster is None:
        return None
    return f"{HELPER}(gpus_per_node={literal(gpus_per_node(function))})"


def gpus_per_node(function: Function) -> int:
    """The GPUs of one container (its first GPU choice; the lint wants a whole host), 1 without a GPU."""
    gpus = function.resources.gpus
    return gpus[0].count if gpus else 1


def uses_clusters(app: App) -> bool:
    return any(function.cluster is not None for function in app.functions.values())


def helper_context() -> dict[str, str]:
    """What ``cluster_helpers.py.j2`` fills in."""
    return {"name": HELPER, "port": literal(str(MASTER_PORT))}
