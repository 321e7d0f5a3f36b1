"""Bayesian accelerated stability: degradation kinetics with an Arrhenius temperature dependence.

A stability study measures an attribute (potency, purity, aggregates …) of several lots at several
storage conditions over time. :class:`StabilityModel` fits all lots and conditions jointly:

*Kinetics* of the extent of degradation ``α(t) ∈ [0, 1)`` at constant temperature ``T``:

============================  =========================================  =================================
``kinetics``                  rate law                                   extent at reduced time ``θ = k t``
============================  =========================================  =================================
``"zero_order"``              ``dα/dt = k``                              ``α = min(θ, 1)``
``"first_order"``             ``dα/dt = k (1 − α)``                      ``α = 1 − exp(−θ)``
``"sestak_berggren"``         ``dα/dt = k α^m (1 − α)^n``, 0 ≤ m < 1,    ``g(α) = θ`` with
                              n > 0                                      ``g(α) = ∫₀^α x^−m (1 − x)^−n dx``
============================  =========================================  =================================

The Šesták–Berggren form (Šesták & Berggren 1971, Thermochim Acta 3:1) is solved through its
integral form ``g(α) = k t`` (the ICTAC kinetics committee's convention, Vyazovkin et al. 2011,
Thermochim Acta 520:1): for ``m > 0`` the rate vanishes at ``α = 0`` and the solution taken is the
one that leaves 0 (``α ≈ ((1 − m) θ)^{1/(1 − m)}`` early on, a lag phase). ``g`` has no closed
form in general, so it is computed numerically (see :func:`degradation_extent`: a fixed 128-point
grid in ``α``, 4-point Gauss–Legendre quadrature in the variable ``σ = α^{1−m}`` that removes the
singularity at 0, and Newton steps for the inverse; accurate to ~1e-8 against
``scipy.special.betaincinv`` and ``scipy.integrate.solve_ivp``; the extent is capped at
``1 − 1e-6``). With ``m = 0`` it is the n-th order model of AccelStab (Francq et al.; Clénet 2018,
Eur J Pharm Biopharm 125:76), ``α = 1 − [1 − (1 − n) θ]^{1/(1 − n)}``.

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
:func:`_centre_and_precision`), an exact reparameterisation that leaves the model unchanged.

*Temperature histories* (storage with excursions; :class:`~bioworkbench.stability.TemperatureHistory`):
each rate law is autonomous and separable, ``dα/dt = k(T) f(α)``, so a lot whose temperature changes
has the extent of a lot held at ``T_ref`` for the equivalent time
``t_eq = Σ Δt_i exp(−E_a/R (1/T_i − 1/T_ref))`` — exact, no ODE needed. Constant conditions are the
special case ``t_eq = t · k(T)/k_ref``; in the model every observation carries the time it spent at
each distinct temperature, so lots with excursions can be fitted too (``fit(..., histories=...)``).

*Attribute* (``y``, in the study's unit) from the extent::

    y = y_∞ + (y0 − y_∞) · (1 − α)

``y_∞`` (``asymptote``) is the value at complete degradation: 0 for a decreasing attribute (so
``y = y0 (1 − α)``: ``α`` is the fraction of the initial potency or purity lost) and, for an
increasing attribute on a percent scale (aggregates, fragments, acidic variants), 100 %: the
attribute grows as the remaining fraction ``100 − y`` decays (``y = y0 + (100 − y0) α``). Give
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

NUTS runs at target acceptance 0.9 (``nutpie_target_accept``; nutpie's own default, 0.8, left a
single divergent transition in about one fit in five). Checked on 30 simulated studies (seeds
100–129, first order, 4 conditions × 5 lots, 2 chains × 1,000 draws): no divergences, and the 90 %
intervals covered the true ``E_a`` in 90 %, the lots' ``k_ref`` in 88 %, their ``y0`` in 94 % and
their potency after 24 months at 5 °C in 92 % of the cases.

``k_ref`` is the median rate of the lot population at ``T_ref`` (1/time unit of the study). Intervals
everywhere are equal-tailed posterior intervals of mass ``prob``. A *new lot* (``batch_id=None``)
draws its ``y0``, ``k_ref`` (and ``E_a``) from the fitted population, so lot-to-lot variation is in
its intervals.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, Issue, ModelNotFittedError, SchemaError
from bioworkbench.models.base import BayesModel, Prior
from bioworkbench.models.inputs import _check_prob
from bioworkbench.schema import suggest
from bioworkbench.stability.degradation import (
    _GL_W,
    _GL_X,
    _NEWTON_STEPS,
    _SB_ALPHA,
    KINETICS,
    degradation_extent,
    extent_to_reduced_time,
)
from bioworkbench.stability.temperature import KELVIN, R_KJ, TemperatureHistory

__all__ = ["KINETICS", "StabilityModel", "degradation_extent", "extent_to_reduced_time"]

_LIKELIHOODS = ("normal", "student_t")
_STUDY_CORE = ("batch_id", "condition", "temperature_c", "time", "attribute", "value")
#: a default prior's parameters that are filled from the data when the prior leaves them out
_AUTO = {
    "k_ref": {"mu": "log_k_scale"},
    "y0": {"mu": "y0_guess", "sigma": "y0_sigma"},
    "sd_y0": {"sigma": "y0_spread"},
    "sigma": {"sigma": "y_scale"},
}

# -- kinetics in PyTensor (the NumPy version is bioworkbench.stability.degradation) ---------------
#: reference extent of the Šesták–Berggren reparameterisation (see StabilityModel._build)
_SB_ALPHA_STAR = 0.1
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
class StabilityModel(BayesModel):
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
    #: nutpie's NUTS target acceptance (its own default is 0.8): see "How it is sampled"
    nutpie_target_accept = 0.9
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
        if kinetics not in KINETICS:
            raise ConfigError(f"StabilityModel: unknown kinetics {kinetics!r}. " + suggest(kinetics, KINETICS))
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
        from bioworkbench.models.growth import _bucket

        c = d["config"]
        return (
            len(d["lots"]),
            _bucket(len(d["value"]), 64),
            _bucket(len(d["temperatures_c"]), 4),
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

    # -- draws and curves ---------------------------------------------------------------------
    def _lot_draws(self, batch_id: str | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Posterior draws ``(S,)`` of one lot's (or a new lot's) parameters."""
        self._require_fit()
        d, cfg = self.data, self.data["config"]
        out: dict[str, np.ndarray] = {}
        if batch_id is None:
            s = self.posterior_draws("y0").shape[0]
            out["y0"] = self.posterior_draws("y0") + self.posterior_draws("sd_y0") * rng.standard_normal(s)
            out["k"] = self.posterior_draws("k_ref") * np.exp(
                self.posterior_draws("sd_log_k_ref") * rng.standard_normal(s)
            )
            ea = self.posterior_draws("activation_energy")
            if cfg["ea_by_lot"]:
                ea = ea + self.posterior_draws("sd_activation_energy") * rng.standard_normal(s)
            out["ea"] = ea
        else:
            if batch_id not in d["lots"]:
                raise ConfigError(
                    f"lot {batch_id!r} was not in the data this model was fitted on. "
                    + suggest(batch_id, d["lots"], what="Fitted lots")
                    + " Pass batch_id=None for a new lot from the population."
                )
            i = d["lots"].index(batch_id)
            out["y0"] = self.posterior_draws("y0_b")[:, i]
            out["k"] = self.posterior_draws("k_ref_b")[:, i]
            out["ea"] = (
                self.posterior_draws("activation_energy_b")[:, i]
                if cfg["ea_by_lot"]
                else self.posterior_draws("activation_energy")
            )
        if cfg["kinetics"] == "sestak_berggren":
            out["m"], out["n"] = self.posterior_draws("sb_m"), self.posterior_draws("sb_n")
        out["sigma"] = self.posterior_draws("sigma")
        if cfg["likelihood"] == "student_t":
            out["nu"] = self.posterior_draws("nu")
        return out

    def _history(self, condition: Any) -> TemperatureHistory:
        conds = (self.data or {}).get("conditions", {})
        if condition is None:
            raise ConfigError(
                "an accelerated-stability model predicts at a storage condition: give condition= a temperature in °C, "
                "a TemperatureHistory, or one of the study's conditions: " + ", ".join(map(repr, conds)) + "."
            )
        if isinstance(condition, TemperatureHistory):
            return condition
        if isinstance(condition, str):
            if condition not in conds:
                raise ConfigError(
                    f"condition {condition!r} is not in the study. "
                    + suggest(condition, conds, what="Conditions")
                    + " Or give a temperature in °C or a TemperatureHistory."
                )
            return TemperatureHistory.constant(conds[condition], label=condition)
        try:
            temp = float(condition)
        except (TypeError, ValueError):
            raise ConfigError(
                f"condition must be a temperature in °C, a TemperatureHistory or a condition label; got {condition!r}."
            ) from None
        return TemperatureHistory.constant(temp)

    def _curves(self, draws: dict[str, np.ndarray], hist: TemperatureHistory, times: np.ndarray) -> np.ndarray:
        """Mean attribute ``(S, T)`` for parameter draws along a temperature history."""
        cfg = self.data["config"]
        t_eq = hist.equivalent_time(
            times, activation_energy_kj=draws["ea"], reference_temperature_c=cfg["reference_temperature"]
        )
        theta = draws["k"][:, None] * t_eq
        alpha = degradation_extent(theta, cfg["kinetics"], draws.get("m", 0.0), draws.get("n", 1.0))
        y_inf = cfg["asymptote"]
        return y_inf + (draws["y0"] - y_inf)[:, None] * (1.0 - alpha)

    def _noise(self, draws: dict[str, np.ndarray], shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        sd = draws["sigma"][:, None]
        if "nu" in draws:
            return sd * rng.standard_t(draws["nu"][:, None], size=shape)
        return sd * rng.standard_normal(shape)

    def _times(self, times: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(times if times is not None else [], dtype=float))
        if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ConfigError(f"times must be a non-empty array of finite times ≥ 0 ({self.data['time_unit']}).")
        return t

    # -- results --------------------------------------------------------------------------------
    def predict(
        self,
        *,
        condition: float | str | TemperatureHistory | None = None,
        times: Sequence[float] | np.ndarray | None = None,
        batch_id: str | None = None,
        prob: float = 0.9,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """The attribute over time at a storage condition, with intervals.

        Parameters
        ----------
        condition
            Temperature in °C, a :class:`TemperatureHistory` (storage with excursions) or a
            condition label of the study.
        times
            Times (study time unit) since the start of storage.
        batch_id
            A fitted lot, or ``None`` for a new lot drawn from the population (lot-to-lot
            variation included).
        prob
            Mass of the equal-tailed interval.
        kind
            ``"mean"``: the lot's true attribute (posterior of the curve); ``"predictive"``: a
            future measurement (adds the residual error).
        random_seed
            Seed of the new-lot and measurement draws.

        Returns
        -------
        polars.DataFrame
            ``batch_id`` (null for a new lot), ``condition``, ``time``, ``attribute``, ``mean``,
            ``lower``, ``upper``, ``prob``, ``unit``.
        """
        self._require_fit()
        if kind not in ("mean", "predictive"):
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        _check_prob(prob)
        hist = self._history(condition)
        t = self._times(times)
        rng = np.random.default_rng(random_seed)
        draws = self._lot_draws(batch_id, rng)
        cur = self._curves(draws, hist, t)
        if kind == "predictive":
            cur = cur + self._noise(draws, cur.shape, rng)
        lo, hi = np.quantile(cur, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id] * t.size, dtype=pl.String),
                "condition": hist.describe(),
                "time": t,
                "attribute": self.data["attribute"],
                "mean": cur.mean(axis=0),
                "lower": lo,
                "upper": hi,
                "prob": float(prob),
                "unit": pl.Series([self.data["unit"]] * t.size, dtype=pl.String),
            }
        )

    def _limit(self, lower: float | None, upper: float | None, y0_mean: float) -> tuple[float, str]:
        cfg = self.data["config"]
        if (lower is None) == (upper is None):
            raise ConfigError(
                "time_to_limit: give exactly one of lower= or upper= (the limit the attribute moves towards)."
            )
        side, lim = ("lower", float(lower)) if lower is not None else ("upper", float(upper))
        want = "lower" if cfg["direction"] == "decrease" else "upper"
        if side != want:
            raise ConfigError(
                f"{self.data['attribute']} {cfg['direction']}s, so it moves away from an {side} limit and never "
                f"reaches it; give {want}= instead."
            )
        if (side == "lower" and not lim < y0_mean) or (side == "upper" and not lim > y0_mean):
            raise ConfigError(
                f"the {side} limit {lim:g} is on the wrong side of the initial value ({y0_mean:.4g} "
                f"{self.data['unit']}, posterior mean): the attribute starts out of specification. "
                "Check the limit and its unit."
            )
        return lim, side

    def time_to_limit(
        self,
        *,
        lower: float | None = None,
        upper: float | None = None,
        condition: float | str | TemperatureHistory | None = None,
        batch_id: str | None = None,
        prob: float = 0.9,
        horizon: float | None = None,
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Posterior of the time at which the attribute's mean curve (of a lot, or of a new lot)
        reaches a specification limit.

        Parameters
        ----------
        lower, upper
            The limit the attribute moves towards (exactly one: ``lower`` for a decreasing
            attribute, ``upper`` for an increasing one).
        condition
            Temperature (°C), :class:`TemperatureHistory` or condition label.
        batch_id
            A fitted lot, or ``None``: a new lot from the population.
        prob
            Mass of the equal-tailed interval.
        horizon
            Crossings later than this (study time unit) count as beyond the horizon (default:
            only draws that never cross).
        random_seed
            Seed of the new-lot draws.

        Returns
        -------
        polars.DataFrame
            One row: ``batch_id, condition, limit, side, mean, median, lower, upper, prob,
            prob_beyond_horizon, horizon, time_unit``. Draws beyond the horizon are ``inf``, so
            ``upper`` (and ``median``) are ``inf`` when more than ``(1 − prob)/2`` (half) of them
            are; ``mean`` is ``inf`` as soon as one is.

        Notes
        -----
        Exact per draw, no time grid: the extent at the limit is
        ``α* = (y0 − limit)/(y0 − y_∞)``; the reduced time is ``θ* = g(α*)``
        (:func:`extent_to_reduced_time`), the equivalent time ``θ*/k_ref`` and the time the
        history needs to accumulate it (:meth:`TemperatureHistory.time_at_equivalent`). A draw
        whose initial value is already beyond the limit has time 0.
        """
        self._require_fit()
        _check_prob(prob)
        hist = self._history(condition)
        cfg = self.data["config"]
        draws = self._lot_draws(batch_id, np.random.default_rng(random_seed))
        lim, side = self._limit(lower, upper, float(draws["y0"].mean()))
        y_inf = cfg["asymptote"]
        a_star = (draws["y0"] - lim) / (draws["y0"] - y_inf)
        theta = extent_to_reduced_time(
            np.clip(a_star, 0.0, 1.0), cfg["kinetics"], draws.get("m", 0.0), draws.get("n", 1.0)
        )
        theta = np.where(a_star <= 0, 0.0, theta)
        t = hist.time_at_equivalent(
            theta / draws["k"], activation_energy_kj=draws["ea"], reference_temperature_c=cfg["reference_temperature"]
        )
        if horizon is not None:
            t = np.where(t > float(horizon), np.inf, t)
        beyond = float(np.mean(np.isinf(t)))
        # with draws at infinity, no interpolation (inf - inf): the quantile is a draw
        method = "inverted_cdf" if beyond else "linear"
        lo, med, hi = np.quantile(t, [(1 - prob) / 2, 0.5, (1 + prob) / 2], method=method)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id], dtype=pl.String),
                "condition": hist.describe(),
                "limit": lim,
                "side": side,
                "mean": float(np.mean(t)) if beyond == 0 else float("inf"),
                "median": float(med),
                "lower": float(lo),
                "upper": float(hi),
                "prob": float(prob),
                "prob_beyond_horizon": beyond,
                "horizon": pl.Series([None if horizon is None else float(horizon)], dtype=pl.Float64),
                "time_unit": self.data["time_unit"],
            }
        )

    def prob_in_spec(
        self,
        *,
        times: Sequence[float] | np.ndarray,
        lower: float | None = None,
        upper: float | None = None,
        condition: float | str | TemperatureHistory | None = None,
        batch_id: str | None = None,
        kind: str = "mean",
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Probability that a lot stays within specification up to each time.

        Parameters
        ----------
        times
            Times (study time unit), e.g. candidate shelf lives.
        lower, upper
            Specification limits (at least one).
        condition
            Temperature (°C), :class:`TemperatureHistory` or condition label.
        batch_id
            ``None`` (default): a new lot from the population, so lot-to-lot variation counts;
            or a fitted lot.
        kind
            ``"mean"``: the lot's true attribute stays within ``[lower, upper]`` over ``[0, t]``;
            ``"predictive"``: a single measurement at ``t`` is within the limits (adds the
            residual error; a per-time probability).
        random_seed
            Seed of the new-lot and measurement draws.

        Returns
        -------
        polars.DataFrame
            ``batch_id, condition, time, prob, lower_limit, upper_limit``.

        Notes
        -----
        The mean curve is monotone in time (the extent never decreases), so it stays in
        ``[lower, upper]`` over ``[0, t]`` exactly when it is inside at 0 and at ``t``; the
        probability is the fraction of posterior draws for which that holds.
        """
        self._require_fit()
        if lower is None and upper is None:
            raise ConfigError("prob_in_spec: give lower=, upper= or both (the specification limits).")
        if kind not in ("mean", "predictive"):
            raise ConfigError(f"kind must be 'mean' or 'predictive'; got {kind!r}.")
        hist = self._history(condition)
        t = self._times(times)
        rng = np.random.default_rng(random_seed)
        draws = self._lot_draws(batch_id, rng)
        lo = -np.inf if lower is None else float(lower)
        hi = np.inf if upper is None else float(upper)
        if kind == "mean":
            cur = self._curves(draws, hist, np.concatenate([[0.0], t]))
            inside = (cur >= lo) & (cur <= hi)
            ok = inside[:, 1:] & inside[:, :1]
        else:
            cur = self._curves(draws, hist, t)
            cur = cur + self._noise(draws, cur.shape, rng)
            ok = (cur >= lo) & (cur <= hi)
        return pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id] * t.size, dtype=pl.String),
                "condition": hist.describe(),
                "time": t,
                "prob": ok.mean(axis=0),
                "lower_limit": pl.Series([None if lower is None else lo] * t.size, dtype=pl.Float64),
                "upper_limit": pl.Series([None if upper is None else hi] * t.size, dtype=pl.Float64),
            }
        )

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """Activation energy, ``k_ref``, ``y0``, the spreads and the residual sd, for the
        population and per lot, with ``mean, sd, lower, upper, prob`` (and r̂, bulk ESS)."""
        self._require_fit()
        _check_prob(prob)
        d, cfg = self.data, self.data["config"]
        unit, tu = d["unit"] or "", d["time_unit"] or "time unit"
        names = {
            "activation_energy": ("activation_energy", "kJ/mol"),
            "k_ref": ("k_ref", f"1/{tu}"),
            "y0": ("y0", unit),
            "sd_log_k_ref": ("sd_log_k_ref", "log"),
            "sd_y0": ("sd_y0", unit),
            "sigma": ("sigma", unit),
            "k_ref_b": ("k_ref", f"1/{tu}"),
            "y0_b": ("y0", unit),
        }
        if cfg["ea_by_lot"]:
            names |= {
                "sd_activation_energy": ("sd_activation_energy", "kJ/mol"),
                "activation_energy_b": ("activation_energy", "kJ/mol"),
            }
        if cfg["kinetics"] == "sestak_berggren":
            names |= {"sb_m": ("sb_m", ""), "sb_n": ("sb_n", "")}
        if cfg["likelihood"] == "student_t":
            names |= {"nu": ("nu", "")}
        index = {v: d["lots"] for v in ("k_ref_b", "y0_b", "activation_energy_b")}
        return self._summary_frame(names, index, prob)

    # -- prior predictive -------------------------------------------------------------------------
    def _obs_extent(self, draws: Mapping[str, np.ndarray]) -> np.ndarray:
        """Extent ``α`` of every observation ``(S, N)`` for flattened parameter draws."""
        d, cfg = self.data, self.data["config"]
        lot = np.asarray(d["lot"])
        expo = np.asarray(d["exposure"], float).reshape(len(lot), -1)
        dinv = 1.0 / (np.asarray(d["temperatures_c"]) + KELVIN) - 1.0 / (cfg["reference_temperature"] + KELVIN)
        if cfg["ea_by_lot"]:
            factor = np.exp(-draws["activation_energy_b"][:, :, None] / R_KJ * dinv)  # (S, lot, K)
            t_eq = np.einsum("nk,snk->sn", expo, factor[:, lot, :])
        else:
            t_eq = np.exp(-draws["activation_energy"][:, None] / R_KJ * dinv) @ expo.T  # (S, N)
        theta = draws["k_ref_b"][:, lot] * t_eq
        sb = cfg["kinetics"] == "sestak_berggren"
        return degradation_extent(theta, cfg["kinetics"], draws["sb_m"] if sb else 0.0, draws["sb_n"] if sb else 1.0)

    def _initial_values(self, draws: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Draws ``(S, lot)`` of the lots' initial values from their exact conditional distribution.

        With the normal likelihood ``y0_b`` is integrated out of the sampled model. Given the other
        parameters, ``y_i − y_∞ = (y0_b − y_∞) v_i + ε_i`` with ``v_i = 1 − α_i`` and
        ``y0_b ~ N(y0, sd_y0²)``, so ``y0_b`` is normal with precision ``1/sd_y0² + Σ v_i²/σ²`` and
        mean ``((y0 − y_∞)/sd_y0² + Σ v_i (y_i − y_∞)/σ²) / precision + y_∞`` (conjugate update).
        """
        d = self.data
        y_inf = d["config"]["asymptote"]
        v = 1.0 - self._obs_extent(draws)
        u = np.asarray(d["value"], float) - y_inf
        onehot = (np.asarray(d["lot"])[:, None] == np.arange(len(d["lots"]))[None, :]).astype(float)
        tau2, sig2 = draws["sd_y0"][:, None] ** 2, draws["sigma"][:, None] ** 2
        prec = 1.0 / tau2 + (v**2) @ onehot / sig2
        mean = ((draws["y0"][:, None] - y_inf) / tau2 + (v * u) @ onehot / sig2) / prec
        return y_inf + mean + rng.standard_normal(mean.shape) / np.sqrt(prec)

    def _add_initial_values(self, random_seed: int | None) -> None:
        import xarray as xr

        ds = self.idata["posterior"].to_dataset()
        c, s = ds.sizes["chain"], ds.sizes["draw"]
        draws = {k: ds[k].values.reshape(c * s, *ds[k].shape[2:]) for k in ds.data_vars}
        # a stream of its own, so the sampler's seed still reproduces everything
        rng = np.random.default_rng(None if random_seed is None else [int(random_seed), 7])
        y0_b = self._initial_values(draws, rng).reshape(c, s, -1)
        dims = ("chain", "draw", "lot")
        ds["y0_b"] = xr.DataArray(y0_b, dims=dims, coords={k: ds[k] for k in dims if k in ds.coords})
        self.idata["posterior"] = xr.DataTree(ds)

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        d, cfg = self.data, self.data["config"]
        c, s = prior.sizes["chain"], prior.sizes["draw"]
        draws = {k: prior[k].values.reshape(c * s, *prior[k].shape[2:]) for k in prior.data_vars}
        alpha = self._obs_extent(draws)
        lot = np.asarray(d["lot"])
        nb = len(d["lots"])
        y0_b = draws.get("y0_b")
        if y0_b is None:  # integrated out of the model: draw from the population
            y0_b = draws["y0"][:, None] + draws["sd_y0"][:, None] * rng.standard_normal((c * s, nb))
        y_inf = cfg["asymptote"]
        mean = y_inf + (y0_b[:, lot] - y_inf) * (1.0 - alpha)
        sd = draws["sigma"][:, None]
        if cfg["likelihood"] == "student_t":
            y = mean + sd * rng.standard_t(draws["nu"][:, None], size=mean.shape)
        else:
            y = mean + sd * rng.standard_normal(mean.shape)
        return xr.Dataset(
            {"value": (("chain", "draw", "obs"), y.reshape(c, s, -1))}, coords={"obs": np.arange(len(lot))}
        )

    def histories(self) -> dict[tuple[str, str], TemperatureHistory]:
        """The temperature histories the model was fitted with, by ``(batch_id, condition)``."""
        if self.data is None:
            raise ModelNotFittedError("StabilityModel has no data yet; call .fit(study, attribute=...) first.")
        return {
            (h["batch_id"], h["condition"]): TemperatureHistory.from_dict(h["history"]) for h in self.data["histories"]
        }


# -- data preparation -------------------------------------------------------------------------------
def _validated(study: Any) -> pl.DataFrame:
    """The study frame, checked and typed by :func:`bioworkbench.stability.validate_study`."""
    if isinstance(study, pl.LazyFrame):
        study = study.collect()
    if not isinstance(study, pl.DataFrame):
        raise ConfigError(
            "StabilityModel.fit takes a study frame (polars DataFrame, e.g. from bw.read_study); "
            f"got {type(study).__name__}."
        )
    missing = [c for c in _STUDY_CORE if c not in study.columns]
    if missing:
        raise SchemaError(
            [
                Issue(
                    f"column {c!r} is missing; a stability study needs {', '.join(_STUDY_CORE)}.",
                    column=c,
                    hint="read the table with bw.read_study, which maps and checks the columns.",
                )
                for c in missing
            ],
            context="the study frame",
        )
    from bioworkbench.stability.study import validate_study

    return validate_study(study)  # every study column, typed, in order


def _usable_rows(
    study: Any, *, attribute: str | None, batch_ids: Sequence[str] | None, conditions: Sequence[str] | None
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The rows of ``attribute`` the model learns from (unflagged, selected), checked; and metadata."""
    study = _validated(study)
    attrs = sorted(str(a) for a in study["attribute"].drop_nulls().unique().to_list())
    if attribute is None or attribute not in attrs:
        head = "no attribute given" if attribute is None else f"attribute {attribute!r} is not in the study"
        raise ConfigError(f"StabilityModel.fit: {head}. " + suggest(attribute or "", attrs, what="Attributes"))
    rows = study.filter(pl.col("attribute") == attribute)
    for what, sel, col in (("lot", batch_ids, "batch_id"), ("condition", conditions, "condition")):
        if sel is not None:
            known = set(rows[col].cast(pl.String).to_list())
            unknown = [s for s in sel if s not in known]
            if unknown:
                raise ConfigError(
                    f"{what}(s) {', '.join(map(repr, unknown))} have no {attribute} data. "
                    + suggest(unknown[0], known, what=f"{what.capitalize()}s")
                )
            rows = rows.filter(pl.col(col).is_in(list(sel)))
    flagged = rows.filter(pl.col("flag").is_not_null())
    rows = rows.filter(pl.col("flag").is_null())
    if flagged.height:
        warnings.warn(
            f"StabilityModel: {flagged.height} flagged {attribute} row(s) excluded "
            f"({', '.join(sorted(set(flagged['flag'].cast(pl.String).to_list())))}).",
            BioWorkbenchWarning,
            stacklevel=4,
        )
    issues = []
    for col, expect in (
        ("temperature_c", "a storage temperature in °C"),
        ("time", "a time ≥ 0"),
        ("value", "a number"),
    ):
        x = rows[col].cast(pl.Float64, strict=False)
        bad = (x.is_null() | ~x.is_finite()).fill_null(True)
        if col == "time":
            bad = bad | (x < 0).fill_null(False)
        for r in rows.filter(bad).iter_rows(named=True):
            issues.append(
                Issue(
                    f"{attribute} at condition {r['condition']!r}, time {r['time']}: expected {expect}, "
                    f"found {r[col]!r}.",
                    file=r["source_file"],
                    line=r["source_line"],
                    column=col,
                    batch=str(r["batch_id"]),
                    hint="fill it in, or flag the row (flag, flag_reason) to leave it out." if col != "time" else None,
                )
            )
    if issues:
        raise SchemaError(issues)
    rows = rows.with_columns(
        pl.col("temperature_c", "time", "value").cast(pl.Float64), pl.col("batch_id").cast(pl.String)
    )
    if rows.height == 0:
        raise SchemaError(f"no usable {attribute} rows (all {flagged.height} are flagged).")
    units = sorted({str(u) for u in rows["unit"].to_list() if u is not None})
    if len(units) > 1:
        raise SchemaError(
            [
                Issue(
                    f"{attribute} is reported in {len(units)} units ({', '.join(units)}); expected one. "
                    f"Lot {b} uses {u!r}.",
                    column="unit",
                    batch=b,
                    hint="convert to one unit when reading the study (bw.read_study converts known units).",
                )
                for b, u in rows.group_by("batch_id", "unit")
                .agg()
                .sort("batch_id")
                .select("batch_id", "unit")
                .iter_rows()
            ]
        )
    tunits = sorted({str(u) for u in rows["time_unit"].to_list() if u is not None})
    if len(tunits) > 1:
        raise SchemaError(f"{attribute}: times are in several units ({', '.join(tunits)}); expected one (e.g. month).")
    single = (
        rows.group_by("batch_id")
        .agg(
            n=pl.col("time").n_unique(),
            t=pl.col("time").first(),
            f=pl.col("source_file").first(),
            line=pl.col("source_line").first(),
        )
        .filter(pl.col("n") < 2)
        .sort("batch_id")
    )
    if single.height:
        raise SchemaError(
            [
                Issue(
                    f"lot {b} has {attribute} measured at a single time ({t:g}); its degradation rate cannot be "
                    "estimated from one time point.",
                    file=f,
                    line=line,
                    column="time",
                    batch=b,
                    hint="leave the lot out with batch_ids=[...] or add later time points.",
                )
                for b, _, t, f, line in single.iter_rows()
            ]
        )
    files = sorted({str(f) for f in rows["source_file"].to_list() if f is not None})
    meta = {
        "unit": units[0] if units else None,
        "time_unit": tunits[0] if tunits else "month",
        "n_flagged": flagged.height,
        "source_files": files,
    }
    return rows.sort("batch_id", "condition", "time"), meta


def _resolve_histories(
    histories: Mapping[Any, TemperatureHistory] | None, rows: pl.DataFrame
) -> dict[tuple[str, str], TemperatureHistory]:
    out: dict[tuple[str, str], TemperatureHistory] = {}
    if not histories:
        return out
    series = {(b, c) for b, c in rows.select("batch_id", "condition").unique().iter_rows()}
    for key, h in histories.items():
        if not isinstance(h, TemperatureHistory):
            raise ConfigError(f"histories[{key!r}] must be a TemperatureHistory; got {type(h).__name__}.")
        if isinstance(key, tuple):
            if tuple(key) not in series:
                raise ConfigError(
                    f"histories: no series {key!r} (batch_id, condition) in the data. Series: "
                    + ", ".join(map(str, sorted(series)))
                    + "."
                )
            out[(str(key[0]), str(key[1]))] = h
        else:
            conds = sorted(c for b, c in series if b == key)
            if len(conds) != 1:
                raise ConfigError(
                    f"histories[{key!r}]: lot {key!r} has {len(conds)} conditions ({', '.join(conds)}); "
                    "key the history by (batch_id, condition)."
                )
            out[(str(key), conds[0])] = h
    return out


def _exposure(rows: pl.DataFrame, hist: dict[tuple[str, str], TemperatureHistory]) -> tuple[np.ndarray, list[float]]:
    """Time each observation spent at each distinct temperature up to its time: ``(N, K)`` and the temperatures."""
    temp_obs = rows["temperature_c"].to_numpy()
    time = rows["time"].to_numpy()
    keys = list(zip(rows["batch_id"].to_list(), rows["condition"].to_list(), strict=True))
    per_hist = {
        k: h.exposure(np.asarray([t for kk, t in zip(keys, time, strict=True) if kk == k])) for k, h in hist.items()
    }
    temps = sorted(
        {round(float(t), 9) for i, t in enumerate(temp_obs) if keys[i] not in hist}
        | {round(float(t), 9) for ts, _ in per_hist.values() for t in ts}
    )
    col = {t: j for j, t in enumerate(temps)}
    expo = np.zeros((rows.height, len(temps)))
    counters = dict.fromkeys(hist, 0)
    for i, k in enumerate(keys):
        if k in hist:
            ts, dur = per_hist[k]
            for t, dt in zip(ts, dur[counters[k]], strict=True):
                expo[i, col[round(float(t), 9)]] += dt
            counters[k] += 1
        else:
            expo[i, col[round(float(temp_obs[i]), 9)]] = time[i]
    return expo, temps


def _centre_and_precision(
    rows: pl.DataFrame,
    lots: list[str],
    exposure: np.ndarray,
    temps: list[float],
    asymptote: float,
    scales: dict[str, float],
    reference_temperature: float,
    sb_guess: tuple[float, float] | None,
) -> tuple[float, list[float], float]:
    """Where and how precisely the data fix the lots' rates: ``T_c`` (°C), ``s_b`` per lot and ``c_0``.

    With a first-order guess of each observation's reduced time ``θ_i`` (rate ``k_scale`` and the
    prior median ``E_a``), an observation's Fisher information about ``log k`` is
    ``(|y0 − y_∞| θ_i e^{−θ_i} / s_0)²``. ``1/T_c`` is the information-weighted mean of the
    observations' (rate-weighted) ``1/T``; ``s_b = 1/sqrt(Σ information)`` over lot ``b``'s
    observations (at most 10: no information); ``c_0`` is the guessed ``log k`` at ``T_c`` (minus
    ``log g(α*)`` at the prior medians of ``m, n`` for Šesták–Berggren). They only steer the
    sampler's parameterisation: rough values suffice, and the model does not depend on them.
    """
    t_k = np.asarray(temps, float) + KELVIN
    inv_ref = 1.0 / (reference_temperature + KELVIN)
    f = np.exp(-scales["ea_guess"] / R_KJ * (1.0 / t_k - inv_ref))
    rate = exposure * f  # (N, K) equivalent time at each temperature
    t_eq = rate.sum(axis=1)
    theta = np.exp(scales["log_k_scale"]) * t_eq
    noise = scales["y0_spread"] / 2.0
    info = (abs(scales["y0_guess"] - asymptote) * theta * np.exp(-theta) / noise) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        inv_t = (rate / t_k).sum(axis=1) / t_eq
    ok = info > 0
    centre = float(1.0 / np.average(inv_t[ok], weights=info[ok]) - KELVIN) if ok.any() else reference_temperature
    lot_of = np.asarray([lots.index(b) for b in rows["batch_id"].to_list()])
    per_lot = np.bincount(lot_of, weights=info, minlength=len(lots))
    with np.errstate(divide="ignore"):
        sd = np.minimum(1.0 / np.sqrt(per_lot), 10.0)
    c0 = scales["log_k_scale"] - scales["ea_guess"] / R_KJ * (1.0 / (centre + KELVIN) - inv_ref)
    if sb_guess is not None:
        c0 -= float(np.log(extent_to_reduced_time(np.asarray(_SB_ALPHA_STAR), "sestak_berggren", *sb_guess)))
    return centre, sd.tolist(), float(c0)


def _direction(rows: pl.DataFrame, given: str | None) -> tuple[str, bool]:
    """``given``, or the sign of the mean within-series slope at the hottest condition with a slope."""
    if given is not None:
        return given, False
    slopes = (
        rows.group_by("batch_id", "condition")
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            slope=pl.cov("time", "value") / pl.col("time").var(),
            n=pl.col("time").n_unique(),
        )
        .filter((pl.col("n") >= 2) & pl.col("slope").is_finite())
    )
    if slopes.height == 0:
        raise ConfigError(
            "cannot tell whether the attribute decreases or increases; give direction='decrease' or 'increase'."
        )
    hottest = slopes.filter(pl.col("temperature_c") == pl.col("temperature_c").max())
    s = float(hottest["slope"].mean())
    if s == 0 or not np.isfinite(s):
        raise ConfigError(
            "the attribute does not change at the hottest condition; give direction='decrease' or 'increase'."
        )
    return ("decrease" if s < 0 else "increase"), True


def _scales(rows: pl.DataFrame, asymptote: float, ea_kj: float, reference_temperature: float) -> dict[str, float]:
    """Data scales of the default priors (see :class:`StabilityModel` Notes)."""
    from bioworkbench.stability.temperature import arrhenius_factor

    first = rows.filter(pl.col("time") == pl.col("time").min().over("batch_id"))
    y0g = float(first.group_by("batch_id").agg(pl.col("value").mean())["value"].median())
    values = rows["value"].to_numpy()
    sd = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    y_scale = sd if sd > 0 else max(abs(y0g) * 0.01, 1e-6)
    # spread of the initial results (lot-to-lot and assay): the scale of sd_y0. The sd of all values is
    # dominated by degradation at the hot conditions and would let sd_y0 wander (a funnel with 5 lots).
    v0 = first["value"].to_numpy()
    s0 = float(np.std(v0, ddof=1)) if v0.size > 1 else 0.0
    s0 = s0 if s0 > 0 else max(abs(y0g) * 0.01, 1e-6)
    span = abs(y0g - asymptote)
    per_cond = (
        rows.with_columns(
            tc=pl.col("time") - pl.col("time").mean().over("batch_id", "condition"),
            vc=pl.col("value") - pl.col("value").mean().over("batch_id", "condition"),
        )
        .group_by("condition")
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            sxy=(pl.col("tc") * pl.col("vc")).sum(),
            sxx=(pl.col("tc") ** 2).sum(),
        )
        .filter(pl.col("sxx") > 0)
    )
    t_max = float(rows["time"].max())
    logs = []
    for _, temp, sxy, sxx in per_cond.iter_rows():
        r = abs(sxy / sxx) / span if span > 0 else 0.0
        if r > 0 and np.isfinite(r):
            # the fraction of the total change per time unit at temp, brought to T_ref with the prior's Ea
            logs.append(np.log(r) - np.log(float(arrhenius_factor(temp, ea_kj, reference_temperature))))
    # no visible change: a rate that would give a 1 % change over the study
    log_k = float(np.mean(logs)) if logs else float(np.log(0.01 / max(t_max, 1e-12)))
    return {
        "y0_guess": y0g,
        "y0_sigma": 2.5 * y_scale,
        "y_scale": y_scale,
        "y0_spread": 2.0 * s0,
        "log_k_scale": log_k,
        "ea_guess": ea_kj,
    }
