"""runtime.data: the three formats, malformed files, NaN/Inf policies, the cache (reuse, invalidation, resume,
verification), the val hold-out and the loader's order."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.config import load_config
from runtime.data import (
    DataError,
    EpochBatchSampler,
    build_caches,
    cache_build,
    make_loader,
    populate_cache,
    prepare_data,
)
from runtime.data import cache as cache_module
from tests.helpers.datafiles import config_file, data_config, write_npz, write_ts

# ------------------------------------------------------------------------------------------------ npz


def test_npz_folder_becomes_one_contiguous_split(tmp_path):
    write_npz(tmp_path / "src/train/a.npz", n=5, seed=1)
    write_npz(tmp_path / "src/train/sub/b.npz", n=7, seed=2)
    write_npz(tmp_path / "src/val.npz", n=4, seed=3)
    bundle = prepare_data(
        data_config(
            tmp_path, format="npz", train=str(tmp_path / "src/train"), val=str(tmp_path / "src/val.npz")
        ),
        seed=0,
    )
    train = bundle.splits["train"]
    assert len(train) == 12 and len(bundle.splits["val"]) == 4
    windows, labels = train.cache.arrays()
    assert isinstance(windows, np.memmap) and windows.shape == (12, 3, 16)
    with np.load(tmp_path / "src/train/a.npz") as first:
        assert np.array_equal(windows[:5], first["windows"])
        assert np.array_equal(labels[:5], first["labels"])
    assert (bundle.in_channels, bundle.length, bundle.num_classes, bundle.per_timestep) == (3, 16, 2, False)


def test_per_timestep_labels_and_a_manifest_of_splits(tmp_path):
    folder = tmp_path / "src"
    for name, seed in (("r1.npz", 1), ("r2.npz", 2), ("r3.npz", 3)):
        write_npz(folder / name, per_timestep=True, seed=seed)
    (folder / "manifest.json").write_text(json.dumps({"train": ["r1.npz", "r2.npz"], "test": ["r3.npz"]}))
    bundle = prepare_data(data_config(tmp_path, format="npz", train=str(folder)), seed=0)
    assert bundle.per_timestep
    assert set(bundle.splits) == {"train", "val", "test"}
    assert len(bundle.splits["test"]) == 6
    assert len(bundle.splits["train"]) + len(bundle.splits["val"]) == 12  # val held out of train
    _, labels = bundle.splits["test"].cache.arrays()
    assert labels.shape == (6, 16) and labels.dtype == np.uint8


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"windows": np.zeros((4, 16), np.float32)},
            r"'windows' has shape \(4, 16\); expected \(n, channels",
        ),
        (
            {"labels": np.zeros(5, np.int64)},
            r"'labels' has shape \(5,\); expected \(6,\) per window or \(6, 16\)",
        ),
        ({"labels": np.full(6, -1)}, "'labels' holds negative values"),
        ({"labels": np.full(6, 0.5)}, "'labels' holds non-integer values"),
        ({"windows": np.full((6, 3, 16), "a")}, "'windows' has dtype <U1"),
        (
            {"labels": np.array([0, 10**9, 0, 1, 0, 1])},
            r"'labels' holds the class index 1000000000; class indices must lie in 0\.\.255",
        ),
        ({"labels": np.full(6, 256.0)}, "'labels' holds the class index 256; "),
        (
            {"windows": np.zeros((6, 0, 16), np.float32)},
            r"'windows' has shape \(6, 0, 16\): windows of 0 channel\(s\) x 16 timestep\(s\)",
        ),
        (
            {"windows": np.zeros((6, 3, 0), np.float32)},
            r"'windows' has shape \(6, 3, 0\): windows of 3 channel\(s\) x 0 timestep\(s\)",
        ),
        ({"labels": np.array([0, 1, None, 0, 1, 0], dtype=object)}, "'labels' holds Python objects"),
    ],
)
def test_malformed_npz_files_are_named_with_the_problem(tmp_path, arrays, message):
    write_npz(tmp_path / "src/good.npz")
    write_npz(tmp_path / "src/zbad.npz", **arrays)
    with pytest.raises(DataError, match=rf"src/zbad\.npz: {message}"):
        prepare_data(data_config(tmp_path, format="npz", train=str(tmp_path / "src")), seed=0)


def test_npz_that_is_not_an_archive_or_lacks_arrays(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/broken.npz").write_bytes(os.urandom(4096))
    with pytest.raises(
        DataError,
        match=r"broken\.npz: not a valid \.npz file \(File is not a zip file\); expected a zip archive",
    ) as refused:
        prepare_data(data_config(tmp_path, format="npz", train=str(tmp_path / "src")), seed=0)
    assert "pickle" not in str(refused.value)
    (tmp_path / "src/broken.npz").unlink()
    np.savez(tmp_path / "src/other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match=r"other\.npz: expected arrays 'windows' and 'labels', found x"):
        prepare_data(data_config(tmp_path, format="npz", train=str(tmp_path / "src")), seed=0)


def write_npz_with_header(path: Path, shape: tuple, data: bytes) -> Path:
    """An npz whose 'windows' header declares ``shape`` (float32) but holds only ``data``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    labels = io.BytesIO()
    np.save(labels, np.zeros(2, np.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("windows.npy", header.getvalue() + data)
        archive.writestr("labels.npy", labels.getvalue())
    return path


def test_an_array_header_is_checked_against_the_file_before_anything_is_allocated(tmp_path):
    write_npz_with_header(
        tmp_path / "src/huge.npz", (10**12, 4, 256), np.zeros((2, 4, 256), np.float32).tobytes()
    )
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    with pytest.raises(
        DataError, match=r"huge\.npz: 'windows' declares shape \(1000000000000, 4, 256\) of float32"
    ):
        build_caches(config)
    write_npz_with_header(tmp_path / "src/huge.npz", (2, 4, 256), np.zeros(100, np.float32).tobytes())
    with pytest.raises(
        DataError, match=r"huge\.npz: 'windows' .* holds only 400 bytes of it; the file is damaged"
    ):
        build_caches(config)


def test_damaged_npz_files_end_in_a_data_error_and_nothing_else(tmp_path):
    """Seeded byte flips and cuts of stored and compressed npz files, and an 'encrypted' member."""
    from runtime.data.formats import read_npz

    rng = np.random.default_rng(5)
    np.savez(tmp_path / "stored.npz", windows=rng.random((3, 2, 8), np.float32), labels=np.array([0, 1, 1]))
    np.savez_compressed(tmp_path / "deflated.npz", windows=rng.random((3, 2, 8)), labels=np.array([0, 1, 1]))
    damaged = tmp_path / "damaged.npz"
    for source in ("stored.npz", "deflated.npz"):
        original = (tmp_path / source).read_bytes()
        for _ in range(300):
            data = bytearray(original)
            for position in rng.integers(0, len(data), rng.integers(1, 4)):
                data[position] = rng.integers(0, 256)
            damaged.write_bytes(bytes(data[: rng.integers(len(data) // 2, len(data) + 1)]))
            try:
                read_npz(damaged, "damaged.npz")
            except DataError:
                pass
    central = bytearray((tmp_path / "stored.npz").read_bytes())
    entry = central.index(b"PK\x01\x02")  # the first member's central directory entry
    central[entry + 8] |= 0x1  # its "encrypted" flag
    damaged.write_bytes(bytes(central))
    with pytest.raises(DataError, match=r"damaged\.npz: not a readable \.npz file \(File .* is encrypted"):
        read_npz(damaged, "damaged.npz")


def test_files_of_one_split_must_agree(tmp_path):
    write_npz(tmp_path / "src/a.npz", channels=3)
    write_npz(tmp_path / "src/b.npz", channels=4)
    with pytest.raises(
        DataError, match=r"b\.npz: windows are 4 channels x 16 timesteps, but .*a\.npz has 3 x 16"
    ):
        prepare_data(data_config(tmp_path, format="npz", train=str(tmp_path / "src")), seed=0)


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such file or folder"):
        build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no \*\.npz files"):
        build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "empty")))
    (tmp_path / "empty/manifest.json").write_text(json.dumps({"train": ["gone.npz"]}))
    with pytest.raises(DataError, match=r"manifest\.json: lists 1 missing file.*'gone\.npz'"):
        build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "empty")))


# ------------------------------------------------------------------------------------------- NaN / Inf


@pytest.mark.parametrize(("policy", "kept"), [("drop", 4), ("zero", 6)])
def test_nonfinite_windows_are_counted_and_dropped_or_zeroed(tmp_path, policy, kept):
    windows = np.ones((6, 2, 8), np.float32)
    windows[1, 0, 3] = np.nan
    windows[4, 1, 0] = np.inf
    write_npz(tmp_path / "src/a.npz", windows=windows, labels=np.arange(6) % 2)
    caches = build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "src"), nonfinite=policy))
    split = caches["train"]
    assert split.count == kept and split.meta["nonfinite"] == 2
    stored, _ = split.arrays()
    assert np.isfinite(stored).all()
    if policy == "zero":
        assert stored[1, 0, 3] == 0 and stored[1, 0, 2] == 1


def test_data_that_is_all_nonfinite_says_so_rather_than_too_few_windows(tmp_path):
    write_npz(tmp_path / "src/a.npz", windows=np.full((6, 2, 8), np.nan, np.float32), labels=np.arange(6) % 2)
    with pytest.raises(DataError) as refused:
        prepare_data(data_config(tmp_path, format="npz", train=str(tmp_path / "src")), seed=0)
    message = str(refused.value)
    assert (
        "the train split has no windows left: all 6 of them hold NaN/Inf values and were dropped" in message
    )
    assert "data.nonfinite" in message and "too few" not in message


def test_nonfinite_error_policy_names_the_file_and_window(tmp_path):
    windows = np.ones((3, 2, 8), np.float32)
    windows[2, 0, 0] = np.nan
    write_npz(tmp_path / "src/a.npz", windows=windows, labels=np.zeros(3, int))
    with pytest.raises(DataError, match=r"a\.npz: 1 window\(s\) hold NaN or Inf values \(first: window 2\)"):
        build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "src"), nonfinite="error"))


# -------------------------------------------------------------------------------------------------- ts


def test_ts_univariate_and_multivariate(tmp_path):
    train = write_ts(tmp_path / "TRAIN.ts", ["1,2,3,4:up", "4,3,2,1:down", "1,?,3,4:up"])
    test = write_ts(tmp_path / "TEST.ts", ["0,0,0,1:down"])
    bundle = prepare_data(
        data_config(tmp_path, format="ts", train=str(train), val=str(test), test=str(test), nonfinite="zero"),
        seed=0,
    )
    assert bundle.class_names == ["up", "down"] and bundle.num_classes == 2
    windows, labels = bundle.splits["train"].cache.arrays()
    assert windows.shape == (3, 1, 4) and labels.tolist() == [0, 1, 0]
    assert windows[2, 0].tolist() == [1, 0, 3, 4]  # '?' is missing: zeroed by the policy
    multi = write_ts(
        tmp_path / "m/TRAIN.ts", ["1,2,3:4,5,6:1", "3,2,1:6,5,4:2"], classes="1 2", univariate="false"
    )
    caches = build_caches(data_config(tmp_path / "m", format="ts", train=str(multi)))
    assert caches["train"].arrays()[0].shape == (2, 2, 3)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["1,2,3:4,5,6:up", "1,2:down"], r"series 2 has 1 dimension\(s\), series 1 has 2"),
        (["1,2,3:sideways"], r"TRAIN\.ts:7: class label 'sideways' is not one of up, down"),
        (["1,x,3:up"], r"TRAIN\.ts:7: a value is not a number"),
        (["1,2,3"], r"TRAIN\.ts:7: expected 'values:\.\.\.:label'"),
    ],
)
def test_malformed_ts_files_are_named_with_the_problem(tmp_path, rows, message):
    path = write_ts(tmp_path / "TRAIN.ts", rows)
    with pytest.raises(DataError, match=message):
        build_caches(data_config(tmp_path, format="ts", train=str(path)))


def test_ts_without_data_or_classes(tmp_path):
    path = tmp_path / "TRAIN.ts"
    path.write_text("@problemName x\n@classLabel true a b\n")
    with pytest.raises(DataError, match=r"TRAIN\.ts: no '@data' line"):
        build_caches(data_config(tmp_path, format="ts", train=str(path)))
    path.write_text("@problemName x\n@classLabel false\n@data\n1,2:3\n")
    with pytest.raises(DataError, match="only classification problems are supported"):
        build_caches(data_config(tmp_path, format="ts", train=str(path)))


# ------------------------------------------------------------------------------------------- synthetic


def test_synthetic_data_is_deterministic_and_labelled(tmp_path):
    config = data_config(
        tmp_path,
        format="synthetic",
        synthetic={"n_train": 600, "n_val": 50, "n_test": 50, "labels": "timestep", "length": 64},
    )
    first = prepare_data(config, seed=0)
    windows, labels = first.splits["train"].cache.arrays()
    assert windows.shape == (600, 4, 64) and labels.shape == (600, 64) and first.per_timestep
    bursts = labels.any(axis=1).mean()
    assert 0.35 < bursts < 0.65
    other = prepare_data(replace(config, cache_dir=str(tmp_path / "other")), seed=0)
    assert np.array_equal(np.asarray(windows), np.asarray(other.splits["train"].cache.arrays()[0]))
    reseeded = replace(
        config, cache_dir=str(tmp_path / "third"), synthetic=replace(config.synthetic, seed=99)
    )
    assert not np.array_equal(
        np.asarray(windows), prepare_data(reseeded, seed=0).splits["train"].cache.arrays()[0]
    )


# ----------------------------------------------------------------------------------------------- cache


def test_cache_is_reused_and_rebuilt_when_a_source_changes(tmp_path):
    source = write_npz(tmp_path / "src/a.npz", seed=1)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val_fraction=0.5)
    first = build_caches(config)["train"]
    again = build_caches(config)["train"]
    assert not first.reused and again.reused and again.path == first.path
    write_npz(source, n=9, seed=2)
    os.utime(source, ns=(1, 1))
    changed = build_caches(config)["train"]
    assert not changed.reused and changed.path != first.path and changed.count == 9
    policy = build_caches(replace(config, nonfinite="zero"))["train"]
    assert policy.path not in (first.path, changed.path)


def test_an_interrupted_build_resumes_after_the_last_whole_file(tmp_path, monkeypatch):
    for index in range(4):
        write_npz(tmp_path / f"src/f{index}.npz", seed=index)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    from runtime.data import formats, loading

    calls = []

    def flaky_read(path, shown, *rest):
        calls.append(Path(path).name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process dies while converting the third file
        return formats.read_npz(path, shown, *rest)

    monkeypatch.setattr(loading, "read_npz", flaky_read)
    with pytest.raises(KeyboardInterrupt):
        build_caches(config)
    assert list((tmp_path / "cache").glob("*.partial"))
    calls.clear()
    monkeypatch.setattr(
        loading,
        "read_npz",
        lambda path, shown, *rest: calls.append(Path(path).name) or formats.read_npz(path, shown, *rest),
    )
    split = build_caches(config)["train"]
    assert calls == ["f2.npz", "f3.npz"]  # the two finished files are not read again
    cache_module.verify_cache(split)
    windows, _ = split.arrays()
    with np.load(tmp_path / "src/f3.npz") as last:
        assert np.array_equal(windows[-6:], last["windows"])
    assert not list((tmp_path / "cache").glob("*.partial"))


def test_a_partial_build_whose_data_was_cut_short_starts_over(tmp_path, monkeypatch):
    from runtime.data import formats, loading

    for index in range(3):
        write_npz(tmp_path / f"src/f{index}.npz", seed=index)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    reads = []

    def read_twice_then_die(path, shown, *rest):
        reads.append(Path(path).name)
        if len(reads) == 3:
            raise KeyboardInterrupt
        return formats.read_npz(path, shown, *rest)

    monkeypatch.setattr(loading, "read_npz", read_twice_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_caches(config)
    (partial,) = (tmp_path / "cache").glob("*.partial")
    (partial / cache_module.WINDOWS_FILE).write_bytes(b"")  # recorded chunks whose bytes are gone
    reads.clear()
    monkeypatch.setattr(
        loading,
        "read_npz",
        lambda path, shown, *rest: reads.append(path) or formats.read_npz(path, shown, *rest),
    )
    split = build_caches(config)["train"]
    assert len(reads) == 3 and split.count == 18
    cache_module.verify_cache(split)


def test_concurrent_builders_build_once(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from runtime.data import formats, loading

    write_npz(tmp_path / "src/a.npz")
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    reads = []

    def slow_read(path, shown, *rest):
        reads.append(shown)
        time.sleep(0.2)
        return formats.read_npz(path, shown, *rest)

    monkeypatch.setattr(loading, "read_npz", slow_read)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: build_caches(config)["train"], range(2)))
    assert len(reads) == 1 and sorted(r.reused for r in results) == [False, True]


def test_progress_is_recorded_in_batches_not_per_file(tmp_path, monkeypatch):
    for index in range(40):
        write_npz(tmp_path / f"src/f{index:02d}.npz", n=2, seed=index)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    monkeypatch.setattr(cache_build, "PROGRESS_EVERY_FILES", 16)
    monkeypatch.setattr(cache_build, "PROGRESS_EVERY_SECONDS", 3600.0)
    real_fsync, synced = os.fsync, []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    split = build_caches(config)["train"]
    assert split.count == 80
    # 3 progress records (after 16, 32 and 40 files) of 5 fsyncs each (4 array files and the progress file),
    # plus the start and the finish; one record per file would make it 40 x 5 and more
    assert len(synced) <= 24


CHILD_BUILD = """
import os, signal, sys
from runtime.config import load_config
from runtime.data import cache_build, formats, loading
cache_build.PROGRESS_EVERY_FILES, cache_build.PROGRESS_EVERY_SECONDS = 10, 3600.0
reads = []
def read_npz(path, shown, *rest):
    reads.append(path)
    if len(reads) == 35:
        os.kill(os.getpid(), signal.SIGKILL)
    return formats.read_npz(path, shown, *rest)
loading.read_npz = read_npz
loading.build_caches(load_config(sys.argv[1]).data)
"""


def test_a_build_killed_with_sigkill_resumes_after_the_last_recorded_batch(tmp_path, monkeypatch):
    from runtime.data import formats, loading

    for index in range(60):
        write_npz(tmp_path / f"src/f{index:02d}.npz", n=2, seed=index)
    config = config_file(tmp_path, {"format": "npz", "train": str(tmp_path / "src")})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD_BUILD, config], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    (partial,) = (tmp_path / "cache").glob("*.partial")
    with open(partial / cache_build.PROGRESS_FILE, "a") as log:
        log.write('{"chunk": {"name": "torn')  # a line cut short by the kill
    reads = []
    monkeypatch.setattr(
        loading,
        "read_npz",
        lambda path, shown, *rest: reads.append(path) or formats.read_npz(path, shown, *rest),
    )
    split = build_caches(load_config(config).data)["train"]
    assert [Path(p).name for p in reads] == [f"f{index:02d}.npz" for index in range(30, 60)]
    cache_module.verify_cache(split)
    windows, labels = split.arrays()
    for index in (0, 29, 30, 59):
        with np.load(tmp_path / f"src/f{index:02d}.npz") as source:
            assert np.array_equal(windows[2 * index : 2 * index + 2], source["windows"])
            assert np.array_equal(labels[2 * index : 2 * index + 2], source["labels"])
    assert split.label_counts == np.bincount(np.asarray(labels)).tolist()


def test_builds_left_by_killed_processes_are_removed_at_the_next_start(tmp_path):
    import fcntl

    write_npz(tmp_path / "src/a.npz")
    cache_dir = tmp_path / "cache"
    (cache_dir / "train-dead.partial").mkdir(parents=True)
    (cache_dir / "train-dead.partial/windows.f32").write_bytes(b"x" * 1000)
    (cache_dir / "val-dead.lock").write_text("")
    (cache_dir / "train-live.partial").mkdir()
    with open(cache_dir / "train-live.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a builder still at work
        build_caches(data_config(tmp_path, format="npz", train=str(tmp_path / "src")))
    names = sorted(p.name for p in cache_dir.iterdir())
    built = [name for name in names if "." not in name]
    assert len(built) == 1 and built[0].startswith("train-")  # and its build left no lock file
    assert names == sorted([*built, "train-live.lock", "train-live.partial"])


def test_a_read_only_cache_dir_is_a_user_error_naming_the_key(tmp_path, monkeypatch):
    from runtime.core.errors import UserError

    (tmp_path / "cache").mkdir()
    real_open = open

    def read_only_open(path, mode="r", *args, **kwargs):  # as on a read-only volume (root ignores chmod)
        if Path(path).is_relative_to(tmp_path / "cache") and mode != "r":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(cache_module, "open", read_only_open, raising=False)
    monkeypatch.setattr(cache_build, "open", read_only_open, raising=False)
    with pytest.raises(
        DataError, match=r"data\.cache_dir: cannot write the cache in .*Read-only file system"
    ) as refused:
        build_caches(
            data_config(tmp_path, format="synthetic", synthetic={"n_train": 8, "n_val": 8, "n_test": 8})
        )
    assert isinstance(refused.value, UserError)


def test_verification_and_size_checks_catch_a_damaged_cache(tmp_path):
    write_npz(tmp_path / "src/a.npz")
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"))
    split = build_caches(config, verify=True)["train"]
    data = bytearray((split.path / "windows.f32").read_bytes())
    data[10] ^= 0xFF
    (split.path / "windows.f32").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"windows\.f32: the bytes of .*a\.npz do not match"):
        build_caches(config, verify=True)
    (split.path / "labels.bin").write_bytes(b"")
    with pytest.raises(DataError, match=r"labels\.bin: 0 bytes, expected 48; the cache is damaged"):
        build_caches(config)


def test_populate_cache_builds_verifies_and_reports(tmp_path, capsys):
    write_npz(tmp_path / "src/a.npz", n=8)
    write_npz(tmp_path / "src/b.npz", n=8, seed=5)
    config = config_file(
        tmp_path, {"format": "npz", "train": str(tmp_path / "src"), "test": str(tmp_path / "src/b.npz")}
    )
    first = populate_cache(config)
    assert first["splits"]["train"]["windows"] == 16 and first["splits"]["test"]["windows"] == 8
    assert first["splits"]["train"]["verified"] and not first["splits"]["train"]["reused"]
    assert populate_cache(config)["splits"]["train"]["reused"]
    assert "train: 16 windows" in capsys.readouterr().out


def test_splits_can_be_kept_in_memory(tmp_path):
    config = data_config(
        tmp_path, format="synthetic", in_memory=["val"], synthetic={"n_train": 64, "n_val": 16, "n_test": 16}
    )
    splits = prepare_data(config, seed=0).splits
    assert type(splits["val"].cache.arrays()[0]) is np.ndarray
    assert isinstance(splits["train"].cache.arrays()[0], np.memmap)


def test_splits_too_large_for_memory_stay_memory_mapped_with_a_message(tmp_path, monkeypatch):
    config = data_config(
        tmp_path, format="synthetic", in_memory=True, synthetic={"n_train": 64, "n_val": 16, "n_test": 16}
    )
    monkeypatch.setattr(cache_module, "available_memory", lambda: 1000)
    with pytest.raises(
        DataError, match=r"data\.in_memory: the cache .*train-\w+ is 256\.5 KiB, more than the 1000 bytes"
    ):
        prepare_data(config, seed=0)


def test_an_unwritable_cache_dir_names_the_key(tmp_path):
    (tmp_path / "file").write_text("")
    config = data_config(tmp_path, format="synthetic", cache_dir=str(tmp_path / "file" / "cache"))
    with pytest.raises(
        DataError, match=r"data\.cache_dir: cannot create .*file/cache.*mtc run --backend local"
    ):
        build_caches(config)


def test_paths_go_through_the_volume_map(tmp_path, monkeypatch):
    write_npz(tmp_path / "volume/data/a.npz")
    monkeypatch.setenv(
        "MTC_VOLUME_MAP",
        json.dumps({"/data": str(tmp_path / "volume/data"), "/results": str(tmp_path / "volume/results")}),
    )
    config = data_config(tmp_path, format="npz", train="/data", cache_dir="/results/cache")
    split = build_caches(config)["train"]
    assert split.path.parent == tmp_path / "volume/results/cache"


# ---------------------------------------------------------------------------------------------- loading


def test_the_batch_order_is_a_function_of_seed_and_epoch():
    sampler = EpochBatchSampler(10, 3, seed=1, shuffle=True, drop_last=True)
    epoch0 = [b.tolist() for b in sampler]
    assert len(epoch0) == 3 and sorted(sum(epoch0, []))[:9] == sorted(sum(epoch0, []))  # 9 distinct rows
    assert epoch0 == [b.tolist() for b in EpochBatchSampler(10, 3, seed=1, shuffle=True, drop_last=True)]
    sampler.set_position(0, 2)
    assert [b.tolist() for b in sampler] == epoch0[2:] and len(sampler) == 1
    sampler.set_position(1)
    assert [b.tolist() for b in sampler] != epoch0
    ordered = EpochBatchSampler(7, 3, seed=1, shuffle=False, drop_last=False)
    assert [b.tolist() for b in ordered] == [[0, 1, 2], [3, 4, 5], [6]]


def test_worker_processes_read_the_same_batches(tmp_path):
    config = data_config(
        tmp_path,
        format="synthetic",
        synthetic={"n_train": 200, "n_val": 20, "n_test": 20},
        loader={"batch_size": 16, "num_workers": 2, "prefetch_factor": 2},
    )
    view = prepare_data(config, seed=0).splits["train"]
    inline = make_loader(
        view, replace(config.loader, num_workers=0), batch_size=16, seed=4, shuffle=True, device="cpu"
    )
    workers = make_loader(view, config.loader, batch_size=16, seed=4, shuffle=True, device="cpu")
    for (x0, y0, n0), (x1, y1, n1) in zip(inline, workers, strict=True):
        assert x0.dtype == torch.float32 and y0.dtype == torch.int64
        assert torch.equal(x0, x1) and torch.equal(y0, y1) and torch.equal(n0, n1)


def test_val_is_held_out_of_train_reproducibly(tmp_path):
    write_npz(tmp_path / "src/a.npz", n=40)
    config = data_config(tmp_path, format="npz", train=str(tmp_path / "src"), val_fraction=0.25)
    first, second = prepare_data(config, seed=3), prepare_data(config, seed=3)
    train, val = first.splits["train"].indices, first.splits["val"].indices
    assert len(val) == 10 and len(train) == 30 and not set(train) & set(val)
    assert np.array_equal(val, second.splits["val"].indices)
    assert not np.array_equal(val, prepare_data(config, seed=4).splits["val"].indices)
    assert "held out 25% of train" in first.summary()
