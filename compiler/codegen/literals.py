"""The one way a spec value becomes code: :func:`literal` writes a Python literal.

``repr``-based and double-quoted as ruff formats it, so quotes, backslashes, newlines, ``{{ }}``, ``\"\"\"``
and any Unicode in a spec stay data. Lists and mappings are written on one line here;
:func:`compiler.codegen.layout.value_doc` lays long ones out, each item still through :func:`literal`.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from compiler.codegen.emit import InternalError


class RenderError(InternalError):
    """A value the lint should have refused reached the renderer: a bug in mtc, not in the spec.

    ``path`` points into the spec and ``rule`` names the lint rule that should have reported it."""

    def __init__(self, message: str, path: tuple = (), rule: str = "render/invalid"):
        super().__init__(message)
        self.message = message
        self.path = path
        self.rule = rule


def literal(value: Any) -> str:
    """The Python source of ``value``: the one way a spec value becomes code."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"{value!r} cannot be written as a Python literal; use a finite number")
        return repr(float(value))
    if isinstance(value, str):
        return _string_literal(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(key)}: {literal(item)}" for key, item in value.items()) + "}"
    raise RenderError(f"a value of type {type(value).__name__} cannot be written into the module")


def _string_literal(text: str) -> str:
    # ruff's preference: double quotes, unless single quotes need fewer escapes.
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join("\\" + char if char == quote else _escape(char) for char in text)
    return quote + body + quote


@cache
def _escape(char: str) -> str:
    return repr(char)[1:-1]  # the character as repr escapes it (\n, \\, \x00, \u2028, ...) without quotes


def optional(value: Any) -> str | None:
    """``literal(value)``, or None (left out of a call) when there is no value."""
    return None if value is None else literal(value)


def number(value: float | None) -> float | int | None:
    """32.0 -> 32 so the module reads like hand-written code; other values unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def duration(seconds: int | None) -> str | None:
    """Seconds as Modal's examples write them: ``24 * 60 * 60`` for 24 h, ``5 * 60`` for 5 min, ``45``."""
    if seconds is None:
        return None
    if seconds > 60 and seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{literal(hours)} * 60 * 60" if hours > 1 else "60 * 60"
    if seconds > 60 and seconds % 60 == 0:
        return f"{literal(seconds // 60)} * 60"
    return literal(seconds)
