"""``@app.cls`` classes as spec class entries: ``modal.parameter`` fields as ``args``, ``@modal.method`` and
web-decorated methods as ``methods``; ``@modal.concurrent`` (on a class or a function) as ``concurrency``, a
function's web decorator as ``web``.

mtc's generated class (a ``@modal.enter`` that builds ``module:Class`` from the fields, methods that call the
instance's) reads back as ``run: module:Class``. A hand-written class moves into the jobs module as the
target: its fields become plain class attributes and an ``__init__`` takes them by name and runs its
``@modal.enter`` methods, as Modal does before the first input (see :mod:`compiler.codegen.classes`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from compiler.importer.arguments import declared
from compiler.importer.bodies import Removal
from compiler.importer.functions import duration
from compiler.importer.notes import Unreadable
from compiler.importer.values import Scope, decorator_name, dotted
from compiler.spec.serving import INSTANCE_ATTRIBUTE, SETUP_METHOD, WEB_KINDS

PARAMETER_CALLS = frozenset({"modal.parameter"})
CONCURRENT = "modal.concurrent"
CLUSTERED = "modal.clustered"
WEB_KEYWORDS = {
    "fastapi_endpoint": ("method", "label", "docs", "requires_proxy_auth"),
    "asgi_app": ("label", "requires_proxy_auth"),
    "wsgi_app": ("label", "requires_proxy_auth"),
    "web_server": ("port", "startup_timeout", "label", "requires_proxy_auth"),
}
Method = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class ClassRead:
    """What a class gives the spec entry, and what the jobs module needs changed to hold it as the target."""

    args: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # module:Class when the class is mtc's generated wrapper
    edits: list[Removal] = field(default_factory=list)
    problems: list[Unreadable] = field(default_factory=list)


def spec_key(class_name: str) -> str:
    """The spec key of a class: ``Predict`` -> ``predict``, ``SleepModel`` -> ``sleep_model``."""
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(class_name))


def stacked(node: ast.ClassDef | Method, scope: Scope) -> tuple[dict[str, Any], list[Unreadable]]:
    """The spec keys of the decorators under ``@app.function``/``@app.cls`` (``concurrency``, a function's
    ``web``), and what in them could not be read."""
    readers = {"concurrency": lambda: concurrency(node, scope), "cluster": lambda: cluster(node, scope)}
    if isinstance(node, Method):
        readers["web"] = lambda: next((w for d in node.decorator_list if (w := web(d, scope))), None)
    found: dict[str, Any] = {}
    problems: list[Unreadable] = []
    for key, reader in readers.items():
        try:
            found[key] = reader()
        except Unreadable as exc:
            problems.append(exc)
    return {key: value for key, value in found.items() if value is not None}, problems


def concurrency(node: ast.ClassDef | Method, scope: Scope) -> dict[str, Any] | None:
    """``@modal.concurrent(max_inputs=N, target_inputs=M)`` as ``{max_inputs: N, target_inputs: M}``."""
    for decorator in node.decorator_list:
        if decorator_name(decorator) == CONCURRENT and isinstance(decorator, ast.Call):
            settings = _keywords(decorator, scope, ("max_inputs", "target_inputs"))
            if decorator.args or "max_inputs" not in settings:
                raise Unreadable("@modal.concurrent without max_inputs= written out", decorator.lineno)
            return settings
    return None


def cluster(node: ast.ClassDef | Method, scope: Scope) -> dict[str, Any] | None:
    """``@modal.clustered(size=N, rdma=B)`` (size also positional) as ``{size: N, rdma: B}``."""
    for decorator in node.decorator_list:
        if decorator_name(decorator) == CLUSTERED and isinstance(decorator, ast.Call):
            settings = _keywords(decorator, scope, ("size", "rdma"))
            if len(decorator.args) == 1 and "size" not in settings:
                settings = {"size": scope.evaluate(decorator.args[0]), **settings}
            if len(decorator.args) > 1 or "size" not in settings:
                raise Unreadable("@modal.clustered without its size written out", decorator.lineno)
            return settings
    return None


def web(decorator: ast.expr, scope: Scope) -> dict[str, Any] | None:
    """A web decorator (``@modal.asgi_app(label=...)``) as the spec's ``web:`` mapping; None for another."""
    kind = decorator_name(decorator).removeprefix("modal.")
    if kind not in WEB_KINDS or not decorator_name(decorator).startswith("modal."):
        return None
    if not isinstance(decorator, ast.Call):
        raise Unreadable(f"@modal.{kind} without its call `()`", decorator.lineno)
    settings = _keywords(decorator, scope, WEB_KEYWORDS[kind])
    if kind == "web_server" and decorator.args:
        settings["port"] = scope.evaluate(decorator.args[0])
    elif decorator.args:
        raise Unreadable(f"@modal.{kind} with positional arguments", decorator.lineno)
    if "startup_timeout" in settings:
        settings["startup_timeout"] = duration(_keyword(decorator, "startup_timeout"), scope)
    return {"kind": kind, **settings}


def _keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def _keywords(call: ast.Call, scope: Scope, known: tuple[str, ...]) -> dict[str, Any]:
    for keyword in call.keywords:
        if keyword.arg not in known:
            written = f"`{keyword.arg}=`" if keyword.arg else f"`**{ast.unparse(keyword.value)}`"
            raise Unreadable(
                f"@{decorator_name(call)}'s {written} has no key in the spec", keyword.value.lineno
            )
    return {k.arg: scope.evaluate(k.value) for k in call.keywords}


def read_class(node: ast.ClassDef, scope: Scope) -> ClassRead:
    read = ClassRead()
    fields = [s for s in node.body if isinstance(s, ast.AnnAssign) and _is_parameter(s.value)]
    for statement in fields:
        _field(statement, scope, read)
    methods = [s for s in node.body if isinstance(s, Method)]
    for method in methods:
        _method(method, scope, read)
    enters = [m for m in methods if _decorated(m, "modal.enter")]
    exposed = [m for m in methods if m.name in read.methods]
    read.target = _generated_target(enters, read.args) if all(map(_delegates, exposed)) else None
    if read.target is None:
        _hand_written(node, fields, enters, read)
    return read


def _is_parameter(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Call) and dotted(node.func) in PARAMETER_CALLS


def _decorated(method: Method, name: str) -> ast.expr | None:
    return next((d for d in method.decorator_list if decorator_name(d) == name), None)


def _field(statement: ast.AnnAssign, scope: Scope, read: ClassRead) -> None:
    name = ast.unparse(statement.target)
    call = statement.value
    try:
        _keywords(call, scope, ("default",))
        default = _keyword(call, "default") if call.keywords else None
        read.args[name] = declared(statement.annotation, default, scope)
    except Unreadable as exc:
        read.problems.append(Unreadable(f"parameter `{name}`: {exc.reason}", exc.line))


def _method(method: Method, scope: Scope, read: ClassRead) -> None:
    plain = _decorated(method, "modal.method")
    endpoints = [(d, w) for d in method.decorator_list if (w := _web(d, scope, read)) is not None]
    if plain is None and not endpoints:
        return
    if isinstance(plain, ast.Call) and (plain.args or plain.keywords):
        read.problems.append(
            Unreadable(f"`{ast.unparse(plain)}`: settings the spec has no key for", plain.lineno)
        )
    read.methods[method.name] = {"web": endpoints[0][1]} if endpoints else None
    if endpoints and (problem := _endpoint_shape(method, endpoints[0][1])):
        read.problems.append(Unreadable(problem, method.lineno))
    if isinstance(method, ast.AsyncFunctionDef) or any(
        isinstance(n, ast.Yield | ast.YieldFrom) for n in ast.walk(method)
    ):
        read.problems.append(
            Unreadable(
                f"`{method.name}` is async or a generator: the generated method is a plain one", method.lineno
            )
        )


def _endpoint_shape(method: Method, settings: dict[str, Any]) -> str | None:
    """What the generated web method would not pass on: it calls a GET endpoint and an app with no
    arguments, another HTTP method's endpoint with the JSON body as one argument."""
    parameters = [a.arg for a in method.args.posonlyargs + method.args.args + method.args.kwonlyargs][1:]
    takes_body = settings["kind"] == "fastapi_endpoint" and settings.get("method", "GET") != "GET"
    if takes_body and len(parameters) != 1:
        return (
            f"`{method.name}` takes {parameters}: the generated endpoint passes the JSON body as one argument"
        )
    if not takes_body and parameters:
        return f"`{method.name}` takes {parameters}: the generated endpoint passes no query parameters"
    return None


def _web(decorator: ast.expr, scope: Scope, read: ClassRead) -> dict[str, Any] | None:
    try:
        return web(decorator, scope)
    except Unreadable as exc:
        read.problems.append(exc)
        return None


def _delegates(method: Method) -> bool:
    """True for a generated method's body: one ``return self.instance.<its name>(...)``."""
    body = method.body
    return (
        len(body) == 1
        and isinstance(body[0], ast.Return)
        and isinstance(body[0].value, ast.Call)
        and ast.unparse(body[0].value.func) == f"self.{INSTANCE_ATTRIBUTE}.{method.name}"
    )


def _generated_target(enters: list[Method], args: dict[str, Any]) -> str | None:
    """``module:Class`` when the class is mtc's: one ``setup`` enter that imports the target and builds
    ``self.instance = Class(field=self.field, ...)`` from every field."""
    if len(enters) != 1 or enters[0].name != SETUP_METHOD or len(enters[0].body) != 2:
        return None
    imported, built = enters[0].body
    if not isinstance(imported, ast.ImportFrom) or imported.level or len(imported.names) != 1:
        return None
    name = imported.names[0].asname or imported.names[0].name
    expected = f"self.{INSTANCE_ATTRIBUTE} = {name}({', '.join(f'{a}=self.{a}' for a in args)})"
    return f"{imported.module}:{imported.names[0].name}" if ast.unparse(built) == expected else None


def _hand_written(
    node: ast.ClassDef, fields: list[ast.AnnAssign], enters: list[Method], read: ClassRead
) -> None:
    """The jobs module's edits that make the class the target: plain attributes for the fields, and an
    ``__init__`` that sets them and runs the enter methods (snapshot ones first, as Modal does)."""
    for statement in fields:
        read.edits.append(Removal(statement.lineno, statement.end_lineno, _plain_field(statement)))
    if any(isinstance(s, Method) and s.name == "__init__" for s in node.body):
        read.problems.append(
            Unreadable("a class with its own `__init__` cannot take its parameters by name", node.lineno)
        )
        return
    for method in node.body:
        if isinstance(method, Method) and (exit_ := _decorated(method, "modal.exit")) is not None:
            read.problems.append(
                Unreadable(
                    f"@modal.exit `{method.name}`: the generated class runs no exit hook", exit_.lineno
                )
            )
    ordered = sorted(enters, key=lambda m: not _snapshot(_decorated(m, "modal.enter")))
    first = next(s for s in node.body if isinstance(s, Method))  # an imported class has methods
    at = min([first.lineno, *(d.lineno for d in first.decorator_list)])
    read.edits.append(Removal(at, at - 1, _init(fields, ordered, " " * first.col_offset)))


def _snapshot(enter: ast.expr) -> bool:
    return isinstance(enter, ast.Call) and any(
        k.arg == "snap" and isinstance(k.value, ast.Constant) and k.value.value for k in enter.keywords
    )


def _plain_field(statement: ast.AnnAssign) -> str:
    indent = " " * statement.col_offset
    head = f"{indent}{ast.unparse(statement.target)}: {ast.unparse(statement.annotation)}"
    defaults = [k.value for k in statement.value.keywords if k.arg == "default"]
    return f"{head} = {ast.unparse(defaults[0])}\n" if defaults else f"{head}\n"


def _init(fields: list[ast.AnnAssign], enters: list[Method], indent: str) -> str:
    """``def __init__(self, *, field: T = default)``: set each field, then run the enter methods."""
    parameters = "".join(", " + _plain_field(f).strip() for f in fields)
    lines = [
        f"def __init__(self{', *' if fields else ''}{parameters}):",
        '    """Added by `mtc import`: set the parameters, run the @modal.enter methods, as Modal did."""',
        *(f"    self.{n} = {n}" for n in (ast.unparse(f.target) for f in fields)),
        *(f"    self.{m.name}()" for m in enters),
    ]
    return "".join(f"{indent}{line}\n" for line in lines) + "\n"
