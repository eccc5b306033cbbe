"""A function's parameters as the spec's ``args``: a default read statically becomes the value (a mapping
that looks like the explicit form is written ``{type: dict, default: ...}``); a parameter without a default
is declared ``{type: T, required: true}`` from its annotation (``str`` when it has none, with a note)."""

from __future__ import annotations

import ast
import math
from typing import Any

from compiler.importer.notes import Unreadable
from compiler.importer.values import LocalPath, Scope
from compiler.spec import argtypes
from compiler.spec.resolve import DECLARATION_KEYS


def read_args(
    node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope
) -> tuple[dict[str, Any], list[Unreadable]]:
    arguments = node.args
    args: dict[str, Any] = {}
    problems: list[Unreadable] = []
    positional = arguments.posonlyargs + arguments.args
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    pairs = list(zip(positional, defaults, strict=True)) + list(
        zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    )
    for parameter, default in pairs:
        if default is None and not _readable_annotation(parameter):
            args[parameter.arg] = {"type": "str", "required": True}
            problems.append(
                Unreadable(
                    f"parameter `{parameter.arg}` has no default and no type mtc reads: declared str",
                    parameter.lineno,
                )
            )
            continue
        try:
            args[parameter.arg] = declared(parameter.annotation, default, scope)
        except Unreadable as exc:
            problems.append(Unreadable(f"parameter `{parameter.arg}`: {exc.reason}", exc.line))
    for parameter in arguments.posonlyargs:
        problems.append(
            Unreadable(
                f"parameter `{parameter.arg}` is positional-only: mtc passes arguments by name",
                parameter.lineno,
            )
        )
    for extra in (arguments.vararg, arguments.kwarg):
        if extra is not None:
            problems.append(
                Unreadable(f"`*{extra.arg}`/`**{extra.arg}` parameters have no form in `args`", extra.lineno)
            )
    return args, problems


def declared(annotation_node: ast.expr | None, default: ast.expr | None, scope: Scope) -> Any:
    """One ``args`` entry: the default read statically, or ``{type: T, required: true}`` without one."""
    annotation = ast.unparse(annotation_node) if annotation_node else None
    if default is None:
        return {"type": annotation, "required": True}
    value = _spec_value(scope.evaluate(default), default)
    declaration_shaped = isinstance(value, dict) and frozenset(value) in DECLARATION_KEYS
    return {"type": "dict", "default": value} if declaration_shaped else value


def _readable_annotation(parameter: ast.arg) -> bool:
    return (
        parameter.annotation is not None
        and argtypes.from_annotation(ast.unparse(parameter.annotation)) is not None
    )


def _spec_value(value: Any, node: ast.expr) -> Any:
    if isinstance(value, LocalPath) or (isinstance(value, float) and not math.isfinite(value)):
        raise Unreadable(f"the default `{ast.unparse(node)}` is not a value a spec can hold", node.lineno)
    if isinstance(value, dict) and not all(isinstance(key, str) for key in value):
        raise Unreadable(f"the default `{ast.unparse(node)}` has keys that are not strings", node.lineno)
    return value
