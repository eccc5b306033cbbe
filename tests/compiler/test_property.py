"""Property: any string in any string field either fails the check with a positioned diagnostic, or compiles
to a module that imports with the real `modal` package and carries exactly that value.

Each example puts an arbitrary string (any Unicode, quotes, backslashes, newlines, ``{{ }}``, ``\"\"\"``) into
one or two fields of an otherwise valid spec, so that many examples reach the renderer.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import io
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from compiler.codegen.emit import verify
from compiler.codegen.functions import parameters
from compiler.codegen.literals import RenderError
from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.generated_checks import (
    actual_info,
    expected_info,
    import_generated,
    modal_object,
    signature_defaults,
)
from tests.helpers.image_checks import check_image_chains

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "version": 1,
    "app": {"name": "prop-app", "secrets": ["app-secret"]},
    "images": {
        "img": {
            "from": "nvidia/cuda:12.1.0-runtime-ubuntu22.04",
            "python": "3.11",
            "steps": [
                {"entrypoint": []},
                {"apt": ["git"]},
                {"env": {"VAR": "value"}},
                {"pip": ["numpy"]},
                {"run": ["echo ok"]},
                {"workdir": "/app"},
            ],
            "add_local": {"python": ["runtime"], "dirs": {"specs": "/app/specs"}},
        },
        "child": {
            "base": "img",
            "steps": [
                {"uv_pip": {"packages": ["torch"], "index_url": "https://i", "extra_options": "--no-deps"}}
            ],
            "add_local": {"files": {"specs/train.yaml": "/app/train.yaml"}},
        },
    },
    "volumes": {
        "vol": {"volume": "vol-name", "environment": "vol-env"},
        "bkt": {
            "bucket": "bucket-name",
            "key_prefix": "prefix/",
            "secret": "bucket-secret",
            "read_only": True,
        },
    },
    "functions": {
        "job": {
            "run": "runtime.jobs:job",
            "image": "img",
            "timeout": 60,
            "args": {"text": "default", "items": ["a", "b"]},
            "volumes": {"/vol": "vol", "/bkt": "bkt"},
            "secrets": ["fn-secret", {"name": "env-secret", "environment": "secret-env"}],
            "env": {"FN_VAR": "fn-value"},
            "region": "us-east",
            "cloud": "aws",
        }
    },
}

# Where a string can go: a path into BASE (the last part is replaced or, for a list, its first item).
FIELDS = [
    ("app", "name"),
    ("app", "secrets", 0),
    ("images", "img", "from"),
    ("images", "img", "steps", 1, "apt", 0),
    ("images", "img", "steps", 2, "env", "VAR"),
    ("images", "img", "steps", 3, "pip", 0),
    ("images", "img", "steps", 4, "run", 0),
    ("images", "img", "steps", 5, "workdir"),
    ("images", "img", "add_local", "dirs", "specs"),
    ("images", "child", "steps", 0, "uv_pip", "packages", 0),
    ("images", "child", "steps", 0, "uv_pip", "index_url"),
    ("images", "child", "steps", 0, "uv_pip", "extra_options"),
    ("images", "child", "add_local", "files", "specs/train.yaml"),
    ("volumes", "vol", "volume"),
    ("volumes", "vol", "environment"),
    ("volumes", "bkt", "bucket"),
    ("volumes", "bkt", "key_prefix"),
    ("volumes", "bkt", "secret"),
    ("functions", "job", "args", "text"),
    ("functions", "job", "args", "items", 0),
    ("functions", "job", "secrets", 0),
    ("functions", "job", "secrets", 1, "name"),
    ("functions", "job", "secrets", 1, "environment"),
    ("functions", "job", "env", "FN_VAR"),
    ("functions", "job", "region"),
    ("functions", "job", "cloud"),
]
KEY_FIELDS = [  # where a string is a mapping key
    ("images", "img", "add_local", "dirs"),
    ("images", "child", "add_local", "files"),
    ("functions", "job", "volumes"),
    ("functions", "job", "args"),
]
SPECIAL = ['"""', "'''", "{{ x }}", "{% if %}", "\\", "\n", "\r\n", "\x00", "\u2028", "'", '"', "/", "é☃𝔘"]
strings = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
    st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=4).map("".join),
    st.builds(lambda a, b: "/" + a + b, st.text(max_size=8), st.sampled_from(SPECIAL)),
)


def with_string(spec: dict, path: tuple, value: str) -> None:
    node = spec
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def with_key(spec: dict, path: tuple, key: str) -> None:
    node = spec
    for part in path:
        node = node[part]
    first = next(iter(node))
    node[key] = node.pop(first)


def project(folder: Path) -> Path:
    """A project folder where BASE's run target and local paths exist, so its specs can compile."""
    (folder / "specs").mkdir()
    (folder / "specs" / "train.yaml").write_text("{}\n", encoding="utf-8")
    (folder / "runtime").mkdir()
    (folder / "runtime" / "__init__.py").write_text("", encoding="utf-8")
    (folder / "runtime" / "jobs.py").write_text(
        "def job(text='', items=()):\n    return text\n", encoding="utf-8"
    )
    return folder


def dump(spec: dict, path: Path) -> None:
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_unicode = True
    buffer = io.StringIO()
    yaml.dump(spec, buffer)
    path.write_text(buffer.getvalue(), encoding="utf-8")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.sampled_from(FIELDS + KEY_FIELDS), strings), min_size=1, max_size=2),
)
def test_any_string_is_refused_with_a_diagnostic_or_carried_exactly(tmp_path_factory, edits):
    folder = project(tmp_path_factory.mktemp("prop"))
    spec = copy.deepcopy(BASE)
    for path, value in edits:
        (with_key if path in KEY_FIELDS else with_string)(spec, path, value)
    spec_path = folder / "spec.yaml"
    dump(spec, spec_path)

    result = check(str(spec_path))
    if result.has_errors:
        assert all(d.path == str(spec_path) and d.line >= 1 and d.col >= 1 for d in result.diagnostics)
        event("refused by the check")
        return
    try:
        source = render(result.app)
    except RenderError as refused:
        assert refused.message and isinstance(refused.path, tuple)
        event("refused by the renderer")
        return
    event("compiled")
    verify(source, "prop.py")
    module_path = folder / "prop_module.py"
    module_path.write_text(source, encoding="utf-8")
    module = import_generated(module_path)
    app = result.app

    assert module.app.name == app.name
    check_image_chains(app, source)
    for name, function in app.functions.items():
        assert actual_info(modal_object(module, function)) == expected_info(app, function)
        typed = parameters(function)
        assert signature_defaults(source, name) == {p.name: p.type.signature_default for p in typed}
        assert body_defaults(source, name) == {
            arg.name: list(arg.default) for arg in function.args if isinstance(arg.default, tuple)
        }


def body_defaults(source: str, function_name: str) -> dict[str, object]:
    """``{parameter: default}`` of the ``if name is None: name = DEFAULT`` lines that open a generated
    function's body (list and mapping defaults are not written in the signature)."""
    node = next(
        n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == function_name
    )
    return {
        statement.test.left.id: ast.literal_eval(statement.body[0].value)
        for statement in node.body
        if isinstance(statement, ast.If) and isinstance(statement.test, ast.Compare)
    }


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(FIELDS), strings | st.text(min_size=60, max_size=150)), max_size=3
    )
)
def test_ruff_accepts_modules_with_any_values(tmp_path_factory, edits):
    """The layout is ruff's at line length 88 and 110 whatever the values, and `ruff check` passes."""
    folder = project(tmp_path_factory.mktemp("ruff"))
    spec = copy.deepcopy(BASE)
    for path, value in edits:
        with_string(spec, path, value)
    dump(spec, folder / "spec.yaml")
    result = check(str(folder / "spec.yaml"))
    if result.has_errors:
        return
    source = render(dataclasses.replace(result.app, spec_path="specs/deployment.yaml"))
    event("has long lines" if "# ruff: noqa: E501" in source else "fits in 88 columns")
    module = folder / "module.py"
    module.write_text(source, encoding="utf-8")
    ruff = [sys.executable, "-m", "ruff"]
    checked = subprocess.run(
        [*ruff, "check", "--config", str(ROOT / "pyproject.toml"), str(module)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout
    for length in ("88", "110"):
        formatted = subprocess.run(
            [*ruff, "format", "--check", "--diff", "--line-length", length, str(module)],
            capture_output=True,
            text=True,
        )
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr
