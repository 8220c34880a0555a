"""What the benchmarks share: the machine's load, percentiles, and the table and JSON line each
prints."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from typing import Any


def load() -> list[float]:
    """The load average (1, 5, 15 minutes): how busy the machine was while measuring."""
    return [round(value, 2) for value in os.getloadavg()]


def load_text() -> str:
    """The load average as the benchmarks print it beside their figures."""
    one, five, fifteen = load()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p99 of 50 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(cell) for cell in row] for row in [headers, *rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths, strict=True))))
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def json_line(bench: str, **figures: Any) -> str:
    return json.dumps({"bench": bench, "load": load(), "cores": os.cpu_count(), **figures})
