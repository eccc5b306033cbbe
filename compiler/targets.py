"""Read a `run` target from source without importing it (the CLI must not import runtime or torch).

The lint uses it to find what a target imports; the renderer uses it to see whether a target takes an
``on_checkpoint`` callback, so the generated body can hand it the commit of the function's writable volumes.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path


def module_file(module: str, root: Path) -> Path | None:
    """The source file of dotted ``module`` under the project folder ``root``, if it is there."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def parse_module(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return None


@cache
def keyword_parameters(module: str, entry: str, root: Path) -> frozenset[str] | None:
    """Names ``module:entry`` accepts as keywords; None when its source or definition cannot be found."""
    path = module_file(module, root)
    tree = parse_module(path) if path else None
    if tree is None:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry:
            arguments = node.args
            return frozenset(a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs))
    return None
