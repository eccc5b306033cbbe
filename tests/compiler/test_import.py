"""``mtc import``: a hand-written Modal app becomes a spec whose compiled module declares the same functions.

Each round trip imports the app statically, checks the spec, renders it, then imports both modules with the
real ``modal`` package offline and compares every ``fn.info()`` field and the images' build layers: for a
seed-style app (tests/fixtures/imported/seed_style), the public apps of tests/fixtures/ported, and mtc's
own generated module (compile -> import -> compile).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.spec.sweep import function_trials
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import import_generated, modal_object
from tests.helpers.image_checks import image_layers

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
SEED = FIXTURES / "imported" / "seed_style"
PORTED = FIXTURES / "ported"


def imported(capsys, app: Path, spec: Path, *extra: str) -> tuple[int, str]:
    code, _, err = mtc(capsys, "import", str(app), "-o", str(spec), *extra)
    return code, err


def round_trip(original: Path, spec: Path) -> tuple[object, object, object]:
    """(original module, generated module, resolved app) for an imported spec that checks clean of errors."""
    result = check(spec)
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    generated = spec.parent / f"{result.app.module_name}.py"
    generated.write_text(render(result.app, module_dir=spec.parent), encoding="utf-8")
    sys.path.insert(0, str(spec.parent))  # the jobs module, as the image ships it
    try:
        return import_generated(original), import_generated(generated), result.app
    finally:
        sys.path.remove(str(spec.parent))


def info(function) -> dict:
    value = function.info()
    return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}


def assert_same_functions(original, generated, app) -> None:
    assert generated.app.name == original.app.name
    for name, function in app.functions.items():
        old, new = modal_object(original, function), modal_object(generated, function)
        before, after = info(old), info(new)
        assert {k: v for k, v in after.items() if before[k] != v} == {}, name
        built_before = [layer for layer in image_layers(old._spec_.image) if layer[0] == "build"]
        built_after = [layer for layer in image_layers(new._spec_.image) if layer[0] == "build"]
        assert built_after == built_before, name


def project_copy(tmp_path: Path, app: Path) -> tuple[Path, Path]:
    """A copy of ``app``'s folder as a project (``.git`` marks its root); the spec goes in its specs/."""
    project = tmp_path / "project"
    shutil.copytree(app.parent, project)
    (project / ".git").mkdir()
    return project / app.name, project / "specs" / "deployment.yaml"


def test_a_seed_style_app_imports_to_the_same_functions(capsys, tmp_path):
    app, spec = project_copy(tmp_path, SEED / "app.py")
    code, err = imported(capsys, app, spec)
    assert code == 1  # the local entrypoint is left out, with a warning at its line
    entrypoint = 1 + app.read_text().splitlines().index("@app.local_entrypoint()")
    assert f"{app}:{entrypoint}: warning: `main` not imported: a local entrypoint" in err
    assert_same_functions(*round_trip(app, spec))
    text = spec.read_text()
    assert "timeout: 24h" in text and "timeout: 6h" in text and "timeout: 600" in text  # the author's units
    assert "memory: 128GiB" in text and "memory: 32768" in text
    assert "# 4 cores per DataLoader worker\n    cpu: 32" in text  # a decorator's comment, at its key
    assert "# built against the torch above\n      - run:" in text  # a step's comment, at its step
    assert "# mtc import: `main` not imported" in text
    assert "dirs: {../configs: /app/configs}" in text  # Path(__file__).parent / "configs", from the spec


def test_the_jobs_module_holds_the_bodies_without_the_app(capsys, tmp_path):
    app, spec = project_copy(tmp_path, SEED / "app.py")
    imported(capsys, app, spec)
    jobs = (spec.parent / "brain_go_brr_jobs.py").read_text()
    assert "@app." not in jobs and "modal.App(" not in jobs and "def main(" not in jobs
    assert 'def train(config_path: str = "configs/train.yaml", resume: bool = False):' in jobs
    loaded = YAML(typ="safe").load(spec.read_text())
    assert loaded["functions"]["train"]["run"] == "brain_go_brr_jobs:train"
    assert loaded["images"]["image"]["add_local"]["python"] == ["brain_go_brr_jobs"]
    assert loaded["functions"]["evaluate"]["args"] == {
        "checkpoint": {"type": "str", "required": True},
        "split": "dev",
    }


@pytest.mark.parametrize(("name", "expected_code"), [("covid_datasette", 1), ("unsloth_finetune", 0)])
def test_the_ported_public_apps_import_to_the_same_functions(capsys, tmp_path, name, expected_code):
    app, spec = project_copy(tmp_path, PORTED / name / "original.py")
    code, err = imported(capsys, app, spec)
    assert code == expected_code, err
    assert_same_functions(*round_trip(app, spec))


def test_every_feature_the_importer_reads_round_trips(capsys, tmp_path):
    """tests/fixtures/imported/feature_tour: base chains, from_dockerfile, uv_pip options, add_local files,
    secrets of another environment, buckets with an endpoint, Secret.from_dict, cron and period schedules,
    region lists, and every container setting; nothing is left as a comment."""
    app, spec = project_copy(tmp_path, FIXTURES / "imported" / "feature_tour" / "tour.py")
    code, err = imported(capsys, app, spec)
    assert code == 0, err
    assert_same_functions(*round_trip(app, spec))
    loaded = YAML(typ="safe").load(spec.read_text())
    assert loaded["images"]["torch"]["base"] == "base"
    assert (
        loaded["functions"]["train"]["timeout"] == "1h30m"
        and loaded["functions"]["nightly"]["timeout"] == 600
    )
    assert loaded["functions"]["refresh"]["schedule"] == {"period": "6h30m"}
    assert "note: null" in spec.read_text()


def test_the_covid_app_reports_what_it_leaves_out(capsys, tmp_path):
    app, spec = project_copy(tmp_path, PORTED / "covid_datasette" / "original.py")
    _, err = imported(capsys, app, spec)
    warnings = [line for line in err.splitlines() if "warning:" in line]
    assert [line.split(": warning: ")[0].rsplit(":", 1)[1] for line in warnings] == ["236", "237", "251"]
    assert "`download_dataset.remote(...)` calls another Modal function" in warnings[0]


def test_compile_import_compile_gives_the_same_spec_and_module(capsys, tmp_path):
    """The example's generated module, imported beside copies of its training configs, gives back the example
    spec's app (the sweep's grid as its trials, in the same order; the `predict` class with its methods, web
    endpoint, parameter and concurrency) and, compiled, the same module. The spec's `lint: ignore` reasons are
    not in the module: the imported spec reports what they silenced, and nothing else."""
    (tmp_path / "generated").mkdir()
    module = tmp_path / "generated" / "mamba_eeg.py"
    shutil.copy(ROOT / "generated" / "mamba_eeg.py", module)
    shutil.copytree(ROOT / "specs", tmp_path / "specs", ignore=shutil.ignore_patterns("deployment.yaml"))
    spec = tmp_path / "specs" / "deployment.yaml"
    code, err = imported(capsys, module, spec)
    assert code == 0, err
    source, result = check(ROOT / "specs" / "deployment.yaml").app, check(spec)
    silenced = {rule for function in source.functions.values() for rule, _ in function.lint_ignores}
    assert silenced == {"concurrency-gpu-memory"}
    assert [d for d in result.diagnostics if d.rule not in silenced] == []
    after = result.app
    assert (after.name, after.secrets, after.images, after.volumes) == (
        source.name,
        source.secrets,
        source.images,
        source.volumes,
    )
    for name, function in source.functions.items():
        assert function_trials(after.functions[name]) == function_trials(function)
        assert dataclasses.replace(after.functions[name], sweep=None) == dataclasses.replace(
            function, sweep=None, lint_ignores=()
        )
    rendered = render(after, module_dir=tmp_path / "generated")
    assert without_header(rendered) == without_header(module.read_text())
    assert_same_functions(import_generated(module), import_generated_text(rendered, tmp_path), after)


def test_a_clustered_function_imports_back_as_its_cluster(capsys, tmp_path):
    """@modal.clustered (and the generated body's torchrun environment line) reads back as `cluster:`, and the
    spec compiles to a module Modal sees as the same cluster."""
    source = check(ROOT / "tests" / "specs" / "valid" / "cluster.yaml").app
    (tmp_path / "generated").mkdir()
    module = tmp_path / "generated" / "cluster_train.py"
    module.write_text(render(source, module_dir=tmp_path / "generated"), encoding="utf-8")
    spec = tmp_path / "specs" / "deployment.yaml"
    spec.parent.mkdir()
    code, err = imported(capsys, module, spec)
    assert code == 0 and "@modal.clustered" not in err, err
    after = check(spec).app
    train = after.functions["train"]
    assert (train.cluster, train.run, train.resources) == (
        source.functions["train"].cluster,
        "runtime.train:main",
        source.functions["train"].resources,
    )
    assert train.sweep.max_parallel == source.functions["train"].sweep.max_parallel == 2  # not 4 containers
    rendered = import_generated_text(render(after, module_dir=tmp_path / "generated"), tmp_path)
    assert rendered.train.info().cluster_info == import_generated(module).train.info().cluster_info


def without_header(text: str) -> list[str]:
    """The module less the lines that name the spec's path and hash."""
    named = ("# Generated by mtc", "# Spec sha256", "#     mtc compile")
    return [line for line in text.splitlines() if not line.startswith(named)]


def import_generated_text(text: str, folder: Path):
    path = folder / "generated" / "again.py"
    path.write_text(text, encoding="utf-8")
    return import_generated(path)


UNREADABLE_APP = """
import os
import modal

app = modal.App("dyn")
raise SystemExit("never executed")

@app.function(gpu=os.environ["GPU"], timeout=900, cpu=2)
def job():
    pass
"""


def test_a_value_computed_at_run_time_is_a_comment_and_a_warning(capsys, tmp_path):
    app = tmp_path / "dyn.py"
    app.write_text(UNREADABLE_APP)
    spec = tmp_path / "specs" / "deployment.yaml"
    code, err = imported(capsys, app, spec)
    assert code == 1
    assert f"{app}:8: warning: `gpu=`: `os.environ['GPU']` is computed when the app runs [import]" in err
    loaded = YAML(typ="safe").load(spec.read_text())
    assert loaded["functions"]["job"]["timeout"] == 900 and "gpu" not in loaded["functions"]["job"]
    assert (
        "# mtc import: `gpu=`: `os.environ['GPU']` is computed when the app runs (dyn.py:8)"
        in spec.read_text()
    )


UNSUPPORTED_APP = """import modal

app = modal.App("unsupported")
image = (
    modal.Image.debian_slim()
    .pip_install_from_requirements("requirements.txt")
    .add_local_dir(".", "/d")
    .env({})
)


@app.cls(gpu="T4")
class Model:
    @modal.exit()
    def close(self):
        return 1


@app.function(image=image, gpu="H100:8", serialized=True, timeout=60)
@modal.clustered(size=2)
def ddp():
    pass


@app.function(image=image.pip_install("numpy"), cpu=(1, 4), timeout=60)
@modal.fastapi_endpoint()
def web():
    return {}
"""


def test_each_feature_the_spec_lacks_is_one_warning_at_its_line(capsys, tmp_path):
    app = tmp_path / "unsupported.py"
    app.write_text(UNSUPPORTED_APP)
    spec = tmp_path / "specs" / "deployment.yaml"
    code, err = imported(capsys, app, spec)
    assert code == 1
    assert [
        line.split(" [import]")[0].split(": warning: ") for line in err.splitlines() if "warning" in line
    ] == [
        [f"{app}:6", "`.pip_install_from_requirements(...)` has no build step in the spec"],
        [
            f"{app}:8",
            "`.env(...)` follows add_local_*, which fails Modal's build: the spec builds it earlier",
        ],
        [f"{app}:13", "`Model` not imported: it exposes no @modal.method or web endpoint"],
        [f"{app}:19", "`serialized=`: has no key in the spec"],
        [f"{app}:25", "`cpu=`: a (request, limit) pair has no form in the spec"],
    ]
    assert not check(spec).has_errors
    loaded = YAML(typ="safe").load(spec.read_text())
    assert loaded["functions"]["web"]["web"] == {"kind": "fastapi_endpoint"}
    assert loaded["functions"]["ddp"]["cluster"] == {"size": 2}  # @modal.clustered(size=2) is read
    jobs = (spec.parent / "unsupported_jobs.py").read_text()
    assert "@modal." not in jobs and "@app." not in jobs and "class Model:" in jobs


EDGES_APP = """from . import helpers
import modal

app = modal.App("2024-edges", image=modal.Image.debian_slim().pip_install("numpy"))
cuda_image = modal.Image.debian_slim()
cuda = modal.Image.debian_slim().apt_install("git")
cuda = cuda.pip_install("torch")
data_volume = modal.Volume.from_name("a")
data_bucket = modal.CloudBucketMount("b")


@app.function(volumes={"/data": data_volume, "/raw": data_bucket, "/9": modal.Volume.from_name("c")})
def first():
    print(app.name, __file__)


@app.function(image=cuda)
def second():
    return helpers
"""


def test_names_stay_unique_and_moved_bodies_that_change_meaning_are_reported(capsys, tmp_path):
    app = tmp_path / "edges.py"
    app.write_text(EDGES_APP)
    spec = tmp_path / "specs" / "deployment.yaml"
    code, err = imported(capsys, app, spec)
    assert code == 1
    loaded = YAML(typ="safe").load(spec.read_text())
    assert list(loaded["images"]) == ["cuda", "cuda_2", "cuda_3", "default"]  # default: the app's image=
    assert loaded["images"]["cuda_3"] == {"base": "cuda_2", "steps": [{"pip": ["torch"]}]}
    assert list(loaded["volumes"]) == ["data", "data_2", "volume_9"]
    assert (
        loaded["functions"]["first"]["image"] == "default"
        and loaded["functions"]["second"]["image"] == "cuda_3"
    )
    assert loaded["functions"]["first"]["run"] == "app_2024_edges_jobs:first"
    assert sorted(loaded["images"]["default"]["add_local"]["python"]) == ["app_2024_edges_jobs"]
    messages = [line.split(": warning: ")[1] for line in err.splitlines() if ": warning: " in line]
    assert messages == [
        "a relative import: app_2024_edges_jobs.py is written beside the spec, not in this package [import]",
        "reads `__file__`: in the jobs module it is the jobs module's own path [import]",
        "uses `app`, the Modal app, which the jobs module does not define [import]",
    ]


DYNAMIC_APP = """import modal

app = modal.App("dynamic")
SETTINGS = dict(gpu="T4")


@app.function(timeout=60, **SETTINGS)
def static():
    pass


def plain():
    pass


registered = app.function(gpu="T4")(plain)
if True:

    @app.function()
    def hidden():
        pass
"""


def test_functions_registered_dynamically_are_reported(capsys, tmp_path):
    app = tmp_path / "dynamic.py"
    app.write_text(DYNAMIC_APP)
    code, err = imported(capsys, app, tmp_path / "specs" / "deployment.yaml")
    assert code == 1
    assert [line.split(": warning: ") for line in err.splitlines() if ": warning: " in line] == [
        [f"{app}:7", "`**SETTINGS` passes settings computed when the app runs [import]"],
        [f"{app}:16", "a function registered when the app runs, not by a decorator: not imported [import]"],
        [f"{app}:19", "`hidden` is defined inside a block: not imported [import]"],
    ]


def test_constants_that_double_are_read_once_and_bounded(capsys, tmp_path):
    """Fifty constants that each double the one before: read in linear time, refused past 100,000 characters
    or 10**15, never computed exponentially or held in memory."""
    doubling = "\n".join(f"S{i + 1} = S{i} + S{i}\nN{i + 1} = N{i} * N{i}" for i in range(50))
    app = tmp_path / "bomb.py"
    app.write_text(
        f'import modal\napp = modal.App("bomb")\nS0 = "x"\nN0 = 2\n{doubling}\n'
        "@app.function(gpu=S50, timeout=N50)\ndef f():\n    pass\n"
    )
    code, err = imported(capsys, app, tmp_path / "deployment.yaml")
    assert code == 1
    assert "is longer than any setting" in err and "is larger than any Modal setting" in err


def test_an_app_without_functions_is_refused(capsys, tmp_path):
    app = tmp_path / "empty.py"
    app.write_text("import modal\napp = modal.App('empty')\n")
    code, err = imported(capsys, app, tmp_path / "deployment.yaml")
    assert code == 1 and "no @app.function or @app.cls to import" in err


def test_an_existing_spec_is_kept_without_force(capsys, tmp_path):
    spec = tmp_path / "deployment.yaml"
    spec.write_text("mine\n")
    code, err = imported(capsys, PORTED / "unsloth_finetune" / "original.py", spec)
    assert code == 3 and "pass --force" in err and spec.read_text() == "mine\n"
    assert not (tmp_path / "unsloth_finetune_jobs.py").exists()
    code, _ = imported(capsys, PORTED / "unsloth_finetune" / "original.py", spec, "--force")
    assert code == 0 and spec.read_text().startswith("# Imported from original.py")


@pytest.mark.parametrize(
    ("source", "message"),
    [("def f(:\n", "not valid Python"), ("x = 1\n", "no `app = modal.App(...)`")],
)
def test_a_file_that_is_not_a_modal_app_is_refused(capsys, tmp_path, source, message):
    app = tmp_path / "app.py"
    app.write_text(source)
    code, err = imported(capsys, app, tmp_path / "deployment.yaml")
    assert code == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "deployment.yaml").exists()


def test_a_missing_file_is_a_usage_error(capsys, tmp_path):
    code, err = imported(capsys, tmp_path / "nope.py", tmp_path / "deployment.yaml")
    assert code == 3 and "does not exist" in err
