"""The tables the bench prints and writes into docs/performance.md, and the
formatting of their cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        row = [str(c) for c in cells]
        self.rows.append(row + [""] * (len(self.header) - len(row)))

    def render(self) -> str:
        widths = [max(len(row[i]) for row in [self.header, *self.rows]) for i in range(len(self.header))]
        lines = [f"== {self.title} =="]
        for index, row in enumerate([self.header, *self.rows]):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _md_cell(cell: str) -> str:
    """Markdown collapses leading spaces: an indented (sub-)row label gets a dash instead."""
    text = cell.replace("|", "/")
    return f"- {text.lstrip()}" if text.startswith("  ") else text


def fmt_spread(s: dict[str, float], unit: str = "ms") -> str:
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.0f} {unit}"
    return f"{s['median']:.0f} {unit} [{s['p10']:.0f}-{s['p90']:.0f}]"


def num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def ops(by_operation: dict[str, float]) -> str:
    return ", ".join(f"{name} {num(count)}" for name, count in by_operation.items()) or "-"


def clients(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {num(n)}" for name, n in counts["boto3_clients"].items()) or "0"
