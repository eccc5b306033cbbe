"""The naming rules: every name the spec turns into Python is one the generated module can hold.

A function, argument, image or volume becomes a Python name in the generated module (``cuda`` ->
``cuda_image``), and every argument becomes an option of the local entrypoint. These rules check that each
is an identifier, is not a name the module defines itself, does not clash with another once written as
Python, and has one type per option name. They kept their ids from when the renderer found them
(``render/...``), so a spec or a CI log that names them still reads the same.

One answer for what an identifier is (:func:`compiler.spec.pynames.is_identifier`): ASCII letters, digits
and ``_``, not starting with a digit, not a keyword; the same as ``function-name`` and ``arg-name``. The
renderer runs :func:`name_problems` again and stops with an internal error if lint was bypassed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from compiler.lint.registry import ERROR, LintContext, rule
from compiler.spec import argtypes
from compiler.spec.ir import App, Arg, JsonPath
from compiler.spec.pynames import (
    ENTRYPOINT_FLAGS,
    MODULE_NAMES,
    build_variables,
    image_variables,
    is_identifier,
    parameter_type,
    volume_variables,
)
from compiler.spec.sweep import OVERRIDES_PARAM
from compiler.spec.targets import read_target
from runtime.core.diagnostics import Diagnostic

IDENTIFIER, RESERVED, CLASH = "render/identifier", "render/reserved-name", "render/name-clash"
ARG_TYPE, ARG_TYPE_CONFLICT = "render/argument-type", "render/argument-type-conflict"


@dataclass(frozen=True)
class Problem:
    """A name the module cannot hold: the rule that reports it, where in the spec, and why."""

    rule: str
    path: JsonPath
    message: str


def name_problems(app: App, root: Path) -> Iterator[Problem]:
    """Every naming problem of ``app``, including those ``function-name`` and ``arg-name`` report."""
    yield from _identifiers(app)
    yield from _reserved(app)
    yield from _clashes(app)
    yield from _argument_types(app, root)


def _identifiers(app: App) -> Iterator[Problem]:
    for name, function in app.functions.items():
        if not is_identifier(name):
            yield Problem(
                "function-name", ("functions", name), f"function name '{name}' is not an identifier"
            )
        for arg in function.arg_names:
            if not is_identifier(arg):
                message = f"argument '{arg}' of function '{name}' is not a Python identifier"
                yield Problem("arg-name", ("functions", name, "args", arg), message)
        run = ("functions", name, "run")
        if not is_identifier(function.entry):
            yield Problem(
                IDENTIFIER, run, f"run target function '{function.entry}' is not a Python identifier"
            )
        if not all(is_identifier(part) for part in function.module.split(".")):
            yield Problem(
                IDENTIFIER, run, f"run target module '{function.module}' is not a Python identifier"
            )


def _reserved(app: App) -> Iterator[Problem]:
    for name, function in app.functions.items():
        reserved = MODULE_NAMES | ENTRYPOINT_FLAGS | ({OVERRIDES_PARAM} if function.sweep else set())
        for arg in function.arg_names:
            path = ("functions", name, "args", arg)
            if arg in reserved:
                message = f"argument name '{arg}' is used by the generated module; rename the argument"
                yield Problem(RESERVED, path, message)
            elif arg in app.functions:  # the entrypoint's parameter would hide the function
                yield Problem(
                    RESERVED, path, f"argument '{arg}' has the name of a function; rename the argument"
                )


def _clashes(app: App) -> Iterator[Problem]:
    taken: dict[str, str] = {name: "the generated module itself" for name in MODULE_NAMES}
    claims = [
        *((var, f"image '{key}'", ("images", key), CLASH) for key, var in image_variables(app).items()),
        *(
            (var, f"image '{key}' (without its local files)", ("images", key), CLASH)
            for key, var in build_variables(app).items()
        ),
        *((var, f"volume '{key}'", ("volumes", key), CLASH) for key, var in volume_variables(app).items()),
        *((name, f"function '{name}'", ("functions", name), "function-name") for name in app.functions),
    ]
    for name, owner, path, rule_id in claims:
        if name in taken:
            message = f"{owner} becomes the Python name '{name}', already used by {taken[name]}"
            yield Problem(
                CLASH if name not in MODULE_NAMES else rule_id, path, message + "; rename one of them"
            )
        else:
            taken[name] = owner


def _argument_types(app: App, root: Path) -> Iterator[Problem]:
    """Each argument has a type a parameter can take, and each option name one type across functions."""
    kinds: dict[str, str] = {}
    for name, function in app.functions.items():
        target = read_target(function.module, function.entry, root).target
        for arg in function.args:
            path = ("functions", name, "args", arg.name)
            found = parameter_type(arg, target)
            if found is None:
                yield Problem(ARG_TYPE, path, f"argument '{arg.name}': {_type_problem(arg)}")
                continue
            known = kinds.setdefault(arg.name, found.kind)
            if known != found.kind:
                message = (
                    f"argument '{arg.name}' is a {found.kind} here but a {known} in another function; "
                    "`modal run --action` needs one type per option name"
                )
                yield Problem(ARG_TYPE_CONFLICT, path, message)
        if function.sweep and kinds.setdefault(OVERRIDES_PARAM, "JSON dict") != "JSON dict":
            message = (
                f"argument '{OVERRIDES_PARAM}' is a JSON dict here but a {kinds[OVERRIDES_PARAM]} elsewhere"
            )
            yield Problem(ARG_TYPE_CONFLICT, ("functions", name, "sweep"), message)


def _type_problem(arg: Arg) -> str:
    """Why ``arg`` cannot be a parameter (:func:`parameter_type` returned None)."""
    depth = argtypes.nesting(arg.default)
    if depth > argtypes.MAX_NESTING:
        return f"the default nests lists and mappings {depth} deep; at most {argtypes.MAX_NESTING}"
    declared = argtypes.from_annotation(arg.declared) if arg.declared is not None else None
    if arg.declared is not None and declared is None:
        return (
            f"type {arg.declared!r} is not an annotation mtc reads; write str, int, float, bool, Path, list, "
            "list[int], dict, or one of them with | None"
        )
    if declared is not None:
        try:
            argtypes.convert(argtypes.thawed(arg.default), declared)
        except argtypes.ArgTypeError:
            default = argtypes.thawed(arg.default)
            return f"the default {default!r} is not {declared.label} (its type: {arg.declared})"
    return f"a default {arg.default!r} cannot be a parameter"


def _report(rule_id: str, ctx: LintContext) -> Iterator[Diagnostic]:
    for problem in name_problems(ctx.app, ctx.root):
        if problem.rule == rule_id:
            yield ctx.at(rule_id, problem.path, problem.message)


@rule(
    IDENTIFIER,
    ERROR,
    "a `run` target's module and function are ASCII Python identifiers",
    "fix `run: package.module:function`",
    scope="app",
)
def _identifier(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(IDENTIFIER, ctx)


@rule(
    RESERVED,
    ERROR,
    "no argument is named like a function or a name the generated module uses (action, sweep, app, main)",
    "rename the argument",
    scope="app",
)
def _reserved_name(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(RESERVED, ctx)


@rule(
    CLASH,
    ERROR,
    "no two images or volumes (or an image and a function) become the same Python name",
    "rename one of them: `a-b` and `a_b` both become a_b_image",
    scope="app",
)
def _name_clash(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(CLASH, ctx)


@rule(
    ARG_TYPE,
    ERROR,
    "every argument's type is one mtc reads (str, int, float, bool, Path, list, dict, | None) and its "
    "default fits it",
    "fix the `type:` or the default the message names",
    scope="app",
)
def _argument_type(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(ARG_TYPE, ctx)


@rule(
    ARG_TYPE_CONFLICT,
    ERROR,
    "an argument name has one type across functions (it is one option of the local entrypoint)",
    "rename one of the arguments, or give both the same type",
    scope="app",
)
def _argument_type_conflict(ctx: LintContext) -> Iterator[Diagnostic]:
    yield from _report(ARG_TYPE_CONFLICT, ctx)
