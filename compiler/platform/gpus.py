"""The GPU types Modal offers, and parsing of a spec's ``"TYPE[:COUNT]"`` strings.

Names are matched case-insensitively and returned in Modal's spelling. ``A10G`` is Modal's older name for
the A10 and is canonicalised to ``A10`` (Modal accepts both; one spelling keeps plans, pricing and diffs
consistent). ``any`` (Modal picks one of :data:`ANY_MAY_BE`) is kept lowercase, as Modal's examples write it.
An unknown type is kept as written so the lint can report it with the valid choices.
"""

from __future__ import annotations

from compiler.platform.modal_limits import MAX_GPUS_PER_CONTAINER
from compiler.platform.resources import Gpu

# canonical name -> most GPUs of that type in one container
CATALOG: dict[str, int] = {
    "T4": 8,
    "L4": 8,
    "A10": 4,
    "L40S": 8,
    "A100": 8,
    "A100-40GB": 8,
    "A100-80GB": 8,
    "RTX-PRO-6000": 8,
    "H100": 8,
    "H100!": 8,
    "H200": 8,
    "B200": 8,
    "B200+": 8,
}
ALIASES = {"A10G": "A10"}
# `gpu="any"`: Modal picks a GPU by availability; "any means any of L4, A10, or T4" (modal-labs/modal-examples
# 06_gpu_and_ml/gpu_fallbacks.py, read 2026-11-30). The SDK sends it as type "ANY". Priced as the dearest.
ANY = "any"
ANY_MAY_BE = ("T4", "L4", "A10")

_BY_UPPER = (
    {name.upper(): name for name in CATALOG}
    | {alias.upper(): to for alias, to in ALIASES.items()}
    | {ANY.upper(): ANY}
)


class GpuFormatError(ValueError):
    """A GPU string that is not TYPE or TYPE:COUNT."""


def canonical(type_name: str) -> str | None:
    """Modal's spelling of ``type_name`` (any case, or an alias), or None when it is not a GPU type."""
    return _BY_UPPER.get(type_name.strip().upper())


def parse(text: str) -> Gpu:
    """``"a100-80gb"`` -> Gpu("A100-80GB", 1), ``"H100:8"`` -> Gpu("H100", 8); unknown types as written."""
    type_name, sep, count_text = text.strip().partition(":")
    if not type_name or (sep and not (count_text.isascii() and count_text.isdigit())):
        raise GpuFormatError(f"{text!r} is not a GPU such as A100-80GB or H100:8 (TYPE or TYPE:COUNT)")
    return Gpu(canonical(type_name) or type_name, int(count_text) if sep else 1)


def max_count(type_name: str) -> int:
    """Most GPUs of ``type_name`` in one container; for ``any``, what every type it may be allows."""
    if type_name == ANY:
        return min(CATALOG[name] for name in ANY_MAY_BE)
    return CATALOG.get(type_name, MAX_GPUS_PER_CONTAINER)


def names() -> list[str]:
    """Every canonical type, in catalog order (cheapest families first), then ``any``."""
    return [*CATALOG, ANY]
