"""Lint rules: each one fires on its mistake, at the line that declared the value, and not on a clean spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from compiler import lint
from compiler.lint.check import check
from compiler.spec.resolve import resolve
from runtime.core.yamlfile import load_yaml

CLEAN = """\
version: 1
app: {name: demo, secrets: [wandb]}
images:
  cuda:
    from: nvidia/cuda:12.1.0-devel-ubuntu22.04
    python: "3.11"
    steps:
      - pip: ["mamba-ssm==2.2.2"]
volumes:
  results: {volume: demo-results}
  raw: {bucket: eeg, key_prefix: tusz/, read_only: true}
defaults:
  image: cuda
  cpu: 8
  memory: 32GiB
  timeout: 1h
functions:
  train:
    run: runtime.train:main
    args: {config: specs/train.yaml}
    gpu: A100-80GB
    timeout: 24h
    retries: 2
    volumes: {/data: raw, /results: results}
  cache:
    run: runtime.cache:populate
    volumes: {/data: raw}
profiles:
  debug:
    functions:
      train: {gpu: T4, timeout: 2h}
"""


def check_file(tmp_path: Path, text: str, profile: str | None = None):
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return check(path, profile).diagnostics


def diagnostics(tmp_path: Path, text: str, profile: str | None = None):
    """What check() reports, leaving out rules registered by other modules (they have their own tests)."""
    return [d for d in check_file(tmp_path, text, profile) if d.rule not in elsewhere()]


# the families that were the old core module's; the others have their own tests
CORE_FAMILIES = {m.__name__ for m in (lint.functions, lint.resources, lint.volumes, lint.images)}


def elsewhere() -> set[str]:
    return {rule.id for rule in lint.RULES.values() if rule.check.__module__ not in CORE_FAMILIES}


def position(text: str, needle: str, occurrence: int = 1) -> tuple[int, int]:
    """1-based line and column of the ``occurrence``-th ``needle`` in ``text``."""
    index = -1
    for _ in range(occurrence):
        index = text.index(needle, index + 1)
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def only(found, rule: str):
    matching = [d for d in found if d.rule == rule]
    assert len(matching) == 1, [d.format() for d in found]
    return matching[0]


def test_the_clean_spec_has_no_findings(tmp_path):
    assert diagnostics(tmp_path, CLEAN) == []
    assert diagnostics(tmp_path, CLEAN, "debug") == []


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle"),
    [
        ("gpu: A100-80GB", "gpu: A100-81GB", "gpu-unknown", "A100-81GB"),
        ("gpu: A100-80GB", "gpu: [H100, V100]", "gpu-unknown", "V100"),
        ("gpu: A100-80GB", 'gpu: "H100:9"', "gpu-count", '"H100:9"'),
        ("gpu: A100-80GB", 'gpu: "H100:0"', "gpu-count", '"H100:0"'),
        ("gpu: A100-80GB", 'gpu: "a10:5"', "gpu-count", '"a10:5"'),
        ("timeout: 24h", "timeout: 25h", "timeout-range", "25h"),
        ("timeout: 24h", "timeout: 0", "timeout-range", "0\n"),
        ("cpu: 8", "cpu: 0", "cpu-range", "0\n"),
        ("cpu: 8", "cpu: -2.5", "cpu-range", "-2.5"),
        ("memory: 32GiB", "memory: 64MiB", "memory-min", "64MiB"),
        ("image: cuda", "image: cdua", "ref-image", "cdua"),
        ("/results: results}", "/results: reslts}", "ref-volume", "reslts"),
        ("/results: results}", "results: results}", "mount-path", "results: results}"),
        ("/results: results}", "/tmp: results}", "mount-path", "/tmp"),
        ("/results: results}", "/data/: results}", "mount-duplicate", "/data/"),
        ("key_prefix: tusz/", "key_prefix: tusz", "bucket-prefix", "tusz,"),
        ("  cache:\n", "  populate-cache:\n", "function-name", "populate-cache"),
        ("  cache:\n", "  class:\n", "function-name", "class"),
        ("  cache:\n", "  app:\n", "function-name", "app:\n    run"),
        ("args: {config:", "args: {max-epochs:", "arg-name", "max-epochs"),
        ("    retries: 2\n", "    retries: 2\n    schedule: {period: 1h}\n", "schedule-with-args", "{period"),
        ("    retries: 2\n", "    retries: 2\n    nonpreemptible: true\n", "nonpreemptible-gpu", "true\n"),
        ("    retries: 2\n", "    min_containers: 3\n    max_containers: 2\n", "containers-range", "3\n"),
        ("    retries: 2\n", "    scaledown_window: 2h\n", "scaledown-range", "2h\n"),
        ("      train: {gpu", "      trian: {gpu", "profile-function", "trian"),
        (
            "    volumes: {/data: raw}\n",
            "    volumes: {/data: raw}\n    schedule: {cron: '0 3 * * *', timezone: Europe/Pariss}\n",
            "schedule-timezone",
            "Europe/Pariss",
        ),
    ],
)
def test_each_error_rule_fires_at_the_offending_value(tmp_path, old, new, rule, needle):
    text = CLEAN.replace(old, new, 1)
    assert text != CLEAN
    found = diagnostics(tmp_path, text)
    diagnostic = only(found, rule)
    assert diagnostic.severity == "error"
    assert (diagnostic.line, diagnostic.col) == position(text, needle)
    assert check(tmp_path / "deployment.yaml").has_errors


def test_unknown_gpu_lists_the_valid_types_and_a_suggestion(tmp_path):
    diagnostic = only(diagnostics(tmp_path, CLEAN.replace("A100-80GB", "a100-81gb")), "gpu-unknown")
    assert "did you mean 'A100-80GB'?" in diagnostic.message
    assert "T4, L4, A10, L40S" in diagnostic.message and "B200+" in diagnostic.message


def test_a_value_from_defaults_is_reported_once_at_the_defaults_line(tmp_path):
    text = CLEAN.replace("memory: 32GiB", "memory: 100MiB")
    diagnostic = only(
        diagnostics(tmp_path, text), "memory-min"
    )  # both functions inherit it: one place to fix
    assert (diagnostic.line, diagnostic.col) == position(text, "100MiB")
    assert "function" not in diagnostic.message


def test_a_value_from_the_selected_profile_is_reported_in_the_profile(tmp_path):
    text = CLEAN.replace("{gpu: T4, timeout: 2h}", '{gpu: "T4:9", timeout: 2h}')
    diagnostic = only(diagnostics(tmp_path, text, "debug"), "gpu-count")
    assert (diagnostic.line, diagnostic.col) == position(text, '"T4:9"')


def test_lint_without_a_profile_also_checks_every_profile(tmp_path):
    text = CLEAN.replace("{gpu: T4, timeout: 2h}", "{gpu: T5, timeout: 2h}")
    diagnostic = only(diagnostics(tmp_path, text), "gpu-unknown")
    assert diagnostic.message.endswith("(with --profile debug)")


def test_timeout_missing_is_a_warning_on_the_function_name(tmp_path):
    text = CLEAN.replace("  timeout: 1h\n", "", 1)
    found = diagnostics(tmp_path, text)
    diagnostic = only(found, "timeout-missing")
    assert diagnostic.severity == "warning" and "300 s" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == position(text, "cache:")
    assert [d for d in found if d.severity == "error"] == []


def test_checkpoint_volume_warns_when_a_long_gpu_run_has_nowhere_to_save(tmp_path):
    without = CLEAN.replace("volumes: {/data: raw, /results: results}", "volumes: {/data: raw}")
    diagnostic = only(diagnostics(tmp_path, without), "checkpoint-volume")
    assert diagnostic.severity == "warning" and "retries" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == position(without, "train:")
    assert not [d for d in diagnostics(tmp_path, CLEAN) if d.rule == "checkpoint-volume"]
    # a CPU-only function is not preempted the same way: no warning
    cpu_only = without.replace("    gpu: A100-80GB\n", "").replace("gpu: T4, ", "")
    assert not [d for d in diagnostics(tmp_path, cpu_only) if d.rule == "checkpoint-volume"]


def test_mamba_on_an_image_without_nvcc_is_a_warning_at_the_step(tmp_path):
    text = CLEAN.replace("nvidia/cuda:12.1.0-devel-ubuntu22.04", "nvidia/cuda:12.1.0-runtime-ubuntu22.04")
    diagnostic = only(diagnostics(tmp_path, text), "mamba-needs-devel")
    assert diagnostic.severity == "warning" and "mamba-ssm" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == position(text, '["mamba-ssm')
    slim = CLEAN.replace("nvidia/cuda:12.1.0-devel-ubuntu22.04", "debian_slim").replace(
        "mamba-ssm", "causal_conv1d"
    )
    assert "causal_conv1d" in only(diagnostics(tmp_path, slim), "mamba-needs-devel").message


def test_local_paths_are_checked_relative_to_the_project_folder(tmp_path):
    text = CLEAN.replace(
        'python: "3.11"\n',
        'python: "3.11"\n    add_local: {python: [pkg, absent], dirs: {specs: /app/specs, gone: /x}}\n',
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "specs").mkdir()
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    doc = load_yaml(path)
    found = [d for d in lint.lint(resolve(doc), doc, root=tmp_path) if d.rule == "local-path-missing"]
    assert [(d.line, d.col) for d in found] == [position(text, "absent"), position(text, "gone")]
    assert all(d.severity == "error" for d in found)  # Modal would fail to build the image


def test_a_warning_is_silenced_with_a_reason(tmp_path):
    text = CLEAN.replace("  timeout: 1h\n", "", 1)
    silenced = text.replace(
        "    volumes: {/data: raw}\n",
        "    volumes: {/data: raw}\n    lint: {ignore: {timeout-missing: quick copy}}\n",
    )
    assert only(diagnostics(tmp_path, text), "timeout-missing")
    assert diagnostics(tmp_path, silenced) == []
    file_wide = text + "lint: {ignore: {timeout-missing: every function here is quick}}\n"
    assert diagnostics(tmp_path, file_wide) == []


def test_an_error_cannot_be_silenced_and_saying_so_is_a_warning(tmp_path):
    text = CLEAN.replace("gpu: A100-80GB", 'gpu: "H100:9"\n    lint: {ignore: {gpu-count: "we know"}}')
    found = diagnostics(tmp_path, text)
    assert only(found, "gpu-count").severity == "error"
    warning = only(found, "lint-ignore")
    assert warning.severity == "warning" and "cannot be ignored" in warning.message
    assert (warning.line, warning.col) == position(text, "gpu-count:")


def test_ignoring_an_unknown_rule_suggests_the_right_id(tmp_path):
    text = CLEAN + "lint: {ignore: {timeout-mising: typo}}\n"
    warning = only(diagnostics(tmp_path, text), "lint-ignore")
    assert "did you mean 'timeout-missing'?" in warning.message
    assert (warning.line, warning.col) == position(text, "timeout-mising")


def test_every_rule_is_described_and_in_the_reference_table():
    reference = (Path(__file__).parents[2] / "docs" / "lint-rules.md").read_text("utf-8")
    core = [rule for rule in lint.RULES.values() if rule.id not in elsewhere()]
    assert len(core) >= 20
    for rule in core:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.id)
        assert rule.scope in ("function", "app")
        assert rule.summary and rule.fix
        assert f"| `{rule.id}` | {rule.severity} | {rule.summary} |" in reference, rule.id


def test_rules_from_another_module_can_register(tmp_path):
    @lint.rule("test-always", "warning", "fires on every function", "nothing to fix")
    def _always(fn, ctx):
        yield ctx.at_field("test-always", fn, "run", "hello")

    try:
        found = [d for d in check_file(tmp_path, CLEAN) if d.rule == "test-always"]
        assert sorted((d.line, d.col) for d in found) == sorted(
            [position(CLEAN, "runtime.train:main"), position(CLEAN, "runtime.cache:populate")]
        )
        with pytest.raises(ValueError, match="twice"):
            lint.rule("test-always", "warning", "again", "none")(_always)
    finally:
        del lint.RULES["test-always"]
