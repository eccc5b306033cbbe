"""The `mtc` command line: a click group whose verbs live in their own modules and load only when used.

Exit codes are stable: 0 ok, 1 the input is wrong (diagnostics printed), 2 `--check`/`diff` found a
difference, 3 usage error. A user's mistake never ends in a traceback.

`pip install mtc` is the light core (lint, compile, schema, plan, diff); a command that needs an extra checks
for it with :func:`require_extra` before doing any work, and says what to install.
"""

from __future__ import annotations

import errno
import importlib
import importlib.util
import os
import sys

import click

from compiler.cli.extras import EXTRAS, missing_extra_message

EXIT_OK, EXIT_INVALID, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2, 3


def require_extra(extra: str, purpose: str) -> None:
    """Stop with exit 1 and the pip command to run when a module of ``extra`` is not installed (found
    without importing it)."""
    missing = [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(missing_extra_message(extra, purpose, missing))


# verb -> "module:attribute" of its click command; imported on first use so start-up stays fast
COMMANDS = {
    "init": "compiler.cli.init:init",
    "lint": "compiler.cli.compile:lint",
    "compile": "compiler.cli.compile:compile_",
    "schema": "compiler.cli.compile:schema",
    "plan": "compiler.cli.plan:plan",
    "diff": "compiler.cli.plan:diff",
    "run": "compiler.cli.run:run",
    "logs": "compiler.cli.run:logs",
    "stop": "compiler.cli.run:stop",
    "apps": "compiler.cli.run:apps",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mtc")
def cli() -> None:
    """Declare, check, compile and run Modal training jobs from specs/deployment.yaml."""


# Errors writing the output (a full disk, a closed terminal) are the environment's, not a bug in mtc.
OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="mtc", standalone_mode=False)
        sys.stdout.flush()
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = EXIT_INVALID
    except click.UsageError as exc:
        exc.show()
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = EXIT_INVALID
    except BrokenPipeError:
        code = EXIT_OK
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        _close_stdout_quietly()
        print(f"mtc: error: cannot write the output: {exc.strerror}", file=sys.stderr)
        code = EXIT_INVALID
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _close_stdout_quietly() -> None:
    """Drop what could not be written, so the interpreter's final flush does not fail a second time."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process exits
    except OSError:
        pass
