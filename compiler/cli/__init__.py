"""The `mtc` command line: a click group with one module per verb, registered below. Each verb module
imports what is heavy (jsonschema, Jinja2, the runtime) inside its command, so start-up stays fast.

Exit codes are stable: 0 ok, 1 the input is wrong (diagnostics printed), 2 `--check`/`diff` found a
difference, 3 usage error. A user's mistake never ends in a traceback.

`pip install mtc` is the light core (lint, compile, schema, plan, diff); a command that needs an extra checks
for it with :func:`compiler.cli.options.require_extra` before doing any work, and says what to install.
"""

from __future__ import annotations

import errno
import os
import sys

import click

from compiler.cli.exitcodes import ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
        code = ExitCode.INVALID
    except click.UsageError as exc:
        exc.show()
        code = ExitCode.USAGE
    except click.ClickException as exc:
        exc.show()
        code = ExitCode.INVALID
    except BrokenPipeError:
        code = ExitCode.OK
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS:
            raise
        _close_stdout_quietly()
        print(f"mtc: error: cannot write the output: {exc.strerror}", file=sys.stderr)
        code = ExitCode.INVALID
    sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _close_stdout_quietly() -> None:
    """Drop what could not be written, so the interpreter's final flush does not fail a second time."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives until the process exits
    except OSError:
        pass


# the verbs, imported explicitly after `cli`; at the top they import only light modules
from compiler.cli import compile, diff, import_, init, lint, modal, plan, run, schema  # noqa: E402, I001

for _command in (
    init.init,
    import_.import_,
    lint.lint,
    compile.compile_,
    schema.schema,
    plan.plan,
    diff.diff,
    run.run,
    modal.logs,
    modal.stop,
    modal.apps,
):
    cli.add_command(_command)
