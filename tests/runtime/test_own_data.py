"""A team's own data with the default config: series of any length (pad with a mask, crop, resample),
honest val hold-outs (stratified, grouped by recording, recorded), normalisation kept in the checkpoint,
schedules that fit the run, and the dataset report."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from runtime.data import DataError, build_caches, make_loader, prepare_data
from runtime.data.loading import IGNORE_LABEL
from runtime.data.split import few_val_warning, windows_per_class
from runtime.metrics import MetricAccumulator
from runtime.nn.models.signal import SignalMamba
from runtime.train import entry
from runtime.train.loss import ClassificationLoss
from runtime.train.schedule import clamp_batch, resolve_schedule
from tests.helpers.datafiles import config_file, data_config, write_npz, write_ts

UNEQUAL_TS = ["1,2,3,4,5:up", "5,4:down", "1,?,3:up", "9,8,7,6,5,4:down"]


# ------------------------------------------------------------------------------------------ lengths


def unequal_ts(tmp_path: Path) -> str:
    return str(write_ts(tmp_path / "TRAIN.ts", UNEQUAL_TS))


def test_unequal_ts_series_are_padded_with_their_lengths_kept(tmp_path):
    config = data_config(tmp_path, format="ts", train=unequal_ts(tmp_path), nonfinite="zero")
    cache = build_caches(config)["train"]
    windows, labels = cache.arrays()
    assert windows.shape == (4, 1, 6) and cache.lengths.tolist() == [5, 2, 3, 6]
    assert windows[1, 0].tolist() == [5, 4, 0, 0, 0, 0] and windows[2, 0].tolist() == [1, 0, 3, 0, 0, 0]
    assert labels.tolist() == [0, 1, 0, 1]


def test_a_missing_value_follows_the_nonfinite_policy_also_in_unequal_series(tmp_path):
    config = data_config(tmp_path, format="ts", train=unequal_ts(tmp_path), nonfinite="drop")
    assert build_caches(config)["train"].lengths.tolist() == [5, 2, 6]


@pytest.mark.parametrize(
    ("policy", "length", "expected_lengths", "second_row"),
    [("crop", 3, [3, 2, 3, 3], [5, 4, 0]), ("resample", 3, [3, 3, 3, 3], [5, 4.5, 4])],
)
def test_crop_and_resample_give_one_length(tmp_path, policy, length, expected_lengths, second_row):
    config = data_config(
        tmp_path,
        format="ts",
        train=unequal_ts(tmp_path),
        nonfinite="zero",
        length_policy=policy,
        length=length,
    )
    cache = build_caches(config)["train"]
    assert cache.shape == (1, 3) and cache.lengths.tolist() == expected_lengths
    assert cache.arrays()[0][1, 0].tolist() == pytest.approx(second_row)


def test_crop_and_resample_need_a_length_and_pad_takes_none(tmp_path):
    with pytest.raises(Exception, match=r"data\.length: required with length_policy 'crop'"):
        data_config(tmp_path, format="ts", train="x.ts", length_policy="crop")
    with pytest.raises(Exception, match=r"data\.length: only used with length_policy crop or resample"):
        data_config(tmp_path, format="ts", train="x.ts", length=10)


def test_npz_files_of_different_lengths_are_padded_to_the_longest(tmp_path):
    write_npz(tmp_path / "src/a.npz", n=3, length=8, per_timestep=True)
    write_npz(tmp_path / "src/b.npz", n=2, length=12, per_timestep=True)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val=str(tmp_path / "src/b.npz"))
    bundle = prepare_data(config, seed=0)
    cache = bundle.splits["train"].cache
    assert cache.shape == (3, 12) and cache.lengths.tolist() == [8, 8, 8, 12, 12]
    loader = make_loader(
        bundle.splits["train"], config.loader, batch_size=5, seed=0, shuffle=False, device="cpu"
    )
    windows, labels, lengths = next(iter(loader))
    assert lengths.tolist() == [8, 8, 8, 12, 12]
    assert (labels[:3, 8:] == IGNORE_LABEL).all() and (labels[:3, :8] >= 0).all() and (labels[3:] >= 0).all()
    assert (windows[:3, :, 8:] == 0).all()


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("normalize", ["none", "channel", "window"])
def test_padding_changes_nothing_in_the_model_outputs(bidirectional, normalize):
    torch.manual_seed(0)
    model = SignalMamba(3, 4, bidirectional=bidirectional, normalize=normalize, kernels="torch").eval()
    if normalize == "channel":
        model.set_channel_statistics(torch.tensor([1.0, -2.0, 0.5]), torch.tensor([2.0, 0.5, 1.0]))
    short, full = torch.randn(1, 3, 37), torch.randn(1, 3, 50)
    padded = torch.zeros(2, 3, 50)
    padded[0, :, :37], padded[1] = short[0], full[0]
    together = model(padded, torch.tensor([37, 50]))
    assert torch.allclose(together, torch.cat([model(short), model(full)]), atol=1e-5)


def test_padding_counts_in_no_loss_and_no_metric():
    logits = torch.randn(2, 2, 6)
    labels = torch.tensor([[0, 1, 1, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL], [1, 0, 0, 1, 1, 0]])
    for kind in ("cross_entropy", "focal"):
        loss = ClassificationLoss(kind, torch.tensor([1.0, 3.0]), 2.0, 0.0)
        flat_logits = torch.cat([logits[0, :, :3], logits[1]], dim=1).T
        flat_labels = torch.cat([labels[0, :3], labels[1]])
        assert loss(logits, labels) == pytest.approx(float(loss(flat_logits, flat_labels)), rel=1e-5)
        assert float(loss.total_weight(labels)) == pytest.approx(float(loss.total_weight(flat_labels)))
    metrics = MetricAccumulator(2, detect_events=True, sample_rate_hz=1.0)
    metrics.update(torch.softmax(logits, 1).numpy(), labels.numpy())
    assert metrics.confusion.sum() == 9 and metrics.seconds == 9


# ------------------------------------------------------------------------------------------ hold-out


def test_the_hold_out_is_stratified_deterministic_and_recorded(tmp_path):
    labels = np.array([0] * 36 + [1] * 4)
    write_npz(tmp_path / "src/a.npz", n=40, labels=labels)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val_fraction=0.25)
    first, again = prepare_data(config, seed=3), prepare_data(config, seed=3)
    val = first.splits["val"].indices
    assert np.bincount(labels[val]).tolist() == [9, 1]  # the rare class is on both sides
    assert np.array_equal(val, again.splits["val"].indices)
    assert not np.array_equal(val, prepare_data(config, seed=4).splits["val"].indices)
    assert first.split_record["val_rows"] == val.tolist()
    assert first.split_record["method"] == "stratified by class, by window"


def test_files_are_recordings_and_none_is_on_both_sides(tmp_path):
    for index in range(10):
        write_npz(tmp_path / f"src/rec{index}.npz", n=5, labels=np.full(5, index % 2), seed=index)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val_fraction=0.2)
    bundle = prepare_data(config, seed=0)
    cache = bundle.splits["train"].cache
    train_groups = set(cache.groups[bundle.splits["train"].indices])
    val_groups = set(cache.groups[bundle.splits["val"].indices])
    assert not train_groups & val_groups and len(val_groups) == 2
    assert len(bundle.split_record["val_recordings"]) == 2
    assert "grouped by recording" in bundle.split_record["method"]
    by_window = prepare_data(replace_data(config, split_by="window"), seed=0)
    cache = by_window.splits["train"].cache
    mixed = set(cache.groups[by_window.splits["train"].indices]) & set(
        cache.groups[by_window.splits["val"].indices]
    )
    assert mixed  # drawn by window, recordings end up on both sides


def test_recordings_named_inside_a_file_or_by_the_manifest(tmp_path):
    groups = np.repeat(np.array(["s1", "s2", "s3", "s4"]), 5)
    write_npz(tmp_path / "one/all.npz", n=20, labels=np.tile([0, 1], 10), groups=groups)
    bundle = prepare_data(data_config(tmp_path / "one", format="npz", train=str(tmp_path / "one")), seed=0)
    cache = bundle.splits["train"].cache
    assert cache.group_names == ["s1", "s2", "s3", "s4"]
    assert not set(cache.groups[bundle.splits["train"].indices]) & set(
        cache.groups[bundle.splits["val"].indices]
    )
    for index in range(4):
        write_npz(tmp_path / f"m/f{index}.npz", n=4, labels=np.array([0, 1, 0, 1]), seed=index)
    manifest = {"groups": {"f0.npz": "alice", "f1.npz": "alice", "f2.npz": "bob", "f3.npz": "carol"}}
    (tmp_path / "m/manifest.json").write_text(json.dumps(manifest))
    bundle = prepare_data(data_config(tmp_path / "m", format="npz", train=str(tmp_path / "m")), seed=0)
    assert bundle.splits["train"].cache.group_names == ["alice", "bob", "carol"]


def test_a_class_without_val_windows_is_an_error_and_one_recording_cannot_be_grouped(tmp_path):
    write_npz(tmp_path / "a/x.npz", n=10, labels=np.array([0] * 9 + [1]))
    with pytest.raises(DataError, match=r"has no window of class 1 \(1 window\(s\) in all\)"):
        prepare_data(data_config(tmp_path / "a", format="npz", train=str(tmp_path / "a")), seed=0)
    write_npz(tmp_path / "b/x.npz", n=10, labels=np.tile([0, 1], 5))
    config = data_config(tmp_path / "b", format="npz", train=str(tmp_path / "b"), split_by="group")
    with pytest.raises(DataError, match=r"names 1 recording\(s\); a grouped val hold-out needs at least 2"):
        prepare_data(config, seed=0)


def test_per_timestep_windows_count_as_their_highest_class(tmp_path):
    labels = np.zeros((20, 16), dtype=np.int64)
    labels[:4, 5:9] = 1  # four windows hold an event
    write_npz(tmp_path / "src/a.npz", n=20, length=16, labels=labels)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val_fraction=0.25)
    bundle = prepare_data(config, seed=0)
    assert bundle.split_record["val_per_class"] == [4, 1]
    assert windows_per_class(bundle.splits["val"], 2) == [4, 1]


def test_a_small_val_split_or_one_missing_a_class_is_warned():
    assert few_val_warning([60, 40], "val_loss") is None
    assert "on 5 val window(s) (2, 3 per class)" in few_val_warning([2, 3], "val_auroc")
    assert "(100, 0 per class)" in few_val_warning([100, 0], "val_loss")


def replace_data(config, **changes):
    from dataclasses import replace

    return replace(config, **changes)


# ------------------------------------------------------------------------------------------ schedule


def schedule_for(train_windows: int, batch: int = 32, **train):
    train_cfg = SimpleNamespace(
        **{"epochs": "auto", "min_steps": 1000, "max_steps": None, "eval_every": "auto", **train}
    )
    optim_cfg = SimpleNamespace(warmup_steps=train.pop("warmup", 100))
    clamped = clamp_batch(batch, train_windows, 1)
    per_epoch = max(1, train_windows // clamped)
    return resolve_schedule(train_cfg, optim_cfg, requested_batch=batch, batch=clamped, per_epoch=per_epoch)


def test_a_small_dataset_gets_enough_steps_and_a_short_warmup():
    schedule = schedule_for(45)
    assert (schedule.epochs, schedule.total_steps, schedule.warmup_steps) == (1000, 1000, 100)
    assert schedule.eval_every == 10  # at most 100 validations
    tiny = schedule_for(20, batch=32, min_steps=200)
    assert tiny.batch_size == 20 and tiny.total_steps == 200 and tiny.warmup_steps == 20
    assert any("larger than the training split" in note for note in tiny.notes)
    assert any("warmup_steps 100 capped to 20" in note for note in tiny.notes)


def test_a_large_dataset_keeps_its_epochs_and_explicit_values_are_kept():
    large = schedule_for(100_000)
    assert large.epochs == 10 and large.total_steps == 10 * 3125 and large.eval_every == 3125
    assert not large.notes
    fixed = schedule_for(100_000, epochs=2, eval_every=500, max_steps=1000)
    assert (fixed.epochs, fixed.total_steps, fixed.eval_every) == (2, 1000, 500)


def test_a_batch_is_clamped_to_a_multiple_of_the_processes():
    assert clamp_batch(64, 45, 4) == 44 and clamp_batch(64, 3, 4) == 4 and clamp_batch(16, 45, 4) == 16


# ------------------------------------------------------------------------------------------ a run


def tiny_run_config(tmp_path: Path, **data) -> str:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(24):  # class "up": rising series, "down": falling, lengths 6 to 17, offset 500
        length = 6 + index % 12
        values = np.linspace(0, 1, length) * (1 if index % 2 else -1) * 40 + 500 + rng.normal(0, 2, length)
        rows.append(",".join(f"{v:.3f}" for v in values) + (":up" if index % 2 else ":down"))
    train = write_ts(tmp_path / "TRAIN.ts", rows)
    test = write_ts(tmp_path / "TEST.ts", rows[:8])
    path = Path(config_file(tmp_path, {"format": "ts", "train": str(train), "test": str(test), **data}))
    config = json.loads(path.read_text())
    config["model"] = {"d_model": 8, "n_layers": 1, "d_state": 4, "downsample": 2}
    config["train"] = {"min_steps": 60, "log_every": 20}
    config["optim"] = {"lr": 0.01}
    path.write_text(json.dumps(config))
    return str(path)


def test_a_run_reports_its_data_and_schedule_and_keeps_the_normalisation(tmp_path, capsys):
    summary = entry.main(tiny_run_config(tmp_path), resume=False)
    run_dir = Path(summary["run_dir"])
    printed = capsys.readouterr().err
    assert "dataset: 1 channel(s), 2 classes (up, down), per-window labels" in printed
    assert "length min/median/max" in printed and "schedule: 60 steps" in printed
    assert "warning: best.pt is picked by val_loss on 2 val window(s)" in printed
    report = json.loads((run_dir / "dataset.json").read_text())
    assert report["splits"]["train"]["length"]["max"] == 17 and report["schedule"]["total_steps"] == 60
    split = json.loads((run_dir / "split.json").read_text())
    assert split["val_windows"] == 2 and split["val_per_class"] == [1, 1]
    state = torch.load(run_dir / "best.pt", weights_only=False)
    assert state["model_config"]["normalize"] == "channel"
    mean = float(state["model"]["channel_mean"][0])
    assert 480 < mean < 520 and float(state["model"]["channel_std"][0]) > 5
    assert summary["test_metrics"]["accuracy"] >= 0.75
