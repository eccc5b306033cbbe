"""``@app.function(...)`` keywords as a spec function: resources, timeouts in the author's units, retries,
schedules, placement, container settings, volumes by mount path and secrets."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compiler.importer.notes import Unreadable
from compiler.importer.storage import read_secret, read_secret_env
from compiler.importer.values import Scope, dotted, is_literal
from compiler.spec.units import format_seconds

PLAIN = ("gpu", "cpu", "region", "cloud", "nonpreemptible", "min_containers", "max_containers")
FLAGS = ("single_use_containers", "block_network")
DURATIONS = ("timeout", "startup_timeout", "scaledown_window")
SIZES = ("memory", "ephemeral_disk")
RENAMED = {"concurrency_limit": "max_containers", "keep_warm": "min_containers"}
RENAMED_DURATIONS = {"container_idle_timeout": "scaledown_window"}
RETRIES_KEYS = ("max_retries", "backoff_coefficient", "initial_delay", "max_delay")
PERIOD_UNITS = (("days", "d"), ("hours", "h"), ("minutes", "m"), ("seconds", "s"))
CRON_CALLS = frozenset({"modal.Cron", "Cron"})
PERIOD_CALLS = frozenset({"modal.Period", "Period"})
RETRIES_CALLS = frozenset({"modal.Retries", "Retries"})


@dataclass
class Resolvers:
    """How the reader names what a decorator refers to: an image or storage variable, or an inline one."""

    image: Callable[[ast.expr, str], str]
    storage: Callable[[ast.expr, str], str]


@dataclass
class FunctionRead:
    entry: dict[str, Any] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)
    problems: list[Unreadable] = field(default_factory=list)


def read_decorator(call: ast.Call | None, name: str, scope: Scope, resolvers: Resolvers) -> FunctionRead:
    read = FunctionRead()
    for keyword in call.keywords if call else []:
        key = keyword.arg or "**"
        try:
            _keyword(key, keyword.value, name, scope, resolvers, read)
        except Unreadable as exc:
            read.problems.append(
                Unreadable(f"`{key}=`: {exc.reason}" if keyword.arg else exc.reason, exc.line)
            )
        read.key_lines.setdefault(_spec_key(key), keyword.value.lineno)
    return read


def _spec_key(key: str) -> str:
    renamed = {**RENAMED, **RENAMED_DURATIONS, "max_inputs": "single_use_containers"}
    return renamed.get(key, key)


def _keyword(
    key: str, node: ast.expr, name: str, scope: Scope, resolvers: Resolvers, read: FunctionRead
) -> None:
    entry = read.entry
    if key == "image":
        entry["image"] = resolvers.image(node, name)
    elif key in PLAIN or key in RENAMED:
        entry[RENAMED.get(key, key)] = _plain(key, scope.evaluate(node), node)
    elif key in FLAGS:
        entry[key] = scope.evaluate(node)
    elif key == "max_inputs" and scope.evaluate(node) == 1:
        entry["single_use_containers"] = True
    elif key in DURATIONS or key in RENAMED_DURATIONS:
        entry[RENAMED_DURATIONS.get(key, key)] = duration(node, scope)
    elif key in SIZES:
        entry[key] = size(node, scope)
    elif key == "retries":
        entry["retries"] = retries(node, scope)
    elif key == "schedule":
        entry["schedule"] = schedule(node, scope)
    elif key == "volumes":
        entry["volumes"] = _volumes(node, scope, resolvers)
    elif key == "secrets":
        _secrets(node, scope, entry)
    elif key == "**":
        raise Unreadable(f"`**{ast.unparse(node)}` passes settings computed when the app runs", node.lineno)
    else:
        raise Unreadable("has no key in the spec", node.lineno)


def _plain(key: str, value: Any, node: ast.expr) -> Any:
    if key == "cpu" and isinstance(value, list):
        raise Unreadable("a (request, limit) pair has no form in the spec", node.lineno)
    return value


def duration(node: ast.expr, scope: Scope) -> int | str:
    """Seconds as written (``900``), or in the author's units when computed or named (``24h``)."""
    seconds = scope.evaluate(node)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds != int(seconds):
        raise Unreadable(f"`{ast.unparse(node)}` is not a whole number of seconds", node.lineno)
    return int(seconds) if is_literal(node) else format_seconds(int(seconds))


def size(node: ast.expr, scope: Scope) -> int | str:
    """MiB as written (``131072``), or in GiB when computed or named (``128 * 1024`` -> ``128GiB``)."""
    mib = scope.evaluate(node)
    if isinstance(mib, list):
        raise Unreadable("a (request, limit) pair has no form in the spec", node.lineno)
    if isinstance(mib, bool) or not isinstance(mib, int):
        raise Unreadable(f"`{ast.unparse(node)}` is not a whole number of MiB", node.lineno)
    return mib if is_literal(node) or mib % 1024 else f"{mib // 1024}GiB"


def retries(node: ast.expr, scope: Scope) -> int | dict[str, Any]:
    if isinstance(node, ast.Call) and dotted(node.func) in RETRIES_CALLS:
        settings = {k.arg: scope.evaluate(k.value) for k in node.keywords}
        unknown = set(settings) - set(RETRIES_KEYS)
        if unknown or node.args:
            raise Unreadable(
                f"modal.Retries(...) with {sorted(unknown) or 'positional arguments'}", node.lineno
            )
        return {key: settings[key] for key in RETRIES_KEYS if key in settings}
    return scope.evaluate(node)


def schedule(node: ast.expr, scope: Scope) -> dict[str, Any]:
    if not isinstance(node, ast.Call):
        raise Unreadable(f"`{ast.unparse(node)}` is not modal.Cron(...) or modal.Period(...)", node.lineno)
    call = dotted(node.func)
    settings = {k.arg: scope.evaluate(k.value) for k in node.keywords}
    if call in CRON_CALLS and node.args:
        settings["cron_string"] = scope.evaluate(node.args[0])
    if call in CRON_CALLS and set(settings) in ({"cron_string"}, {"cron_string", "timezone"}):
        return {"cron": settings.pop("cron_string"), **settings}
    if call in PERIOD_CALLS and not node.args and set(settings) <= {unit for unit, _ in PERIOD_UNITS}:
        return {"period": "".join(f"{settings[u]}{s}" for u, s in PERIOD_UNITS if settings.get(u))}
    raise Unreadable(f"`{ast.unparse(node)}` is not a schedule the spec can write", node.lineno)


def _volumes(node: ast.expr, scope: Scope, resolvers: Resolvers) -> dict[str, str]:
    if not isinstance(node, ast.Dict) or any(key is None for key in node.keys):
        raise Unreadable(f"`{ast.unparse(node)}` is not a mapping written out", node.lineno)
    return {
        str(scope.evaluate(k)): resolvers.storage(v, str(scope.evaluate(k)))
        for k, v in zip(node.keys, node.values, strict=True)
    }


def _secrets(node: ast.expr, scope: Scope, entry: dict[str, Any]) -> None:
    if not isinstance(node, ast.List | ast.Tuple):
        raise Unreadable(f"`{ast.unparse(node)}` is not a list written out", node.lineno)
    secrets: list[Any] = []
    for item in node.elts:
        env = read_secret_env(item, scope)
        if env is None:
            secrets.append(read_secret(item, scope))
        else:
            entry.setdefault("env", {}).update(env)
    if secrets:
        entry["secrets"] = secrets
