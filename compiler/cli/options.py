"""What the verbs share: the spec argument, ``--profile``, ``--format``, ``--prices``, ``--volumes-dir``,
how a spec path is shown, and the check for an extra a command needs."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

import click

from compiler.platform.extras import EXTRAS, missing_extra_message

if TYPE_CHECKING:
    from compiler.platform.pricing import Prices

DEFAULT_SPEC = "specs/deployment.yaml"

spec_argument = click.argument("spec", default=DEFAULT_SPEC, required=False, metavar="[SPEC]")
profile_option = click.option(
    "--profile", "-p", metavar="NAME", help="Apply this profile of the spec (e.g. debug) over the base."
)
prices_option = click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False),
    help="A JSON price file laid over the built-in one (same keys as compiler/platform/data/pricing.json).",
)


def prices_or_none(path: str | None) -> Prices | None:
    """The price table, or None after printing why the user's file cannot be used."""
    from compiler.platform.pricing import PricingError, load_prices

    try:
        return load_prices(path)
    except PricingError as exc:
        click.echo(f"error: {exc}", err=True)
        return None


volumes_dir_option = click.option(
    "--volumes-dir",
    type=click.Path(file_okay=False),
    help="Local backend: folder with one sub-folder per volume (default $MTC_VOLUMES_DIR or .mtc/volumes).",
)


def format_option(choices: tuple[str, ...]):
    """``--format`` among ``choices``, ``text`` by default; the value reaches the command as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default="text",
        show_default=True,
        help="Output format.",
    )


def display_path(spec: str) -> str:
    """``spec`` as diagnostics and the generated header show it: relative to the current folder if inside."""
    path = Path(spec)
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def require_extra(extra: str, purpose: str) -> None:
    """Stop with exit 1 and the pip command to run when a module of ``extra`` is not installed (found
    without importing it)."""
    missing = [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(missing_extra_message(extra, purpose, missing))
