"""What changes between two resolved apps: fields added, removed or changed, and the cost deltas.

Each function, image and volume is flattened into ``key -> value`` pairs (``train.cpu``,
``train.args.config``, ``train.volumes[/data]``, ``images.cuda.steps[3]``, ...) and the two sides are
compared key by key, so a reviewer reads ``train.memory 32768 → 131072 MiB`` next to the function's $/hour
and worst-case deltas. A function that only one side has is reported once, as added or removed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from compiler.platform.pricing import Prices
from compiler.review.plan import PlanRow, plan_row
from compiler.review.tables import money
from compiler.spec.ir import App, Arg, Function, Image, ImageStep, PipInstall, Retries, Schedule, Volume
from compiler.spec.sweep import function_trials

UNITS = {
    "memory": "MiB",
    "ephemeral_disk": "MiB",
    "timeout": "s",
    "startup_timeout": "s",
    "scaledown_window": "s",
}
ARROW = "→"


@dataclass(frozen=True)
class Change:
    kind: str  # "added" | "removed" | "changed"
    key: str  # e.g. "train.cpu", "functions.evaluate", "images.cuda.steps[2]"
    old: str | None
    new: str | None
    unit: str = ""

    def format(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "added":
            return f"+ {self.key}: {self.new}{unit}"
        if self.kind == "removed":
            return f"- {self.key}: {self.old}{unit}"
        return f"~ {self.key}: {self.old} {ARROW} {self.new}{unit}"


@dataclass(frozen=True)
class CostChange:
    function: str
    old_hourly_usd: float | None  # None: the function is not on that side
    new_hourly_usd: float | None
    old_worst_case_usd: float | None
    new_worst_case_usd: float | None

    def format(self) -> str:
        return (
            f"  {self.function}: $/hour {_money_change(self.old_hourly_usd, self.new_hourly_usd)}; "
            f"worst case $ {_money_change(self.old_worst_case_usd, self.new_worst_case_usd)}"
        )


@dataclass(frozen=True)
class SpecDiff:
    old: str
    new: str
    changes: list[Change]
    costs: list[CostChange]

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def diff_apps(old: App, new: App, prices: Prices) -> SpecDiff:
    changes = _compare("app", _app_fields(old), _app_fields(new))
    for section, old_items, new_items, fields in (
        ("images", old.images, new.images, _image_fields),
        ("volumes", old.volumes, new.volumes, _volume_fields),
    ):
        changes += _compare_named(section, old_items, new_items, fields)
    changes += _compare_functions(old.functions, new.functions)
    return SpecDiff(old.spec_path, new.spec_path, changes, _cost_changes(old, new, changes, prices))


def _compare_named(section: str, old: dict, new: dict, fields: Any) -> list[Change]:
    out: list[Change] = []
    for name in _union(old, new):
        out += _compare(
            f"{section}.{name}",
            fields(old[name]) if name in old else {},
            fields(new[name]) if name in new else {},
        )
    return out


def _compare_functions(old: dict[str, Function], new: dict[str, Function]) -> list[Change]:
    out: list[Change] = []
    for name in _union(old, new):
        if name not in old:
            out.append(Change("added", f"functions.{name}", None, _summary(new[name])))
        elif name not in new:
            out.append(Change("removed", f"functions.{name}", _summary(old[name]), None))
        else:
            out += _compare(name, _function_fields(old[name]), _function_fields(new[name]))
    return out


def _compare(prefix: str, old: dict[str, str], new: dict[str, str]) -> list[Change]:
    out = []
    for key in _union(old, new):
        unit = UNITS.get(key, "")
        if key not in old:
            out.append(Change("added", f"{prefix}.{key}", None, new[key], unit))
        elif key not in new:
            out.append(Change("removed", f"{prefix}.{key}", old[key], None, unit))
        elif old[key] != new[key]:
            out.append(Change("changed", f"{prefix}.{key}", old[key], new[key], unit))
    return out


def _union(old: dict, new: dict) -> list[str]:
    """Keys of both sides: the old order first, then what only the new side has."""
    return [*old, *(key for key in new if key not in old)]


def _cost_changes(old: App, new: App, changes: list[Change], prices: Prices) -> list[CostChange]:
    """Costs of every function that changed, was added or was removed."""
    touched = {
        c.key.split(".")[1] if c.key.startswith("functions.") else c.key.split(".")[0] for c in changes
    }
    out = []
    for name in _union(old.functions, new.functions):
        if name not in touched:
            continue
        before = plan_row(old.functions[name], prices) if name in old.functions else None
        after = plan_row(new.functions[name], prices) if name in new.functions else None
        out.append(CostChange(name, _hourly(before), _hourly(after), _worst(before), _worst(after)))
    return out


def _hourly(row: PlanRow | None) -> float | None:
    return row.hourly_usd if row else None


def _worst(row: PlanRow | None) -> float | None:
    return row.worst_case_usd if row else None


def _money_change(old: float | None, new: float | None) -> str:
    if old is None:
        return f"{money(new)} (new)"
    if new is None:
        return f"{money(old)} (removed)"
    sign = "+" if new >= old else "-"
    return f"{money(old)} {ARROW} {money(new)} ({sign}{money(abs(new - old))})"


# ------------------------------------------------------------------------------------------------ flattening


def _function_fields(fn: Function) -> dict[str, str]:
    resources = fn.resources
    fields: dict[str, Any] = {
        "run": fn.run,
        "image": fn.image,
        "gpu": " or ".join(g.modal_string() for g in resources.gpus) or None,
        "cpu": _number(resources.cpu),
        "memory": resources.memory_mib,
        "timeout": resources.timeout_s,
        "startup_timeout": fn.startup_timeout_s,
        "ephemeral_disk": resources.ephemeral_disk_mib,
        "retries": _retries(fn.retries),
        "secrets": ", ".join(map(str, fn.secrets)) or None,
        "region": ", ".join(fn.region) or None,
        "cloud": fn.cloud,
        "nonpreemptible": fn.nonpreemptible or None,
        "min_containers": fn.min_containers,
        "max_containers": fn.max_containers,
        "scaledown_window": fn.scaledown_window_s,
        "single_use_containers": fn.single_use_containers or None,
        "block_network": fn.block_network or None,
        "cluster.size": fn.cluster.size if fn.cluster else None,
        "cluster.rdma": fn.cluster.rdma if fn.cluster else None,
        "schedule": _schedule(fn.schedule),
    }
    fields.update({f"args.{arg.name}": _arg(arg) for arg in fn.args})
    fields.update({f"volumes[{mount.path}]": mount.volume for mount in fn.mounts})
    fields.update({f"env.{name}": value for name, value in fn.env})
    fields.update(_sweep_fields(fn))
    fields.update(_serving_fields(fn))
    return {key: str(value) for key, value in fields.items() if value is not None}


def _serving_fields(fn: Function) -> dict[str, Any]:
    """A class's methods (``method`` or its web endpoint), a function's web endpoint, its concurrency."""
    fields: dict[str, Any] = {
        f"methods.{m.name}": m.web.describe() if m.web else "method" for m in fn.methods
    }
    fields["web"] = fn.web.describe() if fn.web else None
    if fn.concurrency is not None:
        fields["concurrency.max_inputs"] = fn.concurrency.max_inputs
        fields["concurrency.target_inputs"] = fn.concurrency.target_inputs
    return fields


def _arg(arg: Arg) -> str:
    """``1000``, ``[64, 128]``, ``null``; ``required (str)``; a declared type after the default: ``null (int |
    None)``."""
    if arg.required:
        return f"required ({arg.declared})"
    shown = json.dumps(arg.default, ensure_ascii=False)
    return f"{shown} ({arg.declared})" if arg.declared else shown


def _sweep_fields(fn: Function) -> dict[str, Any]:
    """The sweep's size and bounds, then its grid and explicit trials value by value."""
    if fn.sweep is None:
        return {}
    fields: dict[str, Any] = {
        "sweep.trials": len(function_trials(fn)),
        "sweep.max_parallel": fn.sweep.max_parallel,
        "sweep.name": fn.sweep.name,
    }
    fields.update({f"sweep.grid.{key}": json.dumps(list(values)) for key, values in fn.sweep.grid})
    fields.update({f"sweep.trials[{i}]": json.dumps(dict(trial)) for i, trial in enumerate(fn.sweep.trials)})
    return fields


def _summary(fn: Function) -> str:
    fields = _function_fields(fn)
    shown = ("run", "gpu", "cpu", "memory", "timeout", "retries")
    return ", ".join(
        f"{key} {fields[key]}{' ' + UNITS[key] if key in UNITS else ''}" for key in shown if key in fields
    )


def _app_fields(app: App) -> dict[str, str]:
    secrets = ", ".join(map(str, app.secrets))
    return {key: value for key, value in (("name", app.name), ("secrets", secrets)) if value}


def _image_fields(image: Image) -> dict[str, str]:
    fields = {
        "from": image.base or None,
        "base": image.parent,
        "from_dockerfile": image.dockerfile,
        "context_dir": image.context_dir,
        "python": image.python,
    }
    fields.update({f"steps[{i}]": f"{step.kind} {_step_value(step)}" for i, step in enumerate(image.steps)})
    fields.update({f"add_local.python[{i}]": name for i, name in enumerate(image.local_python)})
    fields.update({f"add_local.dirs[{local}]": remote for local, remote in image.local_dirs})
    fields.update({f"add_local.files[{local}]": remote for local, remote in image.local_files})
    return {key: str(value) for key, value in fields.items() if value is not None}


def _step_value(step: ImageStep) -> str:
    """A step's value as JSON: a pip step's requirements, then the options it sets."""
    if isinstance(step.value, PipInstall):
        packages, options = list(step.value.packages), step.value.options
        return json.dumps({"packages": packages, **options} if options else packages)
    return json.dumps(step.value)


def _volume_fields(volume: Volume) -> dict[str, str]:
    fields = {key: value for key, value in asdict(volume).items() if key not in ("name", "secret")}
    fields["secret"] = volume.secret
    return {key: str(value) for key, value in fields.items() if value not in (None, False)}


def _number(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _retries(retries: Retries | None) -> str | None:
    if retries is None:
        return None
    if retries.is_simple:
        return str(retries.max_retries)
    details = [
        f"{label} {value:g}"
        for label, value in (
            ("backoff", retries.backoff_coefficient),
            ("initial_delay", retries.initial_delay),
            ("max_delay", retries.max_delay),
        )
        if value is not None
    ]
    return f"{retries.max_retries} ({', '.join(details)})"


def _schedule(schedule: Schedule | None) -> str | None:
    if schedule is None:
        return None
    if schedule.kind == "cron":
        return f"cron {schedule.cron}" + (f" ({schedule.timezone})" if schedule.timezone else "")
    return "period " + ", ".join(f"{unit}={amount}" for unit, amount in schedule.period)  # as modal.Period


# ------------------------------------------------------------------------------------------------ output


def format_text(result: SpecDiff) -> str:
    if not result.changed:
        return f"no changes between {result.old} and {result.new}\n"
    lines = [f"{result.old} {ARROW} {result.new}", *(change.format() for change in result.changes)]
    if result.costs:
        lines += ["cost per function:", *(cost.format() for cost in result.costs)]
    return "\n".join(lines) + "\n"


def format_json(result: SpecDiff) -> str:
    payload = {
        "old": result.old,
        "new": result.new,
        "changed": result.changed,
        "changes": [asdict(change) for change in result.changes],
        "costs": [asdict(cost) for cost in result.costs],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
