"""`run` targets checked against what ships and what they take; async targets; spec-relative local paths;
typed `mtc run --arg`.

A small project in a temporary folder (a ``pyproject.toml``, ``specs/deployment.yaml``, a package ``mypkg``)
stands for a team's repository: the spec ships ``specs/`` itself (``".": /root/specs``) and ``mypkg``.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import lint
from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import Recorder, import_generated

REPO = Path(__file__).resolve().parents[2]
TARGET_RULES = (
    "run-module-missing",
    "run-not-shipped",
    "run-function-missing",
    "run-target-shape",
    "run-arg-unknown",
    "run-arg-missing",
    "run-arg-type",
)

JOBS = """\
import json


def train(settings: str, epochs: int = 1, xs: list[int] = [1], rate: float = 0.1):
    from runtime.paths import resolve

    seen = {"settings": resolve(settings).read_text(), "epochs": epochs, "xs": xs}
    resolve("/results/seen.json").write_text(json.dumps(seen))


def positional(a, /, b=1):
    return a


async def fetch(n: int = 1) -> int:
    return n * 2


async def record_later(n: int = 1):
    import asyncio

    from runtime.paths import resolve

    await asyncio.sleep(0)
    resolve("/results/later.json").write_text(json.dumps({"n": n}))


async def stream():
    yield 1


def numbers():
    yield 1


class Job:
    pass
"""

SPEC = """\
version: 1
app: {name: targets-test}
images:
  base:
    from: debian_slim
    python: "3.11"
    steps:
      - workdir: /root
    add_local:
      python: [mypkg, runtime]
      dirs: {".": /root/specs}
volumes:
  results: {volume: targets-results}
defaults: {image: base, cpu: 1, memory: 1GiB, timeout: 1m, volumes: {/results: results}}
functions:
  train:
    run: mypkg.jobs:train
    args: {settings: specs/settings.txt, epochs: 2, xs: [1, 2]}
  fetch:
    run: mypkg.jobs:fetch
    args: {n: 3}
  later:
    run: mypkg.jobs:record_later
    args: {n: 1}
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "proj"
    (root / "specs").mkdir(parents=True)
    (root / "mypkg").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (root / "mypkg" / "__init__.py").write_text("")
    (root / "mypkg" / "jobs.py").write_text(JOBS)
    (root / "specs" / "settings.txt").write_text("shipped settings")
    (root / "specs" / "deployment.yaml").write_text(SPEC)
    (tmp_path / "elsewhere").mkdir()
    return root


def lint_spec(project: Path, text: str):
    path = project / "specs" / "deployment.yaml"
    path.write_text(text)
    return check(str(path)).diagnostics


def position(text: str, needle: str) -> tuple[int, int]:
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


# ------------------------------------------------------------------------------------------------- lint


def test_the_project_spec_lints_clean_from_any_folder(project, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    assert check(str(project / "specs" / "deployment.yaml")).diagnostics == []


def test_the_example_spec_lints_clean_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for profile in (None, "debug"):
        result = check(str(REPO / "specs" / "deployment.yaml"), profile)
        assert not result.has_errors, [d.format() for d in result.diagnostics]


@pytest.mark.parametrize(
    ("rule", "old", "new", "needle", "words"),
    [
        ("run-module-missing", "mypkg.jobs:train", "mypkg.job:train", "mypkg.job:train", "not found"),
        (
            "run-function-missing",
            "mypkg.jobs:train",
            "mypkg.jobs:trian",
            "mypkg.jobs:trian",
            "did you mean 'train'",
        ),
        ("run-target-shape", "mypkg.jobs:fetch", "mypkg.jobs:stream", "mypkg.jobs:stream", "async generator"),
        ("run-target-shape", "mypkg.jobs:fetch", "mypkg.jobs:numbers", "mypkg.jobs:numbers", "a generator"),
        ("run-target-shape", "mypkg.jobs:fetch", "mypkg.jobs:Job", "mypkg.jobs:Job", "a class"),
        ("run-arg-unknown", "epochs: 2", "epocs: 2", "epocs", "did you mean 'epochs'"),
        (
            "run-arg-unknown",
            "mypkg.jobs:fetch\n    args: {n: 3}",
            "mypkg.jobs:positional\n    args: {a: 3}",
            "a: 3",
            "only by position",
        ),
        ("run-arg-missing", "{settings: specs/settings.txt, ", "{", "mypkg.jobs:train", "requires settings"),
        ("run-arg-type", "epochs: 2", "epochs: ten", "ten", "epochs: int"),
        ("run-arg-type", "xs: [1, 2]", "xs: [1, x]", "[1, x]", "list of integers"),
        ("run-not-shipped", "[mypkg, runtime]", "[runtime]", "mypkg.jobs:train", "add_local.python: [mypkg]"),
        ("local-path-missing", '".": /root/specs', "gone: /root/specs", "gone", "does not exist"),
    ],
)
def test_each_rule_fires_at_the_line_that_declares_the_mistake(project, rule, old, new, needle, words):
    assert old in SPEC
    text = SPEC.replace(old, new, 1)
    found = [d for d in lint_spec(project, text) if d.rule == rule]
    here = [d for d in found if (d.line, d.col) == position(text, needle)]
    assert len(here) == 1, [d.format() for d in found]
    assert here[0].severity == "error" and words in here[0].message, here[0].message


def test_a_pip_step_ships_the_package_when_its_name_matches_loosely(project):
    text = SPEC.replace("[mypkg, runtime]", "[runtime]")
    text = text.replace("      - workdir: /root\n", '      - pip: ["MyPkg>=1.0"]\n      - workdir: /root\n')
    assert not [d for d in lint_spec(project, text) if d.rule == "run-not-shipped"]


@pytest.mark.parametrize(
    "step",
    ['pip: ["."]', 'pip: ["git+https://example.com/mypkg.git"]', 'run: ["pip install -r requirements.txt"]'],
)
def test_a_step_that_installs_something_unnamed_is_trusted(project, step):
    text = SPEC.replace("[mypkg, runtime]", "[runtime]")
    text = text.replace("      - workdir: /root\n", f"      - {step}\n      - workdir: /root\n")
    assert not [d for d in lint_spec(project, text) if d.rule == "run-not-shipped"]


def test_a_function_without_an_image_ships_nothing_but_the_standard_library(project):
    text = SPEC.replace("defaults: {image: base, ", "defaults: {")
    text += "  stamp:\n    run: platform:platform\n"
    found = [d for d in lint_spec(project, text) if d.rule == "run-not-shipped"]
    runs = ("mypkg.jobs:train", "mypkg.jobs:fetch", "mypkg.jobs:record_later")
    assert {d.line for d in found} == {position(text, run)[0] for run in runs}  # not platform:platform
    assert all("Modal's default image" in d.message for d in found)


def test_target_rules_are_described_and_in_the_readme_table():
    readme = (REPO / "docs" / "lint-rules.md").read_text("utf-8")
    for rule_id in (*TARGET_RULES, "local-path-missing"):
        rule = lint.RULES[rule_id]
        assert rule.severity == "error"
        assert f"| `{rule.id}` | {rule.severity} | {rule.summary} | {rule.fix} |" in readme, rule_id


# ------------------------------------------------------------------------------------ the generated module


def compiled(project: Path):
    result = check(str(project / "specs" / "deployment.yaml"))
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    source = render(result.app, module_dir=project / "generated")
    path = project / "generated" / "targets_test.py"
    path.parent.mkdir()
    path.write_text(source)
    return source, import_generated(path)


def test_an_async_target_gets_an_async_function_that_awaits_it(project, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    monkeypatch.syspath_prepend(str(project))  # where the container would find mypkg
    source, module = compiled(project)
    (fetch,) = [n for n in ast.parse(source).body if getattr(n, "name", None) == "fetch"]
    assert isinstance(fetch, ast.AsyncFunctionDef)
    assert any(isinstance(n, ast.Await) for n in ast.walk(fetch))
    call = module.fetch.local(n=4)
    assert inspect.isawaitable(call) and asyncio.run(call) == 8
    (train,) = [n for n in ast.parse(source).body if getattr(n, "name", None) == "train"]
    assert isinstance(train, ast.FunctionDef)  # a plain target stays plain


def test_local_dirs_resolve_from_the_module_not_the_current_folder(project, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    source, module = compiled(project)
    assert 'SPEC_DIR = Path(__file__).parent.parent / "specs"' in source
    assert ".add_local_dir(SPEC_DIR, " in source
    assert module.SPEC_DIR.resolve() == (project / "specs").resolve()


def test_a_list_parameter_is_a_list_whose_default_the_body_fills_in(project, monkeypatch):
    monkeypatch.syspath_prepend(str(project))
    source, _ = compiled(project)
    assert "xs: list[int] | None = None" in source and "    if xs is None:\n        xs = [1, 2]\n" in source
    assert "epochs: int = 2" in source and 'settings: str = "specs/settings.txt"' in source


def test_the_entrypoint_decodes_json_text_into_the_list_the_function_receives(project):
    _, module = compiled(project)
    recorder = Recorder()
    module.ACTIONS["train"] = (recorder, module.ACTIONS["train"][1])
    module.main.info.raw_f(action="train", settings=None, epochs=None, xs="[3, 4]", n=None)
    assert recorder.calls == [{"xs": [3, 4]}]


@pytest.mark.parametrize("text", ["abc", '{"a": 1}'])
def test_the_entrypoint_refuses_an_option_that_is_not_a_json_list(project, text):
    _, module = compiled(project)
    entrypoint = module.main.info.raw_f
    with pytest.raises(SystemExit, match=r"--xs '.*': expected a list in JSON"):
        entrypoint(action="train", settings=None, epochs=None, xs=text, n=None)


# ------------------------------------------------------------------------------------------- mtc run --arg


def recorded(capfd, tmp_path, *args: str) -> tuple[int, dict, str]:
    volumes = tmp_path / "volumes"
    code, _, err = mtc(
        capfd, "run", "record", str(REPO / "tests/specs/run_args.yaml"), "--volumes-dir", str(volumes), *args
    )
    out = volumes / "run-args-results" / "args.json"
    return code, json.loads(out.read_text()) if out.exists() else {}, err


def test_arg_values_reach_the_target_typed_by_its_annotations(capfd, tmp_path):
    code, seen, err = recorded(
        capfd, tmp_path, "--arg", "xs=[5]", "--arg", "n=7", "--arg", "ratio=1e-3", "--arg", "tag=12"
    )
    assert code == 0, err
    assert seen == {"xs": [[5], "list"], "n": [7, "int"], "ratio": [0.001, "float"], "tag": ["12", "str"]}


def test_a_list_arg_accepts_yaml_flow_syntax(capfd, tmp_path):
    code, seen, err = recorded(capfd, tmp_path, "--arg", "xs=[3, 4,5]")
    assert code == 0, err
    assert seen["xs"] == [[3, 4, 5], "list"]


@pytest.mark.parametrize(
    ("pair", "words"),
    [
        ("n=abc", "--arg n=abc: expected an integer for n (tests.targets:record_args declares n: int)"),
        ("xs=[a]", "expected a list of integers"),
        ("xs=5", "expected a list of integers"),
        ("ratio=nan", "expected a number"),
    ],
)
def test_a_value_of_the_wrong_type_exits_1_naming_the_parameter_type_and_value(capfd, tmp_path, pair, words):
    code, seen, err = recorded(capfd, tmp_path, "--arg", pair)
    assert code == 1 and seen == {}
    assert words in err and "Traceback" not in err, err


def test_run_from_another_folder_finds_shipped_files_as_the_container_does(project, capfd, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    volumes = project.parent / "volumes"
    spec = str(project / "specs" / "deployment.yaml")
    code, _, err = mtc(capfd, "run", "train", spec, "--volumes-dir", str(volumes), "--arg", "xs=[5]")
    assert code == 0, err
    seen = json.loads((volumes / "targets-results" / "seen.json").read_text())
    # specs/settings.txt is /root/specs/settings.txt in the container: the spec's own folder here
    assert seen == {"settings": "shipped settings", "epochs": 2, "xs": [5]}


def test_the_example_train_finds_its_config_from_another_folder(tmp_path, monkeypatch):
    from compiler.cli.run import workdir_stand_in

    monkeypatch.chdir(tmp_path)
    result = check(str(REPO / "specs" / "deployment.yaml"), "debug")
    app = result.app
    workdir = workdir_stand_in(app, app.functions["train"])
    assert (workdir / app.functions["train"].arg_dict["config"]).is_file()
    assert workdir == REPO


def test_modal_cli_takes_a_list_parameter_as_text_offline(project, tmp_path):
    """Modal 1.6's CLI refuses a ``list[int]`` annotation; the entrypoint's ``str`` option is accepted."""
    compiled(project)
    done = subprocess.run(
        [sys.executable, "-m", "modal", "run", "generated/targets_test.py", "--help"],
        cwd=project,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "--xs TEXT" in done.stdout and "--epochs INTEGER" in done.stdout


def test_null_for_an_optional_parameter_is_refused_for_modal(capfd, tmp_path):
    code, seen, err = recorded(capfd, tmp_path, "--arg", "xs=null", "--backend", "modal")
    assert code == 1 and "Modal's CLI cannot pass null" in err


def test_null_reaches_an_optional_parameter_locally(capfd, tmp_path):
    code, seen, err = recorded(capfd, tmp_path, "--arg", "xs=null")
    assert code == 0, err
    assert seen["xs"] == [None, "NoneType"]


def test_an_async_target_runs_to_completion_locally(project, capfd, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    volumes = project.parent / "volumes"
    spec = str(project / "specs" / "deployment.yaml")
    code, _, err = mtc(capfd, "run", "later", spec, "--volumes-dir", str(volumes), "--arg", "n=5")
    assert code == 0, err
    assert json.loads((volumes / "targets-results" / "later.json").read_text()) == {"n": 5}


def test_compile_to_another_output_finds_the_spec_folder_from_there(project, capsys, monkeypatch):
    monkeypatch.chdir(project.parent / "elsewhere")
    output = project.parent / "out" / "apps" / "targets_test.py"
    code, _, err = mtc(capsys, "compile", str(project / "specs" / "deployment.yaml"), "-o", str(output))
    assert code == 0, err
    assert import_generated(output).SPEC_DIR.resolve() == (project / "specs").resolve()


def test_a_namespace_folder_nearer_the_spec_does_not_hide_the_project_package(tmp_path):
    """Like Python: ``tests/runtime/`` (no ``__init__.py``) beside a spec does not hide the ``runtime``
    package at the project root, which is where the target's module is."""
    from compiler.spec.targets import module_file, read_target

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text("def main(config: str) -> None:\n    pass\n")
    spec_dir = tmp_path / "tests"
    (spec_dir / "pkg").mkdir(parents=True)  # a namespace folder: test files, no __init__.py
    assert module_file("pkg.job", spec_dir) == tmp_path / "pkg" / "job.py"
    assert read_target("pkg.job", "main", spec_dir).target.parameter("config") is not None
