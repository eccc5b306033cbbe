"""Move the functions' bodies into a plain module (``<app>_jobs.py`` beside the spec) that the generated
module calls: the app file itself, less what belongs to the Modal app (the ``modal.App`` assignment, the
``@app.*``/``@modal.*`` decorators, local entrypoints). Helpers, constants and imports come along unchanged,
so each body runs the same code. A body that only imports a function and calls it with its own parameters
(what mtc generates) is not moved: its ``run:`` names that function."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from compiler.codegen import clusters
from compiler.importer.values import decorator_name
from compiler.spec.sweep import OVERRIDES_PARAM

HEADER = (
    "# Moved here from {source} by `mtc import`: the bodies of the Modal functions, now plain functions\n"
    "# that the module generated from the spec imports and calls. The spec declares the Modal app itself.\n"
)
CALLBACK = "on_checkpoint"  # the keyword mtc's generated bodies add for a target that takes it


@dataclass(frozen=True)
class Removal:
    start: int  # first line, 1-based
    end: int  # last line, inclusive (``start - 1`` cuts nothing: an insertion)
    text: str = ""  # written in place of the cut lines


def is_app_decorator(node: ast.expr, app: str) -> bool:
    return decorator_name(node).startswith((f"{app}.", "modal."))


def removals(tree: ast.Module, app: str, dropped: set[str]) -> list[Removal]:
    """Line ranges to cut: the App assignment, app decorators everywhere, and the definitions in ``dropped``
    (the local entrypoints)."""
    cut: list[Removal] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == app for t in node.targets
        ):
            cut.append(Removal(node.lineno, node.end_lineno))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name in dropped and node in tree.body:
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                cut.append(Removal(first, node.end_lineno))
            else:
                cut += [
                    Removal(d.lineno, d.end_lineno) for d in node.decorator_list if is_app_decorator(d, app)
                ]
    return cut


def jobs_source(source: str, source_name: str, cut: list[Removal]) -> str:
    lines = source.splitlines(keepends=True)
    dropped = {line for r in cut for line in range(r.start, r.end + 1)}
    written: dict[int, str] = {}
    for removal in cut:
        written[removal.start] = written.get(removal.start, "") + removal.text
    kept = "".join(
        written.get(number, "") + (line if number not in dropped else "")
        for number, line in enumerate(lines, 1)
    )
    return HEADER.format(source=source_name) + kept


def delegated_target(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """``module:function`` when the body is ``from module import function`` then ``return function(p=p, ...)``
    with the function's own parameters (mtc's generated bodies), else None."""
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    body = [s for s in body if not _sets_cluster_environment(s)]  # a clustered body's torch environment
    if len(body) != 2 or not isinstance(body[0], ast.ImportFrom) or not isinstance(body[1], ast.Return):
        return None
    imported, call = body[0], body[1].value
    if imported.level or len(imported.names) != 1 or not isinstance(call, ast.Call):
        return None
    alias = imported.names[0]
    if not isinstance(call.func, ast.Name) or call.func.id != (alias.asname or alias.name) or call.args:
        return None
    if any(k.arg is None and not _unpacks_overrides(k.value) for k in call.keywords):
        return None  # `**something`: the body does more than call the target
    parameters = {a.arg for a in function.args.args + function.args.kwonlyargs}
    passed = {k.arg for k in call.keywords if k.arg not in (CALLBACK, None)}
    forwarded = all(
        isinstance(k.value, ast.Name) and k.value.id == k.arg for k in call.keywords if k.arg in passed
    )
    return f"{imported.module}:{alias.name}" if passed <= parameters and forwarded else None


def _sets_cluster_environment(statement: ast.stmt) -> bool:
    """``set_torchrun_environment(gpus_per_node=N)``: how mtc's generated clustered body starts."""
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id == clusters.HELPER
    )


def _unpacks_overrides(node: ast.expr) -> bool:
    """``**(overrides or {})``: how mtc's generated body passes a sweep trial's config overrides."""
    return (
        isinstance(node, ast.BoolOp)
        and isinstance(node.op, ast.Or)
        and len(node.values) == 2
        and isinstance(node.values[0], ast.Name)
        and node.values[0].id == OVERRIDES_PARAM
        and isinstance(node.values[1], ast.Dict)
        and not node.values[1].keys
    )


def forwards_overrides(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """True when the body passes ``**(overrides or {})`` (a sweeping function of mtc's generated module)."""
    return any(
        isinstance(n, ast.keyword) and n.arg is None and _unpacks_overrides(n.value)
        for n in ast.walk(function)
    )


MODAL_CALLS = frozenset({"remote", "spawn", "map", "starmap", "local", "remote_gen", "for_each"})


def body_problems(
    function: ast.FunctionDef | ast.AsyncFunctionDef, functions: set[str], app: str
) -> list[tuple[int, str]]:
    """``(line, message)`` for what a moved body does differently in the jobs module: call another function
    of the app through Modal (``other.remote(...)``), use the app object (removed), or read ``__file__`` (now
    the jobs module's path)."""
    found = []
    for node in (n for statement in function.body for n in ast.walk(statement)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr in MODAL_CALLS:
            if node.value.id in functions:
                found.append(
                    (
                        node.lineno,
                        f"`{ast.unparse(node)}(...)` calls another Modal function; in the jobs "
                        "module it is a plain function",
                    )
                )
        elif isinstance(node, ast.Name) and node.id == app:
            found.append((node.lineno, f"uses `{app}`, the Modal app, which the jobs module does not define"))
        elif isinstance(node, ast.Name) and node.id == "__file__":
            found.append(
                (node.lineno, "reads `__file__`: in the jobs module it is the jobs module's own path")
            )
    return sorted(found)


def relative_imports(tree: ast.Module) -> list[int]:
    """Lines of the module-level ``from . import x``: the jobs module lives in another folder."""
    return [node.lineno for node in tree.body if isinstance(node, ast.ImportFrom) and node.level]
