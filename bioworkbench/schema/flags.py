"""Flags set on observation values by the registry's ranges: impossible, implausible, fractions.

A reader or the :class:`~bioworkbench.Campaign` constructor flags values, and never changes one:
a flag (``suspect``, ``invalid``) and its reason go into the row's ``flag`` and ``flag_reason``.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from bioworkbench.checks import require_choice
from bioworkbench.errors import CheckedFrame, Issue
from bioworkbench.schema.frames import FLAG_INVALID, FLAG_SUSPECT
from bioworkbench.schema.report import Context, range_text, report_rows
from bioworkbench.variables import registry

__all__ = ["flag_fractions", "flag_values"]


def flag_fractions(obs: pl.DataFrame) -> pl.DataFrame:
    """Flag percentages that look like fractions ``suspect``, with the reason; never change a value.

    Parameters
    ----------
    obs
        Observations in canonical units.

    Returns
    -------
    polars.DataFrame
        ``obs`` with those rows flagged (the same object when none is).

    Notes
    -----
    A value in (0, 1] of a variable in % is flagged when the variable is of kind ``percent``
    (viability: 0.95 % of viable cells is a dead culture, 0.95 a fraction typed as such) or
    when every unflagged value of its series (batch, variable, source) lies in [0, 1] (dissolved
    oxygen recorded as 0–1). The reason reads "viability 0.95 % looks like a fraction; expected
    0–100 %". Rows that already carry a flag are left alone; percentages of quality attributes
    (aggregates of 0.95 % are common) are not checked.
    """
    reg = registry()
    percent_vars = [v for v in reg if reg[v].unit == "%"]
    value, var = pl.col("value"), pl.col("variable")
    candidate = pl.col("flag").is_null() & var.is_in(percent_vars) & (value > 0) & (value <= 1)
    if obs.is_empty() or not obs.select(candidate.any()).item():
        return obs
    kind_percent = [v for v in percent_vars if reg[v].kind == "percent"]
    keys = [c for c in ("batch_id", "variable", "source") if c in obs.columns]
    series_small = pl.when(pl.col("flag").is_null()).then(value).max().over(keys) <= 1
    fraction = candidate & (var.is_in(kind_percent) | series_small)
    return obs.with_columns(
        pl.when(fraction).then(pl.lit(FLAG_SUSPECT)).otherwise(pl.col("flag")).alias("flag"),
        pl.when(fraction)
        .then(pl.format("{} {} % looks like a fraction; expected 0–100 %", "variable", "value"))
        .otherwise(pl.col("flag_reason"))
        .alias("flag_reason"),
    )


def flag_values(
    obs: pl.DataFrame,
    *,
    on_invalid: Literal["raise", "flag"] = "raise",
    file: str | None = None,
    first_line: int | None = None,
) -> CheckedFrame:
    """Flag suspect values and deal with impossible ones; never change a value.

    Parameters
    ----------
    obs
        Observations in canonical units.
    on_invalid
        A value outside the variable's possible range (``min``/``max`` in the registry: a
        negative concentration, viability above 100 %) is an error with ``"raise"``, or kept and
        flagged ``invalid`` with ``"flag"``.
    file, first_line
        The file the rows were read from and the line of its first row, to locate errors
        (default: each row's lineage, ``source_file``/``source_line``).

    Returns
    -------
    CheckedFrame
        ``frame``: the observations with flags (the same object when nothing is flagged);
        ``issues``: the impossible values (with ``on_invalid="raise"``), for the caller to raise.

    Raises
    ------
    ArgumentError
        ``on_invalid`` is neither ``"raise"`` nor ``"flag"``.

    Notes
    -----
    Rows that already carry a flag are left alone. Besides the impossible values, a percentage
    that looks like a fraction is flagged ``suspect`` (:func:`flag_fractions`), and so is a value
    outside the variable's plausible ``typical`` range. The range checks run per variable first
    and list rows only for the variables that have values outside their ranges.
    """
    require_choice(on_invalid, ("raise", "flag"), function="flag_values", argument="on_invalid")
    reg = registry()
    obs = flag_fractions(obs)
    if obs.is_empty():
        return CheckedFrame(obs, [])
    free = pl.col("flag").is_null() & pl.col("value").is_finite()
    stats = (
        obs.lazy().filter(free).group_by("variable").agg(lo=pl.col("value").min(), hi=pl.col("value").max()).collect()
    )
    outside = False
    for name, lo, hi in stats.iter_rows():
        if name in reg:
            spec = reg[name]
            typ = spec.typical or (spec.min, spec.max)
            outside |= lo < spec.min or hi > spec.max or lo < typ[0] or hi > typ[1]
    if not outside:
        return CheckedFrame(obs, [])
    names = [v for v in stats["variable"].drop_nulls().to_list() if v in reg]
    var = pl.col("variable")

    def limit(get) -> pl.Expr:
        return var.replace_strict({v: get(reg[v]) for v in names}, default=None, return_dtype=pl.Float64)

    x = obs.with_columns(
        _min=limit(lambda s: s.min),
        _max=limit(lambda s: s.max),
        _lo=limit(lambda s: s.typical[0] if s.typical else None),
        _hi=limit(lambda s: s.typical[1] if s.typical else None),
    )
    free = pl.col("flag").is_null() & pl.col("value").is_not_null()
    invalid = free & ((pl.col("value") < pl.col("_min")) | (pl.col("value") > pl.col("_max")))
    suspect = free & ~invalid & ((pl.col("value") < pl.col("_lo")) | (pl.col("value") > pl.col("_hi")))
    issues: list[Issue] = []
    inv_flag = invalid
    if on_invalid == "raise":
        ctx = Context("observations", file, first_line)
        report_rows(
            x,
            invalid,
            ctx,
            "value",
            lambda r: (
                f"{r['variable']} = {r['value']:g} {r['unit']} is impossible; expected "
                f"{range_text(r['_min'], r['_max'])}."
            ),
            hint="correct the source, or read with on_invalid='flag' to keep such rows flagged 'invalid'.",
        )
        issues = ctx.issues
        inv_flag = pl.lit(False)
    reason_invalid = pl.format("impossible value for {}: outside [{}, {}] {}", "variable", "_min", "_max", "unit")
    reason_suspect = pl.format("outside the typical range [{}, {}] {} of {}", "_lo", "_hi", "unit", "variable")
    out = x.with_columns(
        pl.when(inv_flag)
        .then(pl.lit(FLAG_INVALID))
        .when(suspect)
        .then(pl.lit(FLAG_SUSPECT))
        .otherwise(pl.col("flag"))
        .alias("flag"),
        pl.when(inv_flag)
        .then(reason_invalid)
        .when(suspect)
        .then(reason_suspect)
        .otherwise(pl.col("flag_reason"))
        .alias("flag_reason"),
    ).drop("_min", "_max", "_lo", "_hi")
    return CheckedFrame(out, issues)
