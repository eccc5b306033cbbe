"""Emulated cluster nodes for a local run: ``mtc run FUNCTION --nodes N``, or the spec's ``cluster.size``.

A Modal cluster is N containers started together, each one node of the training job. Locally each node is one
child process (:mod:`compiler.backends.local.child`) with torchrun's node-level environment, the same
variables the generated module sets from ``modal.Cluster``: ``MASTER_ADDR`` (127.0.0.1), ``MASTER_PORT`` (a
free port, new for every attempt), ``WORLD_SIZE`` (nodes x processes per node), ``NODE_RANK`` and
``LOCAL_WORLD_SIZE``; the nodes meet over gloo. Each node gets its own slice of the cores.

The supervisor watches all nodes as one run: when one ends with an error (or is killed) while others still
run, the others are stopped at once and the attempt fails naming that node, as Modal fails a cluster's input
when one of its containers fails; a retry starts every node again, and training resumes from the last
checkpoint.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace

from compiler.backends.local.prepare import THREAD_ENV_VARS, LocalRun
from runtime.core.env import NPROC as NPROC_ENV


def with_nodes(run: LocalRun, requested: int, say: Callable[[str], None]) -> LocalRun:
    """``run`` as ``requested`` emulated nodes, as many as its cores allow (every process needs one)."""
    per_node = int(run.env.get(NPROC_ENV, "1"))
    nodes = max(1, min(requested, run.cores // per_node))
    if nodes < requested:
        say(
            f"{requested} nodes of {per_node} process(es) asked for, but {run.function} may use {run.cores} "
            f"core(s) here; running {nodes} node(s)"
        )
    threads = str(max(1, run.cores // nodes))
    env = {**run.env, **{name: threads for name in THREAD_ENV_VARS}}
    return replace(run, nodes=nodes, env=env)


def node_environments(run: LocalRun) -> list[dict[str, str]]:
    """torchrun's node-level variables for each node of one attempt; [{}] for a single node."""
    if run.nodes == 1:
        return [{}]
    per_node = int(run.env.get(NPROC_ENV, "1"))
    port = str(free_port())
    return [
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": str(run.nodes * per_node),
            "NODE_RANK": str(node),
            "LOCAL_WORLD_SIZE": str(per_node),
        }
        for node in range(run.nodes)
    ]


def cores_of(run: LocalRun, node: int) -> tuple[int, int]:
    """(cores, index of the first) of ``node``'s slice of the run's cores."""
    share = max(1, run.cores // run.nodes)
    return share, (node * share) % max(run.cores, 1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_failure(node: int, nodes: int, code: int) -> str:
    """Why an attempt of a multi-node run ended early."""
    how = f"was killed by signal {code - 128}" if code > 128 else f"exited with code {code}"
    return (
        f"node {node} of {nodes} {how}; the other nodes were stopped (a cluster runs all its nodes or none). "
        "A retry starts every node again and resumes from the last checkpoint"
    )
