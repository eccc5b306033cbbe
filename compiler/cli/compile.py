"""``mtc lint``, ``mtc compile`` and ``mtc schema``: check a deployment spec and turn it into a Modal module.

Each command returns the CLI's exit code: 0 ok (warnings allowed), 1 the spec has errors (nothing is
written), 2 ``compile --check`` found the module on disk out of date. Heavy imports (jsonschema, Jinja2)
happen inside the commands, so ``mtc --help`` and ``mtc lint`` start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from compiler.cli import EXIT_DIFFERENT, EXIT_INVALID, EXIT_OK
from compiler.cli.report import FORMATS, report

DEFAULT_SPEC = "specs/deployment.yaml"
GENERATED_DIR = "generated"

spec_argument = click.argument("spec", default=DEFAULT_SPEC, required=False, metavar="[SPEC]")
profile_option = click.option(
    "--profile", "-p", metavar="NAME", help="Apply this profile of the spec (e.g. debug) over the base."
)


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
    return EXIT_INVALID if any(d.severity == "error" for d in diagnostics) else EXIT_OK


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
    from compiler.spec.check import check

    shown = display_path(spec)
    result = check(shown, profile)
    diagnostics = list(result.diagnostics)
    if result.has_errors or result.app is None:
        report(diagnostics, "text", shown)
        return EXIT_INVALID
    try:
        source, problems = render_module(result, Path(output).parent if output else None)
    except InternalError as exc:
        click.echo(f"mtc: internal error: {exc}", err=True)
        return EXIT_INVALID
    if problems:
        report(diagnostics + problems, "text", shown)
        return EXIT_INVALID
    if diagnostics:
        report(diagnostics, "text", shown)
    target = output or f"{GENERATED_DIR}/{result.app.module_name}.py"
    return check_module(target, source, shown) if check_only else write_module(target, source)


@click.command()
@click.option("--training", is_flag=True, help="Print the training config's schema instead.")
def schema(training: bool) -> int:
    """Print the JSON Schema of deployment specs (for editors and other validators).

    Both schemas ship inside the package; `mtc schema > specs/schema/deployment.schema.json` and
    `mtc schema --training > specs/schema/train.schema.json` refresh the copies editors point at.
    """
    from compiler.spec.check import deployment_schema_text
    from runtime import config_schema

    sys.stdout.write(config_schema.TEXT if training else deployment_schema_text())
    return EXIT_OK


def display_path(spec: str) -> str:
    """``spec`` as diagnostics and the generated header show it: relative to the current folder if inside."""
    path = Path(spec)
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def render_diagnostics(result) -> list:
    """Problems only the renderer sees (names that clash once they are Python names), as diagnostics."""
    from compiler.codegen.render import RenderError, check_names

    try:
        check_names(result.app)
    except RenderError as exc:
        return [result.doc.diagnostic(exc.path, exc.message, exc.rule)]
    return []


def render_module(result, module_dir: Path | None = None) -> tuple[str, list]:
    """The verified source of the module for ``result.app``, or the diagnostics that prevent it.

    ``module_dir`` is where it will be written (default: ``generated/``); it finds the spec's folder from it.
    """
    from compiler.codegen.emit import verify
    from compiler.codegen.render import RenderError, render

    try:
        source = render(result.app, module_dir=module_dir)
    except RenderError as exc:
        return "", [result.doc.diagnostic(exc.path, exc.message, exc.rule)]
    verify(source, result.app.module_name + ".py")
    return source, []


def check_module(target: str, source: str, shown: str) -> int:
    from compiler.codegen.emit import difference

    try:
        diff = difference(target, source)
    except OSError as exc:
        click.echo(f"mtc: cannot read {target}: {exc.strerror or exc}", err=True)
        return EXIT_INVALID
    if diff is None:
        click.echo(f"{target} is up to date", err=True)
        return EXIT_OK
    sys.stdout.write(diff)
    click.echo(f"{target} is out of date with {shown}: regenerate it with `mtc compile`", err=True)
    return EXIT_DIFFERENT


def write_module(target: str, source: str) -> int:
    from compiler.codegen.emit import write_atomic

    try:
        write_atomic(target, source)
    except OSError as exc:
        click.echo(f"mtc: cannot write {target}: {exc.strerror or exc}", err=True)
        return EXIT_INVALID
    click.echo(f"wrote {target}", err=True)
    return EXIT_OK
