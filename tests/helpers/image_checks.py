"""What Modal should see of a spec's images, written from the resolved model and Modal's API, independently
of the renderer, and two ways to read what a generated module builds.

- :func:`image_calls` reads the literal arguments of each call of an image chain in the module's source (a
  local path relative to the spec is the module's ``SPEC_DIR`` expression, read against a marker folder);
  :func:`expected_image_calls` states them from the model.
- :func:`image_layers` asks the real ``modal`` package, offline, what an ``Image`` object will build: the
  Dockerfile commands of each build layer and the local files of each mount layer, base first. Modal does
  not expose this publicly, so it reads the closures ``Image`` keeps until it is built (modal 1.6.4); two
  images that build the same layers get the same list whoever wrote them.
"""

from __future__ import annotations

import ast
import posixpath
from pathlib import PurePosixPath
from typing import Any

from compiler.spec.ir import PIP_KINDS, App, Image
from compiler.spec.pynames import variable_name

SPEC_DIR_MARK = PurePosixPath("/<spec dir>")  # stands for the generated module's SPEC_DIR
BUILDER_VERSION = "2025.06"  # a Modal image builder version, for the Dockerfile commands of a layer
METHODS = {"entrypoint": "entrypoint", "apt": "apt_install", "env": "env", "pip": "pip_install"}
METHODS |= {"uv_pip": "uv_pip_install", "run": "run_commands", "workdir": "workdir"}


def image_calls(source: str, variable: str) -> list[tuple[str, list, dict]]:
    """``[(method, args, kwargs), ...]`` of the image chain assigned to ``variable``, head first; a chain
    that starts from another variable starts with ``("variable", [name], {})``."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == [variable]:
            calls = []
            expression = node.value
            while isinstance(expression, ast.Call):
                arguments = [_image_argument(a) for a in expression.args]
                keywords = {k.arg: _image_argument(k.value) for k in expression.keywords}
                calls.append((expression.func.attr, arguments, keywords))
                expression = expression.func.value
            if isinstance(expression, ast.Name):
                calls.append(("variable", [expression.id], {}))
            return calls[::-1]
    raise AssertionError(f"no variable {variable} in the module")


def _image_argument(node: ast.expr) -> Any:
    """A literal, or an expression of the module's SPEC_DIR such as ``SPEC_DIR / "data"``."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return eval(compile(ast.Expression(node), "<image>", "eval"), {"SPEC_DIR": SPEC_DIR_MARK})


def _local(local: str) -> str | PurePosixPath:
    """A spec's local path as the module computes it: relative ones from the spec's folder."""
    return local if posixpath.isabs(local) else PurePosixPath(posixpath.normpath(f"{SPEC_DIR_MARK}/{local}"))


def expected_image_calls(app: App, name: str, defined: set[str]) -> dict[str, list[tuple[str, list, dict]]]:
    """``{variable: calls}`` for image ``name``: its own variable and, when the module defines one
    (``defined``), the variable of its build steps alone, which images built on it continue."""
    image, effective = app.images[name], app.effective_image(name)
    build = variable_name(name, "build_image")
    steps = [_head(app, image, defined), *(_step_call(step) for step in image.steps)]
    local = _local_calls(effective)
    if build in defined:
        return {build: steps, variable_name(name, "image"): [("variable", [build], {}), *local]}
    return {variable_name(name, "image"): steps + local}


def _head(app: App, image: Image, defined: set[str]) -> tuple[str, list, dict]:
    if image.parent is not None:
        return ("variable", [_before_local(app, image.parent, defined)], {})
    python = {"add_python": image.python} if image.python else {}
    if image.dockerfile is not None:
        context = {"context_dir": _local(image.context_dir)} if image.context_dir else {}
        return ("from_dockerfile", [_local(image.dockerfile)], {**context, **python})
    if image.base == "debian_slim":
        return ("debian_slim", [], {"python_version": image.python} if image.python else {})
    return ("from_registry", [image.base], python)


def _before_local(app: App, name: str, defined: set[str]) -> str:
    """The variable of image ``name`` without its local files (Modal builds no step after them)."""
    if variable_name(name, "build_image") in defined:
        return variable_name(name, "build_image")
    parent = app.images[name].parent
    if parent is not None and app.effective_image(name).has_local:
        return _before_local(app, parent, defined)
    return variable_name(name, "image")


def _step_call(step: Any) -> tuple[str, list, dict]:
    if step.kind in PIP_KINDS:
        return (METHODS[step.kind], list(step.value.packages), dict(step.value.options))
    if step.kind == "entrypoint":
        return ("entrypoint", [list(step.value)], {})
    if step.kind == "env":
        return ("env", [dict(step.value)], {})
    if step.kind == "workdir":
        return ("workdir", [step.value], {})
    return (METHODS[step.kind], list(step.value), {})


def _local_calls(image: Image) -> list[tuple[str, list, dict]]:
    calls = [("add_local_python_source", list(image.local_python), {})] if image.local_python else []
    calls += [("add_local_dir", [_local(local), remote], {}) for local, remote in image.local_dirs]
    calls += [("add_local_file", [_local(local), remote], {}) for local, remote in image.local_files]
    return calls


def image_layers(image: Any) -> list[tuple]:
    """What a ``modal.Image`` builds, base first: ``("build", commands)`` per build layer (its Dockerfile
    commands after ``FROM base``), ``("mount", entries)`` per local-files layer, ``("python", modules)``
    for add_local_python_source; a registry or Dockerfile start is ``("start", ...)``."""
    raw = _unwrapped(image)
    cells = _closure(raw)
    layers: list[tuple] = []
    for parent in [
        *(cells.get("base_images") or {}).values(),
        *([cells["base_image"]] if "base_image" in cells else []),
    ]:
        layers += image_layers(parent)
    if "dockerfile_function" in cells:
        commands = cells["dockerfile_function"](BUILDER_VERSION).commands
        layers.append(("build", tuple(c for c in commands if c != "FROM base")))
    if "mount" in cells:
        layers.append(("mount", tuple(_mount_entry(e) for e in _unwrapped(cells["mount"])._entries)))
    if "path" in cells and "add_python" in cells:
        layers.append(("start", "dockerfile", str(cells["path"]), cells["add_python"]))
    return layers


def _mount_entry(entry: Any) -> tuple:
    kind = type(entry).__name__
    if kind == "_MountFile":
        return ("file", str(entry.local_file), str(entry.remote_path))
    if kind == "_MountDir":
        return ("dir", str(entry.local_dir), str(entry.remote_path))
    return ("python", entry.module_name, entry.remote_dir)


def _unwrapped(obj: Any) -> Any:
    """The object behind Modal's synchronicity wrapper."""
    originals = [value for key, value in vars(obj).items() if key.startswith("_sync_original")]
    return originals[0] if originals else obj


def _closure(raw: Any) -> dict[str, Any]:
    load = raw._load
    return dict(
        zip(load.__code__.co_freevars, (cell.cell_contents for cell in load.__closure__ or ()), strict=True)
    )


def check_image_chains(app: App, source: str) -> None:
    """Every image of ``app`` is built in the module as the spec says (see :func:`expected_image_calls`)."""
    defined = {t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets}
    for name in app.images:
        for variable, calls in expected_image_calls(app, name, defined).items():
            assert image_calls(source, variable) == calls, variable
