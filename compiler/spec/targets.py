"""Read a `run` target from source without importing it (the CLI must not import runtime, torch or user code).

A target's module is looked up the way a user's ``PYTHONPATH`` would be set for the project: in the spec's
folder and its parents up to the project root (the nearest folder with ``.git`` or ``pyproject.toml``; every
parent without one), then among the modules importable here (``importlib.util.find_spec`` on the top-level
package only, which imports nothing of the user's). Its definition is read from the module's summary
(:mod:`compiler.spec.summary`: parsed with :mod:`ast` once per content, then cached): the lint checks the
target against the spec's ``args``, the renderer sees whether it is ``async def`` or takes an
``on_checkpoint`` callback, and ``mtc run --arg`` types a value by the parameter's annotation.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from compiler.spec.summary import module_summary
from compiler.spec.summary import save as save_summaries
from runtime.core.files import path_test

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
        if any(path_test(Path.exists, folder / marker) for marker in ROOT_MARKERS):
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
    regular, portions = _top_level(module.split(".")[0], folders)
    if regular is not None:
        return regular
    return next((f for f in portions if _source_in(module, f)), portions[0] if portions else None)


@cache  # every module of a package asks: the lint looks up hundreds of names
def _top_level(top: str, folders: tuple[Path, ...]) -> tuple[Path | None, tuple[Path, ...]]:
    """The first folder holding ``top`` as a module or a regular package, else None; and the folders before
    it that hold ``top`` as a namespace portion."""
    portions: list[Path] = []
    for folder in folders:
        package, module = folder / top / "__init__.py", folder / f"{top}.py"
        if path_test(Path.is_file, package) or path_test(Path.exists, module):
            return folder, tuple(portions)
        if path_test(Path.exists, folder / top):
            portions.append(folder)
    return None, tuple(portions)


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
        if path_test(Path.is_file, candidate):
            return candidate
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
    target = _definition(module, entry, root, located, IMPORT_DEPTH)
    save_summaries()
    return Lookup(located, target)


def _definition(module: str, entry: str, root: Path, located: Located, depth: int) -> Target | None:
    entries = module_summary(located.source) if located.source else None
    if entries is None:
        return UNKNOWN  # no source to read: trust the spec
    found: Target | None = None
    for kind, *fields in entries:
        if kind == "def" and fields[0] == entry:
            return _function_target(fields, located.source)
        if kind == "class" and fields[0] == entry:
            return Target("class", source=located.source)
        if kind == "from":
            found = found or _imported(fields, entry, module, located, root, depth)
        elif kind == "def" and fields[0] == "__getattr__" and not fields[1].startswith("async"):
            found = found or UNKNOWN  # a module __getattr__ can provide any name
        elif kind == "binds" and entry in fields[0]:
            found = found or UNKNOWN
    return found


def _imported(
    fields: list, entry: str, module: str, located: Located, root: Path, depth: int
) -> Target | None:
    """The target a ``from`` import binds to ``entry`` (``fields``: level, module, [[name, asname]])."""
    level, imported, names = fields
    for name, asname in names:
        if name == "*":
            return UNKNOWN
        if (asname or name) != entry:
            continue
        source_module = absolute_module(level, imported, package_of(module, located.source))
        nested = locate(f"{source_module}.{name}", root) if source_module else None
        if nested is not None:
            return UNKNOWN  # `from package import submodule`: a module, not a function
        origin = locate(source_module, root) if source_module and depth > 0 else None
        if origin is None:
            return UNKNOWN
        return _definition(source_module, name, root, origin, depth - 1) or UNKNOWN
    return None


def package_of(module: str, source: Path | None) -> str:
    """The package relative imports in ``module`` start from: the module itself when it is a package."""
    return module if source is not None and source.name == "__init__.py" else module.rpartition(".")[0]


def absolute_module(level: int, module: str | None, package: str) -> str:
    """The module ``from <level dots><module> import`` names, relative levels resolved against ``package``."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    parent = ".".join(parts[: len(parts) - level + 1])
    return f"{parent}.{module}" if module else parent


def _function_target(fields: list, source: Path | None) -> Target:
    """A :class:`Target` from a summary's ``def`` entry (name, shape, parameters, takes **kwargs)."""
    _, shape, parameters, takes_any_keyword = fields
    if parameters is None:  # decorated
        return Target(shape, source=source)
    return Target(shape, tuple(_parameter(*p) for p in parameters), takes_any_keyword, source)


def _parameter(name: str, annotation: str | None, written: str | None, required: bool, keyword: bool):
    if required:
        return Parameter(name, annotation, None, required=True, keyword=keyword)
    try:
        value = ast.literal_eval(written)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = NOT_LITERAL
    return Parameter(name, annotation, value, required=False, keyword=keyword)


def takes_var_keyword(module: str, entry: str, root: Path) -> bool | None:
    """Whether the function ``entry`` defined in ``module``'s own source takes ``**``; None when the source
    cannot be read or defines no such function."""
    path = module_file(module, root)
    entries = module_summary(path) if path else None
    return next((e[4] for e in entries or () if e[0] == "def" and e[1] == entry), None)


def keyword_parameters(module: str, entry: str, root: Path) -> frozenset[str] | None:
    """Names ``module:entry`` accepts as keywords; None when its signature cannot be read."""
    target = read_target(module, entry, root).target
    if target is None or target.parameters is None:
        return None
    return frozenset(p.name for p in target.parameters if p.keyword)


def function_names(located: Located) -> list[str]:
    """The functions ``located``'s module defines at top level, for a did-you-mean."""
    entries = module_summary(located.source) if located.source else None
    return [fields[1] for fields in entries or () if fields[0] == "def"]
