"""The local backend enforces what the spec declares: memory, timeout, retries, read-only volumes, cores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from compiler.backends.local import prepare as local_prepare
from compiler.backends.local import supervise
from compiler.platform import local_storage
from compiler.platform.modal_limits import MODAL_DEFAULT_TIMEOUT_S
from compiler.platform.resources import Gpu, Resources
from compiler.spec.ir import App, Function, Image, Mount, Retries, SecretRef, Volume
from runtime.core.env import VOLUMES_DIR as VOLUMES_DIR_ENV
from tests.helpers.cli_runner import mtc
from tests.helpers.model import args_of

REPO = Path(__file__).resolve().parents[2]


def make_app(
    entry: str, *, args: dict | None = None, gpus: tuple[Gpu, ...] = (), **resources
) -> tuple[App, Function]:
    retries = resources.pop("retries", None)
    fn = Function(
        name="job",
        module="tests.targets",
        entry=entry,
        args=args_of(*(args or {}).items()),
        image="base",
        resources=Resources(gpus=gpus, **{"cpu": 1, **resources}),
        retries=Retries(retries) if retries else None,
        mounts=(Mount("/results", "results"), Mount("/data", "raw")),
    )
    app = App(
        name="t",
        images={"base": Image("base", "debian_slim", "3.11", local_dirs=(("specs", "/app/specs"),))},
        volumes={
            "results": Volume("results", "volume", volume="t-results"),
            "raw": Volume("raw", "bucket", bucket="b", read_only=True),
        },
        functions={"job": fn},
    )
    return app, fn


def run_local(tmp_path: Path, entry: str, **kwargs) -> tuple[int, list[str]]:
    app, fn = make_app(entry, **kwargs)
    messages: list[str] = []
    plan = local_prepare.prepare(app, fn, fn.arg_dict, tmp_path / "volumes", REPO)
    return supervise.execute(plan, messages.append), messages


def test_memory_limit_stops_a_function_that_allocates_past_it(tmp_path):
    code, messages = run_local(tmp_path, "allocate", memory_mib=200, timeout_s=60)
    assert code == supervise.EXIT_OUT_OF_MEMORY
    assert any("exceeded 200 MiB" in m for m in messages), messages


def test_memory_limit_counts_the_whole_process_tree_and_kills_it(tmp_path):
    import psutil

    code, messages = run_local(tmp_path, "allocate_in_grandchild", memory_mib=200, timeout_s=60)
    assert code == supervise.EXIT_OUT_OF_MEMORY
    grandchild = int((tmp_path / "volumes" / "t-results" / "grandchild.pid").read_text())
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


def test_timeout_stops_a_sleeping_function(tmp_path):
    code, messages = run_local(tmp_path, "sleep", timeout_s=1)
    assert code == supervise.EXIT_TIMEOUT
    assert any("timed out after 1 s" in m for m in messages), messages


def test_retries_rerun_failed_attempts_until_one_succeeds(tmp_path):
    code, messages = run_local(tmp_path, "fail_until", args={"attempts_needed": 3}, retries=2, timeout_s=60)
    assert code == 0
    assert (tmp_path / "volumes" / "t-results" / "attempts.txt").read_text() == "3"
    assert sum("retrying job" in m for m in messages) == 2


def test_retries_run_out_and_the_last_exit_code_is_returned(tmp_path):
    code, messages = run_local(tmp_path, "fail_until", args={"attempts_needed": 5}, retries=1, timeout_s=60)
    assert code == 1
    assert (tmp_path / "volumes" / "t-results" / "attempts.txt").read_text() == "2"


def test_read_only_volume_refuses_writes_and_writable_one_accepts_them(tmp_path):
    code, _ = run_local(tmp_path, "write_file", args={"path": "/data/out.txt"}, timeout_s=60)
    assert code == 1
    assert not (tmp_path / "volumes" / "bucket-b" / "out.txt").exists()
    code, _ = run_local(tmp_path, "write_file", args={"path": "/results/out.txt"}, timeout_s=60)
    assert code == 0
    assert (tmp_path / "volumes" / "t-results" / "out.txt").read_text() == "hello"


def test_child_sees_volume_map_thread_limits_and_affinity(tmp_path):
    code, messages = run_local(
        tmp_path, "report", args={"flag": True, "count": 7, "ratio": 0.25}, timeout_s=60
    )
    assert code == 0
    seen = json.loads((tmp_path / "volumes" / "t-results" / "report.json").read_text())
    assert seen["resolved_out"] == str(tmp_path / "volumes" / "t-results" / "report.json")
    assert seen["types"] == ["bool", "int", "float"]
    assert seen["omp_threads"] == "1" and seen["affinity"] == 1
    assert any(str(tmp_path / "volumes" / "t-results") in m for m in messages)


def test_exit_code_of_the_function_is_propagated(tmp_path):
    code, messages = run_local(tmp_path, "exit_with", args={"code": 3}, timeout_s=60)
    assert code == 3
    assert any("exit code 3" in m for m in messages)


def test_prepare_caps_cores_maps_image_dirs_and_notes_missing_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(local_prepare, "gpu_present", lambda: False)
    app, fn = make_app("sleep", cpu=1000, gpus=(Gpu("A100-80GB"),), retries=2)
    plan = local_prepare.prepare(app, fn, {}, tmp_path, REPO)
    assert plan.cores == len(local_prepare.usable_cores())
    assert plan.env["OMP_NUM_THREADS"] == str(plan.cores)
    assert plan.path_map["/app/specs"] == str(REPO / "specs")
    assert plan.timeout_s == MODAL_DEFAULT_TIMEOUT_S and plan.attempts == 3
    assert any("no GPU here" in n and "A100-80GB" in n for n in plan.notices)


def test_retry_delays_follow_the_declared_backoff():
    app, fn = make_app("sleep")
    fn = Function(
        **{**fn.__dict__, "retries": Retries(3, backoff_coefficient=2.0, initial_delay=1.0, max_delay=3.0)}
    )
    assert local_prepare._retry_delays(fn, 3) == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    "option,env,expected", [("x/v", None, "x/v"), (None, "env/v", "env/v"), (None, None, ".mtc/volumes")]
)
def test_volumes_dir_precedence(monkeypatch, tmp_path, option, env, expected):
    monkeypatch.chdir(tmp_path)
    if env:
        monkeypatch.setenv(VOLUMES_DIR_ENV, env)
    else:
        monkeypatch.delenv(VOLUMES_DIR_ENV, raising=False)
    assert local_storage.volumes_dir(option) == tmp_path / expected


# ------------------------------------------------------------------------------------------ through the CLI

CLI_SPEC = """\
version: 1
app: {name: local-cli-test}
images:
  base: {from: debian_slim, python: "3.11", add_local: {python: [tests]}}
volumes:
  results: {volume: local-cli-results}
defaults: {image: base, cpu: 1, memory: 1GiB, timeout: 1m, volumes: {/results: results}}
functions:
  report:
    run: tests.targets:report
    args: {out: /results/report.json, flag: false, count: 1, ratio: 0.5}
  exit_with:
    run: tests.targets:exit_with
    args: {code: 0}
"""


@pytest.fixture
def cli_spec(tmp_path):
    path = tmp_path / "deployment.yaml"
    path.write_text(CLI_SPEC)
    return str(path)


def test_cli_types_args_like_the_signature_and_prints_where_volumes_live(capfd, cli_spec, tmp_path):
    volumes = tmp_path / "vols"
    args = ("--arg", "flag=yes", "--arg", "count=12", "--arg", "ratio=1e-3", "--volumes-dir", str(volumes))
    code, _, err = mtc(capfd, "run", "report", cli_spec, *args)
    assert code == 0
    seen = json.loads((volumes / "local-cli-results" / "report.json").read_text())
    assert seen["args"] == {"flag": True, "count": 12, "ratio": 0.001}
    assert f"lives in {volumes / 'local-cli-results'}" in err


def test_cli_exit_code_is_the_functions(capfd, cli_spec, tmp_path):
    code, _, _ = mtc(capfd, "run", "exit_with", cli_spec, "--arg", "code=7", "--volumes-dir", str(tmp_path))
    assert code == 7


@pytest.mark.parametrize(
    "args,message",
    [
        (("run", "reprot"), "no function 'reprot'"),
        (("run", "report", "--arg", "cuont=3"), "did you mean 'count'?"),
        (("run", "report", "--arg", "count=many"), "expected an integer"),
        (("run", "report", "--arg", "flag=maybe"), "expected true or false"),
        (("run", "report", "--arg", "count"), "expected NAME=VALUE"),
    ],
)
def test_cli_rejects_unknown_functions_and_bad_args(capfd, cli_spec, args, message):
    code, _, err = mtc(capfd, *args[:2], cli_spec, *args[2:])
    assert code == 1
    assert message in err and "Traceback" not in err


def test_cli_spec_errors_are_diagnostics(capfd, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CLI_SPEC.replace("cpu: 1,", "cpu: one,"))
    code, _, err = mtc(capfd, "run", "report", str(bad))
    assert code == 1
    assert f"{bad}:7:30: error: defaults.cpu" in err


def test_a_users_mistake_prints_a_message_not_a_traceback_and_is_not_retried(tmp_path, capfd):
    code, messages = run_local(tmp_path, "train_with_a_bad_config", retries=2, timeout_s=120)
    err = capfd.readouterr().err
    assert code == 1
    assert "bad.yaml:3:" in err and "bogus" in err and "Traceback" not in err, err
    assert (tmp_path / "volumes" / "t-results" / "tries.txt").read_text() == "1"
    assert any("not retried" in m for m in messages), messages


def test_prepare_maps_the_local_files_and_dirs_of_the_image_and_of_its_bases(tmp_path):
    app, fn = make_app("sleep")
    base = dataclasses.replace(app.images["base"], local_files=(("train.yaml", "/app/train.yaml"),))
    child = Image(
        "child", "", None, parent="base", local_files=(("deployment.yaml", "/app/deployment.yaml"),)
    )
    app = dataclasses.replace(
        app, images={"base": base, "child": child}, spec_path=str(REPO / "specs" / "x.yaml")
    )
    plan = local_prepare.prepare(app, dataclasses.replace(fn, image="child"), {}, tmp_path, REPO)
    assert plan.path_map["/app/train.yaml"] == str(REPO / "specs" / "train.yaml")
    assert plan.path_map["/app/deployment.yaml"] == str(REPO / "specs" / "deployment.yaml")
    assert plan.path_map["/app/specs"] == str(REPO / "specs" / "specs")


def test_prepare_names_the_secrets_it_does_not_inject_with_their_environment(tmp_path):
    app, fn = make_app("sleep")
    app = dataclasses.replace(app, secrets=(SecretRef("hf", "shared"),))
    plan = local_prepare.prepare(
        app, dataclasses.replace(fn, secrets=(SecretRef("wandb"),)), {}, tmp_path, REPO
    )
    assert any("(hf (environment shared), wandb)" in notice for notice in plan.notices), plan.notices
