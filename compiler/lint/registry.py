"""The lint's registry: the :class:`Rule` record, the :func:`rule` decorator that registers a check, the
:class:`LintContext` a check receives, and :func:`lint`, which runs every registered rule.

- ``scope="function"``: ``check(fn: Function, ctx: LintContext) -> Iterable[Diagnostic]``, once per function;
- ``scope="app"``: ``check(ctx: LintContext) -> Iterable[Diagnostic]``, once.

Rules build diagnostics with ``ctx.at(rule_id, path, message)`` or ``ctx.at_field(rule_id, fn, key,
message)``, which position them where the effective value was declared (the function, ``defaults`` or the
profile).

A warning can be silenced with a reason, per function (``lint: {ignore: {RULE: reason}}`` on the function or
in ``defaults``) or for the whole file (top-level ``lint``). Errors cannot be silenced: Modal would reject
the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.spec.ir import App, Function, Image, JsonPath
from runtime.core.diagnostics import Diagnostic
from runtime.core.yamlfile import SourceDoc

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    summary: str  # what it checks
    fix: str  # what to do about it
    scope: str  # "function" | "app"
    check: Callable[..., Iterable[Diagnostic]]


RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: str, summary: str, fix: str, *, scope: str = "function") -> Callable:
    """Register the decorated check under ``rule_id``."""

    def register(check: Callable[..., Iterable[Diagnostic]]) -> Callable[..., Iterable[Diagnostic]]:
        if rule_id in RULES:
            raise ValueError(f"lint rule {rule_id!r} is registered twice")
        RULES[rule_id] = Rule(rule_id, severity, summary, fix, scope, check)
        return check

    return register


@dataclass
class LintContext:
    """What a rule may look at: the model, the document (for positions), and the project folder."""

    app: App
    doc: SourceDoc
    root: Path = field(
        default_factory=Path.cwd
    )  # the spec's folder: local paths (add_local) are relative to it

    def image_of(self, fn: Function) -> Image | None:
        """The image ``fn`` runs in, with what its base images bring; None without one, or for an undeclared
        one (ref-image's finding)."""
        return self.app.effective_image(fn.image)

    def at(self, rule_id: str, path: Iterable[str | int], message: str, *, key: bool = False) -> Diagnostic:
        return self.doc.diagnostic(path, message, rule_id, severity=RULES[rule_id].severity, key=key)

    def at_field(
        self,
        rule_id: str,
        fn: Function,
        name: str,
        message: str,
        *,
        index: int | None = None,
        key: bool = False,
    ) -> Diagnostic:
        """A diagnostic where ``fn``'s ``name`` (an origin key) was declared; ``index`` picks a list item."""
        path = fn.origins.get(name, ("functions", fn.name))
        if index is not None and isinstance(_value_at(self.doc.data, path), list):
            path = (*path, index)
        # a value from `defaults` is one mistake however many functions inherit it: report it once
        shared = path[:1] == ("defaults",) or (path[:1] == ("profiles",) and path[2:3] == ("defaults",))
        return self.at(rule_id, path, message if shared else f"function '{fn.name}': {message}", key=key)


def lint(app: App, doc: SourceDoc, *, root: Path | None = None) -> list[Diagnostic]:
    """Every finding of every rule, without silenced warnings, sorted by position."""
    ctx = LintContext(app, doc, root or app.spec_dir)
    file_ignores = dict(app.lint_ignores)
    found: set[Diagnostic] = set()
    for current in RULES.values():
        if current.scope == "app":
            found.update(d for d in current.check(ctx) if not _silenced(d, file_ignores))
            continue
        for fn in app.functions.values():
            ignores = file_ignores | dict(fn.lint_ignores)
            found.update(d for d in current.check(fn, ctx) if not _silenced(d, ignores))
    return sorted(found)


def _silenced(diagnostic: Diagnostic, ignores: dict[str, str]) -> bool:
    return diagnostic.severity == WARNING and diagnostic.rule in ignores


def _value_at(data: Any, path: JsonPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data
