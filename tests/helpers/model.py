"""Building blocks for tests that construct the model directly."""

from __future__ import annotations

from typing import Any

from compiler.spec.ir import Arg


def args_of(*pairs: tuple[str, Any]) -> tuple[Arg, ...]:
    """``args_of(("steps", 10), ("layers", (64, 128)))``: plain args with defaults, in order."""
    return tuple(Arg(name, default) for name, default in pairs)
