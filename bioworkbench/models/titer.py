"""Titer as a function of the cells that made it: per-batch specific productivity, partially pooled.

Model (``b`` the batch, ``j`` a titer sample; IVCD in 1e6 cells·d/mL, titer in mg/L, times in d)::

    titer_bj ~ Normal(a_b + qp_b · IVCD⁻_bj + qp'_b · IVCD⁺γ_bj,  sqrt((c · m_bj)² + s₀²))
    IVCD⁺γ_bj = ∫_{t_s,b}^{t_j} X_b(u) · exp(−γ · (u − t_s,b)) du
    log qp_b  ~ Normal(log qp_campaign (+ β·x_b), τ_qp)
    log (qp'_b / qp_b) ~ Normal(log r_campaign (+ β'·x_b), τ_r)
    a_b ~ Normal(a_campaign, τ_a)
    γ ~ HalfNormal(0.1 per day)        (one for the campaign)

``IVCD⁻`` is the IVCD accumulated before the batch's ``shift`` event (e.g. a temperature shift) at
``t_s``, ``X_b`` the viable cell density. After the shift the specific productivity is
``qp'_b · exp(−γ·(t − t_s))``: it changes at the shift by the ratio ``qp'_b / qp_b`` (learnt per
batch, pooled) and then declines at the campaign's rate ``γ`` (1/d), so ``IVCD⁺γ`` is the IVCD after
the shift weighted by that decline (``γ = 0``: the plain IVCD after the shift, ``IVCD⁺``). Without a
shift event, ``IVCD⁺ = 0`` and ``qp`` applies throughout. 1 mg/L per 1e6 cells·d/mL is 1 pg/cell/d,
so ``qp`` is in pg/cell/d. The error has a proportional part ``c`` (assay CV) and a floor ``s₀``
(mg/L). IVCD comes from :func:`bioworkbench.kinetics.compute` (trapezoid of the measured VCD),
interpolated linearly to the shift time; ``IVCD⁺γ`` weights each trapezoid segment after the shift by
``exp(−γ·τ)`` at its midpoint ``τ`` (days after the shift; relative error about ``(γ·Δt)²/24``,
below 0.2 % for daily samples and ``γ ≤ 0.2``/d).

Why a decline, and why pooled. The specific productivity of fed-batch CHO cultures is not constant
in the production phase: it peaks early in the stationary phase and falls late in the culture as
nutrients (amino acids) run low and viability drops (Templeton, Dean, Reddy & Young 2013, Biotechnol.
Bioeng. 110:2013, the phases of an industrial fed-batch CHO culture; Fan et al. 2015, Biotechnol.
Bioeng. 112:521, amino acid supply and IgG productivity in fed-batch CHO culture). A constant
``qp'`` fitted to a running batch's first post-shift days, where qp is highest, over-predicts its
harvest titer: without ``γ``, forecasts from day 7 of 42 held-out demo batches were biased high by
+309 mg/L and their 90 % intervals covered 83 % of the measured final titers; with it, −85 mg/L and
93 % (``benchmarks/bench_forecast.py``). The rate of decline is a property of the process, seen only
in whole batches, so it is learnt once for the campaign from the completed batches and a running
batch's early post-shift data are extrapolated with it. The prior HalfNormal(0.1/d) keeps ``γ ≥ 0``
and allows up to about a halving of qp a week after the shift (``γ ≈ 0.1``/d) with room beyond; the
demo campaigns give ``γ ≈ 0.045–0.05``/d. ``γ`` is not identified without shift events (its prior
is then returned).

What ``qp`` is: the *apparent* (concentration-basis) specific productivity, the slope of the titer
concentration against the IVCD of the viable cell concentration (the titer–IVCD plot of Renard,
Spagnoli & Haller 1988, Biotechnol. Lett. 10:91). It is what the cells realised, not a kinetic
maximum. In fed-batch the feeds dilute the titer, so it lies a little below the mass-balance
productivity (product mass per viable cell-day, ``qp`` of :func:`bioworkbench.kinetics.compute`):
on the simulated campaigns by about 2 % before the shift, more later in the batch, where more
feed has gone in (which ``γ`` also absorbs). It is the right quantity for forecasting titer
concentrations from the IVCD of concentrations. (The simulator's ``qp_pg_per_cell_day`` is its
kinetic constant at 36.5 °C with amino acids in excess; its cells realise 92–97 % of it before the
shift.)

Sampling coordinates: ``z_r`` (the ratio, non-centred) and ``m_b = (log qp_b + log qp'_b)/2``
(centred, ``m_b ~ Normal(log qp_campaign + log r_b / 2, τ_qp)``, the same model): the titers before
and after the shift pin ``m_b`` together, and it does not narrow as ``τ_r`` shrinks (``log qp_b``
does, a funnel); ``a_b`` non-centred. nutpie runs with a target acceptance of 0.9.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, SchemaError
from bioworkbench.models.base import BayesModel, ForwardPriorPredictive, Prior
from bioworkbench.models.inputs import enough_batches
from bioworkbench.models.sampling import padded_size

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["TiterModel", "titer_design"]


def titer_design(
    campaign: Campaign,
    *,
    batch_ids: list[str] | None = None,
    known_until_h: Mapping[str, float] | None = None,
    shift_h: Mapping[str, float | None] | None = None,
) -> pl.DataFrame:
    """Titer samples with the IVCD before and after each batch's shift.

    The shift is the batch's first ``shift`` event, or ``shift_h[batch]`` for the batches it names
    (a planned shift not yet in the events table; ``None``: no shift). Returns ``batch_id,
    time_h, titer, ivcd, ivcd_pre, ivcd_post, shift_h``.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign` with titer and VCD samples.
    batch_ids
        The batches (default: every batch).
    known_until_h
        ``{batch_id: hours}``: use only what was known up to that time.
    shift_h
        ``{batch_id: hours or None}``: the shift time to assume for the batches named.

    Returns
    -------
    polars.DataFrame
        ``batch_id, time_h, titer, ivcd, ivcd_pre, ivcd_post, shift_h``.
    """

    return _design(campaign, batch_ids=batch_ids, known_until_h=known_until_h, shift_h=shift_h)[0]


def _design(
    campaign: Campaign,
    *,
    batch_ids: list[str] | None = None,
    known_until_h: Mapping[str, float] | None = None,
    shift_h: Mapping[str, float | None] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`titer_design` and the post-shift IVCD segments of :func:`_post_shift_segments`."""
    from bioworkbench import kinetics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kin = kinetics.compute(campaign, variables=[])
    ivcd = (
        kin.filter(pl.col("variable") == "ivcd").select("batch_id", "time_h", ivcd="value").sort("batch_id", "time_h")
    )
    titer = campaign.observations.filter(
        (pl.col("variable") == "titer")
        & (pl.col("source") != "online")
        & pl.col("flag").is_null()
        & pl.col("value").is_not_null()
    ).select("batch_id", "time_h", titer="value")
    ids = batch_ids if batch_ids is not None else campaign.batch_ids
    titer = titer.filter(pl.col("batch_id").is_in(ids))
    if known_until_h:
        cut = pl.DataFrame({"batch_id": list(known_until_h), "_cut": [float(v) for v in known_until_h.values()]})
        titer = (
            titer.join(cut, on="batch_id", how="left")
            .filter(pl.col("_cut").is_null() | (pl.col("time_h") <= pl.col("_cut")))
            .drop("_cut")
        )
    times = _shift_times(campaign, ids, shift_h)
    shift = pl.DataFrame(
        {
            "batch_id": [b for b, v in times.items() if v is not None],
            "shift_h": [v for v in times.values() if v is not None],
        },
        schema={"batch_id": pl.String, "shift_h": pl.Float64},
    )
    d = titer.join(ivcd, on=["batch_id", "time_h"], how="inner").join(shift, on="batch_id", how="left")
    ivcd_at_shift = _interp_at(ivcd, shift)
    design = (
        d.join(ivcd_at_shift, on="batch_id", how="left")
        .with_columns(
            ivcd_pre=pl.when(pl.col("shift_h").is_null() | (pl.col("time_h") <= pl.col("shift_h")))
            .then("ivcd")
            .otherwise("ivcd_shift"),
        )
        .with_columns(ivcd_post=pl.col("ivcd") - pl.col("ivcd_pre"))
        .select("batch_id", "time_h", "titer", "ivcd", "ivcd_pre", "ivcd_post", "shift_h")
        .sort("batch_id", "time_h")
    )
    return design, _post_shift_segments(ivcd, shift, ivcd_at_shift, design)


def _post_shift_segments(
    ivcd: pl.DataFrame, shift: pl.DataFrame, ivcd_at_shift: pl.DataFrame, design: pl.DataFrame
) -> pl.DataFrame:
    """The IVCD accumulated after each batch's shift, segment by segment between its VCD samples.

    Knots: the shift (IVCD interpolated there) and every VCD sample after it up to the batch's last
    titer sample in ``design``. Returns ``batch_id, t_end`` (h, the segment's end), ``tau_d`` (days
    from the shift to the segment's midpoint) and ``d_ivcd`` (1e6 cells·d/mL); a titer sample's
    ``ivcd_post`` is the sum of the ``d_ivcd`` of its batch's segments with ``t_end <= time_h``.
    """
    schema = {"batch_id": pl.String, "t_end": pl.Float64, "tau_d": pl.Float64, "d_ivcd": pl.Float64}
    if shift.is_empty() or design.is_empty():
        return pl.DataFrame(schema=schema)
    last = design.group_by("batch_id").agg(t_last=pl.col("time_h").max())
    after = (
        ivcd.join(shift, on="batch_id", how="inner")
        .join(last, on="batch_id", how="inner")
        .filter((pl.col("time_h") > pl.col("shift_h")) & (pl.col("time_h") <= pl.col("t_last")))
        .select("batch_id", "time_h", "ivcd", "shift_h")
    )
    start = (
        shift.join(ivcd_at_shift, on="batch_id", how="inner")
        .join(last, on="batch_id", how="inner")
        .filter(pl.col("shift_h") < pl.col("t_last"))
        .select("batch_id", pl.col("shift_h").alias("time_h"), pl.col("ivcd_shift").alias("ivcd"), "shift_h")
    )
    knots = pl.concat([start, after]).sort("batch_id", "time_h")
    return (
        knots.with_columns(
            t0=pl.col("time_h").shift(1).over("batch_id"),
            d_ivcd=pl.col("ivcd").diff().over("batch_id"),
        )
        .drop_nulls("t0")
        .select(
            "batch_id",
            t_end="time_h",
            tau_d=((pl.col("t0") + pl.col("time_h")) / 2 - pl.col("shift_h")) / 24,
            d_ivcd="d_ivcd",
        )
        .cast(schema)
    )


def _segment_matrix(d: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(S, τ)``: ``S[j, k]`` the IVCD of post-shift segment ``k`` if it lies before titer sample ``j``.

    ``S[j, k] = d_ivcd_k`` when segment ``k`` is of sample ``j``'s batch and ends at or before it,
    else 0, so that ``S @ exp(-γ·τ)`` is each sample's decline-weighted post-shift IVCD and
    ``S.sum(axis=1)`` its ``ivcd_post``; ``τ`` (d) the segments' midpoints after the shift.
    """
    inside, dx, tau = _segment_mask(d)
    return np.where(inside, dx[None, :], 0.0), tau


def _segment_pairs(d: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entries of :func:`_segment_matrix` that can be non-zero: ``(j, k, S[j, k], τ)``.

    ``j`` (titer sample) and ``k`` (segment) index the pairs where segment ``k`` is of sample
    ``j``'s batch and ends at or before it, in row-major order; ``S[j, k] = d_ivcd_k``. Each
    sample's decline-weighted post-shift IVCD is the sum over its pairs of ``S[j, k]·exp(-γ·τ_k)``,
    the same terms as the row of ``S @ exp(-γ·τ)``. A batch has a pair for each of its titer
    samples and each post-shift segment before it, so the pairs grow with the batches, where the
    matrix grows with their square (the demo forecast's 23 batches: 1,078 pairs, 54,384 matrix
    entries).
    """
    inside, dx, tau = _segment_mask(d)
    j, k = np.nonzero(inside)
    return j.astype("int64"), k.astype("int64"), dx[k], tau


def _segment_mask(d: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(inside, d_ivcd, τ)``: ``inside[j, k]`` whether segment ``k`` counts for titer sample ``j``."""
    b = np.asarray(d["b"], "int64")
    t = np.asarray(d["time_h"], float)
    sb = np.asarray(d.get("seg_b") or [], "int64")
    te = np.asarray(d.get("seg_t_end") or [], float)
    dx = np.asarray(d.get("seg_ivcd") or [], float)
    tau = np.asarray(d.get("seg_tau_d") or [], float)
    # sample times are VCD sample times, i.e. segment ends: the tolerance only absorbs rounding
    inside = (b[:, None] == sb[None, :]) & (te[None, :] <= t[:, None] + 1e-6)
    return inside, dx, tau


def _decline_weights(tau_d: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """``exp(-γ·τ)``: the post-shift qp factor of :class:`TiterModel` at ``tau_d`` days after the shift."""
    return np.exp(-np.asarray(gamma, float)[..., None] * np.asarray(tau_d, float))


def _shift_times(
    campaign: Campaign, ids: list[str], shift_h: Mapping[str, float | None] | None
) -> dict[str, float | None]:
    """Each batch's shift time (h): ``shift_h`` where it names the batch, else its first ``shift`` event."""
    ev = dict(
        campaign.events.filter((pl.col("event") == "shift") & pl.col("batch_id").is_in(list(ids)))
        .group_by("batch_id")
        .agg(pl.col("time_h").min())
        .iter_rows()
    )
    planned = dict(shift_h or {})
    return {b: (planned[b] if b in planned else ev.get(b)) for b in ids}


def _interp_at(curve: pl.DataFrame, at: pl.DataFrame) -> pl.DataFrame:
    """Linear interpolation of ``curve`` (batch_id, time_h, ivcd) at ``at`` (batch_id, shift_h)."""
    if at.is_empty():
        return pl.DataFrame(schema={"batch_id": pl.String, "ivcd_shift": pl.Float64})
    a = at.rename({"shift_h": "time_h"}).sort("time_h")
    c = curve.sort("time_h")
    before = a.join_asof(
        c.rename({"time_h": "t0", "ivcd": "y0"}),
        left_on="time_h",
        right_on="t0",
        by="batch_id",
        strategy="backward",
        check_sortedness=False,
    )
    both = before.join_asof(
        c.rename({"time_h": "t1", "ivcd": "y1"}),
        left_on="time_h",
        right_on="t1",
        by="batch_id",
        strategy="forward",
        check_sortedness=False,
    )
    return both.select(
        "batch_id",
        ivcd_shift=pl.when(pl.col("t1") == pl.col("t0"))
        .then("y0")
        .when(pl.col("t1").is_null())
        .then("y0")
        .otherwise(
            pl.col("y0")
            + (pl.col("y1") - pl.col("y0")) * (pl.col("time_h") - pl.col("t0")) / (pl.col("t1") - pl.col("t0"))
        ),
    )


class TiterModel(ForwardPriorPredictive, BayesModel):
    """Per-batch specific productivity from titer against IVCD (see the module docstring).

    Default priors:

    =================  ============================  ==========  ====================================
    prior              distribution                  unit        why
    =================  ============================  ==========  ====================================
    ``qp``             LogNormal(log 25, 0.7)        pg/cell/d   CHO mAb processes: 5–100 pg/cell/d
    ``sd_log_qp``      HalfNormal(0.3)               log         batch-to-batch CV of qp up to ~50 %
    ``shift_ratio``    LogNormal(0, 0.5)             –           qp just after / before the shift, 0.4–2.7
    ``sd_log_ratio``   HalfNormal(0.2)               log
    ``intercept``      Normal(0, 100)                mg/L        titer at inoculation (carry-over)
    ``sd_intercept``   HalfNormal(50)                mg/L
    ``cv``             HalfNormal(0.1)               –           assay CV, typically 2–8 %
    ``floor``          HalfNormal(20)                mg/L        assay error near the limit of detection
    ``beta``           Normal(0, 0.2)                log per SD  covariate (CPP) effects on qp and ratio
    ``qp_decline``     HalfNormal(0.1)               1/d         decline γ of qp after the shift: up
                                                                 to ~50 % a week later (module doc)
    =================  ============================  ==========  ====================================

    Parameters
    ----------
    priors
        Overrides of the default priors, by name.
    sampler
        Overrides of the sampler settings (see :class:`~bioworkbench.models.BayesModel`).
    """

    model_type = "TiterModel"
    default_priors: ClassVar[dict[str, Prior]] = {
        "qp": Prior(
            "LogNormal", {"mu": float(np.log(25.0)), "sigma": 0.7}, "pg/cell/d", "CHO mAb processes: 5-100 pg/cell/d"
        ),
        "sd_log_qp": Prior("HalfNormal", {"sigma": 0.3}, "log", "batch-to-batch CV of qp up to ~50 %"),
        "shift_ratio": Prior("LogNormal", {"mu": 0.0, "sigma": 0.5}, "", "qp after / before the shift"),
        "sd_log_ratio": Prior("HalfNormal", {"sigma": 0.2}, "log", "batch-to-batch spread of the ratio"),
        "intercept": Prior("Normal", {"mu": 0.0, "sigma": 100.0}, "mg/L", "titer at inoculation (carry-over)"),
        "sd_intercept": Prior("HalfNormal", {"sigma": 50.0}, "mg/L", "batch-to-batch spread of the intercept"),
        "cv": Prior("HalfNormal", {"sigma": 0.1}, "", "assay CV, typically 2-8 %"),
        "floor": Prior("HalfNormal", {"sigma": 20.0}, "mg/L", "assay error near the detection limit"),
        "beta": Prior("Normal", {"mu": 0.0, "sigma": 0.2}, "log per SD", "a CPP SD moves qp by ~20 %"),
        "qp_decline": Prior(
            "HalfNormal",
            {"sigma": 0.1},
            "1/d",
            "qp falls late in fed-batch culture: up to ~50 % over a week after the shift",
        ),
    }
    min_points = 3

    def fit(
        self,
        campaign: Campaign,
        *,
        batch_ids: str | Sequence[str] | None = None,
        covariates: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        shift_h: Mapping[str, float | None] | None = None,
        min_points: int | None = None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
    ) -> TiterModel:
        """Sample the posterior of the titer model (titer against IVCD before and after the shift).

        Parameters
        ----------
        campaign
            The campaign; its offline, unflagged titer samples that have a VCD at the same time.
        batch_ids
            The batches to fit. Default: every batch with at least ``min_points`` titer samples;
            the others are left out with a :class:`~bioworkbench.errors.BioWorkbenchWarning` naming
            each and why (also in ``model.data["left_out"]``). Given batches with too few samples
            are an error.
        covariates
            Batch columns (e.g. numeric CPP setpoints) that shift the population's log qp and log
            ratio linearly per standard deviation; ``"auto"``: the numeric CPPs that vary. Default: none.
        known_until_h
            ``{batch_id: hours}``: batches known only up to a time (running); later titers are not
            used and a running batch may have none yet (its qp then comes from the population).
        shift_h
            ``{batch_id: hours}`` of the shift (``None``: no shift) for batches whose shift is not
            in the events table yet (a running batch's planned shift); the events table's ``shift``
            event is used for the others.
        min_points
            Fewest titer samples of a batch seen whole (default :attr:`min_points`, 3).
        draws, tune, chains, random_seed, progressbar
            Sampler settings (defaults: the ``sampler`` settings; ``tune`` per backend,
            :data:`~bioworkbench.models.sampling.TUNE_BY_BACKEND`; nutpie's target acceptance 0.9:
            :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`).

        Returns
        -------
        TiterModel
            ``self``, with ``idata``, ``data`` and ``sampling``.

        Raises
        ------
        ArgumentError
            ``campaign`` is not a Campaign; a setting that is not a number of the right kind.
        SchemaError
            Unknown or repeated batches, an empty list, given batches with too few titer samples
            (each named with its count), no titer in the campaign, or fewer than 2 batches left.
        ConfigError
            An unknown covariate column.
        """
        return self._fit(
            campaign,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            batch_ids=batch_ids,
            covariates=covariates,
            known_until_h=known_until_h,
            shift_h=shift_h,
            min_points=min_points,
        )

    def _prepare(
        self,
        data: Any,
        *,
        batch_ids: str | Sequence[str] | None = None,
        known_until_h: Mapping[str, float] | None = None,
        shift_h: Mapping[str, float | None] | None = None,
        min_points: int | None = None,
        covariates: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        from bioworkbench.checks import require_campaign, require_number
        from bioworkbench.models.base import covariate_matrix
        from bioworkbench.models.inputs import batch_list, known_times, resolve_covariates

        if isinstance(data, dict) and "ivcd_pre" in data:
            return data
        fn = f"{type(self).__name__}.fit"
        data = require_campaign(data, function=fn)
        min_points = int(
            require_number(min_points or self.min_points, function=fn, argument="min_points", minimum=1, integer=True)
        )
        chosen = batch_ids is not None
        ids = batch_list(batch_ids, data, function=fn) if chosen else list(data.batch_ids)
        known = known_times(known_until_h, ids, function=fn)
        d, seg = _design(data, batch_ids=ids, known_until_h=known, shift_h=shift_h)
        if d.is_empty() and not data.observations.filter(pl.col("variable") == "titer").height:
            raise SchemaError(
                f"{fn}: campaign {data.name!r} has no titer samples; the titer model needs titer "
                "(forecast VCD alone with GrowthModel)."
            )
        n = {b: 0 for b in ids} | dict(d.group_by("batch_id").len().iter_rows())
        # a running batch (known only up to a time) leans on the campaign: it may have no titer yet
        few = {b: k for b, k in n.items() if b not in known and k < min_points}
        left_out: list[dict[str, str]] = []
        if few and chosen:
            raise SchemaError(
                "; ".join(
                    f"batch {b} has {k} titer point{'s' if k != 1 else ''} with a VCD at the same time"
                    for b, k in sorted(few.items())
                )
                + f" — the titer model needs at least {min_points} per batch. "
                "Leave such batches out with batch_ids=[...]."
            )
        if few:
            left_out = [{"batch_id": b, "reason": f"{k} titer points (needs {min_points})"} for b, k in few.items()]
            ids = [b for b in ids if b not in few]
            d = d.filter(pl.col("batch_id").is_in(ids))
            seg = seg.filter(pl.col("batch_id").is_in(ids))
        enough_batches(ids, left_out, function=fn, model=type(self).__name__, data="titer", stacklevel=4)
        idx = {b: i for i, b in enumerate(ids)}
        shifts = _shift_times(data, ids, shift_h)
        return {
            "batch_ids": list(ids),
            "b": [idx[b] for b in d["batch_id"].to_list()],
            "titer": d["titer"].to_list(),
            "ivcd_pre": d["ivcd_pre"].to_list(),
            "ivcd_post": d["ivcd_post"].to_list(),
            "time_h": d["time_h"].to_list(),
            "shift_h": [shifts.get(b) for b in ids],
            "seg_b": [idx[b] for b in seg["batch_id"].to_list()],
            "seg_t_end": seg["t_end"].to_list(),
            "seg_tau_d": seg["tau_d"].to_list(),
            "seg_ivcd": seg["d_ivcd"].to_list(),
            "covariates": covariate_matrix(data, list(ids), resolve_covariates(covariates, data, ids, function=fn)),
            "known_until_h": known,
            "left_out": left_out,
        }

    def _notes(self) -> list[str]:
        d = self.data or {}
        if d.get("left_out"):
            return [
                f"{len(d['left_out'])} batch(es) left out: "
                + "; ".join(f"{e['batch_id']} ({e['reason']})" for e in d["left_out"])
                + "."
            ]
        return []

    def _structure(self, d: dict[str, Any]) -> tuple:
        covariates = tuple((d.get("covariates") or {}).get("names", ()))
        n_seg = padded_size(len(d.get("seg_ivcd") or []), 64)
        n_pairs = padded_size(len(_segment_pairs(d)[0]), 64)
        return (len(d["batch_ids"]), padded_size(len(d["titer"]), 64), n_seg, n_pairs, covariates)

    def _padded(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        _, no, ns, npairs, _ = self._structure(d)
        n = len(d["titer"])
        pad = np.zeros(no - n)
        obs, seg, seg_ivcd, tau = _segment_pairs(d)
        # padding pairs add 0 to sample 0: S[j, k] = 0 times a finite weight
        return {
            "pair_obs": np.pad(obs, (0, npairs - obs.size)),
            "pair_seg": np.pad(seg, (0, npairs - seg.size)),
            "pair_ivcd": np.pad(seg_ivcd, (0, npairs - seg_ivcd.size)),
            "seg_tau_d": np.pad(tau, (0, ns - tau.size)),
            "titer": np.concatenate([np.asarray(d["titer"], float), pad]),
            "ivcd_pre": np.concatenate([np.asarray(d["ivcd_pre"], float), pad]),
            "b": np.concatenate([np.asarray(d["b"], "int64"), np.zeros(no - n, "int64")]),
            "w": np.concatenate([np.ones(n), pad]),
        }

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        out = self._padded(d)
        cov = d.get("covariates") or {"names": []}
        if cov["names"]:
            out["x_cov"] = np.asarray(cov["x"], float)
        return out

    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        arr = self._padded(d)
        p = self.priors
        with pm.Model(coords={"batch": list(d["batch_ids"])}) as model:
            y = pm.Data("titer", arr["titer"])
            x1 = pm.Data("ivcd_pre", arr["ivcd_pre"])
            b = pm.Data("b", arr["b"])
            w = pm.Data("w", arr["w"])
            # the post-shift segment matrix S by its possibly non-zero entries (S[j, k], j, k), not as
            # a dense (samples x segments) array: nutpie bakes every pm.Data's value at compile time
            # into the compiled code as a placeholder, numba refers to an array over 1e6 bytes by its
            # process address, and the dense S of the demo campaign (512 x 256 float64, 1,048,576
            # bytes) kept that address in the code, so the disk compile cache could not keep the
            # model (compile_cache; issue 19)
            pair_obs = pm.Data("pair_obs", arr["pair_obs"])
            pair_seg = pm.Data("pair_seg", arr["pair_seg"])
            pair_ivcd = pm.Data("pair_ivcd", arr["pair_ivcd"])
            seg_tau = pm.Data("seg_tau_d", arr["seg_tau_d"])
            qp_c = p["qp"].create("qp_campaign")
            ratio_c = p["shift_ratio"].create("shift_ratio_campaign")
            a_c = p["intercept"].create("intercept_campaign")
            sd_qp = p["sd_log_qp"].create("sd_log_qp")
            sd_r = p["sd_log_ratio"].create("sd_log_ratio")
            sd_a = p["sd_intercept"].create("sd_intercept")
            gamma = p["qp_decline"].create("qp_decline")
            # productivity is well identified by each batch's titer curve: centred
            mu_log_qp = pt.log(qp_c)
            mu_log_r = pt.log(ratio_c)
            cov = d.get("covariates") or {"names": []}
            if cov["names"]:
                x = pm.Data("x_cov", np.asarray(cov["x"], float))
                beta = p["beta"].create("beta", shape=(len(cov["names"]), 2))
                mu_log_qp = mu_log_qp + pt.dot(x, beta[:, 0])
                mu_log_r = mu_log_r + pt.dot(x, beta[:, 1])
            # the ratio qp'/qp non-centred; centred in the mean m = (log qp + log qp')/2, which the
            # titers before and after the shift pin together (log qp itself is then free of the
            # ratio's scale: in log qp the posterior narrows as sd_log_ratio shrinks, a funnel)
            z_r = pm.Normal("z_ratio", 0.0, 1.0, dims="batch")
            log_r = mu_log_r + sd_r * z_r
            m = pm.Normal("mean_log_qp_b", mu_log_qp + log_r / 2, sd_qp, dims="batch")
            z_a = pm.Normal("z_intercept", 0.0, 1.0, dims="batch")
            qp = pm.Deterministic("qp_b", pt.exp(m - log_r / 2), dims="batch")
            qp2 = pm.Deterministic("qp_after_shift_b", pt.exp(m + log_r / 2), dims="batch")
            a = pm.Deterministic("intercept_b", a_c + sd_a * z_a, dims="batch")
            # post-shift IVCD weighted by the campaign's decline of qp, exp(-γ·τ) at each segment's
            # midpoint: x2_j = Σ_k S[j, k]·exp(-γ·τ_k), summed over sample j's pairs
            decline = pt.exp(-gamma * seg_tau)
            x2 = pt.inc_subtensor(pt.zeros_like(x1)[pair_obs], pair_ivcd * decline[pair_seg])
            mean = a[b] + qp[b] * x1 + qp2[b] * x2
            cv = p["cv"].create("cv")
            s0 = p["floor"].create("floor")
            sigma = pt.sqrt((cv * mean) ** 2 + s0**2)
            pm.Potential("loglik", (w * pm.logp(pm.Normal.dist(mu=mean, sigma=sigma), y)).sum())
        return model

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        b = np.asarray(self.data["b"])
        x1 = np.asarray(self.data["ivcd_pre"])
        seg_ivcd, tau = _segment_matrix(self.data)
        x2 = (_decline_weights(tau, prior["qp_decline"].values) @ seg_ivcd.T) if tau.size else np.zeros(len(b))
        mean = (
            prior["intercept_b"].values[..., b]
            + prior["qp_b"].values[..., b] * x1
            + prior["qp_after_shift_b"].values[..., b] * x2
        )
        sd = np.sqrt((prior["cv"].values[..., None] * mean) ** 2 + prior["floor"].values[..., None] ** 2)
        y = mean + sd * rng.standard_normal(mean.shape)
        return xr.Dataset({"titer": (("chain", "draw", "obs"), y)}, coords={"obs": np.arange(len(b))})

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """qp (and qp after the shift, intercept) per batch and for the campaign.

        Parameters
        ----------
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        polars.DataFrame
            One row per parameter (and batch, for the per-batch ones) with ``mean, lower, upper, prob``
            and the unit; no ``qp_after_shift`` row for a batch without a shift.
        """
        from bioworkbench.checks import require_prob

        prob = require_prob(prob, function="TiterModel.summary")
        self._require_fit()
        ids = self.data["batch_ids"]
        names = {
            "qp_b": ("qp", "pg/cell/d"),
            "qp_after_shift_b": ("qp_after_shift", "pg/cell/d"),
            "intercept_b": ("intercept", "mg/L"),
            "qp_campaign": ("qp", "pg/cell/d"),
            "shift_ratio_campaign": ("shift_ratio", ""),
            "qp_decline": ("qp_decline", "1/d"),
            "sd_log_qp": ("sd_log_qp", "log"),
            "cv": ("cv", ""),
            "floor": ("floor", "mg/L"),
        }
        index = {k: ids for k in ("qp_b", "qp_after_shift_b", "intercept_b")}
        out = self._summary_frame(names, index, prob)
        # a batch without a shift event has no qp after a shift
        no_shift = [b for b, s in zip(ids, self.data["shift_h"], strict=True) if s is None]
        return out.filter(~((pl.col("parameter") == "qp_after_shift") & pl.col("batch_id").is_in(no_shift)))

    def predict(
        self,
        *,
        batch_id: str,
        ivcd_pre: np.ndarray,
        ivcd_post: np.ndarray,
        time_h: np.ndarray | None = None,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Titer of ``batch_id`` at the given IVCD before/after the shift: ``mean, lower, upper, prob``.

        Parameters
        ----------
        batch_id
            A fitted batch.
        ivcd_pre, ivcd_post
            IVCD accumulated before and after the shift, 1e6 cells·d/mL, at successive times.
        time_h
            Culture times of the points (h, ascending): needed when ``ivcd_post`` is not all 0,
            for the decline of qp after the shift (see :meth:`titer_draws`).
        prob
            Mass of the equal-tailed intervals.
        kind
            ``"mean"`` (the titer curve) or ``"predictive"`` (a new sample, with assay noise).
        random_seed
            Seed of the predictive draws.

        Returns
        -------
        polars.DataFrame
            One row per IVCD point: ``mean, lower, upper, prob`` (and ``time_h`` when given).

        Raises
        ------
        ArgumentError
            IVCDs or times that are not finite numbers, of different lengths, times not ascending, or
            no ``time_h`` where the post-shift IVCD needs them.
        """
        from bioworkbench.checks import require_prob
        from bioworkbench.models.growth import _times

        prob = require_prob(prob, function="TiterModel.predict")
        what = "IVCDs in 1e6 cells·d/mL"
        ivcd_pre = _times(ivcd_pre, "TiterModel.predict", argument="ivcd_pre", what=what)
        ivcd_post = _times(ivcd_post, "TiterModel.predict", argument="ivcd_post", what=what)
        if time_h is not None:
            time_h = _times(time_h, "TiterModel.predict", argument="time_h")
        draws = self.titer_draws(
            batch_id,
            np.asarray(ivcd_pre, float)[None, :],
            np.asarray(ivcd_post, float)[None, :],
            time_h=time_h,
            kind=kind,
            random_seed=random_seed,
        )
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        out = pl.DataFrame(
            {
                "batch_id": batch_id,
                "ivcd_pre": ivcd_pre,
                "ivcd_post": ivcd_post,
                "variable": "titer",
                "mean": draws.mean(axis=0),
                "lower": lo,
                "upper": hi,
            }
        ).with_columns(prob=pl.lit(prob))
        if time_h is not None:
            out = out.insert_column(1, pl.Series("time_h", time_h))
        return out

    def titer_draws(
        self,
        batch_id: str,
        ivcd_pre: np.ndarray,
        ivcd_post: np.ndarray,
        *,
        time_h: np.ndarray | None = None,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> np.ndarray:
        """Titer draws ``(sample, ...)`` for IVCD arrays broadcast against the posterior samples.

        Parameters
        ----------
        batch_id
            A fitted batch.
        ivcd_pre, ivcd_post
            IVCD accumulated before and after the shift, 1e6 cells·d/mL; along the last axis at the
            successive times ``time_h``.
        time_h
            Culture times (h, ascending) of the last axis. Needed when ``ivcd_post`` is not all 0:
            each increment of ``ivcd_post`` is weighted by the decline of qp, ``exp(-γ·τ)``, ``τ``
            the days from the shift to the increment's midpoint (the first increment runs from the
            shift to ``time_h[0]``: give the points from the shift on for an exact weighting).
        kind
            ``"mean"`` or ``"predictive"``.
        random_seed
            Seed of the predictive draws.

        Returns
        -------
        numpy.ndarray
            Titer draws, mg/L, ``(sample, ...)``.

        Raises
        ------
        ConfigError
            An unknown ``kind``.
        ArgumentError
            ``time_h`` missing where it is needed, not ascending, or not as long as the last axis.
        """
        from bioworkbench.checks import require_choice
        from bioworkbench.errors import ArgumentError
        from bioworkbench.models.growth import _fitted_batches

        fn = "TiterModel.titer_draws"
        require_choice(kind, ("mean", "predictive"), function=fn, argument="kind")
        self._require_fit()
        ids = self.data["batch_ids"]
        (batch_id,) = _fitted_batches(batch_id, ids, fn, single=True)
        i = ids.index(batch_id)
        a = self.posterior_draws("intercept_b")[:, i][:, None]
        q1 = self.posterior_draws("qp_b")[:, i][:, None]
        q2 = self.posterior_draws("qp_after_shift_b")[:, i][:, None]
        post = np.asarray(ivcd_post, float)
        t_s = self.data["shift_h"][i]
        if t_s is not None and np.any(post != 0):
            if time_h is None:
                raise ArgumentError(
                    f"{fn}: batch {batch_id}'s qp declines after its shift at {t_s:g} h, so the post-shift "
                    "IVCD needs its times: pass time_h (hours of the points along the last axis)."
                )
            t = np.asarray(time_h, float).ravel()
            if t.size != post.shape[-1] or np.any(np.diff(t) < 0):
                raise ArgumentError(
                    f"{fn}: time_h must be ascending hours, one per point along the last axis of ivcd_post "
                    f"({post.shape[-1]}); got {t.size} time(s)" + (", not ascending." if t.size > 1 else ".")
                )
            t_prev = np.maximum(np.concatenate([[t_s], t[:-1]]), t_s)
            tau = ((t_prev + np.maximum(t, t_s)) / 2 - t_s) / 24
            weights = _decline_weights(tau, self.posterior_draws("qp_decline"))
            post = np.cumsum(np.diff(post, axis=-1, prepend=0.0) * weights, axis=-1)
        m = a + q1 * ivcd_pre + q2 * post
        if kind == "predictive":
            rng = np.random.default_rng(random_seed)
            cv = self.posterior_draws("cv")[:, None]
            s0 = self.posterior_draws("floor")[:, None]
            m = m + rng.standard_normal(m.shape) * np.sqrt((cv * m) ** 2 + s0**2)
        elif kind != "mean":
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        return m
