"""Walk a Modal app module's ``ast`` and build the spec: the app, its images, volumes and functions, the jobs
module holding the moved bodies, the comments to carry over and the notes on what could not be read."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.importer import bodies
from compiler.importer.arguments import read_args
from compiler.importer.functions import FunctionRead, Resolvers, read_decorator
from compiler.importer.images import is_image, read_image
from compiler.importer.notes import Notes, Unreadable
from compiler.importer.sourcecomments import SourceComments
from compiler.importer.storage import is_storage, read_secret, read_storage, storage_name
from compiler.importer.values import Scope, dotted

APP_CALLS = frozenset({"modal.App", "App", "modal.Stub"})
SKIPPED_DECORATORS = {
    "local_entrypoint": "a local entrypoint: the generated module's entrypoint runs one --action at a time",
    "cls": "a class (@app.cls): the spec declares functions only",
}
NOTED_DECORATORS = (
    "clustered",
    "concurrent",
    "batched",
    "fastapi_endpoint",
    "asgi_app",
    "wsgi_app",
    "web_server",
)


class ImportError_(Exception):  # noqa: N801 - not the builtin
    """The file is not a Modal app mtc can read at all."""


@dataclass
class Imported:
    spec: dict[str, Any]
    comments: list[tuple[tuple, str]] = field(default_factory=list)
    notes: Notes = field(default_factory=Notes)
    jobs_module: str | None = None
    jobs_source: str | None = None


def import_app(app_file: Path, spec_dir: Path) -> Imported:
    """Read ``app_file`` (at most 1 MiB, through the bounded reader every input of mtc goes through)."""
    from runtime.core.files import UnreadableFile, read_limited

    try:
        source = read_limited(app_file, kind="Python file").decode("utf-8")
        tree = ast.parse(source, filename=str(app_file))
        return _Reader(app_file, spec_dir, source, tree).read()
    except UnreadableFile as exc:
        raise ImportError_(f"{app_file}: {exc}") from None
    except UnicodeDecodeError:
        raise ImportError_(f"{app_file}: not UTF-8 text") from None
    except SyntaxError as exc:
        raise ImportError_(f"{app_file}:{exc.lineno}: not valid Python: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ImportError_(f"{app_file}: expressions nested too deeply to read") from None


def _module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names assigned exactly once (a name assigned twice has no single value)."""
    assigned: dict[str, list[ast.expr]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            assigned.setdefault(node.target.id, []).append(node.value)
    return {name: values[0] for name, values in assigned.items() if len(values) == 1}


def spec_name(variable: str, suffix: str) -> str:
    return re.sub(rf"_{suffix}$", "", variable) or variable


class _Reader:
    def __init__(self, app_file: Path, spec_dir: Path, source: str, tree: ast.Module) -> None:
        self.app_file, self.spec_dir, self.source, self.tree = app_file, spec_dir, source, tree
        self.scope = Scope(app_file.resolve(), _module_constants(tree))
        self.comments = SourceComments(source)
        self.result = Imported(spec={"version": 1})
        self.images: dict[str, str] = {}  # variable -> spec name
        self.storage: dict[str, str] = {}
        self.app_variable = ""
        self.carried: set[tuple[int, str]] = set()  # a comment goes to the first key of its line only

    def read(self) -> Imported:
        self._app()
        for node in self.tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self._assignment(node.targets[0].id, node)
        functions = self._functions()
        self._ship_jobs(functions)
        spec = self.result.spec
        for section in ("images", "volumes"):
            if section in spec and not spec[section]:
                del spec[section]
        spec["functions"] = functions
        return self.result

    def note(self, line: int, message: str, where: tuple = ()) -> None:
        self.result.notes.add(line, message, where)
        self.result.comments.append((where, f"mtc import: {message} ({self.app_file.name}:{line})"))

    def carry(self, where: tuple, line: int, above: bool = True) -> None:
        texts = self.comments.around(line) if above else self.comments.trailing(line)
        self.result.comments.extend((where, text) for text in texts if (line, text) not in self.carried)
        self.carried |= {(line, text) for text in texts}

    # the app
    def _app(self) -> None:
        for node in self.tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and dotted(node.value.func) in APP_CALLS
            ):
                if isinstance(node.targets[0], ast.Name):
                    self.app_variable = node.targets[0].id
                    self._app_settings(node.value)
                    self.carry(("app",), node.lineno)
                    return
        raise ImportError_(f"{self.app_file}: no `app = modal.App(...)` at the top level of the module")

    def _app_settings(self, call: ast.Call) -> None:
        app: dict[str, Any] = {}
        name_node = (
            call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "name"), None)
        )
        try:
            app["name"] = self.scope.evaluate(name_node) if name_node else None
        except Unreadable as exc:
            self.note(exc.line, f"the app's name: {exc.reason}", ("app",))
        if not isinstance(app.get("name"), str):
            app["name"] = spec_name(self.app_file.stem, "app").replace("_", "-")
        self.result.spec["app"] = app
        for keyword in call.keywords:
            self._app_keyword(keyword, app)

    def _app_keyword(self, keyword: ast.keyword, app: dict[str, Any]) -> None:
        if keyword.arg == "name":
            return
        try:
            if keyword.arg == "secrets" and isinstance(keyword.value, ast.List | ast.Tuple):
                app["secrets"] = [read_secret(item, self.scope) for item in keyword.value.elts]
            elif keyword.arg == "image":
                self.app_image = keyword.value
            else:
                raise Unreadable(f"modal.App's `{keyword.arg}=` has no key in the spec", keyword.value.lineno)
        except Unreadable as exc:
            self.note(exc.line, exc.reason, ("app",))

    # images and storage
    def _assignment(self, variable: str, node: ast.Assign) -> None:
        if is_storage(node.value):
            name = storage_name(variable)
            self.storage[variable] = name
            self._add_storage(name, node.value, node.lineno)
        elif is_image(node.value, set(self.images)):
            name = spec_name(variable, "image")
            self.images[variable] = name
            self._add_image(name, node.value, node.lineno)

    def _add_storage(self, name: str, call: ast.Call, line: int) -> None:
        entry, problems = read_storage(call, self.scope)
        self.result.spec.setdefault("volumes", {})[name] = entry
        self.carry(("volumes", name), line)
        for problem in problems:
            self.note(problem.line, problem.reason, ("volumes", name))

    def _add_image(self, name: str, node: ast.expr, line: int) -> None:
        read = read_image(node, self.scope, self.images, self.spec_dir)
        self.result.spec.setdefault("images", {})[name] = read.entry
        self.carry(("images", name), line)
        for index, step_line in enumerate(read.step_lines):
            self.carry(("images", name, "steps", index), step_line)
        for problem in read.problems:
            self.note(problem.line, problem.reason, ("images", name))

    def _inline_image(self, node: ast.expr, function: str) -> str:
        if isinstance(node, ast.Name) and node.id in self.images:
            return self.images[node.id]
        if not is_image(node, set(self.images)):
            raise Unreadable(f"`{ast.unparse(node)}` is not an image of the module", node.lineno)
        self._add_image(function, node, node.lineno)
        return function

    def _inline_storage(self, node: ast.expr, mount: str) -> str:
        if isinstance(node, ast.Name) and node.id in self.storage:
            return self.storage[node.id]
        if not is_storage(node):
            raise Unreadable(f"`{ast.unparse(node)}` is not a volume of the module", node.lineno)
        name = re.sub(r"\W+", "_", mount).strip("_") or "volume"
        self.storage[f"<{mount}>"] = name
        self._add_storage(name, node, node.lineno)
        return name

    # functions
    def _functions(self) -> dict[str, Any]:
        functions: dict[str, Any] = {}
        self.dropped: set[str] = set()
        names = {n.name for n in self.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for node in self.tree.body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            decorator = self._app_decorator(node)
            if decorator is None:
                continue
            kind = dotted(decorator.func if isinstance(decorator, ast.Call) else decorator).split(".")[-1]
            if kind != "function" or isinstance(node, ast.ClassDef):
                if kind == "local_entrypoint":
                    self.dropped.add(node.name)  # it only starts the app's functions: nothing to keep
                reason = SKIPPED_DECORATORS.get(kind, f"@{self.app_variable}.{kind} has no form in the spec")
                self.note(decorator.lineno, f"`{node.name}` not imported: {reason}", ("functions",))
                continue
            functions[node.name] = self._function(node, decorator, names)
        return functions

    def _app_decorator(self, node: ast.AST) -> ast.expr | None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if (dotted(target) or "").startswith(f"{self.app_variable}."):
                return decorator
        return None

    def _function(self, node: ast.FunctionDef, decorator: ast.expr, names: set[str]) -> dict[str, Any]:
        name = node.name
        call = decorator if isinstance(decorator, ast.Call) else None
        read: FunctionRead = read_decorator(
            call, name, self.scope, Resolvers(self._inline_image, self._inline_storage)
        )
        target = bodies.delegated_target(node)
        entry: dict[str, Any] = {"run": target or f"{{jobs}}:{name}"}
        args, problems = read_args(node, self.scope)
        if args:
            entry["args"] = args
        entry.update(read.entry)
        first = min(d.lineno for d in node.decorator_list)
        self.carry(("functions", name), first)
        for key, line in read.key_lines.items():
            self.carry(("functions", name, key), line)
        for key, problem in read.problems:
            self.note(problem.line, f"`{key}=`: {problem.reason}", ("functions", name))
        for problem in problems:
            self.note(problem.line, problem.reason, ("functions", name, "args"))
        self._decorator_notes(node)
        if target is None:
            for line, text in bodies.remote_calls(node, names):
                self.note(
                    line,
                    f"`{text}(...)` calls another Modal function; in the jobs module it is a plain function",
                    ("functions", name),
                )
        return entry

    def _decorator_notes(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = dotted(target) or ""
            if name.startswith("modal.") and name.split(".")[-1] in NOTED_DECORATORS:
                self.note(
                    decorator.lineno, f"@{name} has no form in the spec: left out", ("functions", node.name)
                )

    def _ship_jobs(self, functions: dict[str, Any]) -> None:
        """Name the jobs module in the moved functions' ``run:``, write its source, and ship it in every image
        a function starts from (images built on another get it from their base)."""
        moved = [f for f in functions.values() if f["run"].startswith("{jobs}:")]
        if not moved:
            return
        jobs = re.sub(r"\W", "_", self.result.spec["app"]["name"]) + "_jobs"
        for function in moved:
            function["run"] = function["run"].replace("{jobs}", jobs)
        cut = bodies.removals(self.tree, self.app_variable, self.dropped)
        self.result.jobs_module, self.result.jobs_source = (
            jobs,
            bodies.jobs_source(self.source, self.app_file.name, cut),
        )
        images = self.result.spec.setdefault("images", {})
        default = self._default_image(functions, images)
        for function in functions.values():
            if default and "image" not in function:
                function["image"] = default
        for function in moved:
            shipped = (
                _root_image(images, function["image"]).setdefault("add_local", {}).setdefault("python", [])
            )
            if jobs not in shipped:
                shipped.append(jobs)

    def _default_image(self, functions: dict[str, Any], images: dict[str, Any]) -> str | None:
        app_image = getattr(self, "app_image", None)
        if app_image is not None:
            try:
                return self._inline_image(app_image, "default")
            except Unreadable as exc:
                self.note(exc.line, f"the app's image: {exc.reason}", ("images",))
        if any("image" not in f for f in functions.values()):
            images["plain"] = {"from": "debian_slim"}
            self.result.comments.append(
                (("images", "plain"), "Modal's default image, for the functions that name none")
            )
            return "plain"
        return None


def _root_image(images: dict[str, Any], name: str) -> dict[str, Any]:
    seen: set[str] = set()
    while "base" in images[name] and name not in seen and images[name]["base"] in images:
        seen.add(name)
        name = images[name]["base"]
    return images[name]
