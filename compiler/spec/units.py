"""Parse the units a spec may use: memory and disk sizes (to MiB), durations (to seconds), CPU cores.

Sizes are converted with exact rational arithmetic and rounded up to a whole MiB, so "16GB" is
15259 MiB (16e9 / 2**20 = 15258.79...) and never a float approximation. Each parser raises
:class:`UnitError` with a message that says what was expected.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

MIB = 2**20

_SIZE_FACTORS = {
    "Mi": 2**20,
    "MiB": 2**20,
    "Gi": 2**30,
    "GiB": 2**30,
    "Ti": 2**40,
    "TiB": 2**40,
    "M": 10**6,
    "MB": 10**6,
    "G": 10**9,
    "GB": 10**9,
    "T": 10**12,
    "TB": 10**12,
}
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?(" + "|".join(_SIZE_FACTORS) + r")$")
_DURATION = re.compile(r"^(?=[0-9])(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")

_PERIOD_PART = r"([0-9]*\.?[0-9]+)"
_PERIOD = re.compile(
    rf"^(?=[0-9.])(?:{_PERIOD_PART}d)?(?:{_PERIOD_PART}h)?(?:{_PERIOD_PART}m)?(?:{_PERIOD_PART}s)?$"
)
_PERIOD_UNITS_S = (86400, 3600, 60, 1)
_PERIOD_KEYWORDS = ("days", "hours", "minutes", "seconds")  # modal.Period's keywords, in that order
_SECONDS = dict(zip(_PERIOD_KEYWORDS, _PERIOD_UNITS_S, strict=True))

SIZE_EXPECTED = "a size such as 32768 (MiB), 128GiB, 512MiB or 16GB"
DURATION_EXPECTED = "a duration such as 90s, 5m, 2h, 1h30m or a number of seconds"
PERIOD_EXPECTED = "a period such as 1d, 0.5d, 6h, 1h30m, 90s or a number of seconds above 0"
CPU_EXPECTED = "a number of physical CPU cores such as 8 or 0.5"


class UnitError(ValueError):
    """A value that is not in the expected unit format; the message says what was expected."""


def parse_size_mib(value: object) -> int:
    """An integer (already MiB) or a string with a unit -> whole MiB, rounded up."""
    if _is_whole_number(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match:
            number, unit = match.groups()
            return math.ceil(Fraction(number) * _SIZE_FACTORS[unit] / MIB)
    raise UnitError(f"{value!r} is not {SIZE_EXPECTED}")


def parse_duration_s(value: object) -> int:
    """An integer number of seconds, or "90s", "5m", "2h", "1h30m" -> seconds."""
    if _is_whole_number(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if match:
            hours, minutes, seconds = (int(part or 0) for part in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise UnitError(f"{value!r} is not {DURATION_EXPECTED}")


def parse_period(value: object) -> tuple[tuple[str, int | float], ...]:
    """A schedule's period as ``modal.Period``'s keywords, in the units the spec wrote: ``"1d"`` ->
    ``(("days", 1),)``, ``"24h"`` -> ``(("hours", 24),)``, ``"1h30m"`` -> hours 1, minutes 30, ``90`` ->
    ``(("seconds", 90),)``. Modal takes whole days, hours and minutes and fractional seconds, so a fraction of
    a unit moves down to the next one, exactly: ``"0.5d"`` is ``hours=12``, ``"0.1d"`` is hours 2, minutes
    24, ``"2.5s"`` stays ``seconds=2.5``. (``days=1`` and ``hours=24`` differ on Modal across a daylight
    saving change, so the unit written is kept.)"""
    amounts: list[Fraction] | None = None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        amounts = [Fraction(0)] * 3 + [Fraction(value)]
    elif isinstance(value, str) and (match := _PERIOD.match(value.strip())):
        amounts = [Fraction(part) if part else Fraction(0) for part in match.groups()]
    if amounts is None or sum(amounts) <= 0:
        raise UnitError(f"{value!r} is not {PERIOD_EXPECTED}")
    for index in range(3):  # days, hours, minutes: whole; the fraction moves down a unit
        whole = Fraction(math.floor(amounts[index]))
        carried = (amounts[index] - whole) * _PERIOD_UNITS_S[index] / _PERIOD_UNITS_S[index + 1]
        amounts[index], amounts[index + 1] = whole, amounts[index + 1] + carried
    return tuple(
        (unit, int(amount) if amount.denominator == 1 else float(amount))
        for unit, amount in zip(_PERIOD_KEYWORDS, amounts, strict=True)
        if amount
    )


def parse_period_s(value: object) -> int | float:
    """A schedule's period in seconds, exact (an int when whole): ``"0.1d"`` is 8640."""
    total = sum(Fraction(amount) * _SECONDS[unit] for unit, amount in parse_period(value))
    return int(total) if total.denominator == 1 else float(total)


def parse_cpu(value: object) -> int | float:
    """A number of cores, kept as an int when whole (cpu=32 stays 32 in the generated code)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UnitError(f"{value!r} is not {CPU_EXPECTED}")
    return int(value) if float(value).is_integer() else float(value)


def format_mib(mib: int) -> str:
    """1024 -> "1 GiB", 131072 -> "128 GiB", 1500 -> "1500 MiB": for messages."""
    return f"{mib // 1024} GiB" if mib % 1024 == 0 and mib else f"{mib} MiB"


def format_seconds(seconds: int) -> str:
    """5400 -> "1h30m", 90 -> "90s": for messages."""
    if seconds < 60 or seconds % 60:
        return f"{seconds}s"
    hours, minutes = divmod(seconds // 60, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")


def _is_whole_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
