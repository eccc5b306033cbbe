"""A public Modal app ported to a spec: modal-examples' covid_datasette.py (schedule, retries, a volume,
timeouts, an argument). The published module and the one mtc generates are both imported with the real
modal package offline, and Modal is told the same thing about every ported function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.generated_checks import actual_info, image_calls, import_generated

PORTED = Path(__file__).resolve().parents[1] / "fixtures" / "ported" / "covid_datasette"
FUNCTIONS = ("download_dataset", "prep_db", "refresh_db")


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    result = check(str(PORTED / "deployment.yaml"))
    assert not result.diagnostics, [d.format() for d in result.diagnostics]
    generated = tmp_path_factory.mktemp("ported") / "covid_generated.py"
    generated.write_text(render(result.app, root=PORTED))
    return import_generated(PORTED / "original.py"), import_generated(generated), generated.read_text()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_modal_sees_the_same_function_field_by_field(modules, name):
    original, generated, _ = modules
    published, ported = actual_info(getattr(original, name)), actual_info(getattr(generated, name))
    for field in published:  # gpus, cpu, memory, disk, timeouts, retries, volumes, buckets, secrets, ...
        assert ported[field] == published[field], (name, field)


def test_the_schedule_is_the_published_one_exactly(modules):
    original, generated, _ = modules
    assert generated.refresh_db.info().schedule == original.refresh_db.info().schedule == "Period(hours=24)"


def test_the_app_and_its_arguments_are_the_published_ones(modules):
    original, generated, source = modules
    assert generated.app.name == original.app.name
    published = parameters((PORTED / "original.py").read_text(), "download_dataset")
    assert parameters(source, "download_dataset") == {"cache": ("bool", True)}
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


def test_the_image_is_built_the_same_way_plus_the_shipped_target(modules):
    _, _, source = modules
    published = image_calls((PORTED / "original.py").read_text(), "datasette_image")
    ported = image_calls(source, "datasette_image")
    assert ported[:-1] == published
    assert ported[-1] == ("add_local_python_source", ["covid_jobs"], {})
