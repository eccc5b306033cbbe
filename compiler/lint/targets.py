"""Lint rules that read each function's `run` target: it exists, ships in the image, and takes the args.

Nothing is imported: the target's module is found as :mod:`compiler.spec.targets` describes (the spec's
folder and
its parents up to the project root, then the installed packages) and read with :mod:`ast`. When the source
cannot be read (a compiled module) or a signature cannot be known (a decorated function, a name bound by an
assignment), the rules that need it stay silent: no false errors.

What counts as shipped: the target's top-level package is in the image's ``add_local.python``, or a folder
of ``add_local.dirs`` lands on ``/root/<package>``, or a pip step (or ``pip install`` in a run step)
installs a distribution of that name (``-``/``_``/``.`` and case do not matter; ``sklearn`` is scikit-learn;
an installed package counts under its distribution's name too, e.g. ``runtime`` is in ``mtc``). A step that
installs something mtc cannot name (``.``, a path, a URL, ``-r requirements.txt``, ``-e``, ``setup.py``,
``poetry install``, ``uv sync``) might install it: then the rule trusts the spec. So does an image whose base
is a registry image with its own Python (no ``python:``), for a package that is not part of the project.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from compiler.lint.packages import ALWAYS_PRESENT, may_install, ships
from compiler.lint.registry import ERROR, LintContext, rule
from compiler.spec import argtypes, targets
from compiler.spec.ir import Arg, Function
from compiler.spec.pynames import writable_volumes
from runtime.core.diagnostics import Diagnostic, did_you_mean

UNKNOWABLE_WORD = re.compile(r"^(\.|/|~|-r\b|-e\b|--requirement|--editable|[a-z][a-z0-9+.-]*://|git\+)")
UNKNOWABLE_COMMAND = re.compile(r"setup\.py|poetry\s+install|uv\s+sync|pdm\s+install|conda\s+(env|install)")
SHAPES = {
    "async generator": "an async generator; the generated function awaits one result: return it instead",
    "generator": "a generator; Modal's .remote() returns one result: return a list instead of yielding",
    "class": "a class; name a function that does the work, or list the methods to serve under `methods`",
}


def _lookup(fn: Function, ctx: LintContext) -> targets.Lookup:
    return targets.read_target(fn.module, fn.entry, ctx.root)


@rule(
    "run-module-missing",
    ERROR,
    "the `run` target's module is found: in the spec's folder or a parent up to the project root (the folder "
    "with .git or pyproject.toml), or among the installed packages",
    "fix the module name, or move the spec into the project whose code it runs",
)
def _run_module_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    if fn.module and _lookup(fn, ctx).module is None:
        folders = targets.project_folders(ctx.root)
        searched = (
            str(folders[0]) if len(folders) == 1 else f"{folders[0]} or its parents up to {folders[-1]}"
        )
        message = f"run target module '{fn.module}' is not found in {searched}, nor installed here"
        yield ctx.at_field("run-module-missing", fn, "run", message)


@rule(
    "run-not-shipped",
    ERROR,
    "the `run` target's package ships in the function's image: add_local.python, or a pip step installs it",
    "add the package to the image's add_local.python (your code) or to a pip step (an installed package)",
)
def _run_not_shipped(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    located = _lookup(fn, ctx).module
    top = fn.module.split(".")[0]
    if located is None or top in sys.stdlib_module_names or top in ALWAYS_PRESENT:
        return
    if fn.image is None:
        message = (
            f"no image is set, and Modal's default image does not have '{top}' (the run target's package); "
            f"set an image that ships it (add_local.python: [{top}])"
        )
        yield ctx.at_field("run-not-shipped", fn, "run", message)
        return
    image = ctx.image_of(fn)
    if image is None or ships(image, top) or may_install(image, top, in_project=located.project is not None):
        return
    how = f"add_local.python: [{top}]" + ("" if located.project else ", or a pip step that installs it")
    message = (
        f"image '{image.name}' does not ship '{top}', the run target's package "
        f"(found in {located.project or 'the installed packages'}); add {how}"
    )
    yield ctx.at_field("run-not-shipped", fn, "run", message)


@rule(
    "run-function-missing",
    ERROR,
    "the `run` target's module defines the function (read from its source, not imported)",
    "fix the function name after ':' in run",
)
def _run_function_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    lookup = _lookup(fn, ctx)
    if lookup.module is not None and lookup.target is None:
        names = targets.function_names(lookup.module)
        message = (
            f"{fn.module} ({lookup.module.source}) defines no '{fn.entry}'{did_you_mean(fn.entry, names)}"
        )
        yield ctx.at_field("run-function-missing", fn, "run", message)


@rule(
    "run-target-shape",
    ERROR,
    "the `run` target is a function or an async function (not a generator, an async generator or a class)",
    "make the target a function that returns its result",
)
def _run_target_shape(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    target = _lookup(fn, ctx).target
    if target is not None and target.shape in SHAPES and not (fn.is_class and target.shape == "class"):
        yield ctx.at_field("run-target-shape", fn, "run", f"{fn.run} is {SHAPES[target.shape]}")


@rule(
    "run-arg-unknown",
    ERROR,
    "every name in `args` is a parameter the `run` target takes by keyword (unless it takes **kwargs)",
    "fix the name, or add the parameter to the target",
)
def _run_arg_unknown(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    target = _lookup(fn, ctx).target
    if target is None or target.parameters is None or target.takes_any_keyword:
        return
    keywords = [p.name for p in target.parameters if p.keyword]
    for name in fn.arg_names:
        if name not in keywords:
            parameter = target.parameter(name)
            problem = "only by position" if parameter else "no such parameter"
            message = (
                f"{fn.run} takes '{name}' {problem}"
                if parameter
                else f"{fn.run} has no parameter '{name}'{did_you_mean(name, keywords)}; it takes: "
                + (", ".join(keywords) or "none")
            )
            yield ctx.at_field("run-arg-unknown", fn, f"args[{name}]", message, key=True)


@rule(
    "run-arg-missing",
    ERROR,
    "every parameter of the `run` target without a default is given in `args`",
    "add the parameter to args, or give it a default in the target",
)
def _run_arg_missing(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    target = _lookup(fn, ctx).target
    if target is None or target.parameters is None:
        return
    given = set(fn.arg_names)
    if writable_volumes(ctx.app, fn):
        given.add("on_checkpoint")  # the generated function passes the volumes' commit
    missing = [p.name for p in target.parameters if p.required and (p.name not in given or not p.keyword)]
    if missing:
        message = f"{fn.run} requires {', '.join(missing)}, which args does not give; add to args"
        yield ctx.at_field("run-arg-missing", fn, "run", message)


@rule(
    "run-arg-type",
    ERROR,
    "every value in `args` fits the type the `run` target's parameter declares (int, float, bool, str, "
    "Path, list[...], dict, Optional[...])",
    'write the value as the declared type, e.g. epochs: 10, not "ten"',
)
def _run_arg_type(fn: Function, ctx: LintContext) -> Iterator[Diagnostic]:
    target = _lookup(fn, ctx).target
    for arg in fn.args if target is not None else ():
        parameter = target.parameter(arg.name)
        declared = argtypes.from_annotation(parameter.annotation) if parameter else None
        if declared is None:
            continue
        problem = _disagreement(arg, declared)
        if problem:
            message = (
                f"args.{arg.name} {problem}, but {fn.run} declares {arg.name}: {parameter.annotation} "
                f"(expected {declared.label})"
            )
            yield ctx.at_field("run-arg-type", fn, f"args[{arg.name}]", message)


def _disagreement(arg: Arg, declared: argtypes.ArgType) -> str | None:
    """How ``arg`` disagrees with the target's type: its spec ``type:``, else its default; None if it fits."""
    spec_type = argtypes.from_annotation(arg.declared) if arg.declared is not None else None
    if spec_type is not None and spec_type != declared:
        return f"has type {arg.declared}"
    if arg.required:
        return None
    try:
        argtypes.convert(argtypes.thawed(arg.default), declared)
    except argtypes.ArgTypeError:
        return f"is {argtypes.thawed(arg.default)!r}"
    return None
