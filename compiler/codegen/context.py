"""The template context: every piece of the generated module that depends on the spec, as layout docs.

:func:`module_context` returns what ``templates/app.py.j2`` places: the header, the app, the images
(:mod:`compiler.codegen.images`) and volumes, the functions (:mod:`compiler.codegen.functions`), the local
entrypoint's tables and the sweeps' trials. Image and volume keys become variables
(:func:`compiler.spec.pynames.variable_name`), never pasted; every value goes through
:func:`compiler.codegen.literals.literal`. Local paths of the spec (``add_local``, ``from_dockerfile``) are
relative to the spec's folder, which the module computes from its own location (``SPEC_DIR``), so
``modal run`` works from any folder.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from compiler.codegen import clusters
from compiler.codegen.classes import ClassSection, stacked
from compiler.codegen.functions import FunctionSection, Model, Parameter, secret
from compiler.codegen.images import ImageSection, below
from compiler.codegen.layout import Entry, Group, call, mapping, value_doc
from compiler.codegen.literals import RenderError, literal, optional
from compiler.spec.ir import App, Function, Volume
from compiler.spec.sweep import OVERRIDES_PARAM, function_trials


def module_context(model: Model, module_dir: Path) -> dict[str, Any]:
    """The variables of ``app.py.j2`` for ``model``, the module to be written in ``module_dir``."""
    app = model.app
    images = ImageSection(app)
    section = FunctionSection(model)
    return {
        "header": header(app),
        "uses_json": any(p.type.is_json for params in model.params.values() for p in params),
        "spec_dir": spec_dir_line(app.spec_dir, module_dir) if images.uses_spec_dir() else None,
        "app_doc": Entry("app = ", call("modal.App", literal(app.name), secrets=model.secrets(app.secrets))),
        "images": images.definitions(),
        "volumes": [Entry(f"{model.volume_vars[n]} = ", volume(v)) for n, v in app.volumes.items()],
        "cluster": clusters.helper_context() if clusters.uses_clusters(app) else None,
        "functions": [
            {**section.function(function), "stacked": stacked(function)}
            for function in app.functions.values()
            if not function.is_class
        ],
        "classes": [
            ClassSection(section).cls(function) for function in app.functions.values() if function.is_class
        ],
        "entrypoint": entrypoint(model),
        "sweeps": sweeps(model),
    }


def header(app: App) -> dict[str, Any]:
    command = ["mtc", "compile", app.spec_path] + (["--profile", app.profile] if app.profile else [])
    return {
        "spec_path": app.spec_path,
        "profile": app.profile,
        "command": _shell_line(command),
        "sha256": app.spec_sha256,
    }


def volume(spec: Volume) -> Group:
    if spec.kind == "bucket":
        return call(
            "modal.CloudBucketMount",
            literal(spec.bucket),
            bucket_endpoint_url=optional(spec.bucket_endpoint_url),
            key_prefix=optional(spec.key_prefix),
            secret=secret(spec.secret) if spec.secret else None,
            read_only=literal(True) if spec.read_only else None,
        )
    return call(
        "modal.Volume.from_name",
        literal(spec.volume),
        environment_name=optional(spec.environment),
        create_if_missing=literal(True),
    )


# ------------------------------------------------------------------------------------ local entrypoint


def entrypoint(model: Model) -> dict[str, Any] | None:
    """``ACTIONS``, ``REQUIRED``, ``JSON_OPTIONS``, and the signature and options of ``main``: one option per
    argument name across functions (the lint's render/argument-type-conflict keeps each to one type). A list
    or mapping option is JSON text, decoded by ``main`` (Modal's CLI parses only scalar options)."""
    if not model.app.functions:
        raise RenderError("the spec declares no functions", ("functions",))
    callable_params = {name: p for name, p in model.params.items() if not model.app.functions[name].is_class}
    first = next(iter(callable_params), None)
    if first is None:
        return None  # only classes: `modal deploy` or `modal serve` runs them, no --action to choose
    options: dict[str, Parameter] = {}
    for params in callable_params.values():
        for param in params:
            options.setdefault(param.name, param)
    flags = (f"action: str = {literal(first)}",) + (("sweep: bool = False",) if sweeping(model.app) else ())
    signature = flags + tuple(f"{n}: {p.option} | None = None" for n, p in options.items())
    actions = {name: Group("(", (name, defaults(params)), ")") for name, params in callable_params.items()}
    json_options = {n: p.type.base for n, p in options.items() if p.type.is_json}
    required = {
        name: Group("[", tuple(literal(p.name) for p in params if p.type.required), "]")
        for name, params in callable_params.items()
        if any(p.type.required for p in params)
    }
    return {
        "actions": Entry("ACTIONS = ", mapping(actions)),
        "required": Entry("REQUIRED = ", mapping(required)) if required else None,
        "json_options": Entry("JSON_OPTIONS = ", mapping(json_options)) if json_options else None,
        "signature": Group("def main(", signature, ")"),
        "options": Entry("options = ", mapping({name: name for name in options})),
    }


def defaults(params: list[Parameter]) -> Group:
    """``{"config": "specs/train.yaml", ...}``: the parameters a function takes, in order, with their
    defaults (None for a required one)."""
    return mapping({p.name: value_doc(p.entry_default) for p in params})


def sweeping(app: App) -> list[Function]:
    return [function for function in app.functions.values() if function.sweep]


def sweeps(model: Model) -> Entry | None:
    """``SWEEPS = {"train": [{...trial...}, ...]}``: what each trial sets, from :mod:`compiler.spec.sweep`."""
    if not sweeping(model.app):
        return None
    entries = {}
    for function in sweeping(model.app):
        trials = []
        for trial in function_trials(function):
            args, overrides = trial.split(set(function.arg_names))
            trials.append(value_doc({**args, OVERRIDES_PARAM: overrides}))
        entries[function.name] = Group("[", tuple(trials), "]")
    return Entry("SWEEPS = ", mapping(entries))


# ---------------------------------------------------------------------------------------------- helpers


def spec_dir_line(spec_dir: Path, module_dir: Path) -> str:
    """``SPEC_DIR = Path(__file__).parent.parent / "specs"``: the spec's folder from the module's own."""
    relative = Path(os.path.relpath(spec_dir.resolve(), module_dir.resolve())).as_posix()
    return f"SPEC_DIR = {below('Path(__file__).parent', relative)}"


def _shell_line(words: list[str]) -> str:
    """A shell command for a comment: quoted words, and no line break whatever the words hold."""
    return " ".join(shlex.quote(word) if word.isprintable() else literal(word) for word in words)
