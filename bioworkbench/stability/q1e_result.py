"""The result of an ICH Q1E shelf-life analysis (:func:`bioworkbench.stability.shelf_life`): the decision
trail, coefficients, shelf lives and extrapolation, the bounds for plots, and the trail in words.

The words are :class:`~bioworkbench.text.Safe` Markdown: the attribute, unit, condition and lot ids in
them are escaped, so a report shows them as written without them changing the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bioworkbench.stability.q1e_fit import _MODEL_WORDS, STORAGE, _num
from bioworkbench.text import Safe, escape

__all__ = ["ShelfLifeResult"]


@dataclass
class ShelfLifeResult:
    """The outcome of :func:`shelf_life`: the decision trail, coefficients, shelf lives and extrapolation.

    Attributes
    ----------
    shelf_life
        Statistical shelf life in ``time_unit``: the earliest time the confidence bound of the mean crosses a
        limit (minimum over lots where lines differ); ``inf`` when the bound never crosses.
    model
        ``"common"``, ``"common_slope"`` or ``"separate"``.
    tests
        The poolability tests: ``test, F, df_num, df_den, p_value, alpha, decisive, decision``.
    table
        One row per lot: ``batch_id, n, first_time, last_time, intercept, intercept_se, slope, slope_se,
        residual_sd, df, shelf_life, crossing`` (``"lower"``/``"upper"``, null when it never crosses); in the
        common model every lot carries the common line.
    candidates
        The shelf life each model would give (``model, mse, shelf_life, limiting_batch, residual_sd, df,
        chosen``), as JMP and ``expirest`` report them; ``separate`` appears with ``mse`` ``"individual"``
        and ``"pooled"``.
    limiting_batch
        The lot giving the shelf life (``None`` for the common model, where all lots share one line).
    extrapolated
        The shelf life lies beyond the longest time point (``last_time``).
    max_allowed
        The longest shelf life ICH Q1E allows for ``storage`` given ``last_time``.
    capped
        The statistical shelf life exceeds ``max_allowed`` and must be capped to it.
    proposed_shelf_life
        ``min(shelf_life, max_allowed)``.
    residual_sd, df
        Residual standard deviation and degrees of freedom of the chosen model (of the limiting lot's own
        regression for ``"separate"`` with individual fits).
    confidence
        Confidence level of the one-sided bound(s) (0.95 by ICH Q1E).
    attribute, unit, time_unit, condition
        The attribute analysed, its unit, the unit of time and the storage condition label.
    excluded
        Flagged rows left out of the fit.
    lower, upper
        The acceptance limits (``None`` for an open side).
    alpha_pool
        Significance level of the poolability tests.
    storage
        ``"room"``, ``"refrigerated"`` or ``"frozen"``: the rule of ``max_allowed``.
    separate_mse
        ``"individual"`` or ``"pooled"``: the error of each lot's line in the separate model.
    last_time
        The longest time point of the study.
    data
        The rows fitted.
    """

    shelf_life: float
    model: str
    tests: pl.DataFrame
    table: pl.DataFrame
    candidates: pl.DataFrame
    limiting_batch: str | None
    extrapolated: bool
    max_allowed: float
    capped: bool
    proposed_shelf_life: float
    residual_sd: float
    df: int
    confidence: float
    attribute: str
    unit: str | None
    time_unit: str
    condition: str
    excluded: int
    lower: float | None
    upper: float | None
    alpha_pool: float
    storage: str
    separate_mse: str
    last_time: float
    data: pl.DataFrame = field(repr=False)
    _lines: dict = field(repr=False, default_factory=dict)

    # -- for plots -----------------------------------------------------------------------------------------------
    def bounds(self, times: np.ndarray | list[float] | None = None) -> pl.DataFrame:
        """Fitted line and confidence bounds of the mean per lot: ``batch_id, time, fit, lower, upper, prob``.

        Parameters
        ----------
        times
            Times (in ``time_unit``) to evaluate; by default 201 points from 0 to 10 % past the latest of the last
            time point, the Q1E maximum and the shelf life (when within 5× the data), plus each lot's crossing time.

        Returns
        -------
        pl.DataFrame
            ``lower``/``upper`` are the bounds at the quantile used for the shelf life: one-sided at
            ``confidence`` each (so ``prob``, the mass between them, is ``2·confidence − 1``) with one limit, or
            the two-sided interval at ``confidence`` with two limits. The lines are those of the chosen model.
        """
        ln = self._lines
        if times is None:
            ends = [self.last_time, self.max_allowed]
            if math.isfinite(self.shelf_life) and self.shelf_life <= 5 * self.last_time:
                ends.append(self.shelf_life)
            grid = np.linspace(0.0, 1.1 * max(ends), 201)
            cross = self.table["shelf_life"].to_numpy()
            grid = np.unique(np.concatenate([grid, cross[np.isfinite(cross) & (cross <= grid[-1])]]))
        else:
            grid = np.asarray(times, dtype=float)
        k = len(ln["batch_id"])
        t = np.tile(grid, k)
        i = np.repeat(np.arange(k), grid.size)
        fit = ln["ybar"][i] + ln["b"][i] * (t - ln["c"][i])
        half = ln["q"][i] * ln["s"][i] * np.sqrt(1.0 / ln["m"][i] + (t - ln["c"][i]) ** 2 / ln["S"][i])
        prob = self.confidence if (self.lower is not None and self.upper is not None) else 2 * self.confidence - 1
        return pl.DataFrame(
            {
                "batch_id": np.asarray(ln["batch_id"], dtype=object)[i].tolist(),
                "time": t,
                "fit": fit,
                "lower": fit - half,
                "upper": fit + half,
                "prob": np.full(t.size, prob),
            },
            schema={"batch_id": pl.String, "time": pl.Float64, "fit": pl.Float64, "lower": pl.Float64,
                    "upper": pl.Float64, "prob": pl.Float64},
        )  # fmt: skip

    # -- words ---------------------------------------------------------------------------------------------------
    def narrative(self) -> Safe:
        """The decision trail in words: tests and p-values, model, shelf life, limiting lot, extrapolation.

        Returns
        -------
        Safe
            One paragraph of Markdown; the attribute, unit, condition, lots and time unit escaped.
        """
        tu = escape(self.time_unit)
        unit = escape(self.unit) if self.unit else ""
        u = f" {unit}" if unit else ""
        lots = self.table["batch_id"].to_list()
        n = self.data.height
        where = escape(self.condition) if self.condition != "unspecified" else "an unstated storage condition"
        parts = [
            f"{escape(self.attribute)}{f' ({unit})' if unit else ''} at {where}: {len(lots)} "
            f"lot{'s' if len(lots) != 1 else ''} ({', '.join(escape(b) for b in lots)}), {n} results from time 0 to "
            f"{_num(self.last_time)} {tu}s"
            + (f"; {self.excluded} flagged row{'s' if self.excluded != 1 else ''} excluded." if self.excluded else ".")
        ]
        tests = {r["test"]: r for r in self.tests.iter_rows(named=True)}
        slope, icpt = tests["equal slopes"], tests["equal intercepts"]
        if slope["F"] is None:
            parts.append("With one lot there is nothing to pool: its own regression line is used.")
        else:
            a = _num(self.alpha_pool)
            s_txt = f"F({slope['df_num']}, {slope['df_den']}) = {_num(slope['F'])}, {_p(slope['p_value'])}"
            i_txt = f"F({icpt['df_num']}, {icpt['df_den']}) = {_num(icpt['F'])}, {_p(icpt['p_value'])}"
            if self.model == "separate":
                how = "each lot's own regression" if self.separate_mse == "individual" else "the pooled full model"
                parts.append(
                    f"Poolability (ICH Q1E, α = {a}): the test of equal slopes ({s_txt}) rejects pooling, so the "
                    f"lots are analysed separately ({how}); the intercept test ({i_txt}) was computed but not used."
                )
            elif self.model == "common_slope":
                parts.append(
                    f"Poolability (ICH Q1E, α = {a}): slopes can be pooled ({s_txt}) but the test of equal "
                    f"intercepts rejects pooling ({i_txt}), so the lots share one slope with their own intercepts."
                )
            else:
                parts.append(
                    f"Poolability (ICH Q1E, α = {a}): slopes ({s_txt}) and intercepts ({i_txt}) can both be "
                    "pooled, so one common line is fitted to all lots."
                )
        two = self.lower is not None and self.upper is not None
        side = "two-sided" if two else "one-sided"
        conf = f"{_num(100 * self.confidence)} %"
        limits = " and ".join(
            f"{name} limit {_num(v)}{u}" for name, v in (("lower", self.lower), ("upper", self.upper)) if v is not None
        )
        if math.isfinite(self.shelf_life):
            row = self.table.filter(pl.col("shelf_life") == self.shelf_life).row(0, named=True)
            limiting = escape(self.limiting_batch) if self.limiting_batch else None
            who = f"for lot {limiting} (the limiting lot)" if limiting else "for the common line"
            parts.append(
                f"The {side} {conf} confidence bound of the mean crosses the {row['crossing']} limit "
                f"({limits}) at {_num(self.shelf_life)} {tu}s {who}: the statistical shelf life."
            )
        else:
            parts.append(
                f"The {side} {conf} confidence bound of the mean never crosses the {limits}: the data put no "
                "statistical limit on the shelf life (shelf life = inf), and only the ICH Q1E extrapolation limit "
                "applies."
            )
        factor, beyond = STORAGE[self.storage]
        rule = (
            "no extrapolation beyond the long-term data (storage in a freezer)"
            if self.storage == "frozen"
            else f"at most {_num(factor)}× the long-term period and not more than {_num(beyond)} months beyond it "
            f"({self.storage} storage, data amenable to statistical analysis)"
        )
        parts.append(
            f"The longest time point is {_num(self.last_time)} {tu}s; ICH Q1E allows {rule}, i.e. "
            f"{_num(self.max_allowed)} {tu}s."
        )
        if self.capped:
            parts.append(
                f"The statistical shelf life exceeds that, so the shelf life that can be proposed is capped at "
                f"{_num(self.proposed_shelf_life)} {tu}s."
            )
        elif self.extrapolated:
            parts.append(
                f"The shelf life of {_num(self.shelf_life)} {tu}s is an extrapolation beyond the data, within the "
                "Q1E limit; it must be confirmed by further long-term results."
            )
        else:
            parts.append("The shelf life lies within the period covered by data (no extrapolation).")
        return Safe(" ".join(parts))

    def to_markdown(self) -> Safe:
        """A short report: the narrative, the tests and the lot table.

        Returns
        -------
        Safe
            Markdown: a heading, :meth:`narrative` and two Markdown tables (every text cell escaped).
        """
        with pl.Config(
            tbl_formatting="MARKDOWN",
            tbl_hide_column_data_types=True,
            tbl_hide_dataframe_shape=True,
            tbl_rows=-1,
            tbl_cols=-1,
            fmt_str_lengths=200,
            float_precision=4,
            tbl_width_chars=10_000,
        ):
            tests = str(_escaped(self.tests))
            table = str(_escaped(self.table))
        return Safe(
            f"### ICH Q1E shelf life: {escape(self.attribute)} at {escape(self.condition)}\n\n{self.narrative()}\n\n"
            f"**Poolability tests**\n\n{tests}\n\n**Lots ({_MODEL_WORDS[self.model]})**\n\n{table}\n"
        )

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "p n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


def _escaped(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every text cell escaped (:func:`~bioworkbench.text.escape`) for a Markdown table."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(pl.col(c).map_elements(escape, return_dtype=pl.String) for c in text)
