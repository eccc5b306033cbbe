"""``mtc diff``: what changes between two specs, or between a git revision and the spec now: fields and
cost. Exit 2 when something changes, so it can gate CI.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from compiler.cli.checked import checked
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import (
    DEFAULT_SPEC,
    format_option,
    prices_option,
    prices_or_none,
    profile_option,
)
from runtime.core.files import MAX_FILE_BYTES


@click.command()
@click.argument("specs", nargs=-1, metavar="OLD NEW | --rev REV [NEW]")
@click.option(
    "--rev", help="Compare the spec as committed at this git revision with NEW (or the file on disk)."
)
@profile_option
@format_option(("text", "json"))
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
    prices = prices_or_none(prices_file)
    if prices is None:
        return ExitCode.INVALID
    if rev is None:
        old_app = _checked_app(specs[0], profile)
        new_spec = specs[1]
    else:
        new_spec = specs[0] if specs else DEFAULT_SPEC
        old_app = _app_at_revision(rev, new_spec, profile)
    new_app = _checked_app(new_spec, profile)
    if old_app is None or new_app is None:
        return ExitCode.INVALID
    result = diff_apps(old_app, new_app, prices)
    click.echo(format_json(result) if fmt == "json" else format_text(result), nl=False)
    return ExitCode.DIFFERENT if result.changed else ExitCode.OK


def _checked_app(spec: str, profile: str | None, display: str | None = None) -> Any:
    """The resolved app of ``spec``, or None after printing its errors."""
    result = checked(spec, profile, display=display, warnings=False)
    return None if result is None else result.app


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
