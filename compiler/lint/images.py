"""Rules on images: references to them, what they start from (a registry, a Dockerfile, another image of
the spec), and the local files and Python packages they ship (:mod:`compiler.lint.packages` checks that they
install what the code imports; :mod:`compiler.lint.pipsteps` checks their pip steps)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compiler.lint.registry import ERROR, WARNING, LintContext, rule
from compiler.lint.shared import unknown_name
from compiler.spec import targets
from compiler.spec.chains import in_cycle, parents_of
from compiler.spec.ir import PIP_KINDS, Function, Image, PipInstall
from runtime.core.diagnostics import Diagnostic
from runtime.core.files import path_test

CUDA_BUILT_PACKAGES = re.compile(r"\b(mamba[-_]ssm|causal[-_]conv1d)\b", re.IGNORECASE)


@rule(
    "ref-image", ERROR, "`image:` names an image declared under `images`", "declare the image or fix the name"
)
def _ref_image(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.image is not None and fn.image not in ctx.app.images:
        yield ctx.at_field("ref-image", fn, "image", unknown_name("image", fn.image, ctx.app.images))


@rule(
    "image-base",
    ERROR,
    "`base:` names another image declared under `images`, and following bases never comes back to an image",
    "fix the name, or start one image of the cycle `from:` a registry image",
    scope="app",
)
def _image_base(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        path = ("images", image.name, "base")
        if image.parent is None:
            continue
        if image.parent not in ctx.app.images:
            message = f"image '{image.name}': {unknown_name('image', image.parent, ctx.app.images)}"
            yield ctx.at("image-base", path, message)
        elif in_cycle(ctx.app, image.name):
            cycle = " -> ".join([image.name, *parents_of(ctx.app, image.name), image.name])
            yield ctx.at("image-base", path, f"image '{image.name}' is built on itself: {cycle}")


@rule(
    "image-from-name",
    ERROR,
    "`from:` is a registry image or debian_slim, not the name of an image of this spec",
    "write `base: NAME` to build on an image of this spec",
    scope="app",
)
def _image_from_name(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        if image.base in ctx.app.images and not image.is_debian_slim:
            message = (
                f"image '{image.name}': `from: {image.base}` would pull '{image.base}' from a registry, but "
                f"'{image.base}' is an image of this spec; write `base: {image.base}` to build on it"
            )
            yield ctx.at("image-from-name", ("images", image.name, "from"), message)


@rule(
    "image-base-python",
    ERROR,
    "an image built on another image (`base:`) sets no `python`: it has its base's",
    "remove `python:`, or set it on the base image",
    scope="app",
)
def _image_base_python(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        if image.parent is not None and image.python is not None:
            message = (
                f"image '{image.name}' is built on '{image.parent}' and has its Python; Modal cannot add "
                f"Python {image.python} to it here: remove `python:` or set it on the base image"
            )
            yield ctx.at("image-base-python", ("images", image.name, "python"), message)


@rule(
    "mamba-needs-devel",
    WARNING,
    "an image that builds mamba-ssm or causal-conv1d starts from a CUDA -devel image (they need nvcc)",
    "use from: nvidia/cuda:<version>-devel-<os>, e.g. nvidia/cuda:12.1.0-devel-ubuntu22.04",
    scope="app",
)
def _mamba_needs_devel(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        effective = ctx.app.effective_image(image.name)
        if effective is None or effective.dockerfile is not None or _is_cuda_devel(effective.base):
            continue  # a Dockerfile's base is not read here
        for index, step in enumerate(image.steps):  # the base image's own steps are its own finding
            found = CUDA_BUILT_PACKAGES.search(" ".join(_strings(step.value)))
            if step.kind in (*PIP_KINDS, "run") and found:
                message = (
                    f"image '{image.name}' installs {found.group(1)} but starts from '{effective.base}', "
                    "which has no nvcc; the build fails or falls back to slow code"
                )
                yield ctx.at("mamba-needs-devel", ("images", image.name, "steps", index, step.kind), message)


def _is_cuda_devel(base: str) -> bool:
    return "cuda" in base.lower() and "devel" in base.lower()


def _strings(value: Any) -> list[str]:
    if isinstance(value, PipInstall):
        return list(value.packages)
    return [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []


@rule(
    "local-path-missing",
    ERROR,
    "every add_local directory and file, `from_dockerfile` and `context_dir` exists (relative to the spec's "
    "folder) and every add_local Python package is found (in the spec's folder or a parent up to the "
    "project root, or installed)",
    "fix the path: a relative one starts at the folder of the spec file",
    scope="app",
)
def _local_path_missing(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        yield from _missing_sources(ctx, image)
        base = ("images", image.name, "add_local")
        for index, module in enumerate(image.local_python):
            if targets.locate(module, ctx.root) is None:
                message = (
                    f"image '{image.name}': Python package '{module}' is not found in {ctx.root}, its "
                    "parents up to the project root, or the installed packages"
                )
                yield ctx.at("local-path-missing", (*base, "python", index), message)


def _missing_sources(ctx: LintContext, image: Image) -> Iterator[Diagnostic]:
    """Local folders and files of ``image`` that are not there: (path in the spec, local path, kind)."""
    base = ("images", image.name)
    expected = [
        *(((*base, "add_local", "dirs", local), local, "directory", True) for local, _ in image.local_dirs),
        *(((*base, "add_local", "files", local), local, "file", True) for local, _ in image.local_files),
        *([((*base, "from_dockerfile"), image.dockerfile, "file", False)] if image.dockerfile else []),
        *([((*base, "context_dir"), image.context_dir, "directory", False)] if image.context_dir else []),
    ]
    for path, local, kind, key in expected:
        found = path_test(Path.is_dir if kind == "directory" else Path.is_file, ctx.root / local)
        if not found:
            message = f"image '{image.name}': local {kind} '{local}' does not exist in {ctx.root}"
            yield ctx.at("local-path-missing", path, message, key=key)
