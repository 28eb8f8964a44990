"""Printing for the CLI: JSON for programs, aligned text for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def emit_jsonl(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:+.4g}" if value < 0 else f"{value:.4g}"
    if value is None:
        return "-"
    return str(value)


def signed(value: float) -> str:
    return f"{value:+.4g}"


def si(value: float | None, unit: str = "") -> str:
    """A number with an SI prefix (1.2G, 340k): costs span many orders of magnitude."""
    if value is None:
        return "unknown"
    for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{prefix}{unit}"
    return f"{value:.3g}{unit}"
