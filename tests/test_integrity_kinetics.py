"""Natural mistakes with kinetics, outcomes, datasets and the shipped campaigns raise located
BioWorkbenchErrors (issue 13 item 6), never a raw polars, numpy or AttributeError.

Each test passes what a user plausibly passes by mistake and checks the error type and the words
that say what was expected and how to get it.
"""

from __future__ import annotations

import re
import warnings

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import datasets, kinetics, outcomes


@pytest.fixture(scope="module")
def campaign() -> bw.Campaign:
    return bw.simulate_campaign(3, random_seed=1)


@pytest.fixture(scope="module")
def kin(campaign) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        return kinetics.compute(campaign)


def raises(error, text):
    return pytest.raises(error, match=re.escape(text))


# -- kinetics.compute --------------------------------------------------------------------------
def test_compute_given_the_observations_instead_of_the_campaign(campaign):
    with raises(bw.ArgumentError, "kinetics.compute: campaign must be a Campaign; got a polars DataFrame with columns"):
        kinetics.compute(campaign.observations)
    with raises(bw.ArgumentError, "Build one with bw.Campaign(batches=..., observations=...)"):
        kinetics.compute(campaign.observations)


def test_compute_given_a_folder_name(tmp_path):
    with raises(bw.ArgumentError, "kinetics.compute: campaign must be a Campaign; got the str 'data/demo'"):
        kinetics.compute("data/demo")


def test_compute_variables_as_one_name(campaign):
    with raises(
        bw.ArgumentError,
        "kinetics.compute: variables must be a list of variable names; got the str 'glucose'. Write variables=['glucose'].",
    ):
        kinetics.compute(campaign, variables="glucose")


def test_compute_unmeasured_or_misspelt_variable(campaign):
    with raises(
        bw.SchemaError, "kinetics: no unflagged offline observations of glucos (variables asked for). Measured: "
    ):
        kinetics.compute(campaign, variables=["glucos"])


def test_compute_variable_that_is_not_a_concentration(campaign):
    with raises(
        bw.ArgumentError,
        "kinetics.compute: variables 'viability' is stored in %; mass balances need a concentration in mmol/L, mg/L, g/L.",
    ):
        kinetics.compute(campaign, variables=["viability"])


def test_compute_unknown_biomass(campaign):
    with raises(
        bw.ArgumentError, "kinetics.compute: biomass: the str 'biomass' is not valid. Valid: cdw, od600, tcd, vcd."
    ):
        kinetics.compute(campaign, biomass="biomass")
    with raises(bw.ArgumentError, "Did you mean 'vcd'? Valid:"):
        kinetics.compute(campaign, biomass="vdc")


def test_compute_biomass_that_was_not_measured(campaign):
    with raises(
        bw.SchemaError, "kinetics: no unflagged offline observations of cdw (the biomass asked for). Measured: "
    ):
        kinetics.compute(campaign, biomass="cdw")


def test_compute_time_unit_spelt_out(campaign):
    with raises(bw.ArgumentError, "kinetics.compute: time_unit: the str 'hours' is not valid. Valid: d, h."):
        kinetics.compute(campaign, time_unit="hours")


def test_compute_exclude_flagged_as_text(campaign):
    with raises(bw.ArgumentError, "kinetics.compute: exclude_flagged must be True or False; got the str 'yes'."):
        kinetics.compute(campaign, exclude_flagged="yes")


def test_compute_substrate_unknown_or_unmeasured(campaign):
    with raises(bw.ArgumentError, "kinetics.compute: substrate must be a registered variable name; got the str 'glc'."):
        kinetics.compute(campaign, substrate="glc")
    with raises(bw.SchemaError, "no unflagged offline observations of ethanol (the substrate asked for)"):
        kinetics.compute(campaign, substrate="ethanol")
    with raises(bw.ArgumentError, "kinetics.compute: product 'viability' is stored in %"):
        kinetics.compute(campaign, substrate="glucose", product="viability")


def test_compute_warns_when_it_returns_nothing():
    obs = pl.DataFrame(
        {"batch_id": ["A"], "time_h": [0.0], "variable": ["glucose"], "value": [10.0], "unit": ["mmol/L"]}
    ).with_columns(source=pl.lit("offline"))
    camp = bw.Campaign(batches=pl.DataFrame({"batch_id": ["A"]}), observations=obs)
    with pytest.warns(bw.BioWorkbenchWarning, match=r"looked for vcd, cdw, od600, tcd; found glucose"):
        assert kinetics.compute(camp).is_empty()
    with pytest.warns(bw.BioWorkbenchWarning, match=r"qp_regression: no offline vcd or titer; qp is null"):
        res = kinetics.qp_regression(camp)
    assert res["qp"].to_list() == [None] and res["n"].to_list() == [0]


# -- kinetics: volumes, qp_regression, wide, units ---------------------------------------------
def test_volumes_given_wrong_times(campaign):
    with raises(bw.ArgumentError, "kinetics.volumes: times must be a polars DataFrame; got the float 72.0."):
        kinetics.volumes(campaign, 72.0)
    with raises(bw.SchemaError, "kinetics.volumes: times: missing required column 'time_h'; found: batch_id, day."):
        kinetics.volumes(campaign, pl.DataFrame({"batch_id": ["B01"], "day": [3]}))
    with raises(bw.ArgumentError, "kinetics.volumes: campaign must be a Campaign"):
        kinetics.volumes(campaign.events)


def test_qp_regression_window_with_units(campaign):
    with raises(
        bw.ArgumentError,
        "kinetics.qp_regression: start_h must be a finite number (h); got the str '72 h'. Give the number itself",
    ):
        kinetics.qp_regression(campaign, start_h="72 h")
    with raises(bw.ArgumentError, "kinetics.qp_regression: campaign must be a Campaign; got a polars DataFrame"):
        kinetics.qp_regression(campaign.observations)


def test_wide_given_the_campaign_or_an_unknown_batch(campaign, kin):
    with raises(bw.ArgumentError, "kinetics.wide: kinetics must be a polars DataFrame; got a Campaign"):
        kinetics.wide(campaign, batch_id=campaign.batch_ids[0])
    with raises(bw.SchemaError, "kinetics.wide: kinetics: missing required column 'unit'"):
        kinetics.wide(kin.drop("unit"), batch_id=campaign.batch_ids[0])
    with raises(
        bw.SchemaError, "no kinetics rows for batch 'B1'. Did you mean 'B01'? Batches with kinetics: B01, B02, B03."
    ):
        kinetics.wide(kin, batch_id="B1")
    with raises(bw.ArgumentError, "kinetics.wide: batch_id must be a batch id (text); got the int 1."):
        kinetics.wide(kin, batch_id=1)


def test_units_of_an_unknown_biomass():
    with raises(bw.ArgumentError, "kinetics.units: biomass: the str 'OD' is not valid."):
        kinetics.units("OD")
    with raises(bw.ArgumentError, "kinetics.units: time_unit: the str 'min' is not valid. Valid: d, h."):
        kinetics.units("vcd", time_unit="min")


# -- outcomes -----------------------------------------------------------------------------------
def test_outcomes_given_the_observations(campaign):
    for fn, name in (
        (outcomes.batch_outcomes, "batch_outcomes"),
        (outcomes.batch_summary, "batch_summary"),
        (outcomes.biomass_variable, "biomass_variable"),
        (outcomes.product_variable, "product_variable"),
        (outcomes.outcome_units, "outcome_units"),
    ):
        with raises(bw.ArgumentError, f"{name}: campaign must be a Campaign; got a polars DataFrame"):
            fn(campaign.observations)


def test_outcomes_kinetics_argument_mixed_up(campaign, kin):
    with raises(bw.ArgumentError, "batch_outcomes: kinetics must be a polars DataFrame; got a Campaign"):
        outcomes.batch_outcomes(campaign, campaign)
    with raises(bw.SchemaError, "batch_outcomes: kinetics: missing required column 'variable'"):
        outcomes.batch_outcomes(campaign, campaign.batches.with_columns(time_h=pl.lit(0.0), value=pl.lit(1.0)))


def test_outcomes_kinetics_on_another_biomass():
    camp = datasets.ambr250()
    kin_od = kinetics.compute(camp, biomass="od600", variables=[])
    with raises(
        bw.ArgumentError,
        "batch_outcomes: kinetics were computed on biomass od600, but the outcomes use 'cdw'. Pass biomass='od600'",
    ):
        outcomes.batch_outcomes(camp, kin_od)
    assert "peak_od600" in outcomes.batch_outcomes(camp, kin_od, biomass="od600").columns


def test_outcomes_unknown_biomass_or_product(campaign):
    with raises(
        bw.ArgumentError, "batch_outcomes: biomass: the str 'glucose' is not valid. Valid: cdw, od600, tcd, vcd."
    ):
        outcomes.batch_outcomes(campaign, biomass="glucose")
    with raises(
        bw.ArgumentError,
        "batch_summary: product must be a registered variable name; got 'titre'. Did you mean 'titer'?",
    ):
        outcomes.batch_summary(campaign, product="titre")


# -- datasets -----------------------------------------------------------------------------------
def test_dataset_name_misspelt():
    with raises(
        bw.ArgumentError,
        "datasets.load: name: the str 'nist' is not valid. Did you mean 'nistcho'? Valid: ambr250, demo, nistcho.",
    ):
        datasets.load("nist")
    with raises(bw.ArgumentError, "datasets.write: name: the str 'ambr' is not valid."):
        datasets.write("ambr", "somewhere")
    with raises(bw.ArgumentError, "datasets.source: name: the str 'demo' is not valid. Valid: ambr250, nistcho."):
        datasets.source("demo")


def test_dataset_demo_options():
    with raises(bw.ArgumentError, "datasets.demo: n_batches must be an integer >= 1; got 0."):
        datasets.demo(n_batches=0)
    with raises(bw.ArgumentError, "datasets.demo: random_seed must be an integer >= 0; got the float 1.5."):
        datasets.demo(random_seed=1.5)


def test_dataset_written_onto_a_file(tmp_path):
    f = tmp_path / "nistcho"
    f.write_text("not a folder")
    with raises(FileExistsError, f"{f} exists and is a file, not a folder"):
        datasets.write("nistcho", f)
