"""Lint rules for a function's ``sweep:``: keys the target can take, trials worth running, somewhere to keep
what each trial writes.

A sweep multiplies a function's cost by its number of trials, so its mistakes are the expensive kind: a key
the config does not have (every trial trains the same model), a value the config rejects (every trial stops
at start), or run directories on a container's own disk (every trial's checkpoints and reports vanish when
its container stops). Each rule registers with :mod:`compiler.lint` like every other rule.

Positions point into the sweep mapping where the function (or the profile that replaced it) declares it:
``grid.KEY``, ``grid.KEY[i]``, ``trials[j].KEY``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from compiler.lint.configs import TRAINING_SCHEMA, training_config
from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import container_path, mount_at
from compiler.spec import sweep as sweeps
from compiler.spec.ir import Function, Image, JsonPath
from compiler.spec.targets import read_target, takes_var_keyword
from runtime.core.diagnostics import Diagnostic, did_you_mean

MANY_TRIALS = 100
TRAINING_TARGETS = frozenset({"runtime.train:main"})  # the bundled runtime: swept keys are config keys


def _base(fn: Function) -> JsonPath:
    return fn.origins.get("sweep", ("functions", fn.name))


def _at(ctx: LintContext, rule_id: str, fn: Function, where: JsonPath, message: str, **kw) -> Diagnostic:
    return ctx.at(rule_id, (*_base(fn), *where), f"function '{fn.name}': {message}", **kw)


def _keys(fn: Function) -> Iterator[tuple[str, JsonPath]]:
    """Every swept key with where it is declared (a grid key, or a key of one explicit trial)."""
    for key, _ in fn.sweep.grid:
        yield key, ("grid", key)
    for index, trial in enumerate(fn.sweep.trials):
        for key, _ in trial:
            yield key, ("trials", index, key)


def _values(fn: Function) -> Iterator[tuple[str, Any, JsonPath]]:
    for key, values in fn.sweep.grid:
        for index, value in enumerate(values):
            yield key, value, ("grid", key, index)
    for index, trial in enumerate(fn.sweep.trials):
        for key, value in trial:
            yield key, value, ("trials", index, key)


# ------------------------------------------------------------------------------------------------ rules


@rule(
    "sweep-empty",
    ERROR,
    "a sweep has at least one trial, and every grid key has at least one value",
    "add values to the grid key, or trials, or remove the sweep",
)
def _sweep_empty(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.sweep is None:
        return
    for key, values in fn.sweep.grid:
        if not values:
            yield _at(ctx, "sweep-empty", fn, ("grid", key), f"sweep grid key '{key}' has no values")
    if not fn.sweep.grid and not fn.sweep.trials:
        yield _at(ctx, "sweep-empty", fn, (), "the sweep has neither a grid nor trials", key=True)


@rule(
    "sweep-target",
    ERROR,
    "a sweeping function's target takes **overrides (each trial's run_name and config keys arrive there)",
    "add **overrides to the target and apply them to its config, as runtime.train:main does",
)
def _sweep_target(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.sweep is None or takes_var_keyword(fn.module, fn.entry, ctx.root) is not False:
        return
    message = (
        f"the sweep needs {fn.run} to take **overrides: every trial sets run_name there to get its own run "
        "directory"
    )
    yield _at(ctx, "sweep-target", fn, (), message, key=True)


@rule(
    "sweep-key",
    ERROR,
    "a swept key is one of the function's args, or else a key of the training config when the target is the "
    "bundled runtime (runtime.train:main) or takes a training config (checked against "
    "specs/schema/train.schema.json), or else a parameter of the target; and not run_name, which the sweep "
    "sets for each trial",
    "fix the key (dotted for config keys: optim.lr, model.d_model), or add the arg or the target's parameter",
)
def _sweep_key(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.sweep is None:
        return
    args = fn.arg_names
    takes = _accepted_keys(fn, ctx)
    for key, where in _keys(fn):
        if key == sweeps.RUN_NAME_KEY:
            problem = "is set by the sweep itself: each trial runs as NAME-tINDEX-values; set `sweep.name`"
        elif key == sweeps.OVERRIDES_PARAM:
            problem = "is the parameter that carries each trial's config keys; sweep the keys themselves"
        elif key in args or takes is None or key in takes.keys:
            continue
        else:
            problem = f"is neither an arg of '{fn.name}' ({', '.join(args) or 'none'}) nor {takes.what}" + (
                did_you_mean(key, [*args, *takes.keys]) or takes.listed
            )
        yield _at(ctx, "sweep-key", fn, where, f"swept key '{key}' {problem}", key=True)


@dataclass(frozen=True)
class AcceptedKeys:
    """What a sweep key that is not an arg must be: ``keys``, described as ``what`` in messages."""

    keys: tuple[str, ...]
    what: str
    listed: str = ""  # the keys, for a message without a did-you-mean


def _accepted_keys(fn: Function, ctx: LintContext) -> AcceptedKeys | None:
    """The training config's keys when the target is the bundled runtime or takes a training config; else
    the target's keyword parameters; None when the target's signature cannot be read (nothing to check)."""
    if fn.run in TRAINING_TARGETS or training_config(fn, ctx) is not None:
        return AcceptedKeys(_config_keys(), "a training config key")
    target = read_target(fn.module, fn.entry, ctx.root).target
    if target is None or target.parameters is None:
        return None
    named = tuple(p.name for p in target.parameters if p.keyword and p.name not in fn.arg_names)
    listed = f"; {fn.run} takes: {', '.join(named)}" if named else f"; {fn.run} takes no other parameter"
    return AcceptedKeys(named, f"a parameter of {fn.run}", listed)


def _config_schema() -> dict:
    return TRAINING_SCHEMA


@cache
def _config_keys() -> tuple[str, ...]:
    """Every dotted key of the training config schema, leaves and sections."""
    schema = _config_schema()
    out: list[str] = []

    def walk(node: dict, prefix: str) -> None:
        for name, child in _resolved(node, schema).get("properties", {}).items():
            out.append(prefix + name)
            walk(child, prefix + name + ".")

    walk(schema, "")
    return tuple(out)


@cache
def _config_validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(_config_schema())


def _config_key_known(key: str) -> bool:
    return key in _config_keys()


def _resolved(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/$defs/optim``) followed."""
    while "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


@rule(
    "sweep-value",
    ERROR,
    "every swept config value passes the training config schema (type, range, choices)",
    "fix the value at the position shown; the training config reference lists each key",
)
def _sweep_value(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    config = training_config(fn, ctx) if fn.sweep else None
    if config is None or config.doc is None:
        return
    for key, value, where in _values(fn):
        if key in fn.arg_names or not _config_key_known(key):
            continue
        problem = _override_problem(config.doc.data, key, value)
        if problem:
            message = f"{key}={json.dumps(value)} is rejected by the training config {config.arg}: {problem}"
            yield _at(ctx, "sweep-value", fn, where, message)


def _override_problem(data: dict, key: str, value: Any) -> str | None:
    changed = copy.deepcopy(data)
    node = changed
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    for error in _config_validator().iter_errors(changed):
        where = ".".join(str(p) for p in error.absolute_path)
        if where == key or where.startswith(key + "."):
            return error.message
    return None


@rule(
    "sweep-volume",
    ERROR,
    "a sweeping function mounts a writable Modal Volume, and its config's output_dir (and every swept "
    "output_dir) lies on it, '..' resolved",
    "mount a Modal Volume (not read-only) and point output_dir at it, e.g. volumes: {/results: results}",
)
def _sweep_volume(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.sweep is None:
        return
    volumes = ctx.app.volumes
    writable = [
        m.path
        for m in fn.mounts
        if m.volume in volumes and volumes[m.volume].kind == "volume" and not volumes[m.volume].read_only
    ]
    lost = (
        "each trial's checkpoints, metrics and report would be lost with its container, and a retried trial "
        "would start over"
    )
    if not writable:
        yield _at(ctx, "sweep-volume", fn, (), f"the sweep mounts no writable Modal Volume: {lost}", key=True)
        return
    image = ctx.image_of(fn)
    config = training_config(fn, ctx)
    declared = config.get("output_dir") if config and config.doc else None
    if isinstance(declared, str) and _off_volume(declared, fn, image, writable):
        problem = f"writes its runs to output_dir {_shown(declared, image)}, on no writable volume"
        message = f"the sweep {problem} ({', '.join(writable)}): {lost}"
        yield _at(ctx, "sweep-volume", fn, (), message, key=True)
    for key, value, where in _values(fn):
        if key == "output_dir" and isinstance(value, str) and _off_volume(value, fn, image, writable):
            message = (
                f"swept output_dir {_shown(value, image)} is on no writable volume ({', '.join(writable)}): "
                f"{lost}"
            )
            yield _at(ctx, "sweep-volume", fn, where, message)


def _off_volume(path: str, fn: Function, image: Image | None, writable: list[str]) -> bool:
    mount = mount_at(path, fn, image)
    return mount is None or mount.path not in writable


def _shown(path: str, image: Image | None) -> str:
    """``path``, followed by what it is in the container when that differs (``..`` or a relative path)."""
    resolved = container_path(path, image)
    return path if resolved == path else f"{path} (that is {resolved})"


@rule(
    "sweep-duplicate",
    WARNING,
    "no two trials of a sweep have the same values (they would train the same model twice)",
    "remove the repeated trial, or the grid value it repeats",
)
def _sweep_duplicate(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.sweep is None:
        return
    first: dict[str, int] = {}
    grid_size = len(sweeps.function_trials(fn)) - len(fn.sweep.trials)
    for trial in sweeps.function_trials(fn):
        identity = json.dumps(sorted(trial.values), default=list)
        if identity not in first:
            first[identity] = trial.index
            continue
        where = ("trials", trial.index - grid_size) if trial.index >= grid_size else ("grid",)
        message = f"trial {trial.index} ({trial.label()}) repeats trial {first[identity]}"
        yield _at(ctx, "sweep-duplicate", fn, where, message)


@rule(
    "sweep-size",
    WARNING,
    f"a sweep has at most {MANY_TRIALS} trials (each is a full run, billed separately)",
    "cut grid values, or silence the rule with the reason: lint: {ignore: {sweep-size: ...}}",
)
def _sweep_size(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    count = len(sweeps.function_trials(fn))
    if count > MANY_TRIALS:
        message = f"the sweep has {count} trials (over {MANY_TRIALS}); `mtc plan` shows what they may cost"
        yield _at(ctx, "sweep-size", fn, (), message, key=True)


@rule(
    "sweep-parallel",
    WARNING,
    "a sweep's max_parallel agrees with the function's max_containers (Modal runs at most max_containers)",
    "drop max_containers (the generated module sets it to max_parallel), or make them equal",
)
def _sweep_parallel(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    wanted = fn.sweep.max_parallel if fn.sweep else None
    ceiling = fn.max_containers
    if wanted is None or ceiling is None or wanted == ceiling:
        return
    effect = (
        f"only {ceiling} trials run at once" if wanted > ceiling else f"up to {ceiling} trials run at once"
    )
    message = f"sweep max_parallel {wanted} but max_containers {ceiling}: on Modal {effect}"
    yield _at(ctx, "sweep-parallel", fn, ("max_parallel",), message)
