"""Reading a user's file within limits (size, kind of file, a silent FIFO) and writing one atomically."""

from __future__ import annotations

import math
import os
import re
import select
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from runtime.core.env import READ_TIMEOUT as READ_TIMEOUT_ENV

MAX_FILE_BYTES = 1024 * 1024
READ_TIMEOUT_S = 10.0


def path_test(test: Callable[[Path], bool], path: Path) -> bool:
    """``test(path)`` (``Path.is_file``, ``Path.is_dir``, ``Path.exists``), False for a name the system
    refuses: too long for the file system, or holding a NUL byte."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


class UnreadableFile(Exception):
    """A user's file that cannot be read within the limits; ``rule`` names the problem (``load/...``)."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


def read_limited(path: str | Path, *, limit: int = MAX_FILE_BYTES, kind: str = "YAML file") -> bytes:
    """The bytes of the file at ``path``, refused beyond ``limit`` bytes, from any kind of file.

    The limit is counted while reading (at most ``limit + 1`` bytes are read), never taken from ``stat``,
    so ``/dev/stdin``, ``/dev/zero`` and a pipe are bounded like a regular file. A FIFO or stream that stays
    silent for ``$MTC_READ_TIMEOUT`` seconds (default 10) is given up on, so a FIFO with no writer cannot
    hang the caller. Raises :class:`UnreadableFile` with a message that names the problem.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile("no such file", "load/not-found") from None
    except IsADirectoryError:
        raise UnreadableFile(f"is a directory; expected a {kind}", "load/not-a-file") from None
    except PermissionError:
        raise UnreadableFile("cannot read the file: permission denied", "load/unreadable") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnreadableFile(f"cannot read the file: {_os_reason(exc)}", "load/unreadable") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile(f"is a directory; expected a {kind}", "load/not-a-file")
        stream = not (stat.S_ISREG(mode) or stat.S_ISBLK(mode))  # a FIFO, a pipe, a terminal, a device
        raw = _read_up_to(descriptor, limit + 1, _read_timeout() if stream else None)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {_os_reason(exc)}", "load/unreadable") from None
    finally:
        os.close(descriptor)
    if len(raw) > limit:
        source = "the file holds" if stat.S_ISREG(mode) else f"{file_type(mode)} that gave"
        message = f"{source} more than {limit} bytes; a {kind} is limited to {_size(limit)}"
        raise UnreadableFile(message, "load/too-large")
    return raw


def file_type(mode: int) -> str:
    """What a ``stat`` mode is, in words: "a regular file", "a FIFO or pipe", "a character device", ..."""
    return _FILE_TYPES.get(stat.S_IFMT(mode), "an unknown kind of file")


_FILE_TYPES = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO or pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


def _read_up_to(descriptor: int, wanted: int, timeout: float | None) -> bytes:
    """Up to ``wanted`` bytes; with a ``timeout``, waiting at most that long for each chunk."""
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        if timeout is not None and not _readable_within(descriptor, timeout):
            message = (
                f"nothing to read for {timeout:g} s: a FIFO or pipe with no writer? Give a regular file, or "
                f"set {READ_TIMEOUT_ENV} to wait longer"
            )
            raise UnreadableFile(message, "load/timeout")
        try:
            chunk = os.read(descriptor, min(1 << 16, wanted - size))
        except BlockingIOError:  # woken without data (a terminal, a racing reader): wait again
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _readable_within(descriptor: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout * 1000))


def _read_timeout() -> float:
    try:
        value = float(os.environ.get(READ_TIMEOUT_ENV, READ_TIMEOUT_S))
    except ValueError:
        return READ_TIMEOUT_S
    return value if math.isfinite(value) and value > 0 else READ_TIMEOUT_S


def _os_reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"


# ---------------------------------------------------------------------------------- atomic writes


def write_atomic(
    path: str | Path,
    data: bytes | Callable[[BinaryIO], None],
    *,
    before_replace: Callable[[Path], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` (bytes, or a function that writes them to the open file) so that
    readers see the old or the new content, never a mix, even when the writer is killed at any moment.

    The data goes to a temporary file in the same folder (``.<name>.<writer pid>.<random>.tmp``), fsynced,
    then renamed over ``path``, then the folder is fsynced. An existing file keeps its permissions.
    ``before_replace(path)`` runs just before the rename (to refuse a path that changed meanwhile, or to move
    the current file aside)."""
    path = Path(path)
    mode = _mode_for(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if before_replace is not None:
            before_replace(path)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporary files in ``folder`` (of the file ``name`` only, when given) left by killed
    writers; returns them.

    A file is stale when the PID in its name is no running process, or is this process (which calls this
    before it writes anything: a restarted container often gets the PID its killed predecessor had)."""
    pattern = re.compile(rf"\.({re.escape(name) if name else '.+'})\.(\d+)\.[^.]+\.tmp")
    removed = []
    for candidate in folder.iterdir():
        match = pattern.fullmatch(candidate.name)
        if not match or not candidate.is_file():
            continue
        pid = int(match.group(2))
        if pid == os.getpid() or not process_exists(pid):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def process_exists(pid: int) -> bool:
    """Whether a process with this PID runs (another user's counts); used to tell a dead writer's files."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process, or no such PID at all
        return False
    except PermissionError:  # another user's process
        return True
    return True


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported here; the rename itself is still atomic
    finally:
        os.close(fd)
