"""The deployment schema: a valid Draft 2020-12 schema, documented on every key, with readable messages.

Both schemas ship inside the package (``compiler/spec/schemas/``, ``runtime/config_schema.py``); the copies in
``specs/schema/`` that editors point at must stay equal to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.lint.check import check
from compiler.spec.schema import deployment_schema, deployment_schema_text
from runtime import config_schema

SCHEMA = deployment_schema()
EDITOR_COPIES = Path(__file__).parents[2] / "specs" / "schema"
# file in specs/schema -> (the packaged text, the command that rewrites the file from it)
PACKAGED = {
    "deployment.schema.json": (deployment_schema_text(), "mtc schema"),
    "train.schema.json": (config_schema.TEXT, "mtc schema --training"),
}
FULL = Path(__file__).parents[1] / "specs" / "full.yaml"
REFERENCE = Path(__file__).parents[2] / "docs" / "spec.md"


def walk(node, path=()):
    """Every (path, schema) pair in the schema, depth first."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_the_editor_copy_equals_the_packaged_schema(name):
    packaged, command = PACKAGED[name]
    editor_copy = json.loads((EDITOR_COPIES / name).read_text(encoding="utf-8"))
    stale = f"specs/schema/{name} differs from the packaged schema: run `{command} > specs/schema/{name}`"
    assert editor_copy == json.loads(packaged), stale


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_schema_passes_the_metaschema_check(name):
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--check-metaschema", str(EDITOR_COPIES / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_identifies_itself():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"] and SCHEMA["title"]


def test_every_property_and_definition_has_a_description():
    missing = [
        "/".join(map(str, (*path, "properties", name)))
        for path, node in walk(SCHEMA)
        for name, sub in node.get("properties", {}).items()
        if path[-1:] != ("properties",) and "description" not in sub
    ]
    missing += [f"$defs/{name}" for name, sub in SCHEMA["$defs"].items() if "description" not in sub]
    assert missing == []


def test_every_object_closes_its_keys():
    open_objects = [
        "/".join(map(str, path))
        for path, node in walk(SCHEMA)
        if node.get("type") == "object"
        and "additionalProperties" not in node
        and path[-1:] != ("properties",)
    ]
    assert open_objects == []


def test_every_pattern_and_alternative_says_what_it_expects():
    vague = [
        "/".join(map(str, path))
        for path, node in walk(SCHEMA)
        if path[-1:] != ("properties",)
        and ("pattern" in node or ("oneOf" in node and "type" not in node))
        and "x-expected" not in node
    ]
    assert vague == []


def test_every_function_setting_is_in_the_reference():
    reference = REFERENCE.read_text(encoding="utf-8")
    for name in SCHEMA["$defs"]["functionSettings"]["properties"]:
        assert f"`{name}`" in reference, name


def test_the_full_example_is_valid():
    result = check(FULL)
    assert not result.has_errors, [d.format() for d in result.diagnostics]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    gpu: A100-80GB\n",
            "    gpu: A100-80GB\n    gpus: 2\n",
            "unknown key 'gpus'; did you mean 'gpu'?",
        ),
        (
            "retries: 2",
            "retries: {max_retries: 2, max_dely: 5}",
            "unknown key 'max_dely'; did you mean 'max_delay'?",
        ),
        ('gpu: [a100, "H100:2"]', "gpu: [a100, 2]", "functions.evaluate.gpu[1]: expected a GPU such as"),
        ("timeout: 24h", "timeout: 1 day", "'1 day' is not a duration such as 90s, 5m, 2h, 1h30m"),
        ("memory: 131072", "memory: 128 gigs", "'128 gigs' is not a size such as"),
        ('python: "3.11"', "python: 3.10", 'expected a quoted Python version such as "3.11", got number 3.1'),
        ("{volume: mamba-results}", "{volume: mamba-results, bucket: b}", "either `volume: NAME`"),
        (
            "{volume: mamba-results}",
            "{volume: mamba-results, key_prefix: a/}",
            "'key_prefix' is only allowed",
        ),
        ("  image: cuda\n", "  image: cuda\n  run: x:y\n", "set `run` on each function, not in defaults"),
        (
            "{period: 24h}",
            "{period: 24h, cron: '0 3 * * *'}",
            "either `cron: EXPRESSION` or `period: DURATION`",
        ),
        ("version: 1", "version: 2", "expected 1, got 2"),
        ("  slim:\n", "  bad name:\n", "images: key 'bad name' is not an image name"),
        ("    from: debian_slim\n", "    from: debian_slim\n    base: cuda\n", "exactly one of `from`"),
        ("    from: debian_slim\n", "    python_version: x\n", "exactly one of `from`"),
        (
            "      - pip: [boto3]",
            "      - uv_pip: {packages: [boto3], extra_index: https://x}",
            "unknown key 'extra_index'; did you mean 'extra_index_url'?",
        ),
        ("      - pip: [boto3]", "      - pip: {index_url: https://x}", "missing required key 'packages'"),
        (
            "  secrets: [wandb-secret]\nimages",
            "  secrets: [{name: w, env: x}]\nimages",
            "unknown key 'env'; expected one of: name, environment",
        ),
        (
            '    python: "3.11"\n    steps:\n      - pip',
            "    context_dir: .\n    steps:\n      - pip",
            "context_dir",
        ),
        (
            "{volume: mamba-results}",
            "{volume: mamba-results, environment: 'a b'}",
            "a Modal environment name",
        ),
        (
            "secret: aws-s3-secret,",
            "secret: aws-s3-secret, environment: prod,",
            "'environment' is only allowed",
        ),
        ('dirs: {".": /app/specs}', "files: {train.yaml: app/train.yaml}", "an absolute path in the image"),
    ],
)
def test_schema_messages_say_what_was_expected(tmp_path, old, new, expected):
    text = FULL.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "deployment.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    messages = [d.message for d in check(path).diagnostics if d.severity == "error"]
    assert any(expected in message for message in messages), messages
