"""What the stability report says: the study in words, the Bayesian analysis at the storage condition,
and the ICH Q1E and Bayesian shelf lives side by side.

The numbers come from :func:`bioworkbench.stability.shelf_life` and
:class:`bioworkbench.models.StabilityModel`; this module only arranges them and writes the sentences,
so that the notebook stays thin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.checks import require_columns, require_frame, require_number, require_prob
from bioworkbench.errors import ArgumentError, BioWorkbenchError, ConfigError

__all__ = [
    "BayesianStability",
    "bayesian_analysis",
    "compare_shelf_lives",
    "comparison_sentence",
    "condition_at",
    "describe_study",
    "study_overview",
]


_STUDY_HINT = "Read one with bw.stability.read_study(path) or check a frame with bw.stability.validate_study(frame)."


def _study(study: object, function: str, columns: tuple[str, ...] = ("batch_id", "time", "attribute")) -> pl.DataFrame:
    """``study`` as a stability study frame with ``columns``, or an error that says how to make one."""
    frame = require_frame(study, function=function, argument="study", hint=_STUDY_HINT)
    require_columns(frame, columns, what=f"{function}: study", hint=_STUDY_HINT)
    return frame


def _usable(study: pl.DataFrame) -> pl.DataFrame:
    return study.filter(pl.col("flag").is_null()) if "flag" in study.columns else study


def study_overview(study: pl.DataFrame) -> pl.DataFrame:
    """Per condition and attribute: lots, results, time span, unit, and flagged results.

    Raises
    ------
    ArgumentError, SchemaError
        ``study`` is not a frame, or lacks a study column (named, with how to read a study).
    """
    study = _study(study, "study_overview", ("batch_id", "condition", "temperature_c", "attribute", "time",
                                             "time_unit", "unit"))  # fmt: skip
    flagged = pl.col("flag").is_not_null().sum() if "flag" in study.columns else pl.lit(0)
    return (
        study.group_by("condition", "attribute", maintain_order=True)
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            lots=pl.col("batch_id").n_unique(),
            results=pl.len(),
            flagged=flagged,
            first_time=pl.col("time").min(),
            last_time=pl.col("time").max(),
            time_unit=pl.col("time_unit").first(),
            unit=pl.col("unit").first(),
        )
        .sort("attribute", "temperature_c", nulls_last=True)
    )


def describe_study(study: pl.DataFrame, *, source: str | None = None) -> str:
    """The study in one paragraph: where it comes from, lots, conditions, attributes, times, flags.

    Raises
    ------
    ArgumentError, SchemaError
        ``study`` is not a frame, or lacks a study column.
    """
    study = _study(study, "describe_study", ("batch_id", "condition", "temperature_c", "attribute", "time"))
    lots = study["batch_id"].unique().sort().to_list()
    conds = study.select("condition", "temperature_c").unique().sort("temperature_c", nulls_last=True)
    attrs = study["attribute"].unique().sort().to_list()
    tu = study["time_unit"][0] if "time_unit" in study.columns and study.height else "month"
    n_flag = int(study["flag"].is_not_null().sum()) if "flag" in study.columns else 0
    text = (
        (f"Study: {source}. " if source else "")
        + f"{len(lots)} lots ({', '.join(map(str, lots[:12]))}{' …' if len(lots) > 12 else ''}), "
        + f"{conds.height} storage condition(s) ({', '.join(conds['condition'].cast(pl.String).to_list())}), "
        + f"attribute(s) {', '.join(attrs)}; {study.height} results from {study['time'].min():g} to "
        + f"{study['time'].max():g} {tu}s."
    )
    if n_flag:
        text += f" {n_flag} flagged result(s) are kept in the data but left out of the analyses."
    return text


def condition_at(study: pl.DataFrame, temperature_c: float) -> str:
    """The label of the study's condition at ``temperature_c`` (the only condition if there is one).

    Raises
    ------
    ArgumentError, SchemaError
        ``study`` is not a study frame; ``temperature_c`` is not a number.
    ConfigError
        No condition at that temperature (the temperatures present are listed).
    """
    study = _study(study, "condition_at", ("condition", "temperature_c"))
    temperature_c = require_number(temperature_c, function="condition_at", argument="temperature_c", unit="°C")
    conds = study.select("condition", "temperature_c").unique()
    if conds.height == 1:
        return conds["condition"][0]
    hit = conds.filter((pl.col("temperature_c") - temperature_c).abs() < 1e-6)
    if hit.height == 1:
        return hit["condition"][0]
    temps = ", ".join(f"{t:g} °C" for t in conds["temperature_c"].drop_nulls().sort().to_list())
    raise ConfigError(
        f"the study has no single condition at {temperature_c:g} °C; conditions at: {temps or 'unknown temperatures'}. "
        "Set storage_c to one of them."
    )


@dataclass
class BayesianStability:
    """The Bayesian side of the stability report (fields are ``None`` when the model could not be fitted)."""

    text: str
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
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
) -> BayesianStability:
    """Fit :class:`~bioworkbench.models.StabilityModel` and predict a new lot at ``storage_c``.

    The Bayesian shelf life is the time at which the posterior predictive probability that a new lot is
    within spec first drops below ``target`` (on a grid of 8 points per time unit up to ``horizon``,
    interpolated linearly). When the study cannot support the model (for example a single storage
    temperature and a prediction asked at another one), the reason is stated and the fields are ``None``.
    """
    from bioworkbench.models.base import diagnostics_markdown
    from bioworkbench.models.stability import StabilityModel

    fn = "bayesian_analysis"
    study = _study(study, fn, ("batch_id", "time", "attribute", "value", "temperature_c"))
    if not isinstance(attribute, str):
        raise ArgumentError(f"{fn}: attribute must be the attribute's name (a str); got {attribute!r}.")
    for name, v in (("lower", lower), ("upper", upper)):
        require_number(v, function=fn, argument=name, allow_none=True)
    require_number(storage_c, function=fn, argument="storage_c", unit="°C")
    require_number(horizon, function=fn, argument="horizon", minimum=0, min_inclusive=False)
    require_prob(prob, function=fn)
    require_prob(target, function=fn, argument="target")
    tu = study["time_unit"][0] if "time_unit" in study.columns and study.height else "month"
    data = _usable(study).filter(pl.col("attribute") == attribute)
    temps = sorted({float(t) for t in data["temperature_c"].drop_nulls().to_list()})
    reference = storage_c if len(temps) != 1 else temps[0]
    if len(temps) == 1 and abs(temps[0] - storage_c) > 1e-6:
        return BayesianStability(
            text=(
                f"The study has one storage temperature ({temps[0]:g} °C): an Arrhenius model cannot learn how the "
                f"rate changes with temperature from it, so no prediction is made at {storage_c:g} °C. "
                f"Set storage_c to {temps[0]:g} to model the study's own condition."
            ),
            diagnostics="",
            target=target,
            time_unit=tu,
        )
    priors = None
    if len(temps) == 1:
        # one temperature: the activation energy is not learnt, and a prediction at that same temperature
        # (the reference) does not depend on it; a narrow prior at USP <1160>'s 83.144 kJ/mol lets the model run
        priors = {"activation_energy": {"dist": "LogNormal", "mu": math.log(83.144), "sigma": 0.1}}
    model = StabilityModel(kinetics=kinetics, reference_temperature=reference, priors=priors)
    try:
        model.fit(study, attribute=attribute, draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    except BioWorkbenchError as exc:
        return BayesianStability(
            text=f"The Bayesian model could not be fitted: {exc}", diagnostics="", target=target, time_unit=tu
        )
    times = np.linspace(0.0, horizon, round(8 * horizon) + 1)
    pred = model.predict(condition=storage_c, times=times, prob=prob, kind="predictive")
    inspec = model.prob_in_spec(times=times, lower=lower, upper=upper, condition=storage_c)
    ttl = model.time_to_limit(lower=lower, upper=upper, condition=storage_c, prob=prob) if (lower or upper) else None
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
        said = f"drops below {target:.0%} at {sl:.1f} {tu}s"
    text = (
        f"{kinetics.replace('_', '-')} kinetics with an Arrhenius temperature dependence (reference {reference:g} °C), "
        f"fitted on {data.height} results of {data['batch_id'].n_unique()} lots at {len(temps)} temperature(s). "
        f"For a new lot stored at {storage_c:g} °C, the probability of being within spec ({spec}) {said}."
    )
    if priors:
        text += (
            f" The study has one temperature, so the activation energy is not learnt from it (its prior is fixed near "
            f"83 kJ/mol); predictions at {storage_c:g} °C, the study's own temperature, do not depend on it."
        )
    return BayesianStability(
        text=text,
        diagnostics=diag,
        prediction=pred,
        prob_in_spec=inspec,
        time_to_limit=ttl,
        summary=model.summary(prob=prob),
        shelf_life=sl,
        target=target,
        time_unit=tu,
        model=model,
        temperatures=len(temps),
    )


def _check_pair(q1e: Any, bayes: Any, function: str) -> None:
    """``q1e`` from :func:`~bioworkbench.stability.shelf_life` and ``bayes`` from :func:`bayesian_analysis`."""
    from bioworkbench.checks import describe_type
    from bioworkbench.stability.q1e import ShelfLifeResult

    if not isinstance(q1e, ShelfLifeResult):
        raise ArgumentError(
            f"{function}: q1e must be the result of bw.stability.shelf_life(study, ...); got {describe_type(q1e)}."
        )
    if not isinstance(bayes, BayesianStability):
        raise ArgumentError(
            f"{function}: bayes must be the result of bw.stability.bayesian_analysis(study, ...); got "
            f"{describe_type(bayes)}."
        )


def compare_shelf_lives(q1e: Any, bayes: BayesianStability) -> pl.DataFrame:
    """The two shelf-life answers in one table: method, shelf life, what it is a statement about."""
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


def comparison_sentence(q1e: Any, bayes: BayesianStability) -> str:
    """One or two sentences on how the two shelf lives differ and why."""
    _check_pair(q1e, bayes, "comparison_sentence")
    tu = q1e.time_unit
    if bayes.shelf_life is None:
        return (
            f"Only the ICH Q1E shelf life is available ({_fmt(q1e.shelf_life, tu)}); the Bayesian model was not "
            "fitted (see above)."
        )
    a, b = float(q1e.shelf_life), float(bayes.shelf_life)
    if math.isinf(a) and math.isinf(b):
        return "Neither method reaches the limit within the period considered."
    why = (
        "ICH Q1E bounds the mean of the lots tested, while the Bayesian answer is the chance that a *future* lot "
        "(lot-to-lot variation and measurement error included) is still in spec"
        + (
            ", and it also uses the data of every temperature through the Arrhenius relation."
            if bayes.temperatures > 1
            else "."
        )
    )
    if math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 0.1 * max(a, b):
        return f"The two answers agree: {_fmt(a, tu)} (ICH Q1E) and {_fmt(b, tu)} (Bayesian). {why}"
    shorter = "Bayesian" if b < a else "ICH Q1E"
    return (
        f"The {shorter} shelf life is the shorter: {_fmt(a, tu)} by ICH Q1E against {_fmt(b, tu)} by the Bayesian "
        f"model. {why}"
    )


def _fmt(x: float, unit: str) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.1f} {unit}s"
