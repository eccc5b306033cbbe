"""The child process of the local backend (:mod:`compiler.localrun`): confine itself, call the run target.

Started as ``python -m compiler.local_child`` with its instructions in ``MTC_LOCAL_CALL`` (JSON: target,
kwargs, cores, read-only folders). The confinement happens before the target is imported, while the process
is still single-threaded, which a mount namespace requires.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import sys

from compiler.localrun import EXIT_REJECTED

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC  # statvfs f_flag uses the same bits; a remount must keep them


def main() -> int:
    call = json.loads(os.environ["MTC_LOCAL_CALL"])
    _pin_cores(call["cores"])
    if call["read_only"] and os.geteuid() == 0 and not _mount_read_only(call["read_only"]):
        print(
            "mtc run: notice: read-only volumes are NOT enforced (no permission for a mount namespace)",
            file=sys.stderr,
        )
    module_name, entry = call["target"].split(":")
    target = getattr(importlib.import_module(module_name), entry)
    try:
        target(**call["kwargs"])
    except Exception as exc:
        message = _user_message(exc)
        if message is None:
            raise  # a bug, not a user's mistake: the traceback is what helps
        print(message, file=sys.stderr)
        return EXIT_REJECTED
    return 0


def _user_message(error: Exception) -> str | None:
    """The runtime's own message for a user's mistake (bad config, data, checkpoint), else None."""
    try:
        from runtime.train import USER_ERRORS, user_message
    except ImportError:
        return None
    return user_message(error) if isinstance(error, USER_ERRORS) else None


def _pin_cores(cores: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        usable = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, usable[:cores])


def _mount_read_only(folders: list[str]) -> bool:
    """Enter a private mount namespace, bind each folder read-only onto itself; False when not permitted."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    for folder in folders:
        path = os.fsencode(folder)
        kept = os.statvfs(folder).f_flag & KEPT_FLAGS
        if libc.mount(path, path, None, MS_BIND | MS_REC, None) != 0:
            return False
        if libc.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept, None) != 0:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
