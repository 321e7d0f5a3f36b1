"""ICH Q1E shelf life: regression on time per lot, poolability by ANCOVA, confidence bound of the mean.

The method is the one of ICH Q1E (2003), Appendix B, as worked through by LeBlond, Griffith & Aubuchon
(2011) and implemented by the R package ``expirest`` (``expirest_osle``) and by JMP's stability platform:

1. regress the attribute on time for every lot;
2. test equality of slopes (separate lines vs common slope) and then equality of intercepts (common slope vs
   one common line) at ``alpha_pool`` = 0.25, choosing the most pooled model the data allow;
3. take the one-sided (or, with two limits, two-sided) confidence bound of the mean regression line and find
   the earliest time it crosses an acceptance limit, on the worst lot when lots have their own intercepts.

Every least-squares fit is closed-form from per-lot sums (n, Σt, Σt², Σy, Σty, Σy²), computed in one polars
``group_by``: the three nested models share those sums and no design matrix is needed. Bound crossings are
solved exactly as roots of a quadratic (below), not on a grid. (Timings: ``benchmarks/bench_stability.py``.)

Where the pieces are: this module checks the arguments, selects the results and assembles the answer;
:mod:`bioworkbench.stability.q1e_fit` holds the regressions, the poolability tests, the bounds and their
crossings; :mod:`bioworkbench.stability.q1e_result` the result and its words.

Length: the docstring of :func:`shelf_life` is long (about 100 lines) because it states every formula the
function computes, as the house style asks; its code is under 80 lines.

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
from typing import Literal

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_frame, require_number, require_prob
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, SchemaError
from bioworkbench.stability.frame import _DAYS, STUDY_COLUMNS, unflagged, validate_study
from bioworkbench.stability.q1e_fit import (
    MODELS,
    STORAGE,
    _candidates,
    _check_estimable,
    _check_limits,
    _lines,
    _lot_shelf_lives,
    _poolability,
    _Regressions,
    _regressions,
)
from bioworkbench.stability.q1e_result import ShelfLifeResult

__all__ = ["MODELS", "STORAGE", "ShelfLifeResult", "shelf_life"]


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
    fn = "shelf_life"
    study = require_frame(
        study,
        function=fn,
        argument="study",
        hint="Pass a stability study frame (bw.stability.read_study(path) or validate_study(frame)); a Campaign "
        "holds batch process data, not stability results.",
    )
    lower, upper, confidence, alpha_pool = _check_arguments(
        attribute, lower, upper, confidence, alpha_pool, storage, separate_mse
    )
    data, condition, excluded = _results(study, attribute, condition)
    where = f"{attribute} at {condition}"
    units = data["unit"].drop_nulls().unique().to_list()
    unit, time_unit = (units[0] if units else None), data["time_unit"][0]
    r = _regressions(data, where)
    model, tests = _poolability(r, alpha_pool, where, data)
    if r.k < 3:
        warnings.warn(
            f"shelf_life: {where} has {r.k} lot{'s' if r.k != 1 else ''}; ICH Q1E bases a shelf life on at least "
            "three.",
            BioWorkbenchWarning,
            stacklevel=2,
        )
    two = lower is not None and upper is not None
    tail = 1.0 - ((1.0 - confidence) / 2 if two else 1.0 - confidence)
    chosen = _lines(r, model, separate_mse, tail)
    _check_estimable(r, model, separate_mse, where, data)
    limits = [(side, lim) for side, lim in (("lower", lower), ("upper", upper)) if lim is not None]
    _check_limits(chosen, limits, where, unit, model, confidence, two)
    sl_lot, crossing = _lot_shelf_lives(chosen, limits)
    candidates = _candidates(r, model, separate_mse, chosen, sl_lot, limits, tail)
    # -- overall: the limiting lot (or the common line), Q1E's extrapolation limit
    j = int(np.argmin(sl_lot)) if np.isfinite(sl_lot).any() else None
    life = float(sl_lot[j]) if j is not None else math.inf
    js = j if j is not None else 0
    factor, beyond_months = STORAGE[storage]
    month = (365.25 / 12.0) / _DAYS[time_unit]
    max_allowed = min(factor * r.last_time, r.last_time + beyond_months * month)
    return ShelfLifeResult(
        shelf_life=life,
        model=model,
        tests=tests,
        table=_lot_table(r, chosen, sl_lot, crossing),
        candidates=candidates,
        limiting_batch=r.lots[j] if (j is not None and (model != "common" or r.k == 1)) else None,
        extrapolated=life > r.last_time,
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
        last_time=r.last_time,
        data=data,
        _lines=chosen,
    )


def _check_arguments(
    attribute: object,
    lower: object,
    upper: object,
    confidence: object,
    alpha_pool: object,
    storage: object,
    separate_mse: object,
) -> tuple[float | None, float | None, float, float]:
    """The arguments of :func:`shelf_life` checked: the limits, ``confidence`` and ``alpha_pool`` as numbers."""
    fn = "shelf_life"
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
    return lower, upper, confidence, alpha_pool


def _results(study: pl.DataFrame, attribute: str, condition: str | None) -> tuple[pl.DataFrame, str, int]:
    """The unflagged results of ``attribute`` at ``condition`` (validated first when ``study`` is not a study
    frame), the condition, and how many flagged rows were left out (warned about)."""
    from bioworkbench.schema import suggest

    if not all(c in study.columns and study.schema[c] == t for c, t in STUDY_COLUMNS.items()):
        study = validate_study(study)
    attrs = study["attribute"].unique().sort().to_list()
    if attribute not in attrs:
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
        raise ConfigError(
            f"shelf_life: condition {condition!r} has no {attribute!r} results. "
            + suggest(condition, conds, what="Conditions")
        )
    rows = rows.filter(pl.col("condition") == condition)
    excluded = rows.filter(~unflagged()).height
    data = rows.filter(unflagged())
    where = f"{attribute} at {condition}"
    if data.is_empty():
        raise SchemaError(f"shelf_life: no usable {where} results ({excluded} flagged rows excluded).")
    if excluded:
        warnings.warn(
            f"shelf_life: {excluded} flagged {where} row{'s' if excluded != 1 else ''} excluded.",
            BioWorkbenchWarning,
            stacklevel=3,
        )
    return data, condition, excluded


def _lot_table(r: _Regressions, chosen: dict, sl_lot: np.ndarray, crossing: list[str | None]) -> pl.DataFrame:
    """One row per lot: its line in the chosen model (intercept at time 0 and slope, with standard errors),
    residual SD, degrees of freedom, shelf life and the limit crossed."""
    se_b = chosen["s"] / np.sqrt(chosen["S"])
    a_hat = chosen["ybar"] - chosen["b"] * chosen["c"]
    se_a = chosen["s"] * np.sqrt(1.0 / chosen["m"] + chosen["c"] ** 2 / chosen["S"])
    return pl.DataFrame(
        {
            "batch_id": r.lots,
            "n": r.sums["n"].cast(pl.Int64),
            "first_time": r.sums["t0"],
            "last_time": r.sums["t1"],
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
