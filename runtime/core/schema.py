"""JSON Schema validation of a loaded YAML document, each violation a diagnostic at its position."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from runtime.core.diagnostics import (
    CONTROL_IN_KEY,
    CONTROL_IN_VALUE,
    Diagnostic,
    JsonPath,
    did_you_mean,
    dotted,
    type_name,
)
from runtime.core.yamlfile import SourceDoc

_NO_CONTROL = "remove it (it comes from an escape such as \\0 or \\x01 in a double-quoted string)"


# ------------------------------------------------------------------------------------------ validation


def schema_diagnostics(doc: SourceDoc, schema: Mapping) -> list[Diagnostic]:
    """Every schema violation in ``doc``, one diagnostic each, sorted by position."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    diagnostics: set[Diagnostic] = set(_value_problems(doc, doc.data, ()))
    for error in validator.iter_errors(doc.data):
        diagnostics.update(_describe(doc, error))
    return sorted(diagnostics)


def _value_problems(doc: SourceDoc, node: Any, path: JsonPath) -> Iterator[Diagnostic]:
    """What no schema keyword catches: NaN and infinities (``.nan`` passes ``minimum``), and control
    characters (a NUL in a mount path or a name) in keys and string values, wherever they are."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = (*path, key)
            if CONTROL_IN_KEY.search(key):
                message = f"{dotted(path)}: the key {_short(key)} holds a control character; {_NO_CONTROL}"
                yield doc.diagnostic(child, message, "schema/control-character", key=True)
            yield from _value_problems(doc, value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _value_problems(doc, value, (*path, index))
    elif isinstance(node, float) and not math.isfinite(node):
        spelling = ".nan" if math.isnan(node) else ("-.inf" if node < 0 else ".inf")
        message = f"{dotted(path)}: expected a finite number, got {spelling}"
        yield doc.diagnostic(path, message, "schema/not-finite")
    elif isinstance(node, str) and CONTROL_IN_VALUE.search(node):
        message = f"{dotted(path)}: {_short(node)} holds a control character; {_NO_CONTROL}"
        yield doc.diagnostic(path, message, "schema/control-character")


def _describe(doc: SourceDoc, error: Any) -> list[Diagnostic]:
    path = tuple(error.absolute_path)
    kind = error.validator
    where = dotted(path)
    hint = error.schema.get("x-expected") if isinstance(error.schema, Mapping) else None
    if kind in ("oneOf", "anyOf"):
        return _describe_alternatives(doc, error, hint)
    if kind == "additionalProperties":
        return _unknown_keys(doc, error, path)
    if kind == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return [
            doc.diagnostic(path, f"{where}: missing required key '{name}'", "schema/required", key=bool(path))
            for name in missing
        ]
    if kind == "dependentRequired":
        return _missing_companions(doc, error, path)
    if "propertyNames" in error.relative_schema_path:
        # the instance is a key of the mapping at ``path``: point at that key
        message = f"{where}: key {_short(error.instance)} is not {hint or 'allowed'}"
        return [doc.diagnostic((*path, error.instance), message, "schema/key-name", key=True)]
    return [doc.diagnostic(path, _message(error, where, hint), f"schema/{_kebab(kind)}")]


def _message(error: Any, where: str, hint: str | None) -> str:
    kind = error.validator
    if kind == "enum":
        choices = [str(c) for c in error.validator_value]
        message = f"{where}: {_short(error.instance)} is not one of {', '.join(choices)}"
        return message + (did_you_mean(error.instance, choices) if isinstance(error.instance, str) else "")
    if kind == "type":
        value = error.validator_value
        expected = value if isinstance(value, str) else " or ".join(value)
        got = f"{type_name(error.instance)} {_short(error.instance)}"
        return f"{where}: expected {hint or _article(expected)}, got {got}"
    if kind == "const":
        return f"{where}: expected {error.validator_value!r}, got {_short(error.instance)}"
    if kind == "not" and isinstance(error.schema, Mapping) and error.schema.get("x-message"):
        return f"{where}: {error.schema['x-message']}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "above",
            "exclusiveMaximum": "below",
        }
        return f"{where}: {_short(error.instance)} is not {bound[kind]} {error.validator_value}"
    if kind == "minItems" and not error.instance:
        return f"{where}: the list is empty; expected at least {error.validator_value} item(s)"
    if kind == "minProperties" and not error.instance:
        return f"{where}: the mapping is empty; expected at least {error.validator_value} key(s)"
    if hint and kind in ("minProperties", "maxProperties", "minLength", "minItems"):
        return f"{where}: expected {hint}"
    if hint:
        return f"{where}: {_short(error.instance)} is not {hint}"
    return f"{where}: {error.message}"


def _describe_alternatives(doc: SourceDoc, error: Any, hint: str | None) -> list[Diagnostic]:
    """For oneOf/anyOf: when exactly one branch accepts the value's type, report what is wrong inside that
    branch (an unknown key, a bad list item); otherwise say what was expected."""
    path = tuple(error.absolute_path)
    by_branch: dict[int, list] = {}
    for sub in error.context or ():
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    plausible = [
        errors
        for errors in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errors)
    ]
    if len(plausible) == 1:
        return [diagnostic for sub in plausible[0] for diagnostic in _describe(doc, sub)]
    if hint is None and by_branch:
        from jsonschema.exceptions import best_match

        return _describe(doc, best_match(error.context))
    if plausible or not error.context:  # every branch fits the type, or several branches matched at once
        message = f"{dotted(path)}: expected {hint}" if hint else f"{dotted(path)}: {error.message}"
    else:
        message = f"{dotted(path)}: {_short(error.instance)} is not {hint}"
    return [doc.diagnostic(path, message, "schema/value")]


def _missing_companions(doc: SourceDoc, error: Any, path: JsonPath) -> list[Diagnostic]:
    out = []
    for key, companions in error.validator_value.items():
        absent = [c for c in companions if c not in error.instance]
        if key in error.instance and absent:
            needed = " and ".join(f"'{c}'" for c in absent)
            message = f"{dotted((*path, key))}: '{key}' is only allowed together with {needed}"
            out.append(doc.diagnostic((*path, key), message, "schema/dependent-required", key=True))
    return out


def _unknown_keys(doc: SourceDoc, error: Any, path: JsonPath) -> list[Diagnostic]:
    schema = error.schema
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    out = []
    for key in error.instance:
        if key in known or any(re.search(p, key) for p in patterns):
            continue
        message = f"{dotted((*path, key))}: unknown key '{key}'"
        suggestion = _renamed(key, schema.get("x-renamed", {})) or did_you_mean(key, known)
        message += suggestion if suggestion else (f"; expected one of: {', '.join(known)}" if known else "")
        out.append(doc.diagnostic((*path, key), message, "schema/unknown-key", key=True))
    return out


def _renamed(key: str, renamed: Mapping[str, str]) -> str:
    """The schema's own hint for a key it knows as renamed or removed (``x-renamed``: key -> what to write
    instead; a key ending in ``*`` is a prefix). It comes before a spelling match, which would pair keys that
    only look alike (``max_inputs`` with ``min_containers``)."""
    for name, hint in renamed.items():
        if key == name or (name.endswith("*") and key.startswith(name[:-1])):
            return f"; {hint}"
    return ""


def _article(name: str) -> str:
    pretty = {"object": "mapping", "array": "list", "null": "null"}.get(name, name)
    return pretty if pretty == "null" else ("an " if pretty[0] in "aeiou" else "a ") + pretty


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)
