"""Bayesian accelerated stability: degradation kinetics with an Arrhenius temperature dependence.

A stability study measures an attribute (potency, purity, aggregates …) of several lots at several
storage conditions over time. :class:`StabilityModel` fits all lots and conditions jointly:

*Kinetics* (:mod:`bioworkbench.stability.degradation`, where the rate laws and their numerical
solution are described): the extent of degradation ``α ∈ [0, 1)`` at reduced time ``θ = k t``, for
``kinetics`` ``"zero_order"`` (``α = min(θ, 1)``), ``"first_order"`` (``α = 1 − exp(−θ)``) or
``"sestak_berggren"`` (``dα/dt = k α^m (1 − α)^n``, solved through ``g(α) = θ``).

*Arrhenius* in the reference-temperature parameterisation (which decorrelates the rate and the
activation energy; Waterman & Adami 2005, Int J Pharm 293:101; Kuzman et al. 2021, Sci Rep
11:20534; Roduit et al. 2019, J Therm Anal Calorim 136:1597)::

    k(T) = k_ref · exp(−E_a/R · (1/T − 1/T_ref))       T in kelvin, E_a in kJ/mol, R = 8.314462618e-3

``reference_temperature`` defaults to 5 °C, the storage temperature of refrigerated biologics: the
rate people ask about (loss per month in the fridge) is then ``k_ref`` itself, its prior is set on
that scale, and predictions at the storage condition need ``E_a`` only for the lot-to-lot and
excursion parts. Give 25 °C for a product stored at room temperature. ``T_ref`` decorrelates
``k_ref`` from ``E_a`` only when the data inform the rate best near ``T_ref``; in accelerated studies
they inform it best at the hot conditions, so the sampler works with each lot's rate at an internal
*centre temperature* ``T_c`` (the information-weighted mean of the observations' ``1/T``, see
:mod:`bioworkbench.models.stability_data`), an exact reparameterisation that leaves the model unchanged.

*Temperature histories* (storage with excursions; :class:`~bioworkbench.stability.TemperatureHistory`):
each rate law is autonomous and separable, ``dα/dt = k(T) f(α)``, so a lot whose temperature changes
has the extent of a lot held at ``T_ref`` for the equivalent time
``t_eq = Σ Δt_i exp(−E_a/R (1/T_i − 1/T_ref))`` — exact, no ODE needed. Constant conditions are the
special case ``t_eq = t · k(T)/k_ref``; in the model every observation carries the time it spent at
each distinct temperature, so lots with excursions can be fitted too (``fit(..., histories=...)``).

*Attribute* (``y``, in the study's unit) from the extent: ``y = y_∞ + (y0 − y_∞) · (1 − α)``, with
``y_∞`` (``asymptote``) the value at complete degradation: 0 for a decreasing attribute and, for an
increasing attribute on a percent scale (aggregates, fragments, acidic variants), 100 %. Give
``asymptote=`` for other units. ``direction`` (``"decrease"``/``"increase"``) is inferred from the
sign of the slopes at the hottest condition unless given.

*Hierarchy* (lot ``b``)::

    y0_b        ~ Normal(y0, sd_y0)
    log k_ref,b ~ Normal(log k_ref, sd_log_k_ref)
    E_a shared (``ea_by_lot=True``: E_a,b = E_a + sd_activation_energy · v_b, v_b ~ N(0, 1))
    y_i ~ Normal(mean_i, σ)   (or StudentT(ν, mean_i, σ) with ``likelihood="student_t"``)

How it is sampled (the same model, parameterised for NUTS; the choices were made on simulated
studies of 4 conditions × 5 lots, where the lots' rates and initial values are much better known
than their spread — the regime in which the non-centred form has an inverted funnel):

* ``y0_b`` enters the mean linearly, so with the normal likelihood it is integrated out exactly
  (a rank-one Gaussian per lot, Sherman–Morrison) and drawn after sampling from its exact
  conditional distribution (:meth:`StabilityModel._initial_values`); with Student-t it is sampled,
  centred.
* ``log k`` of each lot is sampled at ``T_c`` and *partially centred* (Gorinova, Moore & Hoffman
  2020, "Automatic reparameterisation of probabilistic programs", ICML): with ``μ`` the population
  mean, ``σ = sd_log_k_ref`` and ``s_b`` the precision with which lot ``b``'s data fix its rate, the
  sampled ``x_b ~ N(λ_b μ', σ^λ_b)`` gives ``log k_c,b = c_0 + μ' + σ^(1−λ_b) (x_b − λ_b μ')``
  (``μ' = μ − c_0``, ``c_0`` a data guess), which is ``N(μ, σ)`` for any ``λ_b``. With
  ``λ_b = σ²/(σ² + s_b²)`` it is centred while the spread dominates and non-centred when the lots
  are more alike than their data can tell — the two regimes a posterior of a 5-lot study spans (the
  centred form diverged in the funnel's neck in a third of simulated studies). ``sd_log_k_ref``
  has a boundary-avoiding LogNormal prior: with five lots a group-level sd is poorly determined,
  and a prior that keeps it off 0 (Chung et al. 2013, Psychometrika 78:685) gave the cleanest
  sampling (HalfNormal(0.3) left a divergence and r̂ up to 1.023 in the 30 studies below). The
  price: a lot-to-lot spread of the rate below ~5 % is not believed, which widens new-lot
  intervals slightly (the conservative side).
* Šesták–Berggren: the data fix the time to a given extent, not ``k``, ``m`` and ``n`` one by one
  (kinetic compensation), so each lot's rate is sampled as ``log(k_c,b / g(α*))`` = minus the log
  time to ``α* = 0.1`` at ``T_c`` (a shift given ``m``, ``n``; the model is unchanged), with nutpie's
  low-rank mass matrix by default for what correlation remains.

NUTS runs at target acceptance 0.9 (set in :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`;
nutpie's own default, 0.8, left a single divergent transition in about one fit in five). Checked
on 30 simulated studies (seeds 100–129, first order, 4 conditions × 5 lots, 2 chains × 1,000
draws): no divergences, and the 90 % intervals covered the true ``E_a`` in 90 %, the lots'
``k_ref`` in 88 %, their ``y0`` in 94 % and their potency after 24 months at 5 °C in 92 % of the
cases.

``k_ref`` is the median rate of the lot population at ``T_ref`` (1/time unit of the study). Intervals
everywhere are equal-tailed posterior intervals of mass ``prob``. A *new lot* (``batch_id=None``)
draws its ``y0``, ``k_ref`` (and ``E_a``) from the fitted population, so lot-to-lot variation is in
its intervals.

Where the pieces are: this module holds the model (priors, the PyMC graph and its PyTensor kinetics,
fitting); :mod:`bioworkbench.models.stability_data` turns a study into the model's data;
:mod:`bioworkbench.models.stability_results` computes predictions, times to a limit, probabilities of
staying in specification and summaries from the posterior draws; the NumPy kinetics are
:mod:`bioworkbench.stability.degradation`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.models.base import BayesModel, Prior
from bioworkbench.models.sampling import padded_size
from bioworkbench.models.stability_data import (
    _SB_ALPHA_STAR,
    _centre_and_precision,
    _direction,
    _exposure,
    _resolve_histories,
    _scales,
    _usable_rows,
)
from bioworkbench.models.stability_results import _StabilityResults
from bioworkbench.stability.degradation import (
    _GL_W,
    _GL_X,
    _NEWTON_STEPS,
    _SB_ALPHA,
    KINETICS,
    degradation_extent,
    extent_to_reduced_time,
    require_kinetics,
)
from bioworkbench.stability.history import TemperatureHistory
from bioworkbench.stability.temperature import KELVIN, R_KJ

__all__ = ["KINETICS", "StabilityModel", "degradation_extent", "extent_to_reduced_time"]

_LIKELIHOODS = ("normal", "student_t")
#: a default prior's parameters that are filled from the data when the prior leaves them out
_AUTO = {
    "k_ref": {"mu": "log_k_scale"},
    "y0": {"mu": "y0_guess", "sigma": "y0_sigma"},
    "sd_y0": {"sigma": "y0_spread"},
    "sigma": {"sigma": "y_scale"},
}

# -- kinetics in PyTensor (the NumPy version is bioworkbench.stability.degradation) ---------------
_GL16_X, _GL16_W = np.polynomial.legendre.leggauss(16)


def _reduced_time_pt(alpha: float, m: Any, n: Any) -> Any:
    """``g(α) = p ∫_0^{α^{1−m}} (1 − s^p)^{−n} ds`` for a fixed small ``α`` (16-point Gauss–Legendre;
    used only to reparameterise, so its accuracy does not change the model)."""
    import pytensor.tensor as pt

    p = 1.0 / (1.0 - m)
    top = alpha ** (1.0 - m)
    s = top * (_GL16_X + 1.0) / 2.0
    return p * top / 2.0 * pt.sum(_GL16_W * pt.exp(-n * pt.log1p(-(s**p))))


def _extent_pt(theta: Any, kinetics: str, m: Any = None, n: Any = None) -> Any:
    """PyTensor version of :func:`degradation_extent` (scalar exponents, ``theta`` a vector)."""
    import pytensor.tensor as pt

    if kinetics == "zero_order":
        return pt.minimum(theta, 1.0)
    if kinetics == "first_order":
        return -pt.expm1(-theta)
    one = 1.0 - m
    p = 1.0 / one

    def gl(a: Any, b: Any) -> Any:
        mid, half = (a + b) / 2, (b - a) / 2
        s = pt.clip(mid[..., None] + half[..., None] * _GL_X, 1e-300, 1.0)
        f = pt.exp(-n * pt.log1p(-(s**p)))
        return p * half * pt.sum(f * _GL_W, axis=-1)

    sig = pt.concatenate([pt.zeros((1,)), pt.as_tensor(_SB_ALPHA[1:]) ** one])
    th = pt.concatenate([pt.zeros((1,)), pt.cumsum(gl(sig[:-1], sig[1:]))])
    thc = pt.minimum(theta, th[-1])
    j = pt.clip(pt.sum(pt.ge(thc[:, None], th[None, 1:]), axis=1), 0, _SB_ALPHA.size - 2)
    s0, s1, t0, t1 = sig[j], sig[j + 1], th[j], th[j + 1]
    s = s0 + (thc - t0) / (t1 - t0) * (s1 - s0)
    for _ in range(_NEWTON_STEPS):
        resid = t0 + gl(s0, s) - thc
        slope = p * pt.exp(-n * pt.log1p(-(pt.clip(s, 1e-300, 1.0) ** p)))
        s = pt.clip(s - resid / slope, s0, s1)
    # x**p, not exp(p log x): PyTensor's rewrite of the latter gives a NaN gradient at x = 0 (time 0)
    return pt.maximum(s, 1e-300) ** p


# -- the model -----------------------------------------------------------------------------------
class StabilityModel(_StabilityResults, BayesModel):
    """Bayesian accelerated-stability model (Arrhenius; see the module docstring for the model).

    Parameters
    ----------
    kinetics
        ``"zero_order"``, ``"first_order"`` (default) or ``"sestak_berggren"``.
    reference_temperature
        ``T_ref`` of the Arrhenius parameterisation, °C (default 5 °C, refrigerated storage).
    priors
        Overrides of the default priors (table below), by name.
    sampler
        Sampler settings (see :class:`~bioworkbench.models.base.BayesModel`).
    direction
        ``"decrease"``, ``"increase"`` or ``None`` (inferred from the data).
    asymptote
        Attribute value at complete degradation ``y_∞`` (default 0 when decreasing, 100 when
        increasing on a "%" scale; other increasing attributes must give it).
    likelihood
        ``"normal"`` (default) or ``"student_t"`` (robust to a few outlying results).
    ea_by_lot
        Partially pool the activation energy across lots instead of sharing one.

    Default priors (``*``: filled from the data when left out, see Notes):

    ========================  ===============================  ===========  ===================================
    prior                     distribution                     unit         why
    ========================  ===============================  ===========  ===================================
    ``activation_energy``     LogNormal(log 90, 0.35)          kJ/mol       protein degradation 50–160 kJ/mol
                                                                            (90 % prior interval)
    ``k_ref``                 LogNormal(log k_scale*, 2)       1/time unit  rate at T_ref near what the data
                                                                            show, ×7.4 per sd either way
    ``sd_log_k_ref``          LogNormal(log 0.15, 0.6)         log          lot-to-lot CV of the rate 6–40 %
                                                                            (90 %); kept off 0 (see above)
    ``y0``                    Normal(y0_guess*, 2.5 s_y*)      attr. unit   the initial value, weakly
                                                                            informative
    ``sd_y0``                 HalfNormal(2 s_0*)               attr. unit   lot-to-lot spread of the initial
                                                                            value
    ``sd_activation_energy``  HalfNormal(10)                   kJ/mol       ``ea_by_lot`` only
    ``sigma``                 HalfNormal(s_y*)                 attr. unit   assay and sampling error
    ``nu``                    Gamma(2, 0.1)                    –            Student-t tails (Juárez & Steel
                                                                            2010)
    ``sb_m``                  Beta(1, 4)                       –            autocatalytic exponent, mostly
                                                                            near 0 (P(m > 0.5) = 6 %)
    ``sb_n``                  LogNormal(0, 0.5)                –            reaction order around 1
                                                                            (0.44–2.3, 90 %)
    ========================  ===============================  ===========  ===================================

    Notes
    -----
    Data-scaled defaults (as bambi does): ``s_y`` is the standard deviation of the usable values;
    ``s_0`` the standard deviation of the results at each lot's first time (lot-to-lot spread and
    assay error together; ``s_y`` would be dominated by the degradation at the hot conditions);
    ``y0_guess`` the median over lots of their mean first-time result; ``k_scale``
    is the geometric mean over conditions of ``|slope_c| / |y0 − y_∞|`` (the pooled within-lot
    least-squares slope at condition ``c`` as a fraction of the total change per time unit),
    brought to ``T_ref`` with ``E_a`` = the prior median. A prior you give replaces the default
    entirely; a default prior of the same distribution without a parameter gets it from the data.
    With one storage temperature the data say nothing about ``E_a``: :meth:`fit` refuses unless
    you give your own ``activation_energy`` prior (from earlier studies), which the posterior then
    simply carries into predictions at other temperatures.
    """

    model_type = "StabilityModel"
    config_fields = ("kinetics", "reference_temperature", "direction", "asymptote", "likelihood", "ea_by_lot")
    default_priors: ClassVar[dict[str, Prior]] = {
        "activation_energy": Prior(
            "LogNormal",
            {"mu": float(np.log(90.0)), "sigma": 0.35},
            "kJ/mol",
            "protein degradation 50-160 kJ/mol (90 %)",
        ),
        "k_ref": Prior("LogNormal", {"sigma": 2.0}, "1/time unit", "rate at T_ref centred on the data's rate"),
        "sd_log_k_ref": Prior(
            "LogNormal",
            {"mu": float(np.log(0.15)), "sigma": 0.6},
            "log",
            "lot-to-lot CV of the rate 6-40 % (90 %), kept off 0 (no funnel)",
        ),
        "y0": Prior("Normal", {}, "attribute unit", "initial value: data median, 2.5 data sd"),
        "sd_y0": Prior("HalfNormal", {}, "attribute unit", "lot-to-lot spread of the initial value (2 s_0)"),
        "sd_activation_energy": Prior("HalfNormal", {"sigma": 10.0}, "kJ/mol", "lot-to-lot spread of Ea"),
        "sigma": Prior("HalfNormal", {}, "attribute unit", "assay and sampling error (data sd)"),
        "nu": Prior("Gamma", {"alpha": 2.0, "beta": 0.1}, "", "Student-t tails, robust to outliers"),
        "sb_m": Prior("Beta", {"alpha": 1.0, "beta": 4.0}, "", "autocatalytic exponent, mostly near 0"),
        "sb_n": Prior("LogNormal", {"mu": 0.0, "sigma": 0.5}, "", "reaction order around 1 (0.44-2.3)"),
    }

    def __init__(
        self,
        kinetics: str = "first_order",
        reference_temperature: float = 5.0,
        priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
        sampler: Mapping[str, Any] | None = None,
        direction: str | None = None,
        *,
        asymptote: float | None = None,
        likelihood: str = "normal",
        ea_by_lot: bool = False,
    ) -> None:
        super().__init__(priors, sampler)
        require_kinetics(kinetics, function="StabilityModel")
        if direction not in (None, "decrease", "increase"):
            raise ConfigError(f"direction must be 'decrease', 'increase' or None (infer); got {direction!r}.")
        if likelihood not in _LIKELIHOODS:
            raise ConfigError(f"likelihood must be one of {', '.join(_LIKELIHOODS)}; got {likelihood!r}.")
        t_ref = float(reference_temperature)
        if not (np.isfinite(t_ref) and t_ref > -KELVIN):
            raise ConfigError(f"reference_temperature must be a temperature in °C; got {reference_temperature!r}.")
        if asymptote is not None and not np.isfinite(asymptote):
            raise ConfigError(f"asymptote must be a finite number in the attribute's unit; got {asymptote!r}.")
        if kinetics == "sestak_berggren" and "adaptation" not in (sampler or {}):
            self.sampler["adaptation"] = "low_rank"  # m, n and k are strongly correlated
        self.kinetics = kinetics
        self.reference_temperature = t_ref
        self.direction = direction
        self.asymptote = None if asymptote is None else float(asymptote)
        self.likelihood = likelihood
        self.ea_by_lot = bool(ea_by_lot)

    # -- configuration (from the prepared data once there is some: load() restores it from there) --
    @property
    def config(self) -> dict[str, Any]:
        """Kinetics, reference temperature, direction, asymptote, likelihood, ``ea_by_lot``."""
        if self.data is not None:
            return self.data["config"]
        return {
            "kinetics": self.kinetics,
            "reference_temperature": self.reference_temperature,
            "direction": self.direction,
            "asymptote": self.asymptote,
            "likelihood": self.likelihood,
            "ea_by_lot": self.ea_by_lot,
        }

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        study: Any,
        *,
        attribute: str | None = None,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
        batch_ids: Sequence[str] | None = None,
        conditions: Sequence[str] | None = None,
        histories: Mapping[Any, TemperatureHistory] | None = None,
    ) -> StabilityModel:
        """Sample the posterior of the model for one attribute of a stability study.

        Parameters
        ----------
        study
            A study frame (columns of :data:`bioworkbench.stability.STUDY_COLUMNS`: ``batch_id,
            condition, temperature_c, time, attribute, value`` at least; ``unit, time_unit, flag,
            source_file, source_line`` used when present). Flagged rows are excluded and counted.
        attribute
            The attribute to model (required).
        draws, tune, chains, random_seed, progressbar
            Sampler settings (defaults from ``sampler``).
        batch_ids, conditions
            Restrict to these lots / condition labels (default: all).
        histories
            Temperature histories that replace the constant temperature of some series: keys
            ``(batch_id, condition)`` (or a ``batch_id`` whose rows are all in one condition).

        Returns
        -------
        StabilityModel
            ``self``, with ``.idata`` and ``.sampling``.

        Raises
        ------
        ConfigError
            No or an unknown attribute (the valid ones are listed), one storage temperature
            without an informative ``activation_energy`` prior, an undecidable direction.
        SchemaError
            Missing columns; rows without a temperature, time or value (each row and lot named);
            a lot measured at a single time; mixed units.
        """
        super().fit(
            study,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            progressbar=progressbar,
            attribute=attribute,
            batch_ids=batch_ids,
            conditions=conditions,
            histories=histories,
        )
        if self.data["config"]["likelihood"] == "normal":
            self._add_initial_values(random_seed)
        return self

    def _prepare(
        self,
        data: Any,
        *,
        attribute: str | None = None,
        batch_ids: Sequence[str] | None = None,
        conditions: Sequence[str] | None = None,
        histories: Mapping[Any, TemperatureHistory] | None = None,
    ) -> dict[str, Any]:
        if isinstance(data, dict) and "exposure" in data:  # already prepared
            return data
        rows, meta = _usable_rows(data, attribute=attribute, batch_ids=batch_ids, conditions=conditions)
        cfg = self.config
        lots = sorted(rows["batch_id"].unique().to_list())
        hist = _resolve_histories(histories, rows)
        exposure, temps = _exposure(rows, hist)
        n_temps = len({round(t, 9) for t in rows["temperature_c"].to_list()} | set(temps))
        if n_temps < 2 and self.priors["activation_energy"] == self.default_priors["activation_energy"]:
            t_only = rows["temperature_c"][0]
            raise ConfigError(
                f"{attribute}: every usable row is at {t_only:g} °C. With one storage temperature the data say "
                "nothing about the activation energy, so an accelerated (Arrhenius) model cannot predict other "
                "temperatures. Add a condition at another temperature, or give an informative prior, e.g. "
                "priors={'activation_energy': {'dist': 'LogNormal', 'mu': log(Ea), 'sigma': 0.1}} from earlier studies."
            )
        direction, inferred = _direction(rows, cfg["direction"])
        unit = meta["unit"]
        asym = cfg["asymptote"]
        if asym is None:
            if direction == "decrease":
                asym = 0.0
            elif unit is not None and unit.strip().startswith("%"):
                asym = 100.0
            else:
                raise ConfigError(
                    f"{attribute} increases (unit {unit!r}); give asymptote= (its value at complete degradation), "
                    "e.g. StabilityModel(asymptote=100.0) for a percentage."
                )
        pe = self.priors["activation_energy"]
        ea_guess = float(np.exp(pe.params["mu"])) if pe.dist == "LogNormal" and "mu" in pe.params else 90.0
        scales = _scales(rows, asym, ea_guess, cfg["reference_temperature"])
        y0g = scales["y0_guess"]
        if (direction == "decrease" and not y0g > asym) or (direction == "increase" and not y0g < asym):
            raise ConfigError(
                f"{attribute} is {'decreasing' if direction == 'decrease' else 'increasing'} from about {y0g:g} "
                f"but the asymptote (value at complete degradation) is {asym:g}: it must lie "
                f"{'below' if direction == 'decrease' else 'above'} the initial value. Give asymptote= or direction=."
            )
        lot_idx = {b: i for i, b in enumerate(lots)}
        centre, lot_sd, c0 = _centre_and_precision(
            rows, lots, exposure, temps, asym, scales, cfg["reference_temperature"], self._sb_guess(cfg["kinetics"])
        )
        cond = rows.group_by("condition").agg(pl.col("temperature_c").first()).sort("temperature_c", "condition")
        return {
            "config": {**cfg, "direction": direction, "direction_inferred": inferred, "asymptote": float(asym)},
            "attribute": attribute,
            "unit": unit,
            "time_unit": meta["time_unit"],
            "lots": lots,
            "conditions": {c: float(t) for c, t in cond.iter_rows()},
            "lot": [lot_idx[b] for b in rows["batch_id"].to_list()],
            "condition": rows["condition"].to_list(),
            "time": rows["time"].to_list(),
            "value": rows["value"].to_list(),
            "temperatures_c": temps,
            "exposure": exposure.tolist(),
            "histories": [{"batch_id": b, "condition": c, "history": h.to_dict()} for (b, c), h in hist.items()],
            "scales": scales,
            "centre_temperature_c": centre,
            "log_k_data_sd": lot_sd,
            "log_k_centre_guess": c0,
            "n_flagged": meta["n_flagged"],
            "source_files": meta["source_files"],
            "t_max": float(rows["time"].max()),
        }

    def _structure(self, d: dict[str, Any]) -> tuple:
        c = d["config"]
        return (
            len(d["lots"]),
            padded_size(len(d["value"]), 64),
            padded_size(len(d["temperatures_c"]), 4),
            c["kinetics"],
            c["likelihood"],
            bool(c["ea_by_lot"]),
        )

    def _padded(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        _, no, nk, *_ = self._structure(d)
        n, k = len(d["value"]), len(d["temperatures_c"])
        expo = np.zeros((no, nk))
        expo[:n, :k] = np.asarray(d["exposure"], float).reshape(n, k)
        t_ref = d["config"]["reference_temperature"] + KELVIN
        dinv = np.zeros(nk)
        dinv[:k] = 1.0 / (np.asarray(d["temperatures_c"], float) + KELVIN) - 1.0 / t_ref
        pad = no - n
        return {
            "value": np.concatenate([np.asarray(d["value"], float), np.zeros(pad)]),
            "lot": np.concatenate([np.asarray(d["lot"], "int64"), np.zeros(pad, "int64")]),
            "w": np.concatenate([np.ones(n), np.zeros(pad)]),
            "exposure": expo,
            "inv_temperature_diff": dinv,
            "inv_centre_diff": np.asarray(1.0 / (d["centre_temperature_c"] + KELVIN) - 1.0 / t_ref),
            "log_k_data_sd": np.asarray(d["log_k_data_sd"], float),
            "log_k_centre_guess": np.asarray(d["log_k_centre_guess"], float),
            "asymptote": np.asarray(d["config"]["asymptote"], float),
        }

    def _sb_guess(self, kinetics: str) -> tuple[float, float] | None:
        """Prior medians of the Šesták–Berggren exponents (defaults when the priors are of other families)."""
        if kinetics != "sestak_berggren":
            return None
        pm_, pn = self.priors["sb_m"], self.priors["sb_n"]
        m = 1.0 - 0.5 ** (1.0 / pm_.params["beta"]) if pm_.dist == "Beta" and pm_.params.get("alpha") == 1.0 else 0.16
        n = float(np.exp(pn.params["mu"])) if pn.dist == "LogNormal" and "mu" in pn.params else 1.0
        return float(min(m, 0.9)), n

    def _auto_params(self, d: dict[str, Any]) -> dict[str, dict[str, str]]:
        """Per prior, the parameters to fill from the data (``pm.Data`` names)."""
        out = {}
        for name, fill in _AUTO.items():
            p = self.priors[name]
            if p.dist != self.default_priors[name].dist:
                continue
            missing = {k: f"prior_{name}_{k}" for k, src in fill.items() if k not in p.params}
            if missing:
                out[name] = missing
        return out

    def _auto_values(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        s = d["scales"]
        vals = {}
        for name, fill in self._auto_params(d).items():
            for k, data_name in fill.items():
                vals[data_name] = np.asarray(s[_AUTO[name][k]], float)
        return vals

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        return self._padded(d) | self._auto_values(d)

    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        nb, _, _, kinetics, likelihood, ea_by_lot = self._structure(d)
        arr = self._padded(d)
        auto, auto_values = self._auto_params(d), self._auto_values(d)
        p = self.priors
        with pm.Model(coords={"lot": np.arange(nb)}) as model:
            y = pm.Data("value", arr["value"])
            lot = pm.Data("lot_index", arr["lot"])
            w = pm.Data("w", arr["w"])
            expo = pm.Data("exposure", arr["exposure"])
            dinv = pm.Data("inv_temperature_diff", arr["inv_temperature_diff"])
            cinv = pm.Data("inv_centre_diff", arr["inv_centre_diff"])
            y_inf = pm.Data("asymptote", arr["asymptote"])
            fill = {name: {k: pm.Data(dn, auto_values[dn]) for k, dn in auto.get(name, {}).items()} for name in _AUTO}
            ea = p["activation_energy"].create("activation_energy")
            k_ref = p["k_ref"].create("k_ref", **fill["k_ref"])
            sd_k = p["sd_log_k_ref"].create("sd_log_k_ref")
            y0 = p["y0"].create("y0", **fill["y0"])
            sd_y0 = p["sd_y0"].create("sd_y0", **fill["sd_y0"])
            if ea_by_lot:
                sd_ea = p["sd_activation_energy"].create("sd_activation_energy")
                z_ea = pm.Normal("z_activation_energy", 0.0, 1.0, dims="lot")
                ea_b = pm.Deterministic("activation_energy_b", ea + sd_ea * z_ea, dims="lot")
            else:
                ea_b = pt.broadcast_to(ea, (nb,))
            # lots' rates at the centre temperature T_c (where the data inform them best): independent of
            # E_a a posteriori; log k_ref,b = log k_c,b + E_a,b/R (1/T_c - 1/T_ref) ~ N(log k_ref, sd_log_k_ref)
            shift = ea_b / R_KJ * cinv
            mu_c = pt.log(k_ref) - shift
            if kinetics == "sestak_berggren":
                sb_m, sb_n = p["sb_m"].create("sb_m"), p["sb_n"].create("sb_n")
                # kinetic compensation: the data fix the time to a given extent, not k, m and n one by one;
                # sample log(k_c / g(α*)) = -log(time to α* at T_c) instead of log k_c (a shift given m, n)
                sb_shift = pt.log(_reduced_time_pt(_SB_ALPHA_STAR, sb_m, sb_n))
                mu_c = mu_c - sb_shift
            else:
                sb_shift = 0.0
            # partially centred (see the module docstring): log k_c,b ~ N(mu_c, sd_k) whatever lam_b
            s_b = pm.Data("log_k_data_sd", arr["log_k_data_sd"])
            c0 = pm.Data("log_k_centre_guess", arr["log_k_centre_guess"])
            lam = sd_k**2 / (sd_k**2 + s_b**2)
            mu0 = mu_c - c0
            x_b = pm.Normal("log_k_partial_b", lam * mu0, sd_k**lam, dims="lot")
            log_kc = c0 + mu0 + sd_k ** (1.0 - lam) * (x_b - lam * mu0)
            k_b = pm.Deterministic("k_ref_b", pt.exp(log_kc + sb_shift + shift), dims="lot")
            if ea_by_lot:
                factor = pt.exp(-ea_b[:, None] / R_KJ * dinv[None, :])  # (lot, temperature)
                t_eq = pt.sum(expo * factor[lot], axis=1)
            else:
                t_eq = pt.dot(expo, pt.exp(-ea / R_KJ * dinv))
            theta = k_b[lot] * t_eq
            if kinetics == "sestak_berggren":
                alpha = _extent_pt(theta, kinetics, sb_m, sb_n)
            else:
                alpha = _extent_pt(theta, kinetics)
            sigma = p["sigma"].create("sigma", **fill["sigma"])
            v = 1.0 - alpha
            if likelihood == "normal":
                # y0_b enters the mean linearly: integrate it out exactly (Sherman-Morrison per lot); its
                # posterior draws are made after sampling (see _draw_initial_values)
                r = y - y_inf - (y0 - y_inf) * v
                onehot = pt.eq(lot[:, None], pt.arange(nb)[None, :]) * w[:, None]
                s_vv, s_vr, s_rr, n_b = (pt.dot(x, onehot) for x in (v**2, v * r, r**2, w))
                s2, t2 = sigma**2, sd_y0**2
                den = 1.0 + t2 * s_vv / s2
                loglik = -0.5 * (n_b * pt.log(2 * np.pi * s2) + pt.log(den) + s_rr / s2 - t2 / s2**2 * s_vr**2 / den)
                pm.Potential("loglik", loglik.sum())
            else:
                y0_b = pm.Normal("y0_b", y0, sd_y0, dims="lot")
                mean = y_inf + (y0_b[lot] - y_inf) * v
                dist = pm.StudentT.dist(nu=p["nu"].create("nu"), mu=mean, sigma=sigma)
                pm.Potential("loglik", (w * pm.logp(dist, y)).sum())
        return model
