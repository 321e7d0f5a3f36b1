r"""Screening of the unfolded reference data before a batch PCA: which (maturity, variable) columns can be
scaled and modelled, and which carry one batch's departure from all the others; the frame a fitted
:class:`~bioworkbench.monitoring.BatchPCA` keeps of it (``screening_``) and the one warning of a fit.

The rule and its derivation are in the Notes of :class:`~bioworkbench.monitoring.BatchPCA` (*screening*).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl

from bioworkbench.monitoring.grid import BatchArray
from bioworkbench.monitoring.pca import _scaling

__all__ = ["SCREEN_ALPHA", "SCREEN_REASONS"]

SCREEN_ALPHA = 1e-3
"""Family-wise probability that the single-batch screen of :func:`_screen_columns` excludes a column of
normal (Gaussian) reference data by chance."""

SCREEN_REASONS = {
    "too few values": "fewer than 3 reference batches have a value, so no normal variation can be estimated",
    "no variation": "no variation among the reference batches (SD ≤ 1e-9 × |mean|, round-off of a constant)",
    "one batch": "one reference batch lies more than max(√p, chance level) SDs of the others from their mean",
}
"""Why :class:`~bioworkbench.monitoring.BatchPCA` leaves a (variable, maturity) column out of the model."""


def _screen_columns(x: np.ndarray) -> dict[str, np.ndarray | float]:
    r"""Which columns of the unfolded reference data ``x`` (batches × columns, NaN = missing) a batch
    PCA can scale and model, and why the others cannot (see :class:`BatchPCA`, Notes, *screening*).

    Returns a dict of per-column arrays ``reason`` ("" when kept, else a key of
    :data:`SCREEN_REASONS`), ``batch`` (row index of the dominating batch, −1 when none), ``r`` (its
    leave-one-out deviation in SDs of the others), ``sd``, ``sd_others`` (SD without that batch),
    ``mean``, ``count`` (values per column), ``cutoff`` (per column) and ``active`` (the columns
    :func:`_scaling` can scale; single-batch columns are marked, not removed, here).

    For column :math:`c` with :math:`n_c` values, centred values :math:`d_i = x_i - \bar x` and
    :math:`SS = \sum d^2`, batch :math:`i` lies :math:`|x_i - \bar x_{-i}| = |d_i|\,n_c/(n_c-1)` from
    the mean of the others, whose sum of squares is :math:`SS_{-i} = SS - d_i^2 n_c/(n_c-1)`; so
    :math:`r_{ic} = |d_i|\frac{n_c}{n_c-1}\big/\sqrt{SS_{-i}/(n_c-2)}` (closed form, no loop).
    """
    from scipy.special import stdtrit  # t.ppf(q, df) = stdtrit(df, q); see bioworkbench.monitoring.limits

    p = x.shape[1]
    obs = ~np.isnan(x)
    count = obs.sum(axis=0)
    _, _, basic = _scaling(x)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
        d = np.where(obs, x - mean, 0.0)
        ss = np.sum(d * d, axis=0)
        c = count.astype(np.float64)
        ss_out = np.maximum(ss - d * d * c / (c - 1.0), 0.0)
        dev = np.abs(d) * c / (c - 1.0)
        r_all = np.where(obs, dev / np.sqrt(ss_out / (c - 2.0)), 0.0)
        r_all = np.where(obs & (ss_out <= 1e-24 * ss), np.inf, r_all)  # all other batches equal
    r_all = np.where(basic, r_all, 0.0)
    batch = np.argmax(r_all, axis=0)
    r = r_all[batch, np.arange(p)]
    n_active = max(int(basic.sum()), 1)
    with np.errstate(invalid="ignore"):
        # chance level: the largest of n·p leave-one-out t statistics of normal data (Bonferroni)
        chance = np.sqrt(1.0 + 1.0 / (c - 1.0)) * stdtrit(c - 2.0, 1.0 - SCREEN_ALPHA / (2.0 * c * n_active))
    cutoff = np.fmax(math.sqrt(n_active), np.nan_to_num(chance, nan=0.0))
    one = basic & (r > cutoff)
    reason = np.full(p, "", dtype=object)
    reason[count < 3] = "too few values"
    reason[(count >= 3) & ~basic] = "no variation"
    reason[one] = "one batch"
    idx = np.flatnonzero(one)
    sd_others = np.full(p, np.nan)
    sd_others[idx] = np.sqrt(ss_out[batch[idx], idx] / (c[idx] - 2.0))
    return {
        "reason": reason,
        "batch": np.where(one, batch, -1),
        "r": np.where(one, r, np.nan),
        "sd": sd,
        "sd_others": sd_others,
        "mean": mean,
        "count": count,
        "cutoff": cutoff,
        "active": basic,
    }


# ---------------------------------------------------------------------------------------------
# column screening: the frame on the model and the one warning of a fit
# ---------------------------------------------------------------------------------------------
_SCREENING_SCHEMA = {
    "variable": pl.String,
    "maturity": pl.Float64,
    "reason": pl.String,
    "action": pl.String,
    "batch_id": pl.String,
    "deviation": pl.Float64,
    "cutoff": pl.Float64,
    "n_values": pl.Int64,
    "mean": pl.Float64,
    "sd": pl.Float64,
    "sd_others": pl.Float64,
}


def _screening_frame(screen: dict, arr: BatchArray, keep: np.ndarray) -> pl.DataFrame:
    """One row per screened-out or single-batch column (see :class:`BatchPCA`, Notes)."""
    reason = screen["reason"]
    idx = np.flatnonzero(reason != "")
    n_k = len(arr.variables)
    j, k = np.divmod(idx, n_k)
    batch = screen["batch"][idx]
    ids = np.asarray(arr.batch_ids, dtype=object)
    return pl.DataFrame(
        {
            "variable": [arr.variables[i] for i in k],
            "maturity": arr.maturities[j],
            "reason": reason[idx].tolist(),
            "action": np.where(keep[idx], "kept", "excluded").tolist(),
            "batch_id": [ids[b] if b >= 0 else None for b in batch],
            "deviation": screen["r"][idx],
            "cutoff": np.where(batch >= 0, screen["cutoff"][idx], np.nan),
            "n_values": screen["count"][idx].astype(np.int64),
            "mean": screen["mean"][idx],
            "sd": screen["sd"][idx],
            "sd_others": screen["sd_others"][idx],
        },
        schema=_SCREENING_SCHEMA,
    ).with_columns(pl.col("deviation", "cutoff", "mean", "sd", "sd_others").fill_nan(None))


def _maturity_text(maturities: list[float], grid: np.ndarray) -> str:
    """``"17–18"``, ``"0–33, 40"``: runs of consecutive grid maturities."""
    pos = np.searchsorted(grid, np.sort(maturities))
    runs, start = [], 0
    for i in range(1, pos.size + 1):
        if i == pos.size or pos[i] != pos[i - 1] + 1:
            a, b = grid[pos[start]], grid[pos[i - 1]]
            runs.append(f"{a:g}" if start == i - 1 else f"{a:g}–{b:g}")
            start = i
    return ", ".join(runs[:4]) + (f" and {len(runs) - 4} more runs" if len(runs) > 4 else "")


def _screening_note(frame: pl.DataFrame, grid: np.ndarray, n_columns: int) -> str:
    """The fit's one warning text: excluded columns per reason and variable, single-batch columns per batch."""
    if frame.is_empty():
        return ""
    parts: list[str] = []
    ex = frame.filter(pl.col("action") == "excluded")
    if ex.height:
        groups = []
        for (reason,), part in ex.group_by("reason", maintain_order=True):
            per_var = part.group_by("variable", maintain_order=True).agg(pl.col("maturity"))
            names = [
                f"{v} at {len(m)} maturit{'y' if len(m) == 1 else 'ies'} ({_maturity_text(m, grid)})"
                for v, m in per_var.head(6).iter_rows()
            ]
            more = f" and {per_var.height - 6} more variables" if per_var.height > 6 else ""
            groups.append(f"{'; '.join(names)}{more}: {SCREEN_REASONS[reason]}")
        parts.append(
            f"left {ex.height} of {n_columns} (maturity, variable) columns out of the model: " + ". ".join(groups) + "."
        )
    one = frame.filter(pl.col("reason") == "one batch")
    if one.height:
        action = "left out" if (one["action"] == "excluded").all() else "kept"
        per_batch = one.group_by("batch_id", maintain_order=True).agg(pl.col("variable", "maturity"))
        texts = []
        for b, variables, maturities in per_batch.head(6).iter_rows():
            sub = pl.DataFrame({"variable": variables, "maturity": maturities})
            where = [
                f"{v} at {_maturity_text(m, grid)}"
                for v, m in sub.group_by("variable", maintain_order=True).agg(pl.col("maturity")).head(4).iter_rows()
            ]
            texts.append(f"batch {b} ({'; '.join(where)})")
        more = f" and {per_batch.height - 6} more batches" if per_batch.height > 6 else ""
        parts.append(
            f"{one.height} column{'s vary' if one.height != 1 else ' varies'} only through one reference batch's "
            f"departure from all the others ({SCREEN_REASONS['one batch']}; {action}): {', '.join(texts)}{more}. "
            "Check whether these batches belong in the reference set."
        )
    return " ".join(parts) + " Details: model.screening_."
