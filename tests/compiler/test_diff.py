"""`mtc diff`: field changes and cost deltas between two specs, and against a git revision."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers.cli_runner import mtc

OLD = """\
version: 1
app: {name: diff-test}
images:
  base:
    from: debian_slim
    python: "3.11"
    steps:
      - pip: [numpy]
    add_local: {python: [runtime]}
volumes:
  results: {volume: diff-results}
  raw: {bucket: eeg, key_prefix: tusz/, read_only: true}
defaults: {image: base}
functions:
  train:
    run: runtime.train:main
    args: {config: /results/train.yaml, resume: false}
    gpu: T4
    cpu: 8
    memory: 32GiB
    timeout: 2h
    volumes: {/results: results, /data: raw}
  old_job:
    run: runtime.train:main
    args: {config: /results/old.yaml}
    volumes: {/results: results}
    cpu: 1
    memory: 1024
    timeout: 10m
"""

NEW = (
    OLD.replace("cpu: 8", "cpu: 32")
    .replace("memory: 32GiB", "memory: 128GiB")
    .replace("gpu: T4", "gpu: A100-80GB")
    .replace("resume: false", "resume: true")
    .replace("pip: [numpy]", "pip: [numpy, tensorboard]")
    .replace(", /data: raw}", "}\n    retries: 2")
    .replace("  old_job:", "  new_job:")
)

# Per hour: T4 0.5904, A100-80GB 2.4984, a core 0.04716, a GiB 0.007992.
OLD_TRAIN_HOURLY = 0.5904 + 8 * 0.04716 + 32 * 0.007992
NEW_TRAIN_HOURLY = 2.4984 + 32 * 0.04716 + 128 * 0.007992


@pytest.fixture
def specs(tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OLD)
    new.write_text(NEW)
    return str(old), str(new)


def test_changed_fields_are_listed_with_units(capsys, specs):
    code, out, _ = mtc(capsys, "diff", *specs)
    assert code == 2
    lines = out.splitlines()
    for expected in (
        "~ train.cpu: 8 → 32",
        "~ train.memory: 32768 → 131072 MiB",
        "~ train.gpu: T4 → A100-80GB",
        "~ train.args.resume: false → true",
        "+ train.retries: 2",
        "- train.volumes[/data]: raw",
        '~ images.base.steps[0]: pip ["numpy"] → pip ["numpy", "tensorboard"]',
    ):
        assert expected in lines, (expected, lines)
    assert any(line.startswith("- functions.old_job: run runtime.train:main") for line in lines)
    assert any(line.startswith("+ functions.new_job:") for line in lines)
    assert not any("timeout" in line for line in lines if line.startswith("~"))


def test_cost_deltas_match_hand_computed_figures(capsys, specs):
    code, out, _ = mtc(capsys, "diff", *specs, "--format", "json")
    assert code == 2
    result = json.loads(out)
    costs = {cost["function"]: cost for cost in result["costs"]}
    train = costs["train"]
    assert train["old_hourly_usd"] == pytest.approx(OLD_TRAIN_HOURLY)
    assert train["new_hourly_usd"] == pytest.approx(NEW_TRAIN_HOURLY)
    assert train["old_worst_case_usd"] == pytest.approx(OLD_TRAIN_HOURLY * 2)
    assert train["new_worst_case_usd"] == pytest.approx(NEW_TRAIN_HOURLY * 2 * 3)
    assert costs["old_job"]["new_hourly_usd"] is None and costs["new_job"]["old_hourly_usd"] is None
    delta = f"({NEW_TRAIN_HOURLY - OLD_TRAIN_HOURLY:+.2f})"
    _, text, _ = mtc(capsys, "diff", *specs)
    assert f"train: $/hour {OLD_TRAIN_HOURLY:.2f} → {NEW_TRAIN_HOURLY:.2f} {delta}" in text


def test_identical_specs_exit_0(capsys, specs):
    code, out, _ = mtc(capsys, "diff", specs[0], specs[0])
    assert code == 0
    assert out.startswith("no changes")


def test_invalid_side_prints_its_diagnostics_and_exits_1(capsys, specs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(NEW.replace("gpu: A100-80GB", "gpu: [A100-80GB, 7]"))
    code, out, err = mtc(capsys, "diff", specs[0], str(bad))
    assert code == 1 and out == ""
    assert f"{bad}:" in err and "error" in err


def test_wrong_number_of_specs_is_a_usage_error(capsys, specs):
    code, _, err = mtc(capsys, "diff", specs[0])
    assert code == 3 and "two specs" in err


def git(repo, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "specs" / "deployment.yaml").write_text(OLD)
    git(repo, "add", "specs/deployment.yaml")
    git(repo, "commit", "-qm", "old spec")
    return repo


def test_rev_compares_the_committed_spec_with_the_file_on_disk(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    assert mtc(capsys, "diff", "--rev", "HEAD")[0] == 0
    (repo / "specs" / "deployment.yaml").write_text(NEW)
    code, out, _ = mtc(capsys, "diff", "--rev", "HEAD")
    assert code == 2
    assert out.splitlines()[0] == "HEAD:specs/deployment.yaml → specs/deployment.yaml"
    assert "~ train.cpu: 8 → 32" in out


def test_rev_works_from_another_folder_and_reports_git_errors(capsys, repo, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    spec = str(repo / "specs" / "deployment.yaml")
    code, _, err = mtc(capsys, "diff", "--rev", "no-such-rev", spec)
    assert code == 1 and "no-such-rev:" in err and "Traceback" not in err
    (repo / "specs" / "deployment.yaml").write_text(OLD.replace("cpu: 8", "cpu: -1"))
    git(repo, "commit", "-qam", "broken spec")
    (repo / "specs" / "deployment.yaml").write_text(OLD)
    code, _, err = mtc(capsys, "diff", "--rev", "HEAD", spec)
    assert code == 1
    assert f"HEAD:{spec}:" in err


def test_sweep_changes_are_listed(capsys, tmp_path):
    swept = OLD.replace(
        "    volumes: {/results: results, /data: raw}\n",
        "    volumes: {/results: results, /data: raw}\n    sweep: {grid: {optim.lr: [0.001, 0.0003]}}\n",
    )
    wider = swept.replace("[0.001, 0.0003]}}", "[0.001, 0.0003, 0.0001]}, max_parallel: 2}")
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(swept)
    new.write_text(wider)
    code, out, err = mtc(capsys, "diff", str(old), str(new))
    assert code == 2, err
    lines = out.splitlines()
    assert "~ train.sweep.trials: 2 → 3" in lines, lines
    assert "+ train.sweep.max_parallel: 2" in lines
    assert "~ train.sweep.grid.optim.lr: [0.001, 0.0003] → [0.001, 0.0003, 0.0001]" in lines


def test_a_rev_that_looks_like_an_option_is_refused_before_git_runs(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo / "specs")
    for rev in ("--output=written-by-git", "-p", "", "HEAD\x01"):
        code, out, err = mtc(capsys, "diff", f"--rev={rev}", "deployment.yaml")
        assert code == 3 and "is not a git revision" in err and out == "", rev
    assert sorted(p.name for p in (repo / "specs").iterdir()) == ["deployment.yaml"]


def test_rev_reads_a_blob_only_and_within_the_spec_limit(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    code, _, err = mtc(capsys, "diff", "--rev", "HEAD", "specs")  # a folder is not a spec
    assert code == 1 and "HEAD:specs:" in err and "Traceback" not in err
    (repo / "specs" / "deployment.yaml").write_text("# padding\n" * 200_000)
    git(repo, "commit", "-qam", "a 2 MB spec")
    (repo / "specs" / "deployment.yaml").write_text(OLD)
    code, _, err = mtc(capsys, "diff", "--rev", "HEAD")
    assert code == 1 and "HEAD:specs/deployment.yaml:1:1: error:" in err and "[load/too-large]" in err


def test_image_bases_pip_options_files_dockerfiles_and_secret_environments_are_listed(capsys, tmp_path):
    (tmp_path / "train.yaml").write_text("{}\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\n")
    chained = OLD.replace(
        "volumes:\n",
        "  train:\n    base: base\n    steps:\n      - uv_pip: [torch]\n"
        "  docker: {from_dockerfile: Dockerfile}\nvolumes:\n",
    ).replace("app: {name: diff-test}", "app: {name: diff-test, secrets: [hf]}")
    changed = (
        chained.replace(
            "uv_pip: [torch]", "uv_pip: {packages: [torch], index_url: https://i.example, pre: true}"
        )
        .replace("{from_dockerfile: Dockerfile}", "{from_dockerfile: Dockerfile, context_dir: .}")
        .replace(
            "add_local: {python: [runtime]}",
            "add_local: {python: [runtime], files: {train.yaml: /root/t.yaml}}",
        )
        .replace("secrets: [hf]", "secrets: [{name: hf, environment: shared}]")
        .replace("{volume: diff-results}", "{volume: diff-results, environment: shared}")
    )
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(chained)
    new.write_text(changed)
    code, out, err = mtc(capsys, "diff", str(old), str(new))
    assert code == 2, err
    lines = out.splitlines()
    for expected in (
        '~ images.train.steps[0]: uv_pip ["torch"] → uv_pip {"packages": ["torch"], "index_url": '
        '"https://i.example", "pre": true}',
        "+ images.docker.context_dir: .",
        "+ images.base.add_local.files[train.yaml]: /root/t.yaml",
        "~ app.secrets: hf → hf (environment shared)",
        "+ volumes.results.environment: shared",
    ):
        assert expected in lines, (expected, lines)
    moved = chained.replace("    base: base\n", "    from: debian_slim\n")
    new.write_text(moved)
    _, out, _ = mtc(capsys, "diff", str(old), str(new))
    assert "- images.train.base: base" in out.splitlines() and "+ images.train.from: debian_slim" in out
