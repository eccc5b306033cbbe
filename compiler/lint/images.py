"""Rules on images: references to them, what they build from, and the local folders and Python packages
they ship (:mod:`compiler.lint.packages` checks that they install what the code imports)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import is_dir, unknown_name
from compiler.spec import targets
from compiler.spec.ir import Function
from runtime.core.diagnostics import Diagnostic

CUDA_BUILT_PACKAGES = re.compile(r"\b(mamba[-_]ssm|causal[-_]conv1d)\b", re.IGNORECASE)


@rule(
    "ref-image", ERROR, "`image:` names an image declared under `images`", "declare the image or fix the name"
)
def _ref_image(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.image is not None and fn.image not in ctx.app.images:
        yield ctx.at_field("ref-image", fn, "image", unknown_name("image", fn.image, ctx.app.images))


@rule(
    "mamba-needs-devel",
    WARNING,
    "an image that builds mamba-ssm or causal-conv1d starts from a CUDA -devel image (they need nvcc)",
    "use from: nvidia/cuda:<version>-devel-<os>, e.g. nvidia/cuda:12.1.0-devel-ubuntu22.04",
    scope="app",
)
def _mamba_needs_devel(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        if _is_cuda_devel(image.base):
            continue
        for index, step in enumerate(image.steps):
            found = CUDA_BUILT_PACKAGES.search(" ".join(_strings(step.value)))
            if step.kind in ("pip", "run") and found:
                message = (
                    f"image '{image.name}' installs {found.group(1)} but starts from '{image.base}', "
                    "which has no nvcc; the build fails or falls back to slow code"
                )
                yield ctx.at("mamba-needs-devel", ("images", image.name, "steps", index, step.kind), message)


def _is_cuda_devel(base: str) -> bool:
    return "cuda" in base.lower() and "devel" in base.lower()


def _strings(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []


@rule(
    "local-path-missing",
    ERROR,
    "every add_local directory exists (relative to the spec's folder) and every add_local Python package is "
    "found (in the spec's folder or a parent up to the project root, or installed)",
    "fix the path: a relative one starts at the folder of the spec file",
    scope="app",
)
def _local_path_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        base = ("images", image.name, "add_local")
        for local, _ in image.local_dirs:
            if not is_dir(ctx.root / local):
                message = f"image '{image.name}': local directory '{local}' does not exist in {ctx.root}"
                yield ctx.at("local-path-missing", (*base, "dirs", local), message, key=True)
        for index, module in enumerate(image.local_python):
            if targets.locate(module, ctx.root) is None:
                message = (
                    f"image '{image.name}': Python package '{module}' is not found in {ctx.root}, its "
                    "parents up to the project root, or the installed packages"
                )
                yield ctx.at("local-path-missing", (*base, "python", index), message)
