"""The local backend and the start of a call: every attempt in a fresh process (what Modal's
single_use_containers gives), and a startup_timeout bounding the time until the target is called."""

from __future__ import annotations

from dataclasses import replace

from compiler.backends.local import prepare as local_prepare
from compiler.backends.local import supervise
from tests.compiler.test_localrun import REPO, make_app


def run(tmp_path, fn, app):
    messages: list[str] = []
    plan = local_prepare.prepare(app, fn, fn.arg_dict, tmp_path / "volumes", REPO)
    return supervise.execute(plan, messages.append), messages


def test_every_attempt_runs_in_a_fresh_process(tmp_path):
    app, fn = make_app("fail_recording_pid", retries=2, timeout_s=60)
    code, _ = run(tmp_path, fn, app)
    assert code == 0
    pids = (tmp_path / "volumes" / "t-results" / "pids.txt").read_text().split()
    assert len(pids) == 2 and len(set(pids)) == 2


def test_a_slow_import_past_startup_timeout_stops_the_attempt(tmp_path, monkeypatch):
    monkeypatch.setenv("MTC_TEST_IMPORT_S", "5")
    app, fn = make_app("run", timeout_s=60)
    fn = replace(fn, module="tests.slow_import", startup_timeout_s=1)
    code, messages = run(tmp_path, fn, replace(app, functions={"job": fn}))
    assert code == supervise.EXIT_TIMEOUT
    assert any("not called within its startup_timeout of 1 s" in m for m in messages), messages


def test_a_start_within_startup_timeout_runs_to_the_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MTC_TEST_IMPORT_S", "0.2")
    app, fn = make_app("run", timeout_s=60)
    fn = replace(fn, module="tests.slow_import", startup_timeout_s=30)
    code, messages = run(tmp_path, fn, replace(app, functions={"job": fn}))
    assert code == 0, messages


def test_block_network_is_named_as_not_enforced_locally(tmp_path):
    app, fn = make_app("exit_with", args={"code": 0}, timeout_s=60)
    fn = replace(fn, block_network=True)
    code, messages = run(tmp_path, fn, replace(app, functions={"job": fn}))
    assert code == 0
    assert any("block_network; it is not enforced locally" in m for m in messages), messages


def test_a_sweep_trial_is_bounded_from_its_start_to_its_own_targets_call(tmp_path, monkeypatch):
    import json

    from compiler.backends.local import child

    monkeypatch.setenv("MTC_TEST_IMPORT_S", "5")
    app, fn = make_app("run", timeout_s=60)
    fn = replace(fn, startup_timeout_s=1)
    result_file = tmp_path / "result.json"
    call = {"target": "tests.slow_import:run", "kwargs": {}, "result_file": str(result_file)}
    plan = local_prepare.prepare(replace(app, functions={"job": fn}), fn, call, tmp_path / "volumes", REPO)
    messages: list[str] = []
    code = supervise.execute(replace(plan, target=child.TRIAL_TARGET), messages.append)
    assert code == supervise.EXIT_TIMEOUT and not result_file.exists()
    monkeypatch.setenv("MTC_TEST_IMPORT_S", "0")
    assert supervise.execute(replace(plan, target=child.TRIAL_TARGET), messages.append) == 0
    assert json.loads(result_file.read_text()) is None
