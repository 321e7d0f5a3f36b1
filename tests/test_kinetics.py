"""Kinetics against known truths: exact cases where the answer is known in closed form."""

from __future__ import annotations

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
