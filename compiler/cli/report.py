"""Print diagnostics in the three formats the CLI offers.

- ``text``: ``path:line:col: severity: message [rule]`` one per line on stderr, then a one-line summary;
- ``json``: one JSON object on stdout, ``{"diagnostics": [...], "errors": N, "warnings": N}``;
- ``github``: GitHub Actions workflow commands (``::error file=...,line=...,col=...,title=RULE::message``) on
  stdout, which Actions turns into annotations on the pull request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from runtime.core.diagnostics import Diagnostic

FORMATS = ("text", "json", "github")


def counts(diagnostics: Sequence[Diagnostic]) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    return errors, len(diagnostics) - errors


def summary(diagnostics: Sequence[Diagnostic], subject: str) -> str:
    errors, warnings = counts(diagnostics)
    if not diagnostics:
        return f"{subject}: no problems found"
    return f"{subject}: {_plural(errors, 'error')}, {_plural(warnings, 'warning')}"


def report(
    diagnostics: Sequence[Diagnostic],
    fmt: str,
    subject: str,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    """Write ``diagnostics`` (sorted by position) in ``fmt``; ``subject`` names the file in the summary."""
    out = out or sys.stdout
    err = err or sys.stderr
    ordered = sorted(diagnostics)
    if fmt == "json":
        errors, warnings = counts(ordered)
        payload = {"diagnostics": [d.as_dict() for d in ordered], "errors": errors, "warnings": warnings}
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "github":
        out.writelines(github_annotation(d) + "\n" for d in ordered)
    else:
        err.writelines(d.format() + "\n" for d in ordered)
        err.write(summary(ordered, subject) + "\n")


def github_annotation(diagnostic: Diagnostic) -> str:
    level = "error" if diagnostic.severity == "error" else "warning"
    properties = ",".join(
        f"{key}={_escape_property(str(value))}"
        for key, value in (
            ("file", diagnostic.path),
            ("line", diagnostic.line),
            ("col", diagnostic.col),
            ("title", diagnostic.rule),
        )
    )
    return f"::{level} {properties}::{_escape_data(diagnostic.message)}"


def _escape_data(text: str) -> str:
    # As the Actions runner's own toolkit escapes command data: a newline would end the command.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
