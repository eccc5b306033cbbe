"""The source cache behind the lint's cross-file rules: what a file imports and what its module-level
definitions are, kept by content hash so a lint parses only the files that changed."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from compiler.lint import configs, imports
from compiler.spec import sourcecache, summary, targets
from compiler.spec.sourcecache import SourceCache
from runtime.core.yamlfile import load_yaml

SOURCE = "import numpy\nfrom . import sibling\ntry:\n    import optional\nexcept ImportError:\n    pass\n\n\n"
SOURCE += "def main(config: str, epochs: int = 3, **overrides):\n    return config\n"


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A cache folder of its own, and no cache in memory: every test starts as a new process would."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(imports, "_STORE", SourceCache("lint-imports", version=1))
    monkeypatch.setattr(summary, "_CACHE", SourceCache("module-summaries", version=1))
    summary._summary.cache_clear()
    imports._names_in.cache_clear()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    module = tmp_path / "pkg" / "job.py"
    module.write_text(SOURCE)
    return module


def restart(monkeypatch):
    monkeypatch.setattr(imports, "_STORE", SourceCache("lint-imports", version=1))
    monkeypatch.setattr(summary, "_CACHE", SourceCache("module-summaries", version=1))
    summary._summary.cache_clear()
    imports._names_in.cache_clear()


def count_parsing(monkeypatch) -> list[str]:
    """The source files parsed from now on (literal defaults, parsed as expressions, do not count)."""
    parsed: list[str] = []
    original = ast.parse

    def counting(source, filename="<unknown>", *args, **kwargs):
        if str(filename).endswith(".py"):
            parsed.append(str(filename))
        return original(source, filename, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting)
    return parsed


def test_a_second_lint_reads_imports_and_targets_from_the_cache(fresh, monkeypatch, tmp_path):
    first = imports.imported_names(fresh, "pkg.job")
    imports._STORE.save()
    target = targets.read_target("pkg.job", "main", tmp_path).target
    assert ("numpy", 1) in first and ("pkg.sibling", 2) in first
    assert not any(name == "optional" for name, _ in first)  # an optional import is not required
    assert (tmp_path / "cache" / "mtc" / "lint-imports.json").is_file()
    assert (tmp_path / "cache" / "mtc" / "module-summaries.json").is_file()
    restart(monkeypatch)
    parsed = count_parsing(monkeypatch)
    assert imports.imported_names(fresh, "pkg.job") == first
    again = targets.read_target("pkg.job", "main", tmp_path).target
    assert parsed == []
    assert again == target
    assert again.parameter("epochs").default == 3 and again.takes_any_keyword


def test_an_edited_file_is_read_again(fresh, monkeypatch):
    imports.imported_names(fresh, "pkg.job")
    imports._STORE.save()
    fresh.write_text("import pandas\n")
    restart(monkeypatch)
    assert imports.imported_names(fresh, "pkg.job") == (("pandas", 1),)


@pytest.mark.parametrize("damage", ["{not json", '{"version": 1, "entries": []}', '"text"', "[]", ""])
def test_a_damaged_cache_is_ignored_and_rewritten(fresh, monkeypatch, tmp_path, damage):
    cache_file = tmp_path / "cache" / "mtc" / "lint-imports.json"
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text(damage)
    assert ("numpy", 1) in imports.imported_names(fresh, "pkg.job")
    imports._STORE.save()
    assert json.loads(cache_file.read_text())["version"] == 1


def test_a_cache_folder_that_cannot_be_written_is_not_an_error(fresh, tmp_path, monkeypatch):
    (tmp_path / "cache").write_text("a file where the folder should be")
    assert ("numpy", 1) in imports.imported_names(fresh, "pkg.job")
    imports._STORE.save()  # no exception: the next lint parses again


def test_writers_keep_each_others_entries(fresh, tmp_path, monkeypatch):
    one = SourceCache("shared", version=1)
    two = SourceCache("shared", version=1)
    one.get("a")
    two.get("b")  # both loaded the empty file before either saved
    one.put("a", [1])
    two.put("b", [2])
    one.save()
    two.save()
    assert SourceCache("shared", version=1).get("a") == [1]
    assert sourcecache.content_key(b"x", "pkg") != sourcecache.content_key(b"x", "other")


@pytest.mark.parametrize("config", ["specs/train.yaml", "specs/train.debug.yaml"])
def test_a_training_config_from_the_cache_is_the_one_read_from_the_file(fresh, monkeypatch, config):
    monkeypatch.setattr(configs, "_DOCS", SourceCache("training-configs", version=1))
    path = Path(__file__).resolve().parents[2] / config
    assert configs._remembered(path, config) is None
    read = load_yaml(path, display_path=config)
    configs._remember(read)
    monkeypatch.setattr(configs, "_DOCS", SourceCache("training-configs", version=1))
    assert configs._remembered(path, config) == read
    assert configs._remembered(path, "another/name.yaml") is None  # positions name the file as written
