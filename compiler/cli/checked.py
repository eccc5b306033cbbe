"""The one way a verb checks its spec: run the front half (:func:`compiler.lint.check.check`), print what it
found, and hand back the result with a resolved app, or None when the spec has errors (exit 1)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from compiler.cli.options import display_path
from compiler.cli.report import report

if TYPE_CHECKING:
    from compiler.lint.check import CheckResult


def check_spec(spec: str, profile: str | None, display: str | None = None) -> CheckResult:
    """The check of ``spec`` under ``profile``, its path shown as diagnostics show it (``display`` if given:
    e.g. ``REV:specs/deployment.yaml`` for a spec read out of git)."""
    from compiler.lint.check import check

    shown = display_path(spec)  # as `mtc compile` shows it, so the generated header compares equal
    result = check(shown, profile=profile)
    if display is None:
        return result
    diagnostics = [replace(d, path=display) if d.path == shown else d for d in result.diagnostics]
    app = replace(result.app, spec_path=display) if result.app is not None else None
    return replace(result, app=app, diagnostics=diagnostics)


def checked(
    spec: str, profile: str | None, *, display: str | None = None, warnings: bool = True
) -> CheckResult | None:
    """The check of ``spec`` with a resolved app, or None after printing its errors. Warnings are printed
    too unless ``warnings`` is False (the caller reports them itself, or, as ``plan`` and ``diff``, shows
    only what stops it)."""
    result = check_spec(spec, profile, display)
    failed = result.has_errors or result.app is None
    if result.diagnostics and (failed or warnings):
        report(result.diagnostics, "text", display or display_path(spec))
    return None if failed else result
