"""The stability report's sections: the study in words, the Bayesian analysis at the storage condition,
and the ICH Q1E and Bayesian shelf lives side by side.

The numbers come from :func:`bioworkbench.stability.shelf_life` (ICH Q1E regression) and
:class:`bioworkbench.models.StabilityModel` (fitted here, by :func:`bayesian_analysis`); this module
arranges them and writes the sentences, so that the notebook stays thin. Every sentence is
:class:`~bioworkbench.text.Safe`: data text in it (lot ids, conditions, attributes, file names, error
messages) is escaped, so a report shows it as Markdown without it changing the page.

The pure tables of a study (:func:`~bioworkbench.stability.study_overview`,
:func:`~bioworkbench.stability.condition_at`) stay in :mod:`bioworkbench.stability`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_number, require_prob
from bioworkbench.errors import ArgumentError, BioWorkbenchError
from bioworkbench.stability.frame import require_study, unflagged
from bioworkbench.stability.q1e import ShelfLifeResult
from bioworkbench.text import Safe, escape, markdown_text

__all__ = ["BayesianStability", "bayesian_analysis", "compare_shelf_lives", "comparison_sentence", "describe_study"]

#: USP <1160>'s activation energy (kJ/mol), the prior's centre when the study has one temperature
_USP_EA_KJ = 83.144


def describe_study(study: pl.DataFrame, *, source: str | None = None) -> Safe:
    """The study in one paragraph: where it comes from, lots, conditions, attributes, times, flags.

    Parameters
    ----------
    study
        A stability study frame (:func:`~bioworkbench.stability.read_study`).
    source
        Where the study comes from (a file, a publication), said first when given.

    Returns
    -------
    Safe
        One paragraph of Markdown; the source, lots, conditions and attributes escaped.

    Raises
    ------
    ArgumentError
        ``study`` is not a frame.
    SchemaError
        ``study`` lacks a study column (``batch_id, condition, temperature_c, attribute, time``).
    """
    study = require_study(study, "describe_study", ("batch_id", "condition", "temperature_c", "attribute", "time"))
    lots = study["batch_id"].unique().sort().to_list()
    conds = study.select("condition", "temperature_c").unique().sort("temperature_c", nulls_last=True)
    attrs = study["attribute"].unique().sort().to_list()
    tu = study["time_unit"][0] if "time_unit" in study.columns and study.height else "month"
    n_flag = int(study.filter(~unflagged()).height) if "flag" in study.columns else 0
    text = markdown_text(
        "{source}{n_lots} lots ({lots}{more}), {n_conds} storage condition(s) ({conds}), attribute(s) {attrs}; "
        "{n} results from {first:g} to {last:g} {tu}s.",
        source=Safe(markdown_text("Study: {source}. ", source=source) if source else ""),
        n_lots=len(lots),
        lots=_join(lots[:12]),
        more=Safe(" …" if len(lots) > 12 else ""),
        n_conds=conds.height,
        conds=_join(conds["condition"].cast(pl.String).to_list()),
        attrs=_join(attrs),
        n=study.height,
        first=study["time"].min(),
        last=study["time"].max(),
        tu=tu,
    )
    if n_flag:
        text = Safe(f"{text} {n_flag} flagged result(s) are kept in the data but left out of the analyses.")
    return text


def _join(items: list[Any]) -> Safe:
    """Data items escaped one by one and joined with commas."""
    return Safe(", ".join(escape(x) for x in items))


@dataclass
class BayesianStability:
    """The Bayesian side of the stability report (see :func:`bayesian_analysis`).

    Attributes
    ----------
    text
        What was fitted and what the probability of staying in spec does (Markdown).
    diagnostics
        The sampler diagnostics in words (Markdown; ``""`` when nothing was fitted).
    prediction
        A new lot's predictive interval at the storage condition (:meth:`StabilityModel.predict`).
    prob_in_spec
        Probability that a new lot is within spec up to each time (:meth:`StabilityModel.prob_in_spec`).
    time_to_limit
        Posterior of the time to the limit (:meth:`StabilityModel.time_to_limit`), ``None`` without limits.
    summary
        The model's parameters (:meth:`StabilityModel.summary`).
    shelf_life
        The Bayesian shelf life in ``time_unit`` (``inf``: not reached within the horizon).
    target
        The probability of being in spec the shelf life keeps.
    time_unit
        The study's time unit.
    model
        The fitted :class:`~bioworkbench.models.StabilityModel`.
    temperatures
        How many storage temperatures the model learnt from.

    The fields from ``prediction`` to ``model`` are ``None`` when the model could not be fitted.
    """

    text: Safe
    diagnostics: str
    prediction: pl.DataFrame | None = None
    prob_in_spec: pl.DataFrame | None = None
    time_to_limit: pl.DataFrame | None = None
    summary: pl.DataFrame | None = None
    shelf_life: float | None = None
    target: float = 0.95
    time_unit: str = "month"
    model: Any = None
    temperatures: int = 0


def _shelf_life_from_prob(curve: pl.DataFrame, target: float) -> float:
    """The last time before the probability of being in spec first drops below ``target``, linearly
    interpolated between grid times; ``inf`` when it never drops within the curve, 0 when it starts below."""
    t = curve["time"].to_numpy()
    p = curve["prob"].to_numpy()
    below = np.nonzero(p < target)[0]
    if below.size == 0:
        return math.inf
    i = int(below[0])
    if i == 0:
        return 0.0
    t0, t1, p0, p1 = t[i - 1], t[i], p[i - 1], p[i]
    return float(t0 + (p0 - target) * (t1 - t0) / (p0 - p1)) if p0 != p1 else float(t0)


def _shelf_life_mc_error(curve: pl.DataFrame, target: float, n_draws: int) -> float:
    """Monte-Carlo error (1 SD, in time units) of :func:`_shelf_life_from_prob`'s crossing time.

    The probability at each time is a fraction of ``n_draws`` posterior draws, so near the crossing
    its Monte-Carlo standard error is about ``sqrt(p (1 − p) / n)`` (a lower bound: the draws of a
    Markov chain are autocorrelated); divided by the curve's local slope it becomes an error in time.
    A flat curve near the target makes the crossing time imprecise even when the probability is not.
    ``nan`` when there is no crossing inside the curve.
    """
    t = curve["time"].to_numpy()
    p = curve["prob"].to_numpy()
    below = np.nonzero(p < target)[0]
    if below.size == 0 or below[0] == 0 or n_draws < 1:
        return math.nan
    i = int(below[0])
    slope = (p[i - 1] - p[i]) / (t[i] - t[i - 1])
    se = math.sqrt(target * (1.0 - target) / n_draws)
    return se / slope if slope > 0 else math.inf


def bayesian_analysis(
    study: pl.DataFrame,
    *,
    attribute: str,
    kinetics: str = "first_order",
    lower: float | None = None,
    upper: float | None = None,
    storage_c: float = 5.0,
    horizon: float = 36.0,
    prob: float = 0.9,
    target: float = 0.95,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    random_seed: int | None = None,
) -> BayesianStability:
    """Fit :class:`~bioworkbench.models.StabilityModel` and predict a new lot at ``storage_c``.

    Parameters
    ----------
    study
        A stability study frame.
    attribute
        The attribute to model.
    kinetics
        The rate law (:data:`~bioworkbench.stability.degradation.KINETICS`).
    lower, upper
        Specification limits in the attribute's unit (at least one for a shelf life).
    storage_c
        The storage temperature, °C.
    horizon
        The longest time shown and searched, in the study's time unit.
    prob
        Mass of the intervals.
    target
        The probability of being in spec that the shelf life keeps.
    draws, tune, chains, random_seed
        Sampler settings (``None``: the ``"stability_section"`` entry of
        :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`, 1000 draws after 1000 tuning steps,
        2 chains); ``random_seed`` also seeds the new lot's predictive draws, so that a seed gives
        one shelf life.

    Returns
    -------
    BayesianStability
        The prediction, the probability of being in spec, the time to the limit, the summary, the
        shelf life and the text. When the study cannot support the model (for example a single
        storage temperature and a prediction asked at another one) or the fit fails, the text says
        why and the fields are ``None``.

    Raises
    ------
    ArgumentError
        ``study`` is not a frame; ``attribute`` is not a name; a limit, ``storage_c`` or ``horizon``
        that is not a number; ``prob`` or ``target`` not a probability.
    SchemaError
        ``study`` lacks a study column.

    Notes
    -----
    The Bayesian shelf life is the time at which the posterior predictive probability that a new lot
    is within spec first drops below ``target``, on a grid of 8 points per time unit up to
    ``horizon``, interpolated linearly. With one storage temperature the activation energy is not
    learnt: the prediction is made only at that temperature (the model's reference), with a narrow
    prior at USP <1160>'s 83.144 kJ/mol that the prediction does not depend on.
    """
    fn = "bayesian_analysis"
    study = require_study(study, fn, ("batch_id", "time", "attribute", "value", "temperature_c"))
    if not isinstance(attribute, str):
        raise ArgumentError(f"{fn}: attribute must be the attribute's name (a str); got {attribute!r}.")
    for name, v in (("lower", lower), ("upper", upper)):
        require_number(v, function=fn, argument=name, allow_none=True)
    require_number(storage_c, function=fn, argument="storage_c", unit="°C")
    require_number(horizon, function=fn, argument="horizon", minimum=0, min_inclusive=False)
    require_prob(prob, function=fn)
    require_prob(target, function=fn, argument="target")
    tu = study["time_unit"][0] if "time_unit" in study.columns and study.height else "month"
    data = (study.filter(unflagged()) if "flag" in study.columns else study).filter(pl.col("attribute") == attribute)
    temps = sorted({float(t) for t in data["temperature_c"].drop_nulls().to_list()})
    if len(temps) == 1 and abs(temps[0] - storage_c) > 1e-6:
        text = Safe(
            f"The study has one storage temperature ({temps[0]:g} °C): an Arrhenius model cannot learn how the "
            f"rate changes with temperature from it, so no prediction is made at {storage_c:g} °C. "
            f"Set storage_c to {temps[0]:g} to model the study's own condition."
        )
        return BayesianStability(text=text, diagnostics="", target=target, time_unit=tu)
    model = _fitted_model(study, attribute=attribute, kinetics=kinetics, storage_c=storage_c, temps=temps,
                          draws=draws, tune=tune, chains=chains, random_seed=random_seed)  # fmt: skip
    if isinstance(model, BioWorkbenchError):
        text = markdown_text("The Bayesian model could not be fitted: {error}", error=str(model))
        return BayesianStability(text=text, diagnostics="", target=target, time_unit=tu)
    return _analysis(model, data, lower=lower, upper=upper, storage_c=storage_c, horizon=horizon, prob=prob,
                     target=target, temps=temps, time_unit=tu, random_seed=random_seed)  # fmt: skip


def _fitted_model(
    study: pl.DataFrame,
    *,
    attribute: str,
    kinetics: str,
    storage_c: float,
    temps: list[float],
    draws: int | None,
    tune: int | None,
    chains: int | None,
    random_seed: int | None,
) -> Any:
    """The fitted :class:`StabilityModel`, or the :class:`BioWorkbenchError` that stopped the fit.

    With one temperature (the storage temperature), that temperature is the reference and the
    activation energy's prior is narrow at USP <1160>'s value: it is not learnt, and a prediction at
    the reference does not depend on it."""
    from bioworkbench.models.sampling import sampler_defaults
    from bioworkbench.models.stability import StabilityModel

    defaults = sampler_defaults("stability_section")
    draws = defaults.draws if draws is None else draws
    tune = defaults.tune if tune is None else tune
    chains = defaults.chains if chains is None else chains
    one = len(temps) == 1
    priors = {"activation_energy": {"dist": "LogNormal", "mu": math.log(_USP_EA_KJ), "sigma": 0.1}} if one else None
    model = StabilityModel(kinetics=kinetics, reference_temperature=temps[0] if one else storage_c, priors=priors)
    try:
        return model.fit(study, attribute=attribute, draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    except BioWorkbenchError as exc:
        return exc


def _analysis(
    model: Any,
    data: pl.DataFrame,
    *,
    lower: float | None,
    upper: float | None,
    storage_c: float,
    horizon: float,
    prob: float,
    target: float,
    temps: list[float],
    time_unit: str,
    random_seed: int | None,
) -> BayesianStability:
    """Predictions of a new lot at ``storage_c`` from the fitted ``model``, and the words for them.

    The new lot's draws and the measurement noise are drawn with ``random_seed``: the same seed gives
    the same page, shelf life included (unseeded, the shelf life moved by its Monte-Carlo error,
    14.9-15.9 months on LeBlond's table, from run to run)."""
    from bioworkbench.models.base import diagnostics_markdown

    kinetics = model.config["kinetics"]
    tu = escape(time_unit)
    times = np.linspace(0.0, horizon, round(8 * horizon) + 1)
    pred = model.predict(condition=storage_c, times=times, prob=prob, kind="predictive", random_seed=random_seed)
    inspec = model.prob_in_spec(times=times, lower=lower, upper=upper, condition=storage_c, random_seed=random_seed)
    ttl = None
    if lower or upper:
        ttl = model.time_to_limit(lower=lower, upper=upper, condition=storage_c, prob=prob, random_seed=random_seed)
    sl = _shelf_life_from_prob(inspec, target)
    diag = diagnostics_markdown(model.diagnostics(), name=f"Stability model ({kinetics.replace('_', ' ')})")
    spec = " and ".join(
        s for s in (f"≥ {lower:g}" if lower is not None else "", f"≤ {upper:g}" if upper is not None else "") if s
    )
    if math.isinf(sl):
        said = f"stays at or above {target:.0%} throughout the {horizon:g} {tu}s shown"
    elif sl == 0:
        said = f"is below {target:.0%} from the start"
    else:
        post = model.idata["posterior"].to_dataset()
        n_draws = int(post.sizes["chain"] * post.sizes["draw"])
        mc = _shelf_life_mc_error(inspec, target, n_draws)
        said = f"drops below {target:.0%} at {sl:.1f} {tu}s"
        if math.isfinite(mc):
            said += (
                f" (give or take at least {mc:.1f} {tu}: the Monte-Carlo error of {n_draws:,} posterior draws "
                "where the curve is this flat; more draws narrow it)"
            )
    text = (
        f"{kinetics.replace('_', '-')} kinetics with an Arrhenius temperature dependence (reference "
        f"{model.config['reference_temperature']:g} °C), fitted on {data.height} results of "
        f"{data['batch_id'].n_unique()} lots at {len(temps)} temperature(s). For a new lot stored at "
        f"{storage_c:g} °C, the probability of being within spec ({spec}) {said}."
    )
    if len(temps) == 1:
        text += (
            f" The study has one temperature, so the activation energy is not learnt from it (its prior is fixed near "
            f"83 kJ/mol); predictions at {storage_c:g} °C, the study's own temperature, do not depend on it."
        )
    return BayesianStability(
        text=Safe(text),
        diagnostics=diag,
        prediction=pred,
        prob_in_spec=inspec,
        time_to_limit=ttl,
        summary=model.summary(prob=prob),
        shelf_life=sl,
        target=target,
        time_unit=time_unit,
        model=model,
        temperatures=len(temps),
    )


def _check_pair(q1e: Any, bayes: Any, function: str) -> None:
    """``q1e`` from :func:`~bioworkbench.stability.shelf_life` and ``bayes`` from :func:`bayesian_analysis`."""
    if not isinstance(q1e, ShelfLifeResult):
        raise ArgumentError(
            f"{function}: q1e must be the result of bw.stability.shelf_life(study, ...); got {describe_type(q1e)}."
        )
    if not isinstance(bayes, BayesianStability):
        raise ArgumentError(
            f"{function}: bayes must be the result of bw.review.bayesian_analysis(study, ...); got "
            f"{describe_type(bayes)}."
        )


def compare_shelf_lives(q1e: ShelfLifeResult, bayes: BayesianStability) -> pl.DataFrame:
    """The two shelf-life answers in one table.

    Parameters
    ----------
    q1e
        The result of :func:`~bioworkbench.stability.shelf_life`.
    bayes
        The result of :func:`bayesian_analysis`.

    Returns
    -------
    polars.DataFrame
        ``method, shelf_life, proposed, basis, time_unit``: one row for ICH Q1E (its statistical and
        its proposed, capped, shelf life) and one for the Bayesian model (null when not fitted).

    Raises
    ------
    ArgumentError
        ``q1e`` or ``bayes`` is not the result of the function named above.
    """
    _check_pair(q1e, bayes, "compare_shelf_lives")
    rows = [
        {
            "method": "ICH Q1E regression",
            "shelf_life": float(q1e.shelf_life),
            "proposed": float(q1e.proposed_shelf_life),
            "basis": (
                f"{q1e.confidence:.0%} confidence bound of the mean line of the tested lots "
                f"(model {q1e.model.replace('_', ' ')}) reaches the limit"
            ),
        },
        {
            "method": "Bayesian Arrhenius model",
            "shelf_life": float(bayes.shelf_life) if bayes.shelf_life is not None else None,
            "proposed": float(bayes.shelf_life) if bayes.shelf_life is not None else None,
            "basis": f"probability that a new lot is within spec drops below {bayes.target:.0%}",
        },
    ]
    return pl.DataFrame(rows, schema_overrides={"shelf_life": pl.Float64, "proposed": pl.Float64}).with_columns(
        time_unit=pl.lit(q1e.time_unit)
    )


def comparison_sentence(q1e: ShelfLifeResult, bayes: BayesianStability) -> Safe:
    """One or two sentences on how the two shelf lives differ and why.

    Parameters
    ----------
    q1e
        The result of :func:`~bioworkbench.stability.shelf_life`.
    bayes
        The result of :func:`bayesian_analysis`.

    Returns
    -------
    Safe
        Markdown (the time unit escaped).

    Raises
    ------
    ArgumentError
        ``q1e`` or ``bayes`` is not the result of the function named above.
    """
    _check_pair(q1e, bayes, "comparison_sentence")
    tu = escape(q1e.time_unit)
    if bayes.shelf_life is None:
        return Safe(
            f"Only the ICH Q1E shelf life is available ({_fmt(q1e.shelf_life, tu)}); the Bayesian model was not "
            "fitted (see above)."
        )
    a, b = float(q1e.shelf_life), float(bayes.shelf_life)
    if math.isinf(a) and math.isinf(b):
        return Safe("Neither method reaches the limit within the period considered.")
    every = ", and it also uses the data of every temperature through the Arrhenius relation."
    why = (
        "ICH Q1E bounds the mean of the lots tested, while the Bayesian answer is the chance that a *future* lot "
        "(lot-to-lot variation and measurement error included) is still in spec"
        + (every if bayes.temperatures > 1 else ".")
    )
    if math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 0.1 * max(a, b):
        return Safe(f"The two answers agree: {_fmt(a, tu)} (ICH Q1E) and {_fmt(b, tu)} (Bayesian). {why}")
    shorter = "Bayesian" if b < a else "ICH Q1E"
    return Safe(
        f"The {shorter} shelf life is the shorter: {_fmt(a, tu)} by ICH Q1E against {_fmt(b, tu)} by the Bayesian "
        f"model. {why}"
    )


def _fmt(x: float, unit: str) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.1f} {unit}s"
