"""Put a rendered module on disk safely: verify it, write it atomically, or compare it for ``--check``.

The rendered text is parsed and compiled before anything is written, so mtc never writes a module that
Python cannot compile. Writing goes to a temporary file in the target's folder, fsynced, then renamed over the
target: a reader sees the old file or the new one, never half of one, even if mtc is killed (SIGKILL) at any
moment (:func:`runtime.core.files.write_atomic`). A temporary left by a writer that was killed is removed by
the next write of the same target, once its PID is no longer running. Only a regular
file (or a new path) is ever replaced: a device node, FIFO, socket or directory at the target is refused.
"""

from __future__ import annotations

import difflib
import stat
from pathlib import Path

from runtime.core import files
from runtime.core.files import UnreadableFile, file_type, read_limited

MAX_MODULE_BYTES = 16 * 1024 * 1024  # a module on disk larger than this is not one mtc wrote: not compared


class InternalError(Exception):
    """mtc produced something it should not have: a bug in mtc, not in the spec."""


class UnsafeTarget(OSError):
    """The output path is something other than a regular file or a new path; nothing was written."""


def verify(source: str, filename: str) -> None:
    """Raise InternalError unless ``source`` is Python that parses and compiles."""
    import ast

    try:
        compile(ast.parse(source, filename=filename), filename, "exec")
    except SyntaxError as exc:
        problem = f"line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # e.g. a NUL character in the source
        problem = str(exc)
    else:
        return
    raise InternalError(
        f"mtc rendered invalid Python for {filename} ({problem}); nothing was written. "
        "This is a bug in mtc: please report it with the spec."
    )


def write_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8, newlines as given) in one rename; UnsafeTarget (an OSError)
    when ``path`` is not a regular file or a new path."""
    target = Path(path)
    refuse_unsafe_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    # again just before the rename: the path may have changed meanwhile
    files.write_atomic(target, text.encode("utf-8"), before_replace=refuse_unsafe_target)


def refuse_unsafe_target(target: Path) -> None:
    """Raise UnsafeTarget unless ``target`` (through any symlink) is a regular file or does not exist.

    A rename over a device node or FIFO would replace it with a regular file (as root, ``-o /dev/full``
    replaced the device); over a directory it fails with an error that does not say why.
    """
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnsafeTarget(f"cannot use the output path: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISREG(mode):
        return
    via = " (through a symlink)" if target.is_symlink() else ""
    hint = (
        "give a file path inside it, e.g. DIR/app.py" if stat.S_ISDIR(mode) else "give a path to a .py file"
    )
    raise UnsafeTarget(f"is {file_type(mode)}{via}; mtc writes only to a regular file or a new path: {hint}")


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of ``target`` left by writers that no longer run; the removed paths."""
    return files.remove_stale_temporaries(target.parent, target.name)


def difference(path: str | Path, text: str) -> str | None:
    """A unified diff from the file at ``path`` to ``text``; None when they are identical."""
    target = Path(path)
    refuse_unsafe_target(target)
    try:
        current = read_limited(target, limit=MAX_MODULE_BYTES, kind="module").decode(errors="replace")
        label = str(path)
    except UnreadableFile as exc:
        if exc.rule != "load/not-found":
            raise UnsafeTarget(str(exc)) from None
        current, label = "", f"{path} (missing)"
    if current == text:
        return None
    lines = difflib.unified_diff(
        current.splitlines(keepends=True), text.splitlines(keepends=True), label, f"{path} (from the spec)"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
