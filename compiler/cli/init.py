"""``mtc init [DIR]``: set mtc up in an existing repository.

It writes ``specs/deployment.yaml`` with functions that call mtc's bundled training runtime (and the training
configs they name: synthetic data for the debug profile, placeholders for production), or, with ``--target
MODULE:FUNCTION``, functions that call the team's own code with ``args`` read from the target's signature.
Beside them: a pre-commit config, a GitHub Actions workflow and a ``.gitignore`` for the local volumes.

Everything is rendered and checked before anything is written. A spec or config that exists already stops
the command (exit 1, every such file named, nothing written); an existing pre-commit config, workflow or
``.gitignore`` is left alone and what mtc would have added is printed to merge by hand. Each file is written
atomically and can never replace one that appeared meanwhile. No torch, no runtime import: the templates are
package data (``compiler/codegen/templates/init_*``) and the team's code is read, never imported.
"""

from __future__ import annotations

import json
import keyword
import math
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import click

from compiler.cli.exitcodes import ExitCode
from compiler.platform.modal_limits import MODAL_NAME_MAX

APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # the schema's pattern for app.name
TARGET = re.compile(r"(?:(?P<name>[^=:]*)=)?(?P<module>[^:=]*):(?P<entry>[^:=]*)")
PLAIN_YAML = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:-]*")
CALLBACK_PARAMETER = "on_checkpoint"  # the generated body passes it (the commit of the function's volumes)
SPEC = "specs/deployment.yaml"


class InitError(Exception):
    """The user's input cannot be set up (exit 1): the message says what and how to fix it."""


@dataclass(frozen=True)
class Target:
    """One ``--target``: the spec's function ``function`` calls ``module:entry`` with ``args``."""

    function: str
    module: str
    entry: str
    args: tuple[tuple[str, Any], ...] = ()
    unset: tuple[tuple[str, str], ...] = ()  # (parameter, why it is not in args): a comment in the spec
    required: tuple[str, ...] = ()  # parameters without a default, so without a value in args


@dataclass(frozen=True)
class Planned:
    """A file to write, relative to DIR. ``merge``: when it exists, print the text instead of failing."""

    path: str
    text: str
    merge: bool = False


@click.command()
@click.argument("directory", default=".", required=False, metavar="[DIR]")
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="[NAME=]MODULE:FUNCTION",
    help="A function of your own code to run (repeatable); NAME names it in the spec (default: FUNCTION). "
    "Without --target the functions call mtc's bundled training runtime.",
)
@click.option("--name", metavar="APP", help="The Modal app's name [default: from DIR's folder name].")
def init(directory: str, targets: tuple[str, ...], name: str | None) -> int:
    """Set mtc up in the repository DIR (default: the current folder).

    Writes specs/deployment.yaml (a debug profile and the production settings), the training configs it
    names, .pre-commit-config.yaml, .github/workflows/mtc.yml and .gitignore. Never overwrites a file: if
    the spec or a config exists, nothing is written (exit 1); an existing pre-commit config, workflow or
    .gitignore is left alone and the lines to merge are printed.
    """
    from compiler.codegen.emit import InternalError

    try:
        root = folder_to_set_up(directory)
        app = checked_app_name(name) if name is not None else app_name_from(root)
        found = read_targets(targets, root)
        files = planned_files(app, found)
        refuse_conflicts(root, files)
    except (InitError, InternalError) as exc:
        click.echo(f"mtc init: error: {exc}", err=True)
        return ExitCode.INVALID
    to_merge = [f for f in files if f.merge and os.path.lexists(root / f.path)]
    created = not root.exists()
    try:
        write_files(root, [f for f in files if f not in to_merge])
    except OSError as exc:
        problem = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        click.echo(f"mtc init: error: cannot write in {directory}: {problem}; nothing was written", err=True)
        return ExitCode.INVALID
    report(directory, root, app, files, to_merge, found, created)
    return ExitCode.OK


# ------------------------------------------------------------------------------------------------ inputs


def folder_to_set_up(directory: str) -> Path:
    root = Path(directory)
    if os.path.lexists(root) and not root.is_dir():
        raise InitError(f"{directory} is not a folder; give the repository's folder")
    return root


def checked_app_name(name: str) -> str:
    if not APP_NAME.fullmatch(name):
        suggestion = sanitized(name)
        hint = f", e.g. --name {suggestion}" if suggestion else ""
        raise InitError(
            f"--name {name!r} is not a Modal app name: letters, digits, '-' and '_', at most "
            f"{MODAL_NAME_MAX} characters, starting with a letter or digit{hint}"
        )
    return name


def app_name_from(root: Path) -> str:
    """The folder's name made into a valid app name, or ``app`` when nothing of it is usable."""
    return sanitized(root.resolve().name) or "app"


def sanitized(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    return cleaned[:MODAL_NAME_MAX].rstrip("-_")


def read_targets(texts: Iterable[str], root: Path) -> list[Target]:
    """Each ``--target`` parsed, checked against the code under ``root``, with its args; names unique."""
    targets = [parse_target(text) for text in texts]
    seen: dict[str, Target] = {}
    for target in targets:
        other = seen.setdefault(target.function, target)
        if other is not target:
            raise InitError(
                f"--target {other.module}:{other.entry} and --target {target.module}:{target.entry} both "
                f"make a function named '{target.function}'; name one of them: "
                f"--target OTHER_NAME={target.module}:{target.entry}"
            )
    return [with_signature(target, root) for target in targets]


def parse_target(text: str) -> Target:
    match = TARGET.fullmatch(text)
    if match is None:
        raise InitError(
            f"--target {text!r} is not MODULE:FUNCTION (e.g. mypkg.train:fit, or fit=mypkg.train:main)"
        )
    module, entry = match["module"], match["entry"]
    if not all(_identifier(part) for part in module.split(".")):
        raise InitError(
            f"--target {text!r}: '{module}' is not a Python module name (dotted identifiers: mypkg.train)"
        )
    if not _identifier(entry):
        raise InitError(f"--target {text!r}: '{entry}' is not a Python function name")
    function = entry if match["name"] is None else match["name"]
    problem = function_name_problem(function)
    if problem:
        raise InitError(
            f"--target {text!r}: the spec's function name '{function}' {problem}; give another: "
            f"--target NAME={module}:{entry}"
        )
    return Target(function, module, entry)


def _identifier(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def function_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a function in the spec (the lint's function-name rule), or None."""
    from compiler.spec.pynames import MODULE_NAMES

    if not _identifier(name):
        return "is not a Python identifier (ASCII letters, digits and '_', not a keyword)"
    if name in MODULE_NAMES:
        return "is a name the generated module uses"
    return None


def with_signature(target: Target, root: Path) -> Target:
    """``target`` with args from its signature's defaults, read as the lint reads it (never imported)."""
    from compiler.lint.targets import SHAPES
    from compiler.spec import targets as sources

    shown = f"--target {target.module}:{target.entry}"
    lookup = sources.read_target(target.module, target.entry, root)
    if lookup.module is None:
        relative = target.module.replace(".", "/")
        raise InitError(
            f"{shown}: module {target.module} is neither in {root} ({relative}.py or {relative}/__init__.py) "
            "nor installed here; check the spelling, or give the repository that holds it as DIR"
        )
    if lookup.target is None:
        listed = ", ".join(sources.function_names(lookup.module)) or "none"
        raise InitError(
            f"{shown}: {lookup.module.source} defines no function '{target.entry}' (it has: {listed})"
        )
    if lookup.target.shape in SHAPES:
        raise InitError(f"{shown} is {SHAPES[lookup.target.shape]}")
    if lookup.target.parameters is None:
        reason = "its signature cannot be read (decorated, or not a plain definition): add the args it needs"
        return replace(target, unset=(("(all)", reason),))
    return replace(target, **signature_args(lookup.target.parameters))


def signature_args(parameters: Iterable[Any]) -> dict[str, tuple]:
    """``args``, ``unset`` and ``required`` for a Target, from its parameters
    (compiler.spec.targets.Parameter)."""
    from compiler.spec.pynames import ENTRYPOINT_FLAGS, MODULE_NAMES

    args: list[tuple[str, Any]] = []
    unset: list[tuple[str, str]] = []
    required: list[str] = []
    for parameter in parameters:
        name = parameter.name
        if name == CALLBACK_PARAMETER:
            continue
        if parameter.required:
            required.append(name)
        if not parameter.keyword:
            unset.append((name, "positional-only: mtc passes arguments by name; make it a normal parameter"))
        elif name in MODULE_NAMES | ENTRYPOINT_FLAGS or not name.isascii():
            unset.append((name, "its name is one the generated module uses: rename the parameter"))
        elif parameter.required:
            unset.append((name, "REQUIRED: it has no default in the signature; set a value"))
        elif (value := spec_value(parameter.default)) is None:
            unset.append((name, "its default is not a string, number, boolean or list of those"))
        else:
            args.append((name, value))
    return {"args": tuple(args), "unset": tuple(unset), "required": tuple(required)}


def spec_value(value: Any) -> Any:
    """A literal default as a spec value (string, finite number, boolean or a list of those), else None."""
    if isinstance(value, list | tuple):
        items = [_spec_scalar(item) for item in value]
        return None if any(item is None for item in items) else items
    return _spec_scalar(value)


def _spec_scalar(value: Any) -> Any:
    if isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return None


# ------------------------------------------------------------------------------------------------ render


def planned_files(app: str, targets: list[Target]) -> list[Planned]:
    """Every file ``mtc init`` writes for the app ``app``, rendered and checked to parse as YAML."""
    context = {
        "name": app,
        "module": app.replace("-", "_"),
        "results_volume": volume_name(app, "-results"),
        "data_volume": volume_name(app, "-data"),
        "targets": targets,
        "packages": shipped_packages(targets),
        "mtc_requirement": mtc_requirement(),
    }
    if targets:
        files = [Planned(SPEC, render("init_deployment_targets.yaml.j2", context))]
    else:
        files = [
            Planned(SPEC, render("init_deployment_runtime.yaml.j2", context)),
            Planned("specs/train.yaml", render("init_train.yaml.j2", context)),
            Planned("specs/train.debug.yaml", render("init_train.debug.yaml.j2", context)),
        ]
    files += [
        Planned(".pre-commit-config.yaml", render("init_pre-commit-config.yaml.j2", context), merge=True),
        Planned(".github/workflows/mtc.yml", render("init_workflow.yaml.j2", context), merge=True),
        Planned(".gitignore", render("init_gitignore.j2", context), merge=True),
    ]
    for planned in files:
        _check_yaml(planned)
    return files


def shipped_packages(targets: list[Target]) -> list[str]:
    """The top-level packages of the targets that the image must get (the standard library it has)."""
    return sorted({t.module.split(".")[0] for t in targets} - set(sys.stdlib_module_names))


def volume_name(app: str, suffix: str) -> str:
    return app[: MODAL_NAME_MAX - len(suffix)].rstrip("-_") + suffix


def mtc_requirement() -> str:
    """``mtc==VERSION`` for the version running now, plain ``mtc`` when it runs from a source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"mtc=={version('mtc')}"
    except PackageNotFoundError:
        return "mtc"


def render(template: str, context: dict[str, Any]) -> str:
    return _environment().get_template(template).render(context)


@cache
def _environment() -> Any:
    from compiler.codegen.render import template_environment

    return template_environment(yaml=yaml_value)


def yaml_value(value: Any) -> str:
    """``value`` as a YAML flow value that reads back as the same value: plain when safe, else JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    text = str(value)
    plain = PLAIN_YAML.fullmatch(text) and _load_yaml(f"- {text}\n- [{text}]") == [text, [text]]
    return text if plain else json.dumps(text)


def _load_yaml(text: str) -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def _check_yaml(planned: Planned) -> None:
    from ruamel.yaml.error import YAMLError

    from compiler.codegen.emit import InternalError

    if planned.path == ".gitignore":
        return
    try:
        _load_yaml(planned.text)
    except YAMLError as exc:  # a template or filter bug, never the user's input
        raise InternalError(
            f"mtc init rendered invalid YAML for {planned.path} ({exc}); this is a bug"
        ) from exc


# ------------------------------------------------------------------------------------------------ write


def refuse_conflicts(root: Path, files: list[Planned]) -> None:
    """InitError naming every file that exists (or whose folder is a file), unless it is one to merge."""
    problems = []
    for planned in files:
        path = root / planned.path
        blocking_folder = next((p for p in _parents_within(root, path) if _is_non_folder(p)), None)
        if blocking_folder is not None:
            problems.append(f"{blocking_folder} is a file, where {planned.path} needs a folder")
        elif os.path.lexists(path) and not planned.merge:
            problems.append(f"{path} exists")
    if problems:
        them = "it" if len(set(problems)) == 1 else "them"
        raise InitError(
            "; ".join(dict.fromkeys(problems))
            + f". mtc init never overwrites a file and wrote nothing: move {them} aside, or edit {them}"
        )


def _parents_within(root: Path, path: Path) -> list[Path]:
    relative = path.relative_to(root)
    return [root.joinpath(*relative.parts[:n]) for n in range(1, len(relative.parts))]


def _is_non_folder(path: Path) -> bool:
    return os.path.lexists(path) and not path.is_dir()


def write_files(root: Path, files: list[Planned]) -> None:
    """Create every file (and missing folder); on any error remove what was created, then raise."""
    made_folders: list[Path] = []
    written: list[Path] = []
    try:
        for planned in files:
            path = root / planned.path
            made_folders += _make_folders(path.parent)
            create_atomically(path, planned.text)
            written.append(path)
    except OSError:
        for path in reversed(written):
            path.unlink(missing_ok=True)
        for folder in reversed(made_folders):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise


def _make_folders(folder: Path) -> list[Path]:
    missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def create_atomically(path: Path, text: str) -> None:
    """Write a new file in one step: a complete file under a private name, hard-linked to ``path`` if free.

    A link, unlike a rename, fails when ``path`` exists (FileExistsError), so a file that appeared since the
    check is never replaced, and a reader never sees half of the new one.
    """
    from compiler.codegen.emit import write_atomic

    staging = path.with_name(f".{path.name}.{os.getpid()}.mtc-init")
    write_atomic(staging, text)
    try:
        os.link(staging, path)
    finally:
        staging.unlink()


# ------------------------------------------------------------------------------------------------ report


def report(
    directory: str,
    root: Path,
    app: str,
    files: list[Planned],
    to_merge: list[Planned],
    targets: list[Target],
    created: bool,
) -> None:
    if created:
        say(f"mtc init: {directory} did not exist: created it")
    say(f"mtc init: set up the Modal app '{app}' in {directory}")
    for planned in files:
        if planned not in to_merge:
            say(f"  wrote {planned.path}")
    for planned in to_merge:
        show_merge(root, planned)
    for target in targets:
        for parameter in target.required:
            say(
                f"  note: {target.module}:{target.entry} needs '{parameter}', which has no default: set it "
                f"under functions.{target.function}.args in {SPEC} (until then `mtc lint` fails)"
            )
    if not _in_git_repository(root):
        say(
            f"  note: {directory} is not in a git repository: `git init` it. The pre-commit and CI files"
            " expect one, and mtc finds your code from specs/ up to the project root (the folder with .git)"
        )
    say("next:")
    if directory not in (".", "./"):
        say(f"  cd {directory}")
    function = targets[0].function if targets else "train"
    say(f"  mtc lint && mtc compile && mtc run {function} --profile debug")
    say("  git add specs generated .pre-commit-config.yaml .github .gitignore && git commit -m 'mtc init'")


def say(message: str) -> None:
    click.echo(message, err=True)


def show_merge(root: Path, planned: Planned) -> None:
    """Print what ``planned`` would have added to the existing file, unless the file has it already."""
    wanted = [
        line for line in planned.text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    try:
        present = set((root / planned.path).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        present = set()
    if all(line in present for line in wanted):
        say(f"  {planned.path} exists and already has what mtc needs: left as it is")
        return
    say(f"  {planned.path} exists: left as it is; merge this into it by hand:")
    click.echo(planned.text.rstrip("\n"))


def _in_git_repository(root: Path) -> bool:
    resolved = root.resolve()
    return any((folder / ".git").exists() for folder in (resolved, *resolved.parents))
