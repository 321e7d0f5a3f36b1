"""CPP identification: which process parameters move which quality attributes, and through what.

* :func:`process_table` — one row per batch: CPP setpoints, in-process variables (peak VCD, IVCD, μ,
  qp, a variable at a given culture day such as lactate at day 7) and the harvest CQAs.
* :func:`cpp_impact` — the impact of each factor of a fitted
  :class:`~bioworkbench.models.ResponseSurface` on each CQA over the factor's range, relative to the
  CQA's specification width, with posterior intervals; factors above a threshold are flagged critical.
  :func:`cpp_impact_from_campaign` does the same from historical batches (no designed experiment).
* :func:`relation_graph` — the edges CPP → in-process variable → CQA weighted by standardised path
  coefficients with intervals, drawn by :func:`bioworkbench.plots.plot_relation_graph`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchError, ConfigError, SchemaError
from bioworkbench.schema import suggest
from bioworkbench.text import Safe, escape

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = [
    "DEFAULT_INTERMEDIATES",
    "DesignData",
    "campaign_design",
    "campaign_relation_graph",
    "cpp_impact",
    "cpp_impact_from_campaign",
    "design_space_summary",
    "fit_response_surface",
    "process_table",
    "relation_graph",
    "spec_limits",
    "value_at_day",
]

#: in-process variables of :func:`bioworkbench.outcomes.batch_outcomes` used by default
DEFAULT_INTERMEDIATES = ("peak_vcd", "final_ivcd", "mu_growth", "qp")


def value_at_day(campaign: Campaign, variable: str, day: float) -> pl.DataFrame:
    """Per batch, the offline value of ``variable`` at culture day ``day``, linearly interpolated.

    Returns ``batch_id, <variable>_day<day>``; null for a batch whose samples do not bracket the day
    (no extrapolation). Flagged values are not used.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    variable
        An offline variable of the campaign.
    day
        Culture day (``time_h / 24``).

    Returns
    -------
    polars.DataFrame
        ``batch_id, <variable>_day<day>``, one row per batch of the campaign.

    Raises
    ------
    SchemaError
        The campaign has no unflagged offline observation of ``variable`` (the variables it has are
        suggested).
    """
    name = f"{variable}_day{day:g}"
    t = float(day) * 24.0
    obs = (
        campaign.observations.filter(
            (pl.col("variable") == variable)
            & (pl.col("source") != "online")
            & pl.col("flag").is_null()
            & pl.col("value").is_finite()
        )
        .select("batch_id", "time_h", "value")
        .sort("batch_id", "time_h")
    )
    if obs.is_empty():
        found = campaign.observations["variable"].unique().sort().to_list()
        raise SchemaError(f"no offline observations of {variable!r}. " + suggest(variable, found, what="Variables"))
    before = (
        obs.filter(pl.col("time_h") <= t)
        .group_by("batch_id")
        .agg(t0=pl.col("time_h").last(), v0=pl.col("value").last())
    )
    after = (
        obs.filter(pl.col("time_h") >= t)
        .group_by("batch_id")
        .agg(t1=pl.col("time_h").first(), v1=pl.col("value").first())
    )
    ids = pl.DataFrame({"batch_id": campaign.batch_ids})
    return (
        ids.join(before, on="batch_id", how="left")
        .join(after, on="batch_id", how="left")
        .select(
            "batch_id",
            pl.when(pl.col("t1") == pl.col("t0"))
            .then(pl.col("v0"))
            .otherwise(
                pl.col("v0") + (pl.col("v1") - pl.col("v0")) * (t - pl.col("t0")) / (pl.col("t1") - pl.col("t0"))
            )
            .alias(name),
        )
    )


def process_table(
    campaign: Campaign,
    *,
    intermediates: Sequence[str] = DEFAULT_INTERMEDIATES,
    at_day: Mapping[str, float] | None = None,
    kinetics: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per batch: ``batch_id``, the CPP setpoints (``cpp_*``), in-process variables and CQAs.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    intermediates
        Columns of :func:`bioworkbench.outcomes.batch_outcomes` to keep as in-process variables.
    at_day
        ``{variable: day}`` adds the offline value of a variable at a culture day (see
        :func:`value_at_day`), e.g. ``{"lactate": 7}`` adds ``lactate_day7``.
    kinetics
        The campaign's :func:`bioworkbench.kinetics.compute` frame when already computed (saves
        computing it again); ``None`` computes it.

    Returns
    -------
    polars.DataFrame
        One row per batch of the campaign.

    Raises
    ------
    ConfigError
        An in-process variable that :func:`bioworkbench.outcomes.batch_outcomes` does not give.
    """
    from bioworkbench.outcomes import campaign_table

    table = campaign_table(campaign, kinetics)
    missing = [c for c in intermediates if c not in table.columns]
    if missing:
        raise ConfigError(
            f"in-process variable(s) {', '.join(missing)} unknown. "
            + suggest(missing[0], [c for c in table.columns if c != "batch_id"], what="Columns")
        )
    cqas = campaign.quality["attribute"].unique().sort().to_list()
    out = table.select("batch_id", *campaign.cpps, *intermediates, *[c for c in cqas if c in table.columns])
    for variable, day in (at_day or {}).items():
        out = out.join(value_at_day(campaign, variable, day), on="batch_id", how="left")
    return out


@dataclass(frozen=True)
class DesignData:
    """A campaign seen as a designed experiment (see :func:`campaign_design`).

    Attributes
    ----------
    table
        One row per batch kept: ``batch_id``, CPPs, in-process variables, CQAs.
    factors
        CPP ranges (lowest and highest setpoint run).
    responses
        CQAs that have a spec and results.
    specs
        Spec limits of the responses.
    missing
        ``batch_id, attribute``: CQA results that are missing.
    left_out
        ``batch_id, reason``: batches not used at all.
    """

    table: pl.DataFrame
    """one row per batch: ``batch_id``, CPPs, in-process variables, CQAs"""
    factors: dict[str, tuple[float, float]]
    """CPP ranges (lowest and highest setpoint run)"""
    responses: list[str]
    """CQAs that have a spec and results"""
    specs: dict[str, tuple[float | None, float | None]]
    """spec limits of the responses"""
    missing: pl.DataFrame
    """``batch_id, attribute``: CQA results that are missing (those batches are left out of that CQA)"""
    left_out: pl.DataFrame
    """``batch_id, reason``: batches not used at all (e.g. aborted: their harvest is not the process's outcome)"""

    def summary(self) -> pl.DataFrame:
        """The responses as a table: one row per CQA with a spec.

        Returns
        -------
        polars.DataFrame
            ``response``, ``spec_lower`` and ``spec_upper`` (null for a one-sided spec), ``n_batches``
            (batches with a result, used in that CQA's model) and ``n_missing`` (batches kept whose
            result is missing). :meth:`describe` states the design in words.
        """
        missing = dict(self.missing.group_by("attribute").len().iter_rows()) if self.missing.height else {}
        return pl.DataFrame(
            {
                "response": self.responses,
                "spec_lower": [self.specs[r][0] for r in self.responses],
                "spec_upper": [self.specs[r][1] for r in self.responses],
                "n_batches": [self.table[r].drop_nulls().len() for r in self.responses],
                "n_missing": [missing.get(r, 0) for r in self.responses],
            },
            schema={
                "response": pl.String,
                "spec_lower": pl.Float64,
                "spec_upper": pl.Float64,
                "n_batches": pl.Int64,
                "n_missing": pl.Int64,
            },
        )

    def describe(self) -> str:
        """The design in words: batches, CPP ranges, CQAs with specs, batches and results left out.

        Returns
        -------
        str
            One paragraph.
        """
        n = self.table.height
        ranges = "; ".join(f"{k} {lo:g}–{hi:g}" for k, (lo, hi) in self.factors.items())
        miss = self.missing.height
        out = "".join(f" {r['batch_id']} is left out ({r['reason']})." for r in self.left_out.iter_rows(named=True))
        text = (
            f"{n} batches; {len(self.factors)} CPPs ({ranges}); {len(self.responses)} CQAs with specs "
            f"({', '.join(self.responses)}).{out}"
        )
        if miss:
            text += (
                f" {miss} CQA result(s) missing: "
                + ", ".join(f"{r['batch_id']} ({r['attribute']})" for r in self.missing.iter_rows(named=True))
                + "; those batches are left out of that CQA's model."
            )
        return text


def campaign_design(
    campaign: Campaign,
    *,
    cpps: Sequence[str] | None = None,
    cqas: Sequence[str] | None = None,
    at_day: Mapping[str, float] | None = None,
    intermediates: Sequence[str] = DEFAULT_INTERMEDIATES,
    statuses: Sequence[str] | None = ("completed",),
) -> DesignData:
    """The designed CPPs and harvest CQAs of a campaign, ready for a response-surface model.

    Factor ranges are the lowest and highest setpoint run (the design's −1 and +1); the responses are
    the CQAs that have a spec (kind ``spec``) and at least one result. Batches whose status is not in
    ``statuses`` (default: completed only — an aborted batch's harvest does not show what its CPPs do)
    are left out and listed in ``left_out``; ``statuses=None`` keeps every batch.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    cpps
        The CPP columns of ``campaign.batches`` to use as factors (default: every ``cpp_*`` column).
    cqas
        The CQAs to use as responses (default: those with a spec and a result).
    at_day
        ``{variable: day}``: offline values at a culture day to add as in-process variables
        (:func:`value_at_day`).
    intermediates
        Columns of :func:`bioworkbench.outcomes.batch_outcomes` to keep as in-process variables.
    statuses
        The batch statuses to keep; ``None`` keeps every batch.

    Returns
    -------
    DesignData
        The table, factor ranges, responses with their specs, missing results and left-out batches.

    Raises
    ------
    ConfigError
        No CPP column, a CPP or CQA that the campaign does not have (the valid ones suggested), or an
        unknown in-process variable.
    """
    table = process_table(campaign, intermediates=intermediates, at_day=at_day)
    left_out = pl.DataFrame(schema={"batch_id": pl.String, "reason": pl.String})
    if statuses is not None and "status" in campaign.batches.columns:
        st = campaign.batches.select("batch_id", "status")
        drop = st.filter(~pl.col("status").is_in(list(statuses)))
        left_out = drop.select("batch_id", reason=pl.format("status {}", pl.col("status")))
        table = table.filter(~pl.col("batch_id").is_in(drop["batch_id"].implode()))
    cpps = list(cpps) if cpps is not None else list(campaign.cpps)
    if not cpps:
        raise ConfigError("the campaign has no cpp_* columns in batches; name the CPPs with cpps=[...].")
    bad = [c for c in cpps if c not in table.columns]
    if bad:
        raise ConfigError(
            f"CPP(s) {', '.join(bad)} not in the campaign. " + suggest(bad[0], campaign.cpps, what="CPPs")
        )
    limits = spec_limits(campaign.specs)
    results = campaign.quality["attribute"].unique().sort().to_list()
    if cqas is None:
        cqas = [a for a in results if a in limits]
    cqas = list(cqas)
    bad = [c for c in cqas if c not in table.columns]
    if bad:
        raise ConfigError(f"CQA(s) {', '.join(bad)} have no results. " + suggest(bad[0], results, what="Attributes"))
    factors = {}
    for c in cpps:
        col = table[c].cast(pl.Float64)
        factors[c] = (float(col.min()), float(col.max()))
    missing = (
        table.select("batch_id", *cqas)
        .unpivot(index="batch_id", variable_name="attribute")
        .filter(pl.col("value").is_null() | pl.col("value").is_nan())
        .select("batch_id", "attribute")
        .sort("batch_id", "attribute")
    )
    return DesignData(table, factors, cqas, {k: limits[k] for k in cqas if k in limits}, missing, left_out)


def fit_response_surface(
    data: DesignData,
    *,
    terms: str | Sequence[str] = "interactions",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    random_seed: int | None = None,
) -> tuple[Any, str]:
    """Fit a :class:`~bioworkbench.models.ResponseSurface` of the CQAs on the CPPs of ``data``.

    When a CQA has too few batches for the requested terms (a model needs more runs than coefficients),
    the main-effects model (``"linear"``) is fitted instead and the returned note says so; when even
    that is too large, :class:`ConfigError` names the CQA and the counts.

    Returns the fitted model and a note (empty when the requested terms were used).

    Parameters
    ----------
    data
        A campaign as a designed experiment (:func:`campaign_design`).
    terms
        The model terms: a kind (``"linear"``, ``"interactions"``, ``"quadratic"``) or a list.
    draws, tune, chains
        Posterior draws and tuning steps per chain, and the number of chains.
    random_seed
        Seed of the sampler.

    Returns
    -------
    model : ResponseSurface
        The fitted model.
    note : str
        Why the main-effects model was fitted instead of ``terms``; empty when it was not.

    Raises
    ------
    ConfigError
        A CQA has results for no more batches than a main-effects model has coefficients.
    """
    from bioworkbench.models import ResponseSurface
    from bioworkbench.terms import parse_terms

    names = list(data.factors)
    counts = {r: int(data.table[r].cast(pl.Float64).is_finite().sum()) for r in data.responses}
    worst = min(counts, key=counts.__getitem__)
    n = counts[worst]
    p = 1 + len(parse_terms(terms, names))
    note = ""
    if n <= p:
        p_lin = 1 + len(names)
        if n <= p_lin:
            raise ConfigError(
                f"{worst!r} has results for {n} batches; even a main-effects model of {len(names)} CPPs needs "
                f"more than {p_lin}. Add batches or use fewer CPPs."
            )
        note = (
            f"The requested model ({terms if isinstance(terms, str) else ', '.join(terms)}; {p} coefficients) needs "
            f"more than {p} batches per CQA, but {worst!r} has {n}: the main-effects model (linear, {p_lin} "
            "coefficients) is fitted instead."
        )
        terms = "linear"
    model = ResponseSurface(factors=data.factors, responses=data.responses, terms=terms)
    model.fit(data.table, draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    return model, note


def spec_limits(specs: Mapping[str, tuple[float | None, float | None]] | pl.DataFrame) -> dict[str, tuple]:
    """``{attribute: (lower, upper)}`` from a mapping or a campaign ``specs`` frame (rows of kind ``spec``).

    Parameters
    ----------
    specs
        ``{attribute: (lower, upper)}`` or a campaign ``specs`` frame.

    Returns
    -------
    dict
        ``{attribute: (lower, upper)}``, ``None`` for an open side.
    """
    if isinstance(specs, pl.DataFrame):
        name = "name" if "name" in specs.columns else "variable_or_attribute"
        rows = specs.filter(pl.col("kind") == "spec") if "kind" in specs.columns else specs
        return {r[name]: (r["lower"], r["upper"]) for r in rows.iter_rows(named=True)}
    return {k: tuple(v) for k, v in specs.items()}


def _tolerance(lower: float | None, upper: float | None, centre: np.ndarray) -> np.ndarray:
    """Specification width: ``upper - lower``, or for a one-sided spec the distance from the predicted
    response at the centre of the design to the limit (per draw)."""
    if lower is not None and upper is not None:
        return np.full_like(centre, float(upper) - float(lower))
    limit = float(lower if lower is not None else upper)
    return np.abs(centre - limit)


def cpp_impact(
    model,
    specs: Mapping[str, tuple[float | None, float | None]] | pl.DataFrame,
    *,
    threshold: float = 0.2,
    decision_prob: float = 0.5,
    prob: float = 0.9,
    n_points: int = 21,
) -> pl.DataFrame:
    """Impact of each factor on each response over the factor's range, relative to the spec width.

    Parameters
    ----------
    model
        A fitted :class:`~bioworkbench.models.ResponseSurface` (anything with ``factors``,
        ``responses`` and ``draws(settings, kind="mean")``).
    specs
        ``{response: (lower, upper)}`` (``None`` for an open side) or a campaign ``specs`` frame.
        Responses without a spec are skipped (and listed in the warning).
    threshold
        Impact ratio above which a factor is critical for a response (default 0.2, i.e. a change over
        the factor's range of 20 % of the tolerance).
    decision_prob
        A factor is flagged ``critical`` when the posterior probability that its impact ratio is at
        least ``threshold`` is at least ``decision_prob``.
    prob
        Mass of the reported intervals (equal-tailed).
    n_points
        Settings per factor on the line from its low to its high value.

    Returns
    -------
    pl.DataFrame
        ``response, factor, impact, impact_ratio, mean, lower, upper, prob, p_critical, critical, rank``,
        ranked by the posterior mean impact ratio within each response (1 = largest). ``impact`` is the
        posterior mean of the effect in the response's units; ``mean, lower, upper`` describe the ratio.

    Raises
    ------
    ConfigError
        No response of the model has a spec, or a two-sided spec whose lower limit is not below its upper.

    Notes
    -----
    For each posterior draw, the mean response is evaluated on ``n_points`` settings spanning the
    factor's range (low to high) with every other factor at the centre of its range;
    the effect is ``max - min`` over that line (for a linear term, ``2·|β|`` in coded units), and the
    impact ratio is effect / tolerance, with tolerance = ``upper - lower`` for a two-sided spec and
    the distance from the predicted response at the design centre to the limit for a one-sided spec.
    This is the "effect relative to the specification range" used to rank parameters in risk-based
    criticality assessments (CMC Biotech Working Group, *A-Mab: a case study in bioprocess
    development*, 2009, §3; Mitchell, "Determining criticality — process parameters and quality
    attributes, part II", BioPharm Int. 27(2), 2014: effects ≥ 20 % of the tolerance are practically
    significant).
    """
    import warnings

    limits = spec_limits(specs)
    responses = list(model.responses)
    specced = [r for r in responses if r in limits]
    if not specced:
        raise ConfigError(
            f"none of the modelled responses ({', '.join(responses)}) has a spec; specs given for: "
            f"{', '.join(limits) or 'none'}."
        )
    skipped = [r for r in responses if r not in limits]
    if skipped:
        from bioworkbench.errors import BioWorkbenchWarning

        warnings.warn(f"cpp_impact: no spec for {', '.join(skipped)}; not ranked.", BioWorkbenchWarning, stacklevel=2)
    factors = dict(model.factors)
    names = list(factors)
    centre = {f: (lo + hi) / 2 for f, (lo, hi) in factors.items()}
    settings = [centre]
    for f in names:
        lo, hi = factors[f]
        settings += [{**centre, f: v} for v in np.linspace(lo, hi, n_points)]
    grid = pl.DataFrame(settings)
    draws = np.asarray(model.draws(grid, kind="mean"))  # (sample, point, response)
    at_centre = draws[:, 0, :]
    lines = draws[:, 1:, :].reshape(draws.shape[0], len(names), n_points, draws.shape[2])
    effect = lines.max(axis=2) - lines.min(axis=2)  # (sample, factor, response)
    rows = []
    q = [(1 - prob) / 2, (1 + prob) / 2]
    for j, r in enumerate(responses):
        if r not in limits:
            continue
        lower, upper = limits[r]
        if lower is None and upper is None:
            continue
        if lower is not None and upper is not None and not float(lower) < float(upper):
            raise ConfigError(f"spec of {r!r}: lower {lower} must be below upper {upper}.")
        tol = _tolerance(lower, upper, at_centre[:, j])
        for i, f in enumerate(names):
            ratio = effect[:, i, j] / tol
            lo_q, hi_q = np.quantile(ratio, q)
            p_crit = float(np.mean(ratio >= threshold))
            rows.append(
                {
                    "response": r,
                    "factor": f,
                    "impact": float(effect[:, i, j].mean()),
                    "impact_ratio": float(ratio.mean()),
                    "mean": float(ratio.mean()),
                    "lower": float(lo_q),
                    "upper": float(hi_q),
                    "prob": prob,
                    "p_critical": p_crit,
                    "critical": p_crit >= decision_prob,
                }
            )
    out = pl.DataFrame(rows)
    return out.with_columns(
        rank=pl.col("impact_ratio").rank(method="ordinal", descending=True).over("response").cast(pl.Int64)
    ).sort("response", "rank")


def cpp_impact_from_campaign(
    campaign: Campaign,
    *,
    cpps: Sequence[str] | None = None,
    cqas: Sequence[str] | None = None,
    terms: str | Sequence[str] = "linear",
    specs: Mapping[str, tuple[float | None, float | None]] | pl.DataFrame | None = None,
    threshold: float = 0.2,
    prob: float = 0.9,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    statuses: Sequence[str] | None = ("completed",),
) -> tuple[pl.DataFrame, Any]:
    """CPP impact from historical batches: a :class:`ResponseSurface` of the CQAs on the recorded CPP

    setpoints (ranges = the observed ranges), then :func:`cpp_impact`.

    Only batches whose status is in ``statuses`` are fitted (default: completed, as
    :func:`campaign_design`: an aborted batch's harvest does not show what its CPPs do);
    ``statuses=None`` keeps every batch. Returns the impact frame and the fitted model. Batches
    without a CQA result are left out of that CQA's model and counted by the model.

    Parameters
    ----------
    campaign
        A :class:`~bioworkbench.Campaign`.
    cpps, cqas
        The CPPs and CQAs to use (as :func:`campaign_design`).
    terms
        The response-surface terms.
    specs
        Spec limits (as :func:`cpp_impact` takes them); default: the campaign's ``specs``.
    threshold, prob
        As :func:`cpp_impact`.
    draws, tune, chains
        Posterior draws and tuning steps per chain, and the number of chains.
    random_seed
        Seed of the sampler.
    statuses
        The batch statuses to fit; ``None`` keeps every batch.

    Returns
    -------
    impact : polars.DataFrame
        As :func:`cpp_impact`.
    model : ResponseSurface
        The fitted model.
    """
    from bioworkbench.models import ResponseSurface

    limits = spec_limits(specs if specs is not None else campaign.specs)
    if cqas is None:
        cqas = [c for c in campaign.quality["attribute"].unique().sort().to_list() if c in limits]
    dd = campaign_design(campaign, cpps=cpps, cqas=cqas, intermediates=(), statuses=statuses)
    cpps, cqas, table, ranges = list(dd.factors), dd.responses, dd.table, dd.factors
    model = ResponseSurface(factors=ranges, responses=cqas, terms=terms)
    model.fit(table.select(*cpps, *cqas), draws=draws, tune=tune, chains=chains, random_seed=random_seed)
    return cpp_impact(model, {k: v for k, v in limits.items() if k in cqas}, threshold=threshold, prob=prob), model


def relation_graph(
    table: pl.DataFrame,
    *,
    cpps: Sequence[str],
    intermediates: Sequence[str] = (),
    cqas: Sequence[str],
    prob: float = 0.9,
) -> pl.DataFrame:
    """Edges CPP → in-process variable → CQA weighted by standardised path coefficients.

    Each in-process variable is regressed on the CPPs, and each CQA on the CPPs and the in-process
    variables, all variables standardised (mean 0, sd 1) over the batches. The coefficient of a
    source in the regression of a target is the edge's strength: the change of the target, in its
    standard deviations, for one standard deviation of the source with the target's other inputs
    held fixed (Wright's path coefficients; Wright, "The method of path coefficients", Ann. Math.
    Stat. 5 (1934) 161). The interval is the OLS ``prob`` confidence interval (t distribution,
    ``n - p - 1`` degrees of freedom) — equal to the Bayesian credible interval under a flat prior.

    Parameters
    ----------
    table
        One row per batch (e.g. :func:`process_table`); rows with a null in any used column are left
        out and counted in the ``n`` column.
    cpps, intermediates, cqas
        The three layers (column names).
    prob
        Mass of the confidence intervals of the coefficients.

    Returns
    -------
    pl.DataFrame
        ``source, target, source_kind, target_kind, strength, lower, upper, prob, p_sign, clear, n``;
        ``p_sign`` is the probability of the coefficient's sign (flat-prior posterior) and ``clear``
        says the interval excludes zero.

    Raises
    ------
    ConfigError
        Unknown or repeated columns, a constant column, or fewer batches than needed
        (``n >= p + 3`` per regression, ``p`` its number of inputs).
    """
    from scipy import stats

    layers = {"cpp": list(cpps), "intermediate": list(intermediates), "cqa": list(cqas)}
    cols = [c for v in layers.values() for c in v]
    if len(set(cols)) != len(cols):
        raise ConfigError("relation_graph: a column is named in more than one layer.")
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise ConfigError(
            f"relation_graph: column(s) {', '.join(missing)} not in the table. "
            + suggest(missing[0], table.columns, what="Columns")
        )
    if not layers["cpp"] or not layers["cqa"]:
        raise ConfigError("relation_graph needs at least one CPP and one CQA.")
    kind = {c: k for k, v in layers.items() for c in v}
    rows = []
    targets: list[tuple[str, list[str]]] = [(t, layers["cpp"]) for t in layers["intermediate"]]
    targets += [(t, layers["cpp"] + layers["intermediate"]) for t in layers["cqa"]]
    for target, sources in targets:
        sub = table.select(*sources, target).cast(pl.Float64).drop_nulls()
        sub = sub.filter(pl.all_horizontal(pl.all().is_finite()))
        n, p = sub.height, len(sources)
        if n < p + 3:
            raise ConfigError(
                f"relation_graph: {target!r} has {n} complete batches for {p} inputs; needs at least {p + 3}. "
                "Use fewer in-process variables or more batches."
            )
        z = sub.to_numpy()
        sd = z.std(axis=0, ddof=1)
        const = [c for c, s in zip([*sources, target], sd, strict=True) if not s > 0]
        if const:
            raise ConfigError(f"relation_graph: column(s) {', '.join(const)} do not vary across the batches.")
        z = (z - z.mean(axis=0)) / sd
        x, y = z[:, :-1], z[:, -1]
        beta, *_ = np.linalg.lstsq(x, y, rcond=None)
        df = n - p - 1  # one more for the (zero) intercept removed by centring
        resid = y - x @ beta
        s2 = float(resid @ resid) / df
        cov = s2 * np.linalg.pinv(x.T @ x)
        se = np.sqrt(np.diag(cov))
        tq = stats.t.ppf((1 + prob) / 2, df)
        tstat = beta / se
        p_sign = stats.t.cdf(np.abs(tstat), df)
        for i, s in enumerate(sources):
            lo, hi = beta[i] - tq * se[i], beta[i] + tq * se[i]
            rows.append(
                {
                    "source": s,
                    "target": target,
                    "source_kind": kind[s],
                    "target_kind": kind[target],
                    "strength": float(beta[i]),
                    "lower": float(lo),
                    "upper": float(hi),
                    "prob": prob,
                    "p_sign": float(p_sign[i]),
                    "clear": bool(lo > 0 or hi < 0),
                    "n": n,
                }
            )
    return pl.DataFrame(rows)


def design_space_summary(space: Any) -> Safe:
    """The design space in words: the probability range over the grid, the share of the grid that

    meets the requirement, the fixed CPPs and the set point with its probability.

    Parameters
    ----------
    space
        A :class:`~bioworkbench.models.DesignSpace` (or anything with ``map``, ``prob`` and
        ``set_point()``).

    Returns
    -------
    Safe
        Markdown-safe text, one paragraph.
    """
    m = space.map
    grid = list(getattr(space, "factors_on_grid", [c for c in m.columns if c not in ("prob", "in_region")]))
    fixed = dict(getattr(space, "fixed", None) or {})
    lo, hi = float(m["prob"].min()), float(m["prob"].max())
    frac = float(m["in_region"].cast(pl.Float64).mean())
    where = escape(" × ".join(grid))
    text = (
        f"Over the {m.height} grid points of {where}"
        + (f" ({escape(', '.join(f'{k} = {v:g}' for k, v in fixed.items()))})" if fixed else "")
        + f", the probability that every CQA meets its spec ranges from {lo:.2f} to {hi:.2f}. "
    )
    if frac == 0:
        best = m.sort("prob", descending=True).row(0, named=True)
        at = escape(", ".join(f"{k} = {best[k]:g}" for k in grid))
        return Safe(
            text
            + (
                f"**No setting reaches the required {space.prob:.0%}**: the design space is empty at this requirement; "
                f"the best setting is {at} (P = {best['prob']:.2f})."
            )
        )
    text += f"{frac:.0%} of the grid meets the requirement P ≥ {space.prob:.0%} (the design space)."
    try:
        sp = space.set_point()
    except BioWorkbenchError:  # e.g. no feasible set point; the map stands on its own
        return Safe(text)
    row = sp.row(0, named=True) if isinstance(sp, pl.DataFrame) else dict(sp)
    at = escape(", ".join(f"{k} = {row[k]:.4g}" for k in grid if k in row))
    p = getattr(sp, "prob", row.get("prob"))  # a SetPoint carries its probability as an attribute
    pr = f" (P = {p:.2f})" if p is not None else ""
    note = getattr(sp, "note", "")
    return Safe(text + f" Set point: {at}{pr}." + (f" {escape(note)}" if note else ""))


def campaign_relation_graph(
    data: DesignData, *, intermediates: Sequence[str] = ("peak_vcd", "final_ivcd", "lactate_day7"), prob: float = 0.9
) -> tuple[pl.DataFrame | None, str]:
    """:func:`relation_graph` of a campaign's CPPs, in-process variables and CQAs, keeping as many of

    ``intermediates`` (in the order given) as the number of batches supports.

    Returns the edges (``None`` when not even the CPP → CQA regressions fit) and a note saying which
    in-process variables were left out and why (empty when none was).

    Parameters
    ----------
    data
        A campaign as a designed experiment (:func:`campaign_design`).
    intermediates
        In-process variables to keep, in order of preference.
    prob
        Mass of the coefficients' confidence intervals.

    Returns
    -------
    edges : polars.DataFrame or None
        As :func:`relation_graph`; ``None`` when not even the CPP → CQA regressions fit.
    note : str
        Which in-process variables were left out and why, or why there is no graph; empty when none was.
    """
    cpps = list(data.factors)
    wanted = [c for c in intermediates if c in data.table.columns]
    # batches complete in every column (never more than those complete for any one CQA)
    n = data.table.select(*cpps, *wanted, *data.responses).drop_nulls().height
    keep = list(wanted)
    while keep and n < len(cpps) + len(keep) + 3:
        keep.pop()
    dropped = [c for c in wanted if c not in keep]
    note = (
        f"With {n} complete batches, the in-process variable(s) {', '.join(dropped)} are left out "
        f"(each regression needs at least its number of inputs + 3 batches)."
        if dropped
        else ""
    )
    try:
        return relation_graph(data.table, cpps=cpps, intermediates=keep, cqas=data.responses, prob=prob), note
    except ConfigError as exc:
        return None, f"No relation graph: {exc}"
