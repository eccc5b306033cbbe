"""The Python names and parameter types the generated module derives from the IR.

Lint checks them (``compiler.lint.names``) and codegen writes them (``compiler.codegen.context``), so both
read them from here, below both: the names the module itself defines, the variable an image or volume
becomes, which volumes a function commits, and the type each ``args`` entry takes as a parameter.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from compiler.spec import argtypes
from compiler.spec.chains import adds_local, children_of
from compiler.spec.ir import App, Function
from compiler.spec.targets import Target

# Names the generated module defines or uses at module level (and the entrypoint reads besides its
# parameters): no function or argument may take one of them.
MODULE_NAMES = frozenset(
    {
        "modal",
        "json",
        "Path",
        "SPEC_DIR",
        "JSON_OPTIONS",
        "app",
        "main",
        "ACTIONS",
        "SWEEPS",
        "run_sweep",
        "outcome",
        "print",
        "SystemExit",
        "ValueError",
    }
)
ENTRYPOINT_FLAGS = frozenset({"action", "sweep"})  # the entrypoint's own parameters besides the options


def variable_name(key: str, suffix: str) -> str:
    """A module-level variable for the image or volume ``key``: ``cuda`` -> ``cuda_image``."""
    base = re.sub(r"[^0-9A-Za-z_]", "_", key)
    return f"{base}_{suffix}" if base[:1].isalpha() or base[:1] == "_" else f"{suffix}_{base}"


def image_variables(app: App) -> dict[str, str]:
    """Each image's module-level variable, by image name."""
    return {name: variable_name(name, "image") for name in app.images}


def build_variables(app: App) -> dict[str, str]:
    """Images that other images continue and that add local files: the variable holding each one *before*
    its local files (``cuda`` -> ``cuda_build_image``), which children chain from, because Modal builds no
    step after an ``add_local_*`` call. Not needed for an image with no steps of its own below a parent:
    its children chain from that parent's variable."""
    return {
        name: variable_name(name, "build_image")
        for name, image in app.images.items()
        if children_of(app, name) and (image.steps or image.parent is None) and adds_local(app, name)
    }


def volume_variables(app: App) -> dict[str, str]:
    """Each volume's module-level variable, by volume name: ``results`` -> ``results_volume``."""
    return {
        name: variable_name(name, "bucket" if volume.kind == "bucket" else "volume")
        for name, volume in app.volumes.items()
    }


def writable_volumes(app: App, function: Function) -> list[str]:
    """The writable Modal Volumes ``function`` mounts: the generated code commits them on checkpoint."""
    return [
        m.volume
        for m in function.mounts
        if m.volume in app.volumes
        and app.volumes[m.volume].kind == "volume"
        and not app.volumes[m.volume].read_only
    ]


def is_identifier(name: Any) -> bool:
    """An ASCII Python identifier that is not a keyword: the one rule for every name the module writes.

    ASCII because Python NFKC-normalises other identifiers (``ﬁle`` is ``file``), so two names that differ
    in the spec could be one name in the module, and a reviewer could not see it.
    """
    import keyword

    return isinstance(name, str) and name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


@dataclass(frozen=True)
class ParameterType:
    """How an ``args`` entry becomes a parameter of the generated function."""

    annotation: str  # "bool" | "int" | "float" | "str"
    default: Any  # as the function takes it: a list default is already its JSON text
    is_json: bool  # the parameter holds JSON text the body decodes

    @property
    def kind(self) -> str:
        """What the option takes on the command line: its annotation, or JSON text."""
        return "JSON text" if self.is_json else self.annotation


def parameter_type(name: str, default: Any, target: Target | None = None) -> ParameterType | None:
    """The type of argument ``name``: the target's annotation when the default fits it, else the
    default's own type; None when the default cannot be a parameter (not finite, or not a scalar or list)."""
    declared = _declared(target, name, default)
    if declared is not None:
        kind, value = declared
        if kind.is_json:
            return ParameterType("str", json.dumps(value, ensure_ascii=False), True)
        return ParameterType("str" if kind.kind == "path" else kind.kind, value, False)
    if isinstance(default, list | tuple):
        return ParameterType("str", json.dumps(list(default), ensure_ascii=False), True)
    for kind in (bool, int, float, str):  # bool first: a bool is also an int
        if isinstance(default, kind):
            if kind is float and not math.isfinite(default):
                return None
            return ParameterType(kind.__name__, default, False)
    return None


def _declared(target: Target | None, name: str, default: Any) -> tuple[argtypes.ArgType, Any] | None:
    """The target's declared type for ``name`` and the default as that type, when the default fits it."""
    parameter = target.parameter(name) if target else None
    declared = argtypes.from_annotation(parameter.annotation) if parameter else None
    if declared is None:
        return None
    try:
        return declared, argtypes.convert(list(default) if isinstance(default, tuple) else default, declared)
    except argtypes.ArgTypeError:
        return None  # the lint reports the mismatch; the default's own type keeps the module valid
