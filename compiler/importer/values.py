"""Evaluate the constant expressions of an app file without running it: literals, module-level constants,
arithmetic on numbers (``60 * 60 * 24``), string concatenation and f-strings of constants, and local paths
built from ``Path(__file__)`` (``Path(__file__).parent / "src"``). Anything else raises :class:`Unreadable`.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from compiler.importer.notes import Unreadable

ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
LONGEST = 100_000  # characters: a string built from constants longer than this is no setting
LARGEST = 10**15  # no setting is larger; a bigger intermediate result is not a configuration value
PATH_CALLS = frozenset({"Path", "pathlib.Path", "PurePosixPath", "pathlib.PurePosixPath"})


@dataclass(frozen=True)
class LocalPath:
    """A path on the author's machine, computed from the app file's location."""

    path: Path


@dataclass
class Scope:
    """The module-level names whose value is an expression the importer may evaluate."""

    app_file: Path
    constants: dict[str, ast.expr]
    known: dict[str, Any] = field(default_factory=dict)  # constants evaluated so far: each is read once

    def evaluate(self, node: ast.expr) -> Any:
        return _Evaluator(self).value(node, ())

    def evaluate_or(self, node: ast.expr, problems: list[Unreadable], fallback: Any = None) -> Any:
        """The value of ``node``, or ``fallback`` with the reason added to ``problems``."""
        try:
            return self.evaluate(node)
        except Unreadable as exc:
            problems.append(exc)
            return fallback


def dotted(node: ast.expr) -> str | None:
    """``modal.Image.debian_slim`` for that attribute chain of names, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def decorator_name(node: ast.expr) -> str:
    """``app.function`` for ``@app.function(...)`` or ``@app.function``; "" for another expression."""
    return dotted(node.func if isinstance(node, ast.Call) else node) or ""


def is_literal(node: ast.expr) -> bool:
    """True for a number written as such (``900``, ``-1``), not computed or named (``15 * 60``, ``T``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant)


def _bounded(text: str, node: ast.expr) -> str:
    if len(text) > LONGEST:
        raise Unreadable(f"`{ast.unparse(node)[:60]}...` is longer than any setting", node.lineno)
    return text


class _Evaluator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def value(self, node: ast.expr, seen: tuple[str, ...]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [self.value(item, seen) for item in node.elts]
        if isinstance(node, ast.Dict):
            return self._mapping(node, seen)
        if isinstance(node, ast.Name):
            return self._name(node, seen)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            number = self._number(node.operand, seen)
            return -number if isinstance(node.op, ast.USub) else number
        if isinstance(node, ast.BinOp):
            return self._binary(node, seen)
        if isinstance(node, ast.JoinedStr):
            return _bounded("".join(self._piece(piece, seen) for piece in node.values), node)
        if isinstance(node, ast.Call):
            return self._call(node, seen)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return LocalPath(self._path(node.value, seen).path.parent)
        raise Unreadable(f"`{ast.unparse(node)}` is computed when the app runs", node.lineno)

    def _mapping(self, node: ast.Dict, seen: tuple[str, ...]) -> dict:
        if any(key is None for key in node.keys):
            raise Unreadable(f"`{ast.unparse(node)}` unpacks a mapping (**) mtc cannot read", node.lineno)
        return {
            self.value(key, seen): self.value(item, seen)
            for key, item in zip(node.keys, node.values, strict=True)
        }

    def _name(self, node: ast.Name, seen: tuple[str, ...]) -> Any:
        if node.id == "__file__":
            return LocalPath(self.scope.app_file)
        if node.id in seen or node.id not in self.scope.constants:
            raise Unreadable(f"`{node.id}` is not a constant of the module", node.lineno)
        if node.id not in self.scope.known:
            self.scope.known[node.id] = self.value(self.scope.constants[node.id], (*seen, node.id))
        return self.scope.known[node.id]

    def _number(self, node: ast.expr, seen: tuple[str, ...]) -> int | float:
        value = self.value(node, seen)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Unreadable(f"`{ast.unparse(node)}` is not a number", node.lineno)
        return value

    def _binary(self, node: ast.BinOp, seen: tuple[str, ...]) -> Any:
        left = self.value(node.left, seen)
        if isinstance(left, LocalPath) and isinstance(node.op, ast.Div):
            return LocalPath(left.path / self._text(node.right, seen))
        right = self.value(node.right, seen)
        if isinstance(left, str) and isinstance(right, str) and isinstance(node.op, ast.Add):
            return _bounded(left + right, node)
        operation = ARITHMETIC.get(type(node.op))
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        if operation is None or not numbers:
            raise Unreadable(f"`{ast.unparse(node)}` is not arithmetic on constants", node.lineno)
        if isinstance(node.op, ast.Pow) and (abs(right) > 64 or abs(left) > LARGEST):
            raise Unreadable(f"`{ast.unparse(node)}` is larger than any Modal setting", node.lineno)
        if isinstance(node.op, ast.Div | ast.FloorDiv) and right == 0:
            raise Unreadable(f"`{ast.unparse(node)}` divides by zero", node.lineno)
        result = operation(left, right)
        if abs(result) > LARGEST:
            raise Unreadable(f"`{ast.unparse(node)}` is larger than any Modal setting", node.lineno)
        return int(result) if isinstance(result, float) and result.is_integer() else result

    def _text(self, node: ast.expr, seen: tuple[str, ...]) -> str:
        value = self.value(node, seen)
        if not isinstance(value, str):
            raise Unreadable(f"`{ast.unparse(node)}` is not a string", node.lineno)
        return value

    def _piece(self, node: ast.expr, seen: tuple[str, ...]) -> str:
        if isinstance(node, ast.FormattedValue):
            if node.format_spec is not None or node.conversion != -1:
                raise Unreadable(f"`{ast.unparse(node)}` is formatted when the app runs", node.lineno)
            return str(self.value(node.value, seen))
        return self._text(node, seen)

    def _call(self, node: ast.Call, seen: tuple[str, ...]) -> Any:
        name = dotted(node.func)
        if name in PATH_CALLS and len(node.args) >= 1 and not node.keywords:
            return self._joined(node.args, seen)
        if name == "str" and len(node.args) == 1:
            value = self.value(node.args[0], seen)
            return str(value.path) if isinstance(value, LocalPath) else str(value)
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in ("resolve", "absolute")
            and not node.args
        ):
            return self._path(node.func.value, seen)
        raise Unreadable(f"`{ast.unparse(node)}` is a call evaluated when the app runs", node.lineno)

    def _joined(self, parts: list[ast.expr], seen: tuple[str, ...]) -> Any:
        values = [self.value(part, seen) for part in parts]
        if isinstance(values[0], LocalPath):
            return LocalPath(values[0].path.joinpath(*map(str, values[1:])))
        return str(PurePosixPath(*map(str, values)))

    def _path(self, node: ast.expr, seen: tuple[str, ...]) -> LocalPath:
        value = self.value(node, seen)
        if isinstance(value, str):
            return LocalPath(Path(value))
        if not isinstance(value, LocalPath):
            raise Unreadable(f"`{ast.unparse(node)}` is not a path", node.lineno)
        return value
