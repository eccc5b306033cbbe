"""The memory watch where no cgroup can be made: the proportional set size (PSS) of the process tree under
the child, shared memory in ``/dev/shm`` included."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from compiler.backends.local.processes import KILL_WAIT_S, MIB, kill, label, running, signal_all

SHM_DIR = Path("/dev/shm")


@dataclass
class PssWatch:
    """The process tree under the child (which is a subreaper, so orphans stay in it), by PSS."""

    limit_mib: int | None
    root: psutil.Process | None = None
    peak: int = 0
    over: bool = False
    shm_before: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        self.shm_before = frozenset(inode for inode, _ in _shm_files())

    def add(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def members(self) -> list[psutil.Process]:
        if self.root is None:
            return []
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            tree = []
        return tree + [p for p in self._same_session() if p not in tree]

    def _same_session(self) -> Iterator[psutil.Process]:
        """Processes still in the child's session (the child starts one): what the tree no longer shows."""
        assert self.root is not None
        for process in psutil.process_iter():
            try:
                if os.getsid(process.pid) == self.root.pid:
                    yield process
            except OSError:
                continue

    def usage_mib(self) -> int:
        if self.root is None:
            return 0
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0
        total, mapped = 0, set()
        for process in tree:
            try:
                total += process.memory_full_info().pss
                mapped |= _mapped_shm_inodes(process.pid)
            except (psutil.Error, OSError):
                continue
        total += sum(size for inode, size in _shm_files() if inode not in self.shm_before | mapped)
        used = total // MIB
        self.peak = max(self.peak, used)
        self.over = self.over or (self.limit_mib is not None and used > self.limit_mib)
        return used

    def peak_mib(self) -> int:
        return self.peak

    def exceeded(self) -> bool:
        return self.over

    def kill_all(self) -> list[str]:
        """Stop the child first: while it is stopped it still adopts orphans, so none escapes the tree; then
        kill the rest until nothing remains under it, then the child."""
        if self.root is None:
            return []
        killed: list[str] = []
        signal_all([self.root], signal.SIGSTOP)
        deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < deadline:
            rest = [p for p in self.members() if p != self.root and running(p)]
            if not rest:
                break
            killed += [label(p) for p in rest if label(p) not in killed]
            kill(rest)
            psutil.wait_procs(rest, timeout=1)
        kill([self.root])
        return killed

    def close(self) -> None:
        self.kill_all()


def _shm_files() -> Iterator[tuple[int, int]]:
    """(inode, bytes held) of each file in /dev/shm."""
    try:
        entries = list(os.scandir(SHM_DIR))
    except OSError:
        return
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        yield info.st_ino, info.st_blocks * 512


def _mapped_shm_inodes(pid: int) -> set[int]:
    """Inodes of the /dev/shm files ``pid`` maps (their resident pages are in its PSS already)."""
    inodes = set()
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith(str(SHM_DIR) + "/"):
                inodes.add(int(fields[4]))
    return inodes
