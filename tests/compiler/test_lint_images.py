"""Lint rules on images built on images, pip steps, Dockerfiles, local files and secrets: each fires on its
mistake, at the line that declared it, and not on a clean spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from compiler.lint.check import check
from tests.compiler.test_lint import only, position

CLEAN = """\
version: 1
app: {name: demo, secrets: [wandb]}
images:
  cuda:
    from: nvidia/cuda:12.1.0-runtime-ubuntu22.04
    python: "3.11"
    steps:
      - pip: ["torch==2.2.2"]
    add_local: {files: {train.yaml: /root/train.yaml}}
  train:
    base: cuda
    steps:
      - uv_pip: {packages: [numpy], extra_index_url: "https://example.org/simple", pre: true}
  docker:
    from_dockerfile: docker/Dockerfile
    context_dir: docker
functions:
  train:
    run: platform:platform
    image: train
    timeout: 1h
    secrets: [{name: wandb, environment: staging}, hf]
  packaged:
    run: platform:platform
    image: docker
    timeout: 1h
"""

IMAGE_RULES = {
    "image-base",
    "image-from-name",
    "image-base-python",
    "pip-option-in-packages",
    "local-path-missing",
    "secret-duplicate",
    "mamba-needs-devel",
}


def findings(tmp_path: Path, text: str):
    (tmp_path / "train.yaml").write_text("{}\n", encoding="utf-8")
    (tmp_path / "docker").mkdir(exist_ok=True)
    (tmp_path / "docker" / "Dockerfile").write_text("FROM python:3.11-slim\n", encoding="utf-8")
    path = tmp_path / "deployment.yaml"
    path.write_text(text, encoding="utf-8")
    return [d for d in check(path).diagnostics if d.rule in IMAGE_RULES]


def test_the_clean_spec_has_no_findings(tmp_path):
    assert findings(tmp_path, CLEAN) == []


@pytest.mark.parametrize(
    ("old", "new", "rule", "needle", "words"),
    [
        ("base: cuda", "base: cdua", "image-base", "cdua", "unknown image 'cdua'; did you mean 'cuda'?"),
        (
            "    base: cuda\n",
            "    from: cuda\n",
            "image-from-name",
            "cuda\n    steps:\n      - uv_pip",
            "write `base: cuda`",
        ),
        (
            "    base: cuda\n",
            '    base: cuda\n    python: "3.12"\n',
            "image-base-python",
            '"3.12"',
            "has its Python",
        ),
        (
            'pip: ["torch==2.2.2"]',
            'pip: ["torch==2.2.2", "--extra-index-url=https://x"]',
            "pip-option-in-packages",
            '"--extra',
            "{packages: [...], extra_index_url: https://x}",
        ),
        (
            "packages: [numpy]",
            "packages: [numpy, -f https://wheels]",
            "pip-option-in-packages",
            "-f https",
            "find_links: URL",
        ),
        ("packages: [numpy]", "packages: [numpy, --pre]", "pip-option-in-packages", "--pre", "pre: true"),
        (
            "packages: [numpy]",
            "packages: [numpy --no-deps]",
            "pip-option-in-packages",
            "numpy --no-deps",
            'extra_options: "--no-deps"',
        ),
        ("train.yaml: /root", "absent.yaml: /root", "local-path-missing", "absent.yaml", "local file"),
        ("docker/Dockerfile", "docker/Dockerfil", "local-path-missing", "docker/Dockerfil", "local file"),
        ("context_dir: docker", "context_dir: dockr", "local-path-missing", "dockr", "local directory"),
        ("hf]", "wandb]", "secret-duplicate", "wandb]\n", "secret wandb is listed twice"),
    ],
)
def test_each_rule_fires_at_the_offending_value(tmp_path, old, new, rule, needle, words):
    text = CLEAN.replace(old, new, 1)
    assert text != CLEAN
    diagnostic = only(findings(tmp_path, text), rule)
    assert words in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == position(text, needle)


def test_a_cycle_of_bases_is_reported_on_each_image_in_it(tmp_path):
    text = CLEAN.replace("    from: nvidia/cuda:12.1.0-runtime-ubuntu22.04\n", "    base: train\n")
    found = [d for d in findings(tmp_path, text) if d.rule == "image-base"]
    assert [(d.line, d.col) for d in found] == [position(text, "train\n"), position(text, "cuda\n    steps")]
    assert "built on itself: cuda -> train -> cuda" in found[0].message


def test_a_child_image_is_checked_against_its_base_for_nvcc(tmp_path):
    text = CLEAN.replace("packages: [numpy]", "packages: [mamba-ssm]")
    diagnostic = only(findings(tmp_path, text), "mamba-needs-devel")
    assert "starts from 'nvidia/cuda:12.1.0-runtime-ubuntu22.04'" in diagnostic.message
    assert (diagnostic.line, diagnostic.col) == position(text, "{packages: [mamba-ssm]")
    devel = text.replace("-runtime-", "-devel-")
    assert findings(tmp_path, devel) == []


def test_a_function_on_a_child_image_has_the_packages_its_base_installs(tmp_path):
    text = CLEAN.replace(
        "    run: platform:platform\n    image: train", "    run: runtime.jobs:run\n    image: train"
    )
    package = tmp_path / "runtime"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "jobs.py").write_text("import torch\nimport numpy\nimport scipy\n\n\ndef run():\n    pass\n")
    text = text.replace("add_local: {files:", "add_local: {python: [runtime], files:")
    path = tmp_path / "deployment.yaml"
    findings(tmp_path, text)
    missing = [d.message for d in check(path).diagnostics if d.rule == "image-missing-package"]
    assert len(missing) == 1 and "'scipy'" in missing[0]


def test_from_debian_slim_is_modals_image_even_beside_an_image_named_so(tmp_path):
    text = CLEAN.replace("  docker:\n", "  debian_slim:\n    from: debian_slim\n  docker:\n")
    assert findings(tmp_path, text) == []
