"""What the twin_report notebook shows, as frames, figures and sentences: the calibration against the data.

Notes
-----
:func:`calibration_fit` simulates every fitted batch under its own events with its posterior draws
(:meth:`FedBatchTwin.predict <bioworkbench.twin.model.FedBatchTwin.predict>`, ``kind="predictive"``:
the band is where a new reading would fall, so about ``prob`` of the readings should lie in it);
:func:`coverage` counts the readings inside the band, per variable; :func:`plot_calibration` draws
the bands and the readings with :func:`bioworkbench.plots.plot_forecast`, one panel per batch.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.text import plural
from bioworkbench.twin.data import OBSERVED

__all__ = ["calibration_fit", "calibration_text", "coverage", "plot_calibration"]


def calibration_fit(
    twin, campaign, *, prob: float = 0.9, draws: int = 300, random_seed: int | None = 0
) -> pl.DataFrame:
    """Each fitted batch's predictive band under its own events.

    Parameters
    ----------
    twin
        A fitted :class:`~bioworkbench.twin.model.FedBatchTwin`.
    campaign
        The campaign it was fitted on.
    prob
        Mass of the band.
    draws
        Posterior draws simulated per batch.
    random_seed
        Seed of the draws and the reading error.

    Returns
    -------
    polars.DataFrame
        ``batch_id, scenario, time_h, variable, mean, lower, upper, prob, unit``.
    """
    twin._require_fit()
    options = {"prob": prob, "kind": "predictive", "draws": draws, "random_seed": random_seed}
    parts = [twin.predict(campaign, batch_id=b, **options).trajectory for b in twin.data["batch_ids"]]
    return pl.concat(parts)


def coverage(fit: pl.DataFrame, observations: pl.DataFrame) -> pl.DataFrame:
    """The share of each variable's readings inside the predictive band (interpolated to the reading's time).

    Parameters
    ----------
    fit
        From :func:`calibration_fit`.
    observations
        The campaign's observations (offline readings, unflagged, of the fitted batches are counted).

    Returns
    -------
    polars.DataFrame
        ``variable, n, inside, share, prob``.
    """
    obs = observations.filter(
        (pl.col("source") == "offline")
        & pl.col("variable").is_in(list(OBSERVED))
        & pl.col("batch_id").is_in(fit["batch_id"].unique().to_list())
        & pl.col("flag").is_null()
        & (pl.col("time_h") >= 1.0)
        & ~((pl.col("variable") == "titer") & (pl.col("value") <= 0))
    ).drop_nulls("value")
    rows = []
    for (b, v), g in obs.group_by(["batch_id", "variable"], maintain_order=True):
        band = fit.filter((pl.col("batch_id") == b) & (pl.col("variable") == v)).sort("time_h")
        t = band["time_h"].to_numpy()
        lo = np.interp(g["time_h"].to_numpy(), t, band["lower"].to_numpy())
        hi = np.interp(g["time_h"].to_numpy(), t, band["upper"].to_numpy())
        x = g["value"].to_numpy()
        rows.append({"variable": v, "n": x.size, "inside": int(((x >= lo) & (x <= hi)).sum())})
    out = pl.DataFrame(rows).group_by("variable").agg(pl.col("n").sum(), pl.col("inside").sum())
    order = {v: i for i, v in enumerate(OBSERVED)}
    return out.with_columns(share=pl.col("inside") / pl.col("n"), prob=pl.lit(float(fit["prob"][0]))).sort(
        pl.col("variable").replace_strict(order, default=99)
    )


def calibration_text(twin, cov: pl.DataFrame) -> str:
    """Two sentences on the calibration: did the sampler converge, and do the bands hold the readings.

    Parameters
    ----------
    twin
        The fitted twin.
    cov
        From :func:`coverage`.

    Returns
    -------
    str
        Markdown.
    """
    d = twin.diagnostics()
    n = len(twin.data["batch_ids"])
    steps = float(twin.idata["sample_stats"]["n_steps"].mean())
    div = plural(d["divergences"], "divergent transition", "divergent transitions")
    conv = (
        f"The twin was calibrated on {plural(n, 'batch', 'batches')}: {div}, largest r̂ "
        f"{d['max_rhat']:.3f}, {steps:.0f} leapfrog steps per draw. "
    )
    conv += (
        "The chains agree: the intervals below can be read as they are."
        if d["divergences"] == 0 and d["max_rhat"] <= 1.01
        else "**The chains do not agree (r̂ above 1.01 or divergences): read the intervals as indicative only.**"
    )
    fixed = list(getattr(twin, "fixed", []))
    if fixed:
        conv += (
            f" {len(fixed)} parameters of conditions a campaign run as planned does not show (glucose or amino "
            f"acids exhausted, late ageing, the cold switch to lactate uptake, ammonium inhibition: "
            f"{', '.join(fixed)}) are held at their literature values, level 'fixed' in the table: a plan that "
            "drives a batch into those conditions is predicted from those values, with no uncertainty of their own."
        )
    p = float(cov["prob"][0])
    worst = cov.sort("share").row(0, named=True)
    cover = (
        f" Of the readings, {cov['inside'].sum() / cov['n'].sum():.0%} lie inside the {p:.0%} predictive bands "
        f"(lowest: {worst['variable']}, {worst['share']:.0%})."
    )
    return conv + cover


def plot_calibration(fit: pl.DataFrame, observations: pl.DataFrame, *, batch_ids: Any = None, cols: int = 3) -> Any:
    """VCD and titer bands of the fitted batches with their readings, one panel per batch.

    Parameters
    ----------
    fit
        From :func:`calibration_fit`.
    observations
        The campaign's observations.
    batch_ids
        The batches drawn (default all in ``fit``).
    cols
        Panels per row.

    Returns
    -------
    holoviews.Layout
    """
    import bioworkbench.plots as plots

    ids = fit["batch_id"].unique(maintain_order=True).to_list() if batch_ids is None else list(batch_ids)
    panels = [
        plots.plot_forecast(
            fit.filter(pl.col("batch_id") == b),
            observations,
            batch_id=b,
            known_h=float(fit.filter(pl.col("batch_id") == b)["time_h"].max()),
            width=300,
            height=200,
        )
        for b in ids
    ]
    return functools.reduce(operator.add, panels).cols(cols)
