"""Alignment (indicator, phases, DTW), golden-batch envelopes and run rules, release by exception."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.monitoring.alignment import align_by_indicator, align_by_phases, align_dtw, dtw
from bioworkbench.monitoring.exceptions import exception_counts, exceptions
from bioworkbench.monitoring.golden import RunRule, deviations, golden_batch, run_rules


@pytest.fixture(scope="module")
def demo():
    return bw.simulate_campaign(n_batches=12, random_seed=3, online_interval_min=60, return_truth=True)


def test_dtw_known_truth():
    t = np.linspace(0, 1, 120)
    ref = np.sin(2 * np.pi * t)[:, None]
    warped = np.sin(2 * np.pi * t**1.3)[:, None]  # same shape, different pace
    w = dtw(ref, ref, band=0.1)
    assert isinstance(w, bw.monitoring.Warping) and w.distance == w[0]  # a result object that unpacks as before
    d_self, pi, pj = w
    assert d_self == 0 and (pi == pj).all()
    d_w, _, _ = dtw(ref, warped, band=0.3)
    d_euclid = float(((ref - warped) ** 2).sum())
    assert d_w < 0.1 * d_euclid  # warping explains the pace difference
    with pytest.raises(bw.ConfigError, match="band must be"):
        dtw(ref, warped, band=-0.1)


def test_align_dtw_reports_distances(demo):
    camp, _ = demo
    r = align_dtw(camp, reference=camp.batch_ids[0], variables=["ph", "do", "temperature"], source="online", grid_h=4)
    assert set(r.distances.columns) >= {"batch_id", "distance", "badly_aligned"}
    assert r.distances.filter(pl.col("batch_id") == camp.batch_ids[0])["distance"].item() == 0
    a = r.aligned
    assert {"batch_id", "maturity", "time_h", "variable", "value"} <= set(a.columns)
    assert a.group_by("batch_id").agg(pl.col("maturity").n_unique())["maturity"].n_unique() == 1
    with pytest.raises(bw.ConfigError, match="reference batch"):
        align_dtw(camp, reference="Z1", variables=["ph"], source="online")


def test_align_by_indicator(demo):
    camp, _ = demo
    kin = bw.kinetics.compute(camp)
    a = align_by_indicator(camp, indicator="ivcd", indicator_frame=kin, variables=["vcd"], n_points=20)
    assert a["maturity"].min() == 0 and a["maturity"].max() == 1
    # a decreasing indicator names batch and variable
    bad = kin.with_columns(
        value=pl.when(
            (pl.col("variable") == "ivcd") & (pl.col("time_h") > 100) & (pl.col("batch_id") == camp.batch_ids[1])
        )
        .then(0.0)
        .otherwise("value")
    )
    with pytest.raises(bw.SchemaError, match=r"indicator 'ivcd' is not monotonic") as err:
        align_by_indicator(camp, indicator="ivcd", indicator_frame=bad, variables=["vcd"])
    assert err.value.issues[0].batch == camp.batch_ids[1]


def test_align_by_phases(demo):
    camp, _ = demo
    a = align_by_phases(
        camp, phases=["inoculation", "shift", "harvest"], variables=["vcd"], points_per_phase=10, source="offline"
    )
    b = a.filter(pl.col("batch_id") == camp.batch_ids[0])
    assert b["maturity"].max() == 2.0 and b.height == 21
    shift = camp.events.filter((pl.col("batch_id") == camp.batch_ids[0]) & (pl.col("event") == "shift"))["time_h"][0]
    assert b.filter(pl.col("maturity") == 1.0)["time_h"].item() == pytest.approx(shift)
    with pytest.raises(bw.SchemaError, match="has no 'feed_start' event"):
        align_by_phases(camp, phases=["inoculation", "feed_start"], variables=["vcd"])


def test_golden_batch_and_run_rules():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        for m in range(30):
            v = 10 + rng.normal(0, 1)
            if i == 19 and 10 <= m < 14:
                v = 10 + 2.6  # a run of 4 points beyond 2 SD
            if i == 18 and m == 5:
                v = 10 + 8  # one point far beyond 3 SD
            rows.append((f"B{i:02d}", float(m), "x", v))
    a = pl.DataFrame(rows, schema=["batch_id", "maturity", "variable", "value"], orient="row")
    ref = [f"B{i:02d}" for i in range(18)]
    env = golden_batch(a, reference_batches=ref, k=3)
    r = env.filter(pl.col("maturity") == 0).row(0, named=True)
    vals = a.filter((pl.col("maturity") == 0) & pl.col("batch_id").is_in(ref))["value"].to_numpy()
    assert r["center"] == pytest.approx(vals.mean()) and r["sd"] == pytest.approx(vals.std(ddof=1))
    assert r["upper"] == pytest.approx(vals.mean() + 3 * vals.std(ddof=1))
    rr = run_rules(
        a, env, rules=[RunRule("1 beyond 3 SD", 3, 1), RunRule("3 beyond 2 SD", 2, 3)], batch_ids=["B18", "B19"]
    )
    got = {(row["batch_id"], row["rule"]) for row in rr.iter_rows(named=True)}
    assert ("B18", "1 beyond 3 SD") in got and ("B19", "3 beyond 2 SD") in got
    run = rr.filter((pl.col("batch_id") == "B19") & (pl.col("rule") == "3 beyond 2 SD")).row(0, named=True)
    assert run["n_points"] >= 3 and 10 <= run["start_maturity"] <= run["end_maturity"] <= 13
    dev = deviations(a, env, batch_ids=["B18"])
    assert dev.filter(pl.col("maturity") == 5)["excess"].item() > 0
    q = golden_batch(a, reference_batches=ref, method="quantile", prob=0.9)
    assert q.filter(pl.col("maturity") == 0)["upper"].item() == pytest.approx(np.quantile(vals, 0.95))


def test_envelopes_share_one_band_and_one_vocabulary():
    """The campaign envelope (raw observations by culture day) and the golden batch (aligned, by maturity)
    are one implementation (monitoring.envelope.band) with one set of columns; known values."""
    from bioworkbench.monitoring.envelope import BAND_COLUMNS, envelope

    vals = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    ids = [f"B{i}" for i in range(5)]
    aligned = pl.DataFrame({"batch_id": ids, "maturity": 0.0, "variable": "x", "value": vals})
    obs = pl.DataFrame(
        {"batch_id": ids, "time_h": [0.5, -0.4, 1.0, 0.0, 2.0], "variable": "x", "value": vals, "unit": "g/L",
         "source": "offline", "flag": pl.Series([None] * 5, dtype=pl.String)}
    )  # fmt: skip
    env = envelope(obs, prob=0.9)
    mean_sd = golden_batch(aligned, k=2.0)
    quant = golden_batch(aligned, method="quantile", prob=0.9)
    assert env.columns == ["variable", "unit", "time_h", *BAND_COLUMNS]
    assert mean_sd.columns == quant.columns == ["variable", "maturity", *BAND_COLUMNS]
    sd = vals.std(ddof=1)
    r = mean_sd.row(0, named=True)
    assert (r["center"], r["median"], r["n_batches"]) == (4.0, 3.0, 5)
    assert r["sd"] == pytest.approx(sd) and r["lower"] == pytest.approx(4.0 - 2 * sd)
    q, e = quant.row(0, named=True), env.row(0, named=True)
    assert q["center"] == q["median"] == e["center"] == e["median"] == 3.0
    for side, p in (("lower", 0.05), ("upper", 0.95)):
        assert q[side] == e[side] == pytest.approx(np.quantile(vals, p))
    assert q["sd"] == e["sd"] == pytest.approx(sd)


def test_exceptions_release_by_exception(demo):
    camp, truth = demo
    ex = exceptions(camp)
    assert set(ex.columns) == {"batch_id", "category", "variable", "time_h", "value", "limit", "severity", "sentence"}
    aborted = truth.filter(pl.col("aborted"))["batch_id"][0]
    assert "CQA out of spec" in ex.filter(pl.col("batch_id") == aborted)["category"].to_list()
    drift = truth.filter(pl.col("probe_drift"))["batch_id"][0]
    assert "probe drift" in ex.filter(pl.col("batch_id") == drift)["category"].to_list()
    counts = exception_counts(ex, camp)
    assert counts.height == len(camp)
    assert (~counts["released_by_exception"] | (counts["total"] == 0)).all()  # released: no exception
    clean = counts.filter(pl.col("released_by_exception"))["batch_id"].to_list()
    assert all(ex.filter(pl.col("batch_id") == b).is_empty() for b in clean)
