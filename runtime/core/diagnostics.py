"""Diagnostics: one positioned problem in a file (``path:line:col: severity: message [rule-id]``), the
``SpecError`` that carries them, and helpers for their messages. Any control character in a message is
escaped when it is printed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runtime.core.errors import UserError

JsonPath = tuple[str | int, ...]
# control characters: none in a key (a name or a mount path); tab and newlines are allowed in values,
# which block scalars (run commands, env values) legitimately hold
CONTROL_IN_KEY = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a file, positioned at a 1-based line and column."""

    path: str
    line: int
    col: int
    severity: str  # "error" | "warning"
    message: str
    rule: str

    def format(self) -> str:
        """One line, with any control character in the path or message escaped (``\\x1b``, ``\\n``): a key
        or value quoted from the file cannot break the line or reach the terminal as an escape sequence."""
        path, message = _printable(self.path), _printable(self.message)
        return f"{path}:{self.line}:{self.col}: {self.severity}: {message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "rule": self.rule,
        }


def _printable(text: str) -> str:
    return CONTROL_IN_KEY.sub(lambda match: repr(match.group())[1:-1], text)


class SpecError(UserError):
    """A file could not be used; carries the diagnostics that say why."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))

    def user_message(self) -> str:
        return str(self)  # the diagnostics, one per line


def dotted(path: Iterable[str | int]) -> str:
    """``("functions", "train", "volumes", 0)`` -> ``functions.train.volumes[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when ``word`` is close to one of ``choices`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean '{lowered[match[0]]}'?" if match else ""


def type_name(value: Any) -> str:
    """The YAML/JSON name of a value's type, for messages."""
    return {
        type(None): "null",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)
