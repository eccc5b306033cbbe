"""Public Modal apps ported to specs (tests/fixtures/ported/<name>/): the generated module and the
hand-written one, both imported with the real ``modal`` package offline, declare the same functions.

Each fixture holds ``original.py`` (the app's Modal side, its training code left out), ``deployment.yaml``
(the port) and the run target the spec calls. Every ``fn.info()`` field is compared, and the images'
build layers (Dockerfile commands, read offline by :func:`tests.helpers.image_checks.image_layers`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.generated_checks import import_generated
from tests.helpers.image_checks import image_layers

PORTED = Path(__file__).parents[1] / "fixtures" / "ported"

# What each port cannot say yet, by fixture: the fn.info() fields that differ and why. A field that starts
# to match (the spec gained the key) fails the test, so this list stays true.
NOT_EXPRESSIBLE = {
    "unsloth_finetune": {"single_use_containers"},  # max_inputs=1 / single_use_containers=True: no key yet
}


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
