"""Plain-text tables and amounts of money, as ``mtc plan``, ``mtc diff`` and the local sweep's summary print
them."""

from __future__ import annotations


def aligned(columns: tuple[str, ...], rows: list[tuple[str, ...]], numeric: set[str]) -> str:
    """A plain-text table under ``columns``: text to the left, the ``numeric`` columns to the right."""
    table = [columns, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]

    def line(values: tuple[str, ...]) -> str:
        parts = [
            value.rjust(width) if name in numeric else value.ljust(width)
            for name, value, width in zip(columns, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(line(values) for values in table) + "\n"


def money(usd: float) -> str:
    """Dollars with cents, or four decimals for amounts under ten cents so they do not show as 0.00."""
    return f"{usd:.2f}" if abs(usd) >= 0.1 or usd == 0 else f"{usd:.4f}"
