"""``mtc compile``: turn a deployment spec into a Modal module, or ``--check`` the one on disk.

Exit 0 ok (warnings allowed), 1 the spec has errors (nothing is written), 2 ``--check`` found the module on
disk out of date. Jinja2 is imported inside the command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compiler.cli.checked import checked
from compiler.cli.exitcodes import ExitCode
from compiler.cli.options import profile_option, spec_argument
from compiler.cli.report import report

GENERATED_DIR = "generated"


@click.command("compile")
@spec_argument
@profile_option
@click.option(
    "-o", "--output", metavar="PATH", help="Where to write the module [default: generated/<app>.py]."
)
@click.option(
    "--check", "check_only", is_flag=True, help="Write nothing; exit 2 with a diff if PATH is out of date."
)
def compile_(spec: str, profile: str | None, output: str | None, check_only: bool) -> int:
    """Compile SPEC into a Modal module that `modal run` and `modal deploy` accept.

    The module is verified (parsed and compiled) before it is written, and written atomically. With --check
    nothing is written: exit 0 when the file on disk is identical, 2 with a unified diff when it differs or
    is missing.
    """
    from compiler.codegen.emit import InternalError

    result = checked(spec, profile, warnings=False)  # printed below, with what the renderer finds
    if result is None:
        return ExitCode.INVALID
    shown = result.app.spec_path
    diagnostics = list(result.diagnostics)
    try:
        source = render_module(result, Path(output).parent if output else None)
    except InternalError as exc:
        click.echo(f"mtc: internal error: {exc}", err=True)
        return ExitCode.INVALID
    if diagnostics:
        report(diagnostics, "text", shown)
    target = output or f"{GENERATED_DIR}/{result.app.module_name}.py"
    return check_module(target, source, shown) if check_only else write_module(target, source)


def render_module(result, module_dir: Path | None = None) -> str:
    """The verified source of the module for ``result.app`` (lint has checked its names).

    ``module_dir`` is where it will be written (default: ``generated/``); it finds the spec's folder from it.
    """
    from compiler.codegen.emit import verify
    from compiler.codegen.render import render

    source = render(result.app, module_dir=module_dir)
    verify(source, result.app.module_name + ".py")
    return source


def check_module(target: str, source: str, shown: str) -> int:
    from compiler.codegen.emit import difference

    try:
        diff = difference(target, source)
    except OSError as exc:
        click.echo(f"mtc: cannot read {target}: {exc.strerror or exc}", err=True)
        return ExitCode.INVALID
    if diff is None:
        click.echo(f"{target} is up to date", err=True)
        return ExitCode.OK
    sys.stdout.write(diff)
    click.echo(f"{target} is out of date with {shown}: regenerate it with `mtc compile`", err=True)
    return ExitCode.DIFFERENT


def write_module(target: str, source: str) -> int:
    from compiler.codegen.emit import write_atomic

    try:
        write_atomic(target, source)
    except OSError as exc:
        click.echo(f"mtc: cannot write {target}: {exc.strerror or exc}", err=True)
        return ExitCode.INVALID
    click.echo(f"wrote {target}", err=True)
    return ExitCode.OK
