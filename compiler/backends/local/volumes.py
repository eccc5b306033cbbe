"""Read-only volumes where no mount namespace can be made: write permission removed for the run (never
through a symlink), recorded first in a journal in the volumes dir so that a run killed before it could
restore the modes is undone by the next one. Also the volumes' local folders, made before a run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

JOURNAL_PREFIX = ".read-only-journal-"  # + "<pid>-<n>.json" in the volumes dir: modes to restore


class LocalRunError(Exception):
    """The run cannot start here (a volume's folder cannot be made); the message says what to do."""


def make_folders(folders: list[Path]) -> None:
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise LocalRunError(
                f"{folder} (a volume's local folder) exists but is not a folder; move it away, or choose "
                "another place with --volumes-dir"
            ) from None
        except OSError as exc:
            raise LocalRunError(
                f"cannot create {folder} (a volume's local folder): {exc.strerror}; choose a writable place "
                "with --volumes-dir or $MTC_VOLUMES_DIR"
            ) from None


_namespaces: list[bool] = []


def namespaces_available() -> bool:
    """Whether the child can make a mount namespace: as root, or through a user namespace (probed once)."""
    if os.geteuid() == 0:
        return True
    if not _namespaces:
        probe = "import ctypes, os; os._exit(ctypes.CDLL(None).unshare(0x10000000 | 0x20000) != 0)"
        _namespaces.append(subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0)
    return _namespaces[0]


@contextmanager
def write_protected(folders: list[Path], volumes_root: Path) -> Iterator[None]:
    """Where the child cannot make a mount namespace, remove write permission from read-only volumes for the
    run, then restore it. Symlinks are never followed (a link to a folder outside the volume is left alone).
    The modes are first written to a journal, so that a run killed before restoring them is undone by the
    next one (:func:`restore_abandoned`)."""
    if not folders or namespaces_available():
        yield
        return
    saved = {str(path): path.lstat().st_mode for folder in folders for path in _tree_without_links(folder)}
    journal = volumes_root / f"{JOURNAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
    _write_journal(journal, saved)
    for path, mode in saved.items():
        os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield
    finally:
        _restore_modes(saved)
        journal.unlink(missing_ok=True)


def _tree_without_links(folder: Path) -> Iterator[Path]:
    """``folder`` and everything under it that is not a symlink, never descending through one."""
    yield folder
    for parent, dirs, files in os.walk(folder, followlinks=False):
        for name in (*dirs, *files):
            path = Path(parent, name)
            if not path.is_symlink():
                yield path


def _write_journal(journal: Path, modes: dict[str, int]) -> None:
    """Atomically: the owner (pid and start time, so a reused pid is not taken for it) and the modes."""
    import psutil

    owner = {"pid": os.getpid(), "started": psutil.Process().create_time()}
    temporary = journal.with_name(journal.name + ".tmp")
    temporary.write_text(json.dumps({"owner": owner, "modes": modes}), encoding="utf-8")
    os.replace(temporary, journal)


def _restore_modes(modes: dict[str, int]) -> None:
    for path in reversed(list(modes)):  # children before their folder, which may have no write bit yet
        try:
            if not Path(path).is_symlink():
                os.chmod(path, stat.S_IMODE(modes[path]))
        except FileNotFoundError:
            continue


def restore_abandoned(volumes_root: Path, say: Callable[[str], None]) -> None:
    """Restore the modes a killed run left removed, from its journal, when that run's process is gone."""
    import psutil

    for journal in sorted(volumes_root.glob(f"{JOURNAL_PREFIX}*.json")):
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
            owner = record["owner"]
            alive = (
                psutil.pid_exists(owner["pid"])
                and psutil.Process(owner["pid"]).create_time() == owner["started"]
            )
        except (OSError, ValueError, KeyError, TypeError, psutil.Error):
            continue
        if alive:
            continue
        _restore_modes(record["modes"])
        journal.unlink(missing_ok=True)
        say(
            f"restored the write permission that a killed run (pid {owner['pid']}) had removed from "
            "read-only volumes"
        )
