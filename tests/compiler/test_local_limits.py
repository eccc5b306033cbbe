"""The local backend's limits hold against what a function can do: fork, leave processes behind, daemonise,
use shared memory, outlive a killed ``mtc``; read-only volumes and volume folders survive misuse.

Memory and process tests run with each mechanism this machine offers: ``auto`` (a cgroup where there is one)
and the PSS fallback (``MTC_LIMITS=pss``)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest
from test_localrun import REPO, make_app, run_local

from compiler.backends.local import limits, supervise, volumes
from compiler.backends.local import prepare as local_prepare
from compiler.spec.ir import App, Function, Mount, Volume
from tests.helpers.cli_runner import mtc
from tests.helpers.model import args_of


@pytest.fixture(params=["auto", "pss"])
def mechanism(request, monkeypatch):
    monkeypatch.setenv(limits.LIMITS_ENV, request.param)
    return request.param


def marker() -> str:
    return f"mtc-test-{uuid.uuid4().hex}"


def processes_marked(mark: str) -> list[psutil.Process]:
    """Live processes with ``mark`` as an argument or in the local backend's call payload."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            in_call = mark in process.environ().get("MTC_LOCAL_CALL", "")
        except psutil.Error:
            in_call = False
        if mark in (process.info["cmdline"] or []) or in_call:
            found.append(process)
    return found


def wait_until_gone(mark: str, seconds: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := processes_marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def peak_of(messages: list[str]) -> int:
    return int(re.search(r"peak memory (\d+) MiB", messages[-1]).group(1))


# ------------------------------------------------------------------------------------------------- memory


def test_forked_children_sharing_memory_copy_on_write_count_once(tmp_path, mechanism):
    code, messages = run_local(tmp_path, "hold_and_fork", memory_mib=1024, timeout_s=120)
    assert code == 0, messages
    assert 400 <= peak_of(messages) < 1024, messages


@pytest.mark.parametrize("where", ["anonymous", "devshm"])
def test_shared_memory_counts_against_the_limit(tmp_path, mechanism, where):
    name = marker()
    try:
        code, messages = run_local(
            tmp_path,
            "hold_shared",
            args={"mib": 600, "where": where, "name": name},
            memory_mib=300,
            timeout_s=120,
        )
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)
    assert code == supervise.EXIT_OUT_OF_MEMORY, messages
    assert any("exceeded 300 MiB" in m for m in messages), messages


def test_a_double_forked_daemon_counts_against_the_limit_and_is_killed(tmp_path, mechanism):
    mark = marker()
    args = {"marker": mark, "daemon_mib": 600, "wait_s": 60.0}
    code, messages = run_local(tmp_path, "spawn_and_leave", args=args, memory_mib=300, timeout_s=120)
    assert code == supervise.EXIT_OUT_OF_MEMORY, messages
    assert not wait_until_gone(mark)


def test_the_start_message_names_the_limit_mechanism(tmp_path, mechanism):
    code, messages = run_local(tmp_path, "exit_with", args={"code": 0}, memory_mib=512, timeout_s=60)
    assert code == 0
    assert f"512 MiB through {limits.MECHANISM_TEXT[limits.describe_choice()]}" in messages[0]


def test_an_unknown_limits_mechanism_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(limits.LIMITS_ENV, "cgroup3")
    code, messages = run_local(tmp_path, "exit_with", args={"code": 0}, timeout_s=60)
    assert code == 1
    assert messages == ["error: $MTC_LIMITS='cgroup3': expected auto, cgroup2, cgroup1, pss"]


# ---------------------------------------------------------------------------------------------- processes


def test_processes_left_behind_are_killed_and_named(tmp_path, mechanism):
    mark = marker()
    code, messages = run_local(tmp_path, "spawn_and_leave", args={"marker": mark}, timeout_s=60)
    assert code == 0, messages
    left = [m for m in messages if m.startswith("killed a process left behind by job: ")]
    assert len(left) == 2 and all(mark in m and "(pid " in m for m in left), messages
    assert not processes_marked(mark)


SPAWN_SPEC = """\
version: 1
app: {name: local-limits-test}
images:
  base: {from: debian_slim, python: "3.11", add_local: {python: [tests]}}
volumes:
  results: {volume: local-limits-results}
functions:
  spawn:
    image: base
    run: tests.targets:spawn_and_leave
    args: {marker: x, wait_s: 300.0}
    cpu: 1
    memory: 1GiB
    timeout: 10m
    volumes: {/results: results}
"""


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_nothing_of_the_function_outlives_mtc(tmp_path, mechanism, signum):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPAWN_SPEC)
    mark, volumes = marker(), tmp_path / "volumes"
    command = [sys.executable, "-m", "compiler.cli", "run", "spawn", str(spec), "--arg", f"marker={mark}"]
    supervisor = subprocess.Popen(
        [*command, "--volumes-dir", str(volumes)], cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = volumes / "local-limits-results" / "ready"
        deadline = time.monotonic() + 90
        while not ready.exists() and supervisor.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ready.exists(), supervisor.communicate(timeout=30)[1]
        assert len(processes_marked(mark)) >= 4  # the child, the target, the sleeper, the daemon
        supervisor.send_signal(signum)
        _, err = supervisor.communicate(timeout=30)
        assert not wait_until_gone(mark), err
    finally:
        for process in processes_marked(mark):
            process.kill()
    if signum != signal.SIGKILL:
        assert supervisor.returncode == 128 + signum, err
        assert f"spawn interrupted (exit {128 + signum})" in err


# ------------------------------------------------------------------------------------ exit codes, targets


def test_a_targets_own_exit_65_is_its_exit_code_and_is_retried(tmp_path):
    code, messages = run_local(tmp_path, "count_and_exit", args={"code": 65}, retries=1, timeout_s=60)
    assert code == 65
    assert (tmp_path / "volumes" / "t-results" / "exits.txt").read_text() == "2"
    assert not any("not retried" in m for m in messages), messages


def test_an_async_target_is_awaited(tmp_path):
    code, messages = run_local(tmp_path, "write_async", timeout_s=60)
    assert code == 0, messages
    assert (tmp_path / "volumes" / "t-results" / "async.txt").read_text() == "awaited"


# ------------------------------------------------------------------------------------------------ volumes


def test_spec_entries_over_the_same_storage_share_one_folder(tmp_path):
    volumes = {
        "results": Volume("results", "volume", volume="shared-vol"),
        "results_ro": Volume("results_ro", "volume", volume="shared-vol", read_only=True),
        "raw": Volume("raw", "bucket", bucket="my bucket", key_prefix="eeg/../v1/", read_only=True),
    }
    fn = Function(
        name="job",
        module="tests.targets",
        entry="write_file",
        args=args_of(("path", "/out/f.txt")),
        mounts=(Mount("/out", "results"), Mount("/in", "results_ro"), Mount("/raw", "raw")),
    )
    app = App(name="t", volumes=volumes, functions={"job": fn})
    root = tmp_path / "volumes"
    plan = local_prepare.prepare(app, fn, fn.arg_dict, root, REPO)
    local = {m.path: m.local for m in plan.mounts}
    assert local["/out"] == local["/in"] == root / "shared-vol"
    assert local["/raw"] == root / "bucket-my_bucket" / "eeg" / "_" / "v1"
    assert any("/in shares its storage with a read-write mount" in n for n in plan.notices)
    assert local_prepare.protected_folders(plan.mounts) == [local["/raw"]]
    assert supervise.execute(plan, lambda _: None) == 0
    assert (local["/in"] / "f.txt").read_text() == "hello"


def test_a_folder_named_after_the_spec_key_gets_a_notice_and_is_left_alone(tmp_path):
    app, fn = make_app("exit_with")
    old = tmp_path / "results"
    old.mkdir()
    (old / "keep.txt").write_text("data")
    plan = local_prepare.prepare(app, fn, {}, tmp_path, REPO)
    assert any(
        f"{tmp_path / 't-results'}" in n and f"{old} (named after the spec key)" in n for n in plan.notices
    )
    assert (old / "keep.txt").read_text() == "data"


CLI_SPEC = """\
version: 1
app: {name: local-vol-test}
images:
  base: {from: debian_slim, python: "3.11", add_local: {python: [tests]}}
volumes:
  results: {volume: vol-test-results}
functions:
  exit_with:
    image: base
    run: tests.targets:exit_with
    args: {code: 0}
    volumes: {/results: results}
"""


def test_a_volume_folder_that_is_a_file_or_cannot_be_made_is_a_clear_error(capfd, tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text(CLI_SPEC)
    (tmp_path / "vol-test-results").write_text("not a folder")
    code, _, err = mtc(capfd, "run", "exit_with", str(spec), "--volumes-dir", str(tmp_path))
    assert code == 1 and "Traceback" not in err
    assert (
        f"error: {tmp_path / 'vol-test-results'} (a volume's local folder) exists but is not a folder" in err
    )
    blocked = tmp_path / "vol-test-results" / "below"
    code, _, err = mtc(capfd, "run", "exit_with", str(spec), "--volumes-dir", str(blocked))
    assert code == 1 and "Traceback" not in err
    assert (
        f"error: cannot create {blocked / 'vol-test-results'} (a volume's local folder): Not a directory"
        in err
    )


def modes(paths: list[Path]) -> dict[Path, int]:
    return {path: path.lstat().st_mode for path in paths}


def test_write_protection_never_follows_symlinks_and_is_undone_afterwards(tmp_path, monkeypatch):
    monkeypatch.setattr(volumes, "namespaces_available", lambda: False)
    root, outside = tmp_path / "volumes", tmp_path / "outside"
    volume = root / "raw"
    (volume / "sub").mkdir(parents=True)
    (volume / "sub" / "f.txt").write_text("x")
    outside.mkdir()
    (outside / "g.txt").write_text("y")
    (volume / "dir-link").symlink_to(outside)
    (volume / "file-link").symlink_to(outside / "g.txt")
    inside = [volume, volume / "sub", volume / "sub" / "f.txt"]
    before = modes([*inside, outside, outside / "g.txt"])
    with volumes.write_protected([volume], root):
        assert all(path.stat().st_mode & 0o222 == 0 for path in inside)
        assert modes([outside, outside / "g.txt"]) == {p: before[p] for p in (outside, outside / "g.txt")}
        assert len(list(root.glob(f"{volumes.JOURNAL_PREFIX}*.json"))) == 1
    assert modes(list(before)) == before
    assert not list(root.glob(f"{volumes.JOURNAL_PREFIX}*"))


def test_a_killed_runs_write_protection_is_undone_by_the_next_run(tmp_path):
    root = tmp_path / "volumes"
    volume = root / "bucket-b"
    (volume / "sub").mkdir(parents=True)
    before = modes([volume, volume / "sub"])
    killed_run = (
        "import os, signal\nfrom pathlib import Path\nfrom compiler.backends.local import volumes\n"
        "volumes.namespaces_available = lambda: False\n"
        f"with volumes.write_protected([Path({str(volume)!r})], Path({str(root)!r})):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", killed_run], cwd=REPO).returncode == -signal.SIGKILL
    assert volume.stat().st_mode & 0o222 == 0  # what the killed run left
    code, messages = run_local(tmp_path, "write_file", args={"path": "/results/out.txt"}, timeout_s=60)
    assert code == 0
    assert modes(list(before)) == before
    assert any("restored the write permission that a killed run" in m for m in messages), messages
    assert not list(root.glob(f"{volumes.JOURNAL_PREFIX}*"))


NOBODY_SPEC = """\
version: 1
app: {name: local-nobody-test}
images:
  base: {from: debian_slim, python: "3.11", add_local: {python: [tests]}}
volumes:
  raw: {volume: nobody-raw, read_only: true}
functions:
  write_file:
    image: base
    run: tests.targets:write_file
    args: {path: /data/out.txt}
    volumes: {/data: raw}
"""
# nobody, allowed to search folders only so that it can start the venv's python, which lives under /root here
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
NOBODY += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_a_user_who_is_not_root_gets_a_read_only_mount_not_a_chmod(tmp_path):
    if subprocess.run([*NOBODY, "unshare", "--user", "--mount", "true"], capture_output=True).returncode:
        pytest.skip("this kernel does not let an unprivileged user make a user namespace")
    work = Path(tempfile.mkdtemp(prefix="mtc-nobody-"))  # tmp_path is private to root
    try:
        volume, spec = work / "volumes" / "nobody-raw", work / "deployment.yaml"
        volume.mkdir(parents=True)
        spec.write_text(NOBODY_SPEC)
        for path in [work, work / "volumes", volume, spec]:
            os.chown(path, 65534, 65534)
        before = volume.stat().st_mode
        done = subprocess.run(
            [*NOBODY, sys.executable, "-m", "compiler.cli", "run", "write_file", str(spec)]
            + ["--volumes-dir", str(work / "volumes")],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert "Read-only file system" in done.stderr, done.stderr  # a chmod would say Permission denied
        assert not (volume / "out.txt").exists() and volume.stat().st_mode == before
    finally:
        shutil.rmtree(work, ignore_errors=True)
