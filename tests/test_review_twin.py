"""What the twin needs of a campaign (readiness), and the twin report's review on campaigns without it.

The review with a calibrated twin is rendered by tests/test_reports.py on a small simulated campaign;
here: the requirements one by one, the fit's one error naming all of them, and the real campaigns
(NISTCHO: counts only; Ambr 250: E. coli) reported as not calibratable, with nothing predicted.
"""

from __future__ import annotations

import html

import polars as pl
import pytest
from conftest import shared_data

import bioworkbench as bw
from bioworkbench import datasets
from bioworkbench.campaign import Campaign
from bioworkbench.twin.data import readiness

REQUIREMENTS = ["viable cell density", "inoculation readings", "initial volume", "feed records", "substrate readings"]


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return bw.simulate_campaign(3, random_seed=0, online_interval_min=120)


def _failed(table: pl.DataFrame) -> dict[str, set[str]]:
    bad = table.filter(~pl.col("ok"))
    return {r: set(g["batch_id"]) for (r,), g in bad.group_by(["requirement"])}


def _with(campaign: Campaign, **frames: pl.DataFrame) -> Campaign:
    return Campaign(**(campaign.frames() | frames), name=campaign.name)


def test_a_simulated_fed_batch_has_everything(campaign):
    table = readiness(campaign)
    assert table.columns == ["batch_id", "requirement", "ok", "detail"]
    assert table.height == 3 * len(REQUIREMENTS) and table["ok"].all()
    assert table["requirement"].unique(maintain_order=True).to_list() == REQUIREMENTS


def test_each_requirement_fails_on_its_own_gap(campaign):
    b = campaign.batches
    no_volume = _with(
        campaign,
        batches=b.with_columns(
            initial_volume_ml=pl.when(pl.col("batch_id") == "B02").then(None).otherwise(pl.col("initial_volume_ml"))
        ),
    )
    assert _failed(readiness(no_volume)) == {"initial volume": {"B02"}}
    unfed = _with(
        campaign,
        events=campaign.events.filter(~((pl.col("batch_id") == "B01") & pl.col("event").is_in(["feed", "bolus"]))),
    )
    failed = readiness(unfed).filter(~pl.col("ok"))
    assert _failed(failed) == {"feed records": {"B01"}} and "no feed in the events frame" in failed["detail"][0]
    obs = campaign.observations
    no_glucose = _with(
        campaign,
        observations=obs.filter(~((pl.col("batch_id") == "B03") & pl.col("variable").is_in(["glucose", "glutamine"]))),
    )
    assert _failed(readiness(no_glucose)) == {"substrate readings": {"B03"}}
    # an analyte missed at one batch's inoculation is taken from the others (not a failure); VCD is not
    late = (pl.col("batch_id") == "B01") & (pl.col("time_h") < 1.0)
    no_start_glc = _with(campaign, observations=obs.filter(~(late & (pl.col("variable") == "glucose"))))
    assert _failed(readiness(no_start_glc)) == {}
    no_start_vcd = _with(campaign, observations=obs.filter(~(late & (pl.col("variable") == "vcd"))))
    assert _failed(readiness(no_start_vcd)) == {"inoculation readings": {"B01"}}


def test_fit_names_every_requirement_that_fails_in_one_error(campaign):
    b = campaign.batches.with_columns(initial_volume_ml=pl.lit(None, pl.Float64))
    gappy = _with(campaign, batches=b, events=campaign.events.filter(~pl.col("event").is_in(["feed", "bolus"])))
    with pytest.raises(bw.ConfigError) as err:
        bw.twin.FedBatchTwin().fit(gappy, batch_ids=["B01", "B02", "B03"], draws=5, tune=5, chains=1)
    msg = str(err.value)
    assert "initial volume: 3 of 3 batches (B01, B02, B03)" in msg and "feed records: 3 of 3 batches" in msg


def test_review_of_a_campaign_without_what_the_twin_needs_predicts_nothing(campaign):
    b = campaign.batches.with_columns(initial_volume_ml=pl.lit(None, pl.Float64))
    rev = bw.review.twin_review(_with(campaign, batches=b), batch_id="B03", known_h=120.0)
    assert rev.twin is None and rev.fit_ids == []
    text = html.unescape(rev.summary_text())  # escaped for Markdown
    assert "cannot be calibrated on demo (seed=0): none of its 1 completed batch records" in text
    assert "Missing: initial volume (1 batch: initial_volume_ml is missing" in text
    assert text.endswith("this report makes no prediction or recommendation.")
    for section in (rev.coverage_table, rev.plot_calibration, rev.parameter_table, rev.plot_running,
                    rev.endpoint_table, rev.comparison_table, rev.candidate_table):  # fmt: skip
        assert section() is None
    assert rev.recommendation_text().startswith("No recommendation")
    with pytest.raises(bw.ConfigError, match="no batch 'B9'"):
        bw.review.twin_review(campaign, batch_id="B9", known_h=120.0)


@pytest.mark.parametrize(
    ("load", "batch_id", "missing"),
    [
        (
            datasets.nistcho,
            "FB2-A-R1",
            ["inoculation readings", "initial volume", "feed records", "substrate readings"],
        ),
        (datasets.ambr250, "R05", ["viable cell density", "inoculation readings"]),
    ],
)
def test_real_campaigns_are_reported_as_not_calibratable(load, batch_id, missing):
    shared_data()  # skips when ../shared/data is absent
    camp = load()
    table = readiness(camp)
    failed = table.filter(~pl.col("ok"))
    assert sorted(failed["requirement"].unique()) == sorted(missing)
    assert failed.group_by("requirement").len()["len"].to_list() == [camp.batches.height] * len(missing)
    if load is datasets.ambr250:
        assert "biomass is recorded as cdw, od600" in failed["detail"][0]
    rev = bw.review.twin_review(camp, batch_id=batch_id, known_h=24.0)
    assert rev.twin is None and rev.prediction is None and rev.recommendation is None
    text = html.unescape(rev.summary_text())
    assert text.startswith("The digital twin cannot be calibrated") and all(m in text for m in missing)
