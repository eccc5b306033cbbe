"""runtime.train.runlock: one training per run directory; a holder's details in the refusal; no lock, no
crash."""

from __future__ import annotations

import errno
import fcntl
import os
import socket

import pytest

from runtime.core.errors import UserError
from runtime.train import runlock


def test_a_held_run_directory_is_refused_with_the_holders_pid_and_host(tmp_path):
    with runlock.hold(tmp_path):
        with pytest.raises(runlock.RunDirError) as refused:  # a second open file: flock refuses it too
            with runlock.hold(tmp_path):
                pass
    assert f"(PID {os.getpid()} on {socket.gethostname()}, started " in str(refused.value)
    assert isinstance(refused.value, UserError)
    with runlock.hold(tmp_path):  # released at the end of the block
        pass
    assert (tmp_path / runlock.LOCK_FILE).read_text() == ""  # no stale holder details left behind


def test_a_file_system_without_locks_trains_unlocked_with_a_notice(tmp_path, monkeypatch, capsys):
    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with runlock.hold(tmp_path):
        pass
    assert "cannot be locked on this file system" in capsys.readouterr().err


def test_an_unwritable_run_directory_names_output_dir(tmp_path, monkeypatch):
    def read_only(path, *args, **kwargs):  # as on a read-only volume (root ignores chmod)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(runlock, "open", read_only, raising=False)
    with pytest.raises(runlock.RunDirError, match=r"output_dir: cannot write in .*Read-only file system"):
        with runlock.hold(tmp_path):
            pass
