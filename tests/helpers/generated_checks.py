"""Helpers for tests of generated modules: import one offline, and state what Modal should see for a model.

Expectations are written from the resolved model and Modal's API, independently of the renderer: functions
are compared through the public ``fn.info()``, images (which Modal does not expose offline) through the
literal arguments of each call in the module's image chain (a local folder relative to the spec is the
module's ``SPEC_DIR`` expression, read against a marker folder).
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from compiler.codegen.classes import class_name
from compiler.spec.ir import App, Function, SecretRef, Volume

MODAL_DEFAULT_TIMEOUT = 300
_counter = itertools.count()


def import_generated(path: Path) -> ModuleType:
    """Import the module at ``path`` under a fresh name (so several apps can be imported in one process)."""
    name = f"generated_under_test_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def expected_info(app: App, function: Function) -> dict[str, Any]:
    resources = function.resources
    volumes = {m.path: app.volumes[m.volume] for m in function.mounts}
    secrets = [*app.secrets, *function.secrets]
    return {
        "gpus": [(gpu.type.upper() if gpu.type == "any" else gpu.type, gpu.count) for gpu in resources.gpus],
        "cpu": resources.cpu,
        "memory_mib": resources.memory_mib,
        "ephemeral_disk_mib": resources.ephemeral_disk_mib,
        "timeout": resources.timeout_s or MODAL_DEFAULT_TIMEOUT,
        "startup_timeout": function.startup_timeout_s or resources.timeout_s or MODAL_DEFAULT_TIMEOUT,
        "single_use_containers": function.single_use_containers,
        "block_network": function.block_network,
        "max_retries": function.retries.max_retries if function.retries else None,
        "regions": list(function.region) or None,
        "cloud": function.cloud,
        "nonpreemptible": function.nonpreemptible,
        "volumes": {p: (v.volume, v.read_only) for p, v in volumes.items() if v.kind == "volume"},
        "buckets": {
            p: (v.bucket, v.key_prefix, v.read_only) for p, v in volumes.items() if v.kind == "bucket"
        },
        "secrets": [secret_repr(ref) for ref in secrets]
        + ([f"Secret.from_dict([{', '.join(name for name, _ in function.env)}])"] if function.env else []),
        "schedule": _schedule_expectation(function),
        "cluster": (function.cluster.size, function.cluster.rdma) if function.cluster else None,
        "concurrency": (function.concurrency.max_inputs, function.concurrency.target_inputs)
        if function.concurrency
        else None,
        "methods": [method.name for method in function.methods] or None,
        "web": (function.web.method or "GET")
        if function.web and function.web.kind == "fastapi_endpoint"
        else None,
    }


def modal_object(module: ModuleType, function: Function) -> Any:
    """What Modal made of ``function`` in the imported module: a function, or a class's service function."""
    if function.is_class:
        return getattr(module, class_name(function.name))._get_class_service_function()
    return getattr(module, function.name)


def secret_repr(ref: SecretRef) -> str:
    """How Modal shows a secret from the spec (in ``fn.info().secrets`` and ``repr``)."""
    environment = f", environment_name={ref.environment!r}" if ref.environment else ""
    return f"modal.Secret.from_name({ref.name!r}{environment})"


def volume_repr(volume: Volume) -> str:
    """How Modal shows a Volume of the spec (``repr``; ``fn.info()`` does not show the environment)."""
    environment = f", environment_name={volume.environment!r}" if volume.environment else ""
    return f"modal.Volume.from_name({volume.volume!r}{environment})"


def actual_info(modal_function: Any) -> dict[str, Any]:
    info = modal_function.info()
    return {
        "gpus": [tuple(gpu) for gpu in info.gpus],
        "cpu": info.cpu,
        "memory_mib": info.memory_mib,
        "ephemeral_disk_mib": info.ephemeral_disk_mib,
        "timeout": info.timeout,
        "startup_timeout": info.startup_timeout,
        "single_use_containers": info.single_use_containers,
        "block_network": info.block_network,
        "max_retries": info.max_retries,
        "regions": info.regions,
        "cloud": info.cloud,
        "nonpreemptible": info.nonpreemptible,
        "volumes": {p: (v.name, v.read_only) for p, v in info.volumes.items()},
        "buckets": {
            p: (b.bucket_name, b.key_prefix or None, b.read_only) for p, b in info.cloud_bucket_mounts.items()
        },
        "secrets": list(info.secrets),
        "schedule": _schedule_seen(info.schedule),
        "cluster": (info.cluster_info.size, info.cluster_info.rdma) if info.cluster_info else None,
        "concurrency": (info.concurrency_info.max_inputs, info.concurrency_info.target_inputs)
        if info.concurrency_info
        else None,
        "methods": info.method_names,
        "web": info.web_info.method if info.web_info and info.web_info.method else None,
    }


def _schedule_expectation(function: Function) -> tuple | None:
    schedule = function.schedule
    if schedule is None:
        return None
    if schedule.kind == "cron":
        return ("cron", schedule.cron, schedule.timezone or "UTC")
    return ("period", schedule.period_s)


def _schedule_seen(schedule: str | None) -> tuple | None:
    """FunctionInfo.schedule is the schedule's repr: ``Cron('0 3 * * *', UTC)`` or ``Period(minutes=90)``."""
    if schedule is None:
        return None
    cron = re.fullmatch(r"Cron\((.*), (\S+)\)", schedule)
    if cron:
        return ("cron", ast.literal_eval(cron.group(1)), cron.group(2))
    units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    parts = re.findall(r"(\w+)=([0-9.]+)", schedule)
    return ("period", sum(units[unit] * float(amount) for unit, amount in parts))


def decorator_keywords(source: str, function_name: str) -> dict[str, Any]:
    """The literal keyword arguments of ``@app.function(...)`` above ``def function_name`` (or of
    ``@app.cls(...)`` above the class a class entry becomes); the decorators below it (``@modal.clustered``,
    ``@modal.concurrent``, web endpoints) are checked by their own tests."""
    for node in ast.parse(source).body:
        function = isinstance(node, ast.FunctionDef) and node.name == function_name
        if function or (isinstance(node, ast.ClassDef) and node.name == class_name(function_name)):
            decorator = node.decorator_list[0]
            return {k.arg: _maybe_literal(k.value) for k in decorator.keywords}
    raise AssertionError(f"no function {function_name} in the module")


def _maybe_literal(node: ast.AST) -> Any:
    """A literal's value, a product of literals' value (durations: ``24 * 60 * 60``), else the source."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _maybe_literal(node.left), _maybe_literal(node.right)
        if isinstance(left, int) and isinstance(right, int):
            return left * right
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.unparse(node)


def signature_defaults(source: str, function_name: str) -> dict[str, Any]:
    """``{parameter: default}`` of ``def function_name(...)`` in the module."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == function_name:
            names = [a.arg for a in node.args.args]
            return dict(zip(names, (ast.literal_eval(d) for d in node.args.defaults), strict=True))
    raise AssertionError(f"no function {function_name} in the module")


class Recorder:
    """Stands for a Modal function in a generated entrypoint's ACTIONS: records what ``.remote`` receives."""

    def __init__(self):
        self.calls: list[dict] = []

    def remote(self, **kwargs):
        self.calls.append(kwargs)
