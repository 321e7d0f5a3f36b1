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
            "prob: float = 0.9  # central share of the other batches in the campaign envelope",
            tags=["parameters"],
        ),
        code(
            "import bioworkbench as bw\n\n"
            "bw.plots.setup()\n"
            "camp = bw.read_campaign(campaign)\n"
            "rev = bw.review.batch_review(camp, batch_id, prob=prob)\n"
            'bw.review.markdown(f"## Batch {batch_id} — {camp.name}")'
        ),
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
        md(
            "## Batches\nOne row per batch: status, CPP setpoints, kinetic outcomes and harvest CQAs."
        ),
        code("bw.review.table(crev.table)"),
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
        code(
            "bw.plots.plot_cqa_grid(crev.table, attributes=crev.cqas, cpps=crev.cpps, specs=camp.specs)"
        ),
    ],
)
