"""Serving in the model: a class's exposed methods, web endpoints and input concurrency.

A function entry with ``methods`` is a Modal class (``run: module:Class``): built once per container, its
``args`` are the class's ``modal.parameter`` fields, each method a ``@modal.method`` or a web endpoint. A
``web`` endpoint on a function, or on a method, is one of Modal's web decorators; ``concurrency`` is
``@modal.concurrent``. :func:`web`, :func:`concurrency` and :func:`methods` turn the spec's schema-valid
mappings into these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from compiler.spec import units

WEB_KINDS = ("fastapi_endpoint", "asgi_app", "wsgi_app", "web_server")
APP_KINDS = (
    "asgi_app",
    "wsgi_app",
    "web_server",
)  # the target takes no arguments: it returns or starts a server
PARAMETER_TYPES = ("str", "int", "bool", "bytes")  # what modal.parameter can hold
SETUP_METHOD = "setup"  # the generated class's @modal.enter method
INSTANCE_ATTRIBUTE = "instance"  # where the setup keeps the target's instance
RESERVED_NAMES = (SETUP_METHOD, INSTANCE_ATTRIBUTE)


@dataclass(frozen=True)
class Web:
    """One of Modal's web decorators: kind is fastapi_endpoint | asgi_app | wsgi_app | web_server."""

    kind: str
    method: str | None = None  # fastapi_endpoint: GET (Modal's default) or another HTTP method
    port: int | None = None  # web_server
    startup_timeout_s: int | float | None = None  # web_server
    label: str | None = None
    requires_proxy_auth: bool = False
    docs: bool = False

    def describe(self) -> str:
        """One line for a reviewer: ``fastapi_endpoint POST, label predict-api, proxy auth``."""
        parts = [" ".join(str(p) for p in (self.kind, self.method, self.port) if p is not None)]
        if self.startup_timeout_s is not None:
            parts.append(f"startup_timeout {self.startup_timeout_s} s")
        if self.label:
            parts.append(f"label {self.label}")
        parts += ["proxy auth"] if self.requires_proxy_auth else []
        parts += ["docs"] if self.docs else []
        return ", ".join(parts)


@dataclass(frozen=True)
class Concurrency:
    max_inputs: int
    target_inputs: int | None = None


@dataclass(frozen=True)
class Method:
    """An exposed method of a class: a ``@modal.method``, or a web endpoint when ``web`` is set."""

    name: str
    web: Web | None = None


def web(value: dict | None) -> Web | None:
    if value is None:
        return None
    timeout = value.get("startup_timeout")
    return Web(
        kind=value["kind"],
        method=value.get("method"),
        port=value.get("port"),
        startup_timeout_s=units.parse_duration_s(timeout) if timeout is not None else None,
        label=value.get("label"),
        requires_proxy_auth=bool(value.get("requires_proxy_auth", False)),
        docs=bool(value.get("docs", False)),
    )


def concurrency(value: dict | None) -> Concurrency | None:
    if value is None:
        return None
    return Concurrency(max_inputs=int(value["max_inputs"]), target_inputs=_whole(value.get("target_inputs")))


def methods(value: list | dict | None) -> tuple[Method, ...]:
    """A list of names, or {name: null | {web: ...}}, as :class:`Method` s in declared order."""
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(Method(name) for name in value)
    return tuple(Method(name, web((settings or {}).get("web"))) for name, settings in value.items())


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)
