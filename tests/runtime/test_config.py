"""runtime.config: the shipped configs, positioned diagnostics, overrides, defaults from the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from runtime.config import load_config
from runtime.config_schema import SCHEMA
from runtime.core.diagnostics import SpecError
from runtime.nn.config import ModelConfig

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
output_dir: /results/runs
data:
  format: synthetic
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "train.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def diagnostics(path: str, overrides=None) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_config(path, overrides)
    return [d.format() for d in caught.value.diagnostics]


def test_the_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", ["train.yaml", "train.debug.yaml", "train.edf-debug.yaml"])
def test_the_shipped_configs_load(name):
    cfg = load_config(str(REPO / "specs" / name))
    assert cfg.data.loader.eval_batch_size == 2 * cfg.data.loader.batch_size
    assert isinstance(cfg.model, ModelConfig)


def test_production_config_reads_data_from_the_mount_and_writes_to_the_volume():
    cfg = load_config(str(REPO / "specs" / "train.yaml"))
    assert cfg.data.format == "npz" and cfg.data.train.startswith("/data/")
    assert cfg.data.cache_dir.startswith("/results/") and cfg.output_dir.startswith("/results/")
    assert cfg.data.loader.num_workers == 8


def test_defaults_come_from_the_schema(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.run_name == "default" and cfg.train.precision == "auto" and cfg.data.nonfinite == "drop"
    assert cfg.model.kernels == "auto" and cfg.optim.betas == (0.9, 0.999)
    assert cfg.train.early_stopping.metric == "val_loss" and cfg.train.early_stopping.mode == "min"
    assert cfg.train.loss.class_weights == "balanced" and cfg.train.max_steps is None
    assert cfg.run_dir == Path("/results/runs/default")


def test_unknown_keys_and_bad_values_are_positioned(tmp_path):
    path = write(tmp_path, MINIMAL + "train:\n  precison: bf16\n  epochs: zero\nmodel:\n  kernels: cuda\n")
    found = diagnostics(path)
    assert (
        f"{path}:5:3: error: train.precison: unknown key 'precison'; did you mean 'precision'? "
        "[schema/unknown-key]" in found
    )
    assert (
        f"{path}:6:11: error: train.epochs: 'zero' is not a number of epochs (1 or more) or 'auto' "
        "[schema/pattern]" in found
    )
    assert any(
        d.startswith(f"{path}:8:12: error: model.kernels: 'cuda' is not one of auto, fused, torch")
        for d in found
    )


def test_format_specific_rules(tmp_path):
    npz = write(tmp_path, "output_dir: /r\ndata:\n  format: npz\n")
    assert diagnostics(npz) == [
        f"{npz}:2:1: error: data.train: required for format 'npz': the path of the training data "
        "[config/missing-train]"
    ]
    synthetic = write(tmp_path, MINIMAL + "  train: /data/x\n")
    assert diagnostics(synthetic) == [
        f"{synthetic}:4:3: error: data.train: format 'synthetic' generates its data and reads no path; "
        "remove this key [config/unused-path]"
    ]


def test_overrides_are_typed_validated_and_marked(tmp_path):
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path, {"train.max_steps": "25", "optim__betas": "[0.8, 0.9]", "run_name": "b"})
    assert cfg.train.max_steps == 25 and cfg.optim.betas == (0.8, 0.9) and cfg.run_name == "b"
    found = diagnostics(path, {"train.max_steps": -1})
    assert len(found) == 1 and "(from the override train.max_steps=-1)" in found[0]


def test_the_config_path_goes_through_the_volume_map(tmp_path, monkeypatch):
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "train.yaml").write_text(MINIMAL)
    monkeypatch.setenv("MTC_VOLUME_MAP", json.dumps({"/results": str(tmp_path / "vol")}))
    cfg = load_config("/results/train.yaml")
    assert cfg.run_dir == tmp_path / "vol" / "runs" / "default"
    missing = diagnostics("/results/nope.yaml")
    assert missing == ["/results/nope.yaml:1:1: error: no such file [load/not-found]"]


def test_a_file_that_is_not_a_training_config_is_refused_without_echoing_it(tmp_path):
    secrets = tmp_path / "credentials"
    secrets.write_text(
        "aws_access_key_id: AKIAEXAMPLEKEY\naws_secret_access_key: s3cr3t\nregion: eu-west-1\ntoken: abc\n",
        encoding="utf-8",
    )
    found = diagnostics(str(secrets))
    assert found == [
        f"{secrets}:1:1: error: this does not look like a training config: 4 of its 4 top-level keys are not "
        "training-config keys (run_name, output_dir, data, model, optim, train, evaluate); check the path "
        "(the file's content is not shown) [config/not-a-config]"
    ]
    for word in ("aws", "AKIA", "s3cr3t", "region", "token"):
        assert word not in found[0]
    two = write(tmp_path, "user: alice\npassword: hunter2\n")
    assert "does not look like a training config" in diagnostics(two)[0]


def test_a_config_with_one_misspelt_key_still_gets_a_suggestion(tmp_path):
    found = diagnostics(write(tmp_path, MINIMAL + "optimm: {lr: 0.1}\n"))
    assert any("unknown key 'optimm'" in line for line in found)


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        (MINIMAL + "optim: {lr: .nan}\n", None, "optim.lr: expected a finite number, got .nan"),
        (MINIMAL, {"optim.lr": "NaN"}, "got .nan (from the override optim.lr=nan)"),
        (MINIMAL, {"optim.lr": float("inf")}, "optim.lr: expected a finite number, got .inf"),
    ],
)
def test_numbers_that_are_not_finite_are_refused_in_the_file_and_in_overrides(
    tmp_path, text, overrides, expected
):
    found = diagnostics(write(tmp_path, text), overrides)
    assert len(found) == 1 and expected in found[0], found


def test_the_schemas_model_defaults_are_the_model_configs():
    from runtime.config_schema import SCHEMA

    defaults = {key: spec["default"] for key, spec in SCHEMA["$defs"]["model"]["properties"].items()}
    assert ModelConfig.from_dict(defaults) == ModelConfig()
