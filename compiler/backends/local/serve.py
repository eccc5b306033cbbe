"""Serving a class or a web function locally: what ``mtc run NAME`` runs in the child for them.

:func:`serve` is the child's target (like a sweep trial's, :data:`SERVE_TARGET`): it imports the spec's
target, builds a class once (its ``args`` as keywords: Modal's ``@modal.enter``), then answers HTTP on
``127.0.0.1`` until stopped, under the same cores, memory limit and volumes as a function. Routes:

- a class's plain method ``m``: ``POST /m`` with a JSON body, a mapping of keyword arguments or a list of
  positional ones; the answer is what the method returns, as JSON;
- a ``fastapi_endpoint``: its route at ``/m`` (a function's at ``/``) with its HTTP method; a class method
  that is not GET takes the JSON body as one dict, as the generated module calls it;
- an ``asgi_app`` or ``wsgi_app``: the returned app mounted at ``/m`` (a function's at ``/``);
- a ``web_server``: the target starts its own server; its ``port`` is printed.

FastAPI and uvicorn come from the ``serve`` extra.
"""

from __future__ import annotations

import importlib
import inspect
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.core.errors import UserError

HOST = "127.0.0.1"


class PortInUse(UserError):
    """The port asked for is taken: a user's choice to change, not a bug."""


def free_port() -> int:
    """A TCP port nothing listens on now, for a server started without ``--port``."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def serve(
    target: str,
    kwargs: dict[str, Any],
    name: str,
    port: int,
    methods: list[list[Any]] | None = None,
    web: dict | None = None,
    called_marker: str | None = None,
) -> None:
    """Import ``target`` and serve it on ``port`` until a signal stops the server.

    ``methods`` ([name, web mapping or None] each) makes it a class built once with ``kwargs``; else ``web``
    is the function's endpoint. ``called_marker`` is created once the target is imported and built: the
    end of the startup that ``startup_timeout`` bounds."""
    import uvicorn
    from fastapi import FastAPI

    _check_free(port)
    module_name, _, entry = target.partition(":")
    found = getattr(importlib.import_module(module_name), entry)
    app = FastAPI(title=f"mtc run {name}")
    urls: list[str] = []
    base = f"http://{HOST}:{port}"
    if methods is not None:
        instance = found(**kwargs)
        for method, method_web in methods:
            urls.append(
                _route(app, f"/{method}", getattr(instance, method), method_web, base, is_method=True)
            )
    else:
        urls.append(_route(app, "/", _with_defaults(found, kwargs), web, base, is_method=False))
    if called_marker:
        Path(called_marker).touch()
    for url in urls:
        print(f"mtc run: serving {name}: {url}", flush=True)
    print(f"mtc run: {name} is listening on {base} (Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=HOST, port=port, log_level="warning")


def _check_free(port: int) -> None:
    """Refuse a port something already listens on before the target is built, not after a long setup."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on {HOST} is not free ({exc.strerror}); choose another with --port N, "
                "or leave --port out for a free one"
            ) from None


def _route(app: Any, path: str, call: Callable, web: dict | None, base: str, *, is_method: bool) -> str:
    """Add ``call`` to ``app`` at ``path`` as its web kind says; the URL (with the HTTP method) it answers."""
    kind = (web or {}).get("kind")
    if kind is None:
        app.add_api_route(path, _json_call(call), methods=["POST"])
        return f"POST {base}{path}"
    if kind == "fastapi_endpoint":
        verb = web.get("method") or "GET"
        handler = _body_call(call) if is_method and verb != "GET" else call
        app.add_api_route(path, handler, methods=[verb])
        return f"{verb} {base}{path}"
    if kind == "web_server":
        call()
        return f"web server on http://{HOST}:{web['port']}"
    served = call()
    if kind == "wsgi_app":
        from starlette.middleware.wsgi import WSGIMiddleware

        served = WSGIMiddleware(served)
    app.mount(path if path != "/" else "", served)
    return f"{base}{path if path != '/' else ''}/"


def _json_call(call: Callable) -> Callable:
    """A handler taking the JSON body: a mapping as keyword arguments, a list as positional ones, nothing
    for no arguments; a body that is not JSON gets 400."""
    from fastapi import HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    async def handler(request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise HTTPException(400, "the body is not JSON: send a mapping of keyword arguments") from None
        args, kwargs = (
            ((), body) if isinstance(body, dict) else (body, {}) if isinstance(body, list) else ((), {})
        )
        if body is not None and not isinstance(body, dict | list):
            args = (body,)
        try:
            return await run_in_threadpool(call, *args, **kwargs)
        except UserError as exc:  # the target says what is wrong with the request
            raise HTTPException(400, str(exc)) from None

    handler.__annotations__["request"] = Request  # a class, not this module's string annotation
    return handler


def _body_call(call: Callable) -> Callable:
    def handler(body: dict) -> Any:
        return call(body)

    return handler


def _with_defaults(function: Callable, kwargs: dict[str, Any]) -> Callable:
    """``function`` with the spec's args as its parameters' defaults, so FastAPI reads them as such."""
    signature = inspect.signature(function)
    parameters = [
        p.replace(default=kwargs[p.name]) if p.name in kwargs else p for p in signature.parameters.values()
    ]

    def handler(**given: Any) -> Any:
        return function(**given)

    handler.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return handler


SERVE_TARGET = f"{__spec__.name}:{serve.__name__}"  # __spec__: the same under `python -m`
