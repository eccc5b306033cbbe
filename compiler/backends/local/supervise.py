"""Running a :class:`~compiler.backends.local.prepare.LocalRun`: its attempts, each in a fresh child
(:mod:`compiler.backends.local.child`) watched by :mod:`compiler.backends.local.limits`.

- memory: above the declared limit the run's processes are all killed and the attempt ends with exit code
  137, what a container killed by the kernel's OOM killer reports;
- timeout: per attempt; the tree is killed, exit code 124; so is an attempt whose target is not called within
  ``startup_timeout`` of the child's start (its imports took too long), as Modal ends a slow container start;
- no process outlives the run: the child dies with ``mtc`` and takes the function's processes with it; a
  TERM, INT or HUP ``mtc`` receives is passed on to them; processes the function leaves behind are killed
  and named;
- retries: a failed attempt is re-run up to ``max_retries`` times, after the declared delays; training
  resumes from its checkpoint because the volumes persist between attempts.

The exit code is the function's: 0 when it returns, the code of a ``SystemExit``, 1 for an uncaught exception.
A user's mistake the runtime reports (a bad config, data or checkpoint) prints as a message, not a traceback,
exits 1 and is not retried: it would fail the same way again (the child says so through a side channel, not
an exit code, so a function's own ``sys.exit(65)`` is only its exit code).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from compiler.backends.local import nodes as cluster_nodes
from compiler.backends.local.child import (
    CALL_ENV,
    CALLED_FILE,
    FORWARDED,
    GRACE_S,
    LEFT_BEHIND_FILE,
    REJECTED_FILE,
)
from compiler.backends.local.prepare import LocalRun, protected_folders
from compiler.backends.local.serve import SERVE_TARGET
from compiler.backends.local.volumes import (
    LocalRunError,
    make_folders,
    namespaces_available,
    restore_abandoned,
    write_protected,
)
from runtime.core.env import NPROC as NPROC_ENV
from runtime.core.env import VOLUME_MAP

if TYPE_CHECKING:
    from compiler.backends.local import limits

EXIT_TIMEOUT = 124
EXIT_OUT_OF_MEMORY = 137  # 128 + SIGKILL, as for a container killed by the OOM killer
EXIT_INTERRUPTED = 130
POLL_S = 0.05


@dataclass(frozen=True)
class AttemptResult:
    exit_code: int
    reason: str  # "exited" | "rejected" | "memory" | "timeout" | "startup" | "interrupted"
    peak_mib: int
    seconds: float
    left_behind: tuple[str, ...] = ()  # processes killed after the function ended: "sleep 300 (pid 12)"
    failed_node: int | None = None  # the node that ended a multi-node attempt early


def execute(run: LocalRun, say: Callable[[str], None]) -> int:
    """Run every attempt until one succeeds or none are left; return the last attempt's exit code."""
    from compiler.backends.local import (
        limits,  # imports psutil: when a run starts, not when the lint imports this module
    )

    try:
        mechanism = limits.describe_choice()
        make_folders([m.local for m in run.mounts])
    except (limits.LimitsError, LocalRunError) as exc:
        say(f"error: {exc}")
        return 1
    _describe(run, limits.MECHANISM_TEXT[mechanism], say)
    restore_abandoned(run.volumes_root, say)
    result = None
    with (
        signals_passed_on(),
        write_protected(protected_folders(run.mounts), run.volumes_root),
    ):
        for attempt in range(1, run.attempts + 1):
            delay = run.retry_delays_s[attempt - 2] if attempt > 1 else 0
            if attempt > 1:
                say(
                    f"retrying {run.function} (attempt {attempt} of {run.attempts})"
                    + (f" in {delay:g} s" if delay else "")
                )
            if _stop.wait(delay):
                say(f"{run.function} interrupted before attempt {attempt}")
                return 128 + _stop_signal[0]
            try:
                result = _attempt(run)
            except limits.LimitsError as exc:
                say(f"error: {exc}")
                return 1
            for process in result.left_behind:
                say(f"killed a process left behind by {run.function}: {process}")
            say(_outcome(run, result, attempt))
            if result.reason == "rejected":
                return 1
            if result.exit_code == 0 or result.reason == "interrupted":
                break
    assert result is not None
    return result.exit_code


def _describe(run: LocalRun, mechanism: str, say: Callable[[str], None]) -> None:
    memory = f"{run.memory_mib} MiB through {mechanism}" if run.memory_mib else "not limited (none declared)"
    target = f"{run.kwargs['target']}, served" if run.target == SERVE_TARGET else run.target
    say(
        f"running {run.function} ({target}) locally: {run.cores} core(s) for cpu {run.declared_cpu:g}, "
        f"memory {memory}, {_timeout_text(run)}, {run.attempts} attempt(s)"
    )
    for mount in run.mounts:
        access = "read-only" if mount.read_only else "read-write"
        say(f"volume {mount.volume} at {mount.path} lives in {mount.local} ({access})")
    processes = int(run.env.get(NPROC_ENV, "1"))
    if run.nodes > 1:
        say(
            f"cluster: {run.nodes} nodes of {processes} process(es) on localhost (gloo), "
            f"{max(1, run.cores // run.nodes)} core(s) each"
        )
    elif processes > 1:
        threads = max(1, run.cores // processes)
        say(f"data-parallel: {processes} processes on {run.cores} core(s), {threads} thread(s) each")
    for notice in run.notices:
        say(notice)


def _timeout_text(run: LocalRun) -> str:
    if run.timeout_s is None:
        return "no timeout (a server runs until stopped)"
    return f"timeout {run.timeout_s} s per attempt"


def _outcome(run: LocalRun, result: AttemptResult, attempt: int) -> str:
    of = f" (attempt {attempt} of {run.attempts})" if run.attempts > 1 else ""
    if result.reason == "memory":
        return (
            f"error: {run.function} exceeded {run.memory_mib} MiB of memory{of} and was stopped, as Modal's "
            f"OOM killer would; raise its memory in the spec or use less (exit {result.exit_code})"
        )
    if result.reason == "timeout":
        return (
            f"error: {run.function} timed out after {run.timeout_s} s{of} and was stopped; raise its timeout "
            f"in the spec (exit {result.exit_code})"
        )
    if result.reason == "startup":
        return (
            f"error: {run.function} was not called within its startup_timeout of {run.startup_timeout_s} s"
            f"{of} (imports and start-up took longer) and was stopped; raise startup_timeout "
            f"(exit {result.exit_code})"
        )
    if result.reason == "interrupted":
        return f"{run.function} interrupted (exit {result.exit_code})"
    if result.reason == "rejected":
        return (
            f"error: {run.function} rejected its input after {result.seconds:.1f} s{of}; not retried: it "
            "would fail the same way again. Fix what the message above says (exit 1)"
        )
    if result.failed_node is not None:
        return "error: " + cluster_nodes.node_failure(result.failed_node, run.nodes, result.exit_code) + of
    status = "finished" if result.exit_code == 0 else "failed"
    return (
        f"{run.function} {status} with exit code {result.exit_code} in {result.seconds:.1f} s{of}, "
        f"peak memory {result.peak_mib} MiB"
    )


def _attempt(run: LocalRun) -> AttemptResult:
    """One call of the target in a fresh child, watched until it ends; nothing of it is left running."""
    from compiler.backends.local import limits

    started = time.monotonic()
    # every node is a container with the declared memory: locally they share one watch
    limit = run.memory_mib * run.nodes if run.memory_mib else None
    watch = limits.choose(limit, uuid.uuid4().hex[:12])
    with tempfile.TemporaryDirectory(prefix="mtc-call-") as folder:
        channels = [Path(folder) / f"node-{n}" for n in range(run.nodes)] if run.nodes > 1 else [Path(folder)]
        for channel in channels:
            channel.mkdir(exist_ok=True)
        environments = cluster_nodes.node_environments(run)
        children = [
            _start_child(run, watch, channel, node, extra)
            for node, (channel, extra) in enumerate(zip(channels, environments, strict=True))
        ]
        try:
            due = started + (run.startup_timeout_s or run.timeout_s)
            startups = [Startup(channel / CALLED_FILE, due) for channel in channels]
            deadline = started + run.timeout_s if run.timeout_s is not None else math.inf
            reason, code, failed = _supervise(children, watch, deadline, startups)
        finally:
            stragglers = watch.kill_all()  # what escaped the children (none, unless one was killed itself)
            for child in children:
                child.wait()
            watch.close()
        left_behind = []
        if reason == "exited":
            left_behind = [*(p for c in channels for p in _read_left_behind(c)), *stragglers]
            if any((channel / REJECTED_FILE).exists() for channel in channels):
                reason = "rejected"
    seconds = time.monotonic() - started
    return AttemptResult(code, reason, watch.peak_mib(), seconds, tuple(left_behind), failed)


def _start_child(
    run: LocalRun, watch: limits.Watch, channel: Path, node: int, extra_env: dict[str, str]
) -> subprocess.Popen:
    """Start compiler.backends.local.child (one node of the run) and add it to ``watch`` before it may go on
    (it waits on a pipe)."""
    go_read, go_write = os.pipe()
    cores, first_core = cluster_nodes.cores_of(run, node)
    payload = {
        "target": run.target,
        "kwargs": run.kwargs,
        "cores": cores,
        "first_core": first_core,
        "read_only": [str(folder) for folder in protected_folders(run.mounts)],
        "namespaces": namespaces_available(),
        "channel": str(channel),
        "supervisor": os.getpid(),
        "go_fd": go_read,
    }
    env = {**os.environ, **run.env, **extra_env, CALL_ENV: json.dumps(payload)}
    env[VOLUME_MAP] = json.dumps(run.path_map)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "compiler.backends.local.child"],
            cwd=run.workdir,
            env=env,
            start_new_session=True,  # the terminal's Ctrl-C reaches mtc, which passes it on
            pass_fds=(go_read,),
        )
    finally:
        os.close(go_read)
    try:
        watch.add(child.pid)
        os.write(go_write, b"go")
    except (OSError, ProcessLookupError):
        pass  # it died already: the exit code says why
    finally:
        os.close(go_write)
    return child


@dataclass(frozen=True)
class Startup:
    """The child's start-up: over when ``marker`` exists (the target is being called), due by ``deadline``."""

    marker: Path
    deadline: float

    def overdue(self) -> bool:
        return time.monotonic() > self.deadline and not self.marker.exists()


def _supervise(
    children: list[subprocess.Popen], watch: limits.Watch, deadline: float, startups: list[Startup]
) -> tuple[str, int, int | None]:
    """Wait for the children (one per node) while sampling memory; end the run on the limit, the timeouts,
    a signal, or a node that fails while others run. Returns (reason, exit code, the node that failed)."""
    forwarded_at = None
    codes: list[int | None] = [None] * len(children)
    while True:
        time.sleep(POLL_S)
        codes = [child.poll() for child in children]
        watch.usage_mib()
        if watch.exceeded():
            watch.kill_all()
            return "memory", EXIT_OUT_OF_MEMORY, None
        if _stop.is_set():
            if all(c is not None for c in codes) or (
                forwarded_at and time.monotonic() > forwarded_at + GRACE_S + 1
            ):
                return "interrupted", 128 + _stop_signal[0], None
            if forwarded_at is None:
                for child in children:  # each child passes it on to every process under it
                    child.send_signal(_stop_signal[0])
                forwarded_at = time.monotonic()
            continue
        failed = _failed_node(codes) if len(children) > 1 else None
        if failed is not None:
            watch.kill_all()
            return "exited", _exit_code(codes[failed] or 0), failed
        if all(c is not None for c in codes):
            return "exited", _exit_code(next((c for c in codes if c), 0)), None
        if time.monotonic() > deadline:
            watch.kill_all()
            return "timeout", EXIT_TIMEOUT, None
        if any(startup.overdue() for startup in startups):
            watch.kill_all()
            return "startup", EXIT_TIMEOUT, None


def _failed_node(codes: list[int | None]) -> int | None:
    """The node that failed: one killed by a signal first (its peers then fail for want of it)."""
    failed = [node for node, code in enumerate(codes) if code not in (None, 0)]
    killed = [node for node in failed if not 0 <= (codes[node] or 0) <= 128]  # by a signal
    return (killed or failed or [None])[0]


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code  # killed by a signal -> the shell's 128 + N


def _read_left_behind(channel: Path) -> list[str]:
    try:
        return json.loads((channel / LEFT_BEHIND_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []


_stop = threading.Event()  # set when mtc received a TERM, INT or HUP: runs end, no new one starts
_stop_signal = [0]


def _record_stop(signum: int, _frame: object) -> None:
    _stop_signal[0] = signum
    _stop.set()


@contextmanager
def signals_passed_on() -> Iterator[None]:
    """While runs go on, a TERM, INT or HUP to mtc is passed on to the run's processes instead of ending mtc
    (which would leave them unsupervised). Only the main thread can set handlers; sweeps set them once."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is (
        _record_stop
    ):
        yield
        return
    _stop.clear()
    previous = {signum: signal.signal(signum, _record_stop) for signum in FORWARDED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
