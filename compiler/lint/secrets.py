"""The ``secret-duplicate`` rule: a function receives each Modal secret once.

A function gets the app's ``secrets`` and its own; the same secret (name and environment) listed twice says
nothing more, and usually hides a typo in the other name.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.lint.registry import WARNING, LintContext, rule
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic


@rule(
    "secret-duplicate",
    WARNING,
    "a function receives each secret (name and environment) once, from `app.secrets` and its own `secrets`",
    "remove the repeated entry",
)
def _secret_duplicate(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    seen = set()
    for index, secret in enumerate((*ctx.app.secrets, *fn.secrets)):
        if secret not in seen:
            seen.add(secret)
            continue
        message = f"secret {secret} is listed twice"
        if index < len(ctx.app.secrets):
            yield ctx.at("secret-duplicate", ("app", "secrets", index), message)
        else:
            yield ctx.at_field("secret-duplicate", fn, "secrets", message, index=index - len(ctx.app.secrets))
