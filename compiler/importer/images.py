"""Image chains (``modal.Image.from_registry(...).apt_install(...)...``) as spec images: the start, the
Python, each build step in order and the local files. A chain that starts from another image variable becomes
``base:``; a method or keyword the spec has no form for is reported and left out."""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.importer.notes import Unreadable
from compiler.importer.values import LocalPath, Scope, dotted

ROOTS = {"debian_slim", "from_registry", "from_dockerfile"}
LIST_STEPS = {"apt_install": "apt", "run_commands": "run", "add_local_python_source": "python"}
PIP_STEPS = {"pip_install": "pip", "uv_pip_install": "uv_pip"}
PIP_OPTIONS = ("index_url", "extra_index_url", "find_links", "pre", "extra_options")
LOCAL_STEPS = {"add_local_dir": "dirs", "add_local_file": "files"}
IMAGE_KEYS = ("from", "base", "from_dockerfile", "context_dir", "python", "steps", "add_local")


@dataclass
class ImageRead:
    """An image's spec entry, the source line of each step, and what could not be read."""

    entry: dict[str, Any] = field(default_factory=dict)
    step_lines: list[int] = field(default_factory=list)
    problems: list[Unreadable] = field(default_factory=list)


def is_image(node: ast.expr, images: set[str]) -> bool:
    """True when ``node`` is an image chain: it starts from ``modal.Image.*`` or a known image variable."""
    root = _root(node)
    if isinstance(root, ast.Name):
        return root.id in images
    return isinstance(root, ast.Attribute) and dotted(root.value) in ("modal.Image", "Image")


def read_image(node: ast.expr, scope: Scope, images: dict[str, str], spec_dir: Path) -> ImageRead:
    """``images`` maps the module's image variables to their spec names (for ``base:``)."""
    read = ImageRead()
    calls = _chain(node)
    root = _root(node)
    if isinstance(root, ast.Name):
        read.entry["base"] = images[root.id]
    else:
        _start(root.attr, calls.pop(0), scope, spec_dir, read)
    for call in calls:
        try:
            _step(call, scope, spec_dir, read)
        except Unreadable as exc:
            exc.line = call.func.end_lineno
            read.problems.append(exc)
    read.entry = {key: read.entry[key] for key in IMAGE_KEYS if key in read.entry}
    return read


def _chain(node: ast.expr) -> list[ast.Call]:
    calls: list[ast.Call] = []
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        calls.append(node)
        node = node.func.value
    return list(reversed(calls))


def _root(node: ast.expr) -> ast.expr:
    """The expression the chain starts from: ``modal.Image.debian_slim`` or a variable's name."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if dotted(node.func.value) in ("modal.Image", "Image"):
            return node.func
        node = node.func.value
    return node


def _start(method: str, call: ast.Call, scope: Scope, spec_dir: Path, read: ImageRead) -> None:
    if method not in ROOTS:
        read.entry["from"] = "debian_slim"
        read.problems.append(
            Unreadable(f"Image.{method} has no form in the spec: debian_slim instead", call.lineno)
        )
        return
    arguments = _arguments(call, scope, read)
    if method == "debian_slim":
        read.entry["from"] = "debian_slim"
    elif method == "from_registry":
        read.entry["from"] = arguments.pop("tag")
    else:
        read.entry["from_dockerfile"] = local_path(arguments.pop("path"), spec_dir)
        if "context_dir" in arguments:
            read.entry["context_dir"] = local_path(arguments.pop("context_dir"), spec_dir)
    python = arguments.pop("python_version", None) or arguments.pop("add_python", None)
    if python is not None:
        read.entry["python"] = str(python)
    for keyword in arguments:
        read.problems.append(Unreadable(f"Image.{method}'s `{keyword}=` has no key in the spec", call.lineno))


POSITIONAL = {"from_registry": "tag", "from_dockerfile": "path", "debian_slim": "python_version"}


def _arguments(call: ast.Call, scope: Scope, read: ImageRead) -> dict[str, Any]:
    method = call.func.attr
    arguments: dict[str, Any] = {}
    if call.args:
        arguments[POSITIONAL[method]] = scope.evaluate_or(call.args[0], read.problems)
    for keyword in call.keywords:
        arguments[keyword.arg] = scope.evaluate_or(keyword.value, read.problems)
    return {k: v for k, v in arguments.items() if v is not None}


def _step(call: ast.Call, scope: Scope, spec_dir: Path, read: ImageRead) -> None:
    method = call.func.attr
    if method in LIST_STEPS:
        _list_step(LIST_STEPS[method], call, scope, read)
    elif method in PIP_STEPS:
        _add_step(read, call, {PIP_STEPS[method]: _pip(call, scope)})
    elif method == "env" and len(call.args) == 1 and not call.keywords:
        _add_step(read, call, {"env": {str(k): v for k, v in scope.evaluate(call.args[0]).items()}})
    elif method in ("workdir", "entrypoint") and len(call.args) == 1 and not call.keywords:
        _add_step(read, call, {method: scope.evaluate(call.args[0])})
    elif method in LOCAL_STEPS:
        _local(method, call, scope, spec_dir, read)
    else:
        raise Unreadable(f"`.{method}(...)` has no build step in the spec", call.lineno)


def _list_step(key: str, call: ast.Call, scope: Scope, read: ImageRead) -> None:
    if call.keywords:
        raise Unreadable(
            f"`{call.keywords[0].arg}=` of .{call.func.attr} has no key in the spec", call.lineno
        )
    items = _flat([scope.evaluate(arg) for arg in call.args])
    if key == "python":
        local = read.entry.setdefault("add_local", {})
        local.setdefault("python", []).extend(items)
    else:
        _add_step(read, call, {key: items})


def _pip(call: ast.Call, scope: Scope) -> Any:
    packages = _flat([scope.evaluate(arg) for arg in call.args])
    options: dict[str, Any] = {}
    for keyword in call.keywords:
        if keyword.arg not in PIP_OPTIONS:
            raise Unreadable(f"`{keyword.arg}=` of .{call.func.attr} has no key in the spec", call.lineno)
        value = scope.evaluate(keyword.value)
        if value not in (None, False):
            options[keyword.arg] = value
    return {"packages": packages, **options} if options else packages


def _local(method: str, call: ast.Call, scope: Scope, spec_dir: Path, read: ImageRead) -> None:
    arguments = [scope.evaluate(arg) for arg in call.args]
    for keyword in call.keywords:
        if keyword.arg in ("local_path", "remote_path"):
            arguments.append(scope.evaluate(keyword.value))
        else:
            raise Unreadable(f"`{keyword.arg}=` of .{method} has no key in the spec", call.lineno)
    if len(arguments) != 2:
        raise Unreadable(f".{method} without a local and a remote path", call.lineno)
    local = read.entry.setdefault("add_local", {})
    local.setdefault(LOCAL_STEPS[method], {})[local_path(arguments[0], spec_dir)] = str(arguments[1])


def local_path(value: Any, spec_dir: Path) -> str:
    """A local path as the spec writes it: relative to the spec's folder (``.`` for the folder itself). A
    relative string is relative to the current folder, as Modal reads it when ``modal run`` starts."""
    path = value.path if isinstance(value, LocalPath) else Path(str(value))
    absolute = Path(os.path.abspath(path))
    return Path(os.path.relpath(absolute, spec_dir.resolve())).as_posix()


def _add_step(read: ImageRead, call: ast.Call, step: dict[str, Any]) -> None:
    if "add_local" in read.entry:
        method = call.func.attr
        reason = (
            f"`.{method}(...)` follows add_local_*, which fails Modal's build: the spec builds it earlier"
        )
        read.problems.append(Unreadable(reason, call.func.end_lineno))
    read.entry.setdefault("steps", []).append(step)
    read.step_lines.append(call.func.end_lineno)


def _flat(values: list[Any]) -> list[Any]:
    """Modal takes packages as arguments or lists of them: ``apt_install("a", ["b", "c"])``."""
    return [item for value in values for item in (value if isinstance(value, list) else [value])]
