"""``mtc init [DIR]``: set mtc up in an existing repository.

It writes ``specs/deployment.yaml`` with functions that call mtc's bundled training runtime (and the training
configs they name: synthetic data for the debug profile, placeholders for production), or, with ``--target
MODULE:FUNCTION``, functions that call the team's own code with ``args`` read from the target's signature.
Beside them: a pre-commit config, a GitHub Actions workflow and a ``.gitignore`` for the local volumes.

Everything is rendered and checked before anything is written. A spec or config that exists already stops
the command (exit 1, every such file named, nothing written); an existing pre-commit config, workflow or
``.gitignore`` is left alone and what mtc would have added is printed to merge by hand. Each file is written
atomically and can never replace one that appeared meanwhile. No torch, no runtime import: the templates are
package data (``compiler/codegen/templates/init_*``) and the team's code is read, never imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from compiler.cli.exitcodes import ExitCode
from compiler.cli.init_files import SPEC, Planned, planned_files, refuse_conflicts, write_files
from compiler.cli.init_inputs import (
    InitError,
    Target,
    app_name_from,
    checked_app_name,
    folder_to_set_up,
    read_targets,
)


@click.command()
@click.argument("directory", default=".", required=False, metavar="[DIR]")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="[NAME=]MODULE:FUNCTION",
    help="A function of your own code to run (repeatable); NAME names it in the spec (default: FUNCTION). "
    "Without --target the functions call mtc's bundled training runtime.",
)
@click.option("--name", metavar="APP", help="The Modal app's name [default: from DIR's folder name].")
def init(directory: str, targets: tuple[str, ...], name: str | None) -> int:
    """Set mtc up in the repository DIR (default: the current folder).

    Writes specs/deployment.yaml (a debug profile and the production settings), the training configs it
    names, .pre-commit-config.yaml, .github/workflows/mtc.yml and .gitignore. Never overwrites a file: if
    the spec or a config exists, nothing is written (exit 1); an existing pre-commit config, workflow or
    .gitignore is left alone and the lines to merge are printed.
    """
    from compiler.codegen.emit import InternalError

    try:
        root = folder_to_set_up(directory)
        app = checked_app_name(name) if name is not None else app_name_from(root)
        found = read_targets(targets, root)
        files = planned_files(app, found)
        refuse_conflicts(root, files)
    except (InitError, InternalError) as exc:
        click.echo(f"mtc init: error: {exc}", err=True)
        return ExitCode.INVALID
    to_merge = [f for f in files if f.merge and os.path.lexists(root / f.path)]
    created = not root.exists()
    try:
        write_files(root, [f for f in files if f not in to_merge])
    except OSError as exc:
        problem = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        click.echo(f"mtc init: error: cannot write in {directory}: {problem}; nothing was written", err=True)
        return ExitCode.INVALID
    report(directory, root, app, files, to_merge, found, created)
    return ExitCode.OK


def report(
    directory: str,
    root: Path,
    app: str,
    files: list[Planned],
    to_merge: list[Planned],
    targets: list[Target],
    created: bool,
) -> None:
    if created:
        say(f"mtc init: {directory} did not exist: created it")
    say(f"mtc init: set up the Modal app '{app}' in {directory}")
    for planned in files:
        if planned not in to_merge:
            say(f"  wrote {planned.path}")
    for planned in to_merge:
        show_merge(root, planned)
    for target in targets:
        for parameter in target.required:
            say(
                f"  note: {target.module}:{target.entry} needs '{parameter}', which has no default: set it "
                f"under functions.{target.function}.args in {SPEC} (until then `mtc lint` fails)"
            )
    if not _in_git_repository(root):
        say(
            f"  note: {directory} is not in a git repository: `git init` it. The pre-commit and CI files"
            " expect one, and mtc finds your code from specs/ up to the project root (the folder with .git)"
        )
    say("next:")
    if directory not in (".", "./"):
        say(f"  cd {directory}")
    function = targets[0].function if targets else "train"
    say(f"  mtc lint && mtc compile && mtc run {function} --profile debug")
    say("  git add specs generated .pre-commit-config.yaml .github .gitignore && git commit -m 'mtc init'")


def say(message: str) -> None:
    click.echo(message, err=True)


def show_merge(root: Path, planned: Planned) -> None:
    """Print what ``planned`` would have added to the existing file, unless the file has it already."""
    wanted = [
        line for line in planned.text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    try:
        present = set((root / planned.path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        present = set()
    if all(line in present for line in wanted):
        say(f"  {planned.path} exists and already has what mtc needs: left as it is")
        return
    say(f"  {planned.path} exists: left as it is; merge this into it by hand:")
    click.echo(planned.text.rstrip("\n"))


def _in_git_repository(root: Path) -> bool:
    resolved = root.resolve()
    return any((folder / ".git").exists() for folder in (resolved, *resolved.parents))
