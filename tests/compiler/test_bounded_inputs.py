"""Inputs read within limits from any kind of file, values that must be finite and plain, and module writes
that survive being killed: the shared reader (runtime.core.files.read_limited), the schema-stage value checks,
the price-file reader, and compiler.codegen.emit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from compiler.codegen.emit import (
    MAX_MODULE_BYTES,
    UnsafeTarget,
    difference,
    remove_stale_temporaries,
    write_atomic,
)
from compiler.lint.check import check
from compiler.platform.pricing import PricingError, load_prices
from runtime.config import load_config
from runtime.core.diagnostics import SpecError
from runtime.core.files import MAX_FILE_BYTES, READ_TIMEOUT_ENV, UnreadableFile, read_limited
from runtime.core.yamlfile import load_yaml

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "tests" / "specs" / "full.yaml"


@pytest.fixture
def fifo(tmp_path, monkeypatch):
    monkeypatch.setenv(READ_TIMEOUT_ENV, "0.3")
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


def edited_spec(tmp_path: Path, old: str, new: str) -> Path:
    """tests/specs/full.yaml with ``old`` (which must be there) replaced by ``new``, in ``tmp_path``."""
    text = FULL.read_text(encoding="utf-8")
    assert old in text
    spec = tmp_path / "deployment.yaml"
    spec.write_text(text.replace(old, new, 1))
    return spec


def rules(error: SpecError) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.rule) for d in error.diagnostics]


# ------------------------------------------------------------------------------------------ the reader


def test_a_device_that_never_ends_is_cut_at_the_limit():
    with pytest.raises(
        UnreadableFile, match=r"more than 1048576 bytes; a YAML file is limited to 1 MiB"
    ) as e:
        read_limited("/dev/zero")
    assert e.value.rule == "load/too-large"


def test_a_fifo_with_no_writer_times_out_instead_of_hanging(fifo):
    started = time.monotonic()
    with pytest.raises(UnreadableFile, match="FIFO or pipe with no writer") as e:
        read_limited(fifo)
    assert e.value.rule == "load/timeout" and time.monotonic() - started < 5


def test_a_fifo_with_a_writer_is_read_whole(fifo):
    text = b"version: 1\n" * 20_000  # larger than a pipe's buffer: read in several chunks

    def write() -> None:
        with open(fifo, "wb") as handle:
            handle.write(text)

    writer = threading.Thread(target=write)
    writer.start()
    assert read_limited(fifo) == text
    writer.join()


def test_a_directory_and_a_missing_file_are_named(tmp_path):
    with pytest.raises(UnreadableFile, match="is a directory; expected a JSON file") as e:
        read_limited(tmp_path, kind="JSON file")
    assert e.value.rule == "load/not-a-file"
    with pytest.raises(UnreadableFile, match="no such file"):
        read_limited(tmp_path / "nope.yaml")


def test_the_limit_is_exact(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"#" * MAX_FILE_BYTES)
    assert len(read_limited(path)) == MAX_FILE_BYTES
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(UnreadableFile, match="more than"):
        read_limited(path)


def test_a_spec_piped_to_dev_stdin_is_bounded():
    """2 MB through a pipe is refused (its size is unknown until read); a good spec through a pipe lints."""
    lint = [sys.executable, "-m", "compiler.cli", "lint", "/dev/stdin"]
    big = subprocess.run(lint, input=b"# padding\n" * 200_000, capture_output=True, timeout=60, cwd=ROOT)
    assert big.returncode == 1 and b"[load/too-large]" in big.stderr
    spec = (ROOT / "specs" / "deployment.yaml").read_bytes()
    good = subprocess.run(lint, input=spec, capture_output=True, timeout=60, cwd=ROOT / "specs")
    assert good.returncode == 0, good.stderr


def test_the_loader_reports_reader_problems_as_positioned_diagnostics(fifo, tmp_path):
    with pytest.raises(SpecError) as e:
        load_yaml(fifo)
    assert rules(e.value) == [(1, 1, "load/timeout")]
    with pytest.raises(SpecError) as e:
        load_yaml("/dev/zero")
    assert rules(e.value) == [(1, 1, "load/too-large")]


# ------------------------------------------------------------------------------------- values in a spec


def test_nan_in_a_training_config_is_refused_at_its_position(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("output_dir: /tmp/runs\ndata: {format: synthetic}\noptim:\n  lr: .nan\n")
    with pytest.raises(SpecError) as e:
        load_config(str(config))
    (diagnostic,) = e.value.diagnostics
    assert (diagnostic.line, diagnostic.col, diagnostic.rule) == (4, 7, "schema/not-finite")
    assert diagnostic.message == "optim.lr: expected a finite number, got .nan"


@pytest.mark.parametrize(("spelling", "shown"), [(".inf", ".inf"), ("-.Inf", "-.inf"), (".NaN", ".nan")])
def test_infinities_in_a_deployment_spec_are_refused_where_no_rule_looks(tmp_path, spelling, shown):
    spec = edited_spec(tmp_path, "backoff_coefficient: 2", f"backoff_coefficient: {spelling}")
    found = [d for d in check(spec).diagnostics if d.rule == "schema/not-finite"]
    assert len(found) == 1 and found[0].message.endswith(f"expected a finite number, got {shown}")
    assert spec.read_text().splitlines()[found[0].line - 1][found[0].col - 1 :].startswith(spelling)


def test_a_nul_in_a_mount_path_or_a_name_is_refused_at_its_position(tmp_path):
    spec = edited_spec(tmp_path, "/results: results", '"/results\\0": results')
    (found,) = [d for d in check(spec).diagnostics if d.rule == "schema/control-character"]
    line = spec.read_text().splitlines()[found.line - 1]
    assert line[found.col - 1 :].startswith('"/results\\0"')
    assert "'/results\\x00'" in found.message and "\0" not in found.message
    spec = edited_spec(tmp_path, "secrets: [wandb-secret]", 'secrets: ["wandb\\x1b[31m"]')
    (found,) = [d for d in check(spec).diagnostics if d.rule == "schema/control-character"]
    assert "app.secrets[0]" in found.message


def test_a_quoted_control_character_cannot_break_the_line_or_reach_the_terminal(tmp_path):
    spec = edited_spec(tmp_path, "version: 1\n", 'version: 1\n"k\\e[2J\\ny": 1\n')
    lines = [d.format() for d in check(spec).diagnostics]
    assert {line.rsplit("[", 1)[1] for line in lines} == {"schema/control-character]", "schema/unknown-key]"}
    assert all("\x1b" not in line and "\n" not in line and "k\\x1b[2J\\ny" in line for line in lines)


def test_tabs_and_newlines_in_a_value_are_still_allowed(tmp_path):
    spec = edited_spec(tmp_path, 'env: {PYTHONUNBUFFERED: "1"}', 'env: {NOTE: "a\\tb\\nc"}')
    result = check(spec)
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    assert dict(result.app.functions["train"].env)["NOTE"] == "a\tb\nc"


# ---------------------------------------------------------------------------------------- price files


def test_a_price_file_is_read_within_the_limit_from_any_kind_of_file(fifo, tmp_path):
    with pytest.raises(PricingError, match=r"^/dev/zero: a character device that gave more than 1048576"):
        load_prices("/dev/zero")
    with pytest.raises(PricingError, match="FIFO or pipe with no writer"):
        load_prices(fifo)
    with pytest.raises(PricingError, match="is a directory"):
        load_prices(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000)
    with pytest.raises(PricingError, match="nested too deeply"):
        load_prices(deep)


# ---------------------------------------------------------------------------------------- module writes


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink to a device"])
def test_only_a_regular_file_or_a_new_path_is_replaced(tmp_path, kind):
    target = tmp_path / "out.py"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    else:
        target.symlink_to("/dev/null")
    before = os.lstat(target)
    with pytest.raises(UnsafeTarget, match="mtc writes only to a regular file or a new path"):
        write_atomic(target, "x = 1\n")
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.py"]  # no temporary left either


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    target = tmp_path / "app.py"
    stale = tmp_path / f".app.py.{dead_pid()}.k2j4x9_a.tmp"
    live = tmp_path / f".app.py.{os.getppid()}.abcdefgh.tmp"
    other = tmp_path / f".other.py.{dead_pid()}.abcdefgh.tmp"
    for path in (stale, live, other):
        path.write_text("partial")
    write_atomic(target, "x = 1\n")
    assert target.read_text() == "x = 1\n"
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temporaries(target) == []


KILLED_WRITER = """
import sys
from compiler.codegen.emit import write_atomic
write_atomic(sys.argv[1], sys.argv[2] * 4_000_000)
"""


def test_a_writer_killed_at_any_moment_leaves_the_old_module_or_the_new_one(tmp_path):
    target = tmp_path / "app.py"
    target.write_text("old\n" * 4_000_000)
    seen = set()
    for attempt in range(8):
        writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), "new\n"], cwd=ROOT)
        time.sleep(0.05 + 0.1 * attempt)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        content = target.read_text()
        assert content in ("old\n" * 4_000_000, "new\n" * 4_000_000)
        seen.add(content[:4])
        target.write_text("old\n" * 4_000_000)
    write_atomic(target, "done\n")  # the next write removes what killed writers left
    assert [p.name for p in tmp_path.iterdir()] == ["app.py"] and target.read_text() == "done\n"
    assert "old\n" in seen  # at least one kill landed before the rename


def test_a_path_in_the_image_must_be_one_line(tmp_path):
    spec = edited_spec(tmp_path, "workdir: /app", 'workdir: "/app\\n"')
    (found,) = check(spec).diagnostics
    assert (
        found.rule == "schema/pattern"
        and "'/app\\n' is not an absolute path such as /app, on one line" in (found.message)
    )


def test_check_reads_at_most_a_module_sized_prefix_of_the_file_on_disk(tmp_path):
    huge = tmp_path / "app.py"
    with open(huge, "wb") as handle:
        handle.truncate(MAX_MODULE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(UnsafeTarget, match="more than 16777216 bytes; a module is limited to 16 MiB"):
        difference(huge, "x = 1\n")
    missing = tmp_path / "missing.py"
    assert difference(missing, "x = 1\n").startswith(f"--- {missing} (missing)")
