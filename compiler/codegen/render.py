"""Render the resolved model (``compiler.spec.ir.App``) into the source of a plain Modal module.

The pipeline's codegen step, in three parts: the template context (:mod:`compiler.codegen.context`, every
value through :func:`compiler.codegen.literals.literal` and laid out as ``ruff format`` would by
:mod:`compiler.codegen.layout`), the template (``templates/app.py.j2``, with the module's fixed helper code
in ``templates/sweep_helpers.py.j2``), and a check that the result stays within the layout's width (else the
module says ``# ruff: noqa: E501``). :mod:`compiler.codegen.emit` then verifies and writes it.

Names are the lint's job (:mod:`compiler.lint.names`): the renderer asserts the spec passed them and raises
:class:`RenderError`, an internal error, if lint was bypassed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from compiler.codegen.context import module_context
from compiler.codegen.functions import Model
from compiler.codegen.layout import WIDTH, layout
from compiler.codegen.literals import RenderError, literal
from compiler.lint.names import name_problems
from compiler.platform.pricing import Prices, load_prices
from compiler.spec.ir import App

TEMPLATE = "app.py.j2"
GENERATED_DIR = "generated"  # where `mtc compile` writes the module, relative to the current folder


def render(
    app: App, *, prices: Prices | None = None, root: Path | None = None, module_dir: Path | None = None
) -> str:
    """The generated module's source for ``app``; RenderError (an internal error) when lint was bypassed.

    ``root`` is the folder the `run` targets are looked up from (default: the spec's folder, then its parents
    up to the project root). ``module_dir`` is the folder the module will be written to (default:
    ``generated/`` in the current folder): the module finds the spec's local paths from its own location.
    """
    root = root or app.spec_dir
    assert_names(app, root)
    model = Model(app, prices or load_prices(), root)
    variables = module_context(model, module_dir or Path.cwd() / GENERATED_DIR)
    text = _template().render(**variables, long_lines=False)
    if any(len(line) > WIDTH for line in text.splitlines()):
        # Only a long value (a string no formatter can split) makes a line this long; say it is intended.
        text = _template().render(**variables, long_lines=True)
    return text


def assert_names(app: App, root: Path) -> None:
    """RenderError for the first naming problem :mod:`compiler.lint.names` finds: lint was bypassed."""
    for problem in name_problems(app, root):
        raise RenderError(problem.message, problem.path, problem.rule)


def template_environment(**filters: Callable[..., str]) -> Any:
    """A Jinja2 environment over the packaged templates (strict, no escaping: the output is code or YAML,
    and every value reaches it through one of ``filters``)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(filters)
    return environment


@cache
def _template() -> Any:
    return template_environment(lit=literal, code=layout).get_template(TEMPLATE)
