"""Screening of VCD samples before the growth model is fitted: crashes, outliers, no growth.

Used by :class:`bioworkbench.models.growth.GrowthModel` (which re-exports these names):

* :func:`crash_points`: samples of a culture that collapsed (below :data:`CRASH_FRACTION` of the
  batch's earlier maximum, never recovered); the earlier maximum is that of the 3-point running
  median (Tukey 1977, running medians), so a single high outlier does not make the genuine samples
  after it look collapsed. The model leaves them out with a warning.
* :func:`outlier_points`: isolated samples at least :data:`OUTLIER_RATIO` times above or below both
  neighbours; the model keeps them (its Student-t likelihood gives them little weight) and names them.
* :data:`NO_GROWTH_RATIO`: a batch whose highest sample is below this multiple of its first does not
  grow, and the model names it.

Tukey, J. W. (1977). *Exploratory Data Analysis*. Addison-Wesley, ch. 7 (smoothing by running medians).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import polars as pl

from bioworkbench.errors import BioWorkbenchWarning

__all__ = ["CRASH_FRACTION", "NO_GROWTH_RATIO", "OUTLIER_RATIO", "crash_points", "outlier_points"]

#: a sample below this fraction of the batch's earlier maximum VCD, never recovered, is a crash
CRASH_FRACTION = 0.25
#: a sample this many times above (or below) both neighbours is reported as a suspected outlier (kept)
OUTLIER_RATIO = 2.5
#: a batch whose highest VCD sample is below this multiple of its first does not grow
NO_GROWTH_RATIO = 1.5


def crash_points(obs: pl.DataFrame, *, fraction: float = CRASH_FRACTION) -> pl.DataFrame:
    """Samples of a culture that collapsed: below ``fraction`` of the batch's earlier maximum VCD,
    with every later sample of the batch also below that fraction of it.

    Parameters
    ----------
    obs
        VCD samples with columns ``batch_id, time_h, value`` (any others are kept).
    fraction
        A sample below this fraction of the batch's earlier maximum is low (default
        :data:`CRASH_FRACTION`, 0.25).

    Returns
    -------
    polars.DataFrame
        The rows of ``obs`` that are crash points, sorted by ``batch_id, time_h``.

    Notes
    -----
    The earlier maximum is robust to a single outlier: it is the running maximum of the 3-point
    moving median of the VCD (Tukey 1977, running medians), so one sample far above its neighbours
    does not make the genuine samples after it look collapsed. A sample ``x_j`` is a crash point
    when ``x_k < fraction · max_{i<k} med_i`` for every ``k ≥ j`` of its batch (VCD in the units
    of ``value``).
    """
    s = obs.sort("batch_id", "time_h").with_columns(
        _med=pl.col("value").rolling_median(window_size=3, center=True, min_samples=1).over("batch_id")
    )
    s = s.with_columns(_prev_max=pl.col("_med").cum_max().shift(1).over("batch_id"))
    s = s.with_columns(_low=(pl.col("value") < fraction * pl.col("_prev_max")).fill_null(False))
    # a crash point and every sample after it are low: the reverse cumulative minimum of _low
    s = s.with_columns(_all_low_after=pl.col("_low").cast(pl.Int8).reverse().cum_min().reverse().over("batch_id"))
    return s.filter(pl.col("_all_low_after") == 1).drop("_med", "_prev_max", "_low", "_all_low_after")


def outlier_points(obs: pl.DataFrame, *, ratio: float | None = None) -> pl.DataFrame:
    """Samples at least ``ratio`` times above both neighbours or below both (VCD of one batch).

    A growing or declining culture's sample lies between its neighbours or near them; one far above
    or below both is an isolated outlier.

    Parameters
    ----------
    obs
        VCD samples with columns ``batch_id, time_h, value`` (any others are kept).
    ratio
        How many times above (or below) both neighbours a sample must be (default
        :data:`OUTLIER_RATIO`, 2.5).

    Returns
    -------
    polars.DataFrame
        Those rows of ``obs``, sorted by ``batch_id, time_h``, with a column ``ratio``.

    Notes
    -----
    ``ratio = x_j / max(x_{j-1}, x_{j+1})`` for a sample above both neighbours and
    ``x_j / min(x_{j-1}, x_{j+1})`` for one below both (dimensionless); the first and last sample
    of a batch have one neighbour only and are never outliers.
    """
    r = OUTLIER_RATIO if ratio is None else ratio
    s = obs.sort("batch_id", "time_h").with_columns(
        _prev=pl.col("value").shift(1).over("batch_id"), _next=pl.col("value").shift(-1).over("batch_id")
    )
    s = s.with_columns(
        ratio=pl.when(pl.col("value") > pl.max_horizontal("_prev", "_next"))
        .then(pl.col("value") / pl.max_horizontal("_prev", "_next"))
        .when(pl.col("value") < pl.min_horizontal("_prev", "_next"))
        .then(pl.col("value") / pl.min_horizontal("_prev", "_next"))
    )
    interior = pl.col("_prev").is_not_null() & pl.col("_next").is_not_null()
    return s.filter(interior & ((pl.col("ratio") >= r) | (pl.col("ratio") <= 1 / r))).drop("_prev", "_next")


def _where(entries: list[dict[str, Any]], *, ratio: bool = False) -> str:
    """``file line 12 (batch B01, 96 h, 14.2)`` for each sample, joined by semicolons."""
    return "; ".join(
        f"{e.get('source_file')}"
        + (f" line {e['source_line']}" if e.get("source_line") is not None else "")
        + f" (batch {e['batch_id']}, {e['time_h']:g} h, {e['value']:g}"
        + (f", {e['ratio']:.1f}× its nearer neighbour" if ratio else "")
        + ")"
        for e in entries
    )


def _drop_crashes(
    obs: pl.DataFrame, crash_fraction: float | None, *, model: str, stacklevel: int
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """``obs`` without the samples of collapsed cultures (:func:`crash_points`), and those samples,
    named in a warning from ``model`` (none when ``crash_fraction`` is ``None``)."""
    excluded: list[dict[str, Any]] = []
    if crash_fraction is not None:
        crash = crash_points(obs, fraction=crash_fraction)
        if crash.height:
            obs = obs.join(crash.select("batch_id", "time_h"), on=["batch_id", "time_h"], how="anti")
            excluded = [
                {
                    "batch_id": r["batch_id"],
                    "time_h": r["time_h"],
                    "value": r["value"],
                    "source_file": r["source_file"],
                    "source_line": r["source_line"],
                    "reason": f"crash: below {crash_fraction:g} of the batch's earlier maximum VCD",
                }
                for r in crash.iter_rows(named=True)
            ]
            warnings.warn(
                f"{model}: {len(excluded)} VCD sample(s) of collapsed cultures left out "
                f"(below {crash_fraction:g} of the batch's earlier maximum, never recovered): "
                f"{_where(excluded)}. Hint: pass crash_fraction=None to keep them.",
                BioWorkbenchWarning,
                stacklevel=stacklevel,
            )
    return obs, excluded


def _suspects(obs: pl.DataFrame, *, model: str, stacklevel: int) -> list[dict[str, Any]]:
    """Samples that look like outliers (:func:`outlier_points`; kept), named in a warning from ``model``."""
    suspect = [
        {
            "batch_id": r["batch_id"],
            "time_h": r["time_h"],
            "value": r["value"],
            "source_file": r["source_file"],
            "source_line": r["source_line"],
            "ratio": r["ratio"],
        }
        for r in outlier_points(obs).iter_rows(named=True)
    ]
    if suspect:
        warnings.warn(
            f"{model}: {len(suspect)} VCD sample(s) look like outliers (at least "
            f"{OUTLIER_RATIO:g}× above or below both neighbours) and are kept: the Student-t likelihood "
            f"gives them little weight. {_where(suspect, ratio=True)}. Flag them in the data if they are "
            "errors.",
            BioWorkbenchWarning,
            stacklevel=stacklevel,
        )
    return suspect


def _warn_no_growth(obs: pl.DataFrame, known: Mapping[str, float], *, model: str, stacklevel: int) -> None:
    """Name the batches seen whole whose VCD does not grow (:data:`NO_GROWTH_RATIO`) in a warning from ``model``."""
    flat = (
        obs.filter(~pl.col("batch_id").is_in(list(known)))
        .group_by("batch_id", maintain_order=True)
        .agg(first=pl.col("value").first(), top=pl.col("value").max(), n=pl.len())
        .filter(pl.col("top") < NO_GROWTH_RATIO * pl.col("first"))
    )
    if flat.height:
        warnings.warn(
            f"{model}: {flat.height} batch(es) whose VCD does not grow (highest sample below "
            f"{NO_GROWTH_RATIO:g}× the first): "
            + "; ".join(f"{r['batch_id']} ({r['first']:g} to at most {r['top']:g})" for r in flat.iter_rows(named=True))
            + ". A growth curve is not identified by such data: its rate and timing come from the other "
            "batches, and the sampler may not converge. Leave the batch out or check its counts.",
            BioWorkbenchWarning,
            stacklevel=stacklevel,
        )
