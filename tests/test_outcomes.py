"""Per-batch outcome tables on the campaign's own biomass and product: CHO, microbial, no product."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import small_frames
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench import datasets, outcomes

CHO_COLUMNS = ["peak_vcd", "peak_vcd_day", "final_viability", "final_ivcd", "mu_growth", "qp", "final_titer"]


@pytest.fixture(scope="module")
def demo():
    return bw.simulate_campaign(n_batches=6, random_seed=0)


@pytest.fixture(scope="module")
def ambr():
    return datasets.ambr250()


@pytest.fixture(scope="module")
def nistcho():
    return datasets.nistcho()


def test_cho_outcomes_keep_their_column_names_and_values(demo):
    out = outcomes.batch_outcomes(demo)  # only vcd and titer are used: their flags alone would be said
    assert out.columns == ["batch_id", "status", *demo.cpps, *CHO_COLUMNS, "last_day"]
    assert out.height == len(demo)
    b = demo.batch_ids[0]
    good = demo.observations.filter(
        (pl.col("batch_id") == b) & pl.col("flag").is_null() & (pl.col("source") != "online")
    )
    vcd = good.filter(pl.col("variable") == "vcd").sort("time_h")
    row = out.filter(pl.col("batch_id") == b).row(0, named=True)
    assert row["peak_vcd"] == vcd["value"].max()
    assert row["peak_vcd_day"] == vcd.filter(pl.col("value") == vcd["value"].max())["time_h"][0] / 24
    assert row["final_titer"] == good.filter(pl.col("variable") == "titer").sort("time_h")["value"][-1]
    assert row["last_day"] == good["time_h"].max() / 24
    # the same kinetics give the same table: passing them in is only a shortcut
    with pytest.warns(bw.BioWorkbenchWarning):
        kin = bw.kinetics.compute(demo)
    assert_frame_equal(outcomes.batch_outcomes(demo, kin), out)
    mu = kin.filter((pl.col("batch_id") == b) & (pl.col("variable") == "mu"))
    growth = mu.filter((pl.col("time_h") <= row["peak_vcd_day"] * 24) & (pl.col("value") > 0))
    assert row["mu_growth"] == pytest.approx(growth["value"].mean())
    assert row["qp"] == pytest.approx(
        kin.filter((pl.col("batch_id") == b) & (pl.col("variable") == "qp"))["value"].mean()
    )


def test_microbial_outcomes_use_dry_weight_and_tryptophan(ambr):
    out = outcomes.batch_outcomes(ambr)
    assert out.columns == [
        "batch_id",
        "status",
        "cpp_strain",
        "cpp_condition",
        "cpp_temperature",
        "cpp_ph",
        "peak_cdw",
        "peak_cdw_day",
        "final_icdw",
        "mu_growth",
        "q_tryptophan",
        "final_tryptophan",
        "last_day",
    ]  # no viability was measured: no final_viability
    r11 = out.filter(pl.col("batch_id") == "R11").row(0, named=True)
    assert r11["peak_cdw"] == pytest.approx(52.566667, rel=1e-6)  # CDW_avg of the last sample
    assert r11["final_tryptophan"] == pytest.approx(2.850012 / 204.23 * 1000, rel=1e-6)  # mmol/L
    assert r11["last_day"] == pytest.approx(77.008533 / 24, rel=1e-6)
    assert 0.02 < r11["mu_growth"] < 0.3  # 1/h
    # strain DDB35 has no tryptophan values: null, not an error
    ddb35 = out.filter(pl.col("cpp_strain") == "DDB35")
    assert ddb35.height == 6 and ddb35["final_tryptophan"].is_null().all() and ddb35["q_tryptophan"].is_null().all()
    units = dict(outcomes.outcome_units(ambr).select("column", "unit").iter_rows())
    assert units == {
        "peak_cdw": "g/L",
        "peak_cdw_day": "d",
        "final_icdw": "g*h/L",
        "mu_growth": "1/h",
        "q_tryptophan": "mmol/g/h",
        "final_tryptophan": "mmol/L",
        "last_day": "d",
    }


def test_a_campaign_without_product_has_no_product_columns(nistcho):
    assert outcomes.product_variable(nistcho) is None
    out = outcomes.batch_outcomes(nistcho)
    assert out.columns == [
        "batch_id",
        "status",
        "cpp_feeding",
        "cpp_experiment",
        "peak_vcd",
        "peak_vcd_day",
        "final_viability",
        "final_ivcd",
        "mu_growth",
        "last_day",
    ]
    assert out.height == 34 and out["peak_vcd"].null_count() == 0
    s = outcomes.batch_summary(nistcho)
    assert "final_titer" not in s.columns and s["n_offline"].sum() == 927


def test_batch_summary_is_todays_campaign_summary_on_cho(demo):
    assert_frame_equal(outcomes.batch_summary(demo), demo.summary())
    small = bw.Campaign(**small_frames())
    s = outcomes.batch_summary(small)
    assert s.columns == [
        "batch_id",
        "status",
        "process",
        "scale_l",
        "n_offline",
        "n_online",
        "n_flagged",
        "peak_vcd",
        "peak_vcd_day",
        "duration_d",
    ]  # no titer in these frames: no final_titer column
    assert s.filter(pl.col("batch_id") == "B1")["peak_vcd"].item() == pytest.approx(2.8)


def test_microbial_summary(ambr):
    s = outcomes.batch_summary(ambr)
    assert s.columns[-4:] == ["peak_cdw", "peak_cdw_day", "final_tryptophan", "duration_d"]
    assert s["n_offline"].sum() == 762 and s["scale_l"].unique().to_list() == [0.25]


def obs_campaign(variables, product=None):
    rows = [("A", 0.0, v, 1.0, bw.schema.registry()[v].unit) for v in variables]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row")
    batches = pl.DataFrame(
        {"batch_id": ["A"], "product": [product]}, schema={"batch_id": pl.String, "product": pl.String}
    )
    return bw.Campaign(batches=batches, observations=obs.with_columns(source=pl.lit("offline")))


@pytest.mark.parametrize(
    ("variables", "product", "biomass", "chosen_product"),
    [
        (["vcd", "cdw", "od600", "titer"], None, "vcd", "titer"),
        (["cdw", "od600", "glucose"], None, "cdw", None),
        (["od600", "tcd", "tryptophan"], "L-tryptophan", "od600", "tryptophan"),
        (["tcd", "tryptophan", "titer"], "L-tryptophan", "tcd", "titer"),
        (["glucose"], "mAb", None, None),
    ],
)
def test_biomass_and_product_choice_rules(variables, product, biomass, chosen_product):
    c = obs_campaign(variables, product)
    assert outcomes.biomass_variable(c) == biomass
    assert outcomes.product_variable(c) == chosen_product


def test_flagged_biomass_does_not_count_as_measured():
    c = obs_campaign(["vcd", "cdw"])
    obs = c.observations.with_columns(
        flag=pl.when(pl.col("variable") == "vcd").then(pl.lit("excluded")),
        flag_reason=pl.when(pl.col("variable") == "vcd").then(pl.lit("bad stain")),
    )
    assert outcomes.biomass_variable(bw.Campaign(batches=c.batches, observations=obs)) == "cdw"


def test_explicit_biomass_and_product(ambr):
    out = outcomes.batch_outcomes(ambr, biomass="od600", product="acetate")
    assert {"peak_od600", "final_iod600", "q_acetate", "final_acetate"} <= set(out.columns)
    assert "peak_cdw" not in out.columns
