"""The files ``mtc init`` writes: rendered from the templates (``compiler/codegen/templates/init_*``), checked
to parse as YAML, then written atomically; a file that exists is never replaced."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compiler.cli.init_inputs import InitError, Target
from compiler.platform.modal_limits import MODAL_NAME_MAX

PLAIN_YAML = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./:-]*")
SPEC = "specs/deployment.yaml"


@dataclass(frozen=True)
class Planned:
    """A file to write, relative to DIR. ``merge``: when it exists, print the text instead of failing."""

    path: str
    text: str
    merge: bool = False


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
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(key)}: {yaml_value(item)}" for key, item in value.items()) + "}"
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
