"""Memory limit and membership of one local run's processes: one interface, three mechanisms.

The local backend (:mod:`compiler.backends.local.supervise`) asks :func:`choose` for a :class:`Watch` per
attempt, adds the child to it, samples it, and at the end kills whatever is left in it. The mechanisms,
probed in this order:

- ``cgroup2``: a child of this process's own cgroup v2 group, when the memory controller is delegated there
  (listed in the parent's ``cgroup.subtree_control``, or enabled by us). ``memory.max`` is the limit and
  ``memory.swap.max`` 0; the kernel counts anonymous memory, page cache, shared memory and tmpfs, reclaims
  cache at the limit and OOM-kills inside the group when it cannot, as in a Modal container.
  ``memory.events`` ``oom_kill`` tells us it happened; ``cgroup.kill`` ends every member at once.
- ``cgroup1``: the same with the cgroup v1 memory controller (``memory.limit_in_bytes``, the
  ``memory.memsw`` limit where swap accounting exists, ``oom_kill`` in ``memory.oom_control``, and
  ``cgroup.procs`` read and killed until it is empty).
- ``pss``: no cgroup. The proportional set size of every process in the tree (shared and copy-on-write pages
  split between the processes that map them, so forked DataLoader workers and ``MAP_SHARED`` memory count
  once), plus the files created in ``/dev/shm`` since the start that no process of the tree maps (those
  that are mapped are already in the PSS). That part cannot be attributed to a process: a file another
  program creates in ``/dev/shm`` during the run counts too. The limit is enforced by sampling.

In a cgroup the usage and peak reported are the working set (usage minus inactive page cache, as
``docker stats`` shows it), so a dataset read once does not look like memory held.
``MTC_LIMITS=cgroup2|cgroup1|pss`` forces one mechanism (``auto``, the default, probes).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from compiler.backends.local.processes import KILL_WAIT_S, MIB, existing, kill, label, running
from compiler.backends.local.pss import PssWatch
from runtime.core.env import LIMITS as LIMITS_ENV

MECHANISMS = ("cgroup2", "cgroup1", "pss")
MECHANISM_TEXT = {
    "cgroup2": "a cgroup v2 group (memory.max, enforced by the kernel)",
    "cgroup1": "a cgroup v1 memory group (memory.limit_in_bytes, enforced by the kernel)",
    "pss": "the PSS of the process tree, sampled every 50 ms (no cgroup memory controller here)",
}


class Watch(Protocol):
    """The processes of one attempt: their memory, and the means to end them all."""

    def add(self, pid: int) -> None: ...

    def usage_mib(self) -> int: ...  # now; also updates the peak

    def peak_mib(self) -> int: ...

    def exceeded(self) -> bool: ...  # the memory limit was hit (the kernel OOM-killed, or a sample was above)

    def members(self) -> list[psutil.Process]: ...

    def kill_all(self) -> list[str]: ...  # "sleep 300 (pid 12)" for each process it had to kill

    def close(self) -> None: ...


class LimitsError(Exception):
    """``MTC_LIMITS`` names a mechanism this machine does not offer."""


def choose(limit_mib: int | None, run_id: str) -> Watch:
    """The first mechanism that works here (or the one ``MTC_LIMITS`` forces), set to ``limit_mib``."""
    forced = _forced()
    for name in MECHANISMS if forced == "auto" else (forced,):
        if name == "pss":
            return PssWatch(limit_mib)
        parent = _cgroup2_parent() if name == "cgroup2" else _cgroup1_parent()
        if parent is not None:
            try:
                return CgroupWatch(name, parent, limit_mib, run_id)
            except OSError as exc:
                if forced != "auto":
                    raise LimitsError(
                        f"${LIMITS_ENV}={forced}: cannot create a group in {parent}: {exc}"
                    ) from None
        elif forced != "auto":
            raise LimitsError(f"${LIMITS_ENV}={forced}: no usable {name} memory controller on this machine")
    raise AssertionError("unreachable: pss always works")


def describe_choice() -> str:
    """Which mechanism a run would use here (the start line names it), without creating anything."""
    forced = _forced()
    if forced != "auto":
        return forced
    if _cgroup2_parent() is not None:
        return "cgroup2"
    return "cgroup1" if _cgroup1_parent() is not None else "pss"


def _forced() -> str:
    forced = os.environ.get(LIMITS_ENV, "auto").strip().lower() or "auto"
    if forced not in ("auto", *MECHANISMS):
        raise LimitsError(f"${LIMITS_ENV}={forced!r}: expected auto, {', '.join(MECHANISMS)}")
    return forced


# ------------------------------------------------------------------------------------------------ cgroups


@dataclass(frozen=True)
class CgroupFiles:
    """The names of the files one cgroup version uses for the same things."""

    limit: str
    usage: str
    oom_events: str  # holds a line "oom_kill N"
    inactive_file: str  # key in memory.stat
    swap_limit: str | None


CGROUP_FILES = {
    "cgroup2": CgroupFiles(
        "memory.max", "memory.current", "memory.events", "inactive_file", "memory.swap.max"
    ),
    "cgroup1": CgroupFiles(
        "memory.limit_in_bytes",
        "memory.usage_in_bytes",
        "memory.oom_control",
        "total_inactive_file",
        "memory.memsw.limit_in_bytes",
    ),
}


def _own_cgroup(controller: str) -> str | None:
    """This process's group path for a v1 ``controller`` (``""`` = the v2 unified line)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _mount_point(fstype: str, option: str | None) -> Path | None:
    """Where a cgroup hierarchy of ``fstype`` (with ``option`` among its super options) is mounted."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(tail) >= 3 and tail[0] == fstype and (option is None or option in tail[2].split(",")):
            return Path(fields[4])
    return None


def _cgroup2_parent() -> Path | None:
    """This process's cgroup v2 group when its memory controller can be used for child groups there."""
    mount, own = _mount_point("cgroup2", None), _own_cgroup("")
    if mount is None or own is None:
        return None
    group = mount / own.lstrip("/")
    try:
        if "memory" not in (group / "cgroup.controllers").read_text().split():
            return None
        if "memory" not in (group / "cgroup.subtree_control").read_text().split():
            (group / "cgroup.subtree_control").write_text("+memory")  # fails while the group has members
    except OSError:
        return None
    return group if os.access(group, os.W_OK) else None


def _cgroup1_parent() -> Path | None:
    mount, own = _mount_point("cgroup", "memory"), _own_cgroup("memory")
    if mount is None or own is None:
        return None
    group = mount / own.lstrip("/")
    return group if (group / "memory.limit_in_bytes").exists() and os.access(group, os.W_OK) else None


class CgroupWatch:
    """A fresh child group ``mtc-<run id>`` under this process's own memory cgroup (v1 or v2)."""

    def __init__(self, version: str, parent: Path, limit_mib: int | None, run_id: str) -> None:
        self.version, self.files = version, CGROUP_FILES[version]
        _remove_stale_groups(parent)
        self.path = parent / f"mtc-{os.getpid()}-{run_id}"
        self.path.mkdir()
        if limit_mib is not None:
            self._write(self.files.limit, str(limit_mib * MIB))
            if self.files.swap_limit and (self.path / self.files.swap_limit).exists():
                # no swap beyond the limit: v2 takes the swap alone (0), v1 memory + swap together
                self._write(self.files.swap_limit, "0" if version == "cgroup2" else str(limit_mib * MIB))
        self.ooms_before = self._oom_kills()
        self.peak = 0

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value)

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _oom_kills(self) -> int:
        for line in self._read(self.files.oom_events).splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def add(self, pid: int) -> None:
        self._write("cgroup.procs", str(pid))

    def usage_mib(self) -> int:
        try:
            usage = int(self._read(self.files.usage))
            stat = dict(line.split(" ", 1) for line in self._read("memory.stat").splitlines())
        except OSError:
            return 0
        working_set = max(0, usage - int(stat.get(self.files.inactive_file, 0)))
        self.peak = max(self.peak, working_set // MIB)
        return working_set // MIB

    def peak_mib(self) -> int:
        return self.peak

    def exceeded(self) -> bool:
        try:
            return self._oom_kills() > self.ooms_before
        except OSError:
            return False

    def members(self) -> list[psutil.Process]:
        try:
            pids = [int(pid) for pid in self._read("cgroup.procs").split()]
        except OSError:
            return []
        return list(existing(pids))

    def kill_all(self) -> list[str]:
        killed: list[str] = []
        deadline = time.monotonic() + KILL_WAIT_S
        while (alive := [p for p in self.members() if running(p)]) and time.monotonic() < deadline:
            killed += [label(p) for p in alive if label(p) not in killed]
            if (self.path / "cgroup.kill").exists():
                self._write("cgroup.kill", "1")
            else:
                kill(alive)
            psutil.wait_procs(alive, timeout=1)
        return killed

    def close(self) -> None:
        self.kill_all()
        deadline = time.monotonic() + KILL_WAIT_S
        while True:
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    return  # left for the next run's sweep of stale groups
                time.sleep(0.05)


def _remove_stale_groups(parent: Path) -> None:
    """Empty ``mtc-<pid>-*`` groups whose ``mtc`` is gone (it was killed before it could remove them)."""
    for group in parent.glob("mtc-*-*"):
        owner = group.name.split("-")[1]
        if owner.isdigit() and not psutil.pid_exists(int(owner)):
            try:
                group.rmdir()
            except OSError:
                pass  # still has members: a process that outlived its run; the group keeps it visible
