"""What a module imports, for ``image-missing-package``: the third-party imports of the run target's module
and of the shipped project modules it imports, read from source (nothing is imported).

Parsing every project module the target reaches with :mod:`ast` was most of `mtc lint`'s time, so the names
each file imports are cached by the file's content (sha256) and the package its relative imports start from:
in memory, and in a JSON file in the user's cache folder (``$XDG_CACHE_HOME/mtc``, else ``~/.cache/mtc``).
A lint parses only the files that changed since the last one. The file is written atomically
(:func:`runtime.core.files.write_atomic`) after merging what another process wrote meanwhile; a damaged or
unreadable cache is ignored and rewritten, and a write that fails is not an error: the cache only saves time.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from collections import deque
from functools import cache
from pathlib import Path

from compiler.spec.targets import absolute_module, module_file, package_of, project_folders

CACHE_NAME = "lint-imports.json"
CACHE_VERSION = 1
CACHE_ENTRIES = 4096  # the most files remembered; the oldest are dropped first
Imports = tuple[tuple[str, int], ...]  # (imported module, line)


@cache
def imports_of(module: str, root: str, shipped: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Third-party imports (name, file:line) of ``module`` and of the shipped project modules it imports."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    pending = [module]
    while pending:
        current = pending.pop()
        path = module_file(current, Path(root))
        if current in seen or path is None:
            continue
        seen.add(current)
        for name, line in imported_names(path, current):
            top = name.split(".")[0]
            if top in shipped:
                pending.append(name)
            elif top not in sys.stdlib_module_names and not module_file(top, Path(root)):
                found.append((name, f"{path.relative_to(project_folders(Path(root))[-1])}:{line}"))
    _STORE.save()
    return tuple(found)


def imported_names(path: Path, module: str) -> Imports:
    """Modules the file imports, except in ``try`` blocks that handle ImportError (optional imports)."""
    try:
        source = path.read_bytes()
    except (OSError, ValueError):
        return ()
    package = package_of(module, path)
    key = f"{hashlib.sha256(source).hexdigest()}:{package}"
    known = _STORE.get(key)
    if known is not None:
        return known
    try:
        tree = ast.parse(source.decode("utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError, RecursionError, MemoryError):
        return ()
    found = _scan(tree, package)
    _STORE.put(key, found)
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
            base = absolute_module(node, package)
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


# ------------------------------------------------------------------------------------- the file cache


def cache_file() -> Path | None:
    """Where the cache lives; None when there is no home folder to put it in."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        folder = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home folder
        return None
    return folder / "mtc" / CACHE_NAME


class _Store:
    """The per-file cache: loaded on first use, saved when a lint added to it."""

    def __init__(self) -> None:
        self.entries: dict[str, Imports] | None = None
        self.added: dict[str, Imports] = {}

    def get(self, key: str) -> Imports | None:
        if self.entries is None:
            self.entries = _read(cache_file())
        return self.entries.get(key)

    def put(self, key: str, found: Imports) -> None:
        self.added[key] = found
        if self.entries is not None:
            self.entries[key] = found

    def save(self) -> None:
        path = cache_file()
        if not self.added or path is None:
            return
        merged = {**_read(path), **self.added}  # keep what another lint wrote meanwhile
        kept = dict(list(merged.items())[-CACHE_ENTRIES:])
        data = {"version": CACHE_VERSION, "files": {k: [list(i) for i in v] for k, v in kept.items()}}
        try:
            from runtime.core.files import write_atomic

            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(data, separators=(",", ":")).encode())
        except OSError:
            return  # a read-only or full disk: the next lint parses again
        self.added.clear()


def _read(path: Path | None) -> dict[str, Imports]:
    """The cache's entries; empty when it is missing, unreadable, damaged or of another version."""
    try:
        data = json.loads(path.read_bytes()) if path else None
        files = data["files"] if data["version"] == CACHE_VERSION else {}
        return {key: tuple((str(name), int(line)) for name, line in value) for key, value in files.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return {}


_STORE = _Store()
