"""The Modal backend: hand a function over to the Modal CLI (``modal run``) and pass ``modal app
logs|stop|list`` through, with this terminal's input and output; Modal's exit code is ours."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_function(module: str, function: str, overrides: dict[str, Any], *, detach: bool, sweep: bool) -> int:
    """``modal run`` of ``function`` in the generated ``module``, its parameters set from ``overrides``.

    Always through the module's local entrypoint (``--action``): it decodes lists and mappings from JSON text
    and checks required args, which ``modal run module::function`` cannot (Modal's CLI takes scalars only)."""
    command = [sys.executable, "-m", "modal", "run", *(["--detach"] if detach else [])]
    command += [module, "--action", function, *(["--sweep"] if sweep else [])]
    return pass_through(command + modal_flags(overrides))


def app_command(verb: str, *args: str) -> int:
    """``modal app VERB ARGS``: logs, stop, list."""
    return pass_through([sys.executable, "-m", "modal", "app", verb, *args])


def modal_flags(overrides: dict[str, Any]) -> list[str]:
    """``modal run`` options for the function's parameters: ``--name value``; ``--flag``/``--no-flag``."""
    flags: list[str] = []
    for name, value in overrides.items():
        option = name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(f"--{option}" if value else f"--no-{option}")
        elif isinstance(value, list | dict):
            flags += [f"--{option}", json.dumps(value)]  # the entrypoint decodes the JSON text
        else:
            flags += [f"--{option}", str(value)]
    return flags


def pass_through(command: list[str]) -> int:
    """Run a modal CLI command with this terminal's input and output; its exit code is ours."""
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130
