"""Rules on a function's names and schedule, and on the spec's references to functions and to rules
(profiles that override functions, `lint.ignore`)."""

from __future__ import annotations

import keyword
from collections.abc import Iterator
from functools import cache

from compiler.lint.registry import ERROR, RULES, WARNING, LintContext, rule
from compiler.spec.ir import Function
from compiler.spec.pynames import MODULE_NAMES  # names the generated module defines
from compiler.spec.resolve import DECLARATION_KEYS
from runtime.core.diagnostics import Diagnostic, did_you_mean


@rule(
    "function-name",
    ERROR,
    "a function name is a Python identifier, not a keyword, and not a name the generated module uses",
    "rename the function, e.g. populate_cache instead of populate-cache",
)
def _function_name(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    problem = _identifier_problem(fn.name)
    if not problem and fn.name in MODULE_NAMES:
        problem = f"is a name the generated module defines ({', '.join(sorted(MODULE_NAMES))})"
    if problem:
        yield ctx.at(
            "function-name", ("functions", fn.name), f"function name '{fn.name}' {problem}", key=True
        )


@rule(
    "arg-name",
    ERROR,
    "an argument name is a Python identifier and not a keyword (it becomes a parameter)",
    "rename the argument, e.g. max_epochs instead of max-epochs",
)
def _arg_name(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    for name in fn.arg_names:
        problem = _identifier_problem(name)
        if problem:
            yield ctx.at_field("arg-name", fn, f"args[{name}]", f"argument name '{name}' {problem}", key=True)


@rule(
    "arg-declaration-shape",
    WARNING,
    "a mapping default whose keys are all type/required/default is really the explicit form: exactly "
    "{type, required: true} or {type, default}",
    "keep exactly those keys, or write a mapping default with them as {type: dict, default: {...}}",
)
def _arg_declaration_shape(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    words = frozenset().union(*DECLARATION_KEYS)  # type, required, default
    for arg in fn.args:
        value = arg.default if arg.declared is None and not arg.required else None
        if isinstance(value, dict) and "type" in value and set(value) <= words:
            message = (
                f"args.{arg.name} is taken as a mapping default {{{', '.join(value)}}}: the explicit form "
                "has exactly the keys type and required (true), or type and default"
            )
            yield ctx.at_field("arg-declaration-shape", fn, f"args[{arg.name}]", message)


def _identifier_problem(name: str) -> str | None:
    if not name.isidentifier() or not name.isascii():
        return "is not a Python identifier (letters, digits and '_', not starting with a digit)"
    if keyword.iskeyword(name):
        return "is a Python keyword"
    return None


@rule(
    "schedule-with-args",
    ERROR,
    "a scheduled function takes no args (Modal calls it without arguments)",
    "remove `args` or `schedule`; put fixed values in the target's own defaults",
)
def _schedule_with_args(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.schedule is not None and fn.args:
        names = ", ".join(fn.arg_names)
        message = f"has a schedule and args ({names}); Modal cannot pass arguments to a scheduled call"
        yield ctx.at_field("schedule-with-args", fn, "schedule", message)


@rule(
    "schedule-timezone",
    ERROR,
    "a cron schedule's timezone is an IANA time zone name",
    "use a name such as Europe/Paris or America/New_York",
)
def _schedule_timezone(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    zone = fn.schedule.timezone if fn.schedule else None
    known = _time_zones() if zone else frozenset()
    if zone and known and zone not in known:  # without a time zone database on this machine, trust the spec
        path = (*fn.origins["schedule"], "timezone")
        message = f"function '{fn.name}': unknown time zone '{zone}'{did_you_mean(zone, known)}"
        yield ctx.at("schedule-timezone", path, message)


@rule(
    "schedule-cron",
    ERROR,
    "a cron schedule is a valid five-field cron expression (parsed with croniter) that fires at some time",
    "fix the field the message names: minute 0-59, hour 0-23, day of month 1-31, month 1-12, weekday 0-6",
)
def _schedule_cron(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    expression = fn.schedule.cron if fn.schedule else None
    problem = cron_problem(expression) if expression else None
    if problem:
        path = (*fn.origins["schedule"], "cron")
        yield ctx.at("schedule-cron", path, f"function '{fn.name}': cron {expression!r} {problem}")


def cron_problem(expression: str) -> str | None:
    """Why croniter refuses ``expression``, or why it never fires (``0 0 31 2 *``); None when it is fine."""
    from datetime import datetime

    from croniter import CroniterBadDateError, CroniterError, croniter

    try:
        croniter(expression, datetime(2026, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        return "never fires (no date matches every field, e.g. the 31st of a 30-day month)"
    except (CroniterError, ValueError) as exc:
        reason = str(exc).replace(f"[{expression}] ", "")
        return f"is not a valid cron expression: {_bad_field(expression) or ''}croniter says: {reason}"
    return None


CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("weekday", "0-6 or SUN-SAT"),
)


def _bad_field(expression: str) -> str | None:
    """``the minute field '61' is wrong (0-59); ``: the first field croniter refuses, the others at ``*``."""
    from croniter import croniter

    fields = expression.split()
    for index, (name, allowed) in enumerate(CRON_FIELDS[: len(fields)]):
        probe = ["*"] * len(CRON_FIELDS)
        probe[index] = fields[index]
        if not croniter.is_valid(" ".join(probe)):
            return f"the {name} field {fields[index]!r} is wrong ({allowed}); "
    return None


@cache
def _time_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


@rule(
    "profile-function",
    ERROR,
    "a profile only overrides functions that exist",
    "fix the function name in the profile",
    scope="app",
)
def _profile_function(ctx: LintContext) -> Iterator[Diagnostic]:
    for profile, spec in (ctx.doc.data.get("profiles") or {}).items():
        for name in (spec or {}).get("functions", {}):
            if name not in ctx.app.functions:
                message = f"profile '{profile}' overrides unknown function '{name}'"
                message += (
                    did_you_mean(name, ctx.app.functions) or f"; functions: {', '.join(ctx.app.functions)}"
                )
                yield ctx.at("profile-function", ("profiles", profile, "functions", name), message, key=True)


@rule(
    "lint-ignore",
    WARNING,
    "`lint.ignore` names existing warning rules (errors cannot be silenced)",
    "fix the rule id, or fix the error instead of ignoring it",
    scope="app",
)
def _lint_ignore(ctx: LintContext) -> Iterator[Diagnostic]:
    for rule_id, _ in ctx.app.lint_ignores:
        problem = _ignore_problem(rule_id)
        if problem:
            yield ctx.at("lint-ignore", ("lint", "ignore", rule_id), problem, key=True)
    for fn in ctx.app.functions.values():
        for rule_id, _ in fn.lint_ignores:
            problem = _ignore_problem(rule_id)
            if problem:
                yield ctx.at_field("lint-ignore", fn, f"lint.ignore[{rule_id}]", problem, key=True)


def _ignore_problem(rule_id: str) -> str | None:
    if rule_id not in RULES:
        return f"lint.ignore names unknown rule '{rule_id}'{did_you_mean(rule_id, RULES)}"
    if RULES[rule_id].severity == ERROR:
        return f"rule '{rule_id}' reports errors, which cannot be ignored (Modal would reject the app)"
    return None
