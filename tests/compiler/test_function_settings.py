"""single_use_containers, startup_timeout, block_network and gpu `any`: rendered as Modal's keywords, priced
and diffed so a reviewer sees them; keys Modal renamed get the current key, not a look-alike."""

from __future__ import annotations

import json

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import decorator_keywords

# A10 is the dearest GPU `any` may land on: 0.000306 $/s = 1.1016 $/h; 1 core 0.04716, 1 GiB 0.007992
ANY_HOURLY = 1.1016 + 0.04716 + 0.007992

BASE = """\
version: 1
app: {name: settings-test}
functions:
  job:
    run: platform:platform
    cpu: 1
    memory: 1GiB
    timeout: 1h
"""
SETTINGS = """\
    gpu: any
    startup_timeout: 15m
    single_use_containers: true
    block_network: true
"""


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_settings_become_modal_keywords(tmp_path):
    result = check(write(tmp_path, "spec.yaml", BASE + SETTINGS))
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    keywords = decorator_keywords(render(result.app), "job")
    assert keywords["gpu"] == "any"
    assert keywords["single_use_containers"] is True and keywords["block_network"] is True
    assert "startup_timeout=15 * 60" in render(result.app)


def test_gpu_any_is_priced_as_the_dearest_gpu_it_may_land_on(capsys, tmp_path):
    spec = write(tmp_path, "spec.yaml", BASE + SETTINGS)
    code, out, _ = mtc(capsys, "plan", spec, "--format", "json")
    assert code == 0
    (row,) = json.loads(out)["functions"]
    assert row["hourly_usd"] == pytest.approx(ANY_HOURLY)
    assert row["any_priced_as"] == "A10"
    code, out, err = mtc(capsys, "plan", spec)
    assert "any (as A10)" in out
    assert "gpu any: Modal picks one of T4, L4, A10 by availability; priced as the dearest, A10" in out + err


def test_diff_shows_each_setting(capsys, tmp_path):
    old, new = write(tmp_path, "old.yaml", BASE), write(tmp_path, "new.yaml", BASE + SETTINGS)
    code, out, _ = mtc(capsys, "diff", old, new)
    assert code == 2
    lines = out.splitlines()
    for expected in (
        "+ job.gpu: any",
        "+ job.startup_timeout: 900 s",
        "+ job.single_use_containers: True",
        "+ job.block_network: True",
    ):
        assert expected in lines, (expected, lines)


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("max_inputs: 1", "single_use_containers: true"),
        ("concurrency_limit: 4", "max_containers"),
        ("keep_warm: 1", "min_containers"),
        ("container_idle_timeout: 60", "scaledown_window"),
        ("allow_concurrent_inputs: 10", "@modal.concurrent"),
        ("_experimental_boost: true", "_experimental_ options are not part of the spec"),
    ],
)
def test_a_key_modal_renamed_gets_its_replacement_not_a_look_alike(tmp_path, key, hint):
    result = check(write(tmp_path, "spec.yaml", BASE + f"    {key}\n"))
    (diagnostic,) = result.diagnostics
    assert diagnostic.rule == "schema/unknown-key" and diagnostic.line == 9
    assert hint in diagnostic.message and "did you mean" not in diagnostic.message


def test_a_plain_typo_still_gets_a_spelling_match(tmp_path):
    (diagnostic,) = check(write(tmp_path, "spec.yaml", BASE + "    blok_network: true\n")).diagnostics
    assert "did you mean 'block_network'?" in diagnostic.message


@pytest.mark.parametrize("value", ["0", "25h"])
def test_startup_timeout_outside_modals_range_is_an_error(tmp_path, value):
    result = check(write(tmp_path, "spec.yaml", BASE + f"    startup_timeout: {value}\n"))
    (diagnostic,) = [d for d in result.diagnostics if d.rule == "startup-timeout-range"]
    assert diagnostic.line == 9 and "outside Modal's 1s..24h" in diagnostic.message
