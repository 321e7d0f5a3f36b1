"""Release by exception as a decision: never released when the data cannot support it."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import small_frames

import bioworkbench as bw
from bioworkbench import monitoring


def _campaign(**changes) -> bw.Campaign:
    """B1 completed and complete (3 daily samples, aggregates in spec); B2 a second batch."""
    frames = small_frames()
    frames["quality"] = pl.DataFrame(
        {
            "batch_id": ["B1", "B2"],
            "attribute": ["aggregates"] * 2,
            "value": [2.1, 2.0],
            "unit": ["%"] * 2,
            "method": ["SEC"] * 2,
        }
    )
    frames["batches"] = frames["batches"].with_columns(status=pl.lit("completed"))
    for name, frame in changes.items():
        frames[name] = frame(frames[name]) if callable(frame) else frame
    return bw.Campaign(**frames)


def verdict(camp: bw.Campaign, batch: str = "B1") -> dict:
    return monitoring.release_status(camp).filter(pl.col("batch_id") == batch).row(0, named=True)


def test_complete_batch_without_exception_is_released():
    r = verdict(_campaign())
    assert r["verdict"] == "released" and r["n_exceptions"] == 0
    assert r["reasons"] == [
        "completed, all 1 expected quality results present and in spec, every expected sample present, and no exception."
    ]


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("running", "still running"),
        ("planned", "planned and has not started"),
        ("aborted", "was aborted"),
        ("failed", "failed"),
    ],
)
def test_unfinished_batches_are_never_released(status, why):
    camp = _campaign(
        batches=lambda b: b.with_columns(
            status=pl.when(pl.col("batch_id") == "B1").then(pl.lit(status)).otherwise("status")
        )
    )
    r = verdict(camp)
    assert r["verdict"] == "not releasable"
    assert why in r["reasons"][0]


def test_a_batch_cut_to_day_one_is_running_and_not_releasable():
    camp = _campaign().as_of(24.0, batch_ids="B1")
    assert verdict(camp)["verdict"] == "not releasable"


def test_missing_quality_result_is_a_major_exception_and_needs_review():
    camp = _campaign(quality=lambda q: q.filter(pl.col("batch_id") != "B1"))
    exc = monitoring.exceptions(camp, batch_ids=["B1"])
    row = exc.filter(pl.col("category") == "missing result").row(0, named=True)
    assert (row["variable"], row["severity"]) == ("aggregates", "major")
    assert "no aggregates result is recorded" in row["sentence"]
    r = verdict(camp)
    assert r["verdict"] == "needs review"
    assert r["reasons"] == ["1 exception: 1 missing result (aggregates)."]


def test_missing_sample_needs_review():
    camp = _campaign(
        observations=lambda o: o.filter(
            ~((pl.col("batch_id") == "B1") & (pl.col("variable") == "glucose") & (pl.col("time_h") == 24.0))
        )
    )
    r = verdict(camp)
    assert r["verdict"] == "needs review"
    assert "1 data gap (glucose)" in r["reasons"][0]


def test_unknown_status_needs_review():
    camp = _campaign(batches=lambda b: b.with_columns(status=pl.lit(None, pl.String)))
    r = verdict(camp)
    assert r["verdict"] == "needs review" and "status is not recorded" in r["reasons"][0]


def test_out_of_spec_result_needs_review():
    camp = _campaign(quality=lambda q: q.with_columns(value=pl.lit(9.0)))
    r = verdict(camp)
    assert r["verdict"] == "needs review" and "1 CQA out of spec (aggregates)" in r["reasons"][0]


def test_exception_counts_agree_with_release_status():
    camp = bw.simulate_campaign(n_batches=8, random_seed=2)
    camp = camp.as_of(100.0, batch_ids=camp.batch_ids[-1])
    exc = monitoring.exceptions(camp)
    counts = monitoring.exception_counts(exc, camp)
    status = monitoring.release_status(camp, exceptions=exc)
    joined = counts.join(status, on="batch_id")
    assert (joined["released_by_exception"] == (joined["verdict_right"] == "released")).all()
    assert not joined.filter(pl.col("batch_id") == camp.batch_ids[-1])["released_by_exception"][0]
    with pytest.raises(bw.ArgumentError, match="release needs each batch's status"):
        monitoring.exception_counts(exc, camp.batch_ids)


def test_expected_results_are_specified_quality_attributes():
    camp = bw.simulate_campaign(n_batches=3, random_seed=1)
    # titer has a spec and harvest results: a CQA; the PAR and alarm specs are not
    assert monitoring.expected_results(camp) == ["acidic_variants", "aggregates", "galactosylation", "titer"]


def test_a_completed_batch_whose_data_end_early_needs_review():
    camp = bw.simulate_campaign(n_batches=5, random_seed=4)
    short = camp.batches.filter(pl.col("status") == "completed")["batch_id"][1]
    camp = bw.Campaign(
        **{
            **camp.frames(),
            "observations": camp.observations.filter(~((pl.col("batch_id") == short) & (pl.col("time_h") > 72))),
        }
    )
    exc = monitoring.exceptions(camp, batch_ids=[short])
    row = exc.filter(pl.col("category") == "short run").row(0, named=True)
    assert (
        row["severity"] == "major"
        and "end on day 3.0; the completed batches typically run to day 14.0" in row["sentence"]
    )
    assert verdict(camp, short)["verdict"] == "needs review"
    assert monitoring.exceptions(camp).filter(pl.col("category") == "short run")["batch_id"].to_list() == [short]
