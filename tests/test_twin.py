"""The calibrated digital twin (issue 16, stage 2): FedBatchTwin's fit, predict, what_if and compare.

Fast: one real fit on three simulated demo batches with few draws (one chain), shared by the module
(nutpie compiles the model, ~20 s; the sampling ~10-20 s); its posterior is not
converged, so these tests check shapes, units, the data flow and directions, not numbers. The
recovery and coverage checks are under ``@pytest.mark.slow``.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
import bioworkbench.simulate as simulate_module
from bioworkbench.twin import FedBatchTwin, FeedPlan
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.data import OBSERVED, batch_data
from bioworkbench.twin.pt_op import campaign_loglik_grad, pack
from bioworkbench.twin.scenarios import ENDPOINTS

FIT_IDS = ["B01", "B02", "B03"]


def _simulated(n_batches: int = 4, *, feed_factor: float = 1.0, random_seed: int = 0):
    """``bw.simulate_campaign`` with every batch's feed volume scaled (the simulator's own response)."""
    original = simulate_module._integrate

    def scaled(p, sched, n_steps):
        return original({**p, "feed_pct": p["feed_pct"] * feed_factor}, sched, n_steps)

    simulate_module._integrate = scaled
    try:
        return bw.simulate_campaign(n_batches, random_seed=random_seed, online_interval_min=60, return_truth=True)
    finally:
        simulate_module._integrate = original


@pytest.fixture(scope="module")
def campaign():
    return _simulated(4).campaign


@pytest.fixture(scope="module")
def twin(campaign):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = FedBatchTwin().fit(campaign, batch_ids=FIT_IDS, draws=20, tune=30, chains=1, random_seed=1)
    model._fit_warnings = [str(w.message) for w in caught]  # few draws: not converged (a warning says so)
    model._campaign = campaign
    return model


# -- data and the Op ---------------------------------------------------------------------------------
def test_batch_data_reads_lod_from_the_flag_reason_and_starts_from_the_inoculation_readings(campaign):
    bd = batch_data(campaign, "B01")
    obs = bd.observations
    assert obs.time_h.min() >= 1.0  # the inoculation readings are y0, not data
    cens = obs.censored
    assert cens.any()
    names = np.array(K.OBSERVABLE_NAMES)[obs.variable[cens]]
    lods = {"lactate": 0.3, "glutamine": 0.1}  # as the simulator's flag_reason states them
    assert all(obs.value[cens][i] == lods[n] for i, n in enumerate(names))
    first = campaign.observations.filter(
        (pl.col("batch_id") == "B01") & (pl.col("time_h") < 1) & (pl.col("variable") == "vcd")
    )["value"][0]
    assert bd.y0[0] == first and bd.y0[7] == campaign.batches["initial_volume_ml"][0]
    assert set(np.array(K.OBSERVABLE_NAMES)[np.unique(obs.variable)]) <= set(OBSERVED)


def test_unknown_batch_is_a_config_error_naming_the_batches(campaign):
    with pytest.raises(bw.ConfigError, match=r"no batch 'B1' in the campaign.*B01"):
        batch_data(campaign, "B1")


def test_variables_choose_the_readings_and_unknown_ones_are_refused(campaign):
    bd = batch_data(campaign, "B01", variables=("vcd", "titer"))
    assert set(np.array(K.OBSERVABLE_NAMES)[np.unique(bd.observations.variable)]) == {"vcd", "titer"}
    with pytest.raises(bw.ConfigError, match=r"variables \['ph'\] cannot be observed; choose from vcd, viability"):
        batch_data(campaign, "B01", variables=("vcd", "ph"))


def test_numba_op_equals_the_python_sum(campaign):
    from bioworkbench.twin import BatchLikelihood, CampaignLikelihood, default_theta

    bds = [batch_data(campaign, b) for b in FIT_IDS[:2]]
    liks = [BatchLikelihood(b.events, b.observations, h_max=2.0) for b in bds]
    theta = np.tile(default_theta(), (2, 1))
    theta[:, 11] = 3.0
    y0 = np.vstack([b.y0 for b in bds])
    sigma = np.linspace(0.05, 0.2, K.NOBS)
    got = campaign_loglik_grad(theta, y0, sigma, *pack(liks).values())
    want = CampaignLikelihood(liks)(theta, y0, sigma)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    for g, w in zip(got[1:], want[1:], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


def test_the_model_compiles_for_nutpie_without_the_object_mode_fallback(twin):
    # the fixture's fit recorded every warning: none from PyTensor falling back to object mode
    assert not [w for w in twin._fit_warnings if "object mode" in w], twin._fit_warnings
    names = {v.name for v in twin.build(twin._campaign, batch_ids=FIT_IDS).free_RVs}
    assert {"z_mu_max_b", "sd_mu_max", "z_k_glc", "sigma"} <= names


def test_priors_must_be_lognormal_or_normal():
    with pytest.raises(bw.ConfigError, match=r"mu_max: HalfNormal"):
        FedBatchTwin(priors={"mu_max": {"dist": "HalfNormal", "sigma": 0.1}})
    with pytest.raises(bw.ConfigError, match=r"unknown prior\(s\) 'mu'"):
        FedBatchTwin(priors={"mu": {"dist": "Normal", "mu": 0, "sigma": 1}})


def test_an_unfitted_twin_says_so(campaign):
    with pytest.raises(bw.ModelNotFittedError, match="FedBatchTwin has no posterior yet"):
        FedBatchTwin().predict(campaign, batch_id="B01")


# -- a fitted twin ------------------------------------------------------------------------------------------
def test_fit_keeps_the_posterior_and_the_summary_has_every_parameter(twin):
    assert twin.sampling["backend"] == "nutpie" and twin.sampling["adaptation"] == "low_rank"
    s = twin.summary()
    assert {"mean", "lower", "upper", "prob", "unit"} <= set(s.columns)
    batch = s.filter(pl.col("level") == "batch")
    assert sorted(batch["parameter"].unique().to_list()) == ["kd", "mu_max", "q_p"]
    assert sorted(batch["batch_id"].unique().to_list()) == FIT_IDS
    assert s.filter(pl.col("parameter") == "sigma_titer").height == 1
    assert s.filter(pl.col("parameter") == "y_x_glc")["unit"][0] == "(1e6 cells/mL)/(mmol/L)"


def test_predict_a_fitted_batch_has_the_frames_and_units(twin, campaign):
    p = twin.predict(campaign, batch_id="B01", random_seed=0)
    t, e = p.trajectory, p.endpoints
    assert t.columns == ["batch_id", "scenario", "time_h", "variable", "mean", "lower", "upper", "prob", "unit"]
    assert set(t["variable"]) == set(K.OBSERVABLE_NAMES)
    assert t["time_h"].max() == pytest.approx(batch_data(campaign, "B01").end_h)
    assert (t["lower"] <= t["mean"] + 1e-9).all() and (t["mean"] <= t["upper"] + 1e-9).all()
    units = dict(t.select("variable", "unit").unique().rows())
    assert units["titer"] == "mg/L" and units["vcd"] == "1e6 cells/mL" and units["glucose"] == "mmol/L"
    assert e.columns == ["batch_id", "scenario", "quantity", "mean", "lower", "upper", "prob", "unit"]
    assert dict(e.select("quantity", "unit").rows()) == {q: u for q, (_, _, u) in ENDPOINTS.items()}
    assert p.method.startswith("posterior of B01") and p.n_draws == 20


def test_predict_a_running_batch_uses_its_readings_up_to_known_h(twin, campaign):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)  # few draws: a small effective sample size
        p = twin.predict(campaign, batch_id="B02", known_h=100.0, random_seed=0, draws=10)
    assert "updated on its readings up to 100 h" in p.method
    assert p.known_h == 100.0 and p.ess >= 1.0
    assert p.endpoints.height == len(ENDPOINTS)


def test_what_if_and_compare_share_the_draws(twin, campaign):
    plan = FeedPlan.from_events(campaign.events, batch_id="B01")
    more = plan.scaled(1.2, from_h=120.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        w = twin.what_if(campaign, batch_id="B01", known_h=120.0, plan=more, random_seed=3)
        r = twin.compare(campaign, batch_id="B01", known_h=120.0, plans={"as is": plan, "+20 %": more}, random_seed=3)
    assert w.trajectory["scenario"].unique().to_list() == ["what_if"]
    assert r.endpoints["scenario"].unique(maintain_order=True).to_list() == ["as is", "+20 %"]
    # common random numbers: the what-if equals the comparison's second scenario draw for draw
    np.testing.assert_allclose(w.draws["what_if"]["final_titer"], r.draws["+20 %"]["final_titer"])
    # before known_h the scenarios are the same batch
    early = r.trajectory.filter(pl.col("time_h") < 120.0).pivot("scenario", index=["time_h", "variable"], values="mean")
    np.testing.assert_allclose(early["as is"], early["+20 %"], rtol=1e-12)
    d = r.differences.filter(pl.col("quantity") == "final_volume")
    fed = plan.events.filter((pl.col("event") == "feed") & (pl.col("time_h") >= 120.0))["volume_ml"].sum()
    assert d["mean"][0] == pytest.approx(0.2 * fed, rel=1e-9)


def test_what_if_takes_an_events_frame(twin, campaign):
    events = FeedPlan.from_events(campaign.events, batch_id="B01").scaled(0.5).to_events()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        w = twin.what_if(campaign, batch_id="B01", known_h=None, plan=events, draws=5)
    assert w.n_draws == 5
    with pytest.raises(bw.ArgumentError, match="pass a FeedPlan or an events frame"):
        twin.what_if(campaign, batch_id="B01", known_h=None, plan={"feed": 1})


def test_more_feed_moves_the_final_titer_the_way_the_simulator_does(twin, campaign):
    base, more = _simulated(4), _simulated(4, feed_factor=1.2)
    sim = (more.truth["final_titer_mg_l"] - base.truth["final_titer_mg_l"]).to_numpy()[0]  # batch B01
    plan = FeedPlan.from_events(campaign.events, batch_id="B01")
    r = twin.compare(campaign, batch_id="B01", known_h=None, plans={"as is": plan, "+20 %": plan.scaled(1.2)})
    twin_diff = r.differences.filter(pl.col("quantity") == "final_titer")["mean"][0]
    assert np.sign(twin_diff) == np.sign(sim) != 0


def test_save_and_load_round_trip(twin, campaign, tmp_path):
    back = bw.models.load(twin.save(tmp_path / "twin.nc"))
    assert isinstance(back, FedBatchTwin) and back.data == twin.data
    a = twin.predict(campaign, batch_id="B03", random_seed=5).endpoints
    b = back.predict(campaign, batch_id="B03", random_seed=5).endpoints
    assert_frame_equal(a, b)


# -- slow: a real calibration ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 16 open: on 5 simulated batches, 150 + 150 draws x 2 chains (7.5 min) gave 139 divergences "
    "and r-hat 2.93 (the posterior is not sampled yet; see the stage-2 note)",
)
def test_calibration_recovers_the_batches_and_predicts_a_held_out_harvest():
    sim = _simulated(6, random_seed=2)
    c, truth = sim.campaign, sim.truth
    ok = truth.filter(~pl.col("aborted"))["batch_id"].to_list()
    fit_ids, held_out = ok[:-1], ok[-1]
    twin = FedBatchTwin().fit(c, batch_ids=fit_ids, draws=150, tune=150, chains=2, random_seed=4)
    assert twin.diagnostics()["divergences"] == 0
    # the fitted batches' final titer: inside the 90 % interval of the twin's prediction, or within 15 %
    for b in fit_ids:
        e = twin.predict(c, batch_id=b, random_seed=0).endpoints.filter(pl.col("quantity") == "final_titer")
        true = truth.filter(pl.col("batch_id") == b)["final_titer_mg_l"][0]
        assert e["lower"][0] * 0.85 <= true <= e["upper"][0] * 1.15, b
    # held out from day 5: the harvest titer within the prediction's 90 % interval (widened by 15 %)
    p = twin.predict(c, batch_id=held_out, known_h=120.0, random_seed=0)
    e = p.endpoints.filter(pl.col("quantity") == "final_titer")
    true = truth.filter(pl.col("batch_id") == held_out)["final_titer_mg_l"][0]
    assert e["lower"][0] * 0.85 <= true <= e["upper"][0] * 1.15
