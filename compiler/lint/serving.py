"""Rules on classes, web endpoints and input concurrency (``methods``, ``web``, ``concurrency``), from
Modal's documented constraints on ``@app.cls``, its web decorators and ``@modal.concurrent``."""

from __future__ import annotations

from collections.abc import Iterator

from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.spec.ir import Function
from compiler.spec.pynames import parameter_type
from compiler.spec.serving import APP_KINDS, PARAMETER_TYPES, RESERVED_NAMES, Web
from compiler.spec.targets import read_target
from runtime.core.diagnostics import Diagnostic


def _endpoints(fn: Function) -> Iterator[tuple[str, str, Web]]:
    """(origin key, where, endpoint) for the function's web endpoint and each web method of a class."""
    if fn.web is not None:
        yield "web", "web", fn.web
    for method in fn.methods:
        if method.web is not None:
            yield f"methods[{method.name}]", f"methods.{method.name}.web", method.web


@rule(
    "web-options",
    ERROR,
    "a web endpoint's options fit its kind: `port` (required) and `startup_timeout` only on a web_server, "
    "`method` and `docs` only on a fastapi_endpoint",
    "add `port: 8000` to a web_server, or remove the option its kind does not take",
)
def _web_options(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for key, where, web in _endpoints(fn):
        if web.kind == "web_server" and web.port is None:
            message = (
                f"{where} is a web_server without a port: Modal forwards requests to the port it listens on"
            )
            yield ctx.at_field("web-options", fn, key, message)
        misplaced = [
            option
            for option, allowed, set_ in (
                ("port", "web_server", web.port is not None),
                ("startup_timeout", "web_server", web.startup_timeout_s is not None),
                ("method", "fastapi_endpoint", web.method is not None),
                ("docs", "fastapi_endpoint", web.docs),
            )
            if set_ and web.kind != allowed
        ]
        if misplaced:
            message = f"{where} ({web.kind}) does not take {', '.join(misplaced)}"
            yield ctx.at_field("web-options", fn, key, message)


@rule(
    "web-app-args",
    ERROR,
    "an asgi_app, wsgi_app or web_server function takes no args: Modal calls it once, bare, to get the app",
    "remove `args` (read settings from env or a volume), or use kind: fastapi_endpoint",
)
def _web_app_args(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.web is not None and fn.web.kind in APP_KINDS and fn.args and not fn.is_class:
        names = ", ".join(fn.arg_names)
        yield ctx.at_field("web-app-args", fn, "args", f"is a {fn.web.kind} and has args ({names})")


@rule(
    "web-with-schedule",
    ERROR,
    "a web endpoint or class has no schedule, sweep or other batch setting: requests call it",
    "serve it from its own entry, and schedule or sweep a plain function",
)
def _web_with_schedule(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    serving = "class" if fn.is_class else "web endpoint" if fn.web is not None else None
    for key, value in (("schedule", fn.schedule), ("sweep", fn.sweep)):
        if serving and value is not None:
            yield ctx.at_field("web-with-schedule", fn, key, f"is a {serving} and has a {key}")


@rule(
    "cluster-serving",
    ERROR,
    "a cluster runs a batch function: a class, a web endpoint or concurrent inputs cannot be clustered",
    "drop `cluster:` from the entry, or serve from a separate entry without it",
)
def _cluster_serving(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.cluster is None:
        return
    serving = "a class" if fn.is_class else "a web endpoint" if fn.web is not None else None
    serving = serving or ("takes concurrent inputs" if fn.concurrency is not None else None)
    if serving:
        yield ctx.at_field("cluster-serving", fn, "cluster", f"is {serving} and cannot be clustered")


@rule(
    "class-web-on-methods",
    ERROR,
    "a class's web endpoints are on its methods (`methods: {NAME: {web: ...}}`), not on the class",
    "move `web:` under the method that returns or answers it",
)
def _class_web(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.is_class and fn.web is not None:
        yield ctx.at_field("class-web-on-methods", fn, "web", "is a class: put `web:` on one of its methods")


@rule(
    "class-names",
    ERROR,
    f"a class's methods and args are not named {' or '.join(RESERVED_NAMES)} (the generated class uses them)",
    "rename the method or argument in the class and the spec",
)
def _class_names(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if not fn.is_class:
        return
    for name in [m.name for m in fn.methods] + fn.arg_names:
        if name in RESERVED_NAMES:
            yield ctx.at_field("class-names", fn, "methods", f"'{name}' is a name the generated class uses")


@rule(
    "class-parameter-type",
    ERROR,
    "a class's args are modal.parameter fields: str, int, bool or bytes, not null, float, list or mapping",
    "pass such values through a str (a path, JSON text) or give the class a default in its own code",
)
def _class_parameter_type(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if not fn.is_class:
        return
    target = read_target(fn.module, fn.entry, ctx.root).target
    for arg in fn.args:
        found = parameter_type(arg, target)
        if found is not None and (found.base not in PARAMETER_TYPES or found.type.optional):
            takes = ", ".join(PARAMETER_TYPES)
            message = f"argument '{arg.name}' is {found.annotation}; modal.parameter takes {takes}"
            yield ctx.at_field("class-parameter-type", fn, f"args[{arg.name}]", message)


@rule(
    "class-target",
    ERROR,
    "an entry with `methods` runs a class (`run: module:Class`)",
    "name the class in `run`, or remove `methods` to run a function",
)
def _class_target(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if not fn.is_class:
        return  # a class named by a function: run-target-shape
    target = read_target(fn.module, fn.entry, ctx.root).target
    if target is not None and target.shape not in ("unknown", "class"):
        yield ctx.at_field(
            "class-target", fn, "run", f"has methods but {fn.run} is a {target.shape}, not a class"
        )


@rule(
    "concurrency-target",
    ERROR,
    "concurrency.target_inputs is at most max_inputs (the autoscaler's aim, under the hard limit)",
    "lower target_inputs or raise max_inputs",
)
def _concurrency_target(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    spec = fn.concurrency
    if spec is not None and spec.target_inputs is not None and spec.target_inputs > spec.max_inputs:
        message = f"concurrency.target_inputs {spec.target_inputs} is above max_inputs {spec.max_inputs}"
        yield ctx.at_field("concurrency-target", fn, "concurrency", message)


@rule(
    "concurrency-gpu-memory",
    WARNING,
    "concurrent inputs on a GPU share its memory: each input's activations come on top of the model's",
    "keep max_inputs low enough for the batch sizes you serve, or silence it with the reason it fits",
)
def _concurrency_gpu(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.concurrency is not None and fn.concurrency.max_inputs > 1 and fn.resources.gpus:
        message = (
            f"takes up to {fn.concurrency.max_inputs} inputs at once on one GPU: they share its memory, so "
            "size max_inputs for the largest request"
        )
        yield ctx.at_field("concurrency-gpu-memory", fn, "concurrency", message)


@rule(
    "web-label-unique",
    ERROR,
    "web endpoint labels are unique in the app (each is the endpoint's subdomain)",
    "give each endpoint its own label",
    scope="app",
)
def _web_label_unique(ctx: LintContext) -> Iterator[Diagnostic]:
    seen: dict[str, str] = {}
    for fn in ctx.app.functions.values():
        for key, where, web in _endpoints(fn):
            if web.label is None:
                continue
            if web.label in seen:
                message = f"function '{fn.name}': {where} label '{web.label}' is also {seen[web.label]}'s"
                yield ctx.at("web-label-unique", fn.origins.get(key, ("functions", fn.name)), message)
            seen.setdefault(web.label, fn.name)
