"""Query results as text: an aligned table, CSV, JSON or Markdown (``analyzer sql --format``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl


def _text(value: Any, width: int | None = None) -> str:
    """A cell as text: None as null, floats to 10 significant digits, times in ISO 8601."""
    if value is None:
        text = "null"
    elif isinstance(value, float):
        text = format(value, ".10g")
    elif isinstance(value, datetime | date | time):
        text = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    elif isinstance(value, list | dict):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = " ".join(text.splitlines())
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _cells(df: pl.DataFrame, width: int | None) -> tuple[list[list[str]], list[bool]]:
    """The header and rows as text, and which columns are numeric (right-aligned)."""
    rows = [list(df.columns)] + [[_text(v, width) for v in row] for row in df.iter_rows()]
    return rows, [dtype.is_numeric() for dtype in df.dtypes]


def format_table(df: pl.DataFrame) -> str:
    """Aligned columns, numbers to the right; cells cut at 60 characters; no frame."""
    rows, numeric = _cells(df, 60)
    widths = [max(len(r[i]) for r in rows) for i in range(len(numeric))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(cells, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(rows[0]), rule, *(line(r) for r in rows[1:])]
    return "\n".join(body) + "\n" if numeric else ""


def format_markdown(df: pl.DataFrame) -> str:
    rows, numeric = _cells(df, None)
    if not numeric:
        return ""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])]) + "\n"


def format_csv(df: pl.DataFrame) -> str:
    """RFC 4180 with a header; null is an empty field, nested values are JSON."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(df.columns)
    for row in df.iter_rows():
        w.writerow(map(_csv_value, row))
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return json.dumps(value, default=str) if isinstance(value, list | dict) else value


def format_json(df: pl.DataFrame) -> str:
    """One JSON array of objects (``jq '.[]'`` for one object a line): NaN is null, times are
    ISO 8601 strings."""
    return (df.write_json() if df.width else "[]") + "\n"


FORMATS: dict[str, Callable[[pl.DataFrame], str]] = {
    "table": format_table, "csv": format_csv, "json": format_json, "markdown": format_markdown,
}
