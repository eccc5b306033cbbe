"""Cross-file lint rules: deployment.yaml functions against the training configs and code they run."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import numpy as np
import pytest

import compiler.lint.configs
from compiler import lint
from compiler.lint.check import check

CROSS_FILE_RULES = (
    "workers-vs-cpu",
    "memory-vs-data",
    "config-not-shipped",
    "config-missing",
    "config-invalid",
    "config-dir-read-only",
    "image-missing-package",
)

SPEC = """\
version: 1
app: {{name: cross-file}}
images:
  base:
    from: debian_slim
    python: "3.11"
    steps:
      - pip: [pyyaml, "torch==2.2.2"]
      - workdir: /app
    add_local:
      python: [pkg]
      dirs: {{.: /app/specs}}
volumes:
  results: {{volume: cross-results}}
defaults: {{image: base, timeout: 1h, volumes: {{/results: results}}}}
functions:
  train:
    run: pkg.job:main
    args: {{config: {config}}}
    cpu: {cpu}
    memory: {memory}
{gpu}{extra}"""

CONFIG = """\
output_dir: /results/runs
data:
  format: synthetic
  loader:
    num_workers: {workers}
{data_extra}"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(
        textwrap.dedent(
            """\
            import os
            import yaml
            from pkg import helper
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None

            def main(config):
                import sklearn
            """
        )
    )
    (tmp_path / "pkg" / "helper.py").write_text(
        "import requests\nfrom torch.utils.tensorboard import SummaryWriter\n"
    )
    return tmp_path


def lint_of(
    project,
    *,
    config="specs/train.yaml",
    gpu="    gpu: T4\n",
    cpu=32,
    memory="64GiB",
    workers=0,
    data_extra="",
    extra="",
):
    (project / "specs" / "train.yaml").write_text(CONFIG.format(workers=workers, data_extra=data_extra))
    spec = project / "specs" / "deployment.yaml"
    spec.write_text(SPEC.format(config=config, gpu=gpu, cpu=cpu, memory=memory, extra=extra))
    result = check("specs/deployment.yaml")
    assert result.app is not None, result.diagnostics  # the spec itself is valid: the lint rules ran
    return result.diagnostics


def by_rule(diagnostics, rule_id):
    return [d for d in diagnostics if d.rule == rule_id]


def test_rules_are_registered_with_ids_summaries_and_fixes():
    for rule_id in CROSS_FILE_RULES:
        assert lint.RULES[rule_id].summary and lint.RULES[rule_id].fix


def test_workers_vs_cpu_warns_at_cpu_with_what_to_set(project):
    found = by_rule(lint_of(project, cpu=8, workers=8), "workers-vs-cpu")
    assert len(found) == 1
    warning = found[0]
    assert (warning.path, warning.line, warning.severity) == ("specs/deployment.yaml", 20, "warning")
    assert "specs/train.yaml:5" in warning.message and "set num_workers to 2 or cpu to 32" in warning.message
    assert not by_rule(lint_of(project, cpu=32, workers=8), "workers-vs-cpu")
    assert not by_rule(lint_of(project, cpu=1, workers=0), "workers-vs-cpu")
    assert not by_rule(lint_of(project, gpu="", cpu=8, workers=8), "workers-vs-cpu")  # no GPU to starve


def test_a_warning_is_silenced_per_function_with_a_reason(project):
    extra = "    lint: {ignore: {workers-vs-cpu: the loader is I/O bound}}\n"
    assert not by_rule(lint_of(project, cpu=8, workers=8, extra=extra), "workers-vs-cpu")


def test_memory_vs_data_errors_when_kept_splits_cannot_fit(project):
    data_extra = "  in_memory: [train]\n  synthetic: {n_train: 100000, channels: 19, length: 2560}\n"
    found = by_rule(lint_of(project, memory="4GiB", data_extra=data_extra), "memory-vs-data")
    assert len(found) == 1 and found[0].severity == "error" and found[0].line == 21
    # 100000 windows x (19 x 2560 float32 + one int64 label) = 19,456,800,000 bytes = 18,556 MiB (rounded up)
    assert "18,556 MiB" in found[0].message and "4,096 MiB" in found[0].message
    assert not by_rule(lint_of(project, memory="20GiB", data_extra=data_extra), "memory-vs-data")
    assert not by_rule(
        lint_of(project, memory="4GiB", data_extra=data_extra.replace("[train]", "[val]")), "memory-vs-data"
    )


def test_memory_vs_data_reads_npz_headers(project):
    folder = project / "specs" / "eeg"
    folder.mkdir()
    np.savez(
        folder / "a_windows.npz",
        windows=np.zeros((700, 19, 2560), np.float32),
        labels=np.zeros(700, np.int64),
    )
    data_extra = "  in_memory: true\n"
    config_text = CONFIG.replace("format: synthetic", "format: npz\n  train: specs/eeg")
    lint_of(project)  # writes the spec
    (project / "specs" / "train.yaml").write_text(config_text.format(workers=0, data_extra=data_extra))
    spec = project / "specs" / "deployment.yaml"
    spec.write_text(spec.read_text().replace("memory: 64GiB", "memory: 128MiB"))
    found = by_rule(check("specs/deployment.yaml").diagnostics, "memory-vs-data")
    # 700 x 19 x 2560 x 4 bytes + 700 x 8 bytes = 136,197,600 bytes = 130 MiB (rounded up)
    assert len(found) == 1 and "130 MiB" in found[0].message


def test_config_not_shipped(project):
    found = by_rule(lint_of(project, config="configs/train.yaml"), "config-not-shipped")
    assert len(found) == 1 and found[0].severity == "error" and found[0].line == 19
    assert "/app/configs/train.yaml" in found[0].message and "/app/specs" in found[0].message
    assert not by_rule(lint_of(project, config="/app/specs/train.yaml"), "config-not-shipped")
    assert not by_rule(lint_of(project, config="/results/train.yaml"), "config-not-shipped")


def test_config_invalid_points_into_the_config(project):
    found = by_rule(lint_of(project, data_extra="  in_ram: true\n"), "config-invalid")
    assert len(found) == 1
    assert (found[0].path, found[0].line) == ("specs/train.yaml", 6) and "in_ram" in found[0].message
    (project / "specs" / "binary.yaml").write_bytes(b"\0\1")
    unreadable = by_rule(lint_of(project, config="specs/binary.yaml"), "config-invalid")
    assert len(unreadable) == 1 and unreadable[0].path == "specs/deployment.yaml"
    assert "training config specs/binary.yaml" in unreadable[0].message and "binary" in unreadable[0].message


def test_config_missing_is_a_warning_at_the_arg(project):
    diagnostics = lint_of(project, config="specs/nope.yaml")
    missing = by_rule(diagnostics, "config-missing")
    assert len(missing) == 1 and missing[0].severity == "warning"
    assert (missing[0].path, missing[0].line) == ("specs/deployment.yaml", 19)
    assert str(project / "specs" / "nope.yaml") in missing[0].message
    assert not by_rule(diagnostics, "config-invalid")


def test_image_missing_package_follows_project_imports_and_skips_optional_ones(project):
    found = by_rule(lint_of(project), "image-missing-package")
    missing = sorted(d.message.split("'")[3] for d in found)
    assert missing == ["requests", "scikit-learn", "tensorboard"]
    tensorboard = next(d for d in found if "'tensorboard'" in d.message)
    assert "pkg/helper.py:2" in tensorboard.message  # the import in a try/except ImportError does not count


READ_ONLY_DATA = "    volumes: {/results: results, /data: raw}\n"
RAW = "  raw: {bucket: raw-data, read_only: true}\n"


def lint_with_read_only_data(project, data_extra="", output_dir="/results/runs"):
    """The diagnostics of a spec that mounts the read-only bucket `raw` on /data, and the spec's text."""
    lint_of(project, extra=READ_ONLY_DATA)  # writes the spec; the volume `raw` is declared next
    spec = project / "specs" / "deployment.yaml"
    spec.write_text(spec.read_text().replace("defaults:", RAW + "defaults:"))
    config = CONFIG.format(workers=0, data_extra=data_extra).replace("/results/runs", output_dir)
    (project / "specs" / "train.yaml").write_text(config)
    return spec.read_text(), check("specs/deployment.yaml").diagnostics


def test_cache_dir_on_a_read_only_volume_is_an_error_at_the_mount(project):
    text, diagnostics = lint_with_read_only_data(project, "  cache_dir: /data/../data/cache\n")
    (found,) = by_rule(diagnostics, "config-dir-read-only")
    assert found.severity == "error" and found.path == "specs/deployment.yaml"
    assert text.splitlines()[found.line - 1][found.col - 1 :].startswith("raw}")
    assert "data.cache_dir /data/../data/cache (specs/train.yaml:6) is on volume 'raw'" in found.message
    assert "mounted read-only at /data" in found.message
    _, diagnostics = lint_with_read_only_data(project, "  cache_dir: /results/cache\n")
    assert not by_rule(diagnostics, "config-dir-read-only")


def test_output_dir_on_a_read_only_volume_is_an_error(project):
    _, diagnostics = lint_with_read_only_data(project, output_dir="/data/runs")
    (found,) = by_rule(diagnostics, "config-dir-read-only")
    assert "output_dir /data/runs (specs/train.yaml:1)" in found.message


def cached_split_meta(project: Path, monkeypatch, text: str) -> None:
    """A cached train split's meta.json where the local backend keeps the results volume."""
    monkeypatch.setenv("MTC_VOLUMES_DIR", str(project / "volumes"))
    meta = project / "volumes" / "cross-results" / "cache" / "train-abc" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(text)


def test_memory_vs_data_reads_the_cache_where_the_local_backend_keeps_the_volume(project, monkeypatch):
    cached_split_meta(project, monkeypatch, '{"windows_bytes": 3221225472, "labels_bytes": 0}')
    data = "  in_memory: [train]\n  cache_dir: /results/cache\n"
    lint_of(project, memory="2GiB")
    config = CONFIG.replace("format: synthetic", "format: npz\n  train: /data/train")
    (project / "specs" / "train.yaml").write_text(config.format(workers=0, data_extra=data))
    (found,) = by_rule(check("specs/deployment.yaml").diagnostics, "memory-vs-data")
    assert "train 3,072 MiB" in found.message


def test_a_damaged_cache_or_npz_leaves_the_size_unknown_without_a_traceback(project, monkeypatch):
    cached_split_meta(project, monkeypatch, '{"windows_bytes": "lots"')
    (project / "specs" / "eeg").mkdir()
    (project / "specs" / "eeg" / "a_windows.npz").write_bytes(b"PK\x03\x04 not really a zip")
    config_text = CONFIG.replace("format: synthetic", "format: npz\n  train: specs/eeg")
    data_extra = "  in_memory: true\n  cache_dir: /results/cache\n"
    lint_of(project)
    (project / "specs" / "train.yaml").write_text(config_text.format(workers=0, data_extra=data_extra))
    result = check("specs/deployment.yaml")
    assert result.app is not None and not by_rule(result.diagnostics, "memory-vs-data")


def test_every_cross_file_rule_is_in_the_readme_table():
    readme = (Path(__file__).resolve().parents[2] / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    for rule_id in CROSS_FILE_RULES:
        assert f"| `{rule_id}` | {lint.RULES[rule_id].severity} |" in readme, rule_id


def test_the_lint_reads_the_schema_the_runtime_validates_with():
    from runtime import config

    assert compiler.lint.configs.TRAINING_SCHEMA is config.SCHEMA


@pytest.mark.parametrize(
    "array",
    [np.zeros((3, 19, 7), "<f4"), np.zeros((5,), ">i8"), np.zeros((2, 2), "|b1"), np.zeros((0, 4), "<c16")],
    ids=["f4", "big-endian-i8", "bool", "empty-complex"],
)
@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_npy_sizes_are_read_from_the_header_as_numpy_writes_it(array, version):
    from numpy.lib import format as npy

    from compiler.lint.datasize import _npy_array_bytes

    stream = io.BytesIO()
    npy.write_array(stream, array, version=version)
    stream.seek(0)
    assert _npy_array_bytes(stream) == array.nbytes


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x93NUMPY\x09\x00", b"\x93NUMPY\x01\x00\xff\xff", b"\x93NUMPY\x01\x00\x10\x00__import__('os')"],
    ids=["empty", "unknown-version", "header-too-long", "not-a-literal"],
)
def test_npy_headers_that_cannot_be_sized_are_refused(raw):
    from compiler.lint.datasize import _npy_array_bytes

    with pytest.raises((ValueError, SyntaxError)):
        _npy_array_bytes(io.BytesIO(raw))
