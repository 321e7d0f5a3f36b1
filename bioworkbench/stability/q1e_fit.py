"""The statistics behind ICH Q1E shelf life: per-lot regressions on time, the three nested ANCOVA models,
the poolability F tests, the confidence bound of the mean line of each model and where it crosses a limit.

Every least-squares fit is closed-form from per-lot sums (n, Σt, Σy and the centred Σt², Σty, Σy²),
computed in one polars ``group_by``: the three nested models share those sums and no design matrix is
needed. Bound crossings are solved exactly as roots of a quadratic, not on a grid. The formulas are in the
Notes of :func:`bioworkbench.stability.shelf_life`, which puts these pieces together; the refusals
(data that cannot estimate a shelf life) are raised here, where the quantity that fails is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, Issue, SchemaError

__all__ = ["MODELS", "STORAGE"]

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

_MODEL_WORDS = {
    "common": "one common line",
    "common_slope": "common slope, separate intercepts",
    "separate": "separate lines",
}

_TESTS = ["equal slopes", "equal intercepts", "equal lines"]


def _num(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.0f}"


@dataclass
class _Regressions:
    """Per-lot sums of one attribute at one condition and the three nested least-squares fits."""

    sums: pl.DataFrame  # batch_id, n, nt, t0, t1, st, sy, line, file (sorted by batch_id)
    lots: list[str]
    n_i: np.ndarray
    tbar: np.ndarray
    ybar: np.ndarray
    stt: np.ndarray
    sty: np.ndarray
    syy: np.ndarray
    # separate lines (full model)
    b_i: np.ndarray
    rss_i: np.ndarray
    rss_f: float
    df_f: int
    # common slope
    b_s: float
    rss_s: float
    df_s: int
    # common line
    t_all: float
    y_all: float
    stt_c: float
    syy_c: float
    b_c: float
    rss_c: float
    df_c: int

    @property
    def k(self) -> int:
        return len(self.lots)

    @property
    def n(self) -> float:
        return float(self.n_i.sum())

    @property
    def last_time(self) -> float:
        return float(self.sums["t1"].max())

    def exact(self, rss: float, total: float | None = None) -> bool:
        """A residual sum of squares that is round-off of 0: at most 1e-10 of the sum of squares ``total`` of
        the values it was fitted to (default: all values; the closed forms ``S_yy − S_ty²/S_tt`` lose about
        1e-16 · S_yy to cancellation; a residual SD below 1e-5 of the values' SD is no measured scatter)."""
        total = self.syy_c if total is None else total
        return rss <= 1e-10 * total or total == 0.0


def _regressions(data: pl.DataFrame, where: str) -> _Regressions:
    """The per-lot sums of ``data`` (after checking each lot has two or more times) and the three fits."""
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
    tbar, ybar = sums["st"].to_numpy() / n_i, sums["sy"].to_numpy() / n_i
    stt, sty, syy = (cen[c].to_numpy() for c in ("stt", "sty", "syy"))
    n = float(n_i.sum())
    rss_i = np.maximum(syy - sty**2 / stt, 0.0)
    # common line: overall sums from the per-lot ones
    t_all, y_all = float((n_i * tbar).sum() / n), float((n_i * ybar).sum() / n)
    stt_c = float(stt.sum() + (n_i * (tbar - t_all) ** 2).sum())
    sty_c = float(sty.sum() + (n_i * (tbar - t_all) * (ybar - y_all)).sum())
    syy_c = float(syy.sum() + (n_i * (ybar - y_all) ** 2).sum())
    return _Regressions(
        sums=sums,
        lots=lots,
        n_i=n_i,
        tbar=tbar,
        ybar=ybar,
        stt=stt,
        sty=sty,
        syy=syy,
        b_i=sty / stt,
        rss_i=rss_i,
        rss_f=float(rss_i.sum()),
        df_f=int(n - 2 * k),
        b_s=float(sty.sum() / stt.sum()),
        rss_s=max(float(syy.sum() - sty.sum() ** 2 / stt.sum()), 0.0),
        df_s=int(n - k - 1),
        t_all=t_all,
        y_all=y_all,
        stt_c=stt_c,
        syy_c=syy_c,
        b_c=sty_c / stt_c,
        rss_c=max(syy_c - sty_c**2 / stt_c, 0.0),
        df_c=int(n - 2),
    )


def _tests_frame(F: list, df_num: list, df_den: list, p: list, alpha: float, decisive: list, decision: list):
    return pl.DataFrame(
        {
            "test": _TESTS,
            "F": F,
            "df_num": df_num,
            "df_den": df_den,
            "p_value": p,
            "alpha": [alpha] * 3,
            "decisive": decisive,
            "decision": decision,
        },
        schema_overrides={"F": pl.Float64, "df_num": pl.Int64, "df_den": pl.Int64, "p_value": pl.Float64},
    )


def _poolability(r: _Regressions, alpha_pool: float, where: str, data: pl.DataFrame) -> tuple[str, pl.DataFrame]:
    """The ICH Q1E pooling decision (``"common"``, ``"common_slope"`` or ``"separate"``) and its tests.

    Raises :class:`SchemaError` when the full model has no residual degrees of freedom, and refuses (see
    :func:`_refuse`) when the separate lines fit every result exactly, so the F tests are undefined."""
    from scipy import stats

    k, a = r.k, alpha_pool
    if k == 1:
        na = [None] * 3
        return "common", _tests_frame(na, na, na, na, a, [False] * 3, ["not applicable: one lot"] * 3)
    if r.df_f < 1:
        raise SchemaError(
            [
                Issue(
                    f"{where}: {int(r.n)} results for {k} lots leave no residual degrees of freedom for the "
                    f"full ANCOVA model (n − 2k = {r.df_f}); the poolability tests need at least one.",
                    hint="add results (replicates or further time points) to at least one lot.",
                )
            ]
        )
    df_num, df_den = [k - 1, k - 1, 2 * k - 2], [r.df_f] * 3
    if r.exact(r.rss_f):
        # no error variance to test against: F is 0/0 or x/0, undefined, not 0 (p = 1) or inf (p = 0)
        undefined = (
            f"undefined: the separate lines fit all {int(r.n)} results exactly (residual mean square 0 on "
            f"{r.df_f} df), so there is no error variance to test against"
        )
        na = [None] * 3
        tests = _tests_frame(na, df_num, df_den, na, a, [False] * 3, [undefined] * 3)
        _refuse(
            where,
            data,
            f"the poolability tests of ICH Q1E Appendix B.2.2 are {undefined}; and each lot's own confidence "
            "bound (the only choice when poolability cannot be shown) would have zero width",
            tests=tests,
        )
    mse_f = r.rss_f / r.df_f
    F, p = [], []
    for num_ss, dfn in ((r.rss_s - r.rss_f, k - 1), (r.rss_c - r.rss_s, k - 1), (r.rss_c - r.rss_f, 2 * k - 2)):
        F.append((max(num_ss, 0.0) / dfn) / mse_f)
        p.append(float(stats.f.sf(F[-1], dfn, r.df_f)))
    if p[0] < a:
        model = "separate"
        decision = [f"p < {a}: slopes differ; lots analysed separately",
                    "not used: slopes differ, so intercepts are not compared"]  # fmt: skip
    elif p[1] < a:
        model = "common_slope"
        decision = [f"p ≥ {a}: slopes poolable", f"p < {a}: intercepts differ; common slope with separate intercepts"]
    else:
        model = "common"
        decision = [f"p ≥ {a}: slopes poolable", f"p ≥ {a}: intercepts poolable; one common line"]
    decision.append("reference only (JMP model comparison A); not part of the Q1E sequence")
    return model, _tests_frame(F, df_num, df_den, p, a, [True, model != "separate", False], decision)


def _lines(r: _Regressions, name: str, mse: str, tail: float) -> dict:
    """The lines of model ``name`` in one shape, per lot: ``ŷ = ȳ + b (t − c)``, ``se = s √(1/m + (t − c)²/S)``,
    with ``df`` and the t quantile ``q`` at ``tail`` (``mse``: ``"individual"``/``"pooled"`` for separate
    lines)."""
    from scipy import stats

    k, ones = r.k, np.ones(r.k)
    if name == "common":
        s = math.sqrt(r.rss_c / r.df_c) if r.df_c > 0 else math.nan
        d = dict(ybar=r.y_all * ones, c=r.t_all * ones, b=r.b_c * ones, m=r.n * ones, S=r.stt_c * ones, s=s * ones)
        d["df"] = np.full(k, r.df_c)
    elif name == "common_slope":
        s = math.sqrt(r.rss_s / r.df_s) if r.df_s > 0 else math.nan
        d = dict(ybar=r.ybar, c=r.tbar, b=r.b_s * ones, m=r.n_i, S=r.stt.sum() * ones, s=s * ones)
        d["df"] = np.full(k, r.df_s)
    elif mse == "pooled":
        s = math.sqrt(r.rss_f / r.df_f) if r.df_f > 0 else math.nan
        d = dict(ybar=r.ybar, c=r.tbar, b=r.b_i, m=r.n_i, S=r.stt, s=s * ones, df=np.full(k, r.df_f))
    else:
        df_i = (r.n_i - 2).astype(int)
        with np.errstate(divide="ignore", invalid="ignore"):
            s_i = np.where(df_i > 0, np.sqrt(r.rss_i / np.maximum(df_i, 1)), np.nan)
        d = dict(ybar=r.ybar, c=r.tbar, b=r.b_i, m=r.n_i, S=r.stt, s=s_i, df=df_i)
    with np.errstate(invalid="ignore"):
        d["q"] = np.where(d["df"] > 0, stats.t.ppf(tail, np.maximum(d["df"], 1)), np.nan)
    d["batch_id"] = r.lots
    return d


def _check_estimable(r: _Regressions, model: str, separate_mse: str, where: str, data: pl.DataFrame) -> None:
    """The chosen model has a residual variance to bound with: enough results per lot for individual lines,
    residual degrees of freedom for one lot, and a residual variance that is not 0 (else :func:`_refuse`)."""
    individual = model == "separate" and separate_mse == "individual"
    if individual:
        few = [(lot, int(r.n_i[j]), j) for j, lot in enumerate(r.lots) if r.n_i[j] < 3]
        if few:
            raise SchemaError(
                [
                    Issue(
                        f"{where}: lot {lot} has {m} results; its own regression needs at least 3 for a residual "
                        f"variance and a confidence bound (found {m}, needed 3).",
                        file=r.sums["file"][j],
                        line=r.sums["line"][j],
                        column="value",
                        batch=lot,
                        hint="add results for this lot, or use separate_mse='pooled' (the full model's pooled "
                        "variance).",
                    )
                    for lot, m, j in few
                ]
            )
    if r.k == 1 and r.df_c < 1:
        _refuse(
            where,
            data,
            f"lot {r.lots[0]} has {int(r.n)} results at {int(r.sums['nt'][0])} times, which its regression line fits "
            f"exactly: no residual degrees of freedom (n − 2 = {r.df_c}) and so no residual variance for the "
            "confidence bound of the mean",
            hint="a regression-based shelf life needs at least 3 results (at 2 or more times) per line; add results "
            "(replicates or further time points)",
        )
    if individual:
        zero = [j for j in range(r.k) if r.exact(r.rss_i[j], r.syy[j])]
        if zero:
            names = ", ".join(r.lots[j] for j in zero)
            _refuse(
                where,
                data,
                (
                    f"lots {names} lie exactly on their own regression lines (residual variance 0), so their "
                    "confidence bounds of the mean would have zero width"
                    if len(zero) > 1
                    else f"lot {names} lies exactly on its own regression line (residual variance 0), so "
                    "its confidence bound of the mean would have zero width"
                ),
                hint="check whether the values were rounded, copied or are nominal; with real scatter in the other "
                "lots separate_mse='pooled' uses the full model's variance",
                batches=[r.lots[j] for j in zero],
            )
    elif r.exact({"common": r.rss_c, "common_slope": r.rss_s}.get(model, r.rss_f)):
        _refuse(
            where,
            data,
            f"all {int(r.n)} results lie exactly on the fitted {_MODEL_WORDS[model]} (residual variance 0"
            + (", all values equal" if r.syy_c == 0.0 else "")
            + "), so its confidence bound of the mean would have zero width",
            hint="check whether the values were rounded, copied or are nominal (e.g. every result reported as the "
            "specification's target)",
        )


def _candidates(
    r: _Regressions, model: str, separate_mse: str, chosen: dict, sl_lot: np.ndarray, limits: list, tail: float
) -> pl.DataFrame:
    """The shelf life every model would give (JMP and ``expirest`` report them all), the chosen one marked."""
    rows = []
    options = [("common", "")] if r.k == 1 else [("common", ""), ("common_slope", ""), ("separate", "individual")]
    if r.k > 1:
        options.append(("separate", "pooled"))
    for name, mse in options:
        if (name, mse or "") == (model, separate_mse if model == "separate" else ""):
            d, s_l = chosen, sl_lot
        else:
            d = _lines(r, name, mse, tail)
            with np.errstate(invalid="ignore"):
                s_l, _ = _lot_shelf_lives(d, limits, strict=False)
        j = int(np.nanargmin(s_l)) if np.isfinite(s_l).any() else None
        rows.append(
            {
                "model": name,
                "mse": mse or None,
                "shelf_life": float(np.nanmin(s_l)) if not np.isnan(s_l).all() else math.nan,
                "limiting_batch": None if (name == "common" or j is None) else r.lots[j],
                "residual_sd": float(d["s"][j if j is not None else 0]),
                "df": int(d["df"][j if j is not None else 0]),
                "chosen": name == model and (name != "separate" or mse == separate_mse),
            }
        )
    schema = {"model": pl.String, "mse": pl.String, "shelf_life": pl.Float64, "limiting_batch": pl.String,
              "residual_sd": pl.Float64, "df": pl.Int64, "chosen": pl.Boolean}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


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
