"""``mtc lint``: check a deployment spec (schema, references, Modal limits, cost and safety rules).

Exit 0 with no errors (warnings allowed), 1 with errors. Heavy imports happen inside the command, so
``mtc lint`` starts fast in CI.
"""

from __future__ import annotations

import click

from compiler.cli.checked import check_spec
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import display_path, format_option, profile_option, spec_argument
from compiler.cli.report import FORMATS, report


@click.command()
@spec_argument
@profile_option
@format_option(FORMATS)
def lint(spec: str, profile: str | None, fmt: str) -> int:
    """Check SPEC (default specs/deployment.yaml): schema, references, Modal limits, cost and safety rules.

    Exit 0 when there are no errors (warnings allowed), 1 when there are.
    """
    result = check_spec(spec, profile)
    diagnostics = list(result.diagnostics)
    report(diagnostics, fmt, display_path(spec))
    return ExitCode.INVALID if any(d.severity == "error" for d in diagnostics) else ExitCode.OK
