"""The deployment spec's JSON Schema, shipped inside the package (``compiler/spec/schemas/``)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


def deployment_schema_text() -> str:
    """The deployment spec's JSON Schema as shipped in the package (``compiler/spec/schemas/``)."""
    schema = resources.files("compiler.spec") / "schemas" / "deployment.schema.json"
    return schema.read_text(encoding="utf-8")


@cache
def deployment_schema() -> dict:
    """:func:`deployment_schema_text`, parsed once per process; read-only."""
    return json.loads(deployment_schema_text())
