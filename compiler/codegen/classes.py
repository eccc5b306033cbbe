"""Classes and web endpoints in the generated module: ``@app.cls`` wrappers and the decorators stacked under
``@app.function`` (``@modal.concurrent``, ``@modal.fastapi_endpoint`` and the other web kinds).

A class entry (:attr:`compiler.spec.ir.Function.is_class`) becomes a Modal class that wraps the target:
its ``args`` are ``modal.parameter`` fields, ``@modal.enter`` builds the target once per container
(``self.instance = Target(**parameters)``), and each exposed method calls the instance's method of the same
name. A plain method passes its arguments through; a web method is called as Modal calls it: a GET
``fastapi_endpoint`` with no arguments, another HTTP method with the JSON body as one ``dict``, an
``asgi_app``/``wsgi_app`` returning the app, a ``web_server`` starting its server.
"""

from __future__ import annotations

from typing import Any

from compiler.codegen.functions import FunctionSection
from compiler.codegen.layout import Group, call
from compiler.codegen.literals import RenderError, duration, literal, optional
from compiler.spec.ir import Function
from compiler.spec.serving import INSTANCE_ATTRIBUTE, PARAMETER_TYPES, Concurrency, Method, Web


def class_name(name: str) -> str:
    """The Modal class's name: the spec key in CamelCase (``predict`` -> ``Predict``)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part) or name


def stacked(function: Function) -> list[Group]:
    """The decorators under ``@app.function`` or ``@app.cls``: concurrency, then a function's web kind."""
    out = [concurrent(function.concurrency)] if function.concurrency else []
    if function.web is not None and not function.is_class:
        out.append(web_decorator(function.web))
    return out


def concurrent(spec: Concurrency) -> Group:
    return call(
        "@modal.concurrent",
        max_inputs=literal(spec.max_inputs),
        target_inputs=optional(spec.target_inputs),
    )


def web_decorator(web: Web) -> Group:
    """``@modal.fastapi_endpoint(method="POST")``, ``@modal.asgi_app()``, ``@modal.web_server(8000, ...)``."""
    port = (literal(web.port),) if web.kind == "web_server" else ()
    return call(
        f"@modal.{web.kind}",
        *port,
        method=optional(web.method),
        startup_timeout=duration(web.startup_timeout_s) if web.kind == "web_server" else None,
        label=optional(web.label),
        docs=literal(True) if web.docs else None,
        requires_proxy_auth=literal(True) if web.requires_proxy_auth else None,
    )


class ClassSection:
    """One ``@app.cls`` each: the pieces the template places for it."""

    def __init__(self, functions: FunctionSection):
        self.functions = functions
        self.model = functions.model

    def cls(self, function: Function) -> dict[str, Any]:
        params = self.model.params[function.name]
        for param in params:
            if param.type.base not in PARAMETER_TYPES or param.type.type.optional:
                path = ("functions", function.name, "args", param.name)
                raise RenderError(f"argument '{param.name}' cannot be a modal.parameter", path)
        keywords = ", ".join(f"{p.name}=self.{p.name}" for p in params)
        return {
            "name": class_name(function.name),
            "cost": self.functions.cost_comment(function),
            "decorator": self.functions.decorator(function, "@app.cls"),
            "stacked": stacked(function),
            "run": function.run,
            "fields": [_field(p.name, p.type.base, p.type.required, p.type.default) for p in params],
            "import": f"from {function.module} import {function.entry}",
            "setup": f"self.{INSTANCE_ATTRIBUTE} = {function.entry}({keywords})",
            "methods": [_method(method) for method in function.methods],
        }


def _field(name: str, annotation: str, required: bool, default: Any) -> str:
    value = "modal.parameter()" if required else f"modal.parameter(default={literal(default)})"
    return f"{name}: {annotation} = {value}"


def _method(method: Method) -> dict[str, Any]:
    """The decorator, parameters and call of one exposed method."""
    instance = f"self.{INSTANCE_ATTRIBUTE}.{method.name}"
    if method.web is None:
        return _shape(method, call("@modal.method"), "self, *args, **kwargs", f"{instance}(*args, **kwargs)")
    if method.web.kind == "fastapi_endpoint" and (method.web.method or "GET") != "GET":
        return _shape(method, web_decorator(method.web), "self, body: dict", f"{instance}(body)")
    return _shape(method, web_decorator(method.web), "self", f"{instance}()")


def _shape(method: Method, decorator: Group, parameters: str, body: str) -> dict[str, Any]:
    return {"name": method.name, "decorator": decorator, "parameters": parameters, "call": body}
