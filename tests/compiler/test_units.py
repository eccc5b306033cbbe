"""Unit parsing: sizes to MiB (exact, rounded up), durations to seconds, CPU cores; and the GPU catalog."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from compiler.platform import gpus
from compiler.platform.resources import Gpu
from compiler.spec import units


@pytest.mark.parametrize(
    ("text", "mib"),
    [
        (131072, 131072),
        (1024.0, 1024),
        ("128GiB", 131072),
        ("128Gi", 131072),
        ("512MiB", 512),
        ("512Mi", 512),
        ("1TiB", 1024 * 1024),
        ("1.5GiB", 1536),
        ("16GB", 15259),  # 16e9 / 2**20 = 15258.79 -> rounded up
        ("1G", 954),  # 953.67 -> 954
        ("1000M", 954),
        ("1048576M", 1000000),  # 1048576e6 / 2**20 is exactly 10**6: no rounding
        ("1MB", 1),  # 0.95 MiB rounds up to 1
        ("2 GiB", 2048),
    ],
)
def test_size_in_mib(text, mib):
    assert units.parse_size_mib(text) == mib


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from(["M", "MB", "G", "GB", "Mi", "Gi"]))
def test_decimal_sizes_round_up_to_the_next_whole_mib(number, unit):
    factor = {"M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9, "Mi": 2**20, "Gi": 2**30}[unit]
    mib = units.parse_size_mib(f"{number}{unit}")
    assert (mib - 1) * 2**20 < number * factor <= mib * 2**20 or number == 0 == mib


NOT_SIZES = ["128", "128 gigs", "GiB", "-5GiB", "1.5", True, None, 1.5, [1], "1e3MiB", "12KiB"]


@pytest.mark.parametrize("bad", NOT_SIZES)
def test_size_rejects_what_is_not_a_size(bad):
    with pytest.raises(units.UnitError, match="a size such as"):
        units.parse_size_mib(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(300, 300), ("90s", 90), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("1h30m15s", 5415), ("0s", 0)],
)
def test_duration_in_seconds(text, seconds):
    assert units.parse_duration_s(text) == seconds


@pytest.mark.parametrize("bad", ["", "h", "1d", "30m1h", "1.5h", "5 m", "five", True, 1.5, None])
def test_duration_rejects_what_is_not_a_duration(bad):
    with pytest.raises(units.UnitError, match="a duration such as"):
        units.parse_duration_s(bad)


def test_cpu_keeps_whole_numbers_as_int():
    assert units.parse_cpu(32) == 32 and isinstance(units.parse_cpu(32), int)
    assert isinstance(units.parse_cpu(4.0), int)
    assert units.parse_cpu(0.5) == 0.5


@pytest.mark.parametrize("bad", ["4", True, None, float("nan"), float("inf")])
def test_cpu_rejects_non_numbers(bad):
    with pytest.raises(units.UnitError):
        units.parse_cpu(bad)


def test_formatting_for_messages():
    assert units.format_mib(131072) == "128 GiB"
    assert units.format_mib(1500) == "1500 MiB"
    assert units.format_seconds(5400) == "1h30m"
    assert units.format_seconds(90) == "90s"
    assert units.format_seconds(7200) == "2h"


@pytest.mark.parametrize(
    ("text", "gpu"),
    [
        ("A100-80GB", Gpu("A100-80GB", 1)),
        ("a100-80gb", Gpu("A100-80GB", 1)),
        ("h100:8", Gpu("H100", 8)),
        ("H100!", Gpu("H100!", 1)),
        ("b200+:2", Gpu("B200+", 2)),
        ("rtx-pro-6000", Gpu("RTX-PRO-6000", 1)),
        ("A10G:2", Gpu("A10", 2)),
        ("A100-81GB", Gpu("A100-81GB", 1)),  # unknown types are kept for the lint to report
        ("H100:0", Gpu("H100", 0)),
    ],
)
def test_gpu_parse_canonicalises(text, gpu):
    assert gpus.parse(text) == gpu


@pytest.mark.parametrize("bad", ["", ":2", "H100:", "H100:x", "H100:-1", "H100:²"])
def test_gpu_parse_rejects_malformed(bad):
    with pytest.raises(gpus.GpuFormatError):
        gpus.parse(bad)


def test_gpu_catalog_limits():
    assert gpus.max_count("A10") == 4
    assert gpus.max_count("any") == 4  # it may land on an A10
    assert all(gpus.max_count(name) == 8 for name in gpus.names() if name not in ("A10", "any"))
    assert gpus.canonical("a10g") == "A10"
    assert gpus.canonical("ANY") == "any"
    assert gpus.canonical("V100") is None
