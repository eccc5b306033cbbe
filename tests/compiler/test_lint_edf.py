"""The edf-convert-on-gpu rule: a GPU function reading format edf without a cache populated by a CPU
function first is warned, with the conversion's estimated cost."""

from __future__ import annotations

from compiler.lint.check import check
from tests.compiler import test_lint_training
from tests.compiler.test_lint_training import CONFIG, SPEC, by_rule, lint_of

project = test_lint_training.project  # the same project folder fixture

EDF_DATA = "  edf: {channels: [Fp1, Fp2]}\n  cache_dir: /results/cache\n"
POPULATE = """\
  populate_cache:
    run: pkg.job:main
    args: {config: specs/train.yaml}
    cpu: 8
"""


def edf_lint(project, *, train="specs/edf", extra="", cpu=4):
    lint_of(project)  # writes the spec and the package
    config = CONFIG.replace("format: synthetic", f"format: edf\n  train: {train}")
    (project / "specs" / "train.yaml").write_text(config.format(workers=0, data_extra=EDF_DATA))
    return lint_of_edf(project, extra=extra, cpu=cpu)


def lint_of_edf(project, *, extra, cpu):
    spec = SPEC.format(config="specs/train.yaml", gpu="    gpu: A100\n", cpu=cpu, memory="16GiB", extra=extra)
    (project / "specs" / "deployment.yaml").write_text(spec)
    result = check("specs/deployment.yaml")
    assert result.app is not None, result.diagnostics
    return by_rule(result.diagnostics, "edf-convert-on-gpu")


def test_local_recordings_are_priced_at_the_gpu_functions_rate(project):
    (project / "specs" / "edf").mkdir()
    with open(project / "specs" / "edf" / "a.edf", "wb") as recording:
        recording.truncate(43_200_000_000)  # sparse: 43.2 GB, 30 min at 4 processes of 6 MB/s
    (found,) = edf_lint(project)
    assert found.severity == "warning" and found.line == 19  # at args.config
    assert "function 'train': runs on A100 and reads format edf (specs/train.yaml:3)" in found.message
    assert "43.2 GB of EDF at specs/edf take about 30.0 min at 6 MB/s per process on 4 cores" in found.message
    assert "Run populate_cache first" in found.message and "$" in found.message


def test_recordings_not_on_this_machine_give_the_hourly_cost(project):
    (found,) = edf_lint(project, train="/results/edf")
    assert "the recordings at /results/edf are not on this machine" in found.message
    assert "each hour of conversion costs about $" in found.message


def test_a_cpu_function_populating_the_same_cache_first_silences_it(project):
    assert edf_lint(project, extra=POPULATE) == []


def test_a_cache_already_built_where_the_local_backend_keeps_the_volume_silences_it(project, monkeypatch):
    monkeypatch.setenv("MTC_VOLUMES_DIR", str(project / "volumes"))
    assert len(edf_lint(project)) == 1
    meta = project / "volumes" / "cross-results" / "cache" / "train-abc" / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text("{}")
    assert edf_lint(project) == []


def test_an_image_without_edfio_is_an_error_for_a_config_reading_edf(project):
    (found,) = by_rule(edf_lint_all(project), "edf-reader-missing")
    assert found.severity == "error"
    assert "specs/train.yaml:3 reads format edf, but image 'base' does not install edfio" in found.message
    spec = project / "specs" / "deployment.yaml"
    spec.write_text(spec.read_text().replace("pyyaml,", 'pyyaml, "edfio>=0.4", scipy,'))
    assert not by_rule(check("specs/deployment.yaml").diagnostics, "edf-reader-missing")


def test_only_the_function_that_converts_needs_edfio(project):
    spec = project / "specs" / "deployment.yaml"
    edf_lint(project, extra=POPULATE.replace("    cpu: 8\n", "    cpu: 8\n    image: slim\n"))
    slim = (
        '  slim:\n    from: debian_slim\n    python: "3.11"\n'
        '    steps: [{pip: [pyyaml, "edfio>=0.4", scipy]}, {workdir: /app}]\n'
        "    add_local: {python: [pkg], dirs: {.: /app/specs}}\n"
    )
    spec.write_text(spec.read_text().replace("volumes:\n", slim + "volumes:\n", 1))
    assert not by_rule(check("specs/deployment.yaml").diagnostics, "edf-reader-missing")


def edf_lint_all(project):
    edf_lint(project)
    return check("specs/deployment.yaml").diagnostics
