"""A user's mistake never ends in a traceback: malformed inputs through every entry point, as real processes.

Each case runs one command (``mtc lint|compile|plan|diff|schema|run``, ``python -m runtime.train``,
``python -m runtime.evaluate``; ``mtc run`` calls the spec's functions locally, as the generated module
would on Modal) and checks three things: the exit code of docs/exit-codes.md (1 bad input, 3 usage), no
``Traceback (most recent call last)`` in stdout or stderr, and a message that names the problem.

Inputs: a device that never ends, 2 MB through a file and through a pipe on ``/dev/stdin``, a FIFO with no
writer, a directory, an empty file, binary junk, not UTF-8, NaN in a config, a NUL in a mount path, a price
file that never ends, ``compile -o`` at a FIFO, ``diff --rev=--output=...``, a checkpoint of random bytes, a
config that is a file of secrets (whose values must not be echoed), and the runtime's own inputs: a damaged
npz, an .npy header that declares more than its file holds, a class index out of range, a run directory
another training holds, a metrics.jsonl that is not text; and standard output on a full disk (/dev/full).
The processes run four at a time, the slow ones (which import torch) first.
"""

from __future__ import annotations

import fcntl
import io
import os
import random
import re
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from runtime.core.files import READ_TIMEOUT_ENV

ROOT = Path(__file__).resolve().parents[2]
TRACEBACK = "Traceback (most recent call last)"
SECRET = "hunter2-not-for-logs"
JUNK = random.Random(7).randbytes(4096)
MTC = ("-m", "compiler.cli")
TRAIN = ("-m", "runtime.train")
EVALUATE = ("-m", "runtime.evaluate")
LOCAL_RUN = ("--profile", "debug", "--volumes-dir", "{dir}/volumes")


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # after the interpreter; "{x}" is an input from `inputs`
    code: int
    says: str  # a regular expression the output must match
    stdin: str | None = None  # an input piped to the process (a pipe: its size is unknown until read)
    slow: bool = False  # imports torch
    stdout: str | None = None  # a path that takes the standard output instead of a pipe (e.g. /dev/full)

    def command(self, paths: dict[str, Path]) -> list[str]:
        return [sys.executable, *(part.format(**paths) for part in self.argv)]


CASES = [
    # the loader, through the compiler's commands
    Case("lint-dev-zero", (*MTC, "lint", "/dev/zero"), 1, r"/dev/zero:1:1: error: .*more than 1048576 bytes"),
    Case("lint-2mb-file", (*MTC, "lint", "{big}"), 1, r"big\.yaml:1:1: error: .*\[load/too-large\]"),
    Case("lint-2mb-stdin", (*MTC, "lint", "/dev/stdin"), 1, r"/dev/stdin:1:1: .*\[load/too-large\]", "big"),
    Case("lint-fifo", (*MTC, "lint", "{fifo}"), 1, r"fifo:1:1: error: .*no writer\? .*\[load/timeout\]"),
    Case("lint-directory", (*MTC, "lint", "{dir}"), 1, r"is a directory; expected a YAML file"),
    Case("lint-empty", (*MTC, "lint", "{empty}"), 1, r"the file is empty"),
    Case("lint-binary", (*MTC, "lint", "{junk}"), 1, r"looks binary"),
    Case("lint-not-utf8", (*MTC, "lint", "{latin1}"), 1, r"latin1\.yaml:2:\d+: error: .*not valid UTF-8"),
    Case("lint-nan", (*MTC, "lint", "{nan_spec}"), 1, r"defaults\.cpu: expected a finite number, got \.nan"),
    Case("lint-nul-mount", (*MTC, "lint", "{nul_spec}"), 1, r":\d+:\d+: error: .*'/results\\x00'.*control"),
    Case("lint-secrets", (*MTC, "lint", "{secrets}"), 1, r"secrets\.env:1:1: error: the top level must be"),
    Case("compile-dev-zero", (*MTC, "compile", "/dev/zero", "-o", "{dir}/out.py"), 1, r"\[load/too-large\]"),
    Case("compile-nul-mount", (*MTC, "compile", "{nul_spec}", "-o", "{dir}/out.py"), 1, r"control char"),
    Case("compile-o-fifo", (*MTC, "compile", "-o", "{fifo}"), 1, r"cannot write .*fifo: is a FIFO"),
    Case("compile-o-dir", (*MTC, "compile", "-o", "{dir}"), 1, r"cannot write .*: is a directory"),
    Case("compile-check-fifo", (*MTC, "compile", "--check", "-o", "{fifo}"), 1, r"is a FIFO"),
    Case(
        "plan-prices-dev-zero", (*MTC, "plan", "--prices", "/dev/zero"), 1, r"/dev/zero: .*price file is lim"
    ),
    Case("plan-prices-fifo", (*MTC, "plan", "--prices", "{fifo}"), 1, r"fifo: nothing to read for"),
    Case(
        "plan-prices-junk", (*MTC, "plan", "--prices", "{junk}"), 1, r"junk\.bin.*(not valid JSON|not UTF-8)"
    ),
    Case("plan-spec-fifo", (*MTC, "plan", "{fifo}"), 1, r"\[load/timeout\]"),
    Case("diff-rev-option", (*MTC, "diff", "--rev=--output={dir}/x"), 3, r"is not a git revision"),
    Case("diff-binary", (*MTC, "diff", "{junk}", "specs/deployment.yaml"), 1, r"looks binary"),
    Case("schema-usage", (*MTC, "schema", "--no-such-option"), 3, r"No such option"),
    Case("schema-to-a-full-disk", (*MTC, "schema"), 1, r"No space left on device", stdout="/dev/full"),
    # the runtime's entry points: the same loader, then the runtime's own inputs
    Case("train-2mb-stdin", (*TRAIN, "/dev/stdin"), 1, r"\[load/too-large\]", "big", slow=True),
    Case("train-nan", (*TRAIN, "{nan_config}"), 1, r":9:7: error: optim\.lr: expected a finite", slow=True),
    Case("train-secrets", (*TRAIN, "{secrets}"), 1, r"top level must be a mapping", slow=True),
    Case("train-damaged-npz", (*TRAIN, "{npz_config}"), 1, r"a_windows\.npz: not a valid \.npz", slow=True),
    Case("train-label-range", (*TRAIN, "{label_config}"), 1, r"class index 300; .* 0\.\.255", slow=True),
    Case(
        "train-npy-header",
        (*TRAIN, "{header_config}"),
        1,
        r"declares shape .* holds only 64 bytes",
        slow=True,
    ),
    Case("train-run-dir-held", (*TRAIN, "{held_config}"), 1, r"in use by another training", slow=True),
    Case("train-usage", TRAIN, 3, r"usage: python -m runtime\.train", slow=True),
    Case(
        "evaluate-random-checkpoint",
        (*EVALUATE, "{plain_config}", "{checkpoint}"),
        1,
        r"ckpt\.pt: ",
        slow=True,
    ),
    # the spec's functions, run locally
    Case(
        "run-config-secrets",
        (*MTC, "run", "train", *LOCAL_RUN, "--arg", "config={secrets}"),
        1,
        r"top level must be a mapping.*\n.*rejected its input",
        slow=True,
    ),
    Case(
        "run-random-checkpoint",
        (*MTC, "run", "evaluate", *LOCAL_RUN, "--arg", "checkpoint={checkpoint}"),
        1,
        r"ckpt\.pt: .*\n.*rejected its input",
        slow=True,
    ),
    Case("train-metrics-not-text", (*TRAIN, "{metrics_config}"), 1, r"metrics\.jsonl", slow=True),
]


def tiny_config(folder: Path, name: str, data: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"run_name: {name}\noutput_dir: {folder}/runs\ndata:\n{data}"
        f"  cache_dir: {folder}/cache-{name}\n  loader: {{batch_size: 4, num_workers: 0}}\n"
        "model: {d_model: 8, n_layers: 1, d_state: 4, kernels: torch}\ntrain: {max_steps: 2, epochs: 1}\n"
    )
    return path


def npz_config(folder: Path, name: str, npz: bytes) -> Path:
    """A tiny npz training config whose one recording file holds ``npz``."""
    data = folder / f"data-{name}"
    data.mkdir()
    (data / "a_windows.npz").write_bytes(npz)
    return tiny_config(folder, name, f"  format: npz\n  train: {data}\n  val: {data}\n")


def npz_bytes(**members: bytes) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, content in members.items():
            zipped.writestr(f"{name}.npy", content)
    return archive.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def npy_header_only(shape: tuple[int, ...]) -> bytes:
    """An .npy header that declares ``shape`` of float32, followed by 64 bytes instead of the data."""
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return out.getvalue() + bytes(64)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("malformed")
    example = (ROOT / "specs" / "deployment.yaml").read_text(encoding="utf-8")
    synthetic = (
        "  format: synthetic\n  synthetic: {n_train: 32, n_val: 8, n_test: 8, channels: 2, length: 32}\n"
    )
    paths = {
        "dir": folder,
        "fifo": folder / "fifo",
        "big": folder / "big.yaml",
        "empty": folder / "empty.yaml",
        "junk": folder / "junk.bin",
        "latin1": folder / "latin1.yaml",
        "secrets": folder / "secrets.env",
        "checkpoint": folder / "ckpt.pt",
        "nan_spec": folder / "nan.yaml",
        "nul_spec": folder / "nul.yaml",
    }
    os.mkfifo(paths["fifo"])
    paths["big"].write_bytes(b"# padding\n" * 200_000)
    paths["empty"].write_bytes(b"")
    paths["junk"].write_bytes(JUNK)
    paths["latin1"].write_bytes("version: 1\napp: {name: caf\xe9}\n".encode("latin-1"))
    paths["secrets"].write_text(f"AWS_SECRET_ACCESS_KEY={SECRET}\nWANDB_API_KEY={SECRET}\n")
    paths["checkpoint"].write_bytes(JUNK * 2)
    paths["nan_spec"].write_text(example.replace("cpu: 32", "cpu: .nan", 1))
    paths["nul_spec"].write_text(example.replace("/results: results}", '"/results\\0": results}', 1))
    paths["plain_config"] = tiny_config(folder, "plain", synthetic)
    paths["nan_config"] = folder / "nan-config.yaml"
    paths["nan_config"].write_text(
        paths["plain_config"].read_text().replace("model:", "optim:\n  lr: .nan\nmodel:", 1)
    )
    windows, labels = npy_bytes(np.zeros((8, 2, 32), np.float32)), npy_bytes(np.zeros((8, 32), np.int64))
    paths["npz_config"] = npz_config(folder, "damaged", JUNK)
    paths["label_config"] = npz_config(
        folder, "labels", npz_bytes(windows=windows, labels=npy_bytes(np.full((8, 32), 300, np.int64)))
    )
    header = npy_header_only((100_000_000, 19, 2560))
    paths["header_config"] = npz_config(folder, "header", npz_bytes(windows=header, labels=labels))
    paths["held_config"] = tiny_config(folder, "held", synthetic)
    paths["metrics_config"] = tiny_config(folder, "metrics", synthetic)
    (folder / "runs" / "metrics").mkdir(parents=True)
    (folder / "runs" / "metrics" / "metrics.jsonl").write_bytes(b"\x9c\xff" + JUNK)
    (folder / "runs" / "held").mkdir(parents=True)
    return paths


def run_case(case: Case, paths: dict[str, Path]) -> tuple[int, str]:
    env = {**os.environ, READ_TIMEOUT_ENV: "0.5"}
    piped = paths[case.stdin].read_bytes() if case.stdin else b""
    with open(case.stdout, "wb") if case.stdout else nullcontext(subprocess.PIPE) as stdout:
        done = subprocess.run(
            case.command(paths),
            input=piped,
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=120,
            cwd=ROOT,
            env=env,
            check=False,
        )
    output = (done.stdout or b"") + done.stderr
    return done.returncode, output.decode(errors="replace")


@pytest.fixture(scope="module")
def outcomes(inputs) -> dict[str, tuple[int, str]]:
    """Every case's (exit code, output), the torch-importing ones started first, four at a time; the run
    directory of `train-run-dir-held` is locked by this process meanwhile, as a running training would."""
    ordered = sorted(CASES, key=lambda case: not case.slow)
    with open(inputs["dir"] / "runs" / "held" / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda case: run_case(case, inputs), ordered))
    return {case.name: result for case, result in zip(ordered, results, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_malformed_input_gets_a_message_and_an_exit_code_not_a_traceback(case, outcomes):
    code, output = outcomes[case.name]
    assert TRACEBACK not in output, output
    assert code == case.code, output
    assert re.search(case.says, output), output
    assert SECRET not in output


def test_nothing_was_written_where_it_was_refused(outcomes, inputs):
    assert not (inputs["dir"] / "out.py").exists() and not (inputs["dir"] / "x").exists()
    assert inputs["fifo"].is_fifo()
