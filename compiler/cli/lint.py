"""``mtc lint``: check a deployment spec (schema, references, Modal limits, cost and safety rules).

Exit 0 with no errors (warnings allowed), 1 with errors. Heavy imports happen inside the command, so
``mtc lint`` starts fast in CI.
"""

from __future__ import annotations

import click

from compiler.cli.compile import render_diagnostics
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import display_path, profile_option, spec_argument
from compiler.cli.report import FORMATS, report


@click.command()
@spec_argument
@profile_option
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format."
)
def lint(spec: str, profile: str | None, fmt: str) -> int:
    """Check SPEC (default specs/deployment.yaml): schema, references, Modal limits, cost and safety rules.

    Exit 0 when there are no errors (warnings allowed), 1 when there are.
    """
    from compiler.spec.check import check

    shown = display_path(spec)
    result = check(shown, profile)
    diagnostics = list(result.diagnostics)
    if not result.has_errors and result.app is not None:
        diagnostics += render_diagnostics(result)
    report(diagnostics, fmt, shown)
    return ExitCode.INVALID if any(d.severity == "error" for d in diagnostics) else ExitCode.OK
