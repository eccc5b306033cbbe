"""Estimated cost of a function's resources per hour, from a price table kept as data.

Prices change, so they live in ``compiler/platform/data/pricing.json`` with their ``source`` and ``date``; a
team can point at its own file with the same keys (``load_prices(path)``), for example with negotiated rates.
Modal bills GPU time per GPU, CPU per physical core (at least ``cpu_min_cores``) and memory per GiB, all per
second; the estimate prices what a function requests, which is what Modal bills while the request exceeds
the usage.

Name aliases: Modal's plain ``A100`` is the 40 GB card (it may be upgraded to 80 GB at no extra cost),
``A10G`` is the older name of ``A10``, ``H100!`` (never upgraded) and ``B200+`` (may run on a B300) are billed
like ``H100`` and ``B200``. ``any`` (Modal picks a T4, L4 or A10) is priced as the dearest of them.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from compiler.platform import gpus
from compiler.platform.resources import Gpu, Resources
from runtime.core.files import UnreadableFile, read_limited

BUILTIN_PRICES = "mtc's built-in price table (compiler/platform/data/pricing.json)"
MAX_PRICE_FILE_BYTES = 1024 * 1024
_RATE_KEYS = ("cpu_core_per_second", "cpu_min_cores", "memory_gib_per_second", "memory_default_mib")


class PricingError(Exception):
    """A price file that cannot be used; the message says which file, which key and what was expected."""


@dataclass(frozen=True)
class Prices:
    source: str
    date: str
    gpu_per_second: dict[str, float]
    gpu_aliases: dict[str, str]
    cpu_core_per_second: float
    cpu_min_cores: float
    memory_gib_per_second: float
    memory_default_mib: float

    def gpu_rate(self, gpu_type: str) -> float:
        """Price per second of one GPU of ``gpu_type``; PricingError for a type the table does not know.
        ``any`` costs what the dearest GPU it may land on costs (:func:`priced_as`)."""
        name = self.gpu_aliases.get(gpu_type, gpu_type)
        if name == gpus.ANY:
            return self.gpu_rate(self.priced_as(name))
        if name not in self.gpu_per_second:
            known = ", ".join(sorted(self.gpu_per_second))
            raise PricingError(f"no price for GPU type '{gpu_type}' (priced: {known})")
        return self.gpu_per_second[name]

    def priced_as(self, gpu_type: str) -> str:
        """The type ``gpu_type`` is priced as: for ``any``, the dearest type it may be; else itself."""
        if gpu_type != gpus.ANY:
            return gpu_type
        return max(gpus.ANY_MAY_BE, key=self.gpu_rate)


@dataclass(frozen=True)
class Cost:
    """Dollars per hour, split by what is billed."""

    gpu: float
    cpu: float
    memory: float

    @property
    def total(self) -> float:
        return self.gpu + self.cpu + self.memory


def load_prices(path: str | Path | None = None) -> Prices:
    """The built-in table, with the keys of the JSON file at ``path`` (same layout) laid over it."""
    table = copy.deepcopy(_builtin_table())
    if path is not None:
        override = _read_table(Path(path))
        for key in ("gpu_per_second", "gpu_aliases"):
            table[key] = {**table[key], **override.pop(key, {})}
        table.update(override)
    return _prices_from(table, str(path or BUILTIN_PRICES))


def hourly_cost(resources: Resources, prices: Prices | None = None, *, gpu: Gpu | None = None) -> Cost:
    """What ``resources`` cost per hour; ``gpu`` picks one of several fallbacks (default: the first)."""
    prices = prices or load_prices()
    chosen = gpu or resources.gpu
    gpu_cost = prices.gpu_rate(chosen.type) * chosen.count if chosen else 0.0
    cores = max(resources.cpu if resources.cpu is not None else 0.0, prices.cpu_min_cores)
    memory_mib = resources.memory_mib if resources.memory_mib is not None else prices.memory_default_mib
    return Cost(
        gpu=gpu_cost * 3600,
        cpu=cores * prices.cpu_core_per_second * 3600,
        memory=memory_mib / 1024 * prices.memory_gib_per_second * 3600,
    )


@cache
def _builtin_table() -> dict[str, Any]:
    """The price table shipped as package data, read once per process."""
    from importlib import resources

    packaged = resources.files("compiler.platform").joinpath("data", "pricing.json")
    return json.loads(packaged.read_text(encoding="utf-8"))


def _read_table(path: Path) -> dict[str, Any]:
    try:
        table = json.loads(read_limited(path, limit=MAX_PRICE_FILE_BYTES, kind="JSON price file"))
    except UnreadableFile as exc:
        raise PricingError(
            f"{path}: {'no such price file' if exc.rule == 'load/not-found' else exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise PricingError(
            f"{path}: the price file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except json.JSONDecodeError as exc:
        raise PricingError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise PricingError(f"{path}: the JSON is nested too deeply to be a price table") from None
    if not isinstance(table, dict):
        raise PricingError(f"{path}: expected a JSON object with keys such as 'gpu_per_second'")
    return table


def _prices_from(table: dict[str, Any], where: str) -> Prices:
    unknown = set(table) - {"source", "date", "currency", "gpu_per_second", "gpu_aliases", *_RATE_KEYS}
    if unknown:
        raise PricingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    gpus = table.get("gpu_per_second")
    if not isinstance(gpus, dict):
        raise PricingError(f"{where}: 'gpu_per_second' must map GPU types to dollars per second")
    aliases = table.get("gpu_aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) for v in aliases.values()):
        raise PricingError(f"{where}: 'gpu_aliases' must map GPU names to priced GPU types")
    return Prices(
        source=str(table.get("source", where)),
        date=str(table.get("date", "unknown")),
        gpu_per_second={name: _rate(where, f"gpu_per_second.{name}", rate) for name, rate in gpus.items()},
        gpu_aliases=dict(aliases),
        **{key: _rate(where, key, table.get(key)) for key in _RATE_KEYS},
    )


def _rate(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PricingError(f"{where}: '{key}' must be a number >= 0, got {value!r}")
    return float(value)
