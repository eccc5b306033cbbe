"""The ``image-missing-package`` rule, and what an image installs by distribution name: its pip steps and
``pip install`` commands, what well-known distributions bring with them, and whether a step installs
something mtc cannot name (the ``targets`` rules use these too).

Names are normalised as pip does (``-``/``_``/``.`` and case do not matter); an import name maps to its
distribution where they differ (``sklearn`` is scikit-learn)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

from compiler.lint.imports import imports_of
from compiler.lint.registry import WARNING, LintContext, rule
from compiler.spec.ir import PIP_KINDS, Function, Image
from runtime.core.diagnostics import Diagnostic

DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "ruamel": "ruamel.yaml",
    "PIL": "pillow",
    "cv2": "opencv-python",
    "google.protobuf": "protobuf",
    "torch.utils.tensorboard": "tensorboard",  # part of torch's tree, but needs the tensorboard package
    "attr": "attrs",
    "dateutil": "python-dateutil",
    "skimage": "scikit-image",
}


ALWAYS_PRESENT = {"modal"}  # Modal puts its client in every container


IMPLIED = {
    "scikit-learn": ("scipy", "numpy", "joblib", "threadpoolctl"),
    "matplotlib": ("numpy", "pillow", "pyparsing", "packaging", "python-dateutil", "kiwisolver", "cycler"),
    "torch": ("filelock", "jinja2", "networkx", "sympy", "fsspec", "typing-extensions"),
    "jsonschema": ("attrs", "referencing", "jsonschema-specifications", "rpds-py"),
    "pandas": ("numpy", "python-dateutil", "pytz", "tzdata"),
}


UNKNOWABLE_WORD = re.compile(r"^(\.|/|~|-r\b|-e\b|--requirement|--editable|[a-z][a-z0-9+.-]*://|git\+)")


UNKNOWABLE_COMMAND = re.compile(r"setup\.py|poetry\s+install|uv\s+sync|pdm\s+install|conda\s+(env|install)")


def distribution(import_name: str) -> str:
    for name in (import_name, import_name.split(".")[0]):
        if name in DISTRIBUTIONS:
            return normal_name(DISTRIBUTIONS[name])
    return normal_name(import_name.split(".")[0])


def normal_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions(image: Image) -> set[str]:
    """Normalised names of the distributions the image's pip steps and `pip install` commands install."""
    requirements: list[str] = []
    for step in image.steps:
        if step.kind in PIP_KINDS:
            requirements += list(step.value.packages)
        elif step.kind == "run":
            for command in step.value if isinstance(step.value, list) else [step.value]:
                for match in re.finditer(r"pip3? install\s+([^;&|]+)", str(command)):
                    requirements += [w for w in match.group(1).split() if not w.startswith("-")]
    names = {re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()) for r in requirements}
    installed = {normal_name(m.group(0)) for m in names if m}
    return installed | {implied for name in installed for implied in IMPLIED.get(name, ())}


def ships(image: Image, top: str) -> bool:
    if any(name.split(".")[0] == top for name in image.local_python):
        return True
    if any(remote.rstrip("/") == f"/root/{top}" for _, remote in image.local_dirs):
        return True  # /root is on the container's import path
    return bool(_names(top) & installed_distributions(image))


def may_install(image: Image, top: str, *, in_project: bool) -> bool:
    """Whether a step installs something mtc cannot name, or the base image's own Python may have ``top``."""
    if image.dockerfile is not None:
        return True  # a Dockerfile installs what it says, which mtc does not read
    if not in_project and not image.is_debian_slim and image.python is None:
        return True
    for step in image.steps:
        values = [str(v) for v in (step.value if isinstance(step.value, list | tuple) else [step.value])]
        if step.kind in PIP_KINDS and any(UNKNOWABLE_WORD.match(v.strip()) for v in step.value.packages):
            return True
        if step.kind == "run" and any(_unknowable_command(command) for command in values):
            return True
    return False


def _unknowable_command(command: str) -> bool:
    if UNKNOWABLE_COMMAND.search(command):
        return True
    installs = re.finditer(r"pip3?\s+install\s+([^;&|]+)", command)
    return any(UNKNOWABLE_WORD.match(word) for match in installs for word in match.group(1).split())


@cache
def _names(top: str) -> frozenset[str]:
    """Normalised distribution names that may provide the import package ``top``."""
    from importlib.metadata import packages_distributions

    provided = packages_distributions().get(top, ())
    return frozenset({normal_name(top), distribution(top), *map(normal_name, provided)})


@rule(
    "image-missing-package",
    WARNING,
    "every package the run target imports (and the project modules it imports) is installed in its image",
    "add the package to a pip step of the image, or silence the rule with the reason the base image has it",
)
def _image_missing_package(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    image = ctx.image_of(fn)
    if image is None:
        return
    installed = installed_distributions(image)
    shipped = set(image.local_python) | {p.split(".")[0] for p in image.local_python}
    for name, where in _third_party_imports(fn, ctx, shipped).items():
        needed = distribution(name)
        if needed in installed or name.split(".")[0] in ALWAYS_PRESENT:
            continue
        # no function name in the message: functions sharing an image from `defaults` get one diagnostic
        message = f"image '{image.name}' does not install '{needed}', which {where} imports; add it to pip"
        yield ctx.at_field("image-missing-package", fn, "image" if "image" in fn.origins else "run", message)


def _third_party_imports(fn: Function, ctx: LintContext, shipped: set[str]) -> dict[str, str]:
    """The first place each third-party package is imported (by a name of DISTRIBUTIONS, else its top)."""
    found: dict[str, str] = {}
    for name, where in imports_of(fn.module, str(ctx.root), tuple(sorted(shipped))):
        found.setdefault(name if name in DISTRIBUTIONS else name.split(".")[0], where)
    return found
