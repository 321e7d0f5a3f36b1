"""Batch MSPC: control limits against independent formulas, known-truth simulated batches, the
DuPont / SBR / FMC data sets against pyphi-mvda, and errors for impossible inputs."""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest
from conftest import shared_data
from polars.testing import assert_frame_equal
from scipy import stats

import bioworkbench as bw
import bioworkbench.monitoring as mon

ONLINE = ["do", "pco2", "ph", "temperature"]


# ---------------------------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------------------------
def tidy(values: np.ndarray, variables: list[str], batch_ids: list[str]) -> pl.DataFrame:
    """Aligned frame from a batches x maturities x variables array (maturity = sample index)."""
    n_b, n_j, n_k = values.shape
    return pl.DataFrame(
        {
            "batch_id": np.repeat(batch_ids, n_j * n_k),
            "maturity": np.tile(np.repeat(np.arange(n_j, dtype=float), n_k), n_b),
            "variable": np.tile(variables, n_b * n_j),
            "value": values.ravel(),
        }
    )


def load_real(name: str) -> tuple[np.ndarray, list[str], list[str]]:
    """DuPont (55 x 100 x 10), SBR (53 x 200, tags 4-9 as in the source's example) or FMC (59 x 325 x 11)."""
    from scipy.io import loadmat

    if name == "dupont":
        x = loadmat(shared_data("batch-mspc", "DuPont.mat"))["tech"]
        names = [
            "TempR-1",
            "TempR-2",
            "TempR-3",
            "Press-1",
            "Flow-1",
            "TempH-1",
            "TempC-1",
            "Press-2",
            "Press-3",
            "Flow-2",
        ]
        return x.reshape(55, 100, 10), names, [str(i + 1) for i in range(55)]
    if name == "sbr":
        m = loadmat(shared_data("batch-mspc", "SBR.mat"))
        return (
            m["X"].reshape(53, 200, 9)[:, :, 3:],
            [s.strip() for s in m["Xnames"]][3:],
            [str(i + 1) for i in range(53)],
        )
    m = loadmat(shared_data("batch-mspc", "FMC.mat"))
    x = m["X"]
    # batches are stacked; each starts where ClockTime falls back to 1: 59 batches of 325 aligned points
    starts = np.r_[0, np.flatnonzero(np.diff(x[:, 10]) < 0) + 1]
    assert starts.size == 59 and np.all(np.diff(np.r_[starts, len(x)]) == 325)
    return x.reshape(59, 325, 11), [v[0].item() for v in m["Xnames"]], [str(b) for b in m["batch_names"].ravel()]


@pytest.fixture(scope="module")
def demo():
    """40 simulated batches (one drifting pH probe, one aborted), online variables every 4 h."""
    campaign, truth = bw.simulate_campaign(40, random_seed=3, online_interval_min=30, return_truth=True)
    aligned = mon.align_by_time(campaign, variables=ONLINE, grid_h=4.0, warn=False)
    drift = truth.filter("probe_drift")["batch_id"].item()
    aborted = truth.filter("aborted")["batch_id"].item()
    reference = aligned.filter(~pl.col("batch_id").is_in([drift, aborted]))
    return {"aligned": aligned, "reference": reference, "drift": drift, "aborted": aborted}


@pytest.fixture(scope="module")
def demo_model(demo):
    return mon.BatchPCA(3).fit(demo["reference"])


# ---------------------------------------------------------------------------------------------
# control limits against independently computed values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "a", "prob"), [(20, 2, 0.95), (38, 3, 0.99), (55, 3, 0.99), (1000, 5, 0.999)])
def test_t2_limits_match_the_f_form_of_the_formulas(n, a, prob):
    # Beta(a/2, b/2) quantile = (a/b) F / (1 + (a/b) F) with F ~ F(a, b), b = n - A - 1
    b = n - a - 1
    f = stats.f.ppf(prob, a, b)
    expected_training = (n - 1) ** 2 / n * (a / b * f) / (1 + a / b * f)
    assert mon.t2_limit_training(n, a, prob) == pytest.approx(expected_training, rel=1e-10)
    expected_new = (n - 1) * (n + 1) * a / (n * (n - a)) * stats.f.ppf(prob, a, n - a)
    assert mon.t2_limit_new(n, a, prob) == pytest.approx(expected_new, rel=1e-12)


def test_t2_limits_have_their_false_alarm_rate_by_simulation():
    rng = np.random.default_rng(0)
    reps, n, a, prob = 20000, 15, 3, 0.95
    x = rng.standard_normal((reps, n + 1, a))
    ref, new = x[:, :n], x[:, n]
    mean = ref.mean(axis=1)
    d = ref - mean[:, None]
    cov = np.einsum("rna,rnb->rab", d, d) / (n - 1)
    inv = np.linalg.inv(cov)
    d_new, d_train = new - mean, ref[:, 0] - mean
    t2_new = np.einsum("ra,rab,rb->r", d_new, inv, d_new)
    t2_train = np.einsum("ra,rab,rb->r", d_train, inv, d_train)
    assert np.mean(t2_new > mon.t2_limit_new(n, a, prob)) == pytest.approx(0.05, abs=0.006)
    assert np.mean(t2_train > mon.t2_limit_training(n, a, prob)) == pytest.approx(0.05, abs=0.006)


def test_box_spe_limit_is_the_moment_matched_scaled_chi2():
    rng = np.random.default_rng(1)
    spe = 3.0 * rng.chisquare(7.0, size=(400, 3))
    m, v = spe.mean(axis=0), spe.var(axis=0, ddof=1)
    # g chi2_h is a gamma distribution with shape h/2 and scale 2g
    expected = stats.gamma.ppf(0.99, (2 * m**2 / v) / 2, scale=2 * v / (2 * m))
    np.testing.assert_allclose(mon.spe_limit_box(spe, 0.99), expected, rtol=1e-10)
    assert mon.spe_limit_box(spe[:, 0], 0.99) == pytest.approx(expected[0])
    big = 3.0 * rng.chisquare(7.0, size=200000)
    assert mon.spe_limit_box(big, 0.99) == pytest.approx(3.0 * stats.chi2.ppf(0.99, 7.0), rel=0.01)


def test_jackson_mudholkar_from_eigenvalues():
    rng = np.random.default_rng(2)
    e = rng.standard_normal((60, 8)) * np.array([3.0, 2.5, 2.0, 1.5, 1.2, 1.0, 0.8, 0.5])
    lam = np.linalg.eigvalsh(e.T @ e / 59)
    theta = mon.residual_theta(e)
    np.testing.assert_allclose(theta, [lam.sum(), (lam**2).sum(), (lam**3).sum()], rtol=1e-10)
    t1, t2, t3 = theta
    h0 = 1 - 2 * t1 * t3 / (3 * t2**2)
    z = stats.norm.ppf(0.99)
    by_hand = t1 * (z * np.sqrt(2 * t2 * h0**2) / t1 + 1 + t2 * h0 * (h0 - 1) / t1**2) ** (1 / h0)
    assert mon.spe_limit_jackson_mudholkar(theta, 0.99) == pytest.approx(by_hand, rel=1e-12)
    # equal eigenvalues: SPE = lambda chi2_k exactly; JM is close to it
    lam_k = np.full(10, 2.0)
    theta_eq = (lam_k.sum(), (lam_k**2).sum(), (lam_k**3).sum())
    assert mon.spe_limit_jackson_mudholkar(theta_eq, 0.99) == pytest.approx(2.0 * stats.chi2.ppf(0.99, 10), rel=0.01)


def test_jackson_mudholkar_undefined_when_few_eigenvalues_dominate():
    with pytest.warns(bw.BioWorkbenchWarning, match="Jackson–Mudholkar"):
        assert np.isnan(mon.spe_limit_jackson_mudholkar((356.6, 6277.8, 168434.4), 0.99))


# ---------------------------------------------------------------------------------------------
# known truth: simulated campaign
# ---------------------------------------------------------------------------------------------
def test_drifting_probe_is_flagged_by_spe_with_ph_the_top_contributor(demo, demo_model):
    drift = demo["aligned"].filter(pl.col("batch_id") == demo["drift"])
    # whole batch: the drift (last 30 % of one of 4 variables) stays inside T², and pH stands out
    # among the SPE contributions, measured against their normal size (cross-validated limits)
    assert not demo_model.batch_statistics(drift)["t2_flag"].item()
    contrib = demo_model.contributions(demo["drift"], aligned=drift)
    ranked = contrib.with_columns(rel=pl.col("spe") / pl.col("spe_limit")).sort("rel", descending=True)
    assert ranked["variable"][0] == "ph" and ranked["rel"][0] > 5 and ranked["rel"][1] < 1
    cells = demo_model.contributions(demo["drift"], aligned=drift, by="cell")
    late = cells.filter(pl.col("maturity") > 0.8 * 336).with_columns(out=pl.col("spe") > pl.col("spe_limit"))
    share = dict(late.group_by("variable").agg(pl.col("out").mean()).iter_rows())
    assert share["ph"] > 0.9 and max(share[v] for v in ("do", "pco2", "temperature")) < 0.1
    # on-line: the instantaneous SPE alarms in the last 30 % of the run, explained by pH
    chart = demo_model.monitor(drift)
    alarms = chart.filter(pl.col("spe_flag"))
    late_alarms = alarms.filter(pl.col("maturity") > 0.7 * 336)["maturity"]
    assert late_alarms.len() >= 1 and alarms.height - late_alarms.len() <= 1
    at_alarms = cells.filter(pl.col("maturity").is_in(late_alarms.implode()))
    top = at_alarms.group_by("variable").agg(pl.col("spe").sum()).sort("spe", descending=True)
    assert top["variable"][0] == "ph"


def test_aborted_batch_is_flagged_and_its_missing_tail_handled(demo, demo_model):
    st = demo_model.batch_statistics(demo["aligned"].filter(pl.col("batch_id") == demo["aborted"]))
    assert st["spe_flag"].item()
    chart = demo_model.monitor(demo["aligned"].filter(pl.col("batch_id") == demo["aborted"]))
    assert chart["maturity"].max() < 250  # charted only up to its last value


def test_normal_batches_within_the_false_alarm_rate(demo, demo_model):
    st = demo_model.batch_statistics(prob=0.99)
    n = st.height
    # P(X >= 3) < 0.01 for X ~ Binomial(38, 0.01)
    assert st["t2_flag"].sum() <= 2 and st["spe_flag"].sum() <= 2, st.filter(pl.col("t2_flag") | pl.col("spe_flag"))
    assert st["t2_limit"][0] == pytest.approx(mon.t2_limit_training(n, 3, 0.99))
    chart = demo_model.monitor(demo["reference"], prob=0.99)
    assert chart["spe_flag"].mean() < 0.01 and chart["t2_flag"].mean() < 0.01  # (they were fitted)


def test_new_normal_batches_rarely_flagged(demo, demo_model):
    campaign, truth = bw.simulate_campaign(14, random_seed=8, online_interval_min=30, return_truth=True)
    normal = truth.filter(~pl.col("probe_drift") & ~pl.col("aborted"))["batch_id"].to_list()
    new = mon.align_by_time(campaign, variables=ONLINE, grid_h=4.0, end_h=332.0, batch_ids=normal, warn=False)
    st = demo_model.batch_statistics(new, prob=0.99)
    assert st["t2_limit"][0] == pytest.approx(mon.t2_limit_new(38, 3, 0.99))
    assert (st["t2_flag"] | st["spe_flag"]).sum() <= 1, st
    chart = demo_model.monitor(new)
    assert chart["spe_flag"].mean() < 0.025 and chart["t2_flag"].mean() < 0.01
    # limits from the fitted residuals (cv_folds=None) are too narrow for new batches
    fitted = mon.BatchPCA(3, cv_folds=None).fit(demo["reference"])
    assert fitted.batch_statistics(new)["spe_flag"].sum() >= 3


def test_contributions_add_up_to_the_statistics(demo, demo_model):
    st = demo_model.batch_statistics().filter(pl.col("batch_id") == "B05")
    for by in ("variable", "maturity", "cell"):
        c = demo_model.contributions("B05", by=by)
        assert c["spe"].sum() == pytest.approx(st["spe"].item(), rel=1e-9)
        assert c["t2"].sum() == pytest.approx(st["t2"].item(), rel=1e-9)
    assert demo_model.contributions("B05", by="maturity").height == demo_model.maturities_.size


def test_online_chart_ends_at_the_batch_statistics(demo, demo_model):
    frame = demo["reference"].filter(pl.col("batch_id").is_in(["B01", "B02"]))
    for method in ("tsr", "pmp"):
        model = mon.BatchPCA(3, online=method).fit(demo["reference"])
        chart = model.monitor(frame).group_by("batch_id").agg(pl.all().sort_by("maturity").last()).sort("batch_id")
        st = model.batch_statistics().filter(pl.col("batch_id").is_in(["B01", "B02"])).sort("batch_id")
        np.testing.assert_allclose(chart["t2"], st["t2"], rtol=1e-8)
        np.testing.assert_allclose(chart["spe_known"], st["spe"], rtol=1e-8)
    # a running batch: its chart up to now equals the full chart cut at now
    running = frame.filter((pl.col("batch_id") == "B01") & (pl.col("maturity") <= 100))
    full = demo_model.monitor(frame.filter(pl.col("batch_id") == "B01")).filter(pl.col("maturity") <= 100)
    assert_frame_equal(demo_model.monitor(running), full)


def test_missing_values_are_handled_not_dropped(demo):
    ref = demo["reference"]
    model_svd = mon.BatchPCA(3, algorithm="svd").fit(ref)
    model_nip = mon.BatchPCA(3, algorithm="nipals").fit(ref)
    np.testing.assert_allclose(model_nip.scores_, model_svd.scores_, atol=1e-6 * np.abs(model_svd.scores_).max())
    rng = np.random.default_rng(4)
    holes = ref.with_columns(value=pl.when(pl.Series(rng.random(ref.height) < 0.05)).then(None).otherwise("value"))
    model = mon.BatchPCA(3).fit(holes)
    assert model.algorithm_ == "nipals" and len(model.batch_ids_) == len(model_svd.batch_ids_)
    corr = [abs(np.corrcoef(model.scores_[:, a], model_svd.scores_[:, a])[0, 1]) for a in range(3)]
    assert min(corr) > 0.98
    assert model.batch_statistics()["spe"].is_finite().all()
    with pytest.raises(bw.ConfigError, match="algorithm='svd' needs complete data"):
        mon.BatchPCA(3, algorithm="svd").fit(holes)


def test_batch_evolution_model(demo):
    bem = mon.BatchEvolutionModel(2).fit(demo["reference"])
    ref = bem.statistics(prob=0.99)
    assert ref.height == demo["reference"].select("batch_id", "maturity").unique().height
    assert ref["spe_flag"].mean() < 0.02
    chart = bem.monitor(demo["aligned"].filter(pl.col("batch_id") == demo["drift"]))
    flagged = chart.filter(pl.col("spe_flag") | pl.col("t2_flag"))["maturity"]
    assert flagged.max() == chart["maturity"].max() and (flagged < 0.7 * 336).sum() <= 1  # pH moves the scores
    bands = bem.limits(0.99)
    assert bands.height == 2 * bem.maturities_.size and (bands["upper"] > bands["lower"]).all()


# ---------------------------------------------------------------------------------------------
# real data: DuPont, SBR, FMC
# ---------------------------------------------------------------------------------------------
REAL = {  # name, components, flagged by T² (Beta limit, 99 %), flagged by SPE (Box, 99 %)
    "dupont": (3, {"50", "53", "54", "55"}, {"49"}),
    "sbr": (2, {"34", "37"}, {"8"}),
    "fmc": (2, set(), {"20", "40"}),
}


@pytest.fixture(scope="module")
def real_models():
    out = {}
    for name, (a, _, _) in REAL.items():
        values, names, ids = load_real(name)
        out[name] = (values, names, ids, mon.BatchPCA(a).fit(tidy(values, names, ids), warn=False))
    return out


@pytest.mark.parametrize("name", list(REAL))
def test_real_data_flagged_batches(real_models, name):
    _, t2_expected, spe_expected = REAL[name]
    st = real_models[name][3].batch_statistics(prob=0.99)
    assert set(st.filter("t2_flag")["batch_id"]) == t2_expected
    assert set(st.filter("spe_flag")["batch_id"]) == spe_expected


def test_real_data_contributions_explain_the_flags(real_models):
    dupont = real_models["dupont"][3]
    c49 = dupont.contributions("49").sort("spe", descending=True)
    assert set(c49["variable"].head(2)) == {"TempC-1", "Flow-2"}
    by_time = dupont.contributions("49", by="maturity").sort("spe", descending=True)
    assert set(by_time["maturity"].head(5)) <= set(range(55, 65))  # a short episode at maturity 57-62
    c54 = dupont.contributions("54", by="maturity").sort("t2", descending=True)
    assert set(c54["maturity"].head(5)) <= set(range(35, 50))
    sbr = real_models["sbr"][3].contributions("8").sort("spe", descending=True)
    assert list(sbr["variable"].head(2)) == ["T R. JACKT", "T COOLING"]
    fmc = real_models["fmc"][3].contributions("20").sort("spe", descending=True)
    assert fmc["variable"][0] == "DryPress" and fmc["spe"][0] > 0.4 * fmc["spe"].sum()


# ---------------------------------------------------------------------------------------------
# real data: screening of columns and on-line limits that stay in proportion
# ---------------------------------------------------------------------------------------------
DUPONT_FLAGGED = (49, 50, 53, 54, 55)  # flagged by the 55-batch model (REAL["dupont"])


def online_limit_ratios(model: mon.BatchPCA, aligned: pl.DataFrame) -> dict[str, float]:
    """Largest ratio, over maturities, of each on-line limit to the largest value the reference
    batches themselves reach on that chart at that maturity."""
    chart = model.monitor(aligned)
    per = chart.group_by("maturity").agg(pl.col("t2_limit", "spe_limit", "spe_known_limit").first(),
                                         pl.col("t2", "spe", "spe_known").max())  # fmt: skip
    return {s: float((per[f"{s}_limit"] / per[s]).max()) for s in ("t2", "spe", "spe_known")}


def dupont_subset(drop: tuple[int, ...]) -> pl.DataFrame:
    values, names, ids = load_real("dupont")
    keep = [i for i in range(55) if i + 1 not in drop]
    return tidy(values[keep], names, [ids[i] for i in keep])


def test_dupont_without_its_flagged_batches_keeps_sane_online_limits():
    """Issue 13 item 5: the reference set of the 50 batches the 55-batch model does not flag. Batch 52
    alone departs from Press-1's SD of 0.0009 at maturities 17-18; leaving it out in cross-validation
    put the cumulative SPE limit at 1.09e6 against reference values of at most 930."""
    aligned = dupont_subset(DUPONT_FLAGGED)
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        model = mon.BatchPCA(3).fit(aligned)
    text = str(record[0].message)
    assert len(record) == 1
    assert "batch 52 (Press-1 at 17–18; Flow-1 at 89–90)" in text
    assert "left 47 of 1000 (maturity, variable) columns out of the model: Flow-2 at 38 maturities (62–99)" in text
    assert model.screening_note_ == text.removeprefix("BatchPCA.fit: ")
    one = model.screening_.filter(pl.col("reason") == "one batch")
    assert one.select("variable", "maturity", "batch_id", "action").rows() == [
        ("Press-1", 17.0, "52", "kept"), ("Press-1", 18.0, "52", "kept"),
        ("Flow-1", 89.0, "52", "kept"), ("Flow-1", 90.0, "52", "kept"),
    ]  # fmt: skip
    press = one.row(1, named=True)
    assert press["sd_others"] == pytest.approx(0.000926, rel=1e-2) and press["sd"] == pytest.approx(0.1304, rel=1e-3)
    assert press["deviation"] == pytest.approx(996, rel=1e-2) and press["cutoff"] == pytest.approx(1000**0.5, rel=0.05)
    limits = model.monitor(aligned).group_by("maturity").agg(pl.col("spe_known_limit", "spe_limit").first())
    assert limits["spe_known_limit"].max() < 6000 and limits["spe_limit"].max() < 300  # were 1.09e6 and 5.6e5
    ratio = online_limit_ratios(model, aligned)
    assert ratio["t2"] < 1 and ratio["spe_known"] < 6.5
    # the instantaneous limit at maturities 88-90 is 16x the largest fitted value: batches 51 and 52,
    # which this model itself flags (T² 19.5 and 34 > 10.4), are unusual there when left out
    assert ratio["spe"] < 20
    assert set(model.batch_statistics().filter("t2_flag")["batch_id"]) == {"51", "52"}


@pytest.mark.parametrize(("drop", "bound"), [((), 10.0), (tuple(range(49, 56)), 4.0)])
def test_dupont_online_limits_within_ten_times_the_reference_values(drop, bound):
    """All 55 batches, and batches 1-48 (the 50 above less the two that model flags): every on-line
    limit (T², instantaneous SPE, SPE of the known part) is within ``bound`` times the largest value
    of the reference batches on that chart at the same maturity (it was 23x for the 55 batches)."""
    aligned = dupont_subset(drop)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        model = mon.BatchPCA(3).fit(aligned)
    ratio = online_limit_ratios(model, aligned)
    assert max(ratio.values()) < bound, ratio


def test_fmc_online_limits_stay_in_proportion():
    """FMC: batch 59's agitator at maturity 198 sits 29 SDs from the others, and the batch that makes
    the column vary in its fold is left out with it: the instantaneous SPE limit was 5.8e5 (x1e4)."""
    values, names, ids = load_real("fmc")
    aligned = tidy(values, names, ids)
    with pytest.warns(bw.BioWorkbenchWarning, match=r"130 columns vary only through one reference batch"):
        model = mon.BatchPCA(2).fit(aligned)
    ratio = online_limit_ratios(model, aligned)
    assert max(ratio.values()) < 5, ratio
    assert set(model.screening_.filter(pl.col("reason") == "one batch")["batch_id"]) >= {"40", "41"}


def test_screening_excludes_constant_columns_and_optionally_single_batch_ones():
    values, names, ids = load_real("dupont")
    aligned = tidy(values, names, ids)
    with pytest.warns(bw.BioWorkbenchWarning, match=r"batch 49 \(TempC-1 at 58–60; Flow-2 at 62–65\), batch 54"):
        model = mon.BatchPCA(3).fit(aligned)
    summary = model.excluded_variables
    assert summary.select("variable", "reason", "n_maturities", "first_maturity", "last_maturity").rows() == [
        ("Flow-2", "no variation", 34, 66.0, 99.0),
        ("Flow-1", "no variation", 9, 91.0, 99.0),
    ]
    assert not summary["all_maturities"].any()
    assert int(model.inactive_.sum()) == model.excluded_.height == 43
    # the constant columns really are constant, and carry no loading
    ex = model.excluded_
    assert (ex["sd"].fill_null(0.0) == 0).all()
    j = np.searchsorted(model.maturities_, ex["maturity"].to_numpy())
    k = [model.variables_.index(v) for v in ex["variable"]]
    assert np.all(model.loadings_[j, k] == 0)
    excluding = mon.BatchPCA(3, single_batch_columns="exclude").fit(aligned, warn=False)
    assert excluding.excluded_.height == 51 and int(excluding.inactive_.sum()) == 51
    assert "left out" in excluding.screening_note_
    single = excluding.excluded_variables.filter(pl.col("reason") == "one batch")
    assert dict(zip(single["variable"], single["batch_ids"].to_list(), strict=True)) == {
        "TempC-1": ["49"], "Flow-1": ["54"], "Flow-2": ["49"]
    }  # fmt: skip
    with pytest.raises(bw.ConfigError, match="Did you mean 'exclude'"):
        mon.BatchPCA(3, single_batch_columns="exlude")


def test_screening_leaves_normal_data_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error", bw.BioWorkbenchWarning)
        model = mon.BatchPCA(2).fit(small(20, seed=3))
    assert model.screening_.is_empty() and model.screening_note_ == ""
    # a column where one batch departs from 19 identical values is marked, and named
    odd = small(20, seed=3).with_columns(
        value=pl.when((pl.col("variable") == "b") & (pl.col("maturity") == 2))
        .then(pl.when(pl.col("batch_id") == "B7").then(5.0).otherwise(1.0))
        .otherwise("value")
    )
    with pytest.warns(bw.BioWorkbenchWarning, match=r"1 column varies only .* batch B7 \(b at 2\)"):
        model = mon.BatchPCA(2).fit(odd)
    row = model.screening_.row(0, named=True)
    assert (row["variable"], row["maturity"], row["batch_id"], row["action"]) == ("b", 2.0, "B7", "kept")
    assert row["deviation"] == math.inf and row["sd_others"] == 0.0


@pytest.fixture(scope="module")
def pyphi_batch():
    pytest.importorskip("pandas")
    with contextlib.redirect_stdout(io.StringIO()):
        batch = pytest.importorskip("pyphi.batch", reason="pip install pyphi-mvda for the reference comparison")
        import pyphi.calc as calc
    return batch, calc


def to_pyphi(values: np.ndarray, names: list[str], ids: list[str]):
    import pandas as pd

    frame = pd.DataFrame(values.reshape(-1, values.shape[2]), columns=names)
    frame.insert(0, "batch", np.repeat(ids, values.shape[1]))
    return frame


@pytest.mark.parametrize("name", list(REAL))
def test_real_data_agrees_with_pyphi(real_models, pyphi_batch, name):
    """Scores, loadings, scaling, SPE, its Box limit and the new-batch T² limit agree with pyphi-mvda.

    Documented convention differences: pyphi divides the score variance by n (we: n−1), so our
    T² = pyphi's T² · (n−1)/n; pyphi applies the new-batch F limit to the reference batches too
    (we: the Beta limit); component signs are arbitrary (ours: largest loading positive); pyphi
    orders unfolded columns variable-major (we: maturity-major). Scores from pyphi's NIPALS
    (converged to 1e-10 in the norm of t) agree with our SVD to ~1e-5.
    """
    batch, _ = pyphi_batch
    values, names, ids, model = real_models[name]
    n, a = len(ids), model.n_components
    with contextlib.redirect_stdout(io.StringIO()):
        ref = batch.mpca(to_pyphi(values, names, ids), a)
    st = model.batch_statistics(prob=0.99)
    ours = st.select([f"t_{i + 1}" for i in range(a)]).to_numpy()
    sign = np.sign(np.sum(ours * ref["T"], axis=0))
    np.testing.assert_allclose(ours, ref["T"] * sign, rtol=0, atol=1e-4 * np.abs(ours).max())
    loadings = model.loadings_.transpose(1, 0, 2).reshape(-1, a)  # variable-major like pyphi
    np.testing.assert_allclose(loadings, ref["P"] * sign, rtol=0, atol=1e-4 * np.abs(loadings).max())
    active = ~model.inactive_.T.ravel()
    np.testing.assert_allclose(model.mean_.T.ravel(), ref["mx"].ravel(), rtol=1e-12)
    np.testing.assert_allclose(model.scale_.T.ravel()[active], ref["sx"].ravel()[active], rtol=1e-12)
    if model.algorithm_ == "svd":
        np.testing.assert_allclose(st["t2"], ref["T2"].ravel() * (n - 1) / n, rtol=1e-4)
    else:  # NIPALS scores with missing data are not exactly orthogonal: pyphi's T² uses their full covariance
        cov = ours.T @ ours / n
        np.testing.assert_allclose(np.sum(ours @ np.linalg.inv(cov) * ours, axis=1), ref["T2"].ravel(), rtol=1e-4)
        np.testing.assert_allclose(st["t2"], ref["T2"].ravel() * (n - 1) / n, rtol=2e-3)
    np.testing.assert_allclose(st["spe"], ref["speX"].ravel(), rtol=1e-4)
    assert model.spe_limit(0.99, reference=True) == pytest.approx(ref["speX_lim99"], rel=1e-4)
    assert model.spe_limit(0.95, reference=True) == pytest.approx(ref["speX_lim95"], rel=1e-4)
    assert mon.t2_limit_new(n, a, 0.99) == pytest.approx(ref["T2_lim99"], rel=1e-12)


def test_dupont_spe_contributions_and_online_chart_agree_with_pyphi(real_models, pyphi_batch):
    """Same contributions to SPE (pyphi returns them signed: e²·sign(e)) and the same on-line
    chart of batch 49 (pyphi projects to the model plane: our ``online="pmp"``), with the same
    per-maturity limits of the instantaneous and known-part SPE. T² contributions are defined
    differently (pyphi: Σ_a (z_j |p_aj| / s_a)², we: Westerhuis et al. 2000) and not compared."""
    batch, calc = pyphi_batch
    values, names, ids, _ = real_models["dupont"]
    n = len(ids)
    model = mon.BatchPCA(3, online="pmp", cv_folds=None).fit(tidy(values, names, ids), warn=False)
    data = to_pyphi(values, names, ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = batch.mpca(data, 3)
        unfolded, _, _ = batch.unfold_horizontal(data)
        pyphi_spe = calc.contributions(ref, unfolded, "spe", to_obs=[48])
        batch.monitor(ref, data, shush=True)  # stage 1: per-maturity limits
        import matplotlib

        matplotlib.use("Agg")
        diags = batch.monitor(ref, data, which_batch="49", shush=True)
    cells = model.contributions("49", by="cell")
    ours_spe = cells["spe"].to_numpy().reshape(100, 10).T.ravel()
    np.testing.assert_allclose(ours_spe, np.abs(pyphi_spe.ravel()), rtol=0, atol=1e-4 * ours_spe.max())

    chart = model.monitor(tidy(values[48:49], names, ["49"])).sort("maturity")
    t = chart.select("t_1", "t_2", "t_3").to_numpy()
    sign = np.sign(np.sum(t * diags["t_mon"], axis=0))
    scale = np.abs(t).max()
    np.testing.assert_allclose(t, diags["t_mon"] * sign, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(chart["t2"], diags["HT2_mon"] * (n - 1) / n, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(chart["spe"], diags["spei_mon"], rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(chart["spe_known"], diags["spe_mon"], rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(chart["spe_limit"], ref["spei_mon_ci_99"], rtol=1e-3)
    np.testing.assert_allclose(chart["spe_known_limit"], ref["spe_mon_ci_99"], rtol=1e-3)
    assert chart["t2_limit"][0] == pytest.approx(ref["ht2_mon_ci_99"], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# alignment helper
# ---------------------------------------------------------------------------------------------
def test_align_by_time_interpolates_without_extrapolating(demo):
    campaign = bw.simulate_campaign(3, random_seed=1, online_interval_min=30)
    obs = campaign.observations.filter(pl.col("variable") == "vcd")
    with pytest.warns(bw.BioWorkbenchWarning, match="not extrapolated"):
        al = mon.align_by_time(campaign, variables=["vcd"], grid_h=6.0, source="offline", end_h=340.0)
    assert al.columns == ["batch_id", "maturity", "time_h", "variable", "value"]
    first = campaign.batch_ids[0]
    b1 = obs.filter(pl.col("batch_id") == first).sort("time_h")
    got = al.filter(pl.col("batch_id") == first)
    expected = np.interp(got["time_h"], b1["time_h"], b1["value"])
    inside = (got["time_h"] >= b1["time_h"].min()) & (got["time_h"] <= b1["time_h"].max())
    np.testing.assert_allclose(got.filter(inside)["value"], expected[inside.to_numpy()], rtol=1e-12)
    assert got.filter(~inside)["value"].null_count() == (~inside).sum() > 0  # before day 0 sample, after harvest


def test_align_by_time_warns_once_or_leaves_a_note():
    campaign = bw.simulate_campaign(3, random_seed=1, online_interval_min=30)
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        al = mon.align_by_time(campaign, variables=["vcd", "glucose"], grid_h=6.0, source="offline", end_h=340.0)
    assert len(record) == 1
    n_null = al["value"].null_count()
    assert n_null > 0
    note = mon.alignment_note(al)
    assert note.startswith(f"{n_null} of {al.height} grid cells lie outside a batch's observed time range")
    per = (
        al.group_by("batch_id").agg(pl.col("value").null_count()).sort(["value", "batch_id"], descending=[True, False])
    )
    assert note.endswith("(" + ", ".join(f"{b}: {n}" for b, n in per.iter_rows()) + ").")
    assert str(record[0].message) == f"align_by_time: {note}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = mon.align_by_time(
            campaign, variables=["vcd", "glucose"], grid_h=6.0, source="offline", end_h=340.0, warn=False
        )
    assert_frame_equal(quiet, al)
    assert mon.alignment_note(al.drop_nulls("value")) == ""
    # for a report page the note is Safe Markdown with the batch ids escaped; the warning stays plain text
    odd = pl.DataFrame({"batch_id": ["B_1", "B_1", "B2"], "maturity": [0.0, 1.0, 0.0], "variable": "x",
                        "value": [None, 1.0, None]}, schema_overrides={"value": pl.Float64})  # fmt: skip
    note = mon.alignment_note(odd)
    assert isinstance(note, bw.review.Safe)
    expected = "2 of 3 grid cells lie outside a batch's observed time range and are left missing (null), "
    assert note == expected + "not extrapolated (B2: 1, B&#95;1: 1)."
    # flagged observations (14 lactate results '<LOD' in this campaign) are counted in the same warning
    n_flag = campaign.observations.filter((pl.col("variable") == "lactate") & pl.col("flag").is_not_null()).height
    assert n_flag == 14
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        mon.align_by_time(campaign, variables=["lactate"], grid_h=6.0, source="offline")
    assert len(record) == 1
    assert "; left out 14 flagged observations (flag not null, e.g. '<LOD')." in str(record[0].message)


def test_align_by_time_errors():
    campaign = bw.simulate_campaign(3, random_seed=1, online_interval_min=60)
    with pytest.raises(bw.ConfigError, match="Did you mean 'ph'"):
        mon.align_by_time(campaign, variables=["phh"], grid_h=4.0)
    with pytest.raises(bw.SchemaError, match=r"batch B0?1\).*variable 'vcd' has no online observation"):
        mon.align_by_time(campaign, variables=["vcd"], grid_h=4.0, source="online")
    with pytest.raises(bw.ConfigError, match="several sources"):
        mon.align_by_time(campaign, variables=["ph"], grid_h=4.0, source=None)
    with pytest.raises(bw.ArgumentError, match=r"align_by_time: grid_h must be a finite number > 0 \(hours\); got 0"):
        mon.align_by_time(campaign, variables=["ph"], grid_h=0)


# ---------------------------------------------------------------------------------------------
# impossible inputs
# ---------------------------------------------------------------------------------------------
def small(n_batches: int = 8, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return tidy(rng.standard_normal((n_batches, 6, 3)), ["a", "b", "c"], [f"B{i}" for i in range(n_batches)])


def test_fewer_reference_batches_than_components():
    with pytest.raises(bw.ConfigError, match=r"BatchPCA\(n_components=4\) needs at least 6 reference batches.*has 4"):
        mon.BatchPCA(4).fit(small(4))
    with pytest.raises(bw.ConfigError, match="too few for 3 components"):
        mon.t2_limit_training(4, 3)
    with pytest.raises(bw.ConfigError, match="positive integer"):
        mon.BatchPCA(0)


def test_variable_missing_in_a_batch_names_batch_and_variable():
    frame = small().filter(~((pl.col("batch_id") == "B3") & (pl.col("variable") == "b")))
    with pytest.raises(bw.SchemaError, match=r"batch B3.*variable 'b' is missing: the batch has no row for it"):
        mon.BatchPCA(2).fit(frame)
    nulls = small().with_columns(
        value=pl.when((pl.col("batch_id") == "B5") & (pl.col("variable") == "c")).then(None).otherwise("value")
    )
    with pytest.raises(bw.SchemaError, match=r"batch B5.*variable 'c' is missing: the batch has no value for it"):
        mon.BatchPCA(2).fit(nulls)
    model = mon.BatchPCA(2).fit(small())
    running = small(1, seed=9).filter(pl.col("variable") != "a")
    with pytest.raises(bw.SchemaError, match=r"batch B0.*variable 'a' is missing"):
        model.monitor(running)


def test_other_impossible_inputs():
    model = mon.BatchPCA(2)
    with pytest.raises(bw.ModelNotFittedError, match=r"call \.fit\(aligned\) first"):
        model.batch_statistics()
    with pytest.raises(bw.SchemaError, match=r"BatchPCA\.fit: the reference frame: missing required column 'maturity'"):
        model.fit(small().drop("maturity"))
    with pytest.raises(bw.SchemaError, match=r"batch B1.*2 rows for variable 'a' at maturity 0"):
        model.fit(pl.concat([small(), small().filter((pl.col("batch_id") == "B1") & (pl.col("maturity") == 0))]))
    model.fit(small())
    with pytest.raises(bw.SchemaError, match=r"unknown variable 'aa'.*Did you mean 'a'"):
        model.monitor(small(1).with_columns(variable=pl.col("variable").replace({"a": "aa"})))
    with pytest.raises(bw.SchemaError, match=r"batch B0.*maturity 2.5 is not on the model's maturity grid"):
        model.monitor(small(1).with_columns(maturity=pl.col("maturity") + 0.5))
    with pytest.raises(bw.ConfigError, match=r"not a reference batch.*Did you mean 'B1'"):
        model.contributions("B11")
    with pytest.raises(bw.ConfigError, match="prob must lie strictly between 0 and 1"):
        model.batch_statistics(prob=99)
    with pytest.raises(bw.ConfigError, match="Did you mean 'box'"):
        model.batch_statistics(spe_method="boxx")


def test_import_stays_light():
    code = (
        "import sys, bioworkbench as bw, bioworkbench.monitoring; "
        "print(','.join(m for m in ('scipy', 'pandas', 'pyphi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
