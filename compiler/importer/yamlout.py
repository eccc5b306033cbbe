"""Write the imported spec as YAML with comments (ruamel.yaml: the one YAML library that places comments
next to keys and list items). Short lists and mappings of scalars are written in flow style, as the example
spec is; a comment meant for a key inside a flow collection goes above the collection instead."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

FLOW_WIDTH = 100
INDENT = 2

Path = tuple[Any, ...]


def to_yaml(spec: dict[str, Any], comments: list[tuple[Path, str]], header: str) -> str:
    """``comments``: (key path, text), each placed above the deepest block-style key of its path."""
    document = _commented(spec)
    placed: dict[tuple[int, Any], list[str]] = {}
    owners: dict[int, tuple[Any, Any, int]] = {}
    for path, text in comments:
        owner, key, depth = _anchor(document, path)
        placed.setdefault((id(owner), key), []).extend(text.splitlines())
        owners[id(owner)] = (owner, key, depth)
    for (owner_id, key), lines in placed.items():
        owner, _, depth = owners[owner_id]
        indent = depth * INDENT
        owner.yaml_set_comment_before_after_key(key, before="\n".join(lines), indent=indent)
    yaml = YAML()
    yaml.width = 4096
    yaml.indent(mapping=INDENT, sequence=INDENT * 2, offset=INDENT)
    yaml.representer.add_representer(type(None), _null)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return header + stream.getvalue()


def _null(representer: Any, _: None) -> Any:
    """``null`` written out (``note: null``), not an empty value."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _anchor(document: CommentedMap, path: Path) -> tuple[Any, Any, int]:
    """The collection and key the comment goes above: the deepest existing key of ``path`` not inside a flow
    collection, and its depth."""
    owner, key, depth = document, next(iter(document)), 0
    node: Any = document
    for level, step in enumerate(path):
        if not isinstance(node, CommentedMap | CommentedSeq) or _is_flow(node) or not _has(node, step):
            break
        owner, key, depth = node, step, level
        node = node[step]
    return owner, key, depth


def _has(node: Any, step: Any) -> bool:
    if isinstance(node, CommentedSeq):
        return isinstance(step, int) and 0 <= step < len(node)
    return step in node


def _is_flow(node: Any) -> bool:
    return bool(node.fa.flow_style())


def _commented(value: Any, path: Path = ()) -> Any:
    if isinstance(value, dict):
        mapping = CommentedMap((key, _commented(item, (*path, key))) for key, item in value.items())
        _maybe_flow(mapping, value, path)
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_commented(item, (*path, index)) for index, item in enumerate(value))
        _maybe_flow(sequence, value, path)
        return sequence
    return value


def _maybe_flow(node: CommentedMap | CommentedSeq, value: Any, path: Path) -> None:
    """Flow style for a short collection of scalars below a function, an image or a volume's own mapping."""
    items = value.values() if isinstance(value, dict) else value
    scalars = all(not isinstance(item, dict | list) or not item for item in items)
    deep_enough = len(path) >= 3 or (len(path) == 2 and (isinstance(value, list) or path[0] == "volumes"))
    if scalars and deep_enough and len(repr(value)) <= FLOW_WIDTH:
        node.fa.set_flow_style()
    else:
        node.fa.set_block_style()
