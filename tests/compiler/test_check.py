"""check(): the stages run in order, each reports all its errors, and no input makes it raise."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.lint.check import check
from runtime.core.yamlfile import load_yaml

FULL = Path(__file__).parents[1] / "specs" / "full.yaml"
DATA = load_yaml(FULL).data


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_spec_gives_the_model_and_no_errors():
    result = check(FULL)
    assert result.app is not None and result.doc is not None
    assert not result.has_errors
    assert result.app.spec_path == str(FULL)
    assert len(result.app.spec_sha256) == 64


def test_a_load_error_stops_before_the_schema(tmp_path):
    result = check(write(tmp_path, "version: 1\nversion: 2\n"))
    assert [d.rule for d in result.diagnostics] == ["load/duplicate-key"]
    assert result.doc is None and result.app is None and result.has_errors


def test_schema_errors_are_all_reported_and_stop_before_the_lint(tmp_path):
    text = FULL.read_text(encoding="utf-8")
    text = (
        text.replace("cpu: 32", "cpus: 32")
        .replace("timeout: 24h", "timeout: 1 day")
        .replace("A100-80GB", "X")
    )
    result = check(write(tmp_path, text))
    assert sorted(d.rule for d in result.diagnostics) == ["schema/pattern", "schema/unknown-key"]
    assert result.app is None  # the unknown GPU 'X' is a lint finding: the lint did not run
    assert result.diagnostics == sorted(result.diagnostics)


def test_warnings_alone_are_not_errors(tmp_path):
    text = FULL.read_text(encoding="utf-8").replace("    timeout: 1h\n", "", 1)
    result = check(write(tmp_path, text))
    assert "timeout-missing" in {d.rule for d in result.diagnostics}
    assert not result.has_errors and result.app is not None


def paths(node, prefix=()):
    """Every JSON path of a value in ``node``."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, (*prefix, index))


PATHS = [path for path in paths(DATA) if path]
SCALARS = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.sampled_from(
        ["H100:9", "a10g:4", "0s", "24h", "1.5GiB", "/tmp", "x/", "../data", "runtime.x:y", "class"]
    ),
)
VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=8), SCALARS, max_size=3)
)


def replaced(data, path, value):
    copy = json.loads(json.dumps(data))
    node = copy
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copy


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_no_value_anywhere_makes_check_raise(tmp_path, changes):
    data = DATA
    for path, value in changes:
        try:
            data = replaced(data, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    result = check(write(tmp_path, json.dumps(data, ensure_ascii=True)))
    assert result.diagnostics == sorted(result.diagnostics)
    assert result.has_errors or result.app is not None
    assert all(d.line >= 1 and d.col >= 1 and d.rule for d in result.diagnostics)


def test_the_spec_is_read_once_so_a_fifo_is_hashed_as_it_was_read(tmp_path):
    """check() used to read the spec a second time to hash it: from a FIFO that second read waits for another
    writer (mtc hung) and hashes whatever it writes. Here a second writer offers other bytes for 5 s."""
    fifo = tmp_path / "deployment.yaml"
    os.mkfifo(fifo)
    content = FULL.read_bytes()

    def feed() -> None:
        with open(fifo, "wb") as handle:
            handle.write(content)
        time.sleep(0.5)  # the loader has seen the end of the file and closed it by now
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # fails while no one reads
            except OSError:
                time.sleep(0.05)
                continue
            os.write(descriptor, b"version: 1\n")
            os.close(descriptor)
            return

    threading.Thread(target=feed, daemon=True).start()
    result = check(fifo)
    assert result.app is not None and result.app.spec_sha256 == hashlib.sha256(content).hexdigest()
