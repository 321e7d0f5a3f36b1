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
            "prob: float = 0.9  # central share of the other batches in the campaign band (0, 1)\n"
            "known_days: float = 0.0  # look at the batch as it stood on this culture day, 0 for all its data [0, inf)\n"
            "forecast: bool = True  # forecast the harvest when the batch is running\n"
            "draws: int = 1000  # posterior draws per chain of the forecast [1, inf)\n"
            "random_seed: int = 1  # seed of the forecast's sampler [0, inf)",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "rev = bw.review.batch_review(camp, batch_id, prob=prob, known_days=known_days)\n"
            'bw.review.markdown("## Batch {batch_id} — {name}", batch_id=batch_id, name=camp.name)'
        ),
        md(
            "## Release status\nReleased by exception only when the batch has completed, every expected quality "
            "result and sample is present, and nothing below needs a reviewer's attention."
        ),
        code("bw.review.markdown(rev.verdict_text())"),
        code("bw.review.markdown(rev.status_text())"),
        md(
            "## Exceptions\nEverything a reviewer must look at: CQAs out of specification or missing, CPPs outside "
            "their proven acceptable range, alarm-limit excursions, probe drift, data gaps and flagged values."
        ),
        code("rev.exception_table()"),
        md("## Summary\nWritten from the numbers below; nothing in it is edited by hand."),
        code("bw.review.markdown(rev.narrative)"),
        md("## Batch"),
        code("bw.review.table(rev.header_table())"),
        md(
            "## Limits\nValues outside an alarm or specification limit (online runs grouped), CPPs outside their "
            "proven acceptable range and CQAs out of specification, most severe first."
        ),
        code("rev.excursion_table()"),
        md(
            "## Against the other batches\nThe band holds the central share of the *other* batches by culture day; "
            "a batch like the others has about 1 − prob of its points outside it by chance."
        ),
        code("bw.review.markdown(rev.envelope_text())"),
        code("rev.envelope_details()"),
        code("rev.plot_envelopes()"),
        md(
            "## Data completeness\nSamples expected (from the campaign's schedule) against samples present; "
            "flagged results and why they were flagged."
        ),
        code("bw.review.table(rev.completeness.drop('batch_id'))"),
        md(
            "## Kinetics\nμ from viable cell numbers with fed-batch volume bookkeeping; qp from the titer mass balance. "
            "Specific rates are negative when consumed."
        ),
        code("bw.review.table(rev.kinetics_summary())"),
        code("rev.plot_kinetics()"),
        md("## Harvest quality attributes against specifications"),
        code("rev.cqa_table()"),
        md("## Online traces"),
        code("rev.plot_online()"),
        md(
            "## Forecast\nFor a running batch: the hierarchical growth and titer models learn from the completed "
            "batches and from what this batch has shown so far, with its planned process changes; measurements made "
            "after the day the report looks from (if any) are drawn in grey and were not used."
        ),
        code(
            "fc = bw.review.forecast_section(camp, batch_id, known_days=known_days, forecast=forecast, draws=draws, "
            "tune=draws, random_seed=random_seed)\n"
            "bw.review.markdown(fc.text)"
        ),
        code("fc.table()"),
        code("fc.plot()"),
        md("## Notes on the data\nWhat was noticed while computing this report, in plain words."),
        code("bw.review.markdown(bw.review.notes_markdown(rev.notes + fc.notes))"),
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
            'bw.review.markdown("## {name}\\n\\n{description}", name=camp.name, description=camp.description)'
        ),
        md("## Summary"),
        code("bw.review.markdown(crev.narrative)"),
        md(
            "## Release by exception\nExceptions per batch by severity and the release verdict: released only when "
            "a batch has completed with every expected result and sample present and no exception."
        ),
        code("bw.review.table(crev.release)"),
        md(
            "## Batches\nOne row per batch: status, verdict, CPP setpoints, kinetic outcomes and harvest CQAs "
            "(for a batch that is not completed, the latest values so far)."
        ),
        code("bw.review.table(crev.table)"),
        md(
            "## Multivariate monitoring (MSPC)\nBatch-wise unfolded PCA of the online traces (culture-time grid); "
            "Hotelling's T² and SPE of every batch against their 99 % limits, scores with the confidence ellipse, "
            "and the variables that drive the SPE of the worst batch."
        ),
        code("bw.review.markdown(crev.mspc.text())"),
        code("crev.mspc.table()"),
        code("crev.mspc.plot()"),
        md(
            "## Exceptional batches\nEach reason on its own row: status, CQAs out of specification, outcomes far from "
            "the completed batches (robust z-score), a drifting probe, flagged data."
        ),
        code("bw.review.table(crev.exceptional)"),
        md("## Trajectories\nAll batches overlaid, culture time in days."),
        code("crev.plot_trajectories()"),
        md("## Batch-to-batch variability\nCompleted batches only; CV = SD / mean."),
        code("bw.review.table(crev.variability)"),
        code("crev.plot_outcomes()"),
        md("## CQAs against CPP setpoints\nDashed lines are the specification limits."),
        code("crev.plot_cqa_grid()"),
        md("## Notes on the data\nWhat was noticed while computing this report, in plain words."),
        code("bw.review.markdown(crev.notes_text())"),
    ],
)


write(
    "growth_report",
    [
        md(
            "# Growth and productivity report\n\nThe hierarchical growth model of viable cell density and the titer "
            "model of specific productivity where the campaign has their data; for other biomass (dry cell weight, "
            "OD) the kinetics per batch computed from the samples."
        ),
        code(
            'campaign: str = "../data/demo"  # path of the campaign folder\n'
            "draws: int = 2000  # posterior draws per chain of each model [1, inf)\n"
            "tune: int = 500  # tuning steps per chain [1, inf)\n"
            "chains: int = 4  # Markov chains [1, inf)\n"
            "prob: float = 0.9  # central interval probability (0, 1)\n"
            "random_seed: int = 1  # sampler seed [0, inf)",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "rev = bw.review.growth_review(camp, draws=draws, tune=tune, chains=chains, prob=prob, random_seed=random_seed)\n"
            "bw.review.markdown(rev.summary_text())"
        ),
        md("## Batches left out\nBatches without enough data for the models, and why."),
        code("rev.left_out_table()"),
        md(
            "## Diagnostics\nWhether the sampler explored each model well enough for its intervals to be read as they are."
        ),
        code("bw.review.markdown(rev.diagnostics_text())"),
        md(
            "## Growth curves\nPosterior mean and interval of each batch's VCD curve over its data "
            "(red crosses: flagged values, not used)."
        ),
        code("bw.review.markdown(rev.growth_text())"),
        code("rev.plot_growth_fit()"),
        md(
            "## Growth parameters per batch\nGrowth rate μ, peak VCD and its day, decline rate; the grey band is the "
            "campaign-level value."
        ),
        code("rev.plot_growth_parameters()"),
        md(
            "## Specific productivity\nqp (pg/cell/d) per batch from titer against IVCD, before the temperature shift; "
            "the campaign ratio after/before the shift is in the table."
        ),
        code("bw.review.markdown(rev.productivity_text())"),
        code("rev.plot_qp()"),
        code("rev.qp_table()"),
        md(
            "## Kinetics per batch\nFor biomass other than viable cells: peak biomass, μ, specific rates per biomass "
            "unit and yields, from the samples with fed-batch mass balances."
        ),
        code("bw.review.markdown(rev.kinetics_text())"),
        code("rev.kinetics_table()"),
        code("rev.plot_kinetics()"),
        md(
            "## Batches with unusual values\nPosterior means (or kinetic values) more than 2.5 robust standard "
            "deviations from the campaign median."
        ),
        code("rev.unusual_table()"),
        md("## Campaign level\nThe models' campaign-level parameters, or the spread of the kinetics across batches."),
        code("rev.campaign_table()"),
        md("## Notes on the data\nWhat was noticed while computing this report, in plain words."),
        code("bw.review.markdown(rev.notes_text())"),
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
            "prob: float = 0.9  # required probability that all CQAs meet their specs (design space) (0, 1)\n"
            "grid: int = 40  # grid points per factor of the design-space map [2, inf)\n"
            "threshold: float = 0.2  # impact over a CPP's range / spec width above which the CPP is critical [0, inf)\n"
            "draws: int = 1000  # posterior draws per chain [1, inf)\n"
            "tune: int = 1000  # tuning steps per chain [1, inf)\n"
            "chains: int = 2  # Markov chains [1, inf)\n"
            "random_seed: int = 1  # seed of the sampler and of the predictive Monte Carlo [0, inf)",
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
            'bw.review.markdown("## {name}\\n\\n{summary} {note}", name=camp.name, summary=dd.summary(), note=note)'
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
            "bw.review.markdown('{text}', text=note)"
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
            'storage: str = "refrigerated"  # ICH Q1E extrapolation rules {room, refrigerated, frozen}\n'
            "temperature_c: float | None = None  # temperature of every row when the table has none (°C)\n"
            'kinetics: str = "first_order"  # Bayesian degradation model {zero_order, first_order, sestak_berggren}\n'
            "confidence: float = 0.95  # ICH Q1E confidence of the bound of the mean (0, 1)\n"
            "prob: float = 0.9  # central interval probability of the Bayesian results (0, 1)\n"
            "target: float = 0.95  # probability of staying in spec that a shelf life must reach (0, 1)\n"
            "horizon: float = 36.0  # last time shown, in the study's time unit (0, inf)\n"
            "draws: int = 1000  # posterior draws per chain [1, inf)\n"
            "tune: int = 1000  # tuning steps per chain [1, inf)\n"
            "chains: int = 2  # Markov chains [1, inf)\n"
            "random_seed: int = 1  # seed of the simulated study and of the sampler [0, inf)",
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
            "bw.review.markdown(bw.review.describe_study(data, source=source))"
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
            "bayes = bw.review.bayesian_analysis(data, attribute=attribute, kinetics=kinetics, lower=lower, upper=upper, "
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
        code("bw.review.table(bw.review.compare_shelf_lives(q1e, bayes))"),
        code("bw.review.markdown(bw.review.comparison_sentence(q1e, bayes))"),
    ],
)
