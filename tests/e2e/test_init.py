"""`mtc init`: in an empty git repository its output lints clean, compiles, plans and runs (the bundled
runtime trains on synthetic data; a --target runs the team's own function); it never overwrites a file, and a
careless input is an exit-1 message with nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.cli import init_files, init_inputs
from compiler.cli.init_files import Planned
from tests.helpers.cli_runner import mtc as mtc_here

REPO = Path(__file__).resolve().parents[2]
SPEC = "specs/deployment.yaml"
RUNTIME_FILES = [
    ".github/workflows/mtc.yml",
    ".gitignore",
    ".pre-commit-config.yaml",
    SPEC,
    "specs/train.debug.yaml",
    "specs/train.yaml",
]
TEAM_CODE = '''\
"""A team's job: writes a marker file, so the test sees that it ran with its args."""
import json
from pathlib import Path


def write_marker(path="outputs/marker.txt", text="hello", repeat=2, tags=("a", "b"), *, dry_run=False):
    if not dry_run:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({"text": text * repeat, "tags": list(tags)}))
    return {"wrote": path}


def needs_input(
    scratch, /, data_dir, count: int, limit=None, shape={"type": "x", "default": 1},
    on_checkpoint=None, *, main="x",
):
    return data_dir


def stream():
    yield 1


class Trainer:
    pass
'''


def mtc(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`mtc ARGS` run from ``cwd``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "compiler.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def git_repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True, timeout=30)
    return path


def files_under(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
    )


def load(path: Path):
    return YAML(typ="safe").load(path.read_text())


def assert_clean_lint_compile_plan(repo: Path) -> None:
    linted = mtc(repo, "lint")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "no problems found" in linted.stdout + linted.stderr, linted.stdout + linted.stderr  # no warning
    for command in (["compile"], ["compile", "--check"], ["plan"], ["plan", "--profile", "debug"]):
        done = mtc(repo, *command)
        assert done.returncode == 0, (command, done.stdout + done.stderr)


@pytest.fixture
def team_repo(tmp_path) -> Path:
    repo = git_repository(tmp_path / "team-repo")
    (repo / "mypkg").mkdir()
    (repo / "mypkg" / "__init__.py").write_text("")
    (repo / "mypkg" / "jobs.py").write_text(TEAM_CODE)
    return repo


# --------------------------------------------------------------------------------------------- end to end


def test_bundled_runtime_repo_lints_compiles_plans_and_trains_the_debug_profile(tmp_path):
    pytest.importorskip("torch")
    repo = git_repository(tmp_path / "Signal Lab!")
    done = mtc(repo, "init")
    assert done.returncode == 0, done.stderr
    assert files_under(repo) == RUNTIME_FILES
    spec = load(repo / SPEC)
    assert spec["app"]["name"] == "signal-lab"  # the folder's name, made valid
    assert spec["images"]["cuda"]["add_local"]["python"] == ["runtime"]
    assert load(repo / "specs/train.debug.yaml")["data"]["format"] == "synthetic"
    assert_clean_lint_compile_plan(repo)
    assert (repo / "generated" / "signal_lab.py").is_file()

    trained = mtc(repo, "run", "train", "--profile", "debug", timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    reports = list((repo / ".mtc" / "volumes").glob("*/runs/debug/report.json"))
    assert len(reports) == 1, trained.stderr[-3000:]
    accuracy = json.loads(reports[0].read_text())["metrics"]["accuracy"]
    assert accuracy >= 0.75  # it learned the bursts (0.87 measured; chance is 0.5)


def test_target_repo_runs_the_teams_own_function(team_repo):
    done = mtc(team_repo, "init", "--target", "mypkg.jobs:write_marker")
    assert done.returncode == 0, done.stderr
    spec = load(team_repo / SPEC)
    function = spec["functions"]["write_marker"]
    assert function["run"] == "mypkg.jobs:write_marker"
    assert function["args"] == {
        "path": "outputs/marker.txt",
        "text": "hello",
        "repeat": 2,
        "tags": ["a", "b"],
        "dry_run": False,
    }
    assert spec["images"]["base"]["add_local"]["python"] == ["mypkg"]
    assert not (team_repo / "specs" / "train.yaml").exists()  # no runtime config for the team's own code
    assert_clean_lint_compile_plan(team_repo)

    ran = mtc(team_repo, "run", "write_marker", "--profile", "debug", "--arg", "text=hi")
    assert ran.returncode == 0, ran.stderr
    assert json.loads((team_repo / "outputs" / "marker.txt").read_text()) == {
        "text": "hihi",
        "tags": ["a", "b"],
    }


def test_two_targets_of_one_function_under_two_names_lint_clean(team_repo):
    targets = ("--target", "small=mypkg.jobs:write_marker", "--target", "large=mypkg.jobs:write_marker")
    done = mtc(team_repo, "init", *targets)
    assert done.returncode == 0, done.stderr
    functions = load(team_repo / SPEC)["functions"]
    assert [functions[name]["run"] for name in ("small", "large")] == ["mypkg.jobs:write_marker"] * 2
    linted = mtc(team_repo, "lint")
    assert linted.returncode == 0 and "no problems found" in linted.stderr, linted.stderr


def test_a_target_without_defaults_is_commented_and_named(team_repo):
    done = mtc(team_repo, "init", "--target", "prepare=mypkg.jobs:needs_input")
    assert done.returncode == 0, done.stderr
    assert "needs 'data_dir', which has no default" in done.stderr
    assert "needs 'scratch', which has no default" in done.stderr
    text = (team_repo / SPEC).read_text()
    assert "# data_dir: not set here, REQUIRED" in text
    assert "# scratch: not set here, positional-only" in text
    assert "# main: not set here, its name is one the generated module uses" in text
    assert "needs 'count'" not in done.stderr  # annotated: declared in the explicit form
    assert "on_checkpoint" not in text  # the generated module passes it
    function = load(team_repo / SPEC)["functions"]["prepare"]
    assert function["run"] == "mypkg.jobs:needs_input"
    assert function["args"] == {
        "count": {"type": "int", "required": True},
        "limit": None,
        "shape": {"type": "dict", "default": {"type": "x", "default": 1}},  # not read as the explicit form
    }


# ------------------------------------------------------------------------------------------- never overwrites


def test_an_existing_spec_stops_init_and_nothing_is_written(tmp_path):
    repo = git_repository(tmp_path / "repo")
    (repo / "specs").mkdir()
    (repo / "specs" / "train.yaml").write_text("mine: 1\n")
    (repo / ".pre-commit-config.yaml").write_text("repos: []\n")
    done = mtc(repo, "init")
    assert done.returncode == 1
    assert "error: specs/train.yaml exists" in done.stderr
    assert "wrote nothing" in done.stderr and "Traceback" not in done.stderr
    assert files_under(repo) == [".pre-commit-config.yaml", "specs/train.yaml"]
    assert (repo / "specs" / "train.yaml").read_text() == "mine: 1\n"


def test_an_existing_ci_file_is_left_alone_and_its_snippet_printed(tmp_path):
    repo = git_repository(tmp_path / "repo")
    (repo / ".pre-commit-config.yaml").write_text("repos: []\n")
    (repo / ".gitignore").write_text("*.pyc\n.mtc/\n")
    done = mtc(repo, "init")
    assert done.returncode == 0, done.stderr
    assert (repo / ".pre-commit-config.yaml").read_text() == "repos: []\n"
    assert ".pre-commit-config.yaml exists: left as it is; merge this" in done.stderr
    assert "entry: mtc compile --check" in done.stdout  # the snippet to merge
    assert ".gitignore exists and already has what mtc needs" in done.stderr
    assert (repo / ".gitignore").read_text() == "*.pyc\n.mtc/\n"
    steps = load(repo / ".github" / "workflows" / "mtc.yml")["jobs"]["mtc"]["steps"]
    commands = [step["run"] for step in steps if "run" in step]
    assert "mtc lint --format github" in commands and "mtc compile --check" in commands


def test_a_dangling_symlink_counts_as_an_existing_file(tmp_path):
    repo = git_repository(tmp_path / "repo")
    (repo / "specs").mkdir()
    (repo / "specs" / "deployment.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    done = mtc(repo, "init")
    assert done.returncode == 1 and "specs/deployment.yaml exists" in done.stderr
    assert not (tmp_path / "elsewhere.yaml").exists()  # nothing written through the link


def test_a_file_where_a_folder_is_needed_stops_init(tmp_path):
    repo = git_repository(tmp_path / "repo")
    (repo / "specs").write_text("not a folder")
    done = mtc(repo, "init")
    assert done.returncode == 1
    assert "specs is a file, where specs/deployment.yaml needs a folder" in done.stderr
    assert files_under(repo) == ["specs"]


def test_a_failed_write_removes_what_was_written(tmp_path, monkeypatch):
    calls = []

    def failing_on_the_third(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        path.write_text(text)

    monkeypatch.setattr(init_files, "create_atomically", failing_on_the_third)
    files = [Planned(f"a/b/{n}.yaml", "x: 1\n") for n in range(2)] + [Planned("c/three.yaml", "x: 1\n")]
    with pytest.raises(OSError):
        init_files.write_files(tmp_path, files)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_written_is_exit_1_with_nothing_left(tmp_path, monkeypatch, capsys):
    written = []

    def read_only_disk(path, text):
        if len(written) == 2:
            raise PermissionError(13, "Permission denied", str(path))
        written.append(path)
        Path(path).write_text(text)

    monkeypatch.setattr("compiler.codegen.emit.write_atomic", read_only_disk)
    code, _, err = mtc_here(capsys, "init", str(tmp_path / "repo"))
    assert code == 1
    assert "cannot write in" in err and "Permission denied; nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # the two files and the folders init made are gone


def test_creating_a_file_never_replaces_one(tmp_path):
    target = tmp_path / "spec.yaml"
    target.write_text("theirs\n")
    with pytest.raises(FileExistsError):
        init_files.create_atomically(target, "ours\n")
    assert target.read_text() == "theirs\n"
    assert [p.name for p in tmp_path.iterdir()] == ["spec.yaml"]  # no temporary file left behind


# ------------------------------------------------------------------------------------------- careless input


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (["foo"], "is not MODULE:FUNCTION"),
        (["a:b:c"], "is not MODULE:FUNCTION"),
        (["1x:y"], "'1x' is not a Python module name"),
        (["mypkg..jobs:write_marker"], "is not a Python module name"),
        (["mypkg.jobs:class"], "'class' is not a Python function name"),
        (["mypkg.jobs:"], "'' is not a Python function name"),
        (["main=mypkg.jobs:write_marker"], "'main' is a name the generated module uses"),
        (["my-job=mypkg.jobs:write_marker"], "'my-job' is not a Python identifier"),
        (["mypkg.jobs:write_marker", "mypkg.jobs:write_marker"], "both make a function named 'write_marker'"),
        (["nosuchpkg.jobs:fit"], "module nosuchpkg.jobs is neither in"),
        (["mypkg.jobs:fit"], "defines no function 'fit' (it has: write_marker, needs_input, stream)"),
        (["mypkg.jobs:Trainer"], "is a class"),
        (["mypkg.jobs:stream"], "is a generator"),
    ],
)
def test_a_bad_target_is_exit_1_and_nothing_is_written(team_repo, targets, message):
    done = mtc(team_repo, "init", *(f"--target={t}" for t in targets))
    assert done.returncode == 1, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert files_under(team_repo) == ["mypkg/__init__.py", "mypkg/jobs.py"]


def test_a_missing_folder_is_created_and_said(tmp_path):
    done = mtc(tmp_path, "init", "new/repo", "--target", "json:dumps")  # an installed module works too
    assert done.returncode == 0, done.stderr
    assert "new/repo did not exist: created it" in done.stderr
    assert "not in a git repository" in done.stderr
    spec = load(tmp_path / "new" / "repo" / SPEC)
    assert spec["functions"]["dumps"]["run"] == "json:dumps"
    assert "add_local" not in spec["images"]["base"]  # the standard library is in every image


def test_a_file_as_the_folder_is_exit_1(tmp_path):
    (tmp_path / "README").write_text("x")
    done = mtc(tmp_path, "init", "README")
    assert done.returncode == 1 and "README is not a folder" in done.stderr


@pytest.mark.parametrize("name", ["-dash-first", "has space", "x" * 65, ""])
def test_a_bad_app_name_is_exit_1_with_a_valid_suggestion(tmp_path, name):
    done = mtc(tmp_path, "init", "--name", name)
    assert done.returncode == 1 and "is not a Modal app name" in done.stderr
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("My Repo!", "my-repo"), ("__", "app"), ("2024.exp", "2024-exp"), ("a" * 80, "a" * 64)],
)
def test_the_app_name_from_the_folder_is_valid(tmp_path, folder, expected):
    assert init_inputs.app_name_from(tmp_path / folder) == expected
    assert init_inputs.APP_NAME.fullmatch(init_files.volume_name(expected, "-results"))


# ---------------------------------------------------------------------------------------- rendering pieces


@pytest.mark.parametrize(
    "value",
    [
        "plain/path.yaml",
        "mypkg.train:fit",
        "a:b",
        "x:",
        "http://h/p",
        "true",
        "1.0",
        "null",
        "a: b",
        "#x",
        "",
        "it's",
        "ünï",
        "0x1F",
        "a,b",
        "[x]",
        3,
        1e-05,
        [1, "no", "a:b"],
    ],
)
def test_yaml_values_read_back_as_themselves(value):
    shown = init_files.yaml_value(value)
    assert YAML(typ="safe").load(f"key: {shown}\nlist: [{shown}]\n") == {"key": value, "list": [value]}


def test_the_pre_commit_hooks_are_the_ones_mtc_publishes():
    published = {
        hook["id"]: hook for hook in YAML(typ="safe").load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    written = init_files.render("init_pre-commit-config.yaml.j2", {"module": "app"})
    hooks = {hook["id"]: hook for hook in YAML(typ="safe").load(written)["repos"][0]["hooks"]}
    assert set(hooks) == set(published)
    for hook_id, hook in hooks.items():
        for key in ("entry", "files", "pass_filenames"):
            assert hook[key] == published[hook_id][key], (hook_id, key)


def test_the_pre_commit_config_runs_the_hooks_and_catches_a_stale_module(team_repo, tmp_path):
    pytest.importorskip("pre_commit")
    assert mtc(team_repo, "init", "--target", "mypkg.jobs:write_marker").returncode == 0
    assert mtc(team_repo, "compile").returncode == 0
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # where `mtc` is
        "PYTHONPATH": str(REPO),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
    }

    def pre_commit() -> subprocess.CompletedProcess:
        subprocess.run(["git", "add", "-A"], cwd=team_repo, check=True, timeout=30)
        command = [sys.executable, "-m", "pre_commit", "run", "--all-files"]
        return subprocess.run(
            command, cwd=team_repo, env=environment, capture_output=True, text=True, timeout=120
        )

    passed = pre_commit()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "mtc lint" in passed.stdout and "mtc compile --check" in passed.stdout
    spec = team_repo / SPEC
    spec.write_text(spec.read_text().replace("timeout: 6h", "timeout: 5h"))
    stale = pre_commit()
    assert stale.returncode == 1 and "generated/team_repo.py is out of date" in stale.stdout, stale.stdout


def test_init_imports_neither_torch_nor_modal(tmp_path):
    program = (
        "import sys\n"
        "from compiler.cli import main\n"
        "try:\n"
        "    main(['init', 'repo'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'modal', 'numpy'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
