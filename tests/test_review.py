"""Batch review: envelopes, excursions, completeness, sensor agreement, exceptional batches, summary text."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import review


@pytest.fixture(scope="module")
def demo():
    camp, truth = bw.simulate_campaign(n_batches=12, random_seed=3, online_interval_min=30, return_truth=True)
    return camp, truth


def test_envelope_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    vals = rng.normal(10, 2, size=(20, 3))
    rows = [
        (f"B{i}", 24.0 * d + rng.uniform(-1, 1), "glucose", float(vals[i, d]), "mmol/L", "offline", None)
        for i in range(20)
        for d in range(3)
    ]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit", "source", "flag"], orient="row")
    env = review.envelope(obs, prob=0.9)
    assert env["time_h"].to_list() == [0.0, 24.0, 48.0]
    for d in range(3):
        row = env.row(d, named=True)
        assert row["median"] == pytest.approx(np.median(vals[:, d]))
        assert row["lower"] == pytest.approx(np.quantile(vals[:, d], 0.05))
        assert row["upper"] == pytest.approx(np.quantile(vals[:, d], 0.95))
        assert row["n_batches"] == 20
    assert review.envelope(obs, exclude=["B0", "B1"])["n_batches"].to_list() == [18, 18, 18]
    assert review.envelope(obs.head(6), min_batches=3).is_empty()
    with pytest.raises(ValueError, match="prob"):
        review.envelope(obs, prob=1.5)


def test_probe_drift_is_found_and_only_there(demo):
    camp, truth = demo
    drifting = truth.filter(pl.col("probe_drift"))["batch_id"].to_list()
    sa = review.sensor_agreement(camp).filter(pl.col("variable") == "ph")
    assert sa.filter(pl.col("drift"))["batch_id"].to_list() == drifting
    exc = review.excursions(camp, drifting[0])
    drift = exc.filter(pl.col("kind") == "probe drift")
    assert drift.height == 1 and drift["severity"][0] == "major" and drift["variable"][0] == "ph"


def test_aborted_batch_is_exceptional(demo):
    camp, truth = demo
    aborted = truth.filter(pl.col("aborted"))["batch_id"][0]
    ex = review.exceptional_batches(camp)
    reasons = ex.filter(pl.col("batch_id") == aborted)["reason"].to_list()
    assert "status" in reasons
    rev = review.batch_review(camp, aborted)
    assert "is aborted" in rev.narrative
    assert rev.excursions["severity"][0] in ("critical", "major")


def test_completeness_finds_a_missing_sample_day(demo):
    camp, truth = demo
    t = truth.filter(pl.col("missing_sample_day").is_not_null())
    if t.is_empty():
        pytest.skip("this seed has no missing sample day")
    b, day = t["batch_id"][0], int(t["missing_sample_day"][0])
    comp = review.completeness(camp, b)
    vcd = comp.filter(pl.col("variable") == "vcd").row(0, named=True)
    assert day in vcd["missing_days"] and vcd["missing"] >= 1
    assert vcd["expected"] == vcd["present"] + vcd["missing"]


def test_completeness_counts_flags_as_present(frames):
    obs = frames["observations"].with_columns(
        flag=pl.when((pl.col("variable") == "glucose") & (pl.col("time_h") == 48)).then(pl.lit("<LOD")).otherwise(None),
        flag_reason=pl.when((pl.col("variable") == "glucose") & (pl.col("time_h") == 48))
        .then(pl.lit("below 0.1"))
        .otherwise(None),
    )
    camp = bw.Campaign(**{**frames, "observations": obs})
    comp = review.completeness(camp, "B1").filter(pl.col("variable") == "glucose").row(0, named=True)
    assert (comp["expected"], comp["present"], comp["missing"], comp["flagged"]) == (3, 3, 0, 1)
    assert comp["flag_reasons"] == "<LOD: below 0.1"


def test_cqa_table_and_excursions_against_specs(frames):
    q = pl.DataFrame(
        {
            "batch_id": ["B1", "B2"],
            "attribute": ["aggregates", "aggregates"],
            "value": [6.0, 2.0],
            "unit": ["%", "%"],
            "method": ["SEC", "SEC"],
        }
    )
    specs = pl.DataFrame(
        {
            "name": ["aggregates", "viability", "cpp_ph"],
            "lower": [None, 97.0, 6.9],
            "upper": [5.0, None, 7.05],
            "kind": ["spec", "alarm", "PAR"],
        }
    )
    camp = bw.Campaign(**{**frames, "quality": q, "specs": specs})
    cq = review.cqa_table(camp)
    assert cq["status"].to_list() == ["out of spec", "in spec"]
    exc = review.excursions(camp, "B2")
    par = exc.filter(pl.col("kind") == "PAR").row(0, named=True)
    assert (par["variable"], par["value"], par["limit"], par["severity"]) == ("cpp_ph", 7.1, 7.05, "critical")
    assert par["deviation"] == pytest.approx(0.05)
    exc1 = review.excursions(camp, "B1")
    assert exc1.filter(pl.col("kind") == "CQA spec")["variable"].to_list() == ["aggregates"]
    assert exc1["severity"].to_list()[0] == "critical"


def test_alarm_runs_are_grouped(frames):
    obs = frames["observations"].with_columns(
        value=pl.when(pl.col("variable") == "viability")
        .then(pl.col("time_h").replace_strict({0.0: 99.0, 24.0: 96.0, 48.0: 95.0}))
        .otherwise("value")
    )
    specs = pl.DataFrame({"name": ["viability"], "lower": [97.0], "upper": [None], "kind": ["alarm"]})
    camp = bw.Campaign(**{**frames, "observations": obs, "specs": specs})
    exc = review.excursions(camp, "B1").filter(pl.col("kind").str.starts_with("alarm"))
    row = exc.row(0, named=True)
    assert exc.height == 1
    assert (row["start_h"], row["end_h"], row["n_points"], row["value"]) == (24.0, 48.0, 2, 95.0)
    assert "from day 1.0 to day 2.0 (2 points)" in row["sentence"]


def test_narrative_is_written_from_the_numbers(demo):
    camp, _ = demo
    rev = review.batch_review(camp, camp.batch_ids[0])
    text = rev.narrative
    out = rev.outcome
    assert f"{out['peak_vcd']:.1f}" in text and f"{out['final_titer']:.0f}" in text
    assert rev.excursions.filter(pl.col("kind").str.starts_with("envelope")).is_empty()
    if rev.excursions.is_empty():
        assert "No value left an alarm or specification limit." in text
    else:
        assert f"{rev.excursions.height} excursion" in text
    assert rev.header_table()["field"].to_list()[:3] == ["batch_id", "product", "cell_line"]
    ks = rev.kinetics_summary()
    assert ks["quantity"].to_list()[0] == "peak viable cell density" and ks["value"][0] == pytest.approx(
        out["peak_vcd"]
    )


def test_campaign_review(demo):
    camp, _ = demo
    crev = review.campaign_review(camp)
    assert crev.table.height == len(camp)
    assert set(camp.cpps) <= set(crev.table.columns)
    assert {"titer", "aggregates"} <= set(crev.table.columns)
    v = crev.variability.filter(pl.col("outcome") == "final_titer").row(0, named=True)
    done = crev.table.filter(pl.col("status") == "completed")["final_titer"]
    assert v["mean"] == pytest.approx(done.mean()) and v["cv_pct"] == pytest.approx(100 * done.std() / done.mean())
    assert "batches" in crev.narrative


def test_table_html():
    html = review.table(pl.DataFrame({"a": ["x<y", None], "b": [1.23456, 1e6]}))._repr_html_()
    assert "x&lt;y" in html and "—" in html and "1.235" in html and "1,000,000" in html


def test_unknown_batch(demo):
    camp, _ = demo
    with pytest.raises(bw.SchemaError, match="Batches:"):
        review.batch_review(camp, "Z99")


@pytest.fixture(scope="module")
def demo24():
    return bw.simulate_campaign(random_seed=0)


def test_running_batch_is_never_called_final(demo24):
    rev = review.batch_review(demo24, "B14", known_days=5)
    assert rev.running and rev.known_day == 5
    assert rev.observations["time_h"].max() <= 120
    assert "final" not in rev.narrative.lower()
    assert "is running: data up to day 5.0" in rev.narrative
    assert "other completed batches at day 5)" in rev.narrative  # ranked at the same culture day
    assert rev.release["verdict"] == "not releasable"
    assert rev.verdict_text().startswith("**Not releasable.**")
    assert "Not yet known: its harvest quality results" in rev.status_text()
    ks = rev.kinetics_summary()
    assert (
        ks["quantity"].to_list()[0] == "peak viable cell density so far" and "latest titer" in ks["quantity"].to_list()
    )
    assert ks.columns[-1] == "completed batches at day 5 (median)"
    # the reference is the completed batches cut at day 5: their peak so far is below their real peak
    full = review.batch_review(demo24, "B14")
    assert rev.reference["peak_vcd"].median() < full.reference["peak_vcd"].median()
    assert not full.running and "final titer was" in full.narrative


def test_envelope_points_are_counted_not_listed(demo24):
    rev = review.batch_review(demo24, "B03")
    assert rev.excursions.filter(pl.col("kind").str.starts_with("envelope")).is_empty()
    s = rev.envelope_summary
    pts = rev.envelope_points
    assert s["n_points"].sum() == pts.height
    assert s["n_outside"].sum() == pts.filter(pl.col("outside").is_not_null()).height
    assert s["expected"].sum() == pytest.approx(0.1 * pts.height)
    text = rev.envelope_text()
    assert f"{int(s['n_outside'].sum())} of {pts.height} points" in text


def test_envelope_summary_binomial_tail():
    pts = pl.DataFrame(
        {
            "batch_id": ["A"] * 10 + ["B"] * 10,
            "variable": ["x"] * 20,
            "outside": [None] * 9 + ["above"] + ["below"] * 6 + [None] * 4,
        }
    )
    s = review.envelope_summary(pts, prob=0.9).sort("batch_id")
    from scipy.stats import binom

    assert s["p_value"].to_list() == pytest.approx([binom.sf(0, 10, 0.1), binom.sf(5, 10, 0.1)])
    assert s["more_than_expected"].to_list() == [False, True]
    assert (s["n_above"].to_list(), s["n_below"].to_list()) == ([1, 0], [0, 6])


def test_escape_makes_data_text_literal():
    from bioworkbench.text import escape, markdown_text

    payload = "<script>alert(1)</script> **x** [a](javascript:1) <span hidden>"
    out = escape(payload)
    for bad in ("<", ">", "**", "[", "](", "javascript:"):
        assert bad not in out
    assert markdown_text("## Batch {b}: {n:.1f}", b="B<1>", n=2.0) == "## Batch B&lt;1&gt;&#58; 2.0".replace(
        "&#58;", ":"
    )
    assert escape("line\n# heading") == "line &#35; heading"


def test_review_text_escapes_every_data_string(frames):
    frames["batches"] = frames["batches"].with_columns(product=pl.lit("mAb <span hidden>"))
    camp = bw.Campaign(**frames, name="<style>table{display:none}</style>")
    rev = review.batch_review(camp, "B1")
    assert "<span" not in rev.narrative and "mAb &lt;span hidden&gt;" in rev.narrative
    crev = review.campaign_review(camp)
    assert "<" not in crev.narrative
    html = review.table(pl.DataFrame({"<b>col</b>": ["<script>"]}))._repr_html_()
    assert "<script>" not in html and "&lt;b&gt;col&lt;/b&gt;" in html


def test_warnings_become_notes_on_the_data(demo24):
    import warnings

    obs = demo24.observations
    hit = (pl.col("batch_id") == "B03") & (pl.col("variable") == "vcd") & ((pl.col("time_h") - 48).abs() < 2)
    obs = obs.with_columns(
        flag=pl.when(hit).then(pl.lit("excluded")).otherwise("flag"),
        flag_reason=pl.when(hit).then(pl.lit("clumped sample")).otherwise("flag_reason"),
    )
    camp = bw.Campaign(**{**demo24.frames(), "observations": obs}, name=demo24.name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may escape the review as a warning
        rev = review.batch_review(camp, "B03")
        crev = review.campaign_review(camp)
    assert any("flagged offline observation(s) excluded" in n for n in rev.notes)
    assert any("flagged" in n for n in crev.notes)
    assert "- kinetics" in rev.notes_text()


def test_sections_say_what_is_missing_instead_of_failing(frames):
    camp = bw.Campaign(**frames)  # 2 batches, offline only, no online probes
    rev = review.batch_review(camp, "B1")
    assert "No online probe data" in rev.plot_online().data
    assert "no campaign band" in rev.envelope_text()
    crev = review.campaign_review(camp)
    assert crev.mspc.model is None and "No online probe data" in crev.mspc.text()


def test_campaign_review_of_a_single_batch(frames):
    frames["batches"] = frames["batches"].filter(pl.col("batch_id") == "B1")
    for k in ("observations", "events", "quality"):
        frames[k] = frames[k].filter(pl.col("batch_id") == "B1")
    crev = review.campaign_review(bw.Campaign(**frames))
    assert crev.table.height == 1 and "1 batch" in crev.narrative
