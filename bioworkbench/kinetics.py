"""Bioprocess kinetics with fed-batch volume bookkeeping: IVCD, μ, doubling time, specific rates.

All computations are vectorised polars over ``(batch_id, variable)`` groups; there is no Python
loop over rows or batches. Conventions (stated once, used everywhere):

* Time is ``time_h`` (hours since inoculation); rates are per day (``Δt_d = Δt_h / 24``).
* ``V_i`` is the working volume *just before* the sample at ``t_i``: the ``volume`` observation
  when there is one, else ``initial_volume_ml`` plus every addition (feed, bolus, base) minus
  every removal (sample, harvest) strictly before ``t_i``. Samples are taken before additions at
  the same time, so an addition at ``t_i`` counts for the next interval.
* ``s_i`` is the volume removed by the sample at ``t_i`` (sum of ``sample`` and ``harvest``
  events at exactly that time; 0 when there is none).
* Specific rates are *net* and signed: positive = produced, negative = consumed.

References
----------
.. [1] Klein T., Heinzel N., Kroll P., et al. (2015). Quantification of cell lysis during CHO
   bioprocesses: impact on cell count, growth kinetics and productivity. J. Biotechnol. 207,
   67–76 (cell-number based μ and q for fed-batch with sampling).
.. [2] Wang X., et al. (2018). Specific rates in fed-batch culture: a mass-balance framework.
   Standard practice also in Sidoli F.R., Mantalaris A., Asprey S.P. (2004), Modelling of
   mammalian cells and cell culture processes, Cytotechnology 44, 27–46.
"""

from __future__ import annotations

import math
import warnings

import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, SchemaError
from bioworkbench.schema import ADDITIONS, REMOVALS, registry

__all__ = ["RATE_VARIABLES", "compute", "qp_regression", "volumes", "wide"]

#: analytes whose specific rates are computed when measured (any registered molar
#: concentration is included too)
RATE_VARIABLES = ("glucose", "lactate", "glutamine", "glutamate", "ammonium", "titer")

OUTPUT_SCHEMA = {
    "batch_id": pl.String,
    "time_h": pl.Float64,
    "variable": pl.String,
    "value": pl.Float64,
    "unit": pl.String,
    "method": pl.String,
}


def _offline(campaign, *, exclude_flagged: bool) -> pl.DataFrame:
    obs = campaign.observations.filter(pl.col("source") != "online")
    n_flag = obs.filter(pl.col("flag").is_not_null()).height
    if exclude_flagged and n_flag:
        by = obs.filter(pl.col("flag").is_not_null()).group_by("variable").len().sort("variable").iter_rows()
        warnings.warn(
            f"kinetics: {n_flag} flagged offline observation(s) excluded ({', '.join(f'{v}: {n}' for v, n in by)}).",
            BioWorkbenchWarning,
            stacklevel=3,
        )
        obs = obs.filter(pl.col("flag").is_null())
    return obs.filter(pl.col("value").is_not_null()).select("batch_id", "time_h", "variable", "value")


def _events(campaign) -> pl.DataFrame:
    return campaign.events.select("batch_id", "time_h", "event", pl.col("volume_ml").fill_null(0.0), "medium")


def _cum_at(
    points: pl.DataFrame,
    steps: pl.DataFrame,
    value: str,
    *,
    by: list[str],
    inclusive: bool,
    name: str,
) -> pl.DataFrame:
    """Add ``name`` = sum of ``steps[value]`` before (``inclusive``: up to) each point's time.

    ``steps`` has ``by`` + ``time_h`` + ``value``; the cumulative sum is taken per ``by`` group and
    looked up with an as-of join, so no Python loop is needed.
    """
    if steps.is_empty():
        return points.with_columns(pl.lit(0.0).alias(name))
    cum = (
        steps.group_by([*by, "time_h"])
        .agg(pl.col(value).sum())
        .sort("time_h")
        .with_columns(pl.col(value).cum_sum().over(by).alias(name))
        .select(*by, pl.col("time_h").alias("_t_step"), name)
        .sort("_t_step")
    )
    out = (
        points.with_row_index("_ord")
        .sort("time_h")
        .join_asof(
            cum,
            left_on="time_h",
            right_on="_t_step",
            by=by,
            strategy="backward",
            allow_exact_matches=inclusive,
            check_sortedness=False,
        )
        .sort("_ord")
        .drop("_ord", "_t_step")
        .with_columns(pl.col(name).fill_null(0.0))
    )
    return out


def volumes(campaign, times: pl.DataFrame | None = None) -> pl.DataFrame:
    """Working volume just before each sample time, and the volume the sample removed.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    times
        ``batch_id, time_h`` at which to evaluate (default: every offline sample time).

    Returns
    -------
    polars.DataFrame
        ``batch_id, time_h, volume_ml, sample_ml, volume_source`` where ``volume_source`` is
        ``observed`` (a ``volume`` observation), ``events`` (``initial_volume_ml`` + additions −
        removals strictly before ``time_h``) or ``unknown`` (no initial volume: concentrations
        are then treated as if the volume were constant).

    Notes
    -----
    ``V(t) = V0 + Σ_{t_e < t} v_add − Σ_{t_e < t} v_removed`` (mL); events at ``t`` itself happen
    after the sample (additions) or are the sample (removals).
    """
    obs = _offline(campaign, exclude_flagged=True) if times is None else None
    if times is None:
        times = obs.select("batch_id", "time_h").unique()
    times = times.select("batch_id", "time_h").unique().sort("batch_id", "time_h")
    ev = _events(campaign)
    signed = ev.filter(pl.col("event").is_in(ADDITIONS + REMOVALS)).select(
        "batch_id",
        "time_h",
        _dv=pl.when(pl.col("event").is_in(ADDITIONS)).then(pl.col("volume_ml")).otherwise(-pl.col("volume_ml")),
    )
    out = _cum_at(times, signed, "_dv", by=["batch_id"], inclusive=False, name="_net")
    samples = (
        ev.filter(pl.col("event").is_in(REMOVALS))
        .group_by("batch_id", "time_h")
        .agg(sample_ml=pl.col("volume_ml").sum())
    )
    v_obs = (
        campaign.observations.filter(
            (pl.col("variable") == "volume") & pl.col("flag").is_null() & pl.col("value").is_not_null()
        )
        .group_by("batch_id", "time_h")
        .agg(_v_obs=pl.col("value").first())
    )
    v0 = campaign.batches.select("batch_id", _v0=pl.col("initial_volume_ml"))
    return (
        out.join(v0, on="batch_id", how="left")
        .join(samples, on=["batch_id", "time_h"], how="left")
        .join(v_obs, on=["batch_id", "time_h"], how="left")
        .with_columns(
            sample_ml=pl.col("sample_ml").fill_null(0.0),
            volume_ml=pl.coalesce("_v_obs", pl.col("_v0") + pl.col("_net")),
            volume_source=pl.when(pl.col("_v_obs").is_not_null())
            .then(pl.lit("observed"))
            .when(pl.col("_v0").is_not_null())
            .then(pl.lit("events"))
            .otherwise(pl.lit("unknown")),
        )
        .select("batch_id", "time_h", "volume_ml", "sample_ml", "volume_source")
        .sort("batch_id", "time_h")
    )


def compute(
    campaign,
    *,
    variables: list[str] | None = None,
    exclude_flagged: bool = True,
) -> pl.DataFrame:
    """Kinetics of every batch: IVCD, μ, doubling time, specific rates and cumulative amounts.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign` with offline ``vcd`` and the analytes.
    variables
        Analytes for specific rates (default: every measured molar concentration of the registry
        and ``titer``).
    exclude_flagged
        Leave flagged observations out (default; a :class:`BioWorkbenchWarning` says how many).

    Returns
    -------
    polars.DataFrame
        Long frame ``batch_id, time_h, variable, value, unit, method``, one row per batch, sample
        interval and quantity, at the *end* time of the interval:

        ========================  ===================  ============================================
        variable                  unit                 definition
        ========================  ===================  ============================================
        ``ivcd``                  1e6 cells·d/mL       Σ (Xv_{i-1} + Xv_i)/2 · Δt_d (trapezoid; 0 at
                                                       the first sample)
        ``mu``                    1/d                  ln((Xv_i·V_i + removed_i) / (Xv_{i-1}·(V_{i-1} −
                                                       s_{i-1}))) / Δt_d, removed_i = cells taken by
                                                       samples strictly inside the interval (at
                                                       linearly interpolated Xv)
        ``doubling_time``         h                    24 · ln 2 / μ, for μ > 0 only
        ``q_<analyte>``           pmol/cell/d          net_i / IVCN_i (molar analytes)
        ``qp``                    pg/cell/d            net_i / IVCN_i for titer
        ``cum_<analyte>``         mmol (titer: mg)     Σ net over the intervals so far
        ========================  ===================  ============================================

        with ``net_i = C_i·V_i − C_{i-1}·(V_{i-1} − s_{i-1}) − Σ_feeds v·c_medium + removed_i``
        (amount before this sample, minus amount after the previous sample, minus what feeds and
        boluses in ``[t_{i-1}, t_i)`` brought, plus what samples taken in between removed at the
        linearly interpolated concentration) and ``IVCN_i`` the trapezoid integral of viable cell
        *numbers* Xv·V over the interval (after-sample number at its start, before-sample number at
        its end). Units: mmol/L × mL = µmol and 1e6 cells·d, so µmol / (1e6 cells·d) = pmol/cell/d;
        mg/L × mL = µg, so µg / (1e6 cells·d) = pg/cell/d.

    Notes
    -----
    An interval needs the analyte *and* VCD at both of its ends; a missing sample merges two
    intervals. Where a batch has no ``initial_volume_ml`` and no ``volume`` observations, volumes
    are unknown and treated as constant (``method`` says so); feeds then cannot be credited.

    Raises
    ------
    SchemaError
        When a variable asked for is not measured, or feeds reference volumes without an initial
        volume to book them against.
    """
    obs = _offline(campaign, exclude_flagged=exclude_flagged)
    reg = registry()
    if variables is None:
        measured = set(obs["variable"].unique().to_list())
        variables = [
            v for v in reg if v in measured and (v == "titer" or (reg[v].kind == "concentration" and reg[v].molar_mass))
        ]
    else:
        missing = sorted(set(variables) - set(obs["variable"].unique().to_list()))
        if missing:
            raise SchemaError(f"kinetics: no offline observations of {', '.join(missing)}.")
    vcd = obs.filter(pl.col("variable") == "vcd").select("batch_id", "time_h", xv="value")
    if vcd.is_empty():
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    vol = volumes(campaign, obs.select("batch_id", "time_h"))
    vol = vol.with_columns(
        volume_ml=pl.when(pl.col("volume_source") == "unknown").then(1.0).otherwise(pl.col("volume_ml")),
        sample_ml=pl.when(pl.col("volume_source") == "unknown").then(0.0).otherwise(pl.col("sample_ml")),
    )
    ev = _events(campaign)
    removals = ev.filter(pl.col("event").is_in(REMOVALS)).select(
        "batch_id", "time_h", _s0="volume_ml", _s1=pl.col("volume_ml") * pl.col("time_h")
    )

    # ---- viable cells: IVCD, μ, cumulative integral of viable cell numbers ------------------
    cells = (
        vcd.join(vol, on=["batch_id", "time_h"], how="left")
        .sort("batch_id", "time_h")
        .with_columns(
            n_before=pl.col("xv") * pl.col("volume_ml"),
            n_after=pl.col("xv") * (pl.col("volume_ml") - pl.col("sample_ml")),
        )
    )
    cells = _interval_removed(cells, removals, value="xv")
    cells = (
        cells.with_columns(
            _dt_d=(pl.col("time_h") - pl.col("time_h").shift(1).over("batch_id")) / 24.0,
            _xv_prev=pl.col("xv").shift(1).over("batch_id"),
            _n_after_prev=pl.col("n_after").shift(1).over("batch_id"),
        )
        .with_columns(
            _ivcd_step=((pl.col("_xv_prev") + pl.col("xv")) / 2 * pl.col("_dt_d")).fill_null(0.0),
            _ivcn_step=((pl.col("_n_after_prev") + pl.col("n_before")) / 2 * pl.col("_dt_d")).fill_null(0.0),
        )
        .with_columns(
            ivcd=pl.col("_ivcd_step").cum_sum().over("batch_id"),
            ivcn=pl.col("_ivcn_step").cum_sum().over("batch_id"),
            mu=((pl.col("n_before") + pl.col("_removed")) / pl.col("_n_after_prev")).log() / pl.col("_dt_d"),
        )
    )
    vsrc = (
        pl.lit("volume: ")
        + pl.col("volume_source")
        + pl.when(pl.col("volume_source") == "unknown").then(pl.lit(" (treated as constant)")).otherwise(pl.lit(""))
    )
    first = pl.col("_dt_d").is_null()
    out = [
        cells.select(
            "batch_id",
            "time_h",
            variable=pl.lit("ivcd"),
            value="ivcd",
            unit=pl.lit("1e6 cells*d/mL"),
            method=pl.lit("trapezoid of Xv over time"),
        ),
        cells.filter(~first & pl.col("mu").is_finite()).select(
            "batch_id",
            "time_h",
            variable=pl.lit("mu"),
            value="mu",
            unit=pl.lit("1/d"),
            method=pl.lit("ln((Xv_i V_i + cells sampled inside) / Xv_{i-1} V_{i-1} after sampling) / dt; ") + vsrc,
        ),
        cells.filter(~first & (pl.col("mu") > 0) & pl.col("mu").is_finite()).select(
            "batch_id",
            "time_h",
            variable=pl.lit("doubling_time"),
            value=24.0 * math.log(2) / pl.col("mu"),
            unit=pl.lit("h"),
            method=pl.lit("24 ln2 / mu"),
        ),
    ]

    # ---- specific rates of analytes (all variables at once, long format) ----------------------
    if variables:
        ana = (
            obs.filter(pl.col("variable").is_in(variables))
            .rename({"value": "c"})
            .join(cells.select("batch_id", "time_h", "ivcn"), on=["batch_id", "time_h"], how="inner")
            .join(vol, on=["batch_id", "time_h"], how="left")
            .sort("batch_id", "variable", "time_h")
        )
        media = campaign.media.select("medium", "variable", _conc="concentration")
        added = (
            ev.filter(pl.col("event").is_in(ADDITIONS) & pl.col("medium").is_not_null())
            .join(media, on="medium", how="inner")
            .select("batch_id", "variable", "time_h", _amt=pl.col("volume_ml") * pl.col("_conc"))
        )
        ana = _cum_at(ana, added, "_amt", by=["batch_id", "variable"], inclusive=False, name="_added_cum")
        ana = _interval_removed(ana, removals, value="c", by=["batch_id", "variable"])
        g = ["batch_id", "variable"]
        ana = (
            ana.with_columns(
                _first=pl.col("time_h").shift(1).over(g).is_null(),
                _start_amt=(pl.col("c") * (pl.col("volume_ml") - pl.col("sample_ml"))).shift(1).over(g),
                _added=pl.col("_added_cum") - pl.col("_added_cum").shift(1).over(g),
                _ivcn=pl.col("ivcn") - pl.col("ivcn").shift(1).over(g),
            )
            .with_columns(
                _net=pl.col("c") * pl.col("volume_ml") + pl.col("_removed") - pl.col("_start_amt") - pl.col("_added"),
            )
            .filter(~pl.col("_first"))
        )
        is_titer = pl.col("variable") == "titer"
        ana = ana.with_columns(_cum=pl.col("_net").cum_sum().over(g) / 1000.0)
        out += [
            ana.filter(pl.col("_ivcn") > 0).select(
                "batch_id",
                "time_h",
                variable=pl.when(is_titer).then(pl.lit("qp")).otherwise(pl.lit("q_") + pl.col("variable")),
                value=pl.col("_net") / pl.col("_ivcn"),
                unit=pl.when(is_titer).then(pl.lit("pg/cell/d")).otherwise(pl.lit("pmol/cell/d")),
                method=pl.lit("net mass balance / integral of viable cell numbers; ") + vsrc,
            ),
            ana.select(
                "batch_id",
                "time_h",
                variable=pl.lit("cum_") + pl.col("variable"),
                value="_cum",
                unit=pl.when(is_titer).then(pl.lit("mg")).otherwise(pl.lit("mmol")),
                method=pl.lit("cumulative net amount (positive = produced); ") + vsrc,
            ),
        ]
    return (
        pl.concat(out, how="vertical_relaxed")
        .sort("batch_id", "variable", "time_h")
        .select([pl.col(k).cast(v) for k, v in OUTPUT_SCHEMA.items()])
    )


def _interval_removed(
    df: pl.DataFrame, removals: pl.DataFrame, *, value: str, by: list[str] | None = None
) -> pl.DataFrame:
    """Add ``_removed``: amount taken by samples strictly between consecutive rows of a group.

    Concentration at an intermediate sample is interpolated linearly between the interval's ends:
    ``Σ s_j (C_{i-1} + (C_i − C_{i-1}) (t_j − t_{i-1}) / Δt)`` = ``S0·C_{i-1} + (C_i − C_{i-1})
    (S1 − t_{i-1} S0) / Δt`` with ``S0 = Σ s_j`` and ``S1 = Σ s_j t_j`` over the open interval.
    """
    by = by or ["batch_id"]
    for col in ("_s0", "_s1"):  # Σ s_j and Σ s_j t_j, before (lt) and up to (le) each row's time
        for inclusive, suffix in ((False, "_lt"), (True, "_le")):
            df = _cum_at(
                df,
                removals.select("batch_id", "time_h", col),
                col,
                by=["batch_id"],
                inclusive=inclusive,
                name=col + suffix,
            )
    t_prev = pl.col("time_h").shift(1).over(by)
    c_prev = pl.col(value).shift(1).over(by)
    s0 = pl.col("_s0_lt") - pl.col("_s0_le").shift(1).over(by)
    s1 = pl.col("_s1_lt") - pl.col("_s1_le").shift(1).over(by)
    removed = s0 * c_prev + (pl.col(value) - c_prev) * (s1 - t_prev * s0) / (pl.col("time_h") - t_prev)
    return (
        df.sort([*by, "time_h"])
        .with_columns(_removed=removed.fill_null(0.0))
        .drop("_s0_lt", "_s0_le", "_s1_lt", "_s1_le")
    )


def qp_regression(
    campaign,
    *,
    start_h: float | None = None,
    end_h: float | None = None,
    exclude_flagged: bool = True,
) -> pl.DataFrame:
    """Specific productivity as the slope of titer against IVCD over a window, per batch.

    Returns
    -------
    polars.DataFrame
        ``batch_id, qp, qp_se, r2, n, start_h, end_h`` with ``qp`` in pg/cell/d (the slope of
        titer [mg/L] on IVCD [1e6 cells·d/mL]: 1 mg/L per 1e6 cells·d/mL = 1 pg/cell/d), its
        standard error ``sqrt(SSE / (n − 2) / Sxx)`` and the coefficient of determination.

    Notes
    -----
    Ordinary least squares ``titer = a + qp · IVCD`` on the samples with both values inside
    ``[start_h, end_h]``. Like the concentration-based literature method, it ignores dilution by
    feeds; use :func:`compute` (``qp``) for the mass-balance rate. Batches with fewer than 3
    points get nulls.
    """
    with warnings.catch_warnings():  # _offline below warns once about flagged rows
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        kin = compute(campaign, variables=[], exclude_flagged=exclude_flagged)
    ivcd = kin.filter(pl.col("variable") == "ivcd").select("batch_id", "time_h", ivcd="value")
    titer = _offline(campaign, exclude_flagged=exclude_flagged).filter(pl.col("variable") == "titer")
    d = titer.select("batch_id", "time_h", y="value").join(ivcd, on=["batch_id", "time_h"], how="inner")
    if start_h is not None:
        d = d.filter(pl.col("time_h") >= start_h)
    if end_h is not None:
        d = d.filter(pl.col("time_h") <= end_h)
    x, y = pl.col("ivcd"), pl.col("y")
    sxx = ((x - x.mean()) ** 2).sum()
    sxy = ((x - x.mean()) * (y - y.mean())).sum()
    syy = ((y - y.mean()) ** 2).sum()
    res = (
        d.group_by("batch_id")
        .agg(
            n=pl.len(),
            _sxx=sxx,
            _sxy=sxy,
            _syy=syy,
            start_h=pl.col("time_h").min(),
            end_h=pl.col("time_h").max(),
        )
        .with_columns(qp=pl.col("_sxy") / pl.col("_sxx"))
        .with_columns(
            _sse=pl.col("_syy") - pl.col("qp") * pl.col("_sxy"),
        )
        .with_columns(
            qp_se=pl.when(pl.col("n") > 2)
            .then((pl.col("_sse").clip(lower_bound=0) / (pl.col("n") - 2) / pl.col("_sxx")).sqrt())
            .otherwise(None),
            r2=1 - pl.col("_sse") / pl.col("_syy"),
        )
        .with_columns(pl.when(pl.col("n") >= 3).then(pl.col(c)).otherwise(None).alias(c) for c in ("qp", "qp_se", "r2"))
    )
    return (
        campaign.batches.select("batch_id")
        .join(
            res.select("batch_id", "qp", "qp_se", "r2", "n", "start_h", "end_h"),
            on="batch_id",
            how="left",
        )
        .with_columns(pl.col("n").fill_null(0))
    )


def wide(kinetics: pl.DataFrame, *, batch_id: str) -> pl.DataFrame:
    """One batch's kinetics as a table for people: one row per sample time (days), one column per
    quantity with its unit in the name."""
    k = kinetics.filter(pl.col("batch_id") == batch_id)
    if k.is_empty():
        raise SchemaError(f"no kinetics rows for batch {batch_id!r}.")
    k = k.with_columns(name=pl.col("variable") + " (" + pl.col("unit") + ")")
    return (
        k.pivot(on="name", index="time_h", values="value", aggregate_function="first")
        .sort("time_h")
        .with_columns(day=(pl.col("time_h") / 24).round(2))
        .drop("time_h")
        .select("day", pl.exclude("day"))
    )
