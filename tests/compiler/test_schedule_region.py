"""Schedules and placement checked with real references: cron by croniter, periods with day units and
fractions as modal.Period takes them, regions and clouds against Modal's documented values."""

from __future__ import annotations

import json
import re

import pytest

from compiler.codegen.render import render
from compiler.lint.check import check
from compiler.platform import regions
from compiler.spec.schema import deployment_schema
from compiler.spec.units import UnitError, parse_period_s
from tests.helpers.generated_checks import import_generated

BASE = """\
version: 1
app: {name: schedule-test}
functions:
  job:
    run: platform:platform
    timeout: 1h
"""


def diagnostics(tmp_path, extra: str, rule: str | None = None):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + extra)
    found = check(str(path)).diagnostics
    return [d for d in found if rule is None or d.rule == rule]


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("61 * * * *", "the minute field '61' is wrong (0-59)"),
        ("0 24 * * *", "the hour field '24' is wrong (0-23)"),
        ("0 3 * 13 *", "the month field '13' is wrong"),
        ("*/0 * * * *", "step '0'"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_a_bad_cron_expression_is_an_error_at_its_line_with_the_reason(tmp_path, cron, says):
    (diagnostic,) = diagnostics(tmp_path, f'    schedule: {{cron: "{cron}"}}\n', "schedule-cron")
    assert diagnostic.severity == "error" and diagnostic.line == 7
    assert says in diagnostic.message


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/15 9-17 * * MON-FRI", "0 0 29 2 *"])
def test_a_valid_cron_expression_passes(tmp_path, cron):
    assert not diagnostics(tmp_path, f'    schedule: {{cron: "{cron}"}}\n', "schedule-cron")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1d", 86400), ("0.5d", 43200), ("0.1d", 8640), ("1d2h", 93600), (90, 90), ("2.5s", 2.5), (0.5, 0.5)],
)
def test_periods_take_days_and_fractions_exactly(text, seconds):
    assert parse_period_s(text) == seconds
    assert type(parse_period_s(text)) is type(seconds)


@pytest.mark.parametrize("text", ["0s", 0, -5, "1x", "d", True])
def test_a_period_that_is_not_above_zero_or_not_a_period_is_refused(text):
    with pytest.raises(UnitError, match="above 0"):
        parse_period_s(text)


@pytest.mark.parametrize(
    ("period", "call"),
    [
        ("1d", "modal.Period(days=1)"),
        ("24h", "modal.Period(hours=24)"),  # not days=1: Modal's days keep the wall-clock time across DST
        ("0.5d", "modal.Period(hours=12)"),
        ("1h30m", "modal.Period(hours=1, minutes=30)"),
        ("0.1d", "modal.Period(hours=2, minutes=24)"),
        ("2.5s", "modal.Period(seconds=2.5)"),
        ("0.5s", "modal.Period(seconds=0.5)"),
        ("5400", "modal.Period(seconds=5400)"),
    ],
)
def test_a_period_becomes_the_modal_period_call_modal_reports(tmp_path, period, call):
    path = tmp_path / "spec.yaml"
    path.write_text(BASE + f"    schedule: {{period: {period}}}\n")
    result = check(str(path))
    assert not result.has_errors, [d.format() for d in result.diagnostics]
    source = render(result.app)
    assert f"schedule={call}" in source
    module_path = tmp_path / "module.py"
    module_path.write_text(source)
    seen = import_generated(module_path).job.info().schedule  # e.g. Period(hours=1, minutes=30)
    assert keywords(seen) == keywords(call)


def keywords(text: str) -> dict[str, float]:
    """``Period(hours=1, minutes=30)`` -> {"hours": 1.0, "minutes": 30.0} (Modal shows seconds as a float)."""
    return {unit: float(amount) for unit, amount in re.findall(r"(\w+)=([0-9.]+)", text)}


def test_an_unknown_region_is_an_error_and_a_close_one_gets_a_suggestion(tmp_path):
    (mars,) = diagnostics(tmp_path, "    region: mars\n", "region-unknown")
    assert mars.line == 7 and "Modal's regions: us, eu, ap, us-east" in mars.message
    (typo,) = diagnostics(tmp_path, "    region: [us-east, us-eats]\n", "region-unknown")
    assert typo.col == 23 and "did you mean 'us-east'?" in typo.message


@pytest.mark.parametrize("region", ["us", "eu-west", "us-east-1", "europe-west4", "ap-south-1"])
def test_documented_regions_pass(tmp_path, region):
    assert not diagnostics(tmp_path, f"    region: {region}\n", "region-unknown")


def test_the_schemas_clouds_are_the_platform_facts():
    cloud = deployment_schema()["$defs"]["functionSettings"]["properties"]["cloud"]
    assert tuple(cloud["enum"]) == regions.CLOUDS
    assert json.dumps(regions.SOURCE).startswith('"https://modal.com/docs/guide/region-selection')


def test_diff_tells_a_day_from_24_hours(capsys, tmp_path):
    from tests.helpers.cli_runner import mtc

    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(BASE + "    schedule: {period: 1d}\n")
    new.write_text(BASE + "    schedule: {period: 24h}\n")
    code, out, _ = mtc(capsys, "diff", str(old), str(new))
    assert code == 2 and "~ job.schedule: period days=1 → period hours=24" in out
