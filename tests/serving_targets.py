"""Small serving targets for the tests of classes and web endpoints: a class that counts its setups, and
web functions of each kind."""

from __future__ import annotations

import os

BUILT = []  # one entry per instance built in this process: the local backend builds a class once


class Greeter:
    """Built once per container; ``greet`` and ``echo`` show which instance answered."""

    def __init__(self, greeting: str = "hello", times: int = 1):
        BUILT.append(self)
        self.greeting = greeting
        self.times = times

    def greet(self, name: str = "world") -> dict:
        return {
            "text": " ".join([f"{self.greeting} {name}"] * self.times),
            "built": len(BUILT),
            "pid": os.getpid(),
        }

    def shout(self, name: str = "world") -> str:
        return f"{self.greeting} {name}".upper()

    def echo(self, body: dict) -> dict:
        return {"echo": body, "built": len(BUILT)}

    def web(self):
        from fastapi import FastAPI

        app = FastAPI()

        @app.get("/ping")
        def ping() -> dict:
            return {"pong": self.greeting}

        return app


def hello_wsgi():
    """A wsgi_app: the target returns a WSGI application."""

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"hello": "wsgi"}']

    return application


def add(a: int = 1, b: int = 2) -> dict:
    """A fastapi_endpoint: ``a`` and ``b`` are query parameters."""
    return {"sum": a + b}
