"""Arguments: required ones, null, nested lists and mappings, declared types; the same values reach the target
through `mtc run` and through the generated entrypoint (offline, the real modal package)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.spec.ir import Arg
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import Recorder, import_generated

REPO = Path(__file__).resolve().parents[2]
SHAPES = str(REPO / "tests/specs/valid/args.yaml")
OPTS = {"lr": 0.1, "layers": [64, {"kind": "conv", "width": 3}], "tags": None}

BASE = """\
version: 1
app: {name: args-lint}
images:
  base: {from: debian_slim, python: "3.11", steps: [{workdir: /root}], add_local: {python: [pkg]}}
functions:
  job:
    run: pkg.job:run
    image: base
    timeout: 1h
    args:
"""
ARGS_LINE = 11


def project(tmp_path, target: str = "def run(**kwargs):\n    return kwargs\n") -> Path:
    (tmp_path / "pkg").mkdir(exist_ok=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(target)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def findings(tmp_path, args: str):
    path = project(tmp_path) / "spec.yaml"
    path.write_text(BASE + args)
    return check(str(path)).diagnostics


def test_the_spec_resolves_each_shape():
    args = {arg.name: arg for arg in check(SHAPES).app.functions["shapes"].args}
    assert args["config"] == Arg("config", required=True, declared="str")
    assert args["note"] == Arg("note", None)
    assert args["limit"] == Arg("limit", None, declared="int | None")
    assert args["opts"].default == {"lr": 0.1, "layers": (64, {"kind": "conv", "width": 3}), "tags": None}
    assert args["look_alike"] == Arg("look_alike", {"type": "str", "default": "x"}, declared="dict")


@pytest.mark.parametrize(
    ("arg", "rule", "says"),
    [
        ("x: {type: str, required: false}", "schema/const", "expected True"),
        ("x: {type: 5, required: true}", "schema/type", "a Python annotation such as str"),
        ("x: {type: floatt, required: true}", "render/argument-type", "type 'floatt' is not an annotation"),
        ("x: {type: int, default: ten}", "render/argument-type", "the default 'ten' is not an integer"),
    ],
)
def test_a_wrong_explicit_form_is_an_error_at_the_argument(tmp_path, arg, rule, says):
    found = [d for d in findings(tmp_path, f"      {arg}\n") if d.severity == "error"]
    assert [d.rule for d in found] == [rule], [d.format() for d in found]
    assert found[0].line == ARGS_LINE and says in found[0].message


def test_a_near_explicit_form_warns_that_it_is_a_mapping_default(tmp_path):
    (found,) = findings(tmp_path, "      x: {type: str, required: true, default: a}\n")
    assert found.rule == "arg-declaration-shape" and found.severity == "warning" and found.line == ARGS_LINE


def test_a_required_arg_missing_from_mtc_run_is_a_clear_error(capfd, tmp_path):
    code, _, err = mtc(capfd, "run", "shapes", SHAPES, "--volumes-dir", str(tmp_path))
    assert code == 1
    assert "shapes needs --arg config=VALUE --arg sizes=VALUE (config, sizes: no default in the spec)" in err
    assert "Traceback" not in err


def test_values_reach_the_target_exactly_through_mtc_run(capfd, tmp_path):
    code, _, err = mtc(
        capfd,
        "run",
        "shapes",
        SHAPES,
        "--volumes-dir",
        str(tmp_path),
        "--arg",
        "config=specs/x.yaml",
        "--arg",
        "sizes=[1, 2]",
        "--arg",
        "limit=3",
    )
    assert code == 0, err
    seen = json.loads((tmp_path / "args-results" / "kwargs.json").read_text())
    assert seen == {
        "config": ["specs/x.yaml", "str"],
        "sizes": [[1, 2], "list"],
        "note": [None, "NoneType"],
        "limit": [3, "int"],
        "opts": [OPTS, "dict"],
        "steps": [[1, 2.5, "three", True, None], "list"],
        "look_alike": [{"type": "str", "default": "x"}, "dict"],
    }


@pytest.mark.parametrize(
    ("pair", "says"), [("sizes=[a]", "a list of integers"), ("limit=x", "an integer or null")]
)
def test_a_value_of_the_declared_type_is_checked_by_mtc_run(capfd, tmp_path, pair, says):
    code, _, err = mtc(
        capfd, "run", "shapes", SHAPES, "--arg", "config=c", "--arg", "sizes=[1]", "--arg", pair
    )
    assert code == 1 and says in err and "the spec declares type" in err


@pytest.fixture(scope="module")
def module(tmp_path_factory):
    result = check(SHAPES)
    path = tmp_path_factory.mktemp("args") / "args_app.py"
    path.write_text(render(result.app))
    return import_generated(path)


def call_entrypoint(module, **options):
    recorder = Recorder()
    module.ACTIONS["shapes"] = (recorder, module.ACTIONS["shapes"][1])
    given = {name: None for name in ("config", "sizes", "note", "limit", "opts", "steps", "look_alike")}
    module.main.info.raw_f(action="shapes", **{**given, **options})
    return recorder.calls


def test_the_entrypoint_requires_what_has_no_default(module):
    with pytest.raises(SystemExit, match="--action shapes needs --config --sizes"):
        call_entrypoint(module, note="x")


def test_the_entrypoint_decodes_lists_and_mappings_from_json_text(module):
    calls = call_entrypoint(module, config="c", sizes="[3]", opts=json.dumps(OPTS))
    assert calls == [{"config": "c", "sizes": [3], "opts": OPTS}]


def test_the_generated_function_fills_in_nested_defaults_and_keeps_them_apart(module, monkeypatch):
    import sys
    import types

    target = types.ModuleType("tests.targets")
    target.record_kwargs = lambda **kwargs: kwargs
    monkeypatch.setitem(sys.modules, "tests.targets", target)
    with pytest.warns(UserWarning):  # Modal: volumes are not mounted in .local()
        first = module.shapes.local(config="c", sizes=[1])
        first["opts"]["layers"].append("changed")
        second = module.shapes.local(config="c", sizes=[1])
    assert second["opts"] == OPTS and second["note"] is None and second["limit"] is None


def test_diff_shows_required_and_declared_args(capfd, tmp_path):
    old, new = project(tmp_path) / "old.yaml", tmp_path / "new.yaml"
    old.write_text(BASE + "      config: a\n")
    new.write_text(
        BASE + "      config: {type: str, required: true}\n      limit: {type: int | None, default: null}\n"
    )
    code, out, _ = mtc(capfd, "diff", str(old), str(new))
    assert code == 2
    assert '~ job.args.config: "a" → required (str)' in out
    assert "+ job.args.limit: null (int | None)" in out


def test_a_declared_type_that_contradicts_the_target_is_an_error(tmp_path):
    project(tmp_path, "def run(n: int = 1):\n    return n\n")
    spec = BASE + "      n: {type: str, required: true}\n"
    (tmp_path / "spec.yaml").write_text(spec)
    found = [d for d in check(str(tmp_path / "spec.yaml")).diagnostics if d.rule == "run-arg-type"]
    assert len(found) == 1 and "args.n has type str, but pkg.job:run declares n: int" in found[0].message


def test_hostile_nesting_is_an_error_not_a_traceback(capfd, tmp_path):
    deep_type = "int | " * 3000 + "int"
    (found,) = findings(tmp_path, f'      x: {{type: "{deep_type}", required: true}}\n')
    assert found.rule == "schema/max-length"
    (found,) = findings(tmp_path, "      x: " + "[" * 60 + "]" * 60 + "\n")
    assert (
        found.rule == "render/argument-type"
        and "nests lists and mappings 60 deep; at most 50" in found.message
    )
    deep = "[" * 3000 + "]" * 3000
    code, _, err = mtc(capfd, "run", "shapes", SHAPES, "--arg", "config=c", "--arg", f"sizes={deep}")
    assert code == 1 and "Traceback" not in err and "expected a list of integers" in err
