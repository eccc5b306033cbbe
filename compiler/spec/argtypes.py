"""The type of a `run` target's parameter, and command-line text parsed as that type.

The type comes from the spec's ``type:`` (:func:`of_arg`), else the parameter's annotation in the target's
source (``int``, ``float``, ``bool``, ``str``, ``Path``, ``list[int]``, ``dict``, ``Optional[X]``,
``X | None``), read statically by :mod:`compiler.spec.targets`, else the default's type. ``mtc run --arg``
parses with :func:`parse`, and the generated module declares the same types (lists and dicts arrive at its
entrypoint as JSON text, which it decodes: Modal's CLI parses only scalar annotations), so a value means the
same thing locally and on Modal.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any

from compiler.spec.ir import Arg
from compiler.spec.targets import Parameter

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NONE_WORDS = frozenset({"null", "none", "~"})
SCALARS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "str": "a string",
    "path": "a path",
}
NAMES = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "Path": "path",
    "pathlib.Path": "path",
    "PurePath": "path",
    "list": "list",
    "List": "list",
    "typing.List": "list",
    "Sequence": "list",
    "tuple": "list",
    "dict": "dict",
    "Dict": "dict",
    "typing.Dict": "dict",
    "Mapping": "dict",
}
OPTIONAL = {"Optional", "typing.Optional"}
MAX_ANNOTATION = 200  # characters: an annotation longer than this is not one of the types mtc reads
MAX_NESTING = 50  # lists and mappings in a default; Python's parser stops at 200 nested brackets
UNION = {"Union", "typing.Union"}


@dataclass(frozen=True)
class ArgType:
    kind: str  # "int" | "float" | "bool" | "str" | "path" | "list" | "dict"
    item: ArgType | None = None  # a list's items, when declared (list[int])
    optional: bool = False  # None is accepted (Optional[X], X | None)

    @property
    def label(self) -> str:
        """What a value must be, for messages: "a list of integers", "an integer or null"."""
        if self.kind == "list":
            text = f"a list of {_plural(self.item)}" if self.item else "a list"
            text += " such as [1, 2] (JSON or YAML flow)"
        elif self.kind == "dict":
            text = "a mapping such as {a: 1} (JSON or YAML flow)"
        else:
            text = SCALARS[self.kind]
        return text + (" or null" if self.optional else "")

    @property
    def is_json(self) -> bool:
        """Passed to Modal's CLI as JSON text, decoded by the generated entrypoint."""
        return self.kind in ("list", "dict")


def _plural(item: ArgType) -> str:
    return {"int": "integers", "float": "numbers", "bool": "booleans", "str": "strings", "path": "paths"}.get(
        item.kind, item.label
    )


def from_annotation(text: str | None) -> ArgType | None:
    """The type an annotation's source text declares; None when mtc cannot read it (the default decides)."""
    if not text or len(text) > MAX_ANNOTATION:
        return None
    try:
        return _from_node(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not Python, a NUL, or nested too deep
        return None


def _from_node(node: ast.expr) -> ArgType | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        return from_annotation(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _union([node.left, node.right])
    if isinstance(node, ast.Subscript):
        name = _dotted(node.value)
        inner = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name in OPTIONAL:
            return _union([*inner, ast.Constant(None)])
        if name in UNION:
            return _union(inner)
        kind = NAMES.get(name or "")
        if kind == "list":
            item = _from_node(inner[0]) if len(inner) == 1 or _dotted(node.value) == "tuple" else None
            return ArgType("list", item if item and not item.optional and item.kind != "list" else None)
        return ArgType(kind) if kind == "dict" else None
    kind = NAMES.get(_dotted(node) or "")
    return ArgType(kind) if kind else None


def _union(members: list[ast.expr]) -> ArgType | None:
    kept = [
        m for m in members if not (isinstance(m, ast.Constant) and m.value is None) and _dotted(m) != "None"
    ]
    if len(kept) != 1:
        return None  # int | str: more than one type, mtc cannot tell which a text means
    inner = _from_node(kept[0])
    if inner is None:
        return None
    return ArgType(inner.kind, inner.item, optional=len(kept) < len(members))


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    return None


def from_value(value: Any) -> ArgType | None:
    """The type of a default value: bool, int, float, str, list or dict; ``str | None`` for null (a text
    option that may be left unset); None for anything else."""
    if value is None:
        return ArgType("str", optional=True)
    for kind in (bool, int, float, str, list, tuple, dict):  # bool first: a bool is also an int
        if isinstance(value, kind):
            return ArgType("list" if kind is tuple else kind.__name__)
    return None


def for_parameter(parameter: Parameter | None, default: Any) -> ArgType | None:
    """A parameter's type: its annotation when mtc can read it, else its default's type."""
    declared = from_annotation(parameter.annotation) if parameter else None
    return declared or from_value(default)


def of_arg(arg: Arg, parameter: Parameter | None) -> ArgType | None:
    """An ``args`` entry's type: the spec's ``type:``, else the target's annotation, else its default's type;
    None when the spec's ``type:`` is not an annotation mtc reads (the lint's arg-declared-type says so)."""
    if arg.declared is not None:
        return from_annotation(arg.declared)
    return for_parameter(parameter, None if arg.required else arg.default)


def nesting(value: Any) -> int:
    """How deep lists and mappings nest in ``value``: 0 for a scalar, 1 for ``[1, 2]``, 2 for ``[[1]]``."""
    if isinstance(value, list | tuple | dict):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((nesting(item) for item in items), default=0)
    return 0


def thawed(value: Any) -> Any:
    """A model value as YAML or JSON would hold it: the model's tuples as lists, at any depth."""
    if isinstance(value, list | tuple):
        return [thawed(item) for item in value]
    if isinstance(value, dict):
        return {key: thawed(item) for key, item in value.items()}
    return value


# ------------------------------------------------------------------------------------------------ parsing


class ArgTypeError(ValueError):
    """A text or value that is not of the expected type; the message says what was expected."""


def parse(text: str, expected: ArgType) -> Any:
    """``text`` as a value of ``expected``; ArgTypeError saying what was expected otherwise."""
    if expected.optional and text.strip().lower() in NONE_WORDS:
        return None
    if expected.kind in ("list", "dict"):
        return convert(_flow(text, expected), expected)
    if expected.kind == "bool":
        word = text.strip().lower()
        if word in TRUE_WORDS | FALSE_WORDS:
            return word in TRUE_WORDS
        raise ArgTypeError(expected.label)
    if expected.kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            raise ArgTypeError(expected.label) from None
    if expected.kind == "float":
        return _finite(text, expected)
    return text


def _finite(text: str, expected: ArgType) -> float:
    try:
        number = float(text.strip())
    except ValueError:
        raise ArgTypeError(expected.label) from None
    if not math.isfinite(number):
        raise ArgTypeError(f"{expected.label} (finite)")
    return number


def _flow(text: str, expected: ArgType) -> Any:
    """JSON or YAML flow syntax (JSON is YAML): ``[1, 2]``, ``[a, b]``, ``{lr: 0.1}``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        value = YAML(typ="safe", pure=True).load(text)
    except (YAMLError, ValueError, RecursionError):
        raise ArgTypeError(expected.label) from None
    if nesting(value) > MAX_NESTING:
        raise ArgTypeError(f"{expected.label}, nested at most {MAX_NESTING} deep")
    return value


def convert(value: Any, expected: ArgType) -> Any:
    """``value`` (from YAML, JSON or the spec) as ``expected``; ArgTypeError when it is not one."""
    if value is None and expected.optional:
        return None
    kind = expected.kind
    if kind == "list" and isinstance(value, list | tuple):
        try:
            return [convert(item, expected.item) for item in value] if expected.item else list(value)
        except ArgTypeError:
            raise ArgTypeError(expected.label) from None  # the list's type says more than the item's
    if kind == "dict" and isinstance(value, dict):
        return dict(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    if kind in ("str", "path") and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)  # [1, 2] for a list of strings means ["1", "2"]
    raise ArgTypeError(expected.label)
