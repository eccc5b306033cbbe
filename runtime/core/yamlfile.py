"""The positioned YAML loader: plain Python data with the line and column of every key and value; refuses
duplicate keys, bad encodings, tabs, oversize files and alias bombs with positioned diagnostics.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.core.diagnostics import Diagnostic, JsonPath, SpecError, type_name
from runtime.core.files import UnreadableFile, read_limited

MAX_NODES = 100_000  # after alias expansion; bounds "billion laughs" documents


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
                message = f"mapping keys must be strings, got {type_name(_scalar(key))} {key!r}; quote it"
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
