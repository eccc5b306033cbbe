"""`mtc plan` and `mtc diff`: resources and cost per function, and what a change to the spec changes.

Both put cost in front of a reviewer before any GPU is billed. ``plan --budget`` and ``diff``'s exit code 2
make them usable as CI gates.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from compiler.cli import EXIT_DIFFERENT, EXIT_INVALID, EXIT_OK
from runtime.core.files import MAX_FILE_BYTES

DEFAULT_SPEC = "specs/deployment.yaml"

prices_option = click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False),
    help="A JSON price file laid over the built-in one (same keys as compiler/platform/data/pricing.json).",
)
profile_option = click.option(
    "--profile", "-p", metavar="NAME", help="Apply this profile of the spec (e.g. debug)."
)


def _prices(path: str | None) -> Any:
    """The price table, or None after printing why the user's file cannot be used."""
    from compiler.platform.pricing import PricingError, load_prices

    try:
        return load_prices(path)
    except PricingError as exc:
        click.echo(f"error: {exc}", err=True)
        return None


def _checked_app(spec: str, profile: str | None, display: str | None = None) -> Any:
    """The resolved app of ``spec``, or None after printing its diagnostics (under ``display`` if given)."""
    from compiler.cli.compile import display_path
    from compiler.cli.report import report
    from compiler.spec.check import check

    shown = display_path(spec)
    result = check(shown, profile=profile)
    diagnostics = result.diagnostics
    if display is not None:
        diagnostics = [replace(d, path=display) if d.path == shown else d for d in diagnostics]
    if result.has_errors or result.app is None:
        report(diagnostics, "text", display or shown)
        return None
    app = result.app
    return replace(app, spec_path=display) if display is not None else app


@click.command()
@click.argument("spec", required=False, default=DEFAULT_SPEC)
@profile_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--budget", type=click.FloatRange(min=0), metavar="USD", help="Exit 1 when a worst case exceeds it."
)
@prices_option
def plan(spec: str, profile: str | None, fmt: str, budget: float | None, prices_file: str | None) -> int:
    """Resources and estimated cost of each function of SPEC (default specs/deployment.yaml)."""
    from compiler.platform.pricing import PricingError
    from compiler.review import plan as planning

    prices = _prices(prices_file)
    app = _checked_app(spec, profile) if prices else None
    if app is None:
        return EXIT_INVALID
    try:
        rows = planning.plan_rows(app, prices)
    except PricingError as exc:
        click.echo(f"error: {exc}", err=True)
        return EXIT_INVALID
    if fmt == "json":
        click.echo(planning.as_json(rows, prices, app), nl=False)
    else:
        title = f"{app.name} ({app.spec_path}" + (f", profile {profile}" if profile else "") + ")"
        click.echo(title + "\n" + planning.format_table(rows), nl=False)
        click.echo(planning.footer(prices, rows), err=True, nl=False)
    if budget is None:
        return EXIT_OK
    over = planning.over_budget(rows, budget)
    for row in over:
        click.echo(f"error: {_over_budget_message(row, budget)}", err=True)
    return EXIT_INVALID if over else EXIT_OK


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


@click.command()
@click.argument("specs", nargs=-1, metavar="OLD NEW | --rev REV [NEW]")
@click.option(
    "--rev", help="Compare the spec as committed at this git revision with NEW (or the file on disk)."
)
@profile_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@prices_option
def diff(
    specs: tuple[str, ...], rev: str | None, profile: str | None, fmt: str, prices_file: str | None
) -> int:
    """What changes between two specs, or between a git revision and the spec now: fields and cost.

    Exit 0 when nothing changes, 2 when something does, 1 when either side is invalid.
    """
    from compiler.review.diff import diff_apps, format_json, format_text

    if rev is None and len(specs) != 2:
        raise click.UsageError("give two specs (OLD NEW), or --rev REV and at most one spec")
    if rev is not None and len(specs) > 1:
        raise click.UsageError("with --rev, give at most one spec (NEW, default specs/deployment.yaml)")
    if rev is not None and (not rev or rev.startswith("-") or not rev.isprintable()):
        raise click.UsageError(
            f"--rev {rev!r} is not a git revision: it must not be empty, start with '-' or hold control "
            "characters (e.g. --rev main, --rev HEAD~1, --rev v1.2)"
        )
    prices = _prices(prices_file)
    if prices is None:
        return EXIT_INVALID
    if rev is None:
        old_app = _checked_app(specs[0], profile)
        new_spec = specs[1]
    else:
        new_spec = specs[0] if specs else DEFAULT_SPEC
        old_app = _app_at_revision(rev, new_spec, profile)
    new_app = _checked_app(new_spec, profile)
    if old_app is None or new_app is None:
        return EXIT_INVALID
    result = diff_apps(old_app, new_app, prices)
    click.echo(format_json(result) if fmt == "json" else format_text(result), nl=False)
    return EXIT_DIFFERENT if result.changed else EXIT_OK


def _app_at_revision(rev: str, spec: str, profile: str | None) -> Any:
    """The app of ``spec`` as committed at ``rev``, shown as ``REV:spec``.

    ``git cat-file blob --end-of-options REV:./NAME`` reads it: ``--end-of-options`` keeps the revision from
    being taken as an option, and ``blob`` refuses a folder. At most one byte more than a spec may hold is
    read, so an oversized blob is reported by the loader like an oversized file.
    """
    path = Path(spec)
    display = f"{rev}:{spec}"
    command = ["git", "cat-file", "blob", "--end-of-options", f"{rev}:./{path.name}"]
    try:
        with subprocess.Popen(
            command, cwd=path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as git:
            content = git.stdout.read(MAX_FILE_BYTES + 1)
            oversized = len(content) > MAX_FILE_BYTES
            if oversized:
                git.kill()
            errors = git.communicate()[1]
    except (FileNotFoundError, NotADirectoryError) as exc:
        click.echo(f"error: cannot run git for {display}: {exc}", err=True)
        return None
    if git.returncode != 0 and not oversized:
        message = errors.decode(errors="replace").strip() or "git cat-file failed"
        click.echo(f"error: {display}: {message}", err=True)
        return None
    with tempfile.TemporaryDirectory(prefix="mtc-diff-") as folder:
        old = os.path.join(folder, path.name)
        Path(old).write_bytes(content)
        return _checked_app(old, profile, display=display)
