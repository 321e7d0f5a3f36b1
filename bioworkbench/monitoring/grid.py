"""The tidy *aligned* frame of batch monitoring: build it from a campaign, turn it into an array.

An aligned frame has one row per ``(batch_id, maturity, variable)`` with a ``value``; every batch
shares the same maturity grid (missing cells are null values or absent rows). ``maturity`` is
whatever axis the batches were aligned on; :func:`align_by_time` uses culture time itself
(hours since inoculation) and keeps it as ``time_h`` too, so other alignments can share the schema.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_campaign, require_columns, require_frame, require_number
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, Issue, SchemaError
from bioworkbench.monitoring.observations import unflagged
from bioworkbench.schema import suggest
from bioworkbench.text import Safe, escape

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["ALIGNED_COLUMNS", "ALIGN_HINT", "BatchArray", "align_by_time", "alignment_note", "to_batch_array"]

ALIGNED_COLUMNS = ("batch_id", "maturity", "variable", "value")

ALIGN_HINT = (
    "An aligned frame has one row per (batch_id, maturity, variable) with a value; build one from a campaign "
    "with bw.monitoring.align_by_time(campaign, variables=[...], grid_h=...)."
)
"""How to make an aligned frame: the hint of every error about one."""


def _aligned_frame(obj: object, *, function: str, argument: str = "aligned") -> pl.DataFrame:
    """``obj`` as an aligned polars DataFrame, or an :class:`~bioworkbench.errors.ArgumentError` that
    says what was passed and how to make an aligned frame (a Campaign, its observations, a list...).

    The columns are checked by the caller (:func:`to_batch_array` names each missing one)."""
    return require_frame(obj, function=function, argument=argument, hint=ALIGN_HINT)


@dataclass(frozen=True, slots=True)
class BatchArray:
    """Aligned batch data as a 3-D array ``values[batch, maturity, variable]`` (NaN = missing)."""

    values: np.ndarray
    batch_ids: list[str]
    maturities: np.ndarray
    variables: list[str]

    @property
    def unfolded(self) -> np.ndarray:
        """Batch-wise unfolding, batches × (maturities · variables), maturity-major columns."""
        return self.values.reshape(self.values.shape[0], -1)


def to_batch_array(
    aligned: pl.DataFrame | pl.LazyFrame,
    *,
    variables: Sequence[str] | None = None,
    maturities: np.ndarray | None = None,
    require_values: bool = True,
    what: str = "aligned",
    function: str = "to_batch_array",
) -> BatchArray:
    """Check a tidy aligned frame and pivot it to a batch × maturity × variable array.

    Parameters
    ----------
    aligned
        Frame with columns ``batch_id``, ``maturity``, ``variable``, ``value`` (others ignored).
    variables, maturities
        The variables and maturity grid of a fitted model: the frame must use only these (the
        maturities of a running batch may stop early). Default: those found in the frame, in
        order of appearance and sorted, respectively.
    require_values
        Every batch must have at least one value of every variable (reference data); otherwise
        every batch needs rows for every variable, possibly null (a running batch).
    what
        Name of the frame in error messages.
    function
        Name of the calling function in error messages.

    Returns
    -------
    BatchArray
        Batches in order of first appearance; absent rows and null values are NaN.

    Raises
    ------
    ArgumentError
        ``aligned`` is not a frame (a Campaign, say), with how to make one.
    SchemaError
        Missing columns, non-numeric values, duplicated cells, a batch without a variable (named
        with the batch), unknown variables or maturities off the model grid.
    """
    df = _checked_frame(aligned, what=what, function=function)
    issues: list[Issue] = []
    batch_ids = df["batch_id"].unique(maintain_order=True).to_list()
    found_vars = df["variable"].unique(maintain_order=True).to_list()
    if variables is None:
        variables = found_vars
    else:
        variables = list(variables)
        for v in sorted(set(found_vars) - set(variables)):
            issues.append(
                Issue(
                    f"unknown variable {v!r}; the model has none of that name",
                    column="variable",
                    hint=suggest(v, variables, what="Model variables"),
                )
            )
    grid, j = _on_grid(df, maturities, issues)
    if issues:
        raise SchemaError(issues, context=f"the {what} frame")
    values, issues = _cells(df, batch_ids, variables, grid, j, require_values=require_values)
    if issues:
        raise SchemaError(issues, context=f"the {what} frame")
    return BatchArray(values, batch_ids, grid, list(variables))


def _checked_frame(aligned: object, *, what: str, function: str) -> pl.DataFrame:
    """The four aligned columns typed (``value`` NaN as null), or the errors naming what is wrong."""
    aligned = _aligned_frame(aligned, function=function)
    require_columns(aligned, ALIGNED_COLUMNS, what=f"{function}: the {what} frame", hint=ALIGN_HINT)
    issues: list[Issue] = []
    for col in ("maturity", "value"):
        if not aligned.schema[col].is_numeric():
            issues.append(Issue(f"expected numbers, found type {aligned.schema[col]}", column=col))
    if issues:
        raise SchemaError(issues, context=f"the {what} frame")
    df = aligned.select(
        pl.col("batch_id").cast(pl.String),
        pl.col("maturity").cast(pl.Float64),
        pl.col("variable").cast(pl.String),
        pl.col("value").cast(pl.Float64).fill_nan(None),
    )
    for col in ("batch_id", "maturity", "variable"):
        n_null = df[col].null_count() if col != "maturity" else int((~df[col].is_finite()).fill_null(True).sum())
        if n_null:
            issues.append(Issue(f"{n_null} rows have no (finite) {col}; every row needs one", column=col))
    if issues:
        raise SchemaError(issues, context=f"the {what} frame")
    return df


def _on_grid(df: pl.DataFrame, maturities: np.ndarray | None, issues: list[Issue]) -> tuple[np.ndarray, np.ndarray]:
    """The maturity grid (the model's, or the frame's own) and each row's grid index; rows off the grid
    are added to ``issues``."""
    m = df["maturity"].to_numpy()
    grid = np.unique(m) if maturities is None else np.asarray(maturities, dtype=np.float64)
    j = np.clip(np.searchsorted(grid, m), 0, grid.size - 1)
    left = np.clip(j - 1, 0, grid.size - 1)
    j = np.where(np.abs(grid[left] - m) < np.abs(grid[j] - m), left, j)
    off = ~np.isclose(grid[j], m, rtol=1e-9, atol=1e-9 * max(1.0, float(np.abs(grid).max(initial=0.0))))
    if off.any():
        bad = df.filter(pl.Series(off)).unique(["batch_id", "maturity"], maintain_order=True).head(5)
        for b, mat in bad.select("batch_id", "maturity").iter_rows():
            issues.append(
                Issue(
                    f"maturity {mat:g} is not on the model's maturity grid "
                    f"({grid[0]:g} … {grid[-1]:g}, {grid.size} points)",
                    column="maturity",
                    batch=b,
                    hint="align the batch on the same grid as the reference batches",
                )
            )
    return grid, j


def _cells(
    df: pl.DataFrame,
    batch_ids: list[str],
    variables: list[str],
    grid: np.ndarray,
    j: np.ndarray,
    *,
    require_values: bool,
) -> tuple[np.ndarray, list[Issue]]:
    """The batch × maturity × variable array, and the problems: duplicated cells, and batches without
    a value (``require_values``) or without a row of a variable."""
    issues: list[Issue] = []
    n_b, n_j, n_k = len(batch_ids), grid.size, len(variables)
    b = df["batch_id"].cast(pl.Enum(batch_ids)).to_physical().to_numpy().astype(np.int64)
    k = df["variable"].cast(pl.Enum(variables)).to_physical().to_numpy().astype(np.int64)
    flat = (b * n_j + j) * n_k + k
    counts = np.bincount(flat, minlength=n_b * n_j * n_k)
    for cell in np.flatnonzero(counts > 1)[:20]:
        bb, rest = divmod(int(cell), n_j * n_k)
        jj, kk = divmod(rest, n_k)
        issues.append(
            Issue(
                f"{counts[cell]} rows for variable {variables[kk]!r} at maturity {grid[jj]:g}; expected one",
                column="variable",
                batch=batch_ids[bb],
                hint="average or de-duplicate the rows before monitoring",
            )
        )
    values = df["value"].to_numpy()
    has_row = np.bincount(b * n_k + k, minlength=n_b * n_k).reshape(n_b, n_k) > 0
    has_value = np.bincount(b * n_k + k, weights=~np.isnan(values), minlength=n_b * n_k).reshape(n_b, n_k) > 0
    lacking = ~has_value if require_values else ~has_row
    for bb, kk in zip(*np.nonzero(lacking), strict=True):
        found = [variables[x] for x in np.flatnonzero(has_value[bb])]
        issues.append(
            Issue(
                f"variable {variables[kk]!r} is missing: the batch has "
                f"{'no value' if has_row[bb, kk] else 'no row'} for it (it has "
                f"{', '.join(found) or 'no values at all'})",
                column="variable",
                batch=batch_ids[bb],
                hint="every batch needs every model variable; drop the batch or the variable",
            )
        )
    array = np.full(n_b * n_j * n_k, np.nan)
    array[flat] = values
    return array.reshape(n_b, n_j, n_k), issues


def align_by_time(
    campaign: Campaign,
    *,
    variables: Sequence[str],
    grid_h: float,
    source: str | None = "online",
    end_h: float | None = None,
    batch_ids: Sequence[str] | None = None,
    warn: bool = True,
) -> pl.DataFrame:
    r"""Interpolate each batch's observations onto a common culture-time grid.

    Parameters
    ----------
    campaign
        The campaign whose ``observations`` are aligned.
    variables
        Variables to align (each must be measured by ``source`` in every selected batch).
    grid_h
        Grid step, hours: maturities ``0, grid_h, 2·grid_h, …, end_h``.
    source
        Keep only observations of this source (``"online"``, ``"offline"``, ``"atline"``), or
        ``None`` for all sources (then a variable measured by two sources is an error).
    end_h
        Last grid time, hours. Default: the median over batches of their last observation time,
        rounded down to the grid, so one short (aborted) batch does not shorten the grid of all.
    batch_ids
        Batches to align (default: all batches with observations).
    warn
        Emit the one :class:`~bioworkbench.errors.BioWorkbenchWarning` that counts the grid cells
        left missing and the flagged observations left out (default). ``False``: say nothing; the
        missing cells are the null values of the result, and :func:`alignment_note` turns them into
        the same sentence for a report.

    Returns
    -------
    polars.DataFrame
        ``batch_id, maturity, time_h, variable, value`` with ``maturity = time_h`` (hours), one row
        per batch, grid time and variable, sorted in that order.

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign (e.g. its observations frame); ``variables`` is a single
        string or not a list of names; ``grid_h`` or ``end_h`` is not a positive number.
    ConfigError
        Unknown variables, batches or source, a variable measured by several sources with
        ``source=None``.
    SchemaError
        A batch without any observation of a requested variable (naming batch and variable).

    Warns
    -----
    BioWorkbenchWarning
        At most one per call (unless ``warn=False``): ``align_by_time: 72 of 1008 grid cells lie
        outside a batch's observed time range and are left missing (null), not extrapolated (…)``,
        with the count of flagged observations left out when there are any. Silence it locally
        with ``warnings.catch_warnings()`` or pass ``warn=False``; never with a global filter.

    Notes
    -----
    Linear interpolation between the two observations that bracket a grid time (an observation
    exactly on the grid is taken as it is; observations at the same time are averaged first).
    Grid times before a batch's first or after its last observation of a variable are **not**
    extrapolated: their value is null, and the MSPC models treat them as missing values. A value
    is null exactly when its grid time lies outside that range, so the count can always be read
    back from the frame (:func:`alignment_note`). Flagged observations (``flag`` not null, e.g.
    ``<LOD``) are left out.
    """
    fn = "align_by_time"
    campaign = require_campaign(campaign, function=fn)
    grid_h = require_number(grid_h, function=fn, argument="grid_h", minimum=0, min_inclusive=False, unit="hours")
    end_h = require_number(end_h, function=fn, argument="end_h", minimum=0, allow_none=True, unit="hours")
    variables = _names(variables, function=fn, argument="variables")
    sel, ids, n_flagged = _time_series(campaign, variables, source=source, batch_ids=batch_ids)
    if end_h is None:
        end_h = float(sel.group_by("batch_id").agg(pl.col("time_h").max())["time_h"].median())
    grid = np.arange(int(np.floor(end_h / grid_h + 1e-9)) + 1) * float(grid_h)
    out = _interpolated(sel, ids, variables, grid)
    note = _missing_cells_text(out, escape=str)
    if n_flagged:
        flagged = (
            f"left out {n_flagged} flagged observation{'s' if n_flagged != 1 else ''} (flag not null, e.g. '<LOD')"
        )
        note = f"{note[:-1]}; {flagged}." if note else f"{flagged[0].upper()}{flagged[1:]}."
    if warn and note:
        warnings.warn(f"align_by_time: {note}", BioWorkbenchWarning, stacklevel=2)
    return out


def _time_series(
    campaign: Campaign, variables: list[str], *, source: str | None, batch_ids: Sequence[str] | None
) -> tuple[pl.DataFrame, list[str], int]:
    """The unflagged observations of ``variables`` in the batches asked for (one value per time, the mean),
    the batch ids, and how many flagged observations were left out; every selection checked."""
    fn = "align_by_time"
    obs = campaign.observations
    known = obs["variable"].unique().sort().to_list()
    for v in variables:
        if v not in known:
            raise ConfigError(f"variable {v!r} is not in the campaign's observations. {suggest(v, known)}")
    if source is not None and source not in obs["source"].unique().to_list():
        raise ConfigError(f"source {source!r} has no observations. {suggest(source, obs['source'].unique())}")
    ids = campaign.batch_ids if batch_ids is None else _names(batch_ids, function=fn, argument="batch_ids")
    unknown = [b for b in ids if b not in campaign.batch_ids]
    if unknown:
        raise ConfigError(
            f"align_by_time: batch_ids {', '.join(map(repr, unknown[:5]))} not in the campaign. "
            + suggest(unknown[0], campaign.batch_ids, what="Batches")
        )
    sel = obs.filter(pl.col("variable").is_in(variables), pl.col("batch_id").is_in(ids))
    if source is None:
        multi = sel.group_by("variable").agg(pl.col("source").n_unique()).filter(pl.col("source") > 1)
        if multi.height:
            raise ConfigError(
                f"variables {', '.join(sorted(multi['variable']))} are measured by several sources; "
                "pass source='online' or 'offline' (call align_by_time once per source and concatenate)"
            )
    else:
        sel = sel.filter(pl.col("source") == source)
    n_flagged = int(sel.filter(~unflagged()).height)
    sel = sel.filter(unflagged())
    sel = sel.group_by("batch_id", "variable", "time_h").agg(pl.col("value").mean()).drop_nulls("value").sort("time_h")
    expected = pl.DataFrame({"batch_id": ids}).join(pl.DataFrame({"variable": variables}), how="cross")
    absent = expected.join(sel.select("batch_id", "variable").unique(), on=["batch_id", "variable"], how="anti")
    if absent.height:
        what = f"{source} observation" if source else "observation"
        raise SchemaError(
            [
                Issue(
                    f"variable {v!r} has no {what} in this batch",
                    batch=b,
                    column="variable",
                    hint="leave the batch out with batch_ids=... or choose other variables",
                )
                for b, v in absent.iter_rows()
            ],
            context="align_by_time",
        )
    return sel, list(ids), n_flagged


def _interpolated(sel: pl.DataFrame, ids: list[str], variables: list[str], grid: np.ndarray) -> pl.DataFrame:
    """Each batch's values linearly interpolated at the grid times, null outside its observed range."""
    targets = (
        pl.DataFrame({"batch_id": ids})
        .join(pl.DataFrame({"variable": variables}), how="cross")
        .join(pl.DataFrame({"time_h": grid}), how="cross")
        .sort("time_h")
    )
    before = sel.select("batch_id", "variable", "time_h", pl.col("time_h").alias("_t0"), pl.col("value").alias("_v0"))
    after = sel.select("batch_id", "variable", "time_h", pl.col("time_h").alias("_t1"), pl.col("value").alias("_v1"))
    return (
        targets.join_asof(before, on="time_h", by=["batch_id", "variable"], strategy="backward", check_sortedness=False)
        .join_asof(after, on="time_h", by=["batch_id", "variable"], strategy="forward", check_sortedness=False)
        .with_columns(
            value=pl.when(pl.col("_t0").is_null() | pl.col("_t1").is_null())
            .then(None)
            .when(pl.col("_t1") > pl.col("_t0"))
            .then(
                pl.col("_v0")
                + (pl.col("_v1") - pl.col("_v0")) * (pl.col("time_h") - pl.col("_t0")) / (pl.col("_t1") - pl.col("_t0"))
            )
            .otherwise(pl.col("_v0"))
        )
        .select("batch_id", pl.col("time_h").alias("maturity"), "time_h", "variable", "value")
        .sort("batch_id", "variable", "maturity")
    )


def alignment_note(aligned: pl.DataFrame) -> Safe:
    """One sentence on the missing cells of an aligned frame, for a report; ``""`` when there are none.

    Parameters
    ----------
    aligned
        An aligned frame (from :func:`align_by_time` or the alignments of
        :mod:`bioworkbench.monitoring.alignment`).

    Returns
    -------
    Safe
        E.g. ``"72 of 1008 grid cells lie outside a batch's observed time range and are left
        missing (null), not extrapolated (B03: 36, B07: 36)."``: the number of null (or NaN) values,
        of all rows, and per batch (the five with most, then how many more batches). Markdown for a
        report page: the batch ids are escaped (:func:`~bioworkbench.text.escape`).

    Raises
    ------
    ArgumentError
        ``aligned`` is not a frame.
    SchemaError
        It lacks ``batch_id`` or ``value``.
    """
    aligned = _aligned_frame(aligned, function="alignment_note")
    require_columns(aligned, ("batch_id", "value"), what="alignment_note: aligned", hint=ALIGN_HINT)
    return Safe(_missing_cells_text(aligned, escape=escape))


def _missing_cells_text(aligned: pl.DataFrame, *, escape: Callable[[str], str]) -> str:
    """The sentence of :func:`alignment_note`, with batch ids passed through ``escape`` (``str`` for the
    plain text of a warning)."""
    missing = pl.col("value").is_null() | pl.col("value").cast(pl.Float64).is_nan().fill_null(False)
    per = (
        aligned.group_by("batch_id")
        .agg(n=missing.sum())
        .filter(pl.col("n") > 0)
        .sort(["n", "batch_id"], descending=[True, False])
    )
    if per.is_empty():
        return ""
    total = int(per["n"].sum())
    shown = ", ".join(f"{escape(b)}: {n}" for b, n in per.head(5).iter_rows())
    more = f" and {per.height - 5} more batches" if per.height > 5 else ""
    return (
        f"{total} of {aligned.height} grid cells lie outside a batch's observed time range and are left missing "
        f"(null), not extrapolated ({shown}{more})."
    )


def _names(value: object, *, function: str, argument: str) -> list[str]:
    """A list of names from a list/tuple/Series of strings; a single string is a mistake, not a list."""
    if isinstance(value, str):
        raise ArgumentError(
            f"{function}: {argument} must be a list of names; got {describe_type(value)}. Wrap it: [{value!r}]."
        )
    if isinstance(value, pl.Series):
        value = value.to_list()
    if not isinstance(value, Sequence | set | frozenset) or not all(isinstance(v, str) for v in value):
        raise ArgumentError(f"{function}: {argument} must be a list of names (strings); got {describe_type(value)}.")
    if not value:
        raise ArgumentError(f"{function}: {argument} is empty; give at least one name.")
    return list(value)
