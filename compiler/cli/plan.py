"""``mtc plan``: resources and estimated cost per function, before any GPU is billed; ``--budget`` makes it
a CI gate.
"""

from __future__ import annotations

from typing import Any

import click

from compiler.cli.checked import checked
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import (
    format_option,
    prices_option,
    prices_or_none,
    profile_option,
    spec_argument,
)


@click.command()
@spec_argument
@profile_option
@format_option(("text", "json"))
@click.option(
    "--budget", type=click.FloatRange(min=0), metavar="USD", help="Exit 1 when a worst case exceeds it."
)
@prices_option
def plan(spec: str, profile: str | None, fmt: str, budget: float | None, prices_file: str | None) -> int:
    """Resources and estimated cost of each function of SPEC (default specs/deployment.yaml)."""
    from compiler.platform.pricing import PricingError
    from compiler.review import plan as planning

    prices = prices_or_none(prices_file)
    result = checked(spec, profile, warnings=False) if prices else None
    if result is None:
        return ExitCode.INVALID
    app = result.app
    try:
        rows = planning.plan_rows(app, prices)
    except PricingError as exc:
        click.echo(f"error: {exc}", err=True)
        return ExitCode.INVALID
    if fmt == "json":
        click.echo(planning.as_json(rows, prices, app), nl=False)
    else:
        title = f"{app.name} ({app.spec_path}" + (f", profile {profile}" if profile else "") + ")"
        click.echo(title + "\n" + planning.format_table(rows), nl=False)
        click.echo(planning.footer(prices, rows), err=True, nl=False)
    if budget is None:
        return ExitCode.OK
    over = planning.over_budget(rows, budget)
    for row in over:
        click.echo(f"error: {_over_budget_message(row, budget)}", err=True)
    return ExitCode.INVALID if over else ExitCode.OK


def _over_budget_message(row: Any, budget: float) -> str:
    if row.worst_case_usd > budget:
        return (
            f"{row.function}'s worst case ${row.worst_case_usd:.2f} per call exceeds the budget "
            f"${budget:.2f}; lower its timeout, retries or GPU, or raise --budget"
        )
    return (
        f"{row.function}'s sweep worst case ${row.sweep_worst_case_usd:.2f} ({row.sweep_trials} trials x "
        f"${row.worst_case_usd:.2f} per call) exceeds the budget ${budget:.2f}; run fewer trials, lower the "
        "timeout, retries or GPU, or raise --budget"
    )
