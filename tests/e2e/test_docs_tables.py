"""The reference tables in docs/ against the code they describe: the CLI options (the click commands), the
``MTC_*`` environment variables (runtime/core/env.py), the dependencies (pyproject.toml), the exit codes
(compiler/cli/exitcodes.py), the lint rules (the registry) and the import contracts (pyproject.toml).

The tables of CLI options, environment variables, lint rules and import contracts are generated:
``python -m tests.e2e.test_docs_tables`` rewrites them between their ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->`` markers, and a test fails when one is stale.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import click
import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
ENV_MODULE = REPO / "runtime" / "core" / "env.py"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_options_table() -> str:
    """One row per argument and option of every `mtc` verb, in click's own words (`mtc VERB --help`)."""
    from compiler.cli import cli

    rows = ["| command | argument or option | meaning |", "| --- | --- | --- |"]
    for name in sorted(cli.commands):
        command = cli.commands[name]
        context = click.Context(command, info_name=name, parent=click.Context(cli, info_name="mtc"))
        for param in command.params:
            if isinstance(param, click.Argument):
                record = (param.make_metavar(context), "argument")
            else:
                record = param.get_help_record(context) or (", ".join(param.opts), "")
            rows.append(f"| `mtc {name}` | `{cell(record[0])}` | {cell(record[1])} |")
    return "\n".join(rows)


def env_variables() -> dict[str, str]:
    """``MTC_*`` name -> the comment on its line in runtime/core/env.py."""
    source = ENV_MODULE.read_text(encoding="utf-8")
    comments = {
        token.start[0]: token.string.lstrip("# ").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    names = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names[node.value.value] = comments.get(node.lineno, "")
    return names


def env_table() -> str:
    rows = ["| variable | meaning |", "| --- | --- |"]
    rows += [f"| `{name}` | {cell(meaning)} |" for name, meaning in sorted(env_variables().items())]
    return "\n".join(rows)


def lint_rules_table() -> str:
    """One row per registered lint rule, in registration order, with the module that checks it."""
    rows = ["| rule | severity | checks that | how to fix | module |", "| --- | --- | --- | --- | --- |"]
    for rule in registered_rules().values():
        module = rule.check.__module__.replace(".", "/") + ".py"
        described = f"{cell(rule.summary)} | {cell(rule.fix)}"
        rows.append(f"| `{rule.id}` | {rule.severity} | {described} | `{module}` |")
    return "\n".join(rows)


def import_contracts_table() -> str:
    """One row per import-linter contract of pyproject.toml: its name, kind and modules."""
    import tomllib

    settings = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    rows = ["| contract | kind | modules |", "| --- | --- | --- |"]
    for contract in settings["contracts"]:
        if contract["type"] == "layers":
            modules = " > ".join(contract["layers"])
        else:
            sources, forbidden = (", ".join(contract[key]) for key in ("source_modules", "forbidden_modules"))
            modules = f"{sources} imports none of {forbidden}"
        rows.append(f"| {cell(contract['name'])} | {contract['type']} | {cell(modules)} |")
    return "\n".join(rows)


GENERATED = {
    ("cli.md", "cli-options"): cli_options_table,
    ("cli.md", "environment"): env_table,
    ("lint-rules.md", "lint-rules"): lint_rules_table,
    ("architecture.md", "import-contracts"): import_contracts_table,
}


def markers(marker: str) -> tuple[str, str]:
    return f"<!-- {marker}:begin -->\n", f"<!-- {marker}:end -->"


def block(text: str, marker: str) -> str:
    """What lies between the marker lines, without the last newline."""
    begin, end = markers(marker)
    assert begin in text and end in text, f"the markers of {marker} are missing"
    return text.split(begin, 1)[1].split(end, 1)[0].removesuffix("\n")


def regenerate() -> None:
    for (name, marker), make in GENERATED.items():
        path = DOCS / name
        text = path.read_text(encoding="utf-8")
        begin, end = markers(marker)
        head, rest = text.split(begin, 1)
        path.write_text(f"{head}{begin}{make()}\n{end}{rest.split(end, 1)[1]}", encoding="utf-8")


@pytest.mark.parametrize(("name", "marker"), sorted(GENERATED))
def test_a_generated_table_is_up_to_date(name, marker):
    text = (DOCS / name).read_text(encoding="utf-8")
    expected = GENERATED[name, marker]()
    assert block(text, marker) == expected, "stale: run python -m tests.e2e.test_docs_tables"


def test_every_environment_variable_is_in_the_table():
    assert env_variables()
    assert all(name.startswith("MTC_") for name in env_variables())
    documented = set(
        re.findall(
            r"^\| `(MTC_[A-Z_]+)` \|", block((DOCS / "cli.md").read_text("utf-8"), "environment"), re.M
        )
    )
    assert documented == set(env_variables())


def dependency_rows() -> dict[str, str]:
    """package -> its extra, from the table `| package | extra | why |` of docs/dependencies.md."""
    text = (DOCS / "dependencies.md").read_text(encoding="utf-8")
    table = text.split("\n| package | extra | why |\n| --- | --- | --- |\n")[1].split("\n\n")[0]
    rows: dict[str, str] = {}
    for line in table.strip().splitlines():
        names, extra, _why = (part.strip() for part in line.strip("|").split("|", 2))
        for package in names.split(","):
            rows[package.strip().lower()] = extra.strip("`")
    return rows


def test_the_dependency_table_lists_every_dependency_with_its_extra():
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    declared = {
        Requirement(text).name.lower(): extra
        for extra, requirements in groups.items()
        for text in requirements
        if Requirement(text).name != "mtc"
    }
    assert dependency_rows() == declared


def test_the_exit_code_table_has_every_exit_code():
    from compiler.cli.exitcodes import ExitCode

    text = (DOCS / "exit-codes.md").read_text(encoding="utf-8")
    documented = {int(code): name for code, name in re.findall(r"^\| (\d+) \| `(\w+)` \|", text, re.M)}
    assert documented == {int(code): code.name for code in ExitCode}


def registered_rules() -> dict:
    from compiler import lint  # importing it registers every rule

    return dict(lint.RULES)


def test_every_lint_rule_is_in_the_reference_and_every_row_is_a_rule():
    text = (DOCS / "lint-rules.md").read_text(encoding="utf-8")
    rules = registered_rules()
    for rule in rules.values():
        assert f"| `{rule.id}` | {rule.severity} |" in text, rule.id
    rows = set(re.findall(r"^\| `([a-z0-9/-]+)` \| (?:error|warning) \|", text, re.M))
    assert rows <= set(rules) | rule_ids_in_the_compiler(), rows - set(rules)


def rule_ids_in_the_compiler() -> set[str]:
    """Every string literal of the compiler's source: the ids of the diagnostics reported outside the lint's
    registry (the loader's, the resolver's, the renderer's)."""
    return {
        node.value
        for path in (REPO / "compiler").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


if __name__ == "__main__":
    regenerate()


PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
PATH_IN_TEXT = re.compile(r"`((?:compiler|runtime|specs|tests|benchmarks|generated)/[\w./-]*)`")
MODULE_IN_TEXT = re.compile(r"\b((?:compiler|runtime)(?:\.\w+)+)")


def is_module(parts: list[str]) -> bool:
    path = REPO.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def stale_names(page: Path) -> list[str]:
    """The repository paths and project modules a page names that do not exist (a file an example writes
    with ``> PATH`` does not count)."""
    text = page.read_text(encoding="utf-8")
    written = set(re.findall(r"> (\S+)", text))
    paths = [path.rstrip("/") for path in PATH_IN_TEXT.findall(text) if "<" not in path]
    stale = [path for path in paths if path not in written and not (REPO / path).exists()]
    for module in MODULE_IN_TEXT.findall(text):
        parts = module.split(".")
        if not is_module(parts) and not is_module(parts[:-1]):  # a module, or an attribute of one
            stale.append(module)
    return stale


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_the_pages_name_only_paths_and_modules_that_exist(page):
    assert not stale_names(page)


EXCERPT = re.compile(r"^<!-- excerpt of (\S+) -->\n```\w*\n(.*?)^```$", re.M | re.S)


def missing_from(path: Path, excerpt: str) -> list[str]:
    """The excerpt's lines that are not, in this order, lines of the file (``...`` skips; a line ending in
    `` ...`` matches a line that starts with the rest)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    at, missing = 0, []
    for line in excerpt.splitlines():
        if not line.strip() or line.strip() == "...":
            continue
        prefix = line.removesuffix(" ...")
        matches = str.startswith if prefix != line else str.__eq__
        found = next((n for n in range(at, len(lines)) if matches(lines[n], prefix)), None)
        if found is None:
            missing.append(line)
        else:
            at = found + 1
    return missing


def test_every_excerpt_matches_its_file():
    excerpts = [match.groups() for page in PAGES for match in EXCERPT.finditer(page.read_text("utf-8"))]
    assert excerpts
    for name, excerpt in excerpts:
        assert not missing_from(REPO / name, excerpt), name


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_reaches_a_file(page):
    targets = re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
    assert [target for target in targets if not (page.parent / target).exists()] == []
