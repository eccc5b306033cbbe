"""``mtc init``'s inputs: the folder to set up, the app's name, and each ``--target`` read from the team's
code (its signature gives the spec's ``args``; the code is read, never imported)."""

from __future__ import annotations

import keyword
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compiler.platform.modal_limits import MODAL_NAME_MAX

APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # the schema's pattern for app.name
TARGET = re.compile(r"(?:(?P<name>[^=:]*)=)?(?P<module>[^:=]*):(?P<entry>[^:=]*)")
CALLBACK_PARAMETER = "on_checkpoint"  # the generated body passes it (the commit of the function's volumes)

NO_VALUE = object()  # a default that no spec value stands for (an expression, a set, ...)


class InitError(Exception):
    """The user's input cannot be set up (exit 1): the message says what and how to fix it."""


@dataclass(frozen=True)
class Target:
    """One ``--target``: the spec's function ``function`` calls ``module:entry`` with ``args``."""

    function: str
    module: str
    entry: str
    args: tuple[tuple[str, Any], ...] = ()
    unset: tuple[tuple[str, str], ...] = ()  # (parameter, why it is not in args): a comment in the spec
    required: tuple[str, ...] = ()  # parameters without a default, so without a value in args


def folder_to_set_up(directory: str) -> Path:
    root = Path(directory)
    if os.path.lexists(root) and not root.is_dir():
        raise InitError(f"{directory} is not a folder; give the repository's folder")
    return root


def checked_app_name(name: str) -> str:
    if not APP_NAME.fullmatch(name):
        suggestion = sanitized(name)
        hint = f", e.g. --name {suggestion}" if suggestion else ""
        raise InitError(
            f"--name {name!r} is not a Modal app name: letters, digits, '-' and '_', at most "
            f"{MODAL_NAME_MAX} characters, starting with a letter or digit{hint}"
        )
    return name


def app_name_from(root: Path) -> str:
    """The folder's name made into a valid app name, or ``app`` when nothing of it is usable."""
    return sanitized(root.resolve().name) or "app"


def sanitized(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return cleaned[:MODAL_NAME_MAX].rstrip("-_")


def read_targets(texts: Iterable[str], root: Path) -> list[Target]:
    """Each ``--target`` parsed, checked against the code under ``root``, with its args; names unique."""
    targets = [parse_target(text) for text in texts]
    seen: dict[str, Target] = {}
    for target in targets:
        other = seen.setdefault(target.function, target)
        if other is not target:
            raise InitError(
                f"--target {other.module}:{other.entry} and --target {target.module}:{target.entry} both "
                f"make a function named '{target.function}'; name one of them: "
                f"--target OTHER_NAME={target.module}:{target.entry}"
            )
    return [with_signature(target, root) for target in targets]


def parse_target(text: str) -> Target:
    match = TARGET.fullmatch(text)
    if match is None:
        raise InitError(
            f"--target {text!r} is not MODULE:FUNCTION (e.g. mypkg.train:fit, or fit=mypkg.train:main)"
        )
    module, entry = match["module"], match["entry"]
    if not all(_identifier(part) for part in module.split(".")):
        raise InitError(
            f"--target {text!r}: '{module}' is not a Python module name (dotted identifiers: mypkg.train)"
        )
    if not _identifier(entry):
        raise InitError(f"--target {text!r}: '{entry}' is not a Python function name")
    function = entry if match["name"] is None else match["name"]
    problem = function_name_problem(function)
    if problem:
        raise InitError(
            f"--target {text!r}: the spec's function name '{function}' {problem}; give another: "
            f"--target NAME={module}:{entry}"
        )
    return Target(function, module, entry)


def _identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def function_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a function in the spec (the lint's function-name rule), or None."""
    from compiler.spec.pynames import MODULE_NAMES

    if not _identifier(name):
        return "is not a Python identifier (ASCII letters, digits and '_', not a keyword)"
    if name in MODULE_NAMES:
        return "is a name the generated module uses"
    return None


def with_signature(target: Target, root: Path) -> Target:
    """``target`` with args from its signature's defaults, read as the lint reads it (never imported)."""
    from compiler.lint.targets import SHAPES
    from compiler.spec import targets as sources

    shown = f"--target {target.module}:{target.entry}"
    lookup = sources.read_target(target.module, target.entry, root)
    if lookup.module is None:
        relative = target.module.replace(".", "/")
        raise InitError(
            f"{shown}: module {target.module} is neither in {root} ({relative}.py or {relative}/__init__.py) "
            "nor installed here; check the spelling, or give the repository that holds it as DIR"
        )
    if lookup.target is None:
        listed = ", ".join(sources.function_names(lookup.module)) or "none"
        raise InitError(
            f"{shown}: {lookup.module.source} defines no function '{target.entry}' (it has: {listed})"
        )
    if lookup.target.shape in SHAPES:
        raise InitError(f"{shown} is {SHAPES[lookup.target.shape]}")
    if lookup.target.parameters is None:
        reason = "its signature cannot be read (decorated, or not a plain definition): add the args it needs"
        return replace(target, unset=(("(all)", reason),))
    return replace(target, **signature_args(lookup.target.parameters))


def signature_args(parameters: Iterable[Any]) -> dict[str, tuple]:
    """``args``, ``unset`` and ``required`` for a Target, from its parameters
    (compiler.spec.targets.Parameter). A parameter without a default whose annotation mtc reads is declared
    in the explicit form, ``{type: int, required: true}``; one without an annotation is left to the user."""
    from compiler.spec import argtypes
    from compiler.spec.pynames import ENTRYPOINT_FLAGS, MODULE_NAMES

    args: list[tuple[str, Any]] = []
    unset: list[tuple[str, str]] = []
    required: list[str] = []
    for parameter in parameters:
        name = parameter.name
        if name == CALLBACK_PARAMETER:
            continue
        declarable = parameter.required and argtypes.from_annotation(parameter.annotation) is not None
        if parameter.required and not declarable:
            required.append(name)
        if not parameter.keyword:
            unset.append((name, "positional-only: mtc passes arguments by name; make it a normal parameter"))
        elif name in MODULE_NAMES | ENTRYPOINT_FLAGS or not name.isascii():
            unset.append((name, "its name is one the generated module uses: rename the parameter"))
        elif declarable:
            args.append((name, {"type": parameter.annotation, "required": True}))
        elif parameter.required:
            unset.append((name, "REQUIRED: it has no default in the signature; set a value"))
        elif (value := spec_value(parameter.default)) is NO_VALUE:
            unset.append((name, "its default is not a string, number, boolean, null, list or mapping"))
        else:
            args.append((name, as_default(value)))
    return {"args": tuple(args), "unset": tuple(unset), "required": tuple(required)}


def spec_value(value: Any) -> Any:
    """A literal default as a spec value (a string, finite number, boolean, null, or a list or mapping of
    those), else :data:`NO_VALUE`."""
    if isinstance(value, list | tuple):
        items = [spec_value(item) for item in value]
        return NO_VALUE if any(item is NO_VALUE for item in items) else items
    if isinstance(value, dict):
        items = {key: spec_value(item) for key, item in value.items()}
        plain = all(isinstance(key, str) and item is not NO_VALUE for key, item in items.items())
        return items if plain else NO_VALUE
    if (
        value is None
        or isinstance(value, str | bool | int)
        or (isinstance(value, float) and math.isfinite(value))
    ):
        return value
    return NO_VALUE


def as_default(value: Any) -> Any:
    """``value`` as an ``args`` entry: itself, or ``{type: dict, default: value}`` for a mapping whose keys
    the spec would read as the explicit form of an argument."""
    from compiler.spec.resolve import DECLARATION_KEYS

    declaration_shaped = isinstance(value, dict) and frozenset(value) in DECLARATION_KEYS
    return {"type": "dict", "default": value} if declaration_shaped else value
