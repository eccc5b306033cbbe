"""Data-parallel processes on one machine: how many, how they meet, and how a failure ends them all.

The number of processes is a property of the machine, not of the training config: one per GPU
(``torch.cuda.device_count()``, so a Modal function with ``gpu: H100:8`` trains on all 8 with NCCL), one on a
machine without a GPU; ``MTC_NPROC`` overrides it (the local backend sets it for ``mtc run --processes N``; on
CPU the processes meet with gloo).

:func:`launch` starts the ranks with the ``spawn`` context and stays in the calling process as their
supervisor: it calls ``on_checkpoint`` when rank 0 asks (so a Modal ``Volume.commit`` never has to be
pickled), returns rank 0's result, and when any rank raises or dies it kills the others and raises that rank's
error (the original exception with the rank's traceback as a note), so a failing rank never hangs the run.
Inside a rank, :class:`World` is the one object that knows the rank: collectives are no-ops in a world of one.

Across nodes (:mod:`runtime.train.topology`: torchrun's environment) each node runs :func:`launch` for its
own processes, which take the global ranks ``NODE_RANK * per_node + local rank`` and meet at
``MASTER_ADDR:MASTER_PORT``; only node 0 has rank 0, so only node 0 writes files and commits volumes.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.connection import Connection, wait
from typing import Any

import torch
import torch.distributed as dist

from runtime.core.env import NPROC as NPROC_ENV
from runtime.core.errors import UserError
from runtime.train.topology import Topology

# a rank waits this long in a collective (rank 0 validates alone while the others wait) before torch gives up;
# a rank that dies is noticed at once by the supervisor, not by this timeout
COLLECTIVE_TIMEOUT = timedelta(minutes=60)
PARENT_POLL_S = 2.0
PEER_GRACE_S = 2.0  # how long a rank's error waits for a peer's death, the likelier cause, to show


class WorldError(UserError, RuntimeError):
    """The process count asked for cannot be used here."""


@dataclass(frozen=True)
class World:
    """This process's rank among ``size`` data-parallel processes (rank 0 writes every file); ``local_rank``
    is its index on its own node (its GPU), None when it is the rank (one node)."""

    rank: int = 0
    size: int = 1
    local_rank: int | None = None

    @property
    def device_index(self) -> int:
        """The GPU of this process on its node."""
        return self.rank if self.local_rank is None else self.local_rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over all ranks, in place."""
        if self.distributed:
            dist.all_reduce(tensor)
        return tensor

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable values)."""
        if not self.distributed:
            return value
        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list | None:
        """Every rank's ``value`` (tensors, numbers, strings and containers of them) in rank order on rank 0,
        None on the others."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.size if self.is_main else None
        # as torch.save bytes: gather_object cannot carry tensors between CPU processes (torch 2.x)
        dist.gather_object(_saved(value), gathered, dst=0)
        return [_loaded(blob) for blob in gathered] if gathered else None


SINGLE = World()


def _saved(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def _loaded(blob: bytes) -> Any:
    return torch.load(io.BytesIO(blob), weights_only=True)


def process_count() -> int:
    """``MTC_NPROC`` when set, else one process per visible GPU, else 1."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    text = os.environ.get(NPROC_ENV, "").strip()
    if not text:
        return max(gpus, 1)
    if not text.isdigit() or int(text) < 1:
        raise WorldError(f"{NPROC_ENV}={text!r}: expected a whole number of processes, 1 or more")
    count = int(text)
    if gpus and count > gpus:
        raise WorldError(f"{NPROC_ENV}={count}, but this machine has {gpus} GPU(s): one process per GPU")
    return count


def backend() -> str:
    return "nccl" if torch.cuda.is_available() else "gloo"


# ------------------------------------------------------------------------------------------ supervisor


def launch(
    target: Callable[..., Any],
    topology: Topology,
    args: tuple,
    *,
    on_checkpoint: Callable[[], None] | None,
) -> Any:
    """Run ``target(world, *args, on_checkpoint=...)`` in this node's ``topology.per_node`` spawned ranks;
    return rank 0's result (None on another node).

    ``target`` must be importable (a module-level function) and ``args`` picklable.
    """
    context = torch.multiprocessing.get_context("spawn")
    address = (topology.master_addr, topology.master_port or _free_port())
    threads = max(1, torch.get_num_threads() // topology.per_node)  # this process's cores, shared by ranks
    ranks = []
    for local in range(topology.per_node):
        world = World(topology.first_rank + local, topology.world_size, local)
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_rank_main,
            args=(target, world, address, threads, args, theirs),
            name=f"mtc-rank-{world.rank}",
        )
        process.start()
        theirs.close()
        ranks.append((process, ours))
    try:
        return _supervise(ranks, on_checkpoint, topology)
    finally:
        for process, _ in ranks:
            if process.is_alive():
                process.kill()
        for process, _ in ranks:
            process.join()


def _supervise(ranks: list, on_checkpoint: Callable[[], None] | None, topology: Topology) -> Any:
    """Answer rank 0's checkpoint notices until every rank has finished; raise the first failure."""
    running = {topology.first_rank + local: entry for local, entry in enumerate(ranks)}
    result = None
    while running:
        by_handle = {}
        for rank, (process, conn) in running.items():
            by_handle[conn] = by_handle[process.sentinel] = rank
        for handle in wait(list(by_handle)):
            rank = by_handle[handle]
            if rank not in running:
                continue
            process, conn = running[rank]
            message = _receive(conn) if conn.poll() else None
            if message is None:  # it died, or closed its end while dying
                process.join(timeout=5)
                raise RuntimeError(_death_notice(rank, topology, process.exitcode))
            kind, payload = message
            if kind == "checkpoint":
                if on_checkpoint:
                    on_checkpoint()
                try:
                    conn.send("ok")
                except OSError:  # it died meanwhile: its sentinel says so on the next round
                    pass
            elif kind == "error":
                raise _dead_peer(rank, running, topology) or _rebuilt(rank, *payload, topology)
            else:  # done
                result = payload if rank == 0 else result  # rank 0 lives on node 0
                del running[rank]
    return result


def _dead_peer(rank: int, running: dict, topology: Topology) -> RuntimeError | None:
    """The death of another rank, when that is why ``rank`` failed (gloo reports a peer that vanished)."""
    others = {
        process.sentinel: (other, process, conn)
        for other, (process, conn) in running.items()
        if other != rank
    }
    for sentinel in wait(list(others), timeout=PEER_GRACE_S):
        other, process, conn = others[sentinel]
        if (_receive(conn) if conn.poll() else None) is None:  # gone without a word
            process.join()
            return RuntimeError(_death_notice(other, topology, process.exitcode))
    return None


def _receive(conn: Connection) -> tuple | None:
    try:
        return conn.recv()
    except (EOFError, OSError):
        return None


def _death_notice(rank: int, topology: Topology, code: int | None) -> str:
    if code is None:
        how = "stopped answering"
    else:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    return (
        f"rank {rank} of {topology.world_size} data-parallel processes{_on_node(topology)} {how} without "
        "reporting an error (out of memory?); the other ranks were stopped. Starting again resumes from the "
        "last checkpoint"
    )


def _on_node(topology: Topology) -> str:
    return f" (node {topology.node_rank} of {topology.nodes})" if topology.multi_node else ""


def _rebuilt(rank: int, pickled: bytes | None, message: str, trace: str, topology: Topology) -> BaseException:
    """The rank's own exception (else a RuntimeError with its message), with its traceback as a note."""
    error: BaseException | None = None
    if pickled is not None:
        try:
            error = pickle.loads(pickled)
        except Exception:  # an exception whose constructor does not round-trip
            error = None
    if error is None:
        error = RuntimeError(message)
    error.add_note(f"raised in data-parallel rank {rank}{_on_node(topology)}:\n{trace.rstrip()}")
    if topology.multi_node and isinstance(error, dist.DistError):
        error.add_note(
            "a collective failed: when another node of the job stopped (its own log names why), this node "
            "stops too; starting the job again resumes from the last checkpoint"
        )
    return error


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ------------------------------------------------------------------------------------------ a rank


def _rank_main(
    target: Callable[..., Any],
    world: World,
    address: tuple[str, int],
    threads: int,
    args: tuple,
    conn: Connection,
) -> None:
    """A spawned rank: join the process group, run ``target``, report its result or its error."""
    _exit_with(os.getppid())
    os.environ.update(
        MASTER_ADDR=address[0],
        MASTER_PORT=str(address[1]),
        RANK=str(world.rank),
        LOCAL_RANK=str(world.device_index),
        WORLD_SIZE=str(world.size),
    )
    try:
        join(world, threads)
        notify = (lambda: _ask(conn)) if world.is_main else None
        result = target(world, *args, on_checkpoint=notify)
        dist.destroy_process_group()
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the supervisor
        conn.send(("error", (_pickled(exc), str(exc), traceback.format_exc())))
        sys.stderr.flush()
        os._exit(1)  # no teardown: peers may be stuck in a collective; the supervisor kills them
    conn.send(("done", result))


def join(world: World, threads: int) -> None:
    """Join the process group at ``MASTER_ADDR:MASTER_PORT`` as ``world.rank``."""
    if torch.cuda.is_available():
        torch.cuda.set_device(world.device_index)
    else:
        torch.set_num_threads(threads)
    dist.init_process_group(backend(), rank=world.rank, world_size=world.size, timeout=COLLECTIVE_TIMEOUT)


def destroy() -> None:
    """Leave the process group, when this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _ask(conn: Connection) -> None:
    """Have the supervisor run ``on_checkpoint`` and wait until it has."""
    conn.send(("checkpoint", None))
    if _receive(conn) != "ok":
        raise RuntimeError("the supervising process went away during a checkpoint commit")


def _pickled(exc: BaseException) -> bytes | None:
    try:
        return pickle.dumps(exc)
    except Exception:
        return None


def _exit_with(parent: int) -> None:
    """End this rank when the supervisor dies (e.g. SIGKILLed), instead of training on as an orphan."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="mtc-parent-watch").start()
