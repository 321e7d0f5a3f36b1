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
