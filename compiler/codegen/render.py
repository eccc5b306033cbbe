"""Render the resolved model (``compiler.spec.ir.App``) into the source of a plain Modal module.

Safety: every value that comes from the spec reaches the output through :func:`literal`, which writes a
Python literal (``repr``-based, double-quoted as ruff formats it), so quotes, backslashes, newlines,
``{{ }}``, ``\"\"\"`` and any Unicode in a spec stay data. Names that become Python identifiers
(functions, arguments, the ``run`` target) are checked here; image and volume keys are turned into
identifiers, never pasted.

Layout: the output must already be what ``ruff format`` produces (line length 88 or more), without running
ruff. Expressions are built as small trees (:class:`Group`, :class:`Chain`) and laid out the way ruff does: on
one line when it fits in 88 columns, otherwise one item per line with a trailing comma (the "magic trailing
comma" that keeps ruff from joining them again), and image chains in ruff's fluent style. A line that
is still too long holds a long spec value; the module then says ``# ruff: noqa: E501``.

Function arguments become typed parameters: ``bool``, ``int``, ``float`` or ``str``, as the target's
annotation declares (read from its source by :mod:`compiler.spec.targets`) when the default fits it, else
from the
default's type. A list (or dict) becomes a ``str`` parameter holding JSON (``'["a", "b"]'``) that the body
decodes with ``json.loads``, because Modal's CLI options only take scalars and a list default would be
mutable. An ``async def`` target gets an ``async def`` function that awaits it. Local folders of the spec
(``add_local.dirs``) are relative to the spec's folder, which the module computes from its own location
(``SPEC_DIR``), so ``modal run`` works from any folder.

A function with a ``sweep`` gains ``overrides: str = "{}"``, JSON the body passes on as ``**overrides``; the
module lists its trials (``SWEEPS``, expanded by :mod:`compiler.spec.sweep`) and the entrypoint's ``--sweep``
fans them out with ``.starmap()``. ``max_parallel`` becomes the function's ``max_containers`` unless the spec
sets one.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compiler.platform.pricing import Prices, PricingError, hourly_cost, load_prices
from compiler.spec import argtypes
from compiler.spec.argtypes import ArgType
from compiler.spec.ir import App, Function, Image, JsonPath, Schedule, Volume
from compiler.spec.sweep import OVERRIDES_PARAM, function_trials
from compiler.spec.targets import Target, keyword_parameters, read_target

WIDTH = 88  # ruff's default; output laid out for 88 is also stable under any larger line-length
INDENT = 4
TEMPLATE = "app.py.j2"
GENERATED_DIR = "generated"  # where `mtc compile` writes the module, relative to the current folder

# Names the generated module defines or uses at module level (and the entrypoint reads besides its
# parameters): no function or argument may take one of them.
MODULE_NAMES = frozenset(
    {
        "modal",
        "json",
        "Path",
        "SPEC_DIR",
        "JSON_OPTIONS",
        "app",
        "main",
        "ACTIONS",
        "SWEEPS",
        "run_sweep",
        "outcome",
        "print",
        "SystemExit",
        "ValueError",
    }
)
ENTRYPOINT_FLAGS = frozenset({"action", "sweep"})  # the entrypoint's own parameters besides the options


class RenderError(Exception):
    """The spec passed the lint but cannot be written as a module; ``path`` points into the spec."""

    def __init__(self, message: str, path: JsonPath = (), rule: str = "render/invalid"):
        super().__init__(message)
        self.message = message
        self.path = path
        self.rule = rule


# ----------------------------------------------------------------------------------------- literals


def literal(value: Any) -> str:
    """The Python source of ``value``: the one way a spec value becomes code."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"{value!r} cannot be written as a Python literal; use a finite number")
        return repr(float(value))
    if isinstance(value, str):
        return _string_literal(value)
    return flat(value_doc(value))


def _string_literal(text: str) -> str:
    # ruff's preference: double quotes, unless single quotes need fewer escapes.
    quote = "'" if text.count('"') > text.count("'") else '"'
    body = "".join("\\" + char if char == quote else _escape(char) for char in text)
    return quote + body + quote


@cache
def _escape(char: str) -> str:
    return repr(char)[1:-1]  # the character as repr escapes it (\n, \\, \x00, \u2028, ...) without quotes


def identifier(name: str, path: JsonPath, what: str) -> str:
    """``name`` when it can be a Python name; RenderError otherwise."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise RenderError(f"{what} {literal(name)} is not a Python identifier", path, "render/identifier")
    return name


def variable_name(key: str, suffix: str) -> str:
    """A module-level variable for the image or volume ``key``: ``cuda`` -> ``cuda_image``."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", key)
    return f"{base}_{suffix}" if base[:1].isalpha() or base[:1] == "_" else f"{suffix}_{base}"


# ------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Group:
    """``open item, item close``; broken as one item per line with a trailing comma when too long."""

    open: str
    items: tuple[Any, ...]  # str | Group | Chain | Entry
    close: str


@dataclass(frozen=True)
class Entry:
    """A prefix glued to a value: ``gpu=`` + ``"A100"``, ``"KEY": `` + ``"value"``, ``return `` + call."""

    prefix: str
    value: Any


@dataclass(frozen=True)
class Chain:
    """``head.call(...).call(...)``: ruff's fluent style, one ``.call`` per line, when it does not fit."""

    head: Any
    calls: tuple[Group, ...]


def flat(doc: Any) -> str:
    if isinstance(doc, str):
        return doc
    if isinstance(doc, Entry):
        return doc.prefix + flat(doc.value)
    if isinstance(doc, Chain):
        return flat(doc.head) + "".join(flat(call) for call in doc.calls)
    return doc.open + ", ".join(flat(item) for item in doc.items) + doc.close


def layout(doc: Any, indent: int = 0, column: int | None = None, tail: int = 0) -> str:
    """``doc`` as source from ``column`` on a line indented by ``indent``, followed by ``tail`` chars."""
    column = indent if column is None else column
    text = flat(doc)
    if isinstance(doc, str) or column + len(text) + tail <= WIDTH:
        return text
    if isinstance(doc, Entry):
        return doc.prefix + layout(doc.value, indent, column + len(doc.prefix), tail)
    inner = " " * (indent + INDENT)
    if isinstance(doc, Chain):
        if not doc.calls:
            return layout(doc.head, indent, column, tail)
        lines = [layout(part, indent + INDENT) for part in (doc.head, *doc.calls)]
        return "(\n" + "".join(f"{inner}{line}\n" for line in lines) + " " * indent + ")"
    if not doc.items:
        return text
    lines = [layout(item, indent + INDENT, tail=1) for item in doc.items]
    return doc.open + "\n" + "".join(f"{inner}{line},\n" for line in lines) + " " * indent + doc.close


def call(callee: str, *args: Any, **kwargs: Any) -> Group:
    """A call whose keyword values are docs; ``None`` keyword values are left out."""
    items = (*args, *(Entry(f"{name}=", value) for name, value in kwargs.items() if value is not None))
    return Group(f"{callee}(", items, ")")


def value_doc(value: Any) -> Any:
    """A spec value (scalar, list or mapping) as a doc of literals."""
    if isinstance(value, list | tuple):
        return Group("[", tuple(value_doc(item) for item in value), "]")
    if isinstance(value, dict):
        return Group("{", tuple(Entry(f"{literal(k)}: ", value_doc(v)) for k, v in value.items()), "}")
    if value is None or isinstance(value, bool | int | float | str):
        return literal(value)
    raise RenderError(f"a value of type {type(value).__name__} cannot be written into the module")


# --------------------------------------------------------------------------------------- the module


@dataclass(frozen=True)
class Parameter:
    name: str
    annotation: str  # "bool" | "int" | "float" | "str"
    default: Any  # as passed to the function: a list default is already its JSON text
    is_json: bool
    spread: bool = False  # JSON of keyword arguments, passed on as **name (a sweep's overrides)

    @property
    def argument(self) -> str:
        """How the body passes the parameter to the target."""
        if self.spread:
            return f"**json.loads({self.name})"
        return f"{self.name}=json.loads({self.name})" if self.is_json else f"{self.name}={self.name}"

    @property
    def source(self) -> str:
        return f"{self.name}: {self.annotation} = {literal(self.default)}"

    @property
    def kind(self) -> str:
        """What the option takes on the command line: its annotation, or JSON text."""
        return "JSON text" if self.is_json or self.spread else self.annotation


def parameters(function: Function, target: Target | None = None) -> list[Parameter]:
    """The typed parameters of ``function`` in declared order: each typed by the target's annotation when
    ``target`` (read from source) declares one the default fits, else by the ``args`` default's type."""
    out = []
    for name, default in function.args:
        path = ("functions", function.name, "args", name)
        identifier(name, path, f"argument of function '{function.name}'")
        reserved = MODULE_NAMES | ENTRYPOINT_FLAGS | ({OVERRIDES_PARAM} if function.sweep else set())
        if name in reserved:
            message = f"argument name '{name}' is used by the generated module; rename the argument"
            raise RenderError(message, path, "render/reserved-name")
        out.append(_parameter(name, default, path, _declared(target, name, default)))
    if function.sweep:
        out.append(Parameter(OVERRIDES_PARAM, "str", "{}", is_json=False, spread=True))
    return out


def _declared(target: Target | None, name: str, default: Any) -> tuple[ArgType, Any] | None:
    """The target's declared type for ``name`` and the default as that type, when the default fits it."""
    declared = (
        argtypes.from_annotation(target.parameter(name).annotation)
        if target and target.parameter(name)
        else None
    )
    if declared is None:
        return None
    try:
        return declared, argtypes.convert(list(default) if isinstance(default, tuple) else default, declared)
    except argtypes.ArgTypeError:
        return None  # the lint reports the mismatch; the default's own type keeps the module valid


def _parameter(
    name: str, default: Any, path: JsonPath, declared: tuple[ArgType, Any] | None = None
) -> Parameter:
    if declared is not None:
        kind, value = declared
        if kind.is_json:
            return Parameter(name, "str", json.dumps(value, ensure_ascii=False), True)
        return Parameter(name, "str" if kind.kind == "path" else kind.kind, value, False)
    if isinstance(default, list | tuple):
        return Parameter(name, "str", json.dumps(list(default), ensure_ascii=False), True)
    for kind in (bool, int, float, str):  # bool first: a bool is also an int
        if isinstance(default, kind):
            if kind is float and not math.isfinite(default):
                raise RenderError(f"argument '{name}': {default!r} is not a finite number", path)
            return Parameter(name, kind.__name__, default, False)
    message = f"argument '{name}': a default of type {type(default).__name__} is not supported"
    raise RenderError(message, path, "render/argument-type")


def render(
    app: App, *, prices: Prices | None = None, root: Path | None = None, module_dir: Path | None = None
) -> str:
    """The generated module's source for ``app``; RenderError when a name cannot be written.

    ``root`` is the folder the `run` targets are looked up from (default: the spec's folder, then its parents
    up to the project root). ``module_dir`` is the folder the module will be written to (default:
    ``generated/`` in the current folder): the module finds the spec's local paths from its own location.
    """
    context = _Context(app, prices or load_prices(), root or app.spec_dir)
    variables = context.variables(module_dir or Path.cwd() / GENERATED_DIR)
    text = _template().render(**variables, long_lines=False)
    if any(len(line) > WIDTH for line in text.splitlines()):
        # Only a long value (a string no formatter can split) makes a line this long; say it is intended.
        text = _template().render(**variables, long_lines=True)
    return text


def check_names(app: App) -> None:
    """Raise RenderError for what :func:`render` would refuse, without loading Jinja2 (for ``mtc lint``)."""
    _Context(app, prices=None, root=app.spec_dir)


def template_environment(**filters: Callable[..., str]) -> Any:
    """A Jinja2 environment over the packaged templates (strict, no escaping: the output is code or YAML,
    and every value reaches it through one of ``filters``)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("compiler.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(filters)
    return environment


@cache
def _template() -> Any:
    return template_environment(lit=literal, code=layout).get_template(TEMPLATE)


class _Context:
    """Turns the model into the pieces the template places: header lines, docs and names."""

    def __init__(self, app: App, prices: Prices | None, root: Path):
        self.app = app
        self.prices = prices
        self.root = root
        self.image_vars = {name: variable_name(name, "image") for name in app.images}
        self.volume_vars = {
            name: variable_name(name, "bucket" if volume.kind == "bucket" else "volume")
            for name, volume in app.volumes.items()
        }
        self.targets = {
            name: read_target(function.module, function.entry, root).target
            for name, function in app.functions.items()
        }
        self.params = {
            name: parameters(function, self.targets[name]) for name, function in app.functions.items()
        }
        self._check_names()

    def variables(self, module_dir: Path) -> dict[str, Any]:
        app = self.app
        uses_json = any(p.is_json or p.spread for params in self.params.values() for p in params)
        return {
            "header": self.header(),
            "uses_json": uses_json,
            "spec_dir": _spec_dir_doc(app.spec_dir, module_dir) if self.relative_dirs() else None,
            "app_doc": Entry(
                "app = ", call("modal.App", literal(app.name), secrets=self.secrets(app.secrets))
            ),
            "images": [Entry(f"{self.image_vars[n]} = ", self.image_chain(i)) for n, i in app.images.items()],
            "volumes": [Entry(f"{self.volume_vars[n]} = ", self.volume(v)) for n, v in app.volumes.items()],
            "functions": [self.function(function) for function in app.functions.values()],
            "entrypoint": self.entrypoint(),
            "sweeps": self.sweeps(),
        }

    # ---- header

    def header(self) -> dict[str, Any]:
        app = self.app
        command = ["mtc", "compile", app.spec_path] + (["--profile", app.profile] if app.profile else [])
        return {
            "spec_path": app.spec_path,
            "profile": app.profile,
            "command": _shell_line(command),
            "sha256": app.spec_sha256,
        }

    # ---- images and volumes

    def image_chain(self, image: Image) -> Chain:
        if image.is_debian_slim:
            head = call("modal.Image.debian_slim", python_version=_opt(image.python))
        else:
            head = call("modal.Image.from_registry", literal(image.base), add_python=_opt(image.python))
        steps = [self.step(image, index, step.kind, step.value) for index, step in enumerate(image.steps)]
        if image.local_python:
            steps.append(call(".add_local_python_source", *(literal(m) for m in image.local_python)))
        steps += [
            call(".add_local_dir", self.local_dir(local), literal(remote))
            for local, remote in image.local_dirs
        ]
        return Chain(head, tuple(steps))

    def relative_dirs(self) -> bool:
        """Whether an image ships a folder given relative to the spec (the module then needs SPEC_DIR)."""
        return any(
            not posixpath.isabs(local) for image in self.app.images.values() for local, _ in image.local_dirs
        )

    def local_dir(self, local: str) -> str:
        """A local folder as the module computes it: ``SPEC_DIR / "data"``; an absolute path as written."""
        if posixpath.isabs(local):
            return literal(local)
        return _below("SPEC_DIR", posixpath.normpath(local))

    def step(self, image: Image, index: int, kind: str, value: Any) -> Group:
        method = {
            "entrypoint": "entrypoint",
            "apt": "apt_install",
            "env": "env",
            "pip": "pip_install",
            "run": "run_commands",
            "workdir": "workdir",
        }.get(kind)
        if method is None:
            raise RenderError(f"unknown build step '{kind}'", ("images", image.name, "steps", index))
        if kind in ("entrypoint", "env"):
            return call(f".{method}", value_doc(_as_list(value) if kind == "entrypoint" else dict(value)))
        if kind == "workdir":
            return call(f".{method}", literal(value))
        return call(f".{method}", *(literal(item) for item in _as_list(value)))

    def volume(self, volume: Volume) -> Group:
        if volume.kind == "bucket":
            return call(
                "modal.CloudBucketMount",
                literal(volume.bucket),
                bucket_endpoint_url=_opt(volume.bucket_endpoint_url),
                key_prefix=_opt(volume.key_prefix),
                secret=self.secret(volume.secret) if volume.secret else None,
                read_only=literal(True) if volume.read_only else None,
            )
        return call("modal.Volume.from_name", literal(volume.volume), create_if_missing=literal(True))

    def secret(self, name: str) -> Group:
        return call("modal.Secret.from_name", literal(name))

    def secrets(self, names: tuple[str, ...]) -> Group | None:
        return Group("[", tuple(self.secret(name) for name in names), "]") if names else None

    # ---- functions

    def function(self, function: Function) -> dict[str, Any]:
        params = self.params[function.name]
        target_info = self.targets[function.name]
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
            "note": self.parallel_note(function),
            "decorator": self.decorator(function),
            "signature": Group(
                f"{'async ' if asynchronous else ''}def {function.name}(",
                tuple(p.source for p in params),
                ")",
            ),
            "import": f"from {function.module} import {imported}",
            "call": Entry(
                "return await " if asynchronous else "return ", Group(f"{target}(", tuple(arguments), ")")
            ),
        }

    def checkpoint_commit(self, function: Function) -> str | None:
        """What commits the function's writable Modal volumes, when its target takes ``on_checkpoint``.

        Modal only persists a volume's writes on commit; a preempted run must find its last checkpoint.
        """
        writable = [self.volume_vars[name] for name in writable_volumes(self.app, function)]
        accepted = keyword_parameters(function.module, function.entry, self.root)
        if not writable or accepted is None or "on_checkpoint" not in accepted:
            return None
        if len(writable) == 1:
            return f"{writable[0]}.commit"
        return f"lambda: [volume.commit() for volume in ({', '.join(writable)})]"

    def decorator(self, function: Function) -> Group:
        resources = function.resources
        gpus = [literal(gpu.modal_string()) for gpu in resources.gpus]
        mounts = tuple(Entry(f"{literal(m.path)}: ", self.mounted(m.volume)) for m in function.mounts)
        return call(
            "@app.function",
            image=self.image_vars.get(function.image) if function.image else None,
            gpu=(gpus[0] if len(gpus) == 1 else Group("[", tuple(gpus), "]")) if gpus else None,
            cpu=_opt(_number(resources.cpu)),
            memory=_opt(resources.memory_mib),
            ephemeral_disk=_opt(resources.ephemeral_disk_mib),
            timeout=_opt(resources.timeout_s),
            retries=self.retries(function),
            volumes=Group("{", mounts, "}") if mounts else None,
            secrets=self.secrets(function.secrets),
            env=value_doc(dict(function.env)) if function.env else None,
            region=(literal(function.region[0]) if len(function.region) == 1 else value_doc(function.region))
            if function.region
            else None,
            cloud=_opt(function.cloud),
            nonpreemptible=literal(True) if function.nonpreemptible else None,
            min_containers=_opt(function.min_containers),
            max_containers=_opt(self.max_containers(function)),
            scaledown_window=_opt(function.scaledown_window_s),
            schedule=_schedule(function.schedule) if function.schedule else None,
        )

    def max_containers(self, function: Function) -> int | None:
        """The spec's max_containers, else the sweep's max_parallel: Modal runs that many trials at once."""
        if function.max_containers is not None or function.sweep is None:
            return function.max_containers
        return function.sweep.max_parallel

    def parallel_note(self, function: Function) -> str | None:
        parallel = function.sweep.max_parallel if function.sweep else None
        if function.max_containers is None and parallel:
            return f"max_containers is the sweep's max_parallel: at most {parallel} trials at once"
        return None

    def mounted(self, name: str) -> str:
        """How a function mounts a volume: a Modal Volume declared read-only gets .read_only()."""
        volume = self.app.volumes[name]
        read_only = volume.kind == "volume" and volume.read_only
        return f"{self.volume_vars[name]}.read_only()" if read_only else self.volume_vars[name]

    def retries(self, function: Function) -> Any:
        retries = function.retries
        if retries is None:
            return None
        if retries.is_simple:
            return literal(retries.max_retries)
        return call(
            "modal.Retries",
            max_retries=literal(retries.max_retries),
            backoff_coefficient=_opt(_number(retries.backoff_coefficient)),
            initial_delay=_opt(_number(retries.initial_delay)),
            max_delay=_opt(_number(retries.max_delay)),
        )

    def cost_comment(self, function: Function) -> str:
        try:
            cost = hourly_cost(function.resources, self.prices)
        except PricingError:
            return "Estimated cost: unknown (no price for this GPU type)"
        parts = [f"GPU ${cost.gpu:.2f}"] if function.resources.gpus else []
        parts += [f"CPU ${cost.cpu:.2f}", f"memory ${cost.memory:.2f}"]
        return f"Estimated cost: ${cost.total:.2f}/hour ({' + '.join(parts)})"

    # ---- local entrypoint

    def entrypoint(self) -> dict[str, Any]:
        options: dict[str, Parameter] = {}
        for function_name, params in self.params.items():
            for param in params:
                known = options.setdefault(param.name, param)
                if known.kind != param.kind:
                    message = (
                        f"argument '{param.name}' is a {param.kind} here but a {known.kind} in "
                        "another function; `modal run --action` needs one type per option name"
                    )
                    path = ("functions", function_name, "args", param.name)
                    raise RenderError(message, path, "render/argument-type-conflict")
        first = next(iter(self.app.functions), None)
        if first is None:
            raise RenderError("the spec declares no functions", ("functions",))
        flags = (f"action: str = {literal(first)}",)
        if self.sweeping():
            flags += ("sweep: bool = False",)
        signature = flags + tuple(f"{n}: {p.annotation} | None = None" for n, p in options.items())
        actions = tuple(
            Entry(f"{literal(name)}: ", Group("(", (name, self.defaults(params)), ")"))
            for name, params in self.params.items()
        )
        json_options = tuple(literal(n) for n, p in options.items() if p.is_json or p.spread)
        return {
            "actions": Entry("ACTIONS = ", Group("{", actions, "}")),
            "json_options": Entry("JSON_OPTIONS = ", Group("[", json_options, "]")) if json_options else None,
            "signature": Group("def main(", signature, ")"),
            "options": Entry(
                "options = ", Group("{", tuple(Entry(f"{literal(n)}: ", n) for n in options), "}")
            ),
        }

    def defaults(self, params: list[Parameter]) -> Group:
        """``{"config": "specs/train.yaml", ...}``: the parameters a function takes, with their defaults."""
        return Group("{", tuple(Entry(f"{literal(p.name)}: ", literal(p.default)) for p in params), "}")

    # ---- sweeps

    def sweeping(self) -> list[Function]:
        return [function for function in self.app.functions.values() if function.sweep]

    def sweeps(self) -> Entry | None:
        """``SWEEPS = {"train": [{...trial...}, ...]}``: what each trial sets, from
        :mod:`compiler.spec.sweep`."""
        if not self.sweeping():
            return None
        entries = []
        for function in self.sweeping():
            arg_names = {name for name, _ in function.args}
            trials = []
            for trial in function_trials(function):
                args, overrides = trial.split(arg_names)
                values = {name: self.argument_value(function, name, v) for name, v in args.items()}
                trials.append(value_doc({**values, OVERRIDES_PARAM: overrides}))
            entries.append(Entry(f"{literal(function.name)}: ", Group("[", tuple(trials), "]")))
        return Entry("SWEEPS = ", Group("{", tuple(entries), "}"))

    def argument_value(self, function: Function, name: str, value: Any) -> Any:
        """A swept arg's value as the parameter takes it: list values as their JSON text."""
        param = next(p for p in self.params[function.name] if p.name == name)
        return json.dumps(list(value), ensure_ascii=False) if param.is_json else value

    # ---- names

    def _check_names(self) -> None:
        taken: dict[str, str] = {name: "the generated module itself" for name in MODULE_NAMES}
        for kind, names in (("image", self.image_vars), ("volume", self.volume_vars)):
            for key, var in names.items():
                _claim(taken, var, f"{kind} '{key}'", (f"{kind}s", key))
        for name in self.app.functions:
            path = ("functions", name)
            identifier(name, path, "function name")
            _claim(taken, name, f"function '{name}'", path)
        for name, function in self.app.functions.items():
            for param in self.params[name]:
                if param.name in self.app.functions:  # the entrypoint's parameter would hide the function
                    message = f"argument '{param.name}' has the name of a function; rename the argument"
                    raise RenderError(
                        message, ("functions", name, "args", param.name), "render/reserved-name"
                    )
            identifier(function.entry, ("functions", name, "run"), "run target function")
            for part in function.module.split("."):
                identifier(part, ("functions", name, "run"), "run target module")
            for mount in function.mounts:
                if mount.volume not in self.volume_vars:
                    path = ("functions", name, "volumes", mount.path)
                    raise RenderError(f"unknown volume '{mount.volume}'", path, "render/unknown-volume")
            if function.image and function.image not in self.image_vars:
                raise RenderError(f"unknown image '{function.image}'", ("functions", name, "image"))


def writable_volumes(app: App, function: Function) -> list[str]:
    """The writable Modal Volumes ``function`` mounts: the generated code commits them on checkpoint."""
    return [
        m.volume
        for m in function.mounts
        if m.volume in app.volumes
        and app.volumes[m.volume].kind == "volume"
        and not app.volumes[m.volume].read_only
    ]


def _claim(taken: dict[str, str], name: str, owner: str, path: JsonPath) -> None:
    if name in taken:
        message = (
            f"{owner} becomes the Python name '{name}', already used by {taken[name]}; rename one of them"
        )
        raise RenderError(message, path, "render/name-clash")
    taken[name] = owner


def _call_name(entry: str, params: set[str]) -> str:
    """The name the body calls the target by: the entry's own name unless a parameter shadows it."""
    name = entry
    while name in params:
        name += "_"
    return name


def _schedule(schedule: Schedule) -> Group:
    if schedule.kind == "cron":
        return call("modal.Cron", literal(schedule.cron), timezone=_opt(schedule.timezone))
    seconds = schedule.period_s
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds and seconds % size == 0:
            return call("modal.Period", **{unit: literal(seconds // size)})
    return call("modal.Period", seconds=literal(seconds))


def _shell_line(words: list[str]) -> str:
    """A shell command for a comment: quoted words, and no line break whatever the words hold."""
    return " ".join(shlex.quote(word) if word.isprintable() else literal(word) for word in words)


def _opt(value: Any) -> str | None:
    return None if value is None else literal(value)


def _number(value: float | None) -> float | int | None:
    """32.0 -> 32 so the module reads like hand-written code; other values unchanged."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


def _spec_dir_doc(spec_dir: Path, module_dir: Path) -> str:
    """``SPEC_DIR = Path(__file__).parent.parent / "specs"``: the spec's folder from the module's own."""
    relative = Path(os.path.relpath(spec_dir.resolve(), module_dir.resolve())).as_posix()
    return f"SPEC_DIR = {_below('Path(__file__).parent', relative)}"


def _below(base: str, relative: str) -> str:
    """``base`` joined with a normalised relative path: ``..`` as ``.parent``, the rest as one string."""
    parts = relative.split("/") if relative != "." else []
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    rest = "/".join(parts[ups:])
    return base + ".parent" * ups + (f" / {literal(rest)}" if rest else "")
