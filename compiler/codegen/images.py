"""The images section of the generated module: one ``modal.Image`` chain per image, parents first.

An image starts from a registry (``Image.from_registry``), ``debian_slim``, a Dockerfile
(``Image.from_dockerfile``) or, with ``base: NAME``, the variable of another image of the spec, which it
continues with its own steps (``train_image = cuda_image.uv_pip_install(...)``): no step is written twice.
Local files (``add_local``) always come last, because Modal builds no step after an ``add_local_*`` call.
So a parent that adds local files is defined in two steps when another image continues it:
``cuda_build_image`` (its build steps) and ``cuda_image`` (that, plus its local files); a child chains from
``cuda_build_image``, adds its own steps, then the local files of its parents and its own.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from compiler.codegen.layout import Chain, Entry, Group, call, value_doc
from compiler.codegen.literals import RenderError, literal, optional
from compiler.spec.chains import image_order, in_cycle
from compiler.spec.ir import PIP_KINDS, App, Image, PipInstall
from compiler.spec.pynames import build_variables, image_variables

BUILD_STEPS = {
    "entrypoint": "entrypoint",
    "apt": "apt_install",
    "env": "env",
    "pip": "pip_install",
    "uv_pip": "uv_pip_install",
    "run": "run_commands",
    "workdir": "workdir",
}


@dataclass(frozen=True)
class ImageDefinition:
    """One module-level assignment, with the comment above it (None: no comment)."""

    doc: Entry
    comment: str | None = None


class ImageSection:
    """Every image as assignments in dependency order."""

    def __init__(self, app: App):
        self.app = app
        self.variables = image_variables(app)
        self.build_variables = build_variables(app)

    def definitions(self) -> list[ImageDefinition]:
        for name, image in self.app.images.items():  # the lint's image-base reports both
            if in_cycle(self.app, name) or (image.parent is not None and image.parent not in self.app.images):
                raise RenderError(
                    f"image '{name}': base '{image.parent}' is unknown or circular",
                    ("images", name, "base"),
                    "image-base",
                )
        out = []
        for name in image_order(self.app):
            image = self.app.images[name]
            head, steps = self.start(image), tuple(self.build_steps(image))
            if name in self.build_variables:
                build = self.build_variables[name]
                comment = (
                    f"{self.variables[name]} without its local files: the images built on it continue this"
                )
                out.append(ImageDefinition(Entry(f"{build} = ", Chain(head, steps)), comment))
                head, steps = build, ()
            whole = Chain(head, steps + tuple(self.local_steps(name)))
            out.append(ImageDefinition(Entry(f"{self.variables[name]} = ", whole)))
        return out

    def start(self, image: Image) -> Any:
        """Where the chain starts: the parent's variable before its local files, or a constructor."""
        if image.parent is not None:
            return self.before_local(image.parent)
        if image.dockerfile is not None:
            return call(
                "modal.Image.from_dockerfile",
                local_path(image.dockerfile),
                context_dir=local_path(image.context_dir) if image.context_dir is not None else None,
                add_python=optional(image.python),
            )
        if image.is_debian_slim:
            return call("modal.Image.debian_slim", python_version=optional(image.python))
        return call("modal.Image.from_registry", literal(image.base), add_python=optional(image.python))

    def before_local(self, name: str) -> str:
        """The variable holding image ``name`` before its local files (its own when it adds none)."""
        if name in self.build_variables:
            return self.build_variables[name]
        image = self.app.images[name]
        effective = self.app.effective_image(name)
        if image.parent is not None and effective is not None and effective.has_local:
            return self.before_local(image.parent)  # no steps of its own: the parent's build is its build
        return self.variables[name]

    def build_steps(self, image: Image) -> list[Group]:
        return [step(image, index, s.kind, s.value) for index, s in enumerate(image.steps)]

    def local_steps(self, name: str) -> list[Group]:
        """The local files of image ``name`` and of its parents, the parents' first."""
        image = self.app.effective_image(name)
        if image is None:
            return []
        steps = []
        if image.local_python:
            steps.append(call(".add_local_python_source", *(literal(m) for m in image.local_python)))
        for method, pairs in (("add_local_dir", image.local_dirs), ("add_local_file", image.local_files)):
            steps += [call(f".{method}", local_path(local), literal(remote)) for local, remote in pairs]
        return steps

    def uses_spec_dir(self) -> bool:
        """Whether a local path is relative to the spec (the module then needs SPEC_DIR)."""
        images = self.app.images.values()
        return any(not posixpath.isabs(path) for image in images for path in local_paths(image))


def local_paths(image: Image) -> list[str]:
    """Every local path an image declares: Dockerfile, build context, add_local dirs and files."""
    paths = [local for local, _ in (*image.local_dirs, *image.local_files)]
    return paths + [path for path in (image.dockerfile, image.context_dir) if path is not None]


def step(image: Image, index: int, kind: str, value: Any) -> Group:
    method = BUILD_STEPS.get(kind)
    if method is None:
        raise RenderError(f"unknown build step '{kind}'", ("images", image.name, "steps", index))
    if kind in PIP_KINDS:
        return pip_step(method, value)
    if kind in ("entrypoint", "env"):
        return call(f".{method}", value_doc(_as_list(value) if kind == "entrypoint" else dict(value)))
    if kind == "workdir":
        return call(f".{method}", literal(value))
    return call(f".{method}", *(literal(item) for item in _as_list(value)))


def pip_step(method: str, value: PipInstall) -> Group:
    """``.pip_install("torch==2.2.2", index_url="...")``: the requirements, then the options that are set."""
    options = {key: literal(option) for key, option in value.options.items()}
    return call(f".{method}", *(literal(item) for item in value.packages), **options)


def local_path(local: str) -> str:
    """A local path as the module computes it: ``SPEC_DIR / "data"``; an absolute path as written."""
    if posixpath.isabs(local):
        return literal(local)
    return below("SPEC_DIR", posixpath.normpath(local))


def below(base: str, relative: str) -> str:
    """``base`` joined with a normalised relative path: ``..`` as ``.parent``, the rest as one string."""
    parts = relative.split("/") if relative != "." else []
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    rest = "/".join(parts[ups:])
    return base + ".parent" * ups + (f" / {literal(rest)}" if rest else "")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]
