"""Write the report notebooks (kept as code so their cells stay reviewed; outputs are never committed).

Run: .venv/bin/python scripts/make_notebooks.py
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL = {"name": "bioworkbench", "display_name": "Python (bioworkbench)", "language": "python"}


def md(text):
    return nbf.v4.new_markdown_cell(text)


def code(text, tags=None):
    c = nbf.v4.new_code_cell(text)
    if tags:
        c.metadata["tags"] = tags
    return c


def write(name, cells):
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, HERE / f"{name}.ipynb")


write(
    "batch_report",
    [
        md("# Batch report"),
        code(
            'campaign: str = "../data/demo"  # path of the campaign folder\n'
            'batch_id: str = "B01"  # the batch to report on\n'
            "prob: float = 0.9  # central share of the other batches in the campaign envelope\n"
            "known_days: float = 0.0  # forecast the end of the batch from its first days (0: no forecast)\n"
            "draws: int = 500  # posterior draws per chain for the forecast\n"
            "random_seed: int = 1  # seed of the forecast's sampler",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "rev = bw.review.batch_review(camp, batch_id, prob=prob)\n"
            'bw.review.markdown(f"## Batch {batch_id} — {camp.name}")'
        ),
        md(
            "## Release by exception\nEverything a reviewer must look at for this batch: CQAs out of specification, "
            "CPPs outside their proven acceptable range, alarm-limit excursions, probe drift, data gaps and flagged "
            "values. A batch with no rows here is released by exception."
        ),
        code(
            "exc = bw.monitoring.exceptions(camp, batch_ids=[batch_id])\n"
            "bw.review.markdown(bw.monitoring.exceptions_summary(exc, batch_id))"
        ),
        code("bw.review.table(exc.select('severity', 'category', 'variable', 'sentence'))"),
        md("## Summary\nWritten from the numbers below; nothing in it is edited by hand."),
        code("bw.review.markdown(rev.narrative)"),
        md("## Batch"),
        code("bw.review.table(rev.header_table())"),
        md(
            "## Excursions\nEvery value outside a limit: CQA specs and PARs first (critical), then alarm limits and "
            "probe drift (major), then points outside the band of the other batches (minor), largest first."
        ),
        code("bw.review.table(rev.excursions.select('severity', 'variable', 'kind', 'sentence'))"),
        md(
            "## Data completeness\nSamples expected (from the campaign's schedule) against samples present; "
            "flagged results and why they were flagged."
        ),
        code("bw.review.table(rev.completeness)"),
        md(
            "## Trajectories against the campaign envelope\nThe band holds the central share of the *other* batches "
            "by culture day; the red line is this batch."
        ),
        code("bw.plots.plot_batch_envelopes(rev.envelope, rev.observations, batch_id=batch_id)"),
        md(
            "## Kinetics\nμ from viable cell numbers with fed-batch volume bookkeeping; qp from the titer mass balance. "
            "Specific rates are negative when consumed."
        ),
        code("bw.review.table(rev.kinetics_summary())"),
        code("bw.plots.plot_kinetics(rev.kinetics, highlight=batch_id)"),
        md("## Harvest quality attributes against specifications"),
        code("bw.review.table(rev.cqas)"),
        md("## Online traces"),
        code("bw.plots.plot_online(camp.observations, batch_id=batch_id)"),
        md(
            "## Forecast\nFor a running batch: the hierarchical growth and titer models learn from the other "
            "completed batches and from this batch's first `known_days` days only; later data (if any) are drawn in "
            "grey to check the forecast."
        ),
        code(
            "fc = bw.review.forecast_section(camp, batch_id, known_days=known_days, draws=draws, tune=draws, random_seed=random_seed)\n"
            "bw.review.markdown(fc.text)"
        ),
        code("fc.table()"),
        code("fc.plot()"),
    ],
)

write(
    "campaign_report",
    [
        md("# Campaign report"),
        code('campaign: str = "../data/demo"  # path of the campaign folder', tags=["parameters"]),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "crev = bw.review.campaign_review(camp)\n"
            'bw.review.markdown(f"## {camp.name}\\n\\n{camp.description}")'
        ),
        md("## Summary"),
        code("bw.review.markdown(crev.narrative)"),
        md("## Batches\nOne row per batch: status, CPP setpoints, kinetic outcomes and harvest CQAs."),
        code("bw.review.table(crev.table)"),
        md("## Release by exception\nExceptions per batch by severity; batches with none are released by exception."),
        code(
            "exc = bw.monitoring.exceptions(camp)\nbw.review.table(bw.monitoring.exception_counts(exc, camp.batch_ids))"
        ),
        md(
            "## Multivariate monitoring (MSPC)\nBatch-wise unfolded PCA of the online traces of the completed batches "
            "(culture-time grid); Hotelling's T² and SPE of every batch against their 99 % limits, scores with the "
            "confidence ellipse, and the variables that drive the SPE of the worst batch."
        ),
        code(
            "aligned = bw.monitoring.align_by_time(camp, variables=['ph', 'do', 'temperature'], grid_h=4, source='online')\n"
            "mspc = bw.monitoring.BatchPCA(n_components=2).fit(aligned)\n"
            "stats = mspc.batch_statistics(prob=0.99)\n"
            "bw.review.table(stats.select('batch_id', 't2', 't2_limit', 'spe', 'spe_limit', 't2_flag', 'spe_flag'))"
        ),
        code("worst = stats.sort('spe', descending=True)['batch_id'][0]\n"
             "bw.plots.plot_scores(stats, highlight=[worst]) + bw.plots.plot_contributions(mspc.contributions(worst), statistic='spe')"),
        md(
            "## Exceptional batches\nEach reason on its own row: status, CQAs out of specification, outcomes far from "
            "the campaign (robust z-score), a drifting probe, flagged data."
        ),
        code("bw.review.table(crev.exceptional)"),
        md("## Trajectories\nAll batches overlaid, culture time in days."),
        code("bw.plots.plot_trajectories(camp.observations, variable='vcd')"),
        code("bw.plots.plot_trajectories(camp.observations, variable='viability')"),
        code("bw.plots.plot_trajectories(camp.observations, variable='titer')"),
        code("bw.plots.plot_trajectories(camp.observations, variable='lactate')"),
        md("## Batch-to-batch variability\nCompleted batches only; CV = SD / mean."),
        code("bw.review.table(crev.variability)"),
        code(
            "bw.plots.plot_outcomes(crev.table, columns=[c for c in ('peak_vcd', 'mu_growth', 'qp', 'final_titer') if c in crev.table.columns])"
        ),
        md("## CQAs against CPP setpoints\nDashed lines are the specification limits."),
        code("bw.plots.plot_cqa_grid(crev.table, attributes=crev.cqas, cpps=crev.cpps, specs=camp.specs)"),
    ],
)


write(
    "growth_report",
    [
        md("# Growth and productivity report"),
        code(
            'campaign: str = "../data/demo"  # path of the campaign folder\n'
            "draws: int = 1000  # posterior draws per chain\n"
            "chains: int = 2  # Markov chains\n"
            "prob: float = 0.9  # central interval probability\n"
            "random_seed: int = 1  # sampler seed",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "ids, left_out = bw.models.usable_batches(camp, min_vcd=4, min_titer=3)\n"
            "growth = bw.models.GrowthModel().fit(camp, batch_ids=ids, draws=draws, tune=draws, chains=chains, random_seed=random_seed)\n"
            "titer = bw.models.TiterModel().fit(camp, batch_ids=ids, draws=draws, tune=draws, chains=chains, random_seed=random_seed)\n"
            'bw.review.markdown(f"## {camp.name}: {len(ids)} batches modelled")'
        ),
        md("Batches left out of the models, and why:"),
        code("bw.review.table(left_out)"),
        md(
            "## Diagnostics\nDivergences, r̂ and effective sample sizes of both fits; a warning block appears when they are poor."
        ),
        code(
            "bw.review.markdown(bw.models.diagnostics_markdown(growth.diagnostics(), name='Growth model') + '\\n\\n' + "
            "bw.models.diagnostics_markdown(titer.diagnostics(), name='Titer model'))"
        ),
        md(
            "## Fitted growth curves\nPosterior mean and interval of each batch's VCD curve over its data "
            "(red crosses: flagged values, not used)."
        ),
        code("bw.plots.plot_growth_fit(growth.predict(prob=prob), camp.observations, batch_ids=ids)"),
        md(
            "## Parameters per batch\nGrowth rate μ, peak VCD and its day, decline rate; the grey band is the campaign-level value."
        ),
        code(
            "gs = growth.summary(prob=prob)\n"
            "bw.plots.plot_forests(gs, parameters=['growth_rate', 'peak_vcd', 'time_of_peak', 'decline_rate'])"
        ),
        md(
            "## Specific productivity\nqp (pg/cell/d) per batch from titer against IVCD, before the temperature shift; "
            "the campaign ratio after/before the shift is in the table."
        ),
        code("ts = titer.summary(prob=prob)\nbw.plots.plot_forest(ts, parameter='qp')"),
        code("bw.review.table(ts.filter(ts['level'] == 'campaign'))"),
        md(
            "## Batches with unusual parameters\nPosterior means more than 2.5 robust standard deviations from the campaign median."
        ),
        code("bw.review.table(growth.unusual(prob=prob))"),
        md("## Campaign-level parameters"),
        code("bw.review.table(gs.filter(gs['level'] == 'campaign'))"),
    ],
)

write(
    "explore_campaign",
    [
        md(
            "# Explore a campaign\n\nRead a campaign folder, see what it holds, and compute the kinetics of every batch. "
            "Run it as it is on the demo campaign (`make demo` writes `data/demo/`), or set `campaign` to your own folder."
        ),
        code(
            'campaign: str = "../data/demo"  # path of a campaign folder (Parquet or CSV frames + campaign.yaml)\n'
            'batch_id: str = ""  # one batch to look at closely (empty: the first batch)',
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\nbw.plots.setup()\ncamp = bw.read_campaign(campaign)\nprint(camp.describe())"
        ),
        md("One row per batch: how long it ran, how many samples and flags it has, its peak VCD and final titer."),
        code("bw.review.table(camp.summary())"),
        md(
            "Flagged observations are kept, with the reason and the file and line they came from; analyses leave them out."
        ),
        code(
            "bw.review.table(camp.flagged().select('batch_id', 'time_h', 'variable', 'value', 'flag', 'flag_reason', "
            "'source_file', 'source_line'), max_rows=50)"
        ),
        md(
            "Kinetics of one batch: IVCD, growth rate μ (from viable cell numbers, with fed-batch volume bookkeeping), "
            "specific rates (negative = consumed) and cumulative amounts, in a wide table by sample time."
        ),
        code(
            "kin = bw.kinetics.compute(camp)\n"
            "one = batch_id or camp.batch_ids[0]\n"
            "bw.review.table(bw.kinetics.wide(kin, batch_id=one))"
        ),
        md(
            "Specific productivity per batch as the slope of titer against IVCD (pg/cell/d), with its standard error and R²."
        ),
        code("bw.review.table(bw.kinetics.qp_regression(camp, start_h=72).sort('qp', descending=True))"),
        md("Trajectories of all batches, the chosen one highlighted."),
        code("bw.plots.plot_trajectories(camp.observations, variable='vcd', highlight=batch_id or camp.batch_ids[0])"),
        code(
            "bw.plots.plot_trajectories(camp.observations, variable='viability', highlight=batch_id or camp.batch_ids[0])"
        ),
        code(
            "bw.plots.plot_trajectories(camp.observations, variable='titer', highlight=batch_id or camp.batch_ids[0])"
        ),
    ],
)

write(
    "doe_report",
    [
        md(
            "# Design of experiments and design space\n\n"
            "Which process parameters (CPPs) move which quality attributes (CQAs), where all CQAs meet their specs "
            "with the required probability (the design space), and which CPPs are critical."
        ),
        code(
            'campaign: str = "../data/demo"  # campaign folder whose designed CPPs (cpp_* setpoints) and harvest CQAs are analysed\n'
            'terms: str = "interactions"  # model terms: linear, interactions, quadratic, or a list such as A,B,A:B,A^2\n'
            "prob: float = 0.9  # required probability that all CQAs meet their specs (design space)\n"
            "grid: int = 40  # grid points per factor of the design-space map\n"
            "threshold: float = 0.2  # impact over a CPP's range / spec width above which the CPP is critical\n"
            "draws: int = 1000  # posterior draws per chain\n"
            "tune: int = 1000  # tuning steps per chain\n"
            "chains: int = 2  # Markov chains\n"
            "random_seed: int = 1  # seed of the sampler and of the predictive Monte Carlo",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "dd = bw.criticality.campaign_design(camp, at_day={'lactate': 7})\n"
            "model_terms = terms if terms in ('linear', 'interactions', 'quadratic') else [t.strip() for t in terms.split(',')]\n"
            "rs, note = bw.criticality.fit_response_surface(dd, terms=model_terms, draws=draws, tune=tune, chains=chains, "
            "random_seed=random_seed)\n"
            'bw.review.markdown(f"## {camp.name}\\n\\n{dd.summary()} {note}")'
        ),
        md(
            "## The design\nThe CPP setpoints the batches ran at (coded −1 … +1 between the lowest and highest setpoint), "
            "with the number of batches at each point."
        ),
        code("bw.plots.plot_design(dd.table, factors=list(dd.factors))"),
        md("## The data\nOne row per batch: CPPs, in-process variables and harvest CQAs."),
        code("bw.review.table(dd.table)"),
        md(
            "## Model diagnostics\nA Bayesian regression of every CQA on the coded CPPs, with correlated residuals "
            "between CQAs; a warning block appears when the sampler diagnostics are poor."
        ),
        code("bw.review.markdown(bw.models.diagnostics_markdown(rs.diagnostics(), name='Response surface'))"),
        md(
            "## Effects\nChange of each CQA per coded unit (half the CPP's range), with intervals and the probability "
            "of the sign. Coloured terms have intervals that exclude zero."
        ),
        code("eff = rs.effects(prob=prob)\nbw.plots.plot_effects(eff)"),
        code("bw.review.table(eff)"),
        md("## Response surfaces\nPosterior mean of each CQA over the first two CPPs (the others at their centre)."),
        code(
            "names = list(dd.factors)\n"
            "bw.plots.layout([bw.plots.plot_response_surface(rs, response=r, x=names[0], y=names[1], data=dd.table, n=30) "
            "for r in dd.responses])"
        ),
        md(
            "## Design space\nThe posterior predictive probability that **all** CQAs meet their specs together "
            "(parameter uncertainty and residual variation included; Peterson's definition), over the first two CPPs; "
            "the black line bounds the region where it is at least the required probability, the star is the set point."
        ),
        code(
            "space = rs.design_space(dd.specs, grid=grid, prob=prob, random_seed=random_seed)\n"
            "bw.plots.plot_design_space(space)"
        ),
        code("bw.review.markdown(bw.criticality.design_space_summary(space))"),
        md(
            "## Proven acceptable ranges\nFor each CPP, the range over which the probability stays at or above the "
            "requirement with the other CPPs at the set point (one factor at a time)."
        ),
        code("par = space.proven_acceptable_range()\nbw.plots.plot_par(par, factors=dd.factors)"),
        code("bw.review.table(par)"),
        md(
            "## CPP ranking\nThe impact of each CPP on each CQA over its studied range, relative to the spec width; "
            "CPPs whose impact is at least the threshold with probability ≥ 0.5 are flagged critical (red)."
        ),
        code(
            "impact = bw.criticality.cpp_impact(rs, dd.specs, threshold=threshold, prob=prob)\n"
            "bw.plots.plot_cpp_impact(impact, threshold=threshold)"
        ),
        code("bw.review.table(impact)"),
        md(
            "## What acts on what\nCPPs → in-process variables → CQAs: each edge is a standardised effect with the other "
            "inputs of its target held fixed (path coefficients); faint dashed edges have intervals that include zero. "
            "Hover an edge for its interval."
        ),
        code(
            "edges, note = bw.criticality.campaign_relation_graph(dd, intermediates=['peak_vcd', 'final_ivcd', 'lactate_day7'], prob=prob)\n"
            "bw.review.markdown(note)"
        ),
        code("bw.plots.plot_relation_graph(edges) if edges is not None else None"),
        code("bw.review.table(edges.filter(edges['clear']).sort('strength', descending=True)) if edges is not None else None"),
    ],
)

write(
    "stability_report",
    [
        md(
            "# Stability and shelf life\n\n"
            "The ICH Q1E regression analysis with its decision trail, a Bayesian accelerated-stability (Arrhenius) "
            "model's prediction at the storage condition, the probability of staying within spec, and the two "
            "shelf-life answers side by side."
        ),
        code(
            'study: str = ""  # stability table (CSV or Excel); empty: a study simulated from a known Arrhenius model\n'
            'attribute: str = "potency"  # attribute to analyse\n'
            "lower: float | None = 95.0  # lower acceptance limit (None: no lower limit)\n"
            "upper: float | None = None  # upper acceptance limit (None: no upper limit)\n"
            "storage_c: float = 5.0  # long-term storage temperature (°C)\n"
            'storage: str = "refrigerated"  # ICH Q1E extrapolation rules: room, refrigerated or frozen\n'
            "temperature_c: float | None = None  # temperature of every row when the table has none (°C)\n"
            'kinetics: str = "first_order"  # Bayesian model: zero_order, first_order or sestak_berggren\n'
            "confidence: float = 0.95  # ICH Q1E confidence of the bound of the mean\n"
            "prob: float = 0.9  # central interval probability of the Bayesian results\n"
            "target: float = 0.95  # probability of staying in spec that a shelf life must reach\n"
            "horizon: float = 36.0  # last time shown (study time unit)\n"
            "draws: int = 1000  # posterior draws per chain\n"
            "tune: int = 1000  # tuning steps per chain\n"
            "chains: int = 2  # Markov chains\n"
            "random_seed: int = 1  # seed of the simulated study and of the sampler",
            tags=["parameters"],
        ),
        code(
            "import numpy as np\n"
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "if study:\n"
            "    data = bw.read_study(study, temperature_c=temperature_c)\n"
            "    source = study\n"
            "else:\n"
            "    data = bw.simulate_stability(attribute=attribute, random_seed=random_seed)\n"
            "    source = 'simulated from a known first-order Arrhenius model (bw.simulate_stability)'\n"
            "bw.review.markdown(bw.stability.describe_study(data, source=source))"
        ),
        md("## The study"),
        code("bw.review.table(bw.stability.study_overview(data))"),
        md(
            "## ICH Q1E analysis\nLinear regression per lot at the long-term condition, poolability tests (equal slopes, "
            "then equal intercepts, at α = 0.25) and the confidence bound of the mean against the limit(s)."
        ),
        code(
            "q1e = bw.stability.shelf_life(data, attribute=attribute, lower=lower, upper=upper, "
            "condition=bw.stability.condition_at(data, storage_c), confidence=confidence, storage=storage)\n"
            "bw.review.markdown(q1e.narrative())"
        ),
        code("bw.review.table(q1e.tests)"),
        code("bw.review.table(q1e.table)"),
        code("bw.plots.plot_shelf_life(q1e)"),
        md(
            "## Bayesian accelerated-stability model\nDegradation kinetics with an Arrhenius temperature dependence, "
            "fitted jointly on every condition, lot-to-lot variation partially pooled; prediction for a new lot at the "
            "storage temperature."
        ),
        code(
            "bayes = bw.stability.bayesian_analysis(data, attribute=attribute, kinetics=kinetics, lower=lower, upper=upper, "
            "storage_c=storage_c, horizon=horizon, prob=prob, target=target, draws=draws, tune=tune, chains=chains, "
            "random_seed=random_seed)\n"
            "bw.review.markdown(bayes.text)"
        ),
        code("bw.review.markdown(bayes.diagnostics)"),
        code(
            "bw.plots.plot_stability_prediction(bayes.prediction, study=data, attribute=attribute, lower=lower, upper=upper, "
            "temperature_c=storage_c, what='a new lot (predictive)') if bayes.prediction is not None else None"
        ),
        md("## Probability of staying within spec"),
        code(
            "bw.plots.plot_prob_in_spec(bayes.prob_in_spec, target=target, shelf_life=q1e.shelf_life) "
            "if bayes.prob_in_spec is not None else None"
        ),
        code("bw.review.table(bayes.summary) if bayes.summary is not None else None"),
        md("## The two shelf-life answers"),
        code("bw.review.table(bw.stability.compare_shelf_lives(q1e, bayes))"),
        code("bw.review.markdown(bw.stability.comparison_sentence(q1e, bayes))"),
    ],
)
