"""The price table and the hourly estimate built on it."""

from __future__ import annotations

import json

import pytest

from compiler.platform.pricing import PricingError, hourly_cost, load_prices
from compiler.platform.resources import Gpu, Resources


def test_the_table_says_where_its_prices_come_from_and_when():
    prices = load_prices()
    assert prices.source and prices.date
    assert prices.gpu_rate("A100-80GB") == 0.000694


def test_an_override_file_leaves_the_built_in_table_as_it_was(tmp_path):
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"gpu_per_second": {"A100-80GB": 1.0}, "cpu_core_per_second": 2.0}))
    assert load_prices(override).gpu_rate("A100-80GB") == 1.0
    again = load_prices()
    assert again.gpu_rate("A100-80GB") == 0.000694 and again.cpu_core_per_second == 0.0000131


@pytest.mark.parametrize(
    ("alias", "priced_as"), [("A100", "A100-40GB"), ("A10G", "A10"), ("H100!", "H100"), ("B200+", "B200")]
)
def test_aliases_are_priced_like_the_card_they_stand_for(alias, priced_as):
    prices = load_prices()
    assert prices.gpu_rate(alias) == prices.gpu_rate(priced_as)


def test_an_hour_adds_gpus_cores_and_memory():
    cost = hourly_cost(Resources(cpu=32, memory_mib=131072, gpus=(Gpu("H100", 8),)))
    assert cost.gpu == pytest.approx(8 * 0.001097 * 3600)
    assert cost.cpu == pytest.approx(32 * 0.0000131 * 3600)
    assert cost.memory == pytest.approx(128 * 0.00000222 * 3600)
    assert cost.total == pytest.approx(cost.gpu + cost.cpu + cost.memory)


def test_cpu_only_functions_pay_at_least_the_minimum_core_and_default_memory():
    cost = hourly_cost(Resources())
    assert cost.gpu == 0
    assert cost.cpu == pytest.approx(0.125 * 0.0000131 * 3600)
    assert cost.memory == pytest.approx(128 / 1024 * 0.00000222 * 3600)


def test_a_fallback_gpu_can_be_priced_instead_of_the_first():
    resources = Resources(cpu=1, memory_mib=1024, gpus=(Gpu("H100"), Gpu("T4", 2)))
    assert hourly_cost(resources, gpu=Gpu("T4", 2)).gpu == pytest.approx(2 * 0.000164 * 3600)


def test_an_override_file_replaces_only_the_rates_it_names(tmp_path):
    override = tmp_path / "prices.json"
    override.write_text(
        json.dumps({"date": "2027-01", "gpu_per_second": {"H100": 0.001}, "cpu_core_per_second": 0})
    )
    prices = load_prices(override)
    assert prices.gpu_rate("H100") == 0.001
    assert prices.gpu_rate("T4") == 0.000164
    assert prices.cpu_core_per_second == 0
    assert prices.date == "2027-01"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"gpu_per_second": {"H100": -1}}', "'gpu_per_second.H100' must be a number >= 0"),
        ('{"cpu_core_per_second": "cheap"}', "'cpu_core_per_second' must be a number"),
        ('{"gpu_prices": {}}', "unknown key(s) gpu_prices"),
    ],
)
def test_a_bad_override_file_is_refused_with_the_key_at_fault(tmp_path, content, message):
    override = tmp_path / "prices.json"
    override.write_text(content)
    with pytest.raises(PricingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_prices(override)


def test_a_missing_override_file_is_named():
    with pytest.raises(PricingError, match="no such price file"):
        load_prices("/nonexistent/prices.json")


def test_an_unknown_gpu_has_no_price():
    with pytest.raises(PricingError, match="no price for GPU type 'A100-81GB'"):
        hourly_cost(Resources(gpus=(Gpu("A100-81GB"),)))
