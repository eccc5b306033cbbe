"""The ``pip-option-in-packages`` rule: a ``pip`` or ``uv_pip`` step lists requirements only.

Modal's ``Image.pip_install`` and ``Image.uv_pip_install`` refuse a package that starts with ``-`` when the
module is imported, and a requirement with an option after it (``"torch --pre"``) reaches pip as one quoted
word. Each option has its key in the step's mapping form (``{packages: [...], extra_index_url: URL}``); the
rule names the key to use.
"""

from __future__ import annotations

from collections.abc import Iterator

from compiler.lint.registry import ERROR, LintContext, rule
from compiler.spec.ir import PIP_KINDS, Image
from runtime.core.diagnostics import Diagnostic

OPTION_KEYS = {
    "--index-url": "index_url",
    "-i": "index_url",
    "--extra-index-url": "extra_index_url",
    "--find-links": "find_links",
    "-f": "find_links",
    "--pre": "pre",
}


@rule(
    "pip-option-in-packages",
    ERROR,
    "a pip or uv_pip step lists requirements only, no installer options such as --extra-index-url",
    "move it to its key in the mapping form: index_url, extra_index_url, find_links, pre or extra_options",
    scope="app",
)
def _pip_option_in_packages(ctx: LintContext) -> Iterator[Diagnostic]:
    for image in ctx.app.images.values():
        for index, step in enumerate(image.steps):
            if step.kind not in PIP_KINDS:
                continue
            for item, package in enumerate(step.value.packages):
                option = next((word for word in package.split() if word.startswith("-")), None)
                if option is not None:
                    path = (*_packages_path(ctx, image, index, step.kind), item)
                    yield ctx.at("pip-option-in-packages", path, _message(image, package, option))


def _packages_path(ctx: LintContext, image: Image, index: int, kind: str) -> tuple[str | int, ...]:
    """Where the step's package list is: the step itself, or its ``packages`` key in the mapping form."""
    path: tuple[str | int, ...] = ("images", image.name, "steps", index, kind)
    declared = ctx.doc.data["images"][image.name]["steps"][index][kind]
    return (*path, "packages") if isinstance(declared, dict) else path


def _message(image: Image, package: str, option: str) -> str:
    name, _, value = option.partition("=")
    key = OPTION_KEYS.get(name)
    if key == "pre":
        fix = "pre: true"
    elif key is not None:
        fix = f"{key}: {value or 'URL'}"
    else:
        fix = f'extra_options: "{option}"'
    return (
        f"image '{image.name}': '{package}' is an installer option, not a requirement (Modal refuses it "
        f"among the packages); write the step as a mapping {{packages: [...], {fix}}}"
    )
