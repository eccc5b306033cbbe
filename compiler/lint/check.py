"""The front half of the compiler in one call: load, validate against the schema, resolve, lint. It sits
above the lint (the spec layer never imports it); the CLI and the tests call it.

``check(spec_path, profile)`` never raises for a user's mistake: every problem comes back as a positioned
diagnostic. A stage runs only when the previous one produced no errors, and a stage reports all of its
errors at once. Without ``--profile`` every profile is also resolved and linted, so a mistake in a profile
shows up before someone selects it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from compiler.lint import lint
from compiler.spec.ir import App
from compiler.spec.resolve import resolve
from compiler.spec.schema import deployment_schema
from runtime.core.diagnostics import Diagnostic, SpecError
from runtime.core.schema import schema_diagnostics
from runtime.core.yamlfile import SourceDoc, load_yaml


@dataclass
class CheckResult:
    doc: SourceDoc | None
    app: App | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


def check(spec_path: str | Path, profile: str | None = None) -> CheckResult:
    """Load, validate, resolve and lint ``spec_path`` under ``profile``; diagnostics sorted by position."""
    try:
        doc = load_yaml(spec_path, display_path=str(spec_path))
    except SpecError as exc:
        return CheckResult(None, None, exc.diagnostics)
    problems = schema_diagnostics(doc, deployment_schema())
    if any(d.severity == "error" for d in problems):
        return CheckResult(doc, None, sorted(problems))
    sha256 = doc.sha256  # of the bytes the loader read: a FIFO or /dev/stdin cannot be read twice
    app, diagnostics = _resolve_and_lint(doc, profile, sha256)
    if profile is None and app is not None:
        diagnostics = _with_every_profile(doc, sha256, diagnostics)
    return CheckResult(doc, app, sorted(set(problems) | set(diagnostics)))


def _resolve_and_lint(
    doc: SourceDoc, profile: str | None, sha256: str
) -> tuple[App | None, list[Diagnostic]]:
    try:
        app = resolve(doc, profile, sha256=sha256)
    except SpecError as exc:
        return None, exc.diagnostics
    return app, lint(app, doc)


def _with_every_profile(doc: SourceDoc, sha256: str, base: list[Diagnostic]) -> list[Diagnostic]:
    """``base`` plus what each profile adds, marked with the profile that brings it."""
    seen = set(base)
    out = list(base)
    for name in doc.data.get("profiles", {}):
        for diagnostic in _resolve_and_lint(doc, name, sha256)[1]:
            if diagnostic not in seen:
                seen.add(diagnostic)
                out.append(_with_suffix(diagnostic, f" (with --profile {name})"))
    return out


def _with_suffix(diagnostic: Diagnostic, suffix: str) -> Diagnostic:
    return dataclasses.replace(diagnostic, message=diagnostic.message + suffix)
