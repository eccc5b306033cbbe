"""Put a rendered module on disk safely: verify it, write it atomically, or compare it for ``--check``.

The rendered text is parsed and compiled before anything is written, so mtc never writes a module that
Python cannot compile. Writing goes to a temporary file in the target's folder, fsynced, then renamed over the
target: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path


class InternalError(Exception):
    """mtc produced something it should not have: a bug in mtc, not in the spec."""


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
    """Replace ``path`` with ``text`` (UTF-8, newlines as given) in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(target)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def difference(path: str | Path, text: str) -> str | None:
    """A unified diff from the file at ``path`` to ``text``; None when they are identical."""
    target = Path(path)
    try:
        current = target.read_bytes().decode("utf-8", errors="replace")
        label = str(path)
    except FileNotFoundError:
        current, label = "", f"{path} (missing)"
    if current == text:
        return None
    lines = difflib.unified_diff(
        current.splitlines(keepends=True), text.splitlines(keepends=True), label, f"{path} (from the spec)"
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _mode_for(target: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual 0o666 less the umask."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. Windows); the rename itself is still atomic
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
