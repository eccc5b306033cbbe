"""What reading a `run` target needs from a Python source file, as JSON: its module-level definitions,
``from`` imports and other bindings, in order (those inside module-level if/try/with blocks included).

The target reader (:mod:`compiler.spec.targets`) works on this summary instead of the syntax tree, so the
summary can be cached by the file's content (:class:`compiler.spec.sourcecache.SourceCache`) and a lint
parses only the files that changed. Entries, one per statement that matters:

- ``["def", name, shape, parameters | None, takes **kwargs]``: a function; ``shape`` is "function",
  "async function", "generator" or "async generator"; ``parameters`` is None when decorated (a decorator may
  change the signature), else ``[name, annotation | None, default source | None, required, keyword]`` each;
- ``["class", name]``;
- ``["from", level, module | None, [[name, asname | None], ...]]``;
- ``["binds", [name, ...]]``: names an assignment or a plain ``import`` binds.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from compiler.spec.sourcecache import SourceCache, content_key

_CACHE = SourceCache("module-summaries", version=1)


def module_summary(path: Path) -> list[list[Any]] | None:
    """The summary of ``path``; None when it cannot be read or parsed. Read once per version of the file."""
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return _summary(path, stat.st_mtime_ns, stat.st_size)


def save() -> None:
    """Write what this process summarised to the cache file (nothing when it read every file from there)."""
    _CACHE.save()


@cache
def _summary(path: Path, mtime_ns: int, size: int) -> list[list[Any]] | None:
    try:
        source = path.read_bytes()
    except (OSError, ValueError):
        return None
    key = content_key(source)
    known = _CACHE.get(key)
    if isinstance(known, list):
        return known
    try:
        tree = ast.parse(source.decode("utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return None
    found = [entry for node in _module_statements(tree.body) if (entry := _entry(node))]
    _CACHE.put(key, found)
    return found


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements at module level, including those inside module-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With):
            yield from _module_statements([*node.body, *getattr(node, "orelse", [])])
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            yield from _module_statements([*node.body, *handlers, *node.orelse, *node.finalbody])


def _entry(node: ast.stmt) -> list[Any] | None:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return _function(node)
    if isinstance(node, ast.ClassDef):
        return ["class", node.name]
    if isinstance(node, ast.ImportFrom):
        return ["from", node.level, node.module, [[a.name, a.asname] for a in node.names]]
    bound = _bound_names(node)
    return ["binds", bound] if bound else None


def _function(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Any]:
    asynchronous = isinstance(node, ast.AsyncFunctionDef)
    shape = "async function" if asynchronous else "function"
    if _yields(node):
        shape = "async generator" if asynchronous else "generator"
    parameters = None if node.decorator_list else _parameters(node.args)
    return ["def", node.name, shape, parameters, node.args.kwarg is not None]


def _bound_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    else:
        return []
    return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]


def _yields(function: ast.AST) -> bool:
    """Whether ``function``'s own body yields (not a nested function's or class's)."""
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Yield | ast.YieldFrom):
            return True
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            pending.extend(ast.iter_child_nodes(node))
    return False


def _parameters(arguments: ast.arguments) -> list[list[Any]]:
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    out = [
        _parameter(arg, default, keyword=index >= len(arguments.posonlyargs))
        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True))
    ]
    out += [
        _parameter(arg, default, keyword=True)
        for arg, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True)
    ]
    return out


def _parameter(arg: ast.arg, default: ast.expr | None, *, keyword: bool) -> list[Any]:
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else None
    written = ast.unparse(default) if default is not None else None
    return [arg.arg, annotation, written, default is None, keyword]
