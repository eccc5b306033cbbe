"""``mtc logs``, ``mtc stop``, ``mtc apps``: look after Modal apps through ``modal app logs|stop|list``."""

from __future__ import annotations

import click

from compiler.cli.options import require_extra


@click.command()
@click.argument("app_id")
@click.option("-f", "--follow", is_flag=True, help="Stream the logs until the app stops.")
def logs(app_id: str, follow: bool) -> int:
    """Show the logs of a Modal app (modal app logs)."""
    require_extra("modal", "mtc logs")
    from compiler.backends import modal

    return modal.app_command("logs", *(["-f"] if follow else []), app_id)


@click.command()
@click.argument("app_id")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def stop(app_id: str, yes: bool) -> int:
    """Stop a Modal app and its running containers (modal app stop)."""
    require_extra("modal", "mtc stop")
    from compiler.backends import modal

    return modal.app_command("stop", *(["-y"] if yes else []), app_id)


@click.command()
def apps() -> int:
    """List the Modal apps that are running or recently stopped (modal app list)."""
    require_extra("modal", "mtc apps")
    from compiler.backends import modal

    return modal.app_command("list")
