"""`mtc plan`: figures checked against hand-computed ones from the built-in price table."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli_runner import mtc

# Built-in prices (per second): A100-80GB 0.000694, H100 0.001097, T4 0.000164, CPU core 0.0000131,
# memory GiB 0.00000222. Per hour: A100-80GB 2.4984, H100 3.9492, T4 0.5904, core 0.04716, GiB 0.007992.
TRAIN_HOURLY = 2.4984 + 32 * 0.04716 + 128 * 0.007992  # 5.030496
TRAIN_WORST = TRAIN_HOURLY * 24 * (1 + 2)  # 24 h timeout, 2 retries: 362.195712
SWEEP_HOURLY = 0.5904 + 4 * 0.04716 + 16 * 0.007992  # first choice T4: 0.906912
SWEEP_WORST = (2 * 3.9492 + 4 * 0.04716 + 16 * 0.007992) * 1  # H100:2 is the dearest fallback, 1 h
TIDY_HOURLY = 1 * 0.04716 + 1 * 0.007992  # 0.055152
TIDY_WORST = TIDY_HOURLY * 300 / 3600  # no timeout: Modal's 300 s

SPEC = """\
version: 1
app: {name: plan-test}
images:
  base: {from: debian_slim, python: "3.11"}
volumes:
  results: {volume: plan-results}
defaults: {image: base}
functions:
  train:
    run: platform:platform
    gpu: A100-80GB
    cpu: 32
    memory: 128GiB
    timeout: 24h
    retries: 2
    volumes: {/results: results}
  sweep:
    run: platform:platform
    gpu: [T4, "H100:2"]
    cpu: 4
    memory: 16GiB
    timeout: 1h
  tidy:
    run: platform:platform
    cpu: 1
    memory: 1024
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "deployment.yaml"
    path.write_text(SPEC)
    return str(path)


def plan_json(capsys, *args: str) -> dict:
    code, out, _ = mtc(capsys, "plan", *args, "--format", "json")
    assert code == 0
    return {row["function"]: row for row in json.loads(out)["functions"]}


def test_json_figures_match_hand_computed_ones(capsys, spec):
    rows = plan_json(capsys, spec)
    assert rows["train"]["hourly_usd"] == pytest.approx(TRAIN_HOURLY)
    assert rows["train"]["worst_case_usd"] == pytest.approx(TRAIN_WORST)
    assert rows["sweep"]["hourly_usd"] == pytest.approx(SWEEP_HOURLY)
    assert rows["sweep"]["worst_case_usd"] == pytest.approx(SWEEP_WORST)
    assert rows["tidy"]["worst_case_usd"] == pytest.approx(TIDY_WORST)
    assert rows["tidy"]["timeout_s"] == 300 and rows["tidy"]["timeout_is_default"] is True
    assert rows["sweep"]["gpus"] == ["T4", "H100:2"]
    assert (rows["train"]["cpu"], rows["train"]["memory_mib"], rows["train"]["retries"]) == (32, 131072, 2)


def test_text_table_shows_each_function_with_rounded_figures(capsys, spec):
    code, out, err = mtc(capsys, "plan", spec)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert lines["train"].split()[-2:] == [f"{TRAIN_HOURLY:.2f}", f"{TRAIN_WORST:.2f}"]
    assert "T4 or H100:2" in lines["sweep"]
    assert lines["tidy"].split()[-1] == f"{TIDY_WORST:.4f}"
    assert "300 s (default)" in lines["tidy"]
    assert "worst case" in err


def test_budget_fails_naming_the_function_over_it(capsys, spec):
    code, _, err = mtc(capsys, "plan", spec, "--budget", "100")
    assert code == 1
    assert "train's worst case $362.20" in err and "sweep" not in err
    code, _, _ = mtc(capsys, "plan", spec, "--budget", "400")
    assert code == 0


def test_user_price_file_overrides_the_built_in_one(capsys, spec, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"gpu_per_second": {"A100-80GB": 0.001}, "cpu_core_per_second": 0.0}))
    rows = plan_json(capsys, spec, "--prices", str(prices))
    assert rows["train"]["hourly_usd"] == pytest.approx(3.6 + 128 * 0.007992)


def test_unusable_price_file_is_a_clear_error(capsys, spec, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text("{not json")
    code, out, err = mtc(capsys, "plan", spec, "--prices", str(prices))
    assert code == 1 and out == ""
    assert "not valid JSON" in err and "Traceback" not in err


def test_invalid_spec_prints_diagnostics_and_exits_1(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("cpu: 32", "cpus: 32"))
    code, out, err = mtc(capsys, "plan", str(bad))
    assert code == 1 and out == ""
    assert f"{bad}:12:5: error" in err and "cpus" in err
