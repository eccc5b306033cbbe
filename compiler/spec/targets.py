"""Read a `run` target from source without importing it (the CLI must not import runtime, torch or user code).

A target's module is looked up the way a user's ``PYTHONPATH`` would be set for the project: in the spec's
folder and its parents up to the project root (the nearest folder with ``.git`` or ``pyproject.toml``; every
parent without one), then
among the modules importable here (``importlib.util.find_spec`` on the top-level package only, which imports
nothing of the user's). Its definition is read with :mod:`ast`: the lint checks the target against the spec's
``args``, the renderer sees whether it is ``async def`` or takes an ``on_checkpoint`` callback, and
``mtc run --arg`` types a value by the parameter's annotation.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT_MARKERS = (".git", "pyproject.toml")
IMPORT_DEPTH = 4  # how many `from x import name` re-exports are followed to the definition


class NotLiteral:
    """The default of a parameter whose default is an expression, not a literal."""

    def __repr__(self) -> str:
        return "<not a literal>"


NOT_LITERAL = NotLiteral()


@cache
def project_folders(spec_dir: Path) -> tuple[Path, ...]:
    """``spec_dir`` and its parents up to the project root; every parent when no folder marks a root."""
    spec_dir = spec_dir.resolve()
    chain = (spec_dir, *spec_dir.parents)
    for index, folder in enumerate(chain):
        if any(_exists(folder / marker) for marker in ROOT_MARKERS):
            return chain[: index + 1]
    return chain


@cache
def module_file(module: str, root: Path) -> Path | None:
    """The source file of dotted ``module`` in the project folders of ``root`` (not the environment)."""
    folder = _folder_of(module, project_folders(root))
    return _source_in(module, folder) if folder else None


def _folder_of(module: str, folders: tuple[Path, ...]) -> Path | None:
    """The folder Python would import ``module``'s top-level package from: the first that holds it as a module
    or a regular package (with ``__init__.py``); else the first namespace portion (a folder without one) that
    holds ``module``, else the first portion. A namespace folder earlier on the path (``tests/runtime/``) does
    not hide a regular package further up (``runtime/``)."""
    top = module.split(".")[0]
    portions = []
    for folder in folders:
        if _is_file(folder / top / "__init__.py") or _exists(folder / f"{top}.py"):
            return folder
        if _exists(folder / top):
            portions.append(folder)
    return next((f for f in portions if _source_in(module, f)), portions[0] if portions else None)


@dataclass(frozen=True)
class Located:
    """Where a module was found: its source (None without one: built-in, compiled, or a missing submodule
    of a found package) and the project folder it lies in (None when found among installed modules)."""

    source: Path | None
    project: Path | None


def locate(module: str, root: Path) -> Located | None:
    """``module`` in the project folders of ``root``, then among installed modules; None when in neither."""
    top = module.split(".")[0]
    folder = _folder_of(module, project_folders(root))
    if folder is not None:
        source = _source_in(module, folder)
        return Located(source, folder) if source or module == top else None
    spec = _find_spec(top)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            source = _source_in(module, Path(location).parent)
            if source:
                return Located(source, None)
        return Located(None, None) if module == top else None
    if module != top:
        return None  # a plain module has no submodules
    origin = Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    return Located(origin, None)


def _find_spec(top: str):
    try:
        return importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None


def _source_in(module: str, folder: Path) -> Path | None:
    base = folder.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if _is_file(candidate):
            return candidate
    return None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def parse_module(path: Path) -> ast.Module | None:
    """The syntax tree of ``path``, None when it cannot be read; parsed once per version of the file (the
    lint rules and the renderer read the same modules)."""
    try:
        stat = path.stat()
    except (OSError, ValueError):
        return None
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


@cache
def _parsed(path: Path, mtime_ns: int, size: int) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (SyntaxError, UnicodeDecodeError, OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------- the target


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: str | None  # as written in the source
    default: object  # the literal default, NOT_LITERAL for an expression, None with required
    required: bool
    keyword: bool  # can be passed by keyword (not positional-only)


@dataclass(frozen=True)
class Target:
    """What the source says about ``module:entry``.

    ``shape`` is "function", "async function", "generator", "async generator", "class" or "unknown" (bound
    some other way: an assignment, a module, a decorated definition's result). ``parameters`` is None when
    the signature cannot be read (not a plain definition, or decorated: a decorator may change it).
    """

    shape: str
    parameters: tuple[Parameter, ...] | None = None
    takes_any_keyword: bool = False
    source: Path | None = None

    @property
    def is_async(self) -> bool:
        return self.shape == "async function"

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters or () if p.name == name), None)


UNKNOWN = Target("unknown")


@dataclass(frozen=True)
class Lookup:
    """The result of reading a target: ``module`` None when it cannot be found, ``target`` None when the
    module is found and read but has no such name."""

    module: Located | None
    target: Target | None


def read_target(module: str, entry: str, root: Path) -> Lookup:
    """The target ``module:entry`` as the project folders of ``root`` (or the environment) hold it."""
    root = root.resolve()
    located = locate(module, root)
    if located is None:
        return Lookup(None, None)
    return Lookup(located, _definition(module, entry, root, located, IMPORT_DEPTH))


def _definition(module: str, entry: str, root: Path, located: Located, depth: int) -> Target | None:
    tree = parse_module(located.source) if located.source else None
    if tree is None:
        return UNKNOWN  # no source to read: trust the spec
    found: Target | None = None
    for node in _module_statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry:
            return _function_target(node, located.source)
        if isinstance(node, ast.ClassDef) and node.name == entry:
            return Target("class", source=located.source)
        if isinstance(node, ast.ImportFrom):
            found = found or _imported(node, entry, module, located, root, depth)
        elif isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            found = found or UNKNOWN  # a module __getattr__ can provide any name
        elif _binds(node, entry):
            found = found or UNKNOWN
    return found


def _module_statements(body: list[ast.stmt]):
    """Statements at module level, including those inside module-level if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.With):
            yield from _module_statements([*node.body, *getattr(node, "orelse", [])])
        elif isinstance(node, ast.Try):
            handlers = [s for h in node.handlers for s in h.body]
            yield from _module_statements([*node.body, *handlers, *node.orelse, *node.finalbody])


def _imported(
    node: ast.ImportFrom, entry: str, module: str, located: Located, root: Path, depth: int
) -> Target | None:
    for alias in node.names:
        if alias.name == "*":
            return UNKNOWN
        if (alias.asname or alias.name) != entry:
            continue
        source_module = absolute_module(node, package_of(module, located.source))
        nested = locate(f"{source_module}.{alias.name}", root) if source_module else None
        if nested is not None:
            return UNKNOWN  # `from package import submodule`: a module, not a function
        origin = locate(source_module, root) if source_module and depth > 0 else None
        if origin is None:
            return UNKNOWN
        return _definition(source_module, alias.name, root, origin, depth - 1) or UNKNOWN
    return None


def package_of(module: str, source: Path | None) -> str:
    """The package relative imports in ``module`` start from: the module itself when it is a package."""
    return module if source is not None and source.name == "__init__.py" else module.rpartition(".")[0]


def absolute_module(node: ast.ImportFrom, package: str) -> str:
    """The module ``from ... import`` names, relative levels resolved against ``package``."""
    if node.level == 0:
        return node.module or ""
    parts = package.split(".")
    parent = ".".join(parts[: len(parts) - node.level + 1])
    return f"{parent}.{node.module}" if node.module else parent


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    elif isinstance(node, ast.Import):
        return any((a.asname or a.name.split(".")[0]) == name for a in node.names)
    else:
        return False
    return any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t))


@cache  # per node: the trees themselves are cached per version of the file
def _function_target(node: ast.FunctionDef | ast.AsyncFunctionDef, source: Path | None) -> Target:
    asynchronous = isinstance(node, ast.AsyncFunctionDef)
    shape = "async function" if asynchronous else "function"
    if _yields(node):
        shape = "async generator" if asynchronous else "generator"
    if node.decorator_list:
        return Target(shape, source=source)
    return Target(shape, _parameters(node.args), node.args.kwarg is not None, source)


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


def _parameters(arguments: ast.arguments) -> tuple[Parameter, ...]:
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
    return tuple(out)


def _parameter(arg: ast.arg, default: ast.expr | None, *, keyword: bool) -> Parameter:
    annotation = ast.unparse(arg.annotation) if arg.annotation is not None else None
    if default is None:
        return Parameter(arg.arg, annotation, None, required=True, keyword=keyword)
    try:
        value = ast.literal_eval(default)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = NOT_LITERAL
    return Parameter(arg.arg, annotation, value, required=False, keyword=keyword)


def keyword_parameters(module: str, entry: str, root: Path) -> frozenset[str] | None:
    """Names ``module:entry`` accepts as keywords; None when its signature cannot be read."""
    target = read_target(module, entry, root).target
    if target is None or target.parameters is None:
        return None
    return frozenset(p.name for p in target.parameters if p.keyword)


def function_names(located: Located) -> list[str]:
    """The functions ``located``'s module defines at top level, for a did-you-mean."""
    tree = parse_module(located.source) if located.source else None
    return [
        node.name
        for node in _module_statements(tree.body if tree else [])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
