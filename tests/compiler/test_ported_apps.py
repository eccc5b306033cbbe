"""Public Modal apps ported to specs (tests/fixtures/ported/<name>/): the generated module and the
hand-written one, both imported with the real ``modal`` package offline, declare the same functions.

Each fixture holds ``original.py`` (the app's Modal side, its training code left out), ``deployment.yaml``
(the port) and the run target the spec calls. Every ``fn.info()`` field is compared, and the images'
build layers (Dockerfile commands, read offline by :func:`tests.helpers.image_checks.image_layers`).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.generated_checks import import_generated
from tests.helpers.image_checks import image_layers

PORTED = Path(__file__).parents[1] / "fixtures" / "ported"

# What each port cannot say yet, by fixture: the fn.info() fields that differ and why. A field that starts
# to match (the spec gained the key) fails the test, so this list stays true. Every port is complete now.
NOT_EXPRESSIBLE: dict[str, set[str]] = {}


@pytest.fixture(scope="module", params=sorted(p.name for p in PORTED.iterdir() if p.is_dir()))
def port(request, tmp_path_factory):
    """(name, original module, generated module, resolved app)."""
    folder = PORTED / request.param
    result = check(folder / "deployment.yaml")
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    assert not result.diagnostics, [d.format() for d in result.diagnostics]  # a clean port: no warnings
    out = tmp_path_factory.mktemp(request.param)
    generated = out / f"{result.app.module_name}.py"
    generated.write_text(render(result.app, module_dir=out), encoding="utf-8")
    return request.param, import_generated(folder / "original.py"), import_generated(generated), result.app


def info_fields(function) -> dict:
    info = function.info()
    return {field.name: getattr(info, field.name) for field in dataclasses.fields(info)}


def test_the_app_and_its_functions_are_the_same(port):
    name, original, generated, app = port
    assert generated.app.name == original.app.name
    for function in app.functions:
        before, after = info_fields(getattr(original, function)), info_fields(getattr(generated, function))
        differing = {key for key in before if before[key] != after[key]}
        assert differing == NOT_EXPRESSIBLE.get(name, set()), {k: (before[k], after[k]) for k in differing}


def test_each_function_builds_the_same_image(port):
    _, original, generated, app = port
    for function in app.functions:
        before = image_layers(getattr(original, function)._spec_.image)
        after = image_layers(getattr(generated, function)._spec_.image)
        assert [layer for layer in after if layer[0] == "build"] == [
            layer for layer in before if layer[0] == "build"
        ]
        # mtc's function imports its run target, which the image ships; Modal ships a hand-written app's file
        target = app.functions[function].module.split(".")[0]
        assert mounted(after) == mounted(before) | {("python", target, "/root")}


def mounted(layers: list[tuple]) -> set[tuple]:
    return {entry for layer in layers if layer[0] == "mount" for entry in layer[1]}


def test_the_covid_schedule_and_arguments_are_the_published_ones(tmp_path):
    folder = PORTED / "covid_datasette"
    original = import_generated(folder / "original.py")
    result = check(folder / "deployment.yaml")
    generated_path = tmp_path / "covid_generated.py"
    generated_path.write_text(render(result.app, module_dir=tmp_path), encoding="utf-8")
    generated = import_generated(generated_path)
    assert generated.refresh_db.info().schedule == original.refresh_db.info().schedule == "Period(hours=24)"
    published = parameters((folder / "original.py").read_text(), "download_dataset")
    assert parameters(generated_path.read_text(), "download_dataset") == {"cache": ("bool", True)}
    assert published == {"cache": (None, True)}  # the same name and default; the port adds the annotation


def parameters(source: str, function: str) -> dict[str, tuple[str | None, object]]:
    """``{name: (annotation, default)}`` of ``def function`` in ``source``."""
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == function)
    arguments = node.args
    defaults = dict(zip([a.arg for a in arguments.args][::-1], arguments.defaults[::-1], strict=False))
    return {
        a.arg: (ast.unparse(a.annotation) if a.annotation else None, ast.literal_eval(defaults[a.arg]))
        for a in arguments.args
    }
