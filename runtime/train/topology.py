"""Where this process sits in a training job: nodes x processes per node, from torch's standard environment.

A job on one machine needs no variables: its processes meet on a free local port. A job of several nodes
(a Modal cluster, ``mtc run --nodes N``, or ``torchrun --nnodes N``'s agent) is described by torchrun's
node-level variables, which the caller sets on every node:

- ``MASTER_ADDR``, ``MASTER_PORT``: where node 0's rank 0 listens;
- ``WORLD_SIZE``: the processes of the whole job, nodes x processes per node;
- ``NODE_RANK``: this node's index, 0 for the node whose rank 0 writes;
- ``LOCAL_WORLD_SIZE`` (optional): the processes per node, checked against
  :func:`runtime.train.distributed.process_count`.

The node then spawns its processes with global ranks ``NODE_RANK * per_node + local rank``. A process that
torchrun started as a worker (``RANK`` and ``LOCAL_RANK`` set) is one rank already: :func:`torchrun_rank`.
Nothing here knows about Modal: the generated module turns a Modal cluster's context into these variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.core.errors import UserError

NODE_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK")


class TopologyError(UserError, RuntimeError):
    """The distributed environment variables do not describe a job this process can join."""


@dataclass(frozen=True)
class Topology:
    """``nodes`` nodes of ``per_node`` processes; this is node ``node_rank``. ``master_port`` None: one node,
    which picks a free local port."""

    per_node: int = 1
    nodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int | None = None

    @property
    def world_size(self) -> int:
        return self.nodes * self.per_node

    @property
    def first_rank(self) -> int:
        """The global rank of this node's local rank 0."""
        return self.node_rank * self.per_node

    @property
    def multi_node(self) -> bool:
        return self.nodes > 1


def from_environment(per_node: int, env: Mapping[str, str] = os.environ) -> Topology:
    """The job this node belongs to: one node unless ``WORLD_SIZE`` or ``NODE_RANK`` is set, then all of
    :data:`NODE_VARIABLES` must be."""
    if not any(env.get(name, "").strip() for name in ("WORLD_SIZE", "NODE_RANK")):
        return Topology(per_node)
    missing = [name for name in NODE_VARIABLES if not env.get(name, "").strip()]
    if missing:
        raise TopologyError(
            f"a multi-node job needs {', '.join(NODE_VARIABLES)}; {', '.join(missing)} not set "
            "(set them on every node, as torchrun does, or unset WORLD_SIZE and NODE_RANK for one machine)"
        )
    world = _whole(env, "WORLD_SIZE", minimum=1)
    node_rank = _whole(env, "NODE_RANK", minimum=0)
    port = _whole(env, "MASTER_PORT", minimum=1)
    local = env.get("LOCAL_WORLD_SIZE", "").strip()
    if local and _whole(env, "LOCAL_WORLD_SIZE", minimum=1) != per_node:
        raise TopologyError(f"LOCAL_WORLD_SIZE={local}, but this node runs {per_node} process(es)")
    if world % per_node:
        raise TopologyError(
            f"WORLD_SIZE={world} is not a whole number of nodes of {per_node} process(es) each"
        )
    nodes = world // per_node
    if node_rank >= nodes:
        raise TopologyError(f"NODE_RANK={node_rank}, but WORLD_SIZE={world} makes {nodes} node(s)")
    return Topology(per_node, nodes, node_rank, env["MASTER_ADDR"].strip(), port)


def torchrun_rank(env: Mapping[str, str] = os.environ) -> tuple[int, int, int] | None:
    """(rank, local rank, world size) of a process torchrun started as a worker, else None."""
    if not (env.get("RANK", "").strip() and env.get("LOCAL_RANK", "").strip()):
        return None
    world = _whole(env, "WORLD_SIZE", minimum=1)
    rank, local_rank = _whole(env, "RANK", minimum=0), _whole(env, "LOCAL_RANK", minimum=0)
    if rank >= world:
        raise TopologyError(f"RANK={rank}, but WORLD_SIZE={world}")
    return rank, local_rank, world


def _whole(env: Mapping[str, str], name: str, *, minimum: int) -> int:
    text = env.get(name, "").strip()
    if not text.isdigit() or int(text) < minimum:
        raise TopologyError(f"{name}={text!r}: expected a whole number, {minimum} or more")
    return int(text)
