"""The growth report's sections: the Bayesian growth and titer models where their data exist, the
kinetics per batch where they do not, each stated in words the numbers support.

:func:`growth_review` fits what the campaign's data allow and says what it could not fit and why:

* the hierarchical growth model (:class:`~bioworkbench.models.GrowthModel`) needs viable cell
  density (VCD) in at least 2 batches with 4 unflagged samples each;
* the titer model (:class:`~bioworkbench.models.TiterModel`, specific productivity qp) needs titer
  and VCD in at least 2 batches with 3 titer samples each;
* a campaign whose biomass is not VCD (dry cell weight, OD: microbial cultures) gets the kinetics
  per batch instead, computed from the samples with fed-batch mass balances
  (:func:`bioworkbench.kinetics.compute`): peak biomass and when, μ, specific uptake and
  production rates per biomass unit, and the cumulative yields ``Y_X/S`` and ``Y_P/S``.

Every section with nothing to show carries one sentence saying what is missing and what it would
show, so the report renders on any campaign. Warnings raised while computing are kept as the
"Notes on the data".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.checks import require_campaign, require_number, require_prob
from bioworkbench.errors import BioWorkbenchError
from bioworkbench.review.display import collect_notes, markdown, notes_markdown, table
from bioworkbench.text import Safe, escape, plural

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["GrowthReview", "growth_review", "kinetics_per_batch"]

#: fewest unflagged VCD samples per batch for the growth model, titer samples for the titer model
MIN_VCD, MIN_TITER = 4, 3
#: robust z-score beyond which a batch's kinetic value is called unusual (as GrowthModel.unusual)
UNUSUAL_Z = 2.5
#: a section with nothing to say
_NOTHING = Safe("")


def kinetics_per_batch(
    campaign: Campaign, kinetics: pl.DataFrame, *, biomass: str, substrate: str | None, product: str | None
) -> pl.DataFrame:
    """One row per batch of the kinetics a microbial scientist reads, each column titled with its unit.

    Parameters
    ----------
    campaign
        The campaign (its offline, unflagged biomass samples give the peak).
    kinetics
        :func:`bioworkbench.kinetics.compute` of the campaign on ``biomass``.
    biomass, substrate, product
        The biomass, substrate and product variables (``None``: not measured).

    Returns
    -------
    polars.DataFrame
        ``batch_id``, the categorical CPPs, then (``t`` the kinetics' time unit):

        ==========================  =======================================================
        column                      definition
        ==========================  =======================================================
        ``peak <X> (unit)``         largest offline biomass sample
        ``time of peak (h)``        its time (first occurrence)
        ``μ max (1/t)``             largest interval μ
        ``μ growth (1/t)``          mean μ of the intervals that end at or before the peak
                                    and have μ > 0
        ``q_<S> (unit)``            mean specific substrate rate over the batch's intervals
                                    (negative: consumed)
        ``q_<P> (unit)``            mean specific production rate over the intervals
        ``Y_X/S (unit)``            cumulative biomass yield on substrate at the last interval
        ``Y_P/S (g/g)``             cumulative product yield on substrate at the last interval
        ==========================  =======================================================

        Columns whose quantity was not computed (no substrate, no product) are absent.
    """
    obs = campaign.offline(variables=biomass)
    unit = obs["unit"].drop_nulls().first() if obs.height else ""
    peak = (
        obs.sort("batch_id", "time_h")
        .group_by("batch_id", maintain_order=True)
        .agg(
            peak=pl.col("value").max(),
            peak_h=pl.col("time_h").filter(pl.col("value") == pl.col("value").max()).first(),
        )
    )
    k = kinetics.join(peak.select("batch_id", "peak_h"), on="batch_id", how="left")

    def unit_of(variable: str) -> str:
        u = kinetics.filter(pl.col("variable") == variable)["unit"]
        return u[0] if len(u) else ""

    mu = k.filter(pl.col("variable") == "mu")
    per = [
        peak.rename({"peak": f"peak {biomass} ({unit})", "peak_h": "time of peak (h)"}),
        mu.group_by("batch_id").agg(pl.col("value").max().alias(f"μ max ({unit_of('mu')})")),
        mu.filter((pl.col("time_h") <= pl.col("peak_h")) & (pl.col("value") > 0))
        .group_by("batch_id")
        .agg(pl.col("value").mean().alias(f"μ growth ({unit_of('mu')})")),
    ]
    rates = [f"q_{v}" for v in (substrate, product) if v]
    rates = ["qp" if r == "q_titer" else r for r in rates]
    for r in rates:
        if unit_of(r):
            per.append(
                k.filter(pl.col("variable") == r)
                .group_by("batch_id")
                .agg(pl.col("value").mean().alias(f"{r} ({unit_of(r)})"))
            )
    for name, label in (("cum_yield_xs", "Y_X/S"), ("cum_yield_ps", "Y_P/S")):
        if unit_of(name):
            per.append(
                k.filter(pl.col("variable") == name)
                .sort("batch_id", "time_h")
                .group_by("batch_id")
                .agg(pl.col("value").last().alias(f"{label} ({unit_of(name)})"))
            )
    cpps = [c for c in campaign.cpps if not campaign.batches.schema[c].is_numeric()]
    out = campaign.batches.select("batch_id", *cpps)
    for frame in per:
        out = out.join(frame, on="batch_id", how="left")
    return out


@dataclass
class GrowthReview:
    """Everything the growth report states (see :func:`growth_review`)."""

    #: the campaign's name, the report's heading
    name: str
    #: the campaign's biomass variable (:func:`~bioworkbench.outcomes.biomass_variable`: ``vcd``, else
    #: ``cdw``, else ``od600``, ...); ``None`` when it measures no biomass
    biomass: str | None
    #: the campaign's product variable (:func:`~bioworkbench.outcomes.product_variable`, e.g. ``titer``);
    #: ``None`` when it has none
    product: str | None
    #: central probability of the intervals shown (e.g. 0.9 for 90 % intervals)
    prob: float
    #: the campaign's tidy observations, every batch (``batch_id, time_h, variable, value, unit, source,
    #: flag, …``), drawn under the fitted growth curves
    observations: pl.DataFrame
    #: the batches without enough data for the growth model (fewer than :data:`MIN_VCD` unflagged VCD
    #: samples, or a recorded status other than ``completed``) and why
    #: (:func:`~bioworkbench.models.usable_batches`): ``batch_id, reason``
    left_out: pl.DataFrame
    #: the fitted :class:`~bioworkbench.models.GrowthModel` (VCD against culture time); ``None`` when it was
    #: not fitted (:attr:`why_no_growth` says why)
    growth: Any = None
    #: the fitted :class:`~bioworkbench.models.TiterModel` (specific productivity qp, pg/cell/d); ``None``
    #: when it was not fitted (:attr:`why_no_titer` says why)
    titer: Any = None
    #: the batches the growth model was fitted on (empty without a growth model)
    growth_ids: list[str] = field(default_factory=list)
    #: the batches the titer model was fitted on, chosen among the growth-model batches with at least
    #: :data:`MIN_TITER` titer samples (empty without a titer model)
    titer_ids: list[str] = field(default_factory=list)
    #: one sentence saying why there is no growth model and what is shown instead; empty when it was fitted
    why_no_growth: Safe = _NOTHING
    #: one sentence saying why there is no titer model; empty when it was fitted
    why_no_titer: Safe = _NOTHING
    #: without a growth model, the kinetics computed from the samples (:func:`bioworkbench.kinetics.compute`
    #: on :attr:`biomass`, with glucose as the substrate when it is measured): long frame ``batch_id, time_h,
    #: variable, value, unit, method``; ``None`` when a growth model was fitted, the campaign measures no
    #: biomass, or no kinetics could be computed
    kinetics: pl.DataFrame | None = None
    #: :attr:`kinetics` as one row per batch (:func:`kinetics_per_batch`: peak biomass and its time (h),
    #: μ max and μ growth, mean specific rates, cumulative yields; each column titled with its unit);
    #: ``None`` when :attr:`kinetics` is
    per_batch: pl.DataFrame | None = None
    #: the kinetics section's sentence: how the kinetics were computed and in which units, why they could
    #: not be, or (with a growth model) where they are reported instead; empty when the campaign has no biomass
    kinetics_note: Safe = _NOTHING
    #: the warnings raised while the review was computed, as plain sentences, once each: the report's
    #: "Notes on the data"
    notes: list[str] = field(default_factory=list)

    # -- text --------------------------------------------------------------------------------
    def summary_text(self) -> Safe:
        """The report's heading and one sentence on what was modelled or computed.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        head = f"## {escape(self.name)}\n\n"
        if self.growth is not None:
            what = f"The growth model describes the VCD of {plural(len(self.growth_ids), 'batch', 'batches')}"
            what += (
                f"; the titer model the productivity of {plural(len(self.titer_ids), 'batch', 'batches')}."
                if self.titer is not None
                else "; no titer model was fitted (see Specific productivity)."
            )
            return Safe(head + what)
        if self.per_batch is not None:
            return Safe(
                head + f"No Bayesian growth model was fitted (see Growth curves); the kinetics of "
                f"{plural(self.per_batch.height, 'batch', 'batches')} are computed from the samples instead."
            )
        return Safe(head + self.why_no_growth)

    def left_out_table(self) -> Any:
        """The batches left out of the models, and why; a sentence when none was.

        Returns
        -------
        Table or Markdown
            The table; empty Markdown when there is none (the section's sentence says why).
        """
        if self.growth is None:
            return markdown("No model was fitted, so no batch was left out of one.")
        if self.left_out.is_empty():
            return markdown("Every batch has enough data for the models.")
        return table(self.left_out)

    def diagnostics_text(self) -> Safe:
        """Sampler diagnostics of each fitted model in plain words.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        from bioworkbench.models import diagnostics_markdown

        if self.growth is None:
            return Safe("No Bayesian model was fitted, so there are no sampler diagnostics to check.")
        parts = [diagnostics_markdown(self.growth.diagnostics(), name="Growth model")]
        if self.titer is not None:
            parts.append(diagnostics_markdown(self.titer.diagnostics(), name="Titer model"))
        return Safe("\n\n".join(parts))

    def growth_text(self) -> Safe:
        """Why there are no growth curves (empty when there are).

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        return _NOTHING if self.growth is not None else self.why_no_growth

    def productivity_text(self) -> Safe:
        """What the qp section shows, or why there is none.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        if self.titer is None:
            return self.why_no_titer
        qp = self.titer.summary(prob=self.prob).filter((pl.col("level") == "campaign") & (pl.col("parameter") == "qp"))
        if qp.is_empty():
            return _NOTHING
        r = qp.row(0, named=True)
        return Safe(
            f"Campaign qp before the shift: {r['mean']:.3g} pg/cell/d "
            f"({100 * self.prob:g} % interval {r['lower']:.3g}–{r['upper']:.3g})."
        )

    def kinetics_text(self) -> Safe:
        """What the kinetics-per-batch section shows, or why it is not needed.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        return self.kinetics_note

    def notes_text(self) -> Safe:
        """The "Notes on the data" section.

        Returns
        -------
        Safe
            Markdown-safe text.
        """
        return notes_markdown(self.notes)

    # -- tables and plots, each empty when its section has a sentence instead -----------------
    def plot_growth_fit(self) -> Any:
        """The fitted growth curves with their intervals over the samples.

        Returns
        -------
        holoviews object or Markdown
            The figure; empty Markdown when there is nothing to draw (the section's sentence says why).
        """
        from bioworkbench import plots

        if self.growth is None:
            return markdown("")
        return plots.plot_growth_fit(self.growth.predict(prob=self.prob), self.observations, batch_ids=self.growth_ids)

    def plot_growth_parameters(self) -> Any:
        """Forest plots of the growth parameters per batch.

        Returns
        -------
        holoviews object or Markdown
            The figure; empty Markdown when there is nothing to draw (the section's sentence says why).
        """
        from bioworkbench import plots

        if self.growth is None:
            return markdown("")
        return plots.plot_forests(
            self.growth.summary(prob=self.prob),
            parameters=["growth_rate", "peak_vcd", "time_of_peak", "decline_rate"],
        )

    def plot_qp(self) -> Any:
        """Forest plot of the specific productivity per batch.

        Returns
        -------
        holoviews object or Markdown
            The figure; empty Markdown when there is nothing to draw (the section's sentence says why).
        """
        from bioworkbench import plots

        if self.titer is None:
            return markdown("")
        return plots.plot_forest(self.titer.summary(prob=self.prob), parameter="qp")

    def qp_table(self) -> Any:
        """The campaign-level parameters of the titer model.

        Returns
        -------
        Table or Markdown
            The table; empty Markdown when there is none (the section's sentence says why).
        """
        if self.titer is None:
            return markdown("")
        ts = self.titer.summary(prob=self.prob)
        return table(ts.filter(pl.col("level") == "campaign"))

    def kinetics_table(self) -> Any:
        """The kinetics per batch (when the growth model is not fitted).

        Returns
        -------
        Table or Markdown
            The table; empty Markdown when there is none (the section's sentence says why).
        """
        if self.per_batch is None:
            return markdown("")
        return table(self.per_batch)

    def plot_kinetics(self) -> Any:
        """The kinetics per batch, one panel per quantity.

        Returns
        -------
        holoviews object or Markdown
            The figure; empty Markdown when there is nothing to draw (the section's sentence says why).
        """
        from bioworkbench import plots

        if self.per_batch is None:
            return markdown("")
        cols = [
            c
            for c in self.per_batch.columns[1:]
            if self.per_batch.schema[c].is_numeric() and self.per_batch[c].drop_nulls().len() > 0
        ]
        return plots.plot_outcomes(self.per_batch, columns=cols)

    def unusual_table(self) -> Any:
        """Batches whose parameters (posterior means) or kinetics lie far from the campaign median.

        Returns
        -------
        Table or Markdown
            The table; empty Markdown when there is none (the section's sentence says why).
        """
        if self.growth is not None:
            found = self.growth.unusual(prob=self.prob)
        elif self.per_batch is not None:
            found = _unusual(self.per_batch)
        else:
            return markdown("")
        if found.is_empty():
            return markdown(
                f"No batch lies more than {UNUSUAL_Z:g} robust standard deviations from the campaign median."
            )
        return table(found)

    def campaign_table(self) -> Any:
        """Campaign-level parameters of the models, or the spread of the kinetics across batches.

        Returns
        -------
        Table or Safe
            The table; a sentence when the model could not be fitted or there is nothing to show.
        """
        if self.growth is not None:
            gs = self.growth.summary(prob=self.prob)
            return table(gs.filter(pl.col("level") == "campaign"))
        if self.per_batch is None:
            return markdown("")
        from bioworkbench.review.campaign import variability

        cols = [c for c in self.per_batch.columns[1:] if self.per_batch.schema[c].is_numeric()]
        return table(variability(self.per_batch, cols).rename({"outcome": "quantity"}))


def _unusual(per_batch: pl.DataFrame) -> pl.DataFrame:
    """Batch values more than :data:`UNUSUAL_Z` robust SDs from the median of their column.

    Robust z = (x − median) / (1.4826 · MAD) (Iglewicz & Hoaglin 1993); columns whose MAD is 0
    are skipped.
    """
    cols = [c for c in per_batch.columns[1:] if per_batch.schema[c].is_numeric()]
    long = per_batch.unpivot(index="batch_id", on=cols, variable_name="quantity").drop_nulls("value")
    long = long.with_columns(
        median=pl.col("value").median().over("quantity"),
    ).with_columns(mad=1.4826 * (pl.col("value") - pl.col("median")).abs().median().over("quantity"))
    out = (
        long.filter(pl.col("mad") > 0)
        .with_columns(robust_z=(pl.col("value") - pl.col("median")) / pl.col("mad"))
        .filter(pl.col("robust_z").abs() > UNUSUAL_Z)
        .select("batch_id", "quantity", "value", "median", "robust_z")
        .sort("batch_id", "quantity")
    )
    return out


def growth_review(
    campaign: Campaign,
    *,
    draws: int | None = None,
    tune: int | None = None,
    chains: int | None = None,
    prob: float = 0.9,
    random_seed: int | None = None,
) -> GrowthReview:
    """Fit the growth and titer models where the campaign's data allow, else compute the kinetics
    per batch, and say in one sentence what could not be done and why.

    Parameters
    ----------
    campaign
        The campaign.
    draws, tune, chains, random_seed
        Sampler settings of both models (``None``: the models' defaults,
        :data:`bioworkbench.models.growth.DEFAULT_DRAWS` draws after
        :data:`bioworkbench.models.growth.DEFAULT_TUNE` tuning steps).
    prob
        Central probability of the intervals.

    Returns
    -------
    GrowthReview
        The fitted models (or ``None`` with the reason in ``why_no_growth``/``why_no_titer``),
        the batches used and left out, and for a campaign without VCD the kinetics per batch
        (:func:`kinetics_per_batch`).

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign; a sampler setting or ``prob`` out of range.
    """
    from bioworkbench.models import GrowthModel, usable_batches
    from bioworkbench.outcomes import biomass_variable, product_variable

    fn = "growth_review"
    campaign = require_campaign(campaign, function=fn)
    prob = require_prob(prob, function=fn)
    sampler = {}
    settings = {"draws": (draws, 1), "tune": (tune, 1), "chains": (chains, 1), "random_seed": (random_seed, 0)}
    for arg, (value, low) in settings.items():
        if value is not None:
            sampler[arg] = int(require_number(value, function=fn, argument=arg, minimum=low, integer=True))
    biomass = biomass_variable(campaign)
    product = product_variable(campaign)
    measured = set(campaign.observations.filter(pl.col("flag").is_null())["variable"].unique().to_list())
    rev = GrowthReview(
        name=campaign.name,
        biomass=biomass,
        product=product,
        prob=prob,
        observations=campaign.observations,
        left_out=pl.DataFrame(schema={"batch_id": pl.String, "reason": pl.String}),
    )
    with collect_notes(rev.notes):
        ids, left_out = usable_batches(campaign, min_vcd=MIN_VCD)
        rev.left_out = left_out
        if "vcd" not in measured:
            rev.why_no_growth = Safe(
                "The Bayesian growth model needs viable cell density (VCD); "
                + (
                    f"this campaign measures its biomass as {_biomass_words(campaign, measured)}, "
                    "so the kinetics per batch below are computed from the samples instead."
                    if biomass
                    else "this campaign measures no biomass at all, so there are no growth curves or kinetics."
                )
            )
        elif len(ids) < 2:
            rev.why_no_growth = Safe(
                f"The Bayesian growth model needs at least 2 completed batches with {MIN_VCD} VCD samples each; "
                f"{plural(len(ids), 'batch has', 'batches have')} them"
                + (": " + escape("; ".join(f"{b}: {r}" for b, r in left_out.iter_rows())) if left_out.height else "")
                + ". The kinetics per batch below are computed from the samples instead."
            )
        else:
            try:
                rev.growth = GrowthModel().fit(campaign, batch_ids=ids, **sampler)
                rev.growth_ids = list(rev.growth.data["batch_ids"])
            except BioWorkbenchError as exc:
                rev.why_no_growth = Safe(f"The growth model could not be fitted: {escape(str(exc))}")
        rev.why_no_titer = _fit_titer(rev, campaign, measured, sampler)
        if rev.growth is None and biomass is not None:
            _kinetics(rev, campaign, biomass, product, measured)
        elif rev.growth is not None:
            rev.kinetics_note = Safe(
                "The growth model above describes the biomass (VCD) of these batches; the kinetics computed "
                "between samples without a model (μ, specific rates) are in the campaign and batch reports."
            )
    return rev


def _biomass_words(campaign: Campaign, measured: set[str]) -> str:
    """``dry cell weight (cdw, g/L) and optical density (od600, AU)``: the biomass variables measured."""
    from bioworkbench.variables import biomass_choices, registry

    reg = registry()
    names = [b for b in biomass_choices() if b in measured]
    return " and ".join(
        f"{escape(reg[b].description)} ({escape(b)}, {escape(reg[b].unit)})" if b in reg else escape(b) for b in names
    )


def _fit_titer(rev: GrowthReview, campaign: Campaign, measured: set[str], sampler: dict[str, int]) -> Safe:
    """Fit the titer model into ``rev`` when titer and a growth model exist; else say why not."""
    from bioworkbench.models import TiterModel, usable_batches

    if "titer" not in measured:
        other = (
            f" The product here is {escape(rev.product)}: its specific production rate per biomass unit is in "
            "the kinetics per batch."
            if rev.product and rev.product != "titer"
            else ""
        )
        return Safe(
            "No titer is measured in this campaign, so specific productivity is not modelled; with titer samples "
            "this section would show qp (pg/cell/d) per batch, from titer against the integral of VCD, before "
            "and after the temperature shift." + other
        )
    if rev.growth is None:
        return Safe(
            "The titer model relates titer to the integral of viable cell density, which this campaign does not "
            "give; specific production rates per biomass unit are in the kinetics per batch."
        )
    ids, _ = usable_batches(campaign, min_vcd=MIN_VCD, min_titer=MIN_TITER)
    ids = [b for b in ids if b in rev.growth_ids]
    if len(ids) < 2:
        return Safe(
            f"The titer model needs at least 2 modelled batches with {MIN_TITER} titer samples each; "
            f"{plural(len(ids), 'batch has', 'batches have')} them, so specific productivity is not modelled."
        )
    try:
        rev.titer = TiterModel().fit(campaign, batch_ids=ids, **sampler)
        rev.titer_ids = list(rev.titer.data["batch_ids"])
    except BioWorkbenchError as exc:
        return Safe(f"The titer model could not be fitted: {escape(str(exc))}")
    return _NOTHING


def _kinetics(rev: GrowthReview, campaign: Campaign, biomass: str, product: str | None, measured: set[str]) -> None:
    """The kinetics per batch of ``rev`` (a campaign without a growth model) and its sentence."""
    from bioworkbench import kinetics

    substrate = "glucose" if "glucose" in measured else None
    try:
        kin = kinetics.compute(campaign, biomass=biomass, substrate=substrate)
    except BioWorkbenchError as exc:
        rev.kinetics_note = Safe(f"The kinetics could not be computed: {escape(str(exc))}")
        return
    if kin.is_empty():
        rev.kinetics_note = Safe(
            f"No kinetics could be computed: no batch has two {escape(biomass)} samples (see the notes below)."
        )
        return
    rev.kinetics = kin
    rev.per_batch = kinetics_per_batch(
        campaign, kin, biomass=biomass, substrate=substrate, product=product if product in measured else None
    )
    mu_unit = kin.filter(pl.col("variable") == "mu")["unit"].first() or ""
    basis = {"cdw": "per gram of dry cell weight", "od600": "per OD unit and litre"}.get(
        biomass, f"per unit of {escape(biomass)}"
    )
    if biomass == "vcd":
        basis = "per cell"
    parts = [
        f"Computed from the samples with fed-batch mass balances (volumes, feeds and samples accounted for), "
        f"biomass as {escape(biomass)}: μ in {escape(mu_unit)}, specific rates {basis} (negative: consumed)"
    ]
    if substrate and any(c.startswith("Y_X/S") for c in rev.per_batch.columns):
        parts.append(f", cumulative yields on {escape(substrate)} at the last sample")
    parts.append(
        ". Peak biomass is the largest sample; μ growth the mean μ up to the peak. The Bayesian growth model "
        "needs viable cell density and is not fitted here."
    )
    rev.kinetics_note = Safe("".join(parts))
