"""Read a YAML spec with the source position of every node, and check it against a JSON Schema.

Shared by the compiler (deployment.yaml) and the runtime (training configs), so both report problems the same
way: ``path:line:col: error: message [rule-id]``. It lives in ``runtime`` because the runtime ships alone into
the Modal image; it imports neither torch nor modal, so the CLI can use it and still start fast.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import json
import math
import os
import re
import select
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000  # after alias expansion; bounds "billion laughs" documents
READ_TIMEOUT_ENV = "MTC_READ_TIMEOUT"  # seconds a FIFO or stream may stay silent before a read gives up
READ_TIMEOUT_S = 10.0
JsonPath = tuple[str | int, ...]
# control characters: none in a key (a name or a mount path); tab and newlines are allowed in values,
# which block scalars (run commands, env values) legitimately hold
CONTROL_IN_KEY = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NO_CONTROL = "remove it (it comes from an escape such as \\0 or \\x01 in a double-quoted string)"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem found in a file, positioned at a 1-based line and column."""

    path: str
    line: int
    col: int
    severity: str  # "error" | "warning"
    message: str
    rule: str

    def format(self) -> str:
        """One line, with any control character in the path or message escaped (``\\x1b``, ``\\n``): a key
        or value quoted from the file cannot break the line or reach the terminal as an escape sequence."""
        path, message = _printable(self.path), _printable(self.message)
        return f"{path}:{self.line}:{self.col}: {self.severity}: {message} [{self.rule}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "rule": self.rule,
        }


def _printable(text: str) -> str:
    return CONTROL_IN_KEY.sub(lambda match: repr(match.group())[1:-1], text)


class SpecError(Exception):
    """A file could not be used; carries the diagnostics that say why."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))


@dataclass
class SourceDoc:
    """A loaded YAML document as plain Python data, with where each key and value stands in the file."""

    path: str
    text: str
    data: Any
    key_positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[JsonPath, tuple[int, int]] = field(default_factory=dict)
    sha256: str = ""  # of the bytes read, so nobody reads the file a second time to hash it

    def position(self, path: Iterable[str | int], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, col) of the node at ``path``, or of its nearest ancestor that exists in the file."""
        path = tuple(path)
        while True:
            table = self.key_positions if key else self.value_positions
            if path in table:
                return table[path]
            if path in self.key_positions:
                return self.key_positions[path]
            if not path:  # the document itself: its first key, past any leading comments
                return min(self.key_positions.values(), default=(1, 1))
            path = path[:-1]
            key = True

    def diagnostic(
        self,
        path: Iterable[str | int],
        message: str,
        rule: str,
        *,
        severity: str = "error",
        key: bool = False,
    ) -> Diagnostic:
        line, col = self.position(path, key=key)
        return Diagnostic(self.path, line, col, severity, message, rule)


def dotted(path: Iterable[str | int]) -> str:
    """``("functions", "train", "volumes", 0)`` -> ``functions.train.volumes[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix when ``word`` is close to one of ``choices`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean '{lowered[match[0]]}'?" if match else ""


# ------------------------------------------------------------------------------------- bounded reads


class UnreadableFile(Exception):
    """A user's file that cannot be read within the limits; ``rule`` names the problem (``load/...``)."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


def read_limited(path: str | Path, *, limit: int = MAX_FILE_BYTES, kind: str = "YAML file") -> bytes:
    """The bytes of the file at ``path``, refused beyond ``limit`` bytes, from any kind of file.

    The limit is counted while reading (at most ``limit + 1`` bytes are read), never taken from ``stat``,
    so ``/dev/stdin``, ``/dev/zero`` and a pipe are bounded like a regular file. A FIFO or stream that stays
    silent for ``$MTC_READ_TIMEOUT`` seconds (default 10) is given up on, so a FIFO with no writer cannot
    hang the caller. Raises :class:`UnreadableFile` with a message that names the problem.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UnreadableFile("no such file", "load/not-found") from None
    except IsADirectoryError:
        raise UnreadableFile(f"is a directory; expected a {kind}", "load/not-a-file") from None
    except PermissionError:
        raise UnreadableFile("cannot read the file: permission denied", "load/unreadable") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise UnreadableFile(f"cannot read the file: {_os_reason(exc)}", "load/unreadable") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise UnreadableFile(f"is a directory; expected a {kind}", "load/not-a-file")
        stream = not (stat.S_ISREG(mode) or stat.S_ISBLK(mode))  # a FIFO, a pipe, a terminal, a device
        raw = _read_up_to(descriptor, limit + 1, _read_timeout() if stream else None)
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {_os_reason(exc)}", "load/unreadable") from None
    finally:
        os.close(descriptor)
    if len(raw) > limit:
        source = "the file holds" if stat.S_ISREG(mode) else f"{file_type(mode)} that gave"
        message = f"{source} more than {limit} bytes; a {kind} is limited to {_size(limit)}"
        raise UnreadableFile(message, "load/too-large")
    return raw


def file_type(mode: int) -> str:
    """What a ``stat`` mode is, in words: "a regular file", "a FIFO or pipe", "a character device", ..."""
    return _FILE_TYPES.get(stat.S_IFMT(mode), "an unknown kind of file")


_FILE_TYPES = {
    stat.S_IFREG: "a regular file",
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO or pipe",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


def _read_up_to(descriptor: int, wanted: int, timeout: float | None) -> bytes:
    """Up to ``wanted`` bytes; with a ``timeout``, waiting at most that long for each chunk."""
    chunks: list[bytes] = []
    size = 0
    while size < wanted:
        if timeout is not None and not _readable_within(descriptor, timeout):
            message = (
                f"nothing to read for {timeout:g} s: a FIFO or pipe with no writer? Give a regular file, or "
                f"set {READ_TIMEOUT_ENV} to wait longer"
            )
            raise UnreadableFile(message, "load/timeout")
        try:
            chunk = os.read(descriptor, min(1 << 16, wanted - size))
        except BlockingIOError:  # woken without data (a terminal, a racing reader): wait again
            continue
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _readable_within(descriptor: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(descriptor, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(timeout * 1000))


def _read_timeout() -> float:
    try:
        value = float(os.environ.get(READ_TIMEOUT_ENV, READ_TIMEOUT_S))
    except ValueError:
        return READ_TIMEOUT_S
    return value if math.isfinite(value) and value > 0 else READ_TIMEOUT_S


def _os_reason(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _size(limit: int) -> str:
    return f"{limit // 2**20} MiB" if limit % 2**20 == 0 else f"{limit} bytes"


# --------------------------------------------------------------------------------------------- loading


def load_yaml(path: str | Path, *, display_path: str | None = None) -> SourceDoc:
    """Load one YAML mapping document, or raise SpecError with positioned diagnostics."""
    shown = display_path or str(path)
    raw = _read_bytes(Path(path), shown)
    text = _decode(raw, shown)
    _reject_tabs(text, shown)
    node = _parse(text, shown)
    if node is None:
        raise SpecError(
            [Diagnostic(shown, 1, 1, "error", "the file is empty; expected a YAML mapping", "load/empty")]
        )
    doc = SourceDoc(shown, text, None, sha256=hashlib.sha256(raw).hexdigest())
    doc.data = _Converter(doc).convert(node, ())
    if not isinstance(doc.data, dict):
        line, col = _root_position(node, text)
        raise SpecError(
            [
                Diagnostic(
                    shown, line, col, "error", "the top level must be a mapping of keys", "load/not-mapping"
                )
            ]
        )
    return doc


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        raw = read_limited(path, kind="YAML file")
    except UnreadableFile as exc:
        raise SpecError([Diagnostic(shown, 1, 1, "error", str(exc), exc.rule)]) from None
    if b"\0" in raw:
        message = "the file contains NUL bytes: it looks binary, not YAML"
        raise SpecError([Diagnostic(shown, 1, 1, "error", message, "load/binary")])
    return raw


def _decode(raw: bytes, shown: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        message = f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save it as UTF-8"
        raise SpecError([Diagnostic(shown, line, col, "error", message, "load/encoding")]) from None
    return text.removeprefix("\ufeff")


def _reject_tabs(text: str, shown: str) -> None:
    diagnostics = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            message = "a tab is used for indentation; YAML allows only spaces"
            diagnostics.append(
                Diagnostic(shown, number, indent.index("\t") + 1, "error", message, "load/tab")
            )
    if diagnostics:
        raise SpecError(diagnostics)


def _parse(text: str, shown: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        documents = list(yaml.load_all(text))
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        key = str(exc.problem).split('"')[1] if '"' in str(exc.problem) else "a key"
        first = exc.context_mark.line + 1 if exc.context_mark else None
        message = f"duplicate key '{key}'" + (
            f" (the mapping starting at line {first} already has it)" if first else ""
        )
        raise SpecError(
            [Diagnostic(shown, mark.line + 1, mark.column + 1, "error", message, "load/duplicate-key")]
        ) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark:
            started = exc.context_mark
            problem += f" ({exc.context} that starts at line {started.line + 1}, column {started.column + 1})"
        raise SpecError(
            [Diagnostic(shown, line, col, "error", f"YAML syntax error: {problem}", "load/syntax")]
        ) from None
    except (YAMLError, RecursionError, ValueError, TypeError) as exc:
        message = f"cannot parse YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        raise SpecError([Diagnostic(shown, 1, 1, "error", message, "load/syntax")]) from None
    if len(documents) > 1:
        message = f"the file holds {len(documents)} YAML documents ('---'); expected exactly one"
        line, col = _second_document_start(yaml, text)
        raise SpecError([Diagnostic(shown, line, col, "error", message, "load/multiple-documents")])
    return documents[0] if documents else None


def _root_position(node: Any, text: str) -> tuple[int, int]:
    try:
        return (node.lc.line + 1, node.lc.col + 1)
    except AttributeError:  # a bare scalar carries no position: use the first line that is not a comment
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith(("#", "---")):
                return (number, len(line) - len(line.lstrip()) + 1)
        return (1, 1)


def _second_document_start(yaml: Any, text: str) -> tuple[int, int]:
    """Where the second document begins: its '---' line, else its first node."""
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if line.startswith("---"):
            return (number, 1)
    second = list(yaml.compose_all(text))[1]
    return (second.start_mark.line + 1, second.start_mark.column + 1)


class _Converter:
    """Turns ruamel's round-trip nodes into plain dict/list/scalars, recording positions on the way."""

    def __init__(self, doc: SourceDoc):
        self.doc = doc
        self.nodes = 0
        self.active: set[int] = set()  # ids of containers being converted, to catch recursive aliases

    def convert(self, node: Any, path: JsonPath) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            # the top-level key whose value explodes is the place to look; deeper nodes repeat its aliases
            line, col = self.doc.position(path[:1], key=True)
            message = f"the document expands to more than {MAX_NODES} nodes (aliases used as a 'YAML bomb'?)"
            raise SpecError([Diagnostic(self.doc.path, line, col, "error", message, "load/too-many-nodes")])
        if isinstance(node, Mapping | list):
            if id(node) in self.active:
                line, col = self.doc.position(path)
                message = "an alias refers to a node that contains itself (recursive anchor)"
                raise SpecError(
                    [Diagnostic(self.doc.path, line, col, "error", message, "load/recursive-alias")]
                )
            self.active.add(id(node))
            try:
                return self._mapping(node, path) if isinstance(node, Mapping) else self._sequence(node, path)
            finally:
                self.active.discard(id(node))
        return _scalar(node)

    def _mapping(self, node: Mapping, path: JsonPath) -> dict:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                line, col = self._key_position(node, key, path)
                message = f"mapping keys must be strings, got {_type_name(_scalar(key))} {key!r}; quote it"
                raise SpecError(
                    [Diagnostic(self.doc.path, line, col, "error", message, "load/non-string-key")]
                )
            child = (*path, str(key))
            self.doc.key_positions[child] = self._key_position(node, key, path)
            self.doc.value_positions[child] = self._value_position(node, key, child)
            out[str(key)] = self.convert(value, child)
        return out

    def _sequence(self, node: list, path: JsonPath) -> list:
        out = []
        for index, value in enumerate(node):
            child = (*path, index)
            try:
                line, col = node.lc.item(index)  # type: ignore[attr-defined]
                self.doc.value_positions[child] = (line + 1, col + 1)
            except (AttributeError, KeyError, TypeError, IndexError):
                self.doc.value_positions[child] = self.doc.position(path)
            out.append(self.convert(value, child))
        return out

    def _key_position(self, node: Any, key: Any, path: JsonPath) -> tuple[int, int]:
        try:
            line, col = node.lc.key(key)
            return (line + 1, col + 1)
        except (AttributeError, KeyError, TypeError):
            return self.doc.position(path)  # a key merged in with '<<' has no position of its own

    def _value_position(self, node: Any, key: Any, child: JsonPath) -> tuple[int, int]:
        try:
            line, col = node.lc.value(key)
            return (line + 1, col + 1)
        except (AttributeError, KeyError, TypeError):
            return self.doc.key_positions[child]


def _scalar(value: Any) -> Any:
    """ruamel's scalar subclasses -> plain str/int/float/bool/None; dates become ISO strings."""
    if value is None or isinstance(value, bool):
        return value if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value)


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
        got = f"{_type_name(error.instance)} {_short(error.instance)}"
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
        suggestion = did_you_mean(key, known)
        message += suggestion if suggestion else (f"; expected one of: {', '.join(known)}" if known else "")
        out.append(doc.diagnostic((*path, key), message, "schema/unknown-key", key=True))
    return out


def _type_name(value: Any) -> str:
    return {
        type(None): "null",
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
    }.get(type(value), type(value).__name__)


def _article(name: str) -> str:
    pretty = {"object": "mapping", "array": "list", "null": "null"}.get(name, name)
    return pretty if pretty == "null" else ("an " if pretty[0] in "aeiou" else "a ") + pretty


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kebab(name: str) -> str:
    return "".join("-" + c.lower() if c.isupper() else c for c in name)
