"""The functions section of the generated module: each function's cost comment, decorator, signature and
body, as layout docs.

Function arguments become typed parameters (:func:`compiler.spec.pynames.parameter_type`): ``bool``,
``int``, ``float``, ``str``, ``list`` or ``dict``, ``| None`` when null is allowed, as the spec's ``type:``
or the target's annotation declares, else from the default's type. Required arguments come first and have no
default. A list or mapping default is set by the body (``if layers is None: layers = [64, 128]``, the usual
Python idiom): in the signature one object would be shared by every call. An ``async def`` target gets an
``async def`` function that awaits it. A function with a ``sweep`` gains ``overrides: dict | None = None``,
passed on as ``**overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compiler.codegen.clusters import clustered, environment_call
from compiler.codegen.layout import Entry, Group, call, value_doc
from compiler.codegen.literals import RenderError, duration, literal, number, optional
from compiler.platform.pricing import Prices, PricingError, hourly_cost, load_prices
from compiler.spec.argtypes import ArgType
from compiler.spec.ir import App, Function, Schedule, SecretRef
from compiler.spec.pynames import (
    ParameterType,
    image_variables,
    parameter_type,
    volume_variables,
    writable_volumes,
)
from compiler.spec.sweep import OVERRIDES_PARAM
from compiler.spec.targets import Target, keyword_parameters, read_target


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParameterType
    spread: bool = False  # keyword arguments passed on as **name (a sweep's overrides)

    @property
    def argument(self) -> str:
        """How the body passes the parameter to the target."""
        if self.spread:
            return f"**({self.name} or {{}})"
        return f"{self.name}={self.name}"

    @property
    def source(self) -> str:
        if self.type.required:
            return f"{self.name}: {self.type.annotation}"
        return f"{self.name}: {self.type.annotation} = {literal(self.type.signature_default)}"

    @property
    def option(self) -> str:
        """The local entrypoint's option: JSON text for a list or mapping, else the parameter's own type."""
        return "str" if self.type.is_json else self.type.base

    @property
    def entry_default(self) -> Any:
        """The value the entrypoint's ACTIONS table holds: the default; None for a required arg."""
        return None if self.type.required else self.type.default


def parameters(function: Function, target: Target | None = None) -> list[Parameter]:
    """The typed parameters of ``function``: required ones first, then the others, each in declared order
    (a sweep's ``overrides`` last)."""
    out = []
    for arg in function.args:
        found = parameter_type(arg, target)
        if found is None:  # the lint's render/argument-type reports it
            path = ("functions", function.name, "args", arg.name)
            raise RenderError(f"argument '{arg.name}' cannot be a parameter", path)
        out.append(Parameter(arg.name, found))
    out.sort(key=lambda parameter: not parameter.type.required)
    if function.sweep:
        out.append(Parameter(OVERRIDES_PARAM, ParameterType(ArgType("dict", optional=True)), spread=True))
    return out


@dataclass
class Model:
    """What every section reads: the app, its Python names, its targets and their typed parameters."""

    app: App
    prices: Prices | None
    root: Path

    def __post_init__(self) -> None:
        self.image_vars = image_variables(self.app)
        self.volume_vars = volume_variables(self.app)
        self.targets = {
            name: read_target(function.module, function.entry, self.root).target
            for name, function in self.app.functions.items()
        }
        self.params = {name: parameters(fn, self.targets[name]) for name, fn in self.app.functions.items()}

    def secrets(self, refs: tuple[SecretRef, ...]) -> Group | None:
        return Group("[", tuple(secret(ref) for ref in refs), "]") if refs else None


def secret(ref: SecretRef) -> Group:
    """``modal.Secret.from_name("NAME")``, with ``environment_name=`` for a secret of another environment."""
    return call("modal.Secret.from_name", literal(ref.name), environment_name=optional(ref.environment))


class FunctionSection:
    """One ``@app.function`` each: the pieces the template places for it."""

    def __init__(self, model: Model):
        self.model = model

    def function(self, function: Function) -> dict[str, Any]:
        params = self.model.params[function.name]
        target_info = self.model.targets[function.name]
        asynchronous = target_info is not None and target_info.is_async
        target = _call_name(function.entry, {p.name for p in params})
        imported = function.entry if target == function.entry else f"{function.entry} as {target}"
        arguments = [p.argument for p in params if not p.spread]
        commit = self.checkpoint_commit(function)
        if commit:
            arguments.append(f"on_checkpoint={commit}")
        arguments += [p.argument for p in params if p.spread]  # ** last, as a person would write it
        return {
            "name": function.name,
            "cost": self.cost_comment(function),
            "note": parallel_note(function),
            "decorator": self.decorator(function),
            "clustered": clustered(function),
            "cluster_env": environment_call(function),
            "signature": Group(
                f"{'async ' if asynchronous else ''}def {function.name}(",
                tuple(p.source for p in params),
                ")",
            ),
            "import": f"from {function.module} import {imported}",
            "fills": [
                {"name": p.name, "value": Entry(f"{p.name} = ", value_doc(p.type.default))}
                for p in params
                if p.type.fills_default
            ],
            "call": Entry(
                "return await " if asynchronous else "return ", Group(f"{target}(", tuple(arguments), ")")
            ),
        }

    def checkpoint_commit(self, function: Function) -> str | None:
        """What commits the function's writable Modal volumes, when its target takes ``on_checkpoint``.

        Modal only persists a volume's writes on commit; a preempted run must find its last checkpoint.
        """
        writable = [self.model.volume_vars[name] for name in writable_volumes(self.model.app, function)]
        accepted = keyword_parameters(function.module, function.entry, self.model.root)
        if not writable or accepted is None or "on_checkpoint" not in accepted:
            return None
        if len(writable) == 1:
            return f"{writable[0]}.commit"
        return f"lambda: [volume.commit() for volume in ({', '.join(writable)})]"

    def decorator(self, function: Function, name: str = "@app.function") -> Group:
        """``@app.function(...)`` with the function's settings (``@app.cls(...)`` for a class: the same)."""
        resources = function.resources
        gpus = [literal(gpu.modal_string()) for gpu in resources.gpus]
        mounts = tuple(Entry(f"{literal(m.path)}: ", self.mounted(m.volume)) for m in function.mounts)
        return call(
            name,
            image=self.model.image_vars.get(function.image) if function.image else None,
            gpu=(gpus[0] if len(gpus) == 1 else Group("[", tuple(gpus), "]")) if gpus else None,
            cpu=optional(number(resources.cpu)),
            memory=optional(resources.memory_mib),
            ephemeral_disk=optional(resources.ephemeral_disk_mib),
            timeout=duration(resources.timeout_s),
            startup_timeout=duration(function.startup_timeout_s),
            retries=retries(function),
            volumes=Group("{", mounts, "}") if mounts else None,
            secrets=self.model.secrets(function.secrets),
            env=value_doc(dict(function.env)) if function.env else None,
            region=_region(function.region),
            cloud=optional(function.cloud),
            nonpreemptible=literal(True) if function.nonpreemptible else None,
            min_containers=optional(function.min_containers),
            max_containers=optional(max_containers(function)),
            scaledown_window=duration(function.scaledown_window_s),
            single_use_containers=literal(True) if function.single_use_containers else None,
            block_network=literal(True) if function.block_network else None,
            schedule=_schedule(function.schedule) if function.schedule else None,
        )

    def mounted(self, name: str) -> str:
        """How a function mounts a volume: a Modal Volume declared read-only gets .read_only()."""
        volume = self.model.app.volumes[name]
        read_only = volume.kind == "volume" and volume.read_only
        variable = self.model.volume_vars[name]
        return f"{variable}.read_only()" if read_only else variable

    def cost_comment(self, function: Function) -> str:
        try:
            cost = hourly_cost(function.resources, self.model.prices)
        except PricingError:
            return "Estimated cost: unknown (no price for this GPU type)"
        gpu = function.resources.gpu
        priced_as = (self.model.prices or load_prices()).priced_as(gpu.type) if gpu else None
        as_note = f" as {priced_as}" if gpu and priced_as != gpu.type else ""
        parts = [f"GPU{as_note} ${cost.gpu:.2f}"] if gpu else []
        parts += [f"CPU ${cost.cpu:.2f}", f"memory ${cost.memory:.2f}"]
        if function.cluster:
            nodes = function.nodes
            return (
                f"Estimated cost: ${cost.total * nodes:.2f}/hour for {nodes} containers "
                f"(each ${cost.total:.2f}: {' + '.join(parts)})"
            )
        return f"Estimated cost: ${cost.total:.2f}/hour ({' + '.join(parts)})"


def max_containers(function: Function) -> int | None:
    """The spec's max_containers, else the sweep's max_parallel (times the cluster's size: Modal counts
    containers): Modal runs that many trials at once."""
    if function.max_containers is not None or function.sweep is None or function.sweep.max_parallel is None:
        return function.max_containers
    return function.sweep.max_parallel * function.nodes


def parallel_note(function: Function) -> str | None:
    parallel = function.sweep.max_parallel if function.sweep else None
    if function.max_containers is None and parallel:
        per_trial = f" x {function.nodes} containers per trial" if function.cluster else ""
        return f"max_containers is the sweep's max_parallel{per_trial}: at most {parallel} trials at once"
    return None


def retries(function: Function) -> Any:
    spec = function.retries
    if spec is None:
        return None
    if spec.is_simple:
        return literal(spec.max_retries)
    return call(
        "modal.Retries",
        max_retries=literal(spec.max_retries),
        backoff_coefficient=optional(number(spec.backoff_coefficient)),
        initial_delay=optional(number(spec.initial_delay)),
        max_delay=optional(number(spec.max_delay)),
    )


def _region(region: tuple[str, ...]) -> Any:
    if not region:
        return None
    return literal(region[0]) if len(region) == 1 else value_doc(region)


def _schedule(schedule: Schedule) -> Group:
    if schedule.kind == "cron":
        return call("modal.Cron", literal(schedule.cron), timezone=optional(schedule.timezone))
    # in the units the spec wrote (Modal's days=1 and hours=24 differ across a daylight saving change)
    return call("modal.Period", **{unit: literal(amount) for unit, amount in schedule.period})


def _call_name(entry: str, params: set[str]) -> str:
    """The name the body calls the target by: the entry's own name unless a parameter shadows it."""
    name = entry
    while name in params:
        name += "_"
    return name
