"""The optional dependency groups (extras) of mtc and the message that names a missing one.

`pip install mtc` is the light core (lint, compile, schema, plan, diff). The CLI checks for an extra before
a command needs it (:func:`compiler.cli.options.require_extra`); the local backend's child turns a
``ModuleNotFoundError`` of an extra's module into the same message. Light on purpose: the child imports it.
"""

from __future__ import annotations

# extra in pyproject.toml -> the top-level modules of its packages
EXTRAS = {
    "train": ("torch", "numpy", "matplotlib", "sklearn", "tqdm", "psutil"),
    "modal": ("modal",),
    "edf": ("edfio",),
    "serve": ("fastapi", "uvicorn"),
}


def missing_extra_message(extra: str, purpose: str, missing: list[str]) -> str:
    return (
        f"{purpose} needs the '{extra}' extra ({', '.join(missing)} not installed); "
        f"install it with: pip install 'mtc[{extra}]'"
    )


def extra_providing(module: str | None) -> str | None:
    """The extra whose packages include ``module`` (a dotted name, e.g. from ModuleNotFoundError.name)."""
    top = (module or "").partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)
