"""``mtc schema``: print the JSON Schema of deployment.yaml or of the training config."""

from __future__ import annotations

import sys

import click

from compiler.cli.exitcodes import ExitCode


@click.command()
@click.option("--training", is_flag=True, help="Print the training config's schema instead.")
def schema(training: bool) -> int:
    """Print the JSON Schema of deployment specs (for editors and other validators).

    Both schemas ship inside the package; `mtc schema > specs/schema/deployment.schema.json` and
    `mtc schema --training > specs/schema/train.schema.json` refresh the copies editors point at.
    """
    from compiler.spec.schema import deployment_schema_text
    from runtime import config_schema

    sys.stdout.write(config_schema.TEXT if training else deployment_schema_text())
    return ExitCode.OK
