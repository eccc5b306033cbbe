"""The child process of the local backend (:mod:`compiler.backends.local.supervise`): confine, guard, call
the run target.

Started as ``python -m compiler.backends.local.child`` with its instructions in ``MTC_LOCAL_CALL`` (JSON:
target,
kwargs, cores, read-only folders, whether to use a user namespace, the side-channel folder, the supervisor's
pid, a pipe to wait on until the supervisor has added it to the run's group). The process splits in two:

- the **guard** (this process) confines itself while it is still single-threaded, which a mount namespace
  requires (cores; read-only bind mounts in a private mount namespace, through a user namespace when not
  root), becomes a child subreaper, so every orphan of the function (a double-forked daemon too) is
  re-parented to it and stays in its tree, and dies with ``mtc``: its parent-death signal is SIGTERM, which
  it forwards like a TERM, INT or HUP that ``mtc`` sends, then kills what is left after a grace period.
  When the function ends, the guard kills any process it left behind and lists them in the side channel;
- the **target** (a forked child, SIGKILLed by the kernel if the guard dies) imports and calls the target;
  a coroutine function runs in an event loop. Its exit code is the function's own: a ``sys.exit(65)`` is 65.
  A user's mistake the runtime reports (bad config, data, checkpoint) is written to the side channel
  (``rejected``) and exits 1, so the supervisor knows not to retry it without sharing an exit code with
  the user's code.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compiler.backends.local.serve import SERVE_TARGET
from compiler.platform.extras import extra_providing, missing_extra_message
from runtime.core.env import LOCAL_CALL as CALL_ENV
from runtime.core.errors import UserError, user_message

REJECTED_FILE = "rejected"  # in the side-channel folder: the runtime's message for a user's mistake
CALLED_FILE = "called"  # in the side-channel folder: the target is imported and about to be called
LEFT_BEHIND_FILE = "left_behind.json"  # ["sleep 300 (pid 12)", ...] killed after the function ended
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
GRACE_S = 3.0  # after a forwarded signal, before the rest is killed
LEFTOVER_GRACE_S = 1.0  # after the function ends, for its helpers to exit by themselves
POLL_S = 0.05

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
KEPT_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC  # statvfs f_flag uses the same bits; a remount must keep them
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36

_libc = ctypes.CDLL(None, use_errno=True)


def main() -> int:
    call = json.loads(os.environ[CALL_ENV])
    _die_with_parent(signal.SIGTERM, call["supervisor"])
    os.read(call["go_fd"], 2)  # mtc has added this process to the run's group (EOF: mtc is gone)
    os.close(call["go_fd"])
    _pin_cores(call["cores"], call.get("first_core", 0))
    if call["read_only"] and call["namespaces"] and not _mount_read_only(call["read_only"], os.geteuid()):
        print(
            "mtc run: notice: read-only volumes are NOT enforced (no permission for a mount namespace)",
            file=sys.stderr,
        )
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    for signum in FORWARDED:  # set before the fork: a signal in between is not lost
        signal.signal(signum, _forward)
    guard = os.getpid()
    target = os.fork()
    if target == 0:
        for signum in FORWARDED:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
        _die_with_parent(signal.SIGKILL, guard)
        return call_target(call["target"], call["kwargs"], Path(call["channel"]))
    return _guard(target, Path(call["channel"]))


def call_target(target: str, kwargs: dict, channel: Path) -> int:
    """Import and call ``target`` (awaiting it when it is a coroutine); its exceptions propagate, except a
    user's mistake the runtime reports: that goes to the side channel and exits 1."""
    marker = channel / CALLED_FILE
    if target in (
        TRIAL_TARGET,
        SERVE_TARGET,
    ):  # the trial's own target, the served one: they end the start-up
        kwargs, marker = {**kwargs, "called_marker": str(marker)}, None
    try:
        invoke(target, kwargs, called=marker.touch if marker else None)
    except Exception as exc:
        message = _user_message(exc)
        if message is None:
            raise  # a bug, not a user's mistake: the traceback is what helps
        print(message, file=sys.stderr)
        (channel / REJECTED_FILE).write_text(message, encoding="utf-8")
        return 1
    return 0


def invoke(target: str, kwargs: dict[str, Any], called: Callable[[], Any] | None = None) -> Any:
    """Import ``target`` (``module:function``), call it with ``kwargs`` and return its result, awaited in an
    event loop when the target is async. ``called`` runs between the import and the call: the end of the
    startup that a ``startup_timeout`` bounds."""
    module_name, _, entry = target.partition(":")
    function = getattr(importlib.import_module(module_name), entry)
    if called is not None:
        called()
    result = function(**kwargs)
    return asyncio.run(_awaited(result)) if inspect.isawaitable(result) else result


def run_trial(target: str, kwargs: dict[str, Any], result_file: str, called_marker: str | None = None) -> Any:
    """A local sweep trial: call ``target`` with ``kwargs`` and save what it returns as JSON in
    ``result_file`` (values JSON cannot hold become their ``str``), for the sweep's summary table.
    ``called_marker`` is created once ``target`` is imported, as for any call (the startup_timeout)."""
    result = invoke(target, kwargs, called=Path(called_marker).touch if called_marker else None)
    Path(result_file).write_text(json.dumps(result, default=str), encoding="utf-8")
    return result


TRIAL_TARGET = f"{__spec__.name}:{run_trial.__name__}"  # __spec__: the same under `python -m`


async def _awaited(awaitable):  # asyncio.run takes a coroutine, not any awaitable
    return await awaitable


def _user_message(error: Exception) -> str | None:
    """The runtime's own message for a user's mistake (bad config, data, checkpoint), or the extra to install
    for a module that is not there, else None."""
    extra = extra_providing(error.name) if isinstance(error, ModuleNotFoundError) else None
    if extra is not None:
        return "mtc run: error: " + missing_extra_message(extra, "this function", [error.name])
    return user_message(error) if isinstance(error, UserError) else None


# -------------------------------------------------------------------------------------------------- guard

_stopping: dict[str, float] = {}  # "deadline" once a TERM, INT or HUP arrived


def _forward(signum: int, _frame: object) -> None:
    """Pass the signal on to every process under the guard; they get GRACE_S to finish."""
    _stopping.setdefault("deadline", time.monotonic() + GRACE_S)
    for pid in _descendants():
        try:
            os.kill(pid, signum)
        except OSError:
            continue


def _guard(target: int, channel: Path) -> int:
    """Reap every orphan until the target ends; then end what it left behind. The target's exit code."""
    code = None
    while code is None:
        code = _reap(target)
        if code is None and time.monotonic() > _stopping.get("deadline", float("inf")):
            _kill(_descendants())
        time.sleep(POLL_S)
    left = _end_left_behind()
    if left:
        (channel / LEFT_BEHIND_FILE).write_text(json.dumps(left), encoding="utf-8")
    return code


def _reap(target: int) -> int | None:
    """Reap every child that has ended; the target's exit code when it is one of them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == target:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by a signal -> the shell's 128 + N


def _end_left_behind() -> list[str]:
    """Give the processes still under the guard LEFTOVER_GRACE_S to exit, then kill them; their labels."""
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while _descendants() and time.monotonic() < deadline:
        _reap(-1)
        time.sleep(POLL_S)
    killed: list[str] = []
    while pids := _descendants():
        killed += [label for label in map(_label, pids) if label not in killed]
        _kill(pids)
        time.sleep(POLL_S)
        _reap(-1)
    return killed


def _descendants() -> list[int]:
    """Every live process under this one, from /proc (the guard imports nothing heavy)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            state, parent = stat.rpartition(")")[2].split()[:2]
            if state != "Z":
                children.setdefault(int(parent), []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _label(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        command = "?"
    return f"{command.strip() or '?'} (pid {pid})"


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _die_with_parent(signum: int, parent: int) -> None:
    """The kernel sends ``signum`` when the parent ends; if it already has, act as if it just did."""
    _libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


# ------------------------------------------------------------------------------------------- confinement


def _pin_cores(cores: int, first: int) -> None:
    """Pin to ``cores`` of the usable cores from index ``first`` (an emulated node takes its own slice)."""
    if hasattr(os, "sched_setaffinity"):
        usable = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, usable[first : first + cores] or usable[:cores])


def _mount_read_only(folders: list[str], uid: int) -> bool:
    """Enter a private mount namespace (inside a user namespace when not root), bind each folder read-only
    onto itself; False when not permitted."""
    _libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
    ]
    if uid == 0:
        if _libc.unshare(CLONE_NEWNS) != 0:
            return False
    elif not _enter_user_namespace(uid, os.getegid()):
        return False
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    for folder in folders:
        path = os.fsencode(folder)
        kept = os.statvfs(folder).f_flag & KEPT_FLAGS
        if _libc.mount(path, path, None, MS_BIND | MS_REC, None) != 0:
            return False
        if _libc.mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept, None) != 0:
            return False
    return True


def _enter_user_namespace(uid: int, gid: int) -> bool:
    """A user and mount namespace where this user keeps its own ids (mapped onto themselves)."""
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        return False
    try:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
