"""A small layout printer that writes what ``ruff format`` would, without running ruff.

Expressions are built as small trees (:class:`Group`, :class:`Entry`, :class:`Chain`) and laid out the way
ruff does: on one line when it fits in 88 columns, otherwise one item per line with a trailing comma (the
"magic trailing comma" that keeps ruff from joining them again), and image chains in ruff's fluent style. A
line that is still too long holds a long spec value; the renderer then marks the module ``# ruff: noqa:
E501``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.codegen.literals import RenderError, literal

WIDTH = 88  # ruff's default; output laid out for 88 is also stable under any larger line-length
INDENT = 4


@dataclass(frozen=True)
class Group:
    """``open item, item close``; broken as one item per line with a trailing comma when too long."""

    open: str
    items: tuple[Any, ...]  # str | Group | Chain | Entry
    close: str


@dataclass(frozen=True)
class Entry:
    """A prefix glued to a value: ``gpu=`` + ``"A100"``, ``"KEY": `` + ``"value"``, ``return `` + call."""

    prefix: str
    value: Any


@dataclass(frozen=True)
class Chain:
    """``head.call(...).call(...)``: ruff's fluent style, one ``.call`` per line, when it does not fit."""

    head: Any
    calls: tuple[Group, ...]


def flat(doc: Any) -> str:
    """``doc`` on one line."""
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Entry):
        return doc.prefix + flat(doc.value)
    if isinstance(doc, Chain):
        return flat(doc.head) + "".join(flat(call) for call in doc.calls)
    return doc.open + ", ".join(flat(item) for item in doc.items) + doc.close


def layout(doc: Any, indent: int = 0, column: int | None = None, tail: int = 0) -> str:
    """``doc`` as source from ``column`` on a line indented by ``indent``, followed by ``tail`` chars."""
    column = indent if column is None else column
    text = flat(doc)
    if isinstance(doc, str) or column + len(text) + tail <= WIDTH:
        return text
    if isinstance(doc, Entry):
        return doc.prefix + layout(doc.value, indent, column + len(doc.prefix), tail)
    inner = " " * (indent + INDENT)
    if isinstance(doc, Chain):
        return _chain(doc, indent, column, tail)
    if not doc.items:
        return text
    lines = [layout(item, indent + INDENT, tail=1) for item in doc.items]
    return doc.open + "\n" + "".join(f"{inner}{line},\n" for line in lines) + " " * indent + doc.close


def _chain(doc: Chain, indent: int, column: int, tail: int) -> str:
    """A chain as ruff lays it out: a variable's first call stays on its line; with two calls or more after
    the first, one call per line (fluent); with one, split at its brackets when the line up to them fits,
    else at the first call's."""
    first, rest = doc.head, doc.calls
    if isinstance(first, str) and rest:
        first, rest = Group(first + rest[0].open, rest[0].items, rest[0].close), rest[1:]
    if len(rest) >= 2:
        inner = " " * (indent + INDENT)
        lines = [layout(part, indent + INDENT) for part in (first, *rest)]
        return "(\n" + "".join(f"{inner}{line}\n" for line in lines) + " " * indent + ")"
    if not rest:
        return layout(first, indent, column, tail)
    prefix = flat(first) + rest[0].open
    if column + len(prefix) <= WIDTH:
        return layout(Group(prefix, rest[0].items, rest[0].close), indent, column, tail)
    last = flat(rest[0])
    return layout(first, indent, column, tail=len(last) + tail) + last


def call(callee: str, *args: Any, **kwargs: Any) -> Group:
    """A call whose keyword values are docs; ``None`` keyword values are left out."""
    items = (*args, *(Entry(f"{name}=", value) for name, value in kwargs.items() if value is not None))
    return Group(f"{callee}(", items, ")")


def value_doc(value: Any) -> Any:
    """A spec value (scalar, list or mapping) as a doc of literals."""
    if isinstance(value, list | tuple):
        return Group("[", tuple(value_doc(item) for item in value), "]")
    if isinstance(value, dict):
        return Group("{", tuple(Entry(f"{literal(k)}: ", value_doc(v)) for k, v in value.items()), "}")
    if value is None or isinstance(value, bool | int | float | str):
        return literal(value)
    raise RenderError(f"a value of type {type(value).__name__} cannot be written into the module")


def mapping(items: dict[str, Any]) -> Group:
    """``{"key": doc, ...}`` with keys written as literals and values as given docs."""
    return Group("{", tuple(Entry(f"{literal(key)}: ", value) for key, value in items.items()), "}")
