"""Natural mistakes with the monitoring functions raise located BioWorkbenchErrors (issue 13 item 6).

Each test passes what a user plausibly passes by mistake (a Campaign where an aligned frame is
expected, the raw observations, a single name where a list is expected, a probability of 95) and
checks the error type and the words that tell the user what was expected and how to get it.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
import bioworkbench.monitoring as mon


@pytest.fixture(scope="module")
def campaign() -> bw.Campaign:
    return bw.simulate_campaign(4, random_seed=2, online_interval_min=60)


@pytest.fixture(scope="module")
def aligned(campaign) -> pl.DataFrame:
    return mon.align_by_time(campaign, variables=["ph", "do"], grid_h=12.0, warn=False)


def small_aligned(n_batches: int = 6) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n_j, names = 5, ["a", "b"]
    return pl.DataFrame(
        {
            "batch_id": np.repeat([f"B{i}" for i in range(n_batches)], n_j * len(names)),
            "maturity": np.tile(np.repeat(np.arange(n_j, dtype=float), len(names)), n_batches),
            "variable": np.tile(names, n_batches * n_j),
            "value": rng.standard_normal(n_batches * n_j * len(names)),
        }
    )


# -- a Campaign (or its observations) where an aligned frame is expected ------------------------------------
def test_golden_batch_of_the_observations_names_the_missing_maturity(campaign):
    with pytest.raises(bw.SchemaError) as err:
        mon.golden_batch(campaign.observations)
    text = str(err.value)
    assert "golden_batch: aligned: missing required column 'maturity'" in text
    assert "time_h but no maturity" in text and "bw.monitoring.align_by_time(campaign" in text


def test_golden_batch_of_a_campaign(campaign):
    with pytest.raises(
        bw.ArgumentError, match=r"golden_batch: aligned must be a polars DataFrame; got a Campaign"
    ) as err:
        mon.golden_batch(campaign)
    assert "bw.monitoring.align_by_time(campaign, variables=[...], grid_h=...)" in str(err.value)
    assert isinstance(err.value, TypeError) and isinstance(err.value, bw.BioWorkbenchError)


def test_batch_pca_fit_of_a_campaign(campaign):
    with pytest.raises(bw.ArgumentError) as err:
        mon.BatchPCA().fit(campaign)
    text = str(err.value)
    assert text.startswith("BatchPCA.fit: aligned must be a polars DataFrame; got a Campaign")
    assert "bw.monitoring.align_by_time(campaign" in text


def test_batch_pca_fit_of_the_observations_names_the_missing_column(campaign):
    with pytest.raises(
        bw.SchemaError,
        match=r"BatchPCA.fit: the reference frame: missing required column 'maturity'; found: .*align_by_time\(campaign",
    ):
        mon.BatchPCA().fit(campaign.observations)


def test_monitor_and_batch_statistics_of_a_campaign(campaign):
    model = mon.BatchPCA(2).fit(small_aligned(), warn=False)
    with pytest.raises(bw.ArgumentError, match=r"BatchPCA.monitor: running must be a polars DataFrame; got a Campaign"):
        model.monitor(campaign)
    with pytest.raises(bw.ArgumentError, match=r"BatchPCA.batch_statistics: aligned must be a polars DataFrame"):
        model.batch_statistics(campaign)
    with pytest.raises(bw.ArgumentError, match=r"BatchEvolutionModel.fit: aligned must be a polars DataFrame; got a"):
        mon.BatchEvolutionModel().fit(campaign)


def test_deviations_with_arguments_swapped(aligned):
    envelope = mon.golden_batch(aligned)
    with pytest.raises(bw.SchemaError) as err:
        mon.deviations(envelope, aligned)
    text = str(err.value)
    assert "deviations: aligned: missing required columns 'batch_id', 'value'; found: variable, maturity" in text
    assert "This looks like the envelope of golden_batch: pass (aligned, envelope) in that order" in text
    with pytest.raises(
        bw.SchemaError, match=r"deviations: envelope: missing required columns 'center'.*pass \(aligned, "
    ):
        mon.deviations(aligned, aligned)
    with pytest.raises(bw.ArgumentError, match=r"run_rules: envelope must be a polars DataFrame; got None"):
        mon.run_rules(aligned, None)


# -- one name where a list is expected, text where a number is expected ------------------------------------
def test_align_by_time_of_the_observations(campaign):
    with pytest.raises(bw.ArgumentError) as err:
        mon.align_by_time(campaign.observations, variables=["ph"], grid_h=4)
    text = str(err.value)
    assert text.startswith("align_by_time: campaign must be a Campaign; got a polars DataFrame with columns batch_id")
    assert "bw.Campaign(batches=..., observations=...)" in text


def test_align_by_time_with_one_variable_as_a_string(campaign):
    with pytest.raises(
        bw.ArgumentError,
        match=r"align_by_time: variables must be a list of names; got the str 'ph'\. Wrap it: \['ph'\]",
    ):
        mon.align_by_time(campaign, variables="ph", grid_h=4)


def test_align_by_time_with_a_grid_step_as_text(campaign):
    with pytest.raises(
        bw.ArgumentError, match=r"grid_h must be a finite number > 0 \(hours\); got the str '4 h'\. Give the number"
    ):
        mon.align_by_time(campaign, variables=["ph"], grid_h="4 h")


def test_align_by_time_with_an_unknown_batch(campaign):
    with pytest.raises(
        bw.ConfigError, match=r"align_by_time: batch_ids 'B9' not in the campaign\. Batches: B01, B02, B03, B04\."
    ):
        mon.align_by_time(campaign, variables=["ph"], grid_h=4, batch_ids=["B01", "B9"])


def test_golden_batch_probability_as_a_percentage(aligned):
    with pytest.raises(
        bw.ArgumentError,
        match=r"golden_batch: prob must be a probability between 0 and 1 .*got 95\. Did you mean 0\.95\?",
    ):
        mon.golden_batch(aligned, method="quantile", prob=95)


def test_golden_batch_reference_batches_as_a_string(aligned):
    with pytest.raises(
        bw.ArgumentError, match=r"reference_batches must be a list of batch ids; got the str 'B01'\. Wrap it"
    ):
        mon.golden_batch(aligned, reference_batches="B01")


def test_golden_batch_unknown_method_lists_the_valid_ones(aligned):
    with pytest.raises(
        bw.ArgumentError, match=r"golden_batch: method: the str 'mean' is not valid\. Valid: quantile, sd\."
    ):
        mon.golden_batch(aligned, method="mean")


def test_run_rules_with_a_single_rule(aligned):
    envelope = mon.golden_batch(aligned)
    with pytest.raises(bw.ArgumentError, match=r"run_rules: rules must be a list of RunRule"):
        mon.run_rules(aligned, envelope, rules=mon.RunRule("1 beyond 3 SD", 3.0, 1))


def test_alignments_need_a_campaign_and_lists(campaign):
    with pytest.raises(
        bw.ArgumentError, match=r"align_by_indicator: campaign must be a Campaign; got a polars DataFrame"
    ):
        mon.align_by_indicator(campaign.observations, indicator="glucose", variables=["ph"])
    with pytest.raises(bw.ArgumentError, match=r"align_by_phases: variables must be a list of names; got the str 'ph'"):
        mon.align_by_phases(campaign, phases=["inoculation", "harvest"], variables="ph")
    with pytest.raises(bw.ArgumentError, match=r"align_dtw: grid_h must be a finite number > 0 \(hours\); got -1"):
        mon.align_dtw(campaign, reference="B01", variables=["ph"], grid_h=-1)


def test_alignment_note_of_a_campaign(campaign):
    with pytest.raises(bw.ArgumentError, match=r"alignment_note: aligned must be a polars DataFrame; got a Campaign"):
        mon.alignment_note(campaign)
