"""Kinetics against known truths: exact cases where the answer is known in closed form."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import kinetics


def campaign(rows, events=(), media=None, v0=1000.0, batch="A"):
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row").with_columns(
        source=pl.lit("offline")
    )
    ev = pl.DataFrame(
        list(events),
        schema={
            "batch_id": pl.String,
            "time_h": pl.Float64,
            "event": pl.String,
            "volume_ml": pl.Float64,
            "medium": pl.String,
        },
        orient="row",
    )
    ids = sorted(set(obs["batch_id"]))
    return bw.Campaign(
        batches=pl.DataFrame({"batch_id": ids, "initial_volume_ml": [v0] * len(ids)}),
        observations=obs,
        events=ev,
        media=media,
    )


def get(kin, variable, batch="A"):
    return kin.filter((pl.col("variable") == variable) & (pl.col("batch_id") == batch)).sort("time_h")


def test_constant_vcd_gives_linear_ivcd_and_titer_20x_ivcd_gives_qp_20():
    rows = []
    for d in range(8):
        rows += [
            ("A", 24.0 * d, "vcd", 2.0, "1e6 cells/mL"),
            ("A", 24.0 * d, "titer", 20 * 2.0 * d, "mg/L"),
        ]
    kin = kinetics.compute(campaign(rows))
    assert get(kin, "ivcd")["value"].to_list() == pytest.approx([2.0 * d for d in range(8)])
    assert get(kin, "qp")["value"].to_list() == pytest.approx([20.0] * 7)
    assert get(kin, "qp")["unit"].unique().to_list() == ["pg/cell/d"]
    assert get(kin, "mu")["value"].to_list() == pytest.approx([0.0] * 7)
    assert get(kin, "doubling_time").is_empty()  # mu = 0: no doubling time
    assert get(kin, "cum_titer")["value"][-1] == pytest.approx(20 * 14 * 1000 / 1000)  # mg in 1 L


def test_exponential_growth_with_sampling_and_feeds_gives_constant_mu():
    mu, v, n = 0.6, 1000.0, 300.0  # n: 1e6 cells
    rows, events = [], []
    for d in range(6):
        if d:
            n *= math.exp(mu)
        rows.append(("A", 24.0 * d, "vcd", n / v, "1e6 cells/mL"))
        events += [("A", 24.0 * d, "sample", 10.0, None), ("A", 24.0 * d, "feed", 40.0, "F")]
        n -= n / v * 10.0
        v += 30.0
    media = pl.DataFrame({"medium": ["F"], "variable": ["glucose"], "concentration": [0.0], "unit": ["mmol/L"]})
    kin = kinetics.compute(campaign(rows, events, media))
    assert get(kin, "mu")["value"].to_list() == pytest.approx([mu] * 5)
    assert get(kin, "doubling_time")["value"].to_list() == pytest.approx([24 * math.log(2) / mu] * 5)
    # concentration-based μ (ignoring dilution) would be wrong: check it differs
    xv = [r[3] for r in rows]
    naive = math.log(xv[1] / xv[0])
    assert abs(naive - mu) > 0.02


def test_feed_that_raises_glucose_still_gives_consumption():
    # cells consume 5 mmol of glucose a day; a daily feed adds 10 mmol so the concentration rises
    v, c, rows, events = 1000.0, 20.0, [], []
    for d in range(5):
        rows += [
            ("A", 24.0 * d, "vcd", 5.0, "1e6 cells/mL"),
            ("A", 24.0 * d, "glucose", c, "mmol/L"),
        ]
        events.append(("A", 24.0 * d, "feed", 25.0, "G"))  # 25 mL x 400 mmol/L = 10 mmol
        amount = c * v + 25.0 * 400.0 - 5000.0  # µmol after a day
        v += 25.0
        c = amount / v
    media = pl.DataFrame({"medium": ["G"], "variable": ["glucose"], "concentration": [400.0], "unit": ["mmol/L"]})
    camp = campaign(rows, events, media)
    assert np.all(np.diff([r[3] for r in rows if r[2] == "glucose"]) > 0)  # glucose rises
    kin = kinetics.compute(camp)
    q = get(kin, "q_glucose")
    # net -5000 µmol per day; viable cell numbers: 5e6/mL x V (V changes by the feed at the start)
    ivcn = [(5.0 * (1000 + 25 * d) + 5.0 * (1000 + 25 * (d + 1))) / 2 for d in range(4)]
    assert q["value"].to_list() == pytest.approx([-5000.0 / i for i in ivcn])
    assert (q["value"] < 0).all()
    assert get(kin, "cum_glucose")["value"].to_list() == pytest.approx([-5.0, -10.0, -15.0, -20.0])


def test_intermediate_sample_without_the_analyte_is_booked():
    # glucose measured day 0 and 2 only; a 100 mL sample on day 1 removes glucose too
    rows = [
        ("A", 0.0, "vcd", 1.0, "1e6 cells/mL"),
        ("A", 0.0, "glucose", 10.0, "mmol/L"),
        ("A", 24.0, "vcd", 1.0, "1e6 cells/mL"),
        ("A", 48.0, "vcd", 1.0, "1e6 cells/mL"),
        ("A", 48.0, "glucose", 10.0, "mmol/L"),
    ]
    events = [("A", 24.0, "sample", 100.0, None)]
    kin = kinetics.compute(campaign(rows, events))
    # no consumption: the drop in amount is exactly what the sample took
    assert get(kin, "q_glucose")["value"].to_list() == pytest.approx([0.0], abs=1e-12)


def test_volume_observations_take_precedence_and_sample_before_additions():
    rows = [
        ("A", 0.0, "vcd", 1.0, "1e6 cells/mL"),
        ("A", 0.0, "volume", 500.0, "mL"),
        ("A", 24.0, "vcd", 1.0, "1e6 cells/mL"),
    ]
    events = [("A", 0.0, "feed", 50.0, "F"), ("A", 0.0, "sample", 10.0, None)]
    media = pl.DataFrame({"medium": ["F"], "variable": ["glucose"], "concentration": [0.0], "unit": ["mmol/L"]})
    vol = kinetics.volumes(campaign(rows, events, media))
    assert vol.select("time_h", "volume_ml", "sample_ml", "volume_source").rows() == [
        (0.0, 500.0, 10.0, "observed"),
        (24.0, 1000.0 + 50.0 - 10.0, 0.0, "events"),
    ]


def test_missing_sample_merges_intervals_and_batches_are_independent():
    rows = []
    for b, xv0 in (("A", 1.0), ("B", 2.0)):
        for d in range(4):
            if b == "B" and d == 2:
                continue
            rows.append((b, 24.0 * d, "vcd", xv0 * math.exp(0.4 * d), "1e6 cells/mL"))
    kin = kinetics.compute(campaign(rows))
    assert get(kin, "mu", "A")["value"].to_list() == pytest.approx([0.4] * 3)
    mu_b = get(kin, "mu", "B")
    assert mu_b["time_h"].to_list() == [24.0, 72.0]
    assert mu_b["value"].to_list() == pytest.approx([0.4, 0.4])


def test_flagged_rows_are_excluded_and_counted():
    rows = [("A", 24.0 * d, "vcd", 1.0 + d, "1e6 cells/mL") for d in range(3)]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row").with_columns(
        source=pl.lit("offline"),
        flag=pl.when(pl.col("time_h") == 24).then(pl.lit("excluded")).otherwise(None),
        flag_reason=pl.when(pl.col("time_h") == 24).then(pl.lit("clumped sample")).otherwise(None),
    )
    camp = bw.Campaign(batches=pl.DataFrame({"batch_id": ["A"], "initial_volume_ml": [1000.0]}), observations=obs)
    with pytest.warns(bw.BioWorkbenchWarning, match="1 flagged offline observation"):
        kin = kinetics.compute(camp)
    assert get(kin, "ivcd")["time_h"].to_list() == [0.0, 48.0]


def test_unknown_volume_is_said_in_method():
    rows = [("A", 24.0 * d, "vcd", 1.0 + d, "1e6 cells/mL") for d in range(3)]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row")
    camp = bw.Campaign(
        batches=pl.DataFrame({"batch_id": ["A"]}),
        observations=obs.with_columns(source=pl.lit("offline")),
    )
    mu = get(kinetics.compute(camp), "mu")
    assert mu["value"].to_list() == pytest.approx([math.log(2), math.log(1.5)])
    assert mu["method"].str.contains("unknown").all()


def test_qp_regression_recovers_slope_with_noise():
    rng = np.random.default_rng(1)
    rows = []
    for d in range(10):
        rows += [
            ("A", 24.0 * d, "vcd", 3.0, "1e6 cells/mL"),
            ("A", 24.0 * d, "titer", 100 + 25.0 * 3.0 * d + rng.normal(0, 5), "mg/L"),
        ]
    res = kinetics.qp_regression(campaign(rows))
    r = res.row(0, named=True)
    assert r["n"] == 10
    assert abs(r["qp"] - 25.0) < 3 * r["qp_se"]
    assert r["r2"] > 0.99
    windowed = kinetics.qp_regression(campaign(rows), start_h=72, end_h=144).row(0, named=True)
    assert windowed["n"] == 4 and windowed["start_h"] == 72.0


def test_kinetics_match_a_straightforward_pandas_computation():
    """Cross-check against an independent loop implementation on a random fed-batch."""
    rng = np.random.default_rng(7)
    rows, events = [], []
    xv, glc = 0.4, 30.0
    for d in range(8):
        rows += [
            ("A", 24.0 * d, "vcd", xv, "1e6 cells/mL"),
            ("A", 24.0 * d, "glucose", glc, "mmol/L"),
        ]
        s, f = 5.0, float(rng.uniform(0, 40)) if d >= 2 else 0.0
        events += [("A", 24.0 * d, "sample", s, None), ("A", 24.0 * d, "feed", f, "F")]
        xv *= float(rng.uniform(1.2, 1.8))
        glc = float(rng.uniform(10, 40))
    media = pl.DataFrame({"medium": ["F"], "variable": ["glucose"], "concentration": [300.0], "unit": ["mmol/L"]})
    kin = kinetics.compute(campaign(rows, events, media))
    # independent computation
    V = 1000.0
    vols, samples = [], []
    for d in range(8):
        vols.append(V)
        s = events[2 * d][3]
        f = events[2 * d + 1][3]
        samples.append(s)
        V = V - s + f
    xs = [r[3] for r in rows if r[2] == "vcd"]
    cs = [r[3] for r in rows if r[2] == "glucose"]
    exp_q, exp_mu = [], []
    for i in range(1, 8):
        dt = 1.0
        n0 = xs[i - 1] * (vols[i - 1] - samples[i - 1])
        n1 = xs[i] * vols[i]
        exp_mu.append(math.log(n1 / n0) / dt)
        added = events[2 * (i - 1) + 1][3] * 300.0
        net = cs[i] * vols[i] - cs[i - 1] * (vols[i - 1] - samples[i - 1]) - added
        exp_q.append(net / ((n0 + n1) / 2 * dt))
    assert get(kin, "mu")["value"].to_list() == pytest.approx(exp_mu)
    assert get(kin, "q_glucose")["value"].to_list() == pytest.approx(exp_q)


def test_output_schema_and_real_nistcho():
    from conftest import shared_data

    c = bw.read_wide(shared_data("nistcho-vcd", "vicell_growth_fb2_fb4_combined.csv"), "nistcho")
    kin = kinetics.compute(c)
    assert kin.columns == ["batch_id", "time_h", "variable", "value", "unit", "method"]
    assert set(kin["variable"]) == {"ivcd", "mu", "doubling_time"}
    mu = kin.filter(pl.col("variable") == "mu")
    # NISTCHO cultures grow at 0.5-1.0 /d in the first days
    early = mu.filter(pl.col("time_h") <= 100)["value"]
    assert 0.3 < early.median() < 1.2
    n = kin.filter(pl.col("variable") == "ivcd").group_by("batch_id").len()["len"]
    assert n.median() >= 9 and n.min() >= 2  # a few cultures were stopped early


# ---------------------------------------------------------------------------------------------
# biomass beyond VCD: dry cell weight, optical density, yields
# ---------------------------------------------------------------------------------------------
GLC_M = 180.16  # g/mol, as in the variable registry


def microbial_fed_batch(mu=0.15, y_xs=0.45, y_ps=0.1):
    """A fed-batch on dry cell weight with known μ (1/h) and yields (g/g): samples of 5 mL at
    0, 4, 8, 12 h, a 10 mL feed of 400 g/L glucose 2 h after each sample. Biomass grows
    exponentially; glucose is consumed and titer formed in fixed proportion to the biomass formed."""
    v, x, s, p = 100.0, 2.0, 5.0, 0.0  # mL, g/L, g/L, mg/L
    rows, events, truth = [], [], []
    for i, t in enumerate((0.0, 4.0, 8.0, 12.0)):
        rows += [
            ("A", t, "cdw", x, "g/L"),
            ("A", t, "glucose", s / GLC_M * 1000, "mmol/L"),
            ("A", t, "titer", p, "mg/L"),
        ]
        truth.append({"t": t, "v": v, "x": x, "s": s, "p": p})
        if i == 3:
            break
        events += [("A", t, "sample", 5.0, None), ("A", t + 2.0, "feed", 10.0, "G")]
        n0 = x * (v - 5.0)  # mg dry weight after the sample
        n1 = n0 * math.exp(mu * 4.0)
        formed = n1 - n0
        glc = s * (v - 5.0) + 10.0 * 400.0 - formed / y_xs  # mg
        prod = p * (v - 5.0) / 1000 + formed / y_xs * y_ps  # g... kept in mg below
        v = v - 5.0 + 10.0
        x, s, p = n1 / v, glc / v, prod * 1000 / v
    media = pl.DataFrame(
        {"medium": ["G"], "variable": ["glucose"], "concentration": [400.0 / GLC_M * 1000], "unit": ["mmol/L"]}
    )
    return campaign(rows, events, media, v0=100.0), truth


def test_dry_weight_biomass_gives_mu_per_hour_and_known_yields():
    camp, truth = microbial_fed_batch()
    kin = kinetics.compute(camp)
    assert get(kin, "mu")["value"].to_list() == pytest.approx([0.15] * 3)
    assert get(kin, "mu")["unit"].unique().to_list() == ["1/h"]
    assert get(kin, "mu")["method"].str.contains("X = cdw").all()
    assert get(kin, "icdw")["unit"].unique().to_list() == ["g*h/L"]
    assert get(kin, "ivcd").is_empty()
    assert get(kin, "doubling_time")["value"].to_list() == pytest.approx([math.log(2) / 0.15] * 3)
    # yields: exactly the ones the data were made with, per interval and cumulative
    for name, truth_value in (("yield_xs", 0.45), ("cum_yield_xs", 0.45), ("yield_ps", 0.1), ("cum_yield_ps", 0.1)):
        y = get(kin, name)
        assert y["value"].to_list() == pytest.approx([truth_value] * 3), name
        assert y["unit"].unique().to_list() == ["g/g"]
    # q_glucose: net µmol over the trapezoid of the biomass amount (mg·h) = mmol/g/h
    q = get(kin, "q_glucose")
    assert q["unit"].unique().to_list() == ["mmol/g/h"]
    expected = []
    for a, b in itertools.pairwise(truth):
        n0, n1 = a["x"] * (a["v"] - 5.0), b["x"] * b["v"]
        net_mg = b["s"] * b["v"] - a["s"] * (a["v"] - 5.0) - 10.0 * 400.0
        expected.append(net_mg / GLC_M * 1000 / ((n0 + n1) / 2 * 4.0))
    assert q["value"].to_list() == pytest.approx(expected)
    assert (q["value"] < 0).all()  # consumed although the feed makes glucose rise
    assert get(kin, "qp")["unit"].unique().to_list() == ["mg/g/h"]


def test_time_unit_days_on_dry_weight_and_hours_on_vcd():
    camp, _ = microbial_fed_batch()
    kin = kinetics.compute(camp, time_unit="d")
    assert get(kin, "mu")["value"].to_list() == pytest.approx([0.15 * 24] * 3)
    assert get(kin, "mu")["unit"].unique().to_list() == ["1/d"]
    assert get(kin, "q_glucose")["unit"].unique().to_list() == ["mmol/g/d"]
    assert get(kin, "doubling_time")["value"].to_list() == pytest.approx([math.log(2) / 0.15] * 3)  # hours
    rows = [("A", 24.0 * d, "vcd", math.exp(0.6 * d), "1e6 cells/mL") for d in range(4)]
    cho = kinetics.compute(campaign(rows), time_unit="h")
    assert get(cho, "mu")["value"].to_list() == pytest.approx([0.6 / 24] * 3)
    assert get(cho, "ivcd")["unit"].unique().to_list() == ["1e6 cells*h/mL"]
    assert get(cho, "doubling_time")["value"].to_list() == pytest.approx([24 * math.log(2) / 0.6] * 3)


def test_cell_count_biomass_gets_yields_only_on_request():
    rows = []
    for d in range(3):
        rows += [
            ("A", 24.0 * d, "vcd", 1.0 + d, "1e6 cells/mL"),
            ("A", 24.0 * d, "glucose", 30.0 - 5.0 * d, "mmol/L"),
        ]
    camp = campaign(rows)
    assert get(kinetics.compute(camp), "yield_xs").is_empty()  # CHO outputs as they were
    y = get(kinetics.compute(camp, substrate="glucose"), "yield_xs")
    # 1000 mL: 1e9 cells formed per 5 mmol = 900.8 mg glucose -> 1e9 cells / 0.9008 g
    assert y["value"].to_list() == pytest.approx([1000.0 / (5.0 * GLC_M)] * 2)
    assert y["unit"].unique().to_list() == ["1e9 cells/g"]


def test_biomass_default_is_stated_and_can_be_chosen():
    camp, _ = microbial_fed_batch()
    od = camp.observations.filter(pl.col("variable") == "cdw").with_columns(
        variable=pl.lit("od600"), value=pl.col("value") * 3.0, unit=pl.lit("AU")
    )
    both = bw.Campaign(
        batches=camp.batches, observations=pl.concat([camp.observations, od]), events=camp.events, media=camp.media
    )
    assert get(kinetics.compute(both), "icdw").height == 4  # cdw before od600
    kin = kinetics.compute(both, biomass="od600")
    assert get(kin, "iod600")["unit"].unique().to_list() == ["AU*h"]
    assert get(kin, "q_glucose")["unit"].unique().to_list() == ["mmol/(AU*L)/h"]
    assert get(kin, "yield_xs")["unit"].unique().to_list() == ["AU*L/g"]
    assert get(kin, "yield_xs")["value"].to_list() == pytest.approx([0.45 * 3] * 3)
    assert get(kin, "mu")["value"].to_list() == pytest.approx([0.15] * 3)
    assert kinetics.units("cdw") == {
        "time_unit": "h",
        "integral": "g*h/L",
        "mu": "1/h",
        "doubling_time": "h",
        "q_molar": "mmol/g/h",
        "q_mass": "mg/g/h",
        "yield_xs": "g/g",
        "yield_ps": "g/g",
    }


def test_no_biomass_gives_an_empty_frame_and_a_warning_that_says_why():
    rows = [("A", 24.0 * d, "glucose", 30.0 - d, "mmol/L") for d in range(3)]
    with pytest.warns(bw.BioWorkbenchWarning, match=r"nothing computed: no biomass variable is measured offline"):
        kin = kinetics.compute(campaign(rows))
    assert kin.is_empty() and kin.columns == ["batch_id", "time_h", "variable", "value", "unit", "method"]


def test_everything_left_out_is_said_in_one_warning():
    rows = [("A", 24.0 * d, "vcd", 1.0 + d, "1e6 cells/mL") for d in range(3)]
    rows += [("B", 24.0 * d, "glucose", 30.0 - d, "mmol/L") for d in range(3)]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row").with_columns(
        source=pl.lit("offline"),
        flag=pl.when((pl.col("time_h") == 24) & (pl.col("batch_id") == "A")).then(pl.lit("excluded")),
        flag_reason=pl.when((pl.col("time_h") == 24) & (pl.col("batch_id") == "A")).then(pl.lit("clumps")),
    )
    camp = bw.Campaign(batches=pl.DataFrame({"batch_id": ["A", "B"]}), observations=obs)
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        kin = kinetics.compute(camp)
    assert len(record) == 1
    text = str(record[0].message)
    assert "1 flagged offline observation(s) excluded (vcd: 1)" in text
    assert "1 batch(es) with offline data but no unflagged vcd sample have no kinetics: B" in text
    assert set(kin["batch_id"]) == {"A"}


def test_flags_of_variables_not_used_are_not_counted():
    rows = [("A", 24.0 * d, "vcd", 1.0 + d, "1e6 cells/mL") for d in range(3)]
    rows += [("A", 24.0 * d, "viability", 95.0, "%") for d in range(3)]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row").with_columns(
        source=pl.lit("offline"),
        flag=pl.when(pl.col("variable") == "viability").then(pl.lit("excluded")),
        flag_reason=pl.when(pl.col("variable") == "viability").then(pl.lit("stain batch")),
    )
    camp = bw.Campaign(batches=pl.DataFrame({"batch_id": ["A"]}), observations=obs)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kinetics.compute(camp)  # viability is not used: nothing to say


# ---------------------------------------------------------------------------------------------
# real campaigns
# ---------------------------------------------------------------------------------------------
def test_ambr250_interval_checked_by_hand_from_the_raw_spreadsheet():
    """μ, q-rates per g dry weight and yields of reactor R11 between its 2nd and 3rd sample,
    computed here from the raw spreadsheet cells with the documented formulas."""
    from importlib import resources

    from bioworkbench import datasets

    raw_path = resources.files("bioworkbench").joinpath(
        "datasets", "ambr250", "exponential_fed-batch_scale-down_offline_data.xlsx"
    )
    raw = pl.read_excel(raw_path).filter(pl.col("Reactor/Plate/Flask Number") == "R11").sort("Timepoint (h)")
    a, b = raw.row(1, named=True), raw.row(2, named=True)  # samples at 16.8 h and 36.8 h
    dt = b["Timepoint (h)"] - a["Timepoint (h)"]
    v_after = a["Liquid_volume"] - a["Sample volume (mL)"]  # mL left after the 2nd sample
    n0, n1 = a["CDW_avg [g/L]"] * v_after, b["CDW_avg [g/L]"] * b["Liquid_volume"]  # mg dry weight
    fed_mg = (b["Feed_volume"] - a["Feed_volume"]) * 500.0  # feed DDB_FM_015: 500 g/L glucose = mg/mL
    glc_net_mg = b["D-glucose [g/L]"] * b["Liquid_volume"] - a["D-glucose [g/L]"] * v_after - fed_mg
    trp_net_mg = b["tryptophan [g/L]"] * b["Liquid_volume"] - a["tryptophan [g/L]"] * v_after
    ixn_g_h = (n0 + n1) / 2 * dt / 1000  # g dry weight x h
    hand = {
        "mu": math.log(n1 / n0) / dt,  # 1/h
        "q_glucose": glc_net_mg / 180.16 / ixn_g_h,  # mmol/g/h
        "q_tryptophan": trp_net_mg / 204.23 / ixn_g_h,  # mmol/g/h
        "yield_xs": (n1 - n0) / -glc_net_mg,  # g/g
        "yield_ps": trp_net_mg / -glc_net_mg,  # g/g
    }
    units = {"mu": "1/h", "q_glucose": "mmol/g/h", "q_tryptophan": "mmol/g/h", "yield_xs": "g/g", "yield_ps": "g/g"}
    assert fed_mg > 3000 and b["D-glucose [g/L]"] == 0.0  # glucose-limited: consumed = fed
    camp = datasets.ambr250()
    kin = kinetics.compute(camp)
    for name, value in hand.items():
        row = kin.filter(
            (pl.col("batch_id") == "R11")
            & (pl.col("variable") == name)
            & ((pl.col("time_h") - b["Timepoint (h)"]).abs() < 1e-9)
        )
        assert row.height == 1, name
        assert row["value"].item() == pytest.approx(value, rel=1e-9), name
        assert row["unit"].item() == units[name]
    # E. coli on glucose: biomass yield below the ~0.5 g/g maximum, positive tryptophan rate
    assert 0.2 < hand["yield_xs"] < 0.55 and hand["q_tryptophan"] > 0
    # the base (ammonium hydroxide) has no composition: said, not credited
    q = kin.filter((pl.col("batch_id") == "R11") & (pl.col("variable") == "q_ammonium"))
    assert q["method"].str.contains("added without a medium composition, not credited").all()


def test_nistcho_dataset_kinetics_per_day_with_volume_unknown():
    from bioworkbench import datasets

    kin = kinetics.compute(datasets.nistcho())
    assert set(kin["variable"]) == {"ivcd", "mu", "doubling_time"}
    assert kin["batch_id"].n_unique() == 34
    mu = kin.filter(pl.col("variable") == "mu")
    assert mu["unit"].unique().to_list() == ["1/d"]
    assert mu["method"].str.contains("volume: unknown").all()
