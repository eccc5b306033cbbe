"""mtc as a user installs it: the wheel built from this tree, core only, in a clean virtual environment.

The slow tests build the wheel once per session, install it with no extras into a fresh venv (no system site
packages, so a missing dependency shows), and run the commands from a folder that holds only a copy of
``specs/`` and ``generated/``: nothing can come from the checkout. That also proves lint, compile, schema,
plan and diff never import torch, numpy, psutil or modal, which the core install does not have. The fast
tests check the same in an interpreter that blocks those modules (with a training config that makes the lint
size npz splits), and the missing-extra messages of the CLI and the local child.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from compiler.platform.extras import EXTRAS, extra_providing
from tests.helpers.cli_runner import mtc
from tests.helpers.worktree import REPO, checked, copy_of_the_project, copy_of_the_tree, run

# distributions of the train and modal extras: none of them may come with the core install
EXTRA_DISTRIBUTIONS = {"torch", "numpy", "matplotlib", "scikit-learn", "tqdm", "psutil", "modal"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return copy_of_the_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def wheel(tree, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    checked(
        [sys.executable, "-m", "pip", "wheel", tree, "--no-deps", "--no-build-isolation", "-q", "-w", work]
    )
    (built,) = work.glob("mtc-*.whl")
    return built


@pytest.fixture(scope="module")
def venv_bin(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    checked([sys.executable, "-m", "venv", venv])
    checked([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel])
    return venv / "bin"


@pytest.fixture(scope="module")
def project(tree, tmp_path_factory) -> Path:
    """A folder with only specs/, generated/ and a changed copy of the spec for `mtc diff`."""
    folder = copy_of_the_project(tree, tmp_path_factory.mktemp("project"))
    spec = (folder / "specs" / "deployment.yaml").read_text(encoding="utf-8")
    assert "    timeout: 24h\n" in spec
    (folder / "changed.yaml").write_text(spec.replace("    timeout: 24h\n", "    timeout: 12h\n"), "utf-8")
    (folder / "broken.yaml").write_text("version: 1\napp: {name: x}\nfunctions: {f: {gpu: A100}}\n", "utf-8")
    return folder


@pytest.mark.slow
def test_the_wheel_holds_both_schemas_and_every_template(tree, wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {
        f"compiler/codegen/templates/{p.name}"
        for p in (tree / "compiler" / "codegen" / "templates").iterdir()
    }
    wanted = {"compiler/spec/schemas/deployment.schema.json", "runtime/config_schema.py", *templates}
    assert wanted - names == set()


@pytest.mark.slow
def test_the_core_install_has_no_package_of_an_extra(venv_bin):
    listed = json.loads(checked([venv_bin / "python", "-m", "pip", "list", "--format", "json"]).stdout)
    installed = {package["name"].lower() for package in listed}
    assert "mtc" in installed
    assert installed & EXTRA_DISTRIBUTIONS == set()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "code", "says"),
    [
        (["schema"], 0, '"$schema"'),
        (["schema", "--training"], 0, '"$schema"'),
        (["init", "fresh"], 0, "wrote specs/deployment.yaml"),  # its templates come from the wheel
        (["lint"], 0, ""),
        (["compile", "--check"], 0, ""),
        (["plan"], 0, "train"),
        (["plan", "--profile", "debug"], 0, "train"),
        (["diff", "specs/deployment.yaml", "changed.yaml"], 2, "timeout"),
        (["lint", "broken.yaml"], 1, "error"),
        (["lint", "--no-such-option"], 3, "no-such-option"),
        (["run", "train", "--profile", "debug"], 1, "pip install 'mtc[train]'"),
        (["run", "train", "--backend", "modal"], 1, "pip install 'mtc[modal]'"),
        (["apps"], 1, "pip install 'mtc[modal]'"),
    ],
)
def test_each_command_keeps_its_exit_code_when_installed(venv_bin, project, argv, code, says):
    done = run([venv_bin / "mtc", *argv], cwd=project, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output
    assert says in output


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "name"), [([], "deployment.schema.json"), (["--training"], "train.schema.json")]
)
def test_the_installed_schema_is_the_one_editors_use(venv_bin, project, argv, name):
    printed = checked([venv_bin / "mtc", "schema", *argv], cwd=project).stdout
    editor_copy = project / "specs" / "schema" / name
    assert json.loads(printed) == json.loads(editor_copy.read_text(encoding="utf-8"))


def hide(monkeypatch, *modules: str) -> None:
    """Make importlib.util.find_spec report ``modules`` as not installed."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a)
    )


@pytest.mark.parametrize(
    ("argv", "hidden", "extra"),
    [
        (["run", "train", "no-such-spec.yaml"], "psutil", "train"),
        (["run", "train", "no-such-spec.yaml"], "torch", "train"),
        (["run", "train", "no-such-spec.yaml", "--backend", "modal"], "modal", "modal"),
        (["logs", "ap-123"], "modal", "modal"),
        (["stop", "ap-123"], "modal", "modal"),
        (["apps"], "modal", "modal"),
    ],
)
def test_a_missing_extra_is_named_before_any_work(monkeypatch, capsys, argv, hidden, extra):
    hide(monkeypatch, hidden)
    code, out, err = mtc(capsys, *argv)
    assert code == 1
    assert f"needs the '{extra}' extra ({hidden} not installed)" in err
    assert f"pip install 'mtc[{extra}]'" in err
    assert "no-such-spec" not in err  # refused before the spec is read


def test_serving_without_the_serve_extra_names_it(monkeypatch, capsys):
    hide(monkeypatch, "fastapi")
    code, _, err = mtc(capsys, "run", "predict", str(REPO / "specs/deployment.yaml"), "--profile", "debug")
    assert code == 1
    assert "mtc run predict needs the 'serve' extra (fastapi not installed)" in err
    assert "pip install 'mtc[serve]'" in err


def test_each_module_maps_to_its_extra():
    assert extra_providing("torch.nn.functional") == "train"
    assert extra_providing("sklearn") == "train"
    assert extra_providing("modal") == "modal"
    assert extra_providing("uvicorn.server") == "serve"
    assert extra_providing("pandas") is None
    assert extra_providing(None) is None
    assert extra_providing("edfio") == "edf"
    assert extra_providing("fastapi") == "serve"
    assert set(EXTRAS) == {"train", "modal", "edf", "serve"}


@pytest.mark.parametrize(("missing", "extra"), [("modal", "modal"), ("torch.nn", "train")])
def test_the_local_child_names_the_extra_of_a_module_that_is_not_there(
    tmp_path, monkeypatch, capsys, missing, extra
):
    from compiler.backends.local import child as local_child

    # what `import modal` raises where modal is not installed (this venv has it, so the module says it)
    (tmp_path / "needs_extra.py").write_text(
        f'raise ModuleNotFoundError("No module named {missing!r}", name={missing!r})\n', "utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert local_child.call_target("needs_extra:main", {}, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"needs the '{extra}' extra ({missing} not installed)" in err
    assert f"pip install 'mtc[{extra}]'" in err
    assert (tmp_path / local_child.REJECTED_FILE).read_text("utf-8") == err.strip()


def test_the_local_child_keeps_the_traceback_of_another_missing_module(tmp_path, monkeypatch):
    from compiler.backends.local import child as local_child

    (tmp_path / "needs_other.py").write_text("import no_such_module_anywhere\n", "utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError):
        local_child.call_target("needs_other:main", {}, tmp_path)


# run in a fresh interpreter that cannot import the extras' modules, as in the core install
BLOCKED = """\
import sys
for name in ("torch", "numpy", "psutil", "modal", "matplotlib", "sklearn", "tqdm"):
    sys.modules[name] = None  # `import name` raises ImportError
from compiler.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["lint"],
        ["lint", "specs/in_memory.yaml"],
        ["compile", "--check"],
        ["plan"],
        ["plan", "specs/in_memory.yaml"],
        ["diff", "specs/deployment.yaml", "specs/in_memory.yaml"],
        ["schema"],
    ],
)
def test_the_core_commands_import_no_extra(tmp_path, argv):
    project = copy_of_the_project(REPO, tmp_path)
    # a training config that keeps its npz splits in RAM makes the lint size them (memory-vs-data)
    config = (project / "specs" / "train.yaml").read_text(encoding="utf-8")
    assert "\n  format: npz\n" in config
    in_memory = config.replace("\n  format: npz\n", "\n  format: npz\n  in_memory: true\n")
    (project / "specs" / "train.in_memory.yaml").write_text(in_memory, encoding="utf-8")
    spec = (project / "specs" / "deployment.yaml").read_text(encoding="utf-8")
    in_memory_spec = spec.replace("config: specs/train.yaml", "config: specs/train.in_memory.yaml")
    (project / "specs" / "in_memory.yaml").write_text(in_memory_spec, encoding="utf-8")
    # ... from the npz headers of a split in the local backend's folder for the /data volume (bucket eeg-data,
    # key prefix tusz/): a header-only array of 185 GB, which `mtc lint` reports as memory-vs-data
    npy = pytest.importorskip("numpy.lib.format")
    split = project / ".mtc" / "volumes" / "bucket-eeg-data" / "tusz" / "tusz" / "train"
    split.mkdir(parents=True)
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 19, 2560)})
    with zipfile.ZipFile(split / "a_windows.npz", "w") as archive:
        archive.writestr("windows.npy", header.getvalue())
    done = run([sys.executable, "-c", BLOCKED, *argv], cwd=project, timeout=120, env=python_path_env())
    output = done.stdout + done.stderr
    assert done.returncode in (0, 1, 2), output
    assert "Traceback" not in output and "halted" not in output
    if "specs/in_memory.yaml" in argv and argv[0] == "lint":  # the split was sized without numpy
        assert "[memory-vs-data]" in output, output


def python_path_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_the_runtime_validates_configs_from_its_python_files_alone(tmp_path):
    """What Modal's add_local_python_source("runtime") ships (only .py files) is enough to load a config."""
    for source in (REPO / "runtime").rglob("*.py"):
        target = tmp_path / source.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    program = (
        "import sys\n"
        "from runtime.config import load_config\n"
        "config = load_config(sys.argv[1])\n"
        "import runtime.config\n"
        "print(runtime.config.__file__, config.data.format)\n"
    )
    config = REPO / "specs" / "train.debug.yaml"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = checked([sys.executable, "-c", program, config], cwd=tmp_path, env=env)
    assert done.stdout.split() == [str(tmp_path / "runtime" / "config.py"), "synthetic"]
