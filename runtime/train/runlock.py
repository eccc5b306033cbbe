"""One training per run directory: an flock on ``<run_dir>/.lock``, held for the whole training.

A second training on the same run directory stops at once with the first one's PID, host and start time,
instead of interleaving checkpoints and ``metrics.jsonl`` lines with it. The kernel releases an flock when
its process dies, so a lock left by a killed run never blocks the next one (the file itself stays, holding
the last holder's details). On a file system without flock the run goes on unlocked, with a notice.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.core.errors import UserError

LOCK_FILE = ".lock"


class RunDirError(UserError, RuntimeError):
    """The run directory cannot be used: another training holds it, or it cannot be written."""


@contextmanager
def hold(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's lock (the folder must exist) until the block ends."""
    path = run_dir / LOCK_FILE
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise RunDirError(
            f"output_dir: cannot write in {run_dir} ({exc.strerror or exc}); point output_dir at a writable "
            "folder"
        ) from None
    with handle:
        if _lock(handle, path):
            _describe_holder(handle)
        try:
            yield
        finally:
            handle.truncate(0)


def _lock(handle, path: Path) -> bool:
    """True when locked; raises RunDirError when another process holds the lock."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunDirError(
            f"{path.parent} is in use by another training ({_holder(handle)}); wait for it to end, or train "
            "this config under another run_name"
        ) from None
    except OSError as exc:  # ENOLCK, EOPNOTSUPP, ENOSYS...: a network or FUSE file system without flock
        print(
            f"notice: {path} cannot be locked on this file system ({exc.strerror}); make sure no other "
            "training uses this run directory",
            file=sys.stderr,
        )
        return False
    return True


def _describe_holder(handle) -> None:
    handle.truncate(0)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n")
    handle.flush()


def _holder(handle) -> str:
    handle.seek(0)
    try:
        holder = json.loads(handle.read())
        return f"PID {holder['pid']} on {holder['host']}, started {holder['started']}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet written its PID"
