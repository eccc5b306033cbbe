"""format edf: EDF/EDF+ recordings written with edfio, converted into the split cache and checked against
what they hold (window counts, labels to the sample, channel names, corrupt files, kills, parallel =
serial)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.config import load_config
from runtime.core.diagnostics import SpecError
from runtime.data import DataError, build_caches
from runtime.data import edf_convert as edf_convert_module
from runtime.data.split import hold_out
from tests.helpers.datafiles import config_file
from tests.helpers.edf_files import write_events_csv, write_recording

pytest.importorskip("edfio")

RATE = 256
CHANNELS = ["Fp1", "Fp2", "T3"]


def edf_config_file(tmp_path: Path, **edf) -> str:
    section = {"channels": CHANNELS, "window_seconds": 4, "stride_seconds": 2, "workers": 1, **edf}
    section = {key: value for key, value in section.items() if value is not None}
    data = {"format": "edf", "train": str(tmp_path / "edf"), "sample_rate_hz": RATE, "edf": section}
    return config_file(tmp_path, data)


def convert(tmp_path: Path, **edf):
    return build_caches(load_config(edf_config_file(tmp_path, **edf)).data, log=lambda _: None)["train"]


def two_recordings(tmp_path: Path) -> None:
    """a: TUH labels at 256 Hz, CSV events; b: other labels at 512 Hz (resampled), EDF+ annotations."""
    write_recording(
        tmp_path / "edf/p1/a.edf",
        seconds=30,
        channels={"EEG FP1-REF": 256.0, "EEG FP2-REF": 256.0, "EEG T3-REF": 256.0, "EKG": 256.0},
        events=[(5.5, 9.25, "seiz"), (20.0, 21.0, "bckg")],
    )
    write_recording(
        tmp_path / "edf/p2/b.edf",
        seconds=20,
        channels={"T3-LE": 512.0, "fp2-le": 512.0, "FP1-LE": 512.0},
        events=[(12.0, 15.0, "seiz"), (1.0, 2.0, "Recording note")],
        annotations="edf+",
        seed=5,
    )


def expected_labels(events, starts, size):
    seconds = (starts[:, None] + np.arange(size)) / RATE
    inside = np.zeros(seconds.shape, bool)
    for start, stop in events:
        inside |= (seconds >= start) & (seconds < stop)
    return inside.astype(np.int64)


def test_windows_and_labels_follow_the_recordings_to_the_sample(tmp_path):
    from edfio import read_edf

    two_recordings(tmp_path)
    split = convert(tmp_path, annotations={"label_map": {"seiz": 1, "bckg": 0}})
    size, stride = 4 * RATE, 2 * RATE
    counts = [(30 * RATE - size) // stride + 1, (20 * RATE - size) // stride + 1]
    assert split.count == sum(counts) == 14 + 9
    assert [chunk["count"] for chunk in split.meta["chunks"]] == counts
    windows, labels = (np.asarray(a) for a in split.arrays())
    assert windows.shape == (23, 3, size) and labels.shape == (23, size)
    starts = np.arange(counts[0]) * stride
    assert np.array_equal(labels[:14], expected_labels([(5.5, 9.25)], starts, size))
    starts = np.arange(counts[1]) * stride
    assert np.array_equal(labels[14:], expected_labels([(12.0, 15.0)], starts, size))
    source = read_edf(tmp_path / "edf/p1/a.edf")
    fp2 = source.signals[1].data.astype(np.float32)
    assert np.array_equal(windows[3, 1], fp2[3 * stride : 3 * stride + size])  # channel order as configured
    assert split.group_names == ["p1/a", "p2/b"]
    assert split.groups.tolist() == [0] * 14 + [1] * 9


def test_the_val_hold_out_keeps_each_recording_on_one_side(tmp_path):
    for index in range(6):
        write_recording(tmp_path / f"edf/r{index}.edf", seconds=12, events=[(2, 6, "seiz")], seed=index)
    split = convert(tmp_path, channels=["Fp1", "Cz"])
    held = hold_out(split, 0.34, seed=0, split_by="auto")
    train_groups, val_groups = set(split.groups[held.train]), set(split.groups[held.val])
    assert val_groups and train_groups and not train_groups & val_groups


def test_aliases_find_a_channel_under_another_name_and_a_missing_one_names_recording_and_channel(tmp_path):
    write_recording(
        tmp_path / "edf/new.edf", seconds=10, channels={"EEG FP1-REF": 256.0, "EEG T7-REF": 256.0}
    )
    with pytest.raises(DataError) as missing:
        convert(tmp_path, channels=["Fp1", "T3"])
    message = str(missing.value)
    assert "/edf/new.edf: no channel 'T3'" in message and "EEG T7-REF" in message
    assert "data.edf.aliases" in message and "unreadable to 'skip'" in message
    assert convert(tmp_path, channels=["Fp1", "T3"], aliases={"T3": ["T7"]}).count == 4


def test_a_bipolar_montage_subtracts_the_second_channel_of_each_pair(tmp_path):
    from edfio import read_edf

    write_recording(tmp_path / "edf/a.edf", seconds=8)
    split = convert(tmp_path, channels=None, montage=[["Fp1", "F7"], ["F7", "T3"]])
    source = {s.label: s.data for s in read_edf(tmp_path / "edf/a.edf").signals}
    windows, _ = split.arrays()
    expected = (source["EEG F7-REF"] - source["EEG T3-REF"]).astype(np.float32)[: 4 * RATE]
    assert windows.shape == (3, 2, 4 * RATE)
    np.testing.assert_allclose(windows[0, 1], expected, rtol=1e-6)


def test_the_band_pass_and_notch_filters_remove_what_they_should(tmp_path):
    write_recording(tmp_path / "edf/a.edf", seconds=20, channels={"Fp1": 256.0})

    def gain(**filters):
        raw = np.asarray(convert(tmp_path, channels=["Fp1"]).arrays()[0][4, 0])
        filtered = np.asarray(convert(tmp_path, channels=["Fp1"], filters=filters).arrays()[0][4, 0])
        hann = np.hanning(len(raw))
        return np.abs(np.fft.rfft(filtered * hann)) / np.abs(np.fft.rfft(raw * hann))

    hz = np.fft.rfftfreq(4 * RATE, 1 / RATE)
    band = gain(bandpass=[8, 12])
    assert np.median(band[(hz > 9.5) & (hz < 10.5)]) > 0.8  # the alpha rhythm stays
    assert np.median(band[hz > 40]) < 0.01 and np.median(band[hz < 2]) < 0.05
    notch = gain(notch=60)
    assert notch[np.argmin(abs(hz - 60))] < 0.1 and np.median(notch[(hz > 20) & (hz < 40)]) > 0.95


def test_a_corrupt_recording_is_skipped_with_its_reason_or_stops_the_conversion(tmp_path):
    write_recording(tmp_path / "edf/a.edf", seconds=10)
    write_recording(tmp_path / "edf/c.edf", seconds=10)
    (tmp_path / "edf/b.edf").write_bytes(b"0       not an EDF header" + bytes(300))
    with pytest.raises(DataError, match=r"/edf/b\.edf: not a readable EDF file"):
        convert(tmp_path)
    assert not list((tmp_path / "cache").glob("train-*/meta.json"))
    logged = []
    config = load_config(edf_config_file(tmp_path, unreadable="skip")).data
    split = build_caches(config, log=logged.append)["train"]
    assert split.count == 8 and split.group_names == ["a", "c"]
    assert any(
        line.startswith("edf: skipped ") and "/edf/b.edf: not a readable EDF" in line for line in logged
    )
    # the stopped build kept a.edf, whole: this one resumed after it
    assert any("train: 2 recordings (1 skipped)" in line for line in logged)


def test_csv_events_with_an_unmapped_label_name_the_line(tmp_path):
    write_recording(tmp_path / "edf/a.edf", seconds=10, events=[(1, 2, "seiz"), (3, 4, "spsz")])
    with pytest.raises(DataError, match=r"a\.csv_bi:7: the label 'spsz' is not in data.edf.annotations"):
        convert(tmp_path)
    counts = convert(tmp_path, annotations={"label_map": {"seiz": 1, "spsz": 2}}).label_counts
    assert counts[2] == 2 * RATE  # 1 s of class 2, in the two overlapping windows that hold 3-4 s


def test_an_edited_events_file_converts_again(tmp_path):
    write_recording(tmp_path / "edf/a.edf", seconds=10, events=[(1, 2, "seiz")])
    first = convert(tmp_path)
    write_events_csv(tmp_path / "edf/a.csv_bi", "a", 10, [(1, 3, "seiz"), (5, 5.5, "seiz")])
    second = convert(tmp_path)
    assert second.path != first.path and second.label_counts[1] > first.label_counts[1]


def test_kind_csv_without_an_events_file_is_the_recordings_problem(tmp_path):
    write_recording(tmp_path / "edf/a.edf", seconds=10, annotations="edf+")
    with pytest.raises(DataError, match=r"a\.edf: no events file a\.csv_bi or a\.csv beside it"):
        convert(tmp_path, annotations={"kind": "csv"})


def test_parallel_conversion_writes_the_serial_bytes(tmp_path):
    for index in range(5):
        write_recording(tmp_path / f"edf/r{index}.edf", seconds=10 + 2 * index, events=[(3, 5, "seiz")])
    serial = convert(tmp_path, workers=1)
    config = load_config(edf_config_file(tmp_path, workers=2)).data
    parallel_dir = tmp_path / "cache2"
    parallel = build_caches(_with_cache_dir(config, parallel_dir), log=lambda _: None)["train"]
    assert parallel.path.name == serial.path.name  # the worker count is not part of the fingerprint
    for name in ("windows.f32", "labels.bin", "lengths.i32", "groups.i32"):
        assert (parallel.path / name).read_bytes() == (serial.path / name).read_bytes(), name


def _with_cache_dir(config, cache_dir: Path):
    from dataclasses import replace

    return replace(config, cache_dir=str(cache_dir))


CHILD_BUILD = """
import os, signal, sys
from runtime.config import load_config
from runtime.data import cache_build, loading
cache_build.PROGRESS_EVERY_FILES, cache_build.PROGRESS_EVERY_SECONDS = 1, 3600.0
appended = []
def advance(self):
    appended.append(1)
    if len(appended) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
loading._FileProgress.advance = advance
loading.build_caches(load_config(sys.argv[1]).data)
"""


def test_a_conversion_killed_midway_resumes_at_the_first_recording_not_written(tmp_path, monkeypatch):
    from runtime.data import edf as edf_module

    for index in range(6):
        write_recording(tmp_path / f"edf/r{index}.edf", seconds=10, events=[(index, index + 2, "seiz")])
    config = edf_config_file(tmp_path, workers=2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD_BUILD, config], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    converted = []

    def counted(path, *args):
        converted.append(path.name)
        return edf_module.preprocess_recording(path, *args)

    monkeypatch.setattr(edf_convert_module, "preprocess_recording", counted)
    resumed = convert(tmp_path, workers=1)
    assert converted == ["r3.edf", "r4.edf", "r5.edf"]
    fresh = build_caches(_with_cache_dir(load_config(config).data, tmp_path / "fresh"), log=print)["train"]
    for name in ("windows.f32", "labels.bin", "groups.i32"):
        assert (resumed.path / name).read_bytes() == (fresh.path / name).read_bytes(), name


def test_config_mistakes_point_at_their_keys(tmp_path):
    cases = [
        ({"montage": [["Fp1", "F7"]]}, "config/edf-channels", "not both"),
        ({"filters": {"bandpass": [0.5, 200]}}, "config/edf-filter", "expected low < high < 128"),
        ({"filters": {"notch": 128}}, "config/edf-filter", "is not below 128 Hz"),
        ({"window_seconds": 0.001}, "config/edf-window", "less than one sample"),
    ]
    for edf, rule, text in cases:
        with pytest.raises(SpecError) as raised:
            load_config(edf_config_file(tmp_path, **edf))
        (problem,) = raised.value.diagnostics
        assert problem.rule == rule and text in problem.message and problem.line == 1
    no_section = config_file(tmp_path, {"format": "edf", "train": "x"})
    with pytest.raises(SpecError, match="data.edf: required with format 'edf'"):
        load_config(no_section)
    unused = config_file(tmp_path, {"format": "synthetic", "edf": {"channels": ["Fp1"]}})
    with pytest.raises(SpecError, match="data.edf: only used with format 'edf'"):
        load_config(unused)


def test_a_missing_reader_names_the_extra(monkeypatch):
    from runtime.data.edf import edf_reader

    monkeypatch.setitem(sys.modules, "edfio", None)
    with pytest.raises(DataError, match=r"needs the 'edf' extra .*pip install 'mtc\[edf\]'"):
        edf_reader()


def test_workers_auto_is_capped_by_the_cgroup_quota(tmp_path, monkeypatch):
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")
    monkeypatch.setattr(edf_convert_module, "CGROUP_CPU_MAX", quota)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)))
    assert edf_convert_module.conversion_workers("auto", 100) == 2
    assert edf_convert_module.conversion_workers("auto", 1) == 1
    quota.write_text("max 100000\n")
    assert edf_convert_module.conversion_workers("auto", 100) == 8
    assert edf_convert_module.conversion_workers(3, 100) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("# only comments\n", "ev.csv_bi: no header line"),
        ("channel,start,stop,label\nTERM,1,2,seiz\n", "ev.csv_bi:1: the header lacks start_time, stop_time"),
        ("# c\nchannel,start_time,stop_time,label\nTERM,one,2,seiz\n", "ev.csv_bi:3: start_time 'one'"),
        ("channel,start_time,stop_time,label\nTERM,5,2,seiz\n", "ev.csv_bi:2: the event runs from 5 to 2 s"),
        ("channel,start_time,stop_time,label\nTERM,1\n", "ev.csv_bi:2: 2 fields; expected at least 4"),
    ],
)
def test_malformed_events_files_name_the_line(tmp_path, text, problem):
    from runtime.data.annotations import csv_events

    (tmp_path / "ev.csv_bi").write_text(text)
    with pytest.raises(DataError, match=re.escape(problem)):
        csv_events(tmp_path / "ev.csv_bi", "ev.csv_bi")


def test_events_are_clipped_to_the_recording_and_point_annotations_cover_one_sample():
    from runtime.data.annotations import Event, edf_events, timestep_labels

    class Note:
        def __init__(self, onset, duration, text):
            self.onset, self.duration, self.text = onset, duration, text

    events = edf_events([Note(-1.0, 2.0, "seiz"), Note(3.0, None, "seiz"), Note(4.0, 9.0, "seiz")], "r", 2.0)
    labels = timestep_labels([*events, Event(2.0, 2.5, "other", "r")], 10, 2.0, {"seiz": 1}, 0, strict=False)
    assert labels.tolist() == [1, 1, 0, 0, 0, 0, 1, 0, 1, 1]
