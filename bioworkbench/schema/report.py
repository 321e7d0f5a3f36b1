"""How validators report the rows that break a rule: once per problem, with a count and the first rows.

Internal machinery of :mod:`bioworkbench.schema` (frame rules), :func:`bioworkbench.schema.coerce_frame`
and :func:`bioworkbench.schema.flag_values`. A :class:`Context` says where the rows come from (the frame,
the file and its first line); :func:`report_rows` turns a mask into :class:`~bioworkbench.errors.Issue`
records, grouping rows with the same message; :func:`check_rules` evaluates many masks in one pass;
:func:`report_duplicates` reports repeated keys, naming the first occurrence.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from bioworkbench.errors import Issue

__all__ = [
    "MAX_GROUPS",
    "Context",
    "check_rules",
    "range_text",
    "report_duplicates",
    "report_rows",
    "row_file",
    "row_lines",
]

#: a message or hint: fixed text, or a function of the offending row
Text = str | Callable[[dict[str, Any]], str | None] | None


@dataclass(slots=True)
class Context:
    """Where the rows being checked come from (the frame, the file read, if any, and its first
    line), and the issues found so far."""

    frame: str
    file: str | None
    first_line: int | None
    issues: list[Issue] = field(default_factory=list)

    def add(
        self,
        message: str,
        *,
        line: int | None = None,
        column: str | None = None,
        batch: str | None = None,
        hint: str | None = None,
        file: str | None = None,
    ) -> None:
        """Record one :class:`~bioworkbench.errors.Issue`.

        Parameters
        ----------
        message
            What is wrong.
        line, column, batch
            Where.
        hint
            How to fix it.
        file
            The file, when it is not this context's (an observation's lineage).
        """
        self.issues.append(Issue(message, file=file or self.file, line=line, column=column, batch=batch, hint=hint))


#: rows whose messages are read to group them (the rest of the rows with the problem are counted)
_SCAN_ROWS = 1000
#: distinct messages reported per rule and column
MAX_GROUPS = 20
#: rows named in a grouped message
_FIRST_ROWS = 5


def row_lines(df: pl.DataFrame, ctx: Context) -> pl.Expr:
    """Each row's line: in the file being read when there is one, else the observation's lineage.

    Parameters
    ----------
    df
        The frame being checked.
    ctx
        Where its rows come from.

    Returns
    -------
    polars.Expr
        An Int64 expression. A frame read from a file (``ctx.first_line`` set) is located in that
        file even when its rows carry lineage columns (``source_file``/``source_line`` of an
        earlier export): the problem is in the file being read. Frames built in code have no lines
        (null); their rows are named by position instead.
    """
    if ctx.first_line is not None:
        return pl.int_range(pl.len(), dtype=pl.Int64) + ctx.first_line
    if ctx.frame == "observations" and "source_line" in df.columns:
        return pl.col("source_line").cast(pl.Int64)
    return pl.lit(None, dtype=pl.Int64)


def row_file(row: dict, ctx: Context) -> str | None:
    """The file a row comes from.

    Parameters
    ----------
    row
        The row, as a dict.
    ctx
        Where the frame's rows come from.

    Returns
    -------
    str or None
        The file being read; else, for observations, the row's ``source_file``; else ``None``.
    """
    if ctx.file is not None:
        return ctx.file
    if ctx.frame == "observations":
        return row.get("source_file")
    return None


def _where_rows(members: list[dict], count: int) -> str:
    """``"lines 2, 3, 4, 5, 6"`` or ``"rows 0, 1, 2 (counted from 0)"`` for the first rows of a group."""
    lines = [r["_line"] for r in members if r.get("_line") is not None]
    if lines:
        shown = list(dict.fromkeys(lines))[:_FIRST_ROWS]
        noun = "line" if len(shown) == 1 else "lines"
        text = f"{noun} {', '.join(str(x) for x in shown)}"
    else:
        shown = [r["_row"] for r in members][:_FIRST_ROWS]
        noun = "row" if len(shown) == 1 else "rows"
        more = " …" if count > len(shown) else ""
        return f"{noun} {', '.join(str(x) for x in shown)}{more}, counted from 0"
    return text + (" …" if count > len(shown) else "")


def report_rows(df: pl.DataFrame, mask: pl.Expr, ctx: Context, column: str, message: Text, hint: Text = None) -> int:
    """Report the rows matching ``mask``: one issue per distinct problem, with a count and the first rows.

    Parameters
    ----------
    df
        The frame being checked.
    mask
        True for the rows with the problem.
    ctx
        Where the rows come from; the issues are added to it.
    column
        The column the issues name.
    message
        What is wrong: a text, or a function of the row. Rows with the same message (and file)
        are one issue, located at the first of them and naming the first five lines (or row
        positions); rows beyond :data:`MAX_GROUPS` distinct messages are counted in a last line.
    hint
        How to fix it: a text, or a function of the issue's first row.

    Returns
    -------
    int
        The number of rows matching ``mask``.
    """
    rows = (
        df.lazy()
        .with_columns(_line=row_lines(df, ctx), _row=pl.int_range(pl.len(), dtype=pl.Int64))
        .filter(mask)
        .collect()
    )
    n = rows.height
    if not n:
        return 0
    constant = not callable(message)
    groups: dict[tuple[str, str | None], list[dict]] = {}
    for row in rows.head(_SCAN_ROWS).iter_rows(named=True):
        text = message if constant else message(row)
        groups.setdefault((text, row_file(row, ctx)), []).append(row)
    lineage = ctx.file is not None and ctx.frame == "observations" and "source_file" in df.columns
    listed = 0
    for (text, file), members in list(groups.items())[:MAX_GROUPS]:
        count = n if constant and len(groups) == 1 else len(members)
        listed += count
        first = members[0]
        batches = list(dict.fromkeys(r["batch_id"] for r in members if r.get("batch_id") is not None))
        where = [] if count == 1 and first["_line"] is not None else [_where_rows(members, count)]
        if count > 1:
            where.insert(0, f"{count:,} rows")
        if len(batches) > 1:
            where.append(f"batches {', '.join(batches[:_FIRST_ROWS])}{' …' if len(batches) > _FIRST_ROWS else ''}")
        if lineage and first.get("source_file") and first["source_file"] != ctx.file:
            where.append(f"first recorded from {first['source_file']} line {first.get('source_line')}")
        suffix = f" ({'; '.join(where)})" if where else ""
        ctx.add(
            text.rstrip(".") + suffix + ".",
            line=first["_line"],
            column=column,
            batch=batches[0] if len(batches) == 1 else None,
            hint=hint(first) if callable(hint) else hint,
            file=file,
        )
    if n > listed:
        ctx.add(f"... and {n - listed:,} more rows with problems in column {column!r}.", column=column)
    return n


def check_rules(df: pl.DataFrame, ctx: Context, rules: list[tuple]) -> None:
    """Evaluate every rule's mask in one pass over ``df``; report only the rules some row breaks.

    Parameters
    ----------
    df
        The frame being checked.
    ctx
        Where its rows come from; the issues are added to it.
    rules
        ``(column, mask, message, hint)`` tuples, as for :func:`report_rows`.
    """
    if df.is_empty() or not rules:
        return
    hits = df.lazy().select([r[1].fill_null(False).any().alias(f"r{i}") for i, r in enumerate(rules)]).collect()
    for i, (column, mask, message, hint) in enumerate(rules):
        if hits[f"r{i}"][0]:
            report_rows(df, mask.fill_null(False), ctx, column, message, hint)


def report_duplicates(
    df: pl.DataFrame,
    ctx: Context,
    keys: list[str],
    column: str,
    message: Callable[[dict[str, Any]], str],
    *,
    free: pl.Expr | None = None,
    hint: str | None = None,
) -> None:
    """Report every repeat of a key (the second and later rows), naming the line of the first.

    Parameters
    ----------
    df
        The frame being checked.
    ctx
        Where its rows come from; the issues are added to it.
    keys
        The columns whose values must be unique together.
    column
        The column the issues name.
    message
        What is wrong, as a function of the repeated row (`` (first at line N)`` is appended).
    free
        The rows that take part (default: all; e.g. unflagged observations only).
    hint
        How to fix it.

    Notes
    -----
    Large frames are checked through a hash of the key first (distinct hashes mean distinct keys);
    rows are compared exactly only when the hashes do not rule duplicates out.
    """
    if df.is_empty():
        return
    free = pl.lit(True) if free is None else free
    key = pl.struct(keys)
    # one 64-bit hash per row (each column hashed with its own seed, combined by xor)
    hashed = functools.reduce(operator.xor, [pl.col(k).hash(11 + i) for i, k in enumerate(keys)])
    rows = df.lazy()
    if df.select((~free).any()).item():  # filtering costs a copy: only when some rows are left out
        rows = rows.filter(free)
    counts = rows.select(n=pl.len(), distinct=hashed.n_unique()).collect()
    if counts["distinct"][0] == counts["n"][0]:
        return
    lines = row_lines(df, ctx)
    marked = (
        df.lazy()
        .with_columns(_free=free, _at_line=lines, _at_row=pl.int_range(pl.len(), dtype=pl.Int64))
        .with_columns(
            _later=pl.col("_free") & ~key.is_first_distinct().over("_free"),
            _first_line=pl.col("_at_line").first().over([*keys, "_free"]),
            _first_row=pl.col("_at_row").first().over([*keys, "_free"]),
        )
        .collect()
    )
    if not marked["_later"].any():
        return

    def text(row):
        first = f"line {row['_first_line']}" if row["_first_line"] is not None else f"row {row['_first_row']}"
        return f"{message(row)} (first at {first})"

    report_rows(marked, pl.col("_later"), ctx, column, text, hint)


def range_text(lo: float, hi: float) -> str:
    """A possible range in words.

    Parameters
    ----------
    lo, hi
        The bounds (infinite: none).

    Returns
    -------
    str
        ``"between 0 and 100"``, ``">= 0"``, ``"<= 14"`` or ``"any number"``.
    """
    if math.isinf(lo) and math.isinf(hi):
        return "any number"
    if math.isinf(hi):
        return f">= {lo:g}"
    if math.isinf(lo):
        return f"<= {hi:g}"
    return f"between {lo:g} and {hi:g}"
