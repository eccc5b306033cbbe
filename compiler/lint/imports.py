"""What a module imports, for ``image-missing-package``: the third-party imports of the run target's module
and of the shipped project modules it imports, read from source (nothing is imported).

What each file imports is kept in a :class:`compiler.spec.sourcecache.SourceCache` under the hash of its
content and the package its relative imports start from, so a lint parses only the files that changed.
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from functools import cache
from pathlib import Path

from compiler.spec.sourcecache import SourceCache, content_key
from compiler.spec.targets import absolute_module, module_file, package_of, project_folders

Imports = tuple[tuple[str, int], ...]  # (imported module, line)
_STORE = SourceCache("lint-imports", version=1)


@cache
def imports_of(module: str, root: str, shipped: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Third-party imports (name, file:line) of ``module`` and of the shipped project modules it imports."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    pending = [module]
    folder = Path(root)
    while pending:
        current = pending.pop()
        path = module_file(current, folder)
        if current in seen or path is None:
            continue
        seen.add(current)
        shown = ""
        for name, line in imported_names(path, current):
            top = name.split(".")[0]
            if top in shipped:
                pending.append(name)
            elif top not in sys.stdlib_module_names and not module_file(top, folder):
                shown = shown or str(path.relative_to(project_folders(folder)[-1]))
                found.append((name, f"{shown}:{line}"))
    _STORE.save()
    return tuple(found)


def imported_names(path: Path, module: str) -> Imports:
    """Modules the file imports, except in ``try`` blocks that handle ImportError (optional imports); read
    once per version of the file in a process, and from the cache when its content was read before."""
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return ()
    return _names_in(path, package_of(module, path), stat.st_mtime_ns, stat.st_size)


@cache
def _names_in(path: Path, package: str, mtime_ns: int, size: int) -> Imports:
    try:
        source = path.read_bytes()
    except (OSError, ValueError):
        return ()
    key = content_key(source, package)
    known = _STORE.get(key)
    if isinstance(known, list):
        return tuple((str(name), int(line)) for name, line in known)
    try:
        tree = ast.parse(source.decode("utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return ()
    found = _scan(tree, package)
    _STORE.put(key, [list(item) for item in found])
    return found


def _scan(tree: ast.Module, package: str) -> Imports:
    """Walks statements only, breadth first (imports are statements): a whole-tree ``ast.walk`` is slower."""
    found: list[tuple[str, int]] = []
    pending: deque[ast.AST] = deque([tree])
    while pending:
        node = pending.popleft()
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = absolute_module(node.level, node.module, package)
            if base:  # `from runtime import train` names a module too
                found += [(base, node.lineno)] + [(f"{base}.{a.name}", node.lineno) for a in node.names]
        children = ast.iter_child_nodes(node)
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            children = iter([*node.handlers, *node.orelse, *node.finalbody])  # the body is optional
        pending.extend(c for c in children if isinstance(c, ast.stmt | ast.excepthandler | ast.match_case))
    return tuple(found)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)
