"""Volumes, cloud bucket mounts and secrets: ``modal.Volume.from_name``, ``modal.CloudBucketMount`` and
``modal.Secret.from_name`` / ``from_dict`` calls, as spec entries."""

from __future__ import annotations

import ast
import re
from typing import Any

from compiler.importer.notes import Unreadable
from compiler.importer.values import Scope, dotted

VOLUME_CALLS = frozenset({"modal.Volume.from_name", "Volume.from_name"})
BUCKET_CALLS = frozenset({"modal.CloudBucketMount", "CloudBucketMount"})
SECRET_CALLS = frozenset({"modal.Secret.from_name", "Secret.from_name"})
SECRET_DICT_CALLS = frozenset({"modal.Secret.from_dict", "Secret.from_dict"})
BUCKET_KEYS = {
    "key_prefix": "key_prefix",
    "read_only": "read_only",
    "bucket_endpoint_url": "bucket_endpoint_url",
}
# Keywords that change nothing mtc declares: Volume.from_name's create_if_missing (mtc always creates the
# volume), version (Modal's default).
IGNORED_VOLUME_KEYWORDS = frozenset({"create_if_missing"})


def is_storage(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and dotted(node.func) in VOLUME_CALLS | BUCKET_CALLS


def storage_name(variable: str) -> str:
    """The spec's name for a volume held in ``variable``: without the ``_volume``/``_bucket`` suffix the
    generated module adds (``results_volume`` -> ``results``)."""
    stripped = re.sub(r"_(volume|vol|bucket|mount)$", "", variable)
    return stripped or variable


def read_storage(node: ast.Call, scope: Scope) -> tuple[dict[str, Any], list[Unreadable]]:
    """The spec entry of a Volume or CloudBucketMount call, and what in it could not be read."""
    problems: list[Unreadable] = []
    is_bucket = dotted(node.func) in BUCKET_CALLS
    entry: dict[str, Any] = {}
    first = "bucket" if is_bucket else "volume"
    if node.args:
        entry[first] = scope.evaluate_or(node.args[0], problems, "")
    for keyword in node.keywords:
        key = keyword.arg
        if key in ("bucket_name", "name"):
            entry[first] = scope.evaluate_or(keyword.value, problems, "")
        elif is_bucket and key in BUCKET_KEYS:
            entry[BUCKET_KEYS[key]] = scope.evaluate_or(keyword.value, problems)
        elif is_bucket and key == "secret":
            entry["secret"] = _secret_or_problem(keyword.value, scope, problems)
        elif not is_bucket and key == "environment_name":
            entry["environment"] = scope.evaluate_or(keyword.value, problems)
        elif not is_bucket and key in IGNORED_VOLUME_KEYWORDS:
            continue
        else:
            problems.append(Unreadable(f"`{key}=` has no key in the spec", keyword.value.lineno))
    return {k: v for k, v in entry.items() if v is not None and v is not False}, problems


def read_secret(node: ast.expr, scope: Scope) -> str | dict[str, str]:
    """A secret's spec form: its name, or ``{name, environment}``."""
    if not (isinstance(node, ast.Call) and dotted(node.func) in SECRET_CALLS):
        raise Unreadable(f"`{ast.unparse(node)}` is not modal.Secret.from_name(...)", node.lineno)
    name = scope.evaluate(node.args[0]) if node.args else None
    environment = None
    for keyword in node.keywords:
        if keyword.arg == "name":
            name = scope.evaluate(keyword.value)
        elif keyword.arg == "environment_name":
            environment = scope.evaluate(keyword.value)
        else:
            raise Unreadable(f"Secret.from_name's `{keyword.arg}=` has no key in the spec", node.lineno)
    if not isinstance(name, str):
        raise Unreadable(f"`{ast.unparse(node)}` names no secret", node.lineno)
    return {"name": name, "environment": environment} if environment else name


def read_secret_env(node: ast.expr, scope: Scope) -> dict[str, str] | None:
    """The mapping of a ``modal.Secret.from_dict({...})`` (the spec's ``env``), None for another secret."""
    if not (isinstance(node, ast.Call) and dotted(node.func) in SECRET_DICT_CALLS and node.args):
        return None
    mapping = scope.evaluate(node.args[0])
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise Unreadable("Secret.from_dict with values that are not strings", node.lineno)
    return mapping


def _secret_or_problem(node: ast.expr, scope: Scope, problems: list[Unreadable]) -> Any:
    try:
        return read_secret(node, scope)
    except Unreadable as exc:
        problems.append(exc)
        return None
