"""The training error: a config, data or run-directory problem that stops training (message, exit 1)."""

from __future__ import annotations

from runtime.core.errors import UserError


class TrainingError(UserError, RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""
