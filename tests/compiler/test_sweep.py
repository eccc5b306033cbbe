"""Sweeps: trial expansion, the spec's schema and lint rules (with positions), `mtc plan`'s sweep figures,
and the generated module's sweep (imported with the real modal package offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.backends.local import sweep as local_sweep
from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.platform.resources import Resources
from compiler.spec.ir import Function, Sweep
from compiler.spec.sweep import expand, function_trials, run_name
from tests.helpers.cli_runner import mtc
from tests.helpers.generated_checks import decorator_keywords, import_generated

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------------------- expansion


def test_grid_varies_its_first_key_slowest_and_trials_come_after_it():
    sweep = Sweep(
        grid=(("optim.lr", (0.001, 0.0003)), ("model.d_model", (64, 128))),
        trials=((("optim.lr", 0.01), ("resume", False)),),
    )
    trials = expand(sweep, "train")
    assert [t.values for t in trials] == [
        (("optim.lr", 0.001), ("model.d_model", 64)),
        (("optim.lr", 0.001), ("model.d_model", 128)),
        (("optim.lr", 0.0003), ("model.d_model", 64)),
        (("optim.lr", 0.0003), ("model.d_model", 128)),
        (("optim.lr", 0.01), ("resume", False)),
    ]
    assert [t.index for t in trials] == [0, 1, 2, 3, 4]
    assert trials[1].run_name == "train-t01-lr_0.001-d_model_128"
    assert trials[4].run_name == "train-t04-lr_0.01-resume_false"


def test_values_keep_their_types_and_split_into_args_and_overrides():
    sweep = Sweep(trials=((("resume", False), ("train.max_steps", 10), ("optim.betas", (0.9, 0.99))),))
    (trial,) = expand(sweep, "train")
    args, overrides = trial.split({"config", "resume"})
    assert args == {"resume": False} and args["resume"] is False
    assert overrides == {"run_name": trial.run_name, "train.max_steps": 10, "optim.betas": (0.9, 0.99)}
    assert isinstance(overrides["train.max_steps"], int)


def test_run_names_hold_only_run_name_characters_and_stay_short():
    name = run_name("job", 7, (("data.train", "s3://bucket/a b.npz"), ("x", "é" * 300)))
    assert name.startswith("job-t07-train_s3_bucket_a_b.npz-x")
    assert len(name) <= 120
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)


def test_indices_widen_past_99_trials_so_names_sort():
    trials = expand(Sweep(grid=(("seed", tuple(range(120))),)), "s")
    assert trials[0].run_name == "s-t000-seed_0" and trials[119].run_name == "s-t119-seed_119"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(), min_size=1, max_size=3), max_size=3),
    st.lists(st.dictionaries(st.sampled_from(["a", "b.c"]), st.booleans(), min_size=1), max_size=3),
)
def test_expansion_is_the_product_then_the_list_and_deterministic(grid_values, listed):
    grid = tuple((f"k{i}", tuple(values)) for i, values in enumerate(grid_values))
    sweep = Sweep(grid=grid, trials=tuple(tuple(t.items()) for t in listed))
    trials = expand(sweep, "n")
    product = 1
    for _, values in grid:
        product *= len(values)
    assert len(trials) == (product if grid else 0) + len(listed)
    assert expand(sweep, "n") == trials
    assert len({t.run_name for t in trials}) == len(trials)  # the index alone keeps them apart
    assert [dict(t.values) for t in trials[len(trials) - len(listed) :]] == listed


def test_a_function_without_a_sweep_has_no_trials():
    assert function_trials(Function("f", "m", "e", resources=Resources())) == ()


# --------------------------------------------------------------------------------------- spec and lint

SPEC = """\
version: 1
app: {{name: sweeps}}
images:
  base:
    from: debian_slim
    python: "3.11"
    steps: [{{workdir: /app}}]
    add_local: {{python: [pkg], dirs: {{.: /app/specs}}}}
volumes:
  results: {{volume: sweep-results}}
  raw: {{bucket: raw-data, read_only: true}}
defaults: {{image: base, timeout: 1h}}
functions:
  train:
    run: pkg.job:{entry}
    args: {{config: specs/train.yaml, seed: 0}}
    volumes: {{{volumes}}}
{extra}    sweep:
{sweep}
profiles:
  quick:
    functions:
      train: {{sweep: {{trials: [{{optim.lr: 0.1}}]}}}}
  none:
    functions:
      train: {{sweep: null}}
"""

GOOD_SWEEP = "      grid: {optim.lr: [0.001, 0.01], seed: [1, 2]}\n      max_parallel: 2\n"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "train.yaml").write_text(
        "run_name: base\noutput_dir: /results/runs\ndata: {format: synthetic}\n"
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(
        "def main(config, seed=0, **overrides):\n    return {}\n\n\n"
        "def fixed(config, seed=0):\n    return {}\n"
    )
    return tmp_path


def lint_spec(
    project, sweep=GOOD_SWEEP, *, entry="main", volumes="/results: results", extra="", profile=None
):
    text = SPEC.format(sweep=sweep, entry=entry, volumes=volumes, extra=extra)
    (project / "specs" / "deployment.yaml").write_text(text)
    return text, check("specs/deployment.yaml", profile)


def sweep_findings(result):
    """The base spec's sweep findings (`check` also lints each profile, marking what only it brings)."""
    return [d for d in result.diagnostics if d.rule.startswith("sweep") and "--profile" not in d.message]


def line_of(text, needle, after=""):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def test_a_good_sweep_resolves_and_lints_clean(project):
    _, result = lint_spec(project)
    assert sweep_findings(result) == [], [d.format() for d in result.diagnostics]
    sweep = result.app.functions["train"].sweep
    assert sweep == Sweep(grid=(("optim.lr", (0.001, 0.01)), ("seed", (1, 2))), max_parallel=2)


def test_profiles_replace_the_sweep_whole_or_drop_it(project):
    _, quick = lint_spec(project, profile="quick")
    assert quick.app.functions["train"].sweep == Sweep(trials=((("optim.lr", 0.1),),))
    assert quick.app.functions["train"].origins["sweep"] == (
        "profiles",
        "quick",
        "functions",
        "train",
        "sweep",
    )
    _, none = lint_spec(project, profile="none")
    assert none.app.functions["train"].sweep is None


def test_an_unknown_key_is_an_error_at_the_key_with_a_suggestion(project):
    text, result = lint_spec(project, "      grid: {optim.lrr: [0.1], seeds: [1]}\n")
    found = sweep_findings(result)
    assert [d.rule for d in found] == ["sweep-key", "sweep-key"]
    assert all(d.severity == "error" and d.line == line_of(text, "optim.lrr") for d in found)
    assert "did you mean 'optim.lr'" in found[0].message
    assert "did you mean 'seed'" in found[1].message


def test_without_a_training_config_a_key_is_checked_against_the_targets_parameters(project):
    (project / "pkg" / "job.py").write_text("def fit(lr=0.1, depth=2, **overrides):\n    return {}\n")
    spec = SPEC.format(
        sweep="      grid: {lrr: [0.1], depth: [1, 2]}\n", entry="fit", volumes="/results: results", extra=""
    )
    text = spec.replace("    args: {config: specs/train.yaml, seed: 0}\n", "")
    (project / "specs" / "deployment.yaml").write_text(text)
    (found,) = sweep_findings(check("specs/deployment.yaml"))
    assert found.rule == "sweep-key" and found.line == line_of(text, "lrr")
    assert "nor a parameter of pkg.job:fit; did you mean 'lr'?" in found.message


def test_a_key_no_parameter_is_close_to_lists_what_the_target_takes(project):
    (project / "pkg" / "job.py").write_text("def fit(lr=0.1, **overrides):\n    return {}\n")
    spec = SPEC.format(
        sweep="      grid: {optim.lr: [0.1]}\n", entry="fit", volumes="/results: results", extra=""
    )
    (project / "specs" / "deployment.yaml").write_text(
        spec.replace("    args: {config: specs/train.yaml, seed: 0}\n", "")
    )
    (found,) = sweep_findings(check("specs/deployment.yaml"))
    assert "pkg.job:fit takes: lr" in found.message


def test_the_bundled_runtime_checks_config_keys_even_without_a_config_arg(project):
    spec = SPEC.format(
        sweep="      grid: {optim.lrr: [0.1]}\n", entry="main", volumes="/results: results", extra=""
    )
    text = spec.replace("pkg.job:main", "runtime.train:main").replace(
        "    args: {config: specs/train.yaml, seed: 0}\n", "    args: {config: specs/missing.yaml}\n"
    )
    (project / "specs" / "deployment.yaml").write_text(text)
    found = [d for d in sweep_findings(check("specs/deployment.yaml")) if d.rule == "sweep-key"]
    assert len(found) == 1 and "did you mean 'optim.lr'" in found[0].message


def test_run_name_cannot_be_swept(project):
    text, result = lint_spec(project, "      trials: [{run_name: a}]\n")
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-key" and "set by the sweep itself" in found.message
    assert found.line == line_of(text, "run_name: a")


def test_a_value_the_training_config_rejects_is_an_error_at_the_value(project):
    text, result = lint_spec(project, "      grid:\n        model.d_model: [64, big]\n")
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-value" and 'model.d_model="big"' in found.message
    assert (found.line, found.col) == (
        line_of(text, "[64, big]"),
        text.splitlines()[found.line - 1].index("big") + 1,
    )


def test_empty_grid_values_and_an_empty_sweep_are_errors(project):
    _, result = lint_spec(project, "      grid: {optim.lr: []}\n")
    assert [(d.rule, d.severity) for d in sweep_findings(result)] == [("sweep-empty", "error")]
    _, result = lint_spec(project, "      max_parallel: 2\n")
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-empty" and "neither a grid nor trials" in found.message


def test_duplicate_trials_warn_at_the_repeat(project):
    text, result = lint_spec(
        project, "      grid: {optim.lr: [0.1]}\n      trials:\n        - {optim.lr: 0.1}\n"
    )
    (found,) = sweep_findings(result)
    assert (found.rule, found.severity) == ("sweep-duplicate", "warning")
    assert found.line == line_of(text, "- {optim.lr: 0.1}") and "repeats trial 0" in found.message


def test_more_than_100_trials_warn(project):
    seeds = ", ".join(str(i) for i in range(101))
    _, result = lint_spec(project, f"      grid: {{seed: [{seeds}]}}\n")
    assert [(d.rule, d.severity) for d in sweep_findings(result)] == [("sweep-size", "warning")]


def test_max_parallel_that_disagrees_with_max_containers_warns(project):
    text, result = lint_spec(project, GOOD_SWEEP, extra="    max_containers: 1\n")
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-parallel" and "only 1 trials run at once" in found.message
    assert found.line == line_of(text, "max_parallel: 2")


def test_a_sweep_needs_a_writable_volume_under_its_output_dir(project):
    text, result = lint_spec(project, volumes="/data: raw")
    (found,) = sweep_findings(result)
    assert (found.rule, found.severity) == ("sweep-volume", "error")
    assert "no writable Modal Volume" in found.message and found.line == line_of(text, "sweep:")
    _, result = lint_spec(project, volumes="/elsewhere: results")
    (found,) = sweep_findings(result)
    assert "output_dir /results/runs, on no writable volume (/elsewhere)" in found.message


def test_sweep_volume_resolves_dot_dot_and_relative_output_dirs(project):
    config = project / "specs" / "train.yaml"
    for output_dir, resolved in (("/results/../scratch", "/scratch"), ("runs", "/app/runs")):
        config.write_text(f"run_name: base\noutput_dir: {output_dir}\ndata: {{format: synthetic}}\n")
        (found,) = sweep_findings(lint_spec(project)[1])
        assert found.rule == "sweep-volume"
        assert f"output_dir {output_dir} (that is {resolved}), on no writable volume" in found.message
    config.write_text("run_name: base\noutput_dir: /results/x/../runs\ndata: {format: synthetic}\n")
    assert not sweep_findings(lint_spec(project)[1])


def test_a_swept_output_dir_is_checked_value_by_value(project):
    sweep = "      grid: {output_dir: [/results/a, /results/../tmp/b]}\n"
    text, result = lint_spec(project, sweep)
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-volume" and found.severity == "error"
    assert "swept output_dir /results/../tmp/b (that is /tmp/b) is on no writable volume" in found.message
    assert text.splitlines()[found.line - 1][found.col - 1 :].startswith("/results/../tmp/b]")


def test_a_sweep_needs_a_target_that_takes_overrides(project):
    _, result = lint_spec(project, entry="fixed")
    (found,) = sweep_findings(result)
    assert found.rule == "sweep-target" and "pkg.job:fixed to take **overrides" in found.message


@pytest.mark.parametrize(
    ("sweep", "expected"),
    [
        ("      grid: {optim.lr: 0.1}\n", "a list of values"),
        ("      grid: {optim.lr: [0.1]}\n      max_parallel: 0\n", "is not at least 1"),
        ("      grid: {optim.lr: [0.1]}\n      speed: 2\n", "speed"),
    ],
)
def test_the_schema_rejects_malformed_sweeps(project, sweep, expected):
    _, result = lint_spec(project, sweep)
    assert result.app is None
    assert any(expected in d.message for d in result.diagnostics), [d.format() for d in result.diagnostics]


def test_sweep_rules_are_documented():
    import compiler.lint.sweeps  # noqa: F401 - registers the sweep rules
    from compiler import lint

    reference = (ROOT / "docs" / "lint-rules.md").read_text(encoding="utf-8")
    ids = [rule.id for rule in lint.RULES.values() if rule.id.startswith("sweep-")]
    assert len(ids) == 8
    for rule_id in ids:
        assert f"| `{rule_id}` | {lint.RULES[rule_id].severity} |" in reference, rule_id


# ------------------------------------------------------------------------------------------------ plan


def test_plan_shows_the_sweep_worst_case_and_the_budget_covers_it(project, capsys):
    lint_spec(
        project,
        "      grid: {optim.lr: [0.001, 0.01, 0.1]}\n      max_parallel: 2\n",
        extra="    cpu: 2\n    memory: 1GiB\n",
    )
    hourly = 2 * 0.0000131 * 3600 + 1 * 0.00000222 * 3600  # 2 cores + 1 GiB, the built-in prices
    per_call = hourly * 1  # timeout 1h, no retries
    code, out, _ = mtc(capsys, "plan", "specs/deployment.yaml", "--format", "json")
    assert code == 0
    (row,) = json.loads(out)["functions"]
    assert (row["sweep_trials"], row["sweep_parallel"]) == (3, 2)
    assert row["worst_case_usd"] == pytest.approx(per_call)
    assert row["sweep_worst_case_usd"] == pytest.approx(3 * per_call)
    assert row["sweep_hourly_usd"] == pytest.approx(2 * hourly)
    code, out, _ = mtc(capsys, "plan", "specs/deployment.yaml")
    assert "train --sweep (3 trials, 2 at once)" in out
    budget = f"{2 * per_call:.4f}"  # above one call, below the sweep
    code, _, err = mtc(capsys, "plan", "specs/deployment.yaml", "--budget", budget)
    assert code == 1 and "train's sweep worst case" in err and "3 trials x" in err
    assert mtc(capsys, "plan", "specs/deployment.yaml", "--budget", f"{3.01 * per_call:.4f}")[0] == 0


# ------------------------------------------------------------------------------------ generated module


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        result = check("specs/deployment.yaml")
        source = render(result.app)
    finally:
        os.chdir(cwd)
    path = tmp_path_factory.mktemp("generated") / "example.py"
    path.write_text(source, encoding="utf-8")
    return result.app, source, import_generated(path)


def test_the_generated_trials_are_compiler_sweeps_expansion(example):
    app, _, module = example
    fn = app.functions["train"]
    expected = []
    for trial in function_trials(fn):
        args, overrides = trial.split(set(fn.arg_dict))
        expected.append({**args, "overrides": overrides})
    assert module.SWEEPS == {"train": expected}
    assert len(expected) == 4


def test_max_parallel_becomes_max_containers_and_only_the_sweeper_takes_overrides(example):
    app, source, module = example
    assert decorator_keywords(source, "train")["max_containers"] == app.functions["train"].sweep.max_parallel
    accepted = {name: defaults for name, (_, defaults) in module.ACTIONS.items()}
    assert accepted["train"] == {"config": "specs/train.yaml", "resume": True, "overrides": None}
    assert "overrides" not in accepted["evaluate"]


class Fanned:
    """Stands in for a Modal function: records starmap's inputs, returns one summary and one failure."""

    def __init__(self):
        self.inputs = None

    def starmap(self, inputs, return_exceptions=False):
        self.inputs = list(inputs)
        assert return_exceptions
        results = [
            {"run_dir": f"/results/runs/{i}", "best_metric": {"auc": 0.9}, "steps": 5} for i in range(3)
        ]
        return [*results, RuntimeError("out of memory")]


def test_the_entrypoint_fans_trials_out_with_shared_options_and_reports_failures(
    example, monkeypatch, capsys
):
    _, _, module = example
    fanned = Fanned()
    defaults = module.ACTIONS["train"][1]
    monkeypatch.setitem(module.ACTIONS, "train", (fanned, defaults))
    options = {"config": "specs/other.yaml", "resume": None, "checkpoint": None}
    with pytest.raises(SystemExit, match="1 of 4 trials of train failed"):
        module.main.info.raw_f(action="train", sweep=True, overrides='{"train.max_steps": 3}', **options)
    first = module.SWEEPS["train"][0]["overrides"]
    assert fanned.inputs[0] == ("specs/other.yaml", True, {"train.max_steps": 3, **first})
    assert len(fanned.inputs) == 4
    out = capsys.readouterr().out
    assert '"best_metric": {"auc": 0.9}' in out and "FAILED RuntimeError: out of memory" in out
    assert first["run_name"] in out


def test_the_entrypoint_refuses_sweep_for_a_function_without_one(example):
    _, _, module = example
    with pytest.raises(SystemExit, match="--action evaluate has no sweep; these do: train"):
        module.main.info.raw_f(
            action="evaluate", sweep=True, config=None, resume=None, overrides=None, checkpoint=None
        )


def test_modal_lists_the_sweep_options_offline(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env["HOME"] = str(tmp_path)
    modal = [sys.executable, "-m", "modal", "run"]
    entry = subprocess.run(
        [*modal, "generated/mamba_eeg.py", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert entry.returncode == 0, entry.stderr
    assert "--sweep" in entry.stdout and "--overrides" in entry.stdout
    assert "--config" in entry.stdout and "--action" in entry.stdout


# --------------------------------------------------------------------------------------- local parallel


def test_local_parallelism_is_capped_by_max_parallel_and_by_cores(monkeypatch):
    monkeypatch.setattr(local_sweep, "usable_cores", lambda: [0, 1, 2, 3])
    fn = Function("f", "m", "e", resources=Resources(cpu=2), sweep=Sweep(grid=(("a", (1, 2, 3, 4, 5)),)))
    said = []
    assert local_sweep.sweep_parallel(4, 5, fn, said.append) == 2
    assert "2 core(s) do not fit the 4 core(s) here; running 2 at a time" in said[-1]
    bounded = Function("f", "m", "e", resources=Resources(cpu=1), sweep=Sweep(max_parallel=3))
    assert local_sweep.sweep_parallel(4, 5, bounded, said.append) == 3
    assert "max_parallel is 3" in said[-1]
    assert local_sweep.sweep_parallel(4, 2, bounded, said.append) == 2  # never more than there are trials


def test_the_trial_child_saves_what_the_target_returns(tmp_path):
    from compiler.backends.local.child import run_trial

    result_file = tmp_path / "out.json"
    returned = run_trial("json:dumps", {"obj": {"steps": 3}}, str(result_file))
    assert json.loads(result_file.read_text()) == returned == '{"steps": 3}'


def test_an_async_trial_target_is_awaited_and_its_result_saved(tmp_path):
    from compiler.backends.local.child import run_trial

    result_file = tmp_path / "out.json"
    returned = run_trial("asyncio:sleep", {"delay": 0, "result": {"best_metric": 0.5}}, str(result_file))
    assert json.loads(result_file.read_text()) == returned == {"best_metric": 0.5}


# ------------------------------------------------------------------------------------------- mtc run


def test_run_sweep_on_modal_goes_through_the_generated_entrypoint(project, capsys, monkeypatch):
    from compiler.backends import modal

    lint_spec(project)
    assert mtc(capsys, "compile", "specs/deployment.yaml")[0] == 0
    commands = []
    monkeypatch.setattr(modal, "pass_through", lambda command: commands.append(command) or 0)
    spec = "specs/deployment.yaml"
    code, _, _ = mtc(capsys, "run", "train", spec, "--backend", "modal", "--sweep", "--arg", "seed=3")
    assert code == 0
    assert commands[0][3:] == ["run", "generated/sweeps.py", "--action", "train", "--sweep", "--seed", "3"]


def test_run_sweep_refuses_a_function_without_one_and_parallel_without_sweep(project, capsys):
    lint_spec(project)
    code, _, err = mtc(capsys, "run", "train", "specs/deployment.yaml", "--profile", "none", "--sweep")
    assert code == 1 and "train declares no sweep (functions with one: none)" in err
    code, _, err = mtc(capsys, "run", "train", "specs/deployment.yaml", "--parallel", "2")
    assert code == 3 and "--parallel needs --sweep" in err


def test_a_sweeping_function_cannot_have_an_arg_named_overrides(project, capsys):
    text = SPEC.format(sweep=GOOD_SWEEP, entry="main", volumes="/results: results", extra="")
    (project / "specs" / "deployment.yaml").write_text(text.replace("seed: 0}", "seed: 0, overrides: x}"))
    code, _, err = mtc(capsys, "lint", "specs/deployment.yaml")
    assert code == 1
    assert (
        "argument name 'overrides' is used by the generated module" in err and "[render/reserved-name]" in err
    )
