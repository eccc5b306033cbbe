"""Generated modules imported with the real `modal` package offline: Modal sees exactly what the spec says."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.spec.pynames import variable_name
from tests.helpers.generated_checks import (
    Recorder,
    actual_info,
    decorator_keywords,
    expected_info,
    import_generated,
    modal_object,
)
from tests.helpers.image_checks import check_image_chains

ROOT = Path(__file__).resolve().parents[2]
SPECS = [
    "specs/deployment.yaml",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests/specs/valid").glob("*.yaml")),
]
CASES = [(spec, None) for spec in SPECS] + [("specs/deployment.yaml", "debug")]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """spec, profile -> (resolved app, module source, imported module)."""
    folder = tmp_path_factory.mktemp("generated")
    out = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for index, (spec, profile) in enumerate(CASES):
            result = check(spec, profile)
            assert not result.has_errors, [d.format() for d in result.diagnostics]
            source = render(result.app)
            path = folder / f"case_{index}.py"
            path.write_text(source, encoding="utf-8")
            out[(spec, profile)] = (result.app, source, import_generated(path))
    finally:
        os.chdir(cwd)
    return out


@pytest.mark.parametrize(("spec", "profile"), CASES)
def test_every_function_has_the_resources_of_the_spec(compiled, spec, profile):
    app, _, module = compiled[(spec, profile)]
    assert module.app.name == app.name
    for name, function in app.functions.items():
        assert actual_info(modal_object(module, function)) == expected_info(app, function), name


@pytest.mark.parametrize(("spec", "profile"), CASES)
def test_autoscaling_and_image_choice_are_in_the_decorator(compiled, spec, profile):
    app, source, _ = compiled[(spec, profile)]
    for name, function in app.functions.items():
        keywords = decorator_keywords(source, name)
        assert keywords.get("min_containers") == function.min_containers
        # a sweep's max_parallel bounds its trials through max_containers (containers: x a cluster's size)
        parallel = function.sweep.max_parallel if function.sweep else None
        per_trial = parallel * function.nodes if parallel else None
        assert keywords.get("max_containers") == (function.max_containers or per_trial)
        assert keywords.get("scaledown_window") == function.scaledown_window_s
        assert keywords.get("image") == (variable_name(function.image, "image") if function.image else None)


@pytest.mark.parametrize(("spec", "profile"), CASES)
def test_every_image_is_built_in_the_declared_order(compiled, spec, profile):
    app, source, _ = compiled[(spec, profile)]
    check_image_chains(app, source)


def test_the_debug_profile_changes_resources_only(compiled):
    base, _, _ = compiled[("specs/deployment.yaml", None)]
    debug, _, module = compiled[("specs/deployment.yaml", "debug")]
    assert module.train.info().gpus == [("T4", 1)]
    assert module.train.info().cpu == 8
    assert [f.run for f in debug.functions.values()] == [f.run for f in base.functions.values()]


def test_a_function_body_calls_its_target_with_the_arguments(compiled, monkeypatch):
    _, _, module = compiled[("tests/specs/valid/options.yaml", None)]
    target = types.ModuleType("runtime.sweep")
    target.run = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "runtime.sweep", target)
    with pytest.warns(UserWarning):  # Modal: volumes are not mounted in .local()
        received = module.sweep.local(steps=5, layers=["a"])
        defaulted = module.sweep.local()
    assert received["steps"] == 5
    assert received["layers"] == ["a"]
    assert defaulted["layers"] == [64, 128, 'x"y']  # the spec's default, a fresh list on every call
    assert defaulted["layers"] is not module.sweep.local()["layers"]
    assert received["note"] == "line one\nline two"
    assert received["run"] == "shadows the target's name"


def entrypoint(module):
    return module.main.info.raw_f


def test_the_entrypoint_dispatches_the_action_with_the_options_given(compiled, monkeypatch):
    _, _, module = compiled[("specs/deployment.yaml", None)]
    train, evaluate = Recorder(), Recorder()
    monkeypatch.setattr(
        module, "ACTIONS", {"train": (train, ["config", "resume"]), "evaluate": (evaluate, [])}
    )
    entrypoint(module)(action="train", config="specs/other.yaml", resume=None, checkpoint=None)
    assert train.calls == [{"config": "specs/other.yaml"}]
    assert evaluate.calls == []


def test_the_entrypoint_accepts_hyphens_in_action_names(compiled, monkeypatch):
    _, _, module = compiled[("specs/deployment.yaml", None)]
    smoke = Recorder()
    monkeypatch.setattr(module, "ACTIONS", {"test_mamba_cuda": (smoke, [])})
    entrypoint(module)(action="test-mamba-cuda", config=None, resume=None, checkpoint=None)
    assert smoke.calls == [{}]


def test_the_entrypoint_refuses_an_unknown_action_and_a_foreign_option(compiled):
    _, _, module = compiled[("specs/deployment.yaml", None)]
    with pytest.raises(SystemExit, match="choose one of: test_mamba_cuda, train, evaluate, populate_cache"):
        entrypoint(module)(action="trian", config=None, resume=None, checkpoint=None)
    with pytest.raises(SystemExit, match="--action test_mamba_cuda does not take --checkpoint"):
        entrypoint(module)(action="test_mamba_cuda", config=None, resume=None, checkpoint="x.pt")


def test_modal_run_help_works_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env["HOME"] = str(tmp_path)  # no ~/.modal.toml
    modal = Path(sys.executable).with_name("modal")
    done = subprocess.run(
        [str(modal), "run", "generated/mamba_eeg.py", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    for option in ("--action", "--config", "--resume / --no-resume", "--checkpoint"):
        assert option in done.stdout


@pytest.mark.parametrize(("spec", "profile"), CASES)
def test_ruff_accepts_generated_modules(compiled, spec, profile, tmp_path):
    _, source, _ = compiled[(spec, profile)]
    path = tmp_path / "module.py"
    path.write_text(source, encoding="utf-8")
    ruff = [sys.executable, "-m", "ruff"]
    checked = subprocess.run(
        [*ruff, "check", "--config", str(ROOT / "pyproject.toml"), str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout
    formatted = subprocess.run(
        [*ruff, "format", "--check", "--diff", "--line-length", "88", str(path)],
        capture_output=True,
        text=True,
    )
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
