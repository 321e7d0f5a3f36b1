"""ICH Q1E shelf life: regression on time per lot, poolability by ANCOVA, confidence bound of the mean.

The method is the one of ICH Q1E (2003), Appendix B, as worked through by LeBlond, Griffith & Aubuchon
(2011) and implemented by the R package ``expirest`` (``expirest_osle``) and by JMP's stability platform:

1. regress the attribute on time for every lot;
2. test equality of slopes (separate lines vs common slope) and then equality of intercepts (common slope vs
   one common line) at ``alpha_pool`` = 0.25, choosing the most pooled model the data allow;
3. take the one-sided (or, with two limits, two-sided) confidence bound of the mean regression line and find
   the earliest time it crosses an acceptance limit, on the worst lot when lots have their own intercepts.

Every least-squares fit is closed-form from per-lot sums (n, Σt, Σt², Σy, Σty, Σy²), computed in one polars
``group_by``: the three nested models share those sums, so 50 lots × 10 times take about a millisecond and no
design matrix is needed. Bound crossings are solved exactly as roots of a quadratic (below), not on a grid.

References
----------
ICH Q1E, *Evaluation of Stability Data*, step 4, 6 February 2003 (CPMP/ICH/420/02), sections 2.4-2.6,
Appendix A (decision tree) and Appendix B (statistical approaches).
D. LeBlond, D. Griffith, K. Aubuchon, "Linear Regression 102: Stability Shelf Life Estimation Using Analysis
of Covariance", J. Valid. Technol. 17(3) (2011) 47-68.
P. Dahinden, ``expirest``: Expiry Estimation Procedures, R package (CRAN), function ``expirest_osle``.
SAS Institute, JMP 12 Reliability and Survival Methods (2015), Stability Analysis, pp. 174-176.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_frame, require_number, require_prob
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, Issue, SchemaError
from bioworkbench.stability.study import _DAYS, STUDY_COLUMNS, validate_study

__all__ = ["MODELS", "STORAGE", "ShelfLifeResult", "shelf_life"]

MODELS = ("common", "common_slope", "separate")
"""Pooling outcomes: one line for all lots; one slope with an intercept per lot; a line per lot."""

STORAGE = {
    # storage: (factor on the long-term period X, at most this many months beyond X); Q1E Appendix A
    "room": (2.0, 12.0),
    "refrigerated": (1.5, 6.0),
    "frozen": (1.0, 0.0),
}
"""ICH Q1E limits on extrapolation when the data are amenable to statistical analysis and the statistical
analysis is performed: Y = min(factor · X, X + months) with X the long-term period covered by data."""


# ---------------------------------------------------------------------------------------------------------------------
# the result
# ---------------------------------------------------------------------------------------------------------------------
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
    def narrative(self) -> str:
        """The decision trail in plain words: tests and p-values, model, shelf life, limiting lot, extrapolation."""
        tu = self.time_unit
        u = f" {self.unit}" if self.unit else ""
        lots = self.table["batch_id"].to_list()
        n = self.data.height
        parts = [
            f"{self.attribute}{f' ({self.unit})' if self.unit else ''} at "
            f"{self.condition if self.condition != 'unspecified' else 'an unstated storage condition'}: {len(lots)} "
            f"lot{'s' if len(lots) != 1 else ''} ({', '.join(lots)}), {n} results from time 0 to "
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
            who = f"for lot {self.limiting_batch} (the limiting lot)" if self.limiting_batch else "for the common line"
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
        return " ".join(parts)

    def to_markdown(self) -> str:
        """A short report: the narrative, the tests and the lot table as Markdown."""
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
            tests = str(self.tests)
            table = str(self.table)
        return (
            f"### ICH Q1E shelf life: {self.attribute} at {self.condition}\n\n{self.narrative()}\n\n"
            f"**Poolability tests**\n\n{tests}\n\n**Lots ({_MODEL_WORDS[self.model]})**\n\n{table}\n"
        )

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


_MODEL_WORDS = {
    "common": "one common line",
    "common_slope": "common slope, separate intercepts",
    "separate": "separate lines",
}


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"


def _p(p: float | None) -> str:
    if p is None or math.isnan(p):
        return "p n/a"
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


# ---------------------------------------------------------------------------------------------------------------------
# the analysis
# ---------------------------------------------------------------------------------------------------------------------
def shelf_life(
    study: pl.DataFrame,
    *,
    attribute: str,
    lower: float | None = None,
    upper: float | None = None,
    condition: str | None = None,
    confidence: float = 0.95,
    alpha_pool: float = 0.25,
    storage: Literal["room", "refrigerated", "frozen"] = "room",
    separate_mse: Literal["individual", "pooled"] = "individual",
) -> ShelfLifeResult:
    """ICH Q1E shelf life of one attribute at one storage condition, with the poolability decision trail.

    Parameters
    ----------
    study
        A stability study frame (:data:`~bioworkbench.stability.STUDY_COLUMNS`; validated here when it is not
        already one). Flagged rows are excluded and counted.
    attribute
        The attribute to analyse (as written in the ``attribute`` column).
    lower, upper
        Acceptance limits in the attribute's unit. One limit gives a one-sided bound (a decreasing attribute
        with ``lower``, an increasing one with ``upper``); both give the two-sided interval.
    condition
        The storage condition label; required when the attribute was measured at several conditions.
    confidence
        Confidence of the bound, 0.95 in ICH Q1E.
    alpha_pool
        Significance level of the poolability tests, 0.25 in ICH Q1E.
    storage
        ``"room"``, ``"refrigerated"`` or ``"frozen"``: which ICH Q1E limit on extrapolation applies.
    separate_mse
        For separate lines, the error variance of each lot's bound: ``"individual"`` (default) uses each lot's
        own regression (its own residual variance, ``n_i − 2`` df), as ``expirest`` (``POI["dids"]``) and JMP do;
        ``"pooled"`` uses the full ANCOVA model's pooled variance (``n − 2k`` df) as LeBlond et al. (2011)
        Tables IX and XII and ``expirest``'s ``dids.pmse``.

    Returns
    -------
    ShelfLifeResult

    Raises
    ------
    ConfigError
        No limit, ``lower ≥ upper``, an unknown attribute or condition (the valid ones are listed), a
        condition needed but not given, ``confidence``/``alpha_pool`` outside (0, 1), an unknown ``storage``;
        a limit on the wrong side of a lot's fitted value at time 0 (names the limit, the value and the lot);
        a confidence bound already outside the limit at time 0.
    ArgumentError
        ``study`` is not a frame (e.g. a Campaign); ``attribute`` is not a name; a limit that is not a number
        (``lower="95%"``); ``confidence``/``alpha_pool`` not a probability (``95`` instead of ``0.95``).
    SchemaError
        No usable results; all results at one time; a lot with results at a single time (lot, file, line, the
        points found and needed); no residual degrees of freedom (full model, or a lot's own regression with
        ``separate_mse="individual"``). **The data cannot estimate a shelf life** (see Notes, *when no shelf
        life is stated*): one lot whose line has no residual degrees of freedom; a residual variance of 0 in
        the chosen model (e.g. all values equal), or in a lot's own line with ``separate_mse="individual"``;
        separate lines that fit every result exactly, so that the poolability F tests are undefined (the
        tests, with ``F`` and ``p_value`` null and the decision ``"undefined: …"``, are the error's ``tests``).

    Notes
    -----
    *Models* (lot ``i = 1..k`` with ``n_i`` results, ``n = Σ n_i``; time ``t``, attribute ``y``):

    - separate lines (full model): ``y = a_i + b_i t``, residual sum of squares ``RSS_F = Σ_i RSS_i``,
      ``n − 2k`` df;
    - common slope: ``y = a_i + b t``, ``b = Σ S_ty,i / Σ S_tt,i``, ``RSS_S``, ``n − k − 1`` df;
    - common line: ``y = a + b t``, ``RSS_C``, ``n − 2`` df;

    with ``S_tt,i = Σ (t − t̄_i)²``, ``S_ty,i = Σ (t − t̄_i)(y − ȳ_i)``.

    *Poolability* (ICH Q1E B.2.2; LeBlond 2011; ``expirest``), both with the full model's mean square
    ``MSE_F = RSS_F / (n − 2k)`` in the denominator, as in the sequential ANCOVA table ``time + lot + lot×time``:

    - equal slopes: ``F = [(RSS_S − RSS_F)/(k − 1)] / MSE_F`` on ``(k − 1, n − 2k)`` df. ``p < alpha_pool`` →
      ``"separate"``; the intercept test is then reported but not used;
    - equal intercepts: ``F = [(RSS_C − RSS_S)/(k − 1)] / MSE_F`` on ``(k − 1, n − 2k)`` df. ``p < alpha_pool``
      → ``"common_slope"``, else ``"common"``;
    - for reference, equal lines (JMP's model comparison A): ``F = [(RSS_C − RSS_F)/(2k − 2)] / MSE_F``.

    *Bound of the mean* of a line with centre ``c`` (``t̄`` of the data it was fitted to), fitted mean ``ȳ`` and
    slope ``b``: ``ŷ(t) = ȳ + b (t − c)``, ``se(t) = s √(1/m + (t − c)²/S)``, where for the common line
    ``m = n, S = S_tt`` (all data), for the common slope ``m = n_i, S = Σ S_tt,i``, and for separate lines
    ``m = n_i, S = S_tt,i``; ``s`` is the chosen model's residual SD. The bound is ``ŷ ∓ q·se`` with
    ``q = t_{1−α}(df)`` for one limit and ``t_{1−α/2}(df)`` for each of two limits, ``α = 1 − confidence``
    (a confidence interval of the mean line, not a prediction interval).

    *Crossing*, solved exactly: with ``σ = +1`` for a lower and ``−1`` for an upper limit ``L``, ``u = t − c``,
    ``D = σ(ȳ − L)``, ``B = σ b`` and ``k = q s``, the bound meets the limit where ``D + B u = k √(1/m + u²/S)``;
    squaring gives ``(B² − k²/S) u² + 2 B D u + (D² − k²/m) = 0``, and a root counts when ``D + B u ≥ 0``. The
    lot's shelf life is the smallest counted root with ``t > 0`` (``inf`` when none), and the overall shelf life
    the minimum over lots (one line for the common model). Times are in the study's ``time_unit``.

    *When no shelf life is stated.* ICH Q1E (2003) Appendix B.1 takes the shelf life as the earliest time the
    one-sided 95 % confidence limit of the mean crosses the acceptance criterion, and B.2.2 decides pooling by
    F tests whose denominator is the residual mean square. Both need an estimate of the residual variance
    with at least one degree of freedom. Where there is none (one lot with two results: n − 2 = 0), the bound
    has no width to compute; where the estimate is 0 (all values equal, values on an exact line, typically
    rounded, copied or nominal results) the bound would have zero width and claim a shelf life with no
    uncertainty, and the F statistics are 0/0 or x/0. In these cases the function raises instead of reporting
    "no statistical limit" (F = 0, p = 1) or proposing the Q1E extrapolation maximum: the data are not
    "amenable to statistical analysis" in the sense of Q1E section 2.4 and Appendix A. "Exactly" means a
    residual sum of squares at most 1e-10 of the sum of squares of the values it was fitted to (a residual SD
    below 1e-5 of theirs; the closed forms lose about 1e-16 of it to cancellation).

    *Extrapolation* (ICH Q1E 2.4-2.6 and Appendix A, data amenable to statistical analysis, no significant
    change at accelerated conditions): with ``X`` the longest time point, at most ``min(2X, X + 12 months)`` for
    room-temperature storage, ``min(1.5X, X + 6 months)`` refrigerated, ``X`` frozen. Where accelerated data show
    significant change, Q1E allows less (see its Appendix A); choose ``storage`` accordingly. A month is
    30.4375 days when the study is in days, weeks or years.
    """
    from scipy import stats

    # -- arguments ------------------------------------------------------------------------------------------------
    fn = "shelf_life"
    study = require_frame(
        study,
        function=fn,
        argument="study",
        hint="Pass a stability study frame (bw.stability.read_study(path) or validate_study(frame)); a Campaign "
        "holds batch process data, not stability results.",
    )
    if not isinstance(attribute, str):
        raise ArgumentError(
            f"shelf_life: attribute must be the attribute's name (a str); got {describe_type(attribute)}."
        )
    lower = require_number(lower, function=fn, argument="lower", allow_none=True)
    upper = require_number(upper, function=fn, argument="upper", allow_none=True)
    if lower is None and upper is None:
        raise ConfigError(
            f"shelf_life({attribute!r}): no acceptance limit given; pass lower= (an attribute that decreases, "
            "e.g. potency), upper= (one that increases, e.g. related substances) or both."
        )
    if lower is not None and upper is not None and not lower < upper:
        raise ConfigError(f"shelf_life: lower={lower} must be below upper={upper}.")
    confidence = require_prob(confidence, function=fn, argument="confidence")
    alpha_pool = require_prob(alpha_pool, function=fn, argument="alpha_pool")
    if storage not in STORAGE:
        raise ConfigError(f"shelf_life: storage={storage!r} is not known; valid: {', '.join(STORAGE)}.")
    if separate_mse not in ("individual", "pooled"):
        raise ConfigError(f"shelf_life: separate_mse={separate_mse!r}; valid: individual, pooled.")

    # -- data ------------------------------------------------------------------------------------------------------
    if not all(c in study.columns and study.schema[c] == t for c, t in STUDY_COLUMNS.items()):
        study = validate_study(study)
    attrs = study["attribute"].unique().sort().to_list()
    if attribute not in attrs:
        from bioworkbench.schema import suggest

        raise ConfigError(
            f"shelf_life: attribute {attribute!r} is not in the study. " + suggest(attribute, attrs, what="Attributes")
        )
    rows = study.filter(pl.col("attribute") == attribute)
    conds = rows["condition"].unique().sort().to_list()
    if condition is None:
        if len(conds) > 1:
            raise ConfigError(
                f"shelf_life: {attribute!r} was measured at {len(conds)} conditions; choose one with condition=. "
                f"Conditions: {', '.join(repr(c) for c in conds)}."
            )
        condition = conds[0]
    elif condition not in conds:
        from bioworkbench.schema import suggest

        raise ConfigError(
            f"shelf_life: condition {condition!r} has no {attribute!r} results. "
            + suggest(condition, conds, what="Conditions")
        )
    rows = rows.filter(pl.col("condition") == condition)
    excluded = rows.filter(pl.col("flag").is_not_null()).height
    data = rows.filter(pl.col("flag").is_null())
    where = f"{attribute} at {condition}"
    if data.is_empty():
        raise SchemaError(f"shelf_life: no usable {where} results ({excluded} flagged rows excluded).")
    time_unit = data["time_unit"][0]
    units = data["unit"].drop_nulls().unique().to_list()
    unit = units[0] if units else None
    if excluded:
        warnings.warn(
            f"shelf_life: {excluded} flagged {where} row{'s' if excluded != 1 else ''} excluded.",
            BioWorkbenchWarning,
            stacklevel=2,
        )

    # -- per-lot sums: everything below is closed-form from them -----------------------------------------------------
    sums = (
        data.group_by("batch_id")
        .agg(
            n=pl.len(),
            nt=pl.col("time").n_unique(),
            t0=pl.col("time").min(),
            t1=pl.col("time").max(),
            st=pl.col("time").sum(),
            sy=pl.col("value").sum(),
            line=pl.col("source_line").first(),
            file=pl.col("source_file").first(),
        )
        .sort("batch_id")
    )
    _check_times(data, sums, where)
    # centred sums per lot (numerically safer than raw Σt², Σty)
    cen = (
        data.join(sums.select("batch_id", "n", "st", "sy"), on="batch_id")
        .with_columns(dt=pl.col("time") - pl.col("st") / pl.col("n"), dy=pl.col("value") - pl.col("sy") / pl.col("n"))
        .group_by("batch_id")
        .agg(stt=(pl.col("dt") ** 2).sum(), sty=(pl.col("dt") * pl.col("dy")).sum(), syy=(pl.col("dy") ** 2).sum())
        .sort("batch_id")
    )
    lots = sums["batch_id"].to_list()
    k = len(lots)
    n_i = sums["n"].to_numpy().astype(float)
    tbar = sums["st"].to_numpy() / n_i
    ybar = sums["sy"].to_numpy() / n_i
    stt, sty, syy = (cen[c].to_numpy() for c in ("stt", "sty", "syy"))
    n = float(n_i.sum())
    last_time = float(sums["t1"].max())

    # separate lines
    b_i = sty / stt
    rss_i = np.maximum(syy - sty**2 / stt, 0.0)
    rss_f = float(rss_i.sum())
    df_f = int(n - 2 * k)
    # common slope
    b_s = float(sty.sum() / stt.sum())
    rss_s = max(float(syy.sum() - sty.sum() ** 2 / stt.sum()), 0.0)
    df_s = int(n - k - 1)
    # common line (overall sums from the per-lot ones)
    t_all, y_all = float((n_i * tbar).sum() / n), float((n_i * ybar).sum() / n)
    stt_c = float(stt.sum() + (n_i * (tbar - t_all) ** 2).sum())
    sty_c = float(sty.sum() + (n_i * (tbar - t_all) * (ybar - y_all)).sum())
    syy_c = float(syy.sum() + (n_i * (ybar - y_all) ** 2).sum())
    b_c = sty_c / stt_c
    rss_c = max(syy_c - sty_c**2 / stt_c, 0.0)
    df_c = int(n - 2)

    def exact(rss: float, total: float = syy_c) -> bool:
        """A residual sum of squares that is round-off of 0: at most 1e-10 of the sum of squares ``total`` of
        the values it was fitted to (the closed forms ``S_yy − S_ty²/S_tt`` lose about 1e-16 · S_yy to
        cancellation; a residual SD below 1e-5 of the values' SD is no measured scatter)."""
        return rss <= 1e-10 * total or total == 0.0

    # -- poolability -------------------------------------------------------------------------------------------------
    if k > 1:
        if df_f < 1:
            raise SchemaError(
                [
                    Issue(
                        f"{where}: {int(n)} results for {k} lots leave no residual degrees of freedom for the "
                        f"full ANCOVA model (n − 2k = {df_f}); the poolability tests need at least one.",
                        hint="add results (replicates or further time points) to at least one lot.",
                    )
                ]
            )
        mse_f = rss_f / df_f
        if exact(rss_f):
            # no error variance to test against: F is 0/0 or x/0, undefined, not 0 (p = 1) or inf (p = 0)
            undefined = (
                f"undefined: the separate lines fit all {int(n)} results exactly (residual mean square 0 on "
                f"{df_f} df), so there is no error variance to test against"
            )
            tests = pl.DataFrame(
                {
                    "test": ["equal slopes", "equal intercepts", "equal lines"],
                    "F": [None] * 3,
                    "df_num": [k - 1, k - 1, 2 * k - 2],
                    "df_den": [df_f] * 3,
                    "p_value": [None] * 3,
                    "alpha": [alpha_pool] * 3,
                    "decisive": [False] * 3,
                    "decision": [undefined] * 3,
                },
                schema_overrides={"F": pl.Float64, "df_num": pl.Int64, "df_den": pl.Int64, "p_value": pl.Float64},
            )
            _refuse(
                where,
                data,
                f"the poolability tests of ICH Q1E Appendix B.2.2 are {undefined}; and each lot's own confidence "
                "bound (the only choice when poolability cannot be shown) would have zero width",
                tests=tests,
            )

        def ftest(num_ss: float, df_num: int) -> tuple[float, float]:
            F = (max(num_ss, 0.0) / df_num) / mse_f
            return F, float(stats.f.sf(F, df_num, df_f))

        F_slope, p_slope = ftest(rss_s - rss_f, k - 1)
        F_icpt, p_icpt = ftest(rss_c - rss_s, k - 1)
        F_joint, p_joint = ftest(rss_c - rss_f, 2 * k - 2)
        a = alpha_pool
        if p_slope < a:
            model = "separate"
            d_slope = f"p < {a}: slopes differ; lots analysed separately"
            d_icpt = "not used: slopes differ, so intercepts are not compared"
        elif p_icpt < a:
            model = "common_slope"
            d_slope = f"p ≥ {a}: slopes poolable"
            d_icpt = f"p < {a}: intercepts differ; common slope with separate intercepts"
        else:
            model = "common"
            d_slope = f"p ≥ {a}: slopes poolable"
            d_icpt = f"p ≥ {a}: intercepts poolable; one common line"
        tests = pl.DataFrame(
            {
                "test": ["equal slopes", "equal intercepts", "equal lines"],
                "F": [F_slope, F_icpt, F_joint],
                "df_num": [k - 1, k - 1, 2 * k - 2],
                "df_den": [df_f] * 3,
                "p_value": [p_slope, p_icpt, p_joint],
                "alpha": [a] * 3,
                "decisive": [True, model != "separate", False],
                "decision": [d_slope, d_icpt, "reference only (JMP model comparison A); not part of the Q1E sequence"],
            },
            schema_overrides={"df_num": pl.Int64, "df_den": pl.Int64},
        )
    else:
        model = "common"
        tests = pl.DataFrame(
            {
                "test": ["equal slopes", "equal intercepts", "equal lines"],
                "F": [None] * 3,
                "df_num": [None] * 3,
                "df_den": [None] * 3,
                "p_value": [None] * 3,
                "alpha": [alpha_pool] * 3,
                "decisive": [False] * 3,
                "decision": ["not applicable: one lot"] * 3,
            },
            schema_overrides={"F": pl.Float64, "df_num": pl.Int64, "df_den": pl.Int64, "p_value": pl.Float64},
        )
    if k < 3:
        warnings.warn(
            f"shelf_life: {where} has {k} lot{'s' if k != 1 else ''}; ICH Q1E bases a shelf life on at least three.",
            BioWorkbenchWarning,
            stacklevel=2,
        )

    # -- the lines of every model, in one shape: ŷ = ȳ + b (t − c), se = s √(1/m + (t − c)²/S) ----------------------
    alpha = 1.0 - confidence
    two = lower is not None and upper is not None
    tail = 1.0 - (alpha / 2 if two else alpha)
    ones = np.ones(k)

    def lines(name: str, mse: str = "") -> dict:
        if name == "common":
            s = math.sqrt(rss_c / df_c) if df_c > 0 else math.nan
            d = dict(ybar=y_all * ones, c=t_all * ones, b=b_c * ones, m=n * ones, S=stt_c * ones, s=s * ones)
            d["df"] = np.full(k, df_c)
        elif name == "common_slope":
            s = math.sqrt(rss_s / df_s) if df_s > 0 else math.nan
            d = dict(ybar=ybar, c=tbar, b=b_s * ones, m=n_i, S=stt.sum() * ones, s=s * ones, df=np.full(k, df_s))
        elif mse == "pooled":
            s = math.sqrt(rss_f / df_f) if df_f > 0 else math.nan
            d = dict(ybar=ybar, c=tbar, b=b_i, m=n_i, S=stt, s=s * ones, df=np.full(k, df_f))
        else:
            df_i = (n_i - 2).astype(int)
            with np.errstate(divide="ignore", invalid="ignore"):
                s_i = np.where(df_i > 0, np.sqrt(rss_i / np.maximum(df_i, 1)), np.nan)
            d = dict(ybar=ybar, c=tbar, b=b_i, m=n_i, S=stt, s=s_i, df=df_i)
        with np.errstate(invalid="ignore"):
            d["q"] = np.where(d["df"] > 0, stats.t.ppf(tail, np.maximum(d["df"], 1)), np.nan)
        d["batch_id"] = lots
        return d

    chosen = lines(model, separate_mse)
    if model == "separate" and separate_mse == "individual":
        few = [(lots[j], int(n_i[j]), j) for j in range(k) if n_i[j] < 3]
        if few:
            raise SchemaError(
                [
                    Issue(
                        f"{where}: lot {lot} has {m} results; its own regression needs at least 3 for a residual "
                        "variance and a confidence bound (found {m}, needed 3).".replace("{m}", str(m)),
                        file=sums["file"][j],
                        line=sums["line"][j],
                        column="value",
                        batch=lot,
                        hint="add results for this lot, or use separate_mse='pooled' (the full model's pooled "
                        "variance).",
                    )
                    for lot, m, j in few
                ]
            )
    if k == 1 and df_c < 1:
        _refuse(
            where,
            data,
            f"lot {lots[0]} has {int(n)} results at {int(sums['nt'][0])} times, which its regression line fits "
            f"exactly: no residual degrees of freedom (n − 2 = {df_c}) and so no residual variance for the "
            "confidence bound of the mean",
            hint="a regression-based shelf life needs at least 3 results (at 2 or more times) per line; add results "
            "(replicates or further time points)",
        )
    rss_chosen = {"common": rss_c, "common_slope": rss_s}.get(model, rss_f)
    if model == "separate" and separate_mse == "individual":
        zero = [j for j in range(k) if exact(rss_i[j], syy[j])]
        if zero:
            _refuse(
                where,
                data,
                (
                    f"lots {', '.join(lots[j] for j in zero)} lie exactly on their own regression lines (residual "
                    "variance 0), so their confidence bounds of the mean would have zero width"
                    if len(zero) > 1
                    else f"lot {lots[zero[0]]} lies exactly on its own regression line (residual variance 0), so "
                    "its confidence bound of the mean would have zero width"
                ),
                hint="check whether the values were rounded, copied or are nominal; with real scatter in the other "
                "lots separate_mse='pooled' uses the full model's variance",
                batches=[lots[j] for j in zero],
            )
    elif exact(rss_chosen):
        _refuse(
            where,
            data,
            f"all {int(n)} results lie exactly on the fitted {_MODEL_WORDS[model]} (residual variance 0"
            + (", all values equal" if syy_c == 0.0 else "")
            + "), so its confidence bound of the mean would have zero width",
            hint="check whether the values were rounded, copied or are nominal (e.g. every result reported as the "
            "specification's target)",
        )
    limits = [(side, lim) for side, lim in (("lower", lower), ("upper", upper)) if lim is not None]
    _check_limits(chosen, limits, where, unit, model, confidence, two)
    sl_lot, crossing = _lot_shelf_lives(chosen, limits)

    # -- every candidate model, for reference (JMP/expirest report them all) ------------------------------------------
    cand_rows = []
    options = [("common", "")] if k == 1 else [("common", ""), ("common_slope", ""), ("separate", "individual")]
    if k > 1:
        options.append(("separate", "pooled"))
    for name, mse in options:
        if (name, mse or "") == (model, separate_mse if model == "separate" else ""):
            d, s_l = chosen, sl_lot
        else:
            d = lines(name, mse)
            with np.errstate(invalid="ignore"):
                s_l, _ = _lot_shelf_lives(d, limits, strict=False)
        j = int(np.nanargmin(s_l)) if np.isfinite(s_l).any() else None
        best = float(np.nanmin(s_l)) if not np.isnan(s_l).all() else math.nan
        cand_rows.append(
            {
                "model": name,
                "mse": mse or None,
                "shelf_life": best,
                "limiting_batch": None if (name == "common" or j is None) else lots[j],
                "residual_sd": float(d["s"][j if j is not None else 0]),
                "df": int(d["df"][j if j is not None else 0]),
                "chosen": name == model and (name != "separate" or mse == separate_mse),
            }
        )
    candidates = pl.DataFrame(
        cand_rows,
        schema={
            "model": pl.String,
            "mse": pl.String,
            "shelf_life": pl.Float64,
            "limiting_batch": pl.String,
            "residual_sd": pl.Float64,
            "df": pl.Int64,
            "chosen": pl.Boolean,
        },
    )

    # -- overall -------------------------------------------------------------------------------------------------------
    finite = np.isfinite(sl_lot)
    j = int(np.argmin(sl_lot)) if finite.any() else None
    life = float(sl_lot[j]) if j is not None else math.inf
    limiting = lots[j] if (j is not None and (model != "common" or k == 1)) else None
    js = j if j is not None else 0
    factor, beyond_months = STORAGE[storage]
    month = (365.25 / 12.0) / _DAYS[time_unit]
    max_allowed = min(factor * last_time, last_time + beyond_months * month)
    se_b = chosen["s"] / np.sqrt(chosen["S"])
    a_hat = chosen["ybar"] - chosen["b"] * chosen["c"]
    se_a = chosen["s"] * np.sqrt(1.0 / chosen["m"] + chosen["c"] ** 2 / chosen["S"])
    table = pl.DataFrame(
        {
            "batch_id": lots,
            "n": sums["n"].cast(pl.Int64),
            "first_time": sums["t0"],
            "last_time": sums["t1"],
            "intercept": a_hat,
            "intercept_se": se_a,
            "slope": chosen["b"],
            "slope_se": se_b,
            "residual_sd": chosen["s"],
            "df": chosen["df"].astype(np.int64),
            "shelf_life": sl_lot,
            "crossing": crossing,
        },
        schema_overrides={"crossing": pl.String},
    )
    return ShelfLifeResult(
        shelf_life=life,
        model=model,
        tests=tests,
        table=table,
        candidates=candidates,
        limiting_batch=limiting,
        extrapolated=life > last_time,
        max_allowed=float(max_allowed),
        capped=life > max_allowed,
        proposed_shelf_life=float(min(life, max_allowed)),
        residual_sd=float(chosen["s"][js]),
        df=int(chosen["df"][js]),
        confidence=confidence,
        attribute=attribute,
        unit=unit,
        time_unit=time_unit,
        condition=condition,
        excluded=excluded,
        lower=lower,
        upper=upper,
        alpha_pool=alpha_pool,
        storage=storage,
        separate_mse=separate_mse,
        last_time=last_time,
        data=data,
        _lines=chosen,
    )


def _refuse(
    where: str,
    data: pl.DataFrame,
    why: str,
    *,
    hint: str | None = None,
    batches: list[str] | None = None,
    tests: pl.DataFrame | None = None,
) -> None:
    """Raise the :class:`SchemaError` of data that cannot estimate a shelf life (see :func:`shelf_life`, Notes).

    The message names the file and lines of the results, says why and that no shelf life is stated; the
    poolability tests, when they were computed, are on the error as ``tests``.
    """
    rows = data if batches is None else data.filter(pl.col("batch_id").is_in(batches))
    lines = rows["source_line"].drop_nulls().sort().to_list()
    shown = ", ".join(str(x) for x in lines[:8]) + (f" … ({len(lines)} lines)" if len(lines) > 8 else "")
    files = rows["source_file"].drop_nulls().unique().to_list()
    err = SchemaError(
        [
            Issue(
                f"{where}: no statistical shelf life can be estimated: {why}. ICH Q1E (2003) Appendix B.1 bases the "
                "shelf life on the time the one-sided 95 % confidence limit of the mean crosses the acceptance "
                "criterion, and that limit needs an estimate of the residual variance; no shelf life is stated.",
                file=files[0] if len(files) == 1 else None,
                line=lines[0] if len(lines) == 1 else None,
                column="value",
                batch=batches[0] if batches and len(batches) == 1 else None,
                hint=" ".join(
                    x for x in ((hint + ".") if hint else "", f"Results used: lines {shown}." if lines else "") if x
                )
                or None,
            )
        ]
    )
    err.tests = tests
    raise err


def _check_times(data: pl.DataFrame, sums: pl.DataFrame, where: str) -> None:
    """Enough time variation: not all results at one time, and every lot at ≥ 2 distinct times."""
    times = data["time"].unique()
    tu = data["time_unit"][0]
    if times.len() < 2:
        raise SchemaError(
            [
                Issue(
                    f"{where}: all {data.height} results are at time {times[0]:g} {tu}; a regression on time needs "
                    "results at two or more times.",
                    file=data["source_file"][0],
                    column="time",
                    hint="no trend, and so no shelf life, can be estimated without time variation.",
                )
            ]
        )
    single = sums.filter(pl.col("nt") < 2)
    if not single.is_empty():
        raise SchemaError(
            [
                Issue(
                    f"{where}: lot {r['batch_id']} has {r['n']} result{'s' if r['n'] != 1 else ''} at only one time "
                    f"({r['t0']:g} {tu}); found 1 time point, needed at least 2 to fit its line.",
                    file=r["file"],
                    line=r["line"],
                    column="time",
                    batch=r["batch_id"],
                    hint="add later results for this lot, or leave it out of the analysis (flag its rows "
                    "'excluded' with a reason).",
                )
                for r in single.iter_rows(named=True)
            ]
        )


def _check_limits(d: dict, limits, where: str, unit, model: str, confidence: float, two: bool) -> None:
    """A limit on the wrong side of a fitted value at time 0, or a bound already outside it, is an error."""
    u = f" {unit}" if unit else ""
    fit0 = d["ybar"] - d["b"] * d["c"]
    half0 = d["q"] * d["s"] * np.sqrt(1.0 / d["m"] + d["c"] ** 2 / d["S"])
    lots = d["batch_id"]
    who = (lambda j: "the common line of all lots") if model == "common" else (lambda j: f"lot {lots[j]}")
    for side, lim in limits:
        sign = 1.0 if side == "lower" else -1.0
        wrong = sign * (fit0 - lim) <= 0
        if wrong.any():
            j = int(np.argmin(sign * (fit0 - lim)))
            raise ConfigError(
                f"shelf_life ({where}): {side}={_num(lim)}{u} is on the wrong side of the fitted value at time 0, "
                f"{_num(fit0[j])}{u} for {who(j)}. {'A lower' if side == 'lower' else 'An upper'} limit must lie "
                f"{'below' if side == 'lower' else 'above'} the starting value; check the limit and its unit, "
                f"or whether the attribute {'decreases' if side == 'lower' else 'increases'} with time."
            )
        bound0 = fit0 - sign * half0
        outside = sign * (bound0 - lim) <= 0
        if outside.any():
            j = int(np.argmin(sign * (bound0 - lim)))
            kind = "two-sided" if two else "one-sided"
            raise ConfigError(
                f"shelf_life ({where}): the {kind} {_num(100 * confidence)} % confidence bound of the mean at time "
                f"0 is already {'below' if side == 'lower' else 'above'} {side}={_num(lim)}{u} "
                f"({_num(bound0[j])}{u} for {who(j)}, fitted value {_num(fit0[j])}{u}): no shelf life can be "
                "supported. The results start too close to the limit for their scatter."
            )


def _lot_shelf_lives(d: dict, limits, *, strict: bool = True) -> tuple[np.ndarray, list[str | None]]:
    """Earliest crossing time per lot (``inf`` if none) and which limit it crosses; see the Notes of shelf_life.

    With ``strict=False`` (other candidate models, reported for reference) a lot whose bound is already outside
    at time 0 gets 0, and one without a residual variance NaN, instead of an error.
    """
    per_side = []
    kq = d["q"] * d["s"]
    for side, lim in limits:
        sign = 1.0 if side == "lower" else -1.0
        D = sign * (d["ybar"] - lim)
        B = sign * d["b"]
        A = B**2 - kq**2 / d["S"]
        Bq = 2.0 * B * D
        C = D**2 - kq**2 / d["m"]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            disc = Bq**2 - 4.0 * A * C
            sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
            # numerically stable roots of A u² + Bq u + C = 0; the linear case when A vanishes
            qq = -0.5 * (Bq + np.where(Bq >= 0, 1.0, -1.0) * sq)
            lin = np.abs(A) <= 1e-12 * (np.abs(B) ** 2 + kq**2 / d["S"])
            r1 = np.where(lin, -C / Bq, qq / A)
            r2 = np.where(lin, np.nan, C / qq)
            u = np.stack([r1, r2])  # (2, k), u = t − c
            t = u + d["c"]
            branch = D + B * u >= -1e-9 * (np.abs(D) + np.abs(B * u) + kq)
            ok = np.isfinite(t) & (t > 1e-12 * max(1.0, float(np.nanmax(np.abs(d["c"]))))) & branch
            t_side = np.where(ok, t, np.inf).min(axis=0)
        if not strict:
            h0 = D - B * d["c"] - kq * np.sqrt(1.0 / d["m"] + d["c"] ** 2 / d["S"])
            t_side = np.where(h0 <= 0, 0.0, t_side)
            t_side = np.where(np.isnan(kq), np.nan, t_side)
        per_side.append(t_side)
    T = np.stack(per_side)  # (sides, k)
    best = T.min(axis=0)  # NaN (no residual variance) propagates
    sides = np.array([side for side, _ in limits], dtype=object)
    which = [str(sides[i]) if np.isfinite(v) else None for i, v in zip(T.argmin(axis=0), best, strict=True)]
    return best, which
