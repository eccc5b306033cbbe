"""The user-error policy: a mistake of the user's (a config, data, a checkpoint, the machine's state) is a
:class:`UserError`, printed as one message with exit code 1, never a traceback and never retried.

The runtime's error classes subclass it where they are defined; entry points (``python -m runtime.train``,
``python -m runtime.evaluate``) and the local backend's child print :func:`user_message` for any of them.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the user what to fix; no traceback."""

    def user_message(self) -> str:
        return f"error: {self}"


def user_message(error: UserError) -> str:
    """What to print for a user error (diagnostics already carry their file:line:col)."""
    return error.user_message()
