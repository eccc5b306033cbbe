"""Plain-text tables, as ``mtc plan`` and the local sweep's summary print them."""

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
