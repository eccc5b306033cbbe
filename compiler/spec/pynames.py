"""The Python names and parameter types the generated module derives from the IR.

Lint checks them (``compiler.lint.names``) and codegen writes them (``compiler.codegen.context``), so both
read them from here, below both: the names the module itself defines, the variable an image or volume
becomes, which volumes a function commits, and the type each ``args`` entry takes as a parameter (its spec
``type:``, the target's annotation or its default's type; lists and mappings are JSON on the command line).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from compiler.spec import argtypes
from compiler.spec.chains import adds_local, children_of
from compiler.spec.ir import App, Arg, Function
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
        "REQUIRED",
        "isinstance",
        "list",
        "dict",
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
    """How an ``args`` entry becomes a parameter of the generated function.

    A list or mapping default is not written in the signature, where one object would be shared by every
    call (and ruff's B006 flags it): the parameter defaults to None and the body passes the default, written
    as a literal, when it is None. So for such a parameter a None passed to the generated function means
    "the default" even when the type takes null (``list[int] | None``): only ``mtc run`` passes a null
    through, and Modal's CLI cannot pass one.
    """

    type: argtypes.ArgType
    default: Any = None  # as the target receives it, converted to ``type``; unused when required
    required: bool = False

    @property
    def is_json(self) -> bool:
        """A list or mapping: JSON text on the command line, decoded by the generated entrypoint."""
        return self.type.is_json

    @property
    def fills_default(self) -> bool:
        return self.is_json and not self.required and self.default is not None

    @property
    def base(self) -> str:
        """The annotation without ``| None``: bool, int, float, str, list or dict (a path is a str)."""
        return "str" if self.type.kind == "path" else self.type.kind

    @property
    def annotation(self) -> str:
        """``int``, ``str | None``, ``list[int]``, ``dict | None``: as the parameter is written."""
        item = self.type.item
        written = f"list[{'str' if item.kind == 'path' else item.kind}]" if item else self.base
        return f"{written} | None" if self.type.optional or self.fills_default else written

    @property
    def signature_default(self) -> Any:
        return None if self.fills_default else self.default

    @property
    def kind(self) -> str:
        """What the option takes on the command line, for messages: "int", "JSON list", ..."""
        return f"JSON {self.base}" if self.is_json else self.base


def parameter_type(arg: Arg, target: Target | None = None) -> ParameterType | None:
    """The type of ``arg`` as a parameter: the spec's ``type:``, else the target's annotation when the default
    fits it, else the default's own type. None when the default cannot be a parameter (not finite, nested
    deeper than :data:`compiler.spec.argtypes.MAX_NESTING`) or does not fit the spec's own ``type:``."""
    parameter = target.parameter(arg.name) if target else None
    declared = argtypes.of_arg(arg, parameter)
    if declared is None:
        return None
    if arg.required:
        return ParameterType(declared, required=True)
    default = argtypes.thawed(arg.default)
    try:
        value = argtypes.convert(default, declared)
    except argtypes.ArgTypeError:
        if arg.declared is not None:
            return None  # the spec contradicts itself: the lint's run-arg-type reports it
        own = argtypes.from_value(default)  # the target disagrees: the lint reports it; the module is valid
        return _typed(own, default) if own else None
    return _typed(declared, value)


def _typed(kind: argtypes.ArgType, value: Any) -> ParameterType | None:
    if (
        isinstance(value, float)
        and not math.isfinite(value)
        or argtypes.nesting(value) > argtypes.MAX_NESTING
    ):
        return None
    return ParameterType(kind, value)
