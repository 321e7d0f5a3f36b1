"""The model contract: cheap constructors, build without sampling, clear errors, save/load round trip."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.models import GrowthModel, Prior, TiterModel, forecast, load

FAST = {"draws": 60, "tune": 60, "chains": 1, "random_seed": 1}
#: contract tests need a posterior, not a fast sampler: PyMC's NUTS compiles in C (cached on disk)
PYMC = {"backend": "pymc"}


@pytest.fixture(scope="module")
def camp():
    c = bw.simulate_campaign(n_batches=5, random_seed=11, online_interval_min=240)
    return c.filter_batches(
        [b for b in c.batch_ids if c.batches.filter(pl.col("batch_id") == b)["status"][0] == "completed"]
    )


@pytest.fixture(scope="module")
def fitted(camp):
    return GrowthModel(sampler=PYMC).fit(camp, **FAST), TiterModel(sampler=PYMC).fit(camp, **FAST)


@pytest.mark.parametrize("cls", [GrowthModel, TiterModel])
def test_constructor_is_cheap_and_checks_config(cls):
    t = time.perf_counter()
    m = cls()
    assert time.perf_counter() - t < 0.05
    assert m.idata is None and set(m.priors) == set(cls.default_priors)
    assert all(p.unit is not None and p.why for p in m.priors.values())
    with pytest.raises(bw.ConfigError, match="unknown prior"):
        cls(priors={"nonsense": Prior("Normal", {"mu": 0, "sigma": 1})})
    with pytest.raises(bw.ConfigError, match="unknown sampler setting"):
        cls(sampler={"draw": 10})
    with pytest.raises(bw.ModelNotFittedError, match=f"{cls.__name__} has no posterior yet; call .fit"):
        cls().summary()


def test_priors_can_be_overridden(camp):
    m = GrowthModel(priors={"peak_vcd": {"dist": "LogNormal", "mu": np.log(30.0), "sigma": 0.5}})
    assert m.priors["peak_vcd"].params == {"mu": np.log(30.0), "sigma": 0.5}
    model = m.build(camp)
    prior = m.sample_prior_predictive(draws=200, random_seed=1)
    k = prior["prior"]["peak_vcd_campaign"].values.ravel()
    assert np.median(k) == pytest.approx(30.0, rel=0.2)
    y = prior["prior_predictive"]["vcd"].values
    # VCD draws are positive; the Student-t tails (nu >= 1) can underflow exp() to 0 in a rare draw
    assert y.shape[-1] == len(m.data["t"]) and np.all(y >= 0) and np.mean(y > 0) > 0.999
    assert prior["prior"]["nu"].values.min() >= 1.0
    assert "loglik" in [p.name for p in model.potentials]


def test_build_without_sampling(camp):
    import pymc as pm

    for cls in (GrowthModel, TiterModel):
        m = cls()
        model = m.build(camp)
        assert isinstance(model, pm.Model) and m.idata is None
        assert np.isfinite(model.compile_logp()(model.initial_point()))


def test_too_few_points_names_batch_and_counts(camp):
    obs = camp.observations.filter(
        ~((pl.col("batch_id") == camp.batch_ids[0]) & (pl.col("variable") == "vcd") & (pl.col("time_h") > 50))
    )
    c = bw.Campaign(**{**camp.frames(), "observations": obs})
    with pytest.raises(bw.SchemaError, match=rf"batch {camp.batch_ids[0]} has 3 VCD points.*needs at least 4"):
        GrowthModel(sampler=PYMC).fit(c, batch_ids=camp.batch_ids, **FAST)
    # by default such a batch is left out, with a warning that names it and why
    with pytest.warns(bw.BioWorkbenchWarning, match=rf"1 batch\(es\) left out: {camp.batch_ids[0]} \(3 VCD points"):
        d = GrowthModel()._prepare(c)
    assert d["batch_ids"] == camp.batch_ids[1:]
    assert d["left_out"] == [{"batch_id": camp.batch_ids[0], "reason": "3 VCD points (needs 4)"}]


def test_growth_outputs_are_tidy(fitted, camp):
    g, _ = fitted
    s = g.summary()
    assert {"mean", "lower", "upper", "prob"} <= set(s.columns)
    assert set(s["parameter"]) >= {"growth_rate", "peak_vcd", "time_of_peak", "decline_rate"}
    per = s.filter((pl.col("level") == "batch") & (pl.col("parameter") == "peak_vcd"))
    assert per["batch_id"].to_list() == camp.batch_ids
    assert (per["lower"] <= per["mean"]).all() and (per["mean"] <= per["upper"]).all()
    pred = g.predict(times_h=[0, 24, 48], kind="predictive", random_seed=1)
    assert pred.columns == ["batch_id", "time_h", "variable", "mean", "lower", "upper", "prob"]
    assert pred.height == 3 * len(camp.batch_ids)
    d = g.diagnostics()
    assert {"divergences", "max_rhat", "min_ess_bulk", "issues", "sampler_backend"} <= set(d)
    assert d["sampler_backend"] in ("nutpie", "pymc")
    with pytest.raises(bw.SchemaError, match="were not in the data"):
        g.predict(batch_ids=["nope"])


def test_peak_is_the_maximum_of_the_curve_also_at_the_ends_of_the_range():
    rng = np.random.default_rng(0)
    n = 400
    theta = np.column_stack(
        [
            rng.uniform(5, 30, n),  # K
            rng.uniform(0.3, 3.0, n),  # mu
            rng.uniform(-2, 8, n),  # t_m
            rng.uniform(-3, 20, n),  # t_d: some decline from day 0, some after t_end
            rng.uniform(0.05, 2.0, n),  # delta
        ]
    )
    # still growing at day 14 (inflection at 20, decline from 30); declining from day 0
    theta = np.vstack([theta, [10.0, 0.5, 20.0, 30.0, 0.5], [10.0, 1.0, -10.0, -5.0, 2.0]])
    value, day = GrowthModel.peak(theta, 14.0)
    grid = np.linspace(0.0, 14.0, 140_001)
    curves = GrowthModel.curve(theta, grid)
    assert np.all(value >= curves.max(axis=1) * (1 - 1e-12))  # never below the grid's maximum
    np.testing.assert_allclose(value, curves.max(axis=1), rtol=1e-8)
    np.testing.assert_allclose(day, grid[curves.argmax(axis=1)], atol=2e-4)
    # a curve still rising at the end peaks at the end; one falling from day 0 at day 0
    assert day[-2] == 14.0 and day[-1] == 0.0
    np.testing.assert_allclose(GrowthModel.peak(theta[None, :3], 14.0)[0], value[None, :3])  # any leading shape


def test_save_load_round_trip_gives_same_predictions(fitted, tmp_path):
    for m in fitted:
        path = m.save(tmp_path / f"{m.model_type}.nc")
        back = load(path)
        assert type(back) is type(m)
        assert back.priors == m.priors and back.sampler == m.sampler and back.data == m.data
        assert back.sampling["backend"] == m.sampling["backend"]
        from polars.testing import assert_frame_equal

        assert_frame_equal(back.summary(), m.summary())
    g = load(tmp_path / "GrowthModel.nc")
    assert_frame_equal(g.predict(times_h=[12.0, 100.0]), fitted[0].predict(times_h=[12.0, 100.0]))


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "x.nc"
    import xarray as xr

    xr.DataTree().to_netcdf(p, engine="h5netcdf")
    # a file that is not a model file, a missing one and one that is not netCDF cannot be read: DataReadError
    with pytest.raises(bw.DataReadError, match="not a bioworkbench model file") as err:
        load(p)
    assert not isinstance(err.value, bw.ConfigError)
    with pytest.raises(bw.DataReadError, match="not found"):
        load(tmp_path / "missing.nc")
    text = tmp_path / "notes.nc"
    text.write_text("not a netCDF file")
    with pytest.raises(bw.DataReadError, match=r"notes.nc: cannot be read as a netCDF model file"):
        load(text)


def test_titer_summary_has_qp_per_batch(fitted, camp):
    _, t = fitted
    s = t.summary()
    qp = s.filter((pl.col("parameter") == "qp") & (pl.col("level") == "batch"))
    assert qp["batch_id"].to_list() == camp.batch_ids
    assert qp["unit"].unique().to_list() == ["pg/cell/d"]
    assert (qp["mean"] > 1).all() and (qp["mean"] < 200).all()


def test_titer_post_shift_segments_add_up_to_the_post_shift_ivcd(camp):
    from bioworkbench.models.titer import _segment_matrix

    m = TiterModel()
    m.build(camp)
    d = m.data
    seg, tau = _segment_matrix(d)
    assert seg.shape == (len(d["titer"]), len(d["seg_ivcd"])) and tau.size > 0
    # unweighted (γ = 0) the segments of a sample sum to its IVCD after the shift
    np.testing.assert_allclose(seg.sum(axis=1), d["ivcd_post"], rtol=1e-12, atol=1e-12)
    assert (tau > 0).all() and (np.asarray(d["seg_ivcd"]) >= 0).all()
    # a sample before its batch's shift has no post-shift segment
    assert (seg[np.asarray(d["ivcd_post"]) == 0] == 0).all()
    # weighted by a decline the post-shift IVCD is smaller, the more the later the sample
    post = np.asarray(d["ivcd_post"])
    weighted = seg @ np.exp(-0.1 * tau)
    late = post > 0
    assert (weighted[late] < post[late]).all()
    assert m.priors["qp_decline"].unit == "1/d"


def test_titer_draws_apply_the_campaign_decline_of_qp(fitted):
    _, t = fitted
    i = next(k for k, s in enumerate(t.data["shift_h"]) if s is not None)
    b, t_s = t.data["batch_ids"][i], t.data["shift_h"][i]
    # known truth: a constant VCD X after the shift gives ∫ X·exp(-γ(u - t_s)) du = X (1 - exp(-γ D)) / γ
    x, pre = 10.0, 20.0
    hours = t_s + np.arange(0.0, 7 * 24 + 1)
    post = x * (hours - t_s) / 24
    got = t.titer_draws(b, np.full((1, hours.size), pre), post[None, :], time_h=hours)
    gamma = t.posterior_draws("qp_decline")
    assert (gamma > 0).all()
    a, q1, q2 = (t.posterior_draws(v)[:, i] for v in ("intercept_b", "qp_b", "qp_after_shift_b"))
    want = a + q1 * pre + q2 * x * -np.expm1(-gamma * 7) / gamma
    np.testing.assert_allclose(got[:, -1], want, rtol=1e-6)
    # the decline lowers the titer below a constant qp after the shift
    assert (got[:, -1] < a + q1 * pre + q2 * post[-1]).all()
    # the same titer from a coarse grid that starts at the shift (midpoint weights, daily steps)
    days = hours[::24]
    coarse = t.titer_draws(b, np.full((1, days.size), pre), (x * (days - t_s) / 24)[None, :], time_h=days)
    np.testing.assert_allclose(coarse[:, -1], want, rtol=2e-3)
    p = t.predict(batch_id=b, ivcd_pre=np.full(days.size, pre), ivcd_post=x * (days - t_s) / 24, time_h=days)
    assert p["time_h"].to_list() == days.tolist() and p["mean"][-1] == pytest.approx(coarse[:, -1].mean())
    # before the shift no times are needed; after it they are, one per point and ascending
    t.titer_draws(b, np.ones((1, 2)), np.zeros((1, 2)))
    with pytest.raises(bw.ArgumentError, match=rf"batch {b}'s qp declines after its shift .* pass time_h"):
        t.titer_draws(b, np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(bw.ArgumentError, match=r"one per point along the last axis of ivcd_post \(2\); got 3"):
        t.titer_draws(b, np.ones((1, 2)), np.ones((1, 2)), time_h=[1.0, 2.0, 3.0])
    with pytest.raises(bw.ArgumentError, match=r"got 2 time\(s\), not ascending"):
        t.titer_draws(b, np.ones((1, 2)), np.ones((1, 2)), time_h=[200.0, 150.0])


def test_compiled_model_is_reused(camp):
    a = GrowthModel(sampler={"backend": "nutpie"}).fit(camp, **FAST)
    b = GrowthModel(sampler={"backend": "nutpie"}).fit(camp, **{**FAST, "random_seed": 2})
    assert a.sampling["backend"] == "nutpie" and b.sampling["compiled_from_cache"]


def test_forecast_shape_and_sentence(camp):
    b = camp.batch_ids[-1]
    fc = forecast(camp, b, known_h=4 * 24 + 2, draws=60, tune=60, chains=1, random_seed=3, sampler=PYMC)
    e = fc.endpoints
    assert set(e["quantity"]) >= {"final_titer", "peak_vcd", "time_of_peak", "final_ivcd"}
    assert set(fc.trajectory["variable"]) == {"vcd", "titer"}
    assert fc.trajectory["time_h"].max() == pytest.approx(fc.end_h)
    assert b in fc.sentence() and "forecast to end" in fc.sentence()
    assert b not in fc.history


def test_student_t_sum_matches_pytensor_value_and_gradient():
    # the hand-written likelihood loop against PyTensor's automatic gradient of the same formula,
    # compiled by numba (what nutpie runs) and through the Op's perform (other modes)
    import pytensor
    import pytensor.tensor as pt
    from pytensor.compile.mode import Mode

    from bioworkbench.models.growth import _student_t_op_class

    rng = np.random.default_rng(0)
    t = np.tile(np.linspace(0.0, 14.0, 9), (3, 1))
    w = np.ones_like(t)
    w[2, 6:] = 0.0  # padding
    log_y = (
        3.0
        - np.logaddexp(0.0, -0.9 * (t - 4.5))
        - 0.1 * np.logaddexp(0.0, t - 9.0)
        + 0.1 * rng.standard_normal(t.shape)
    )
    theta, sigma, nu = pt.dmatrix("theta"), pt.dscalar("sigma"), pt.dscalar("nu")
    got = _student_t_op_class()()(theta, sigma, nu, t, log_y, w)[0]
    k, mu, tm, td, dl = (theta[:, i, None] for i in range(5))
    mean = k - pt.softplus(-pt.exp(mu) * (t - tm)) - pt.exp(dl) * pt.softplus(t - td)
    want = (w * pt.log1p(((log_y - mean) / sigma) ** 2 / nu)).sum()
    point = (
        np.array([[3.0, -0.1, 4.4, 9.0, -2.3], [2.8, -0.3, 5.0, 7.5, -1.5], [3.2, 0.1, 3.9, 11.0, -3.0]]),
        0.08,
        4.0,
    )
    ref = pytensor.function([theta, sigma, nu], [want, *pt.grad(want, [theta, sigma, nu])])(*point)
    for mode in (None, Mode(linker="py", optimizer="fast_compile")):
        out = pytensor.function([theta, sigma, nu], [got, *pt.grad(got, [theta, sigma, nu])], mode=mode)(*point)
        for a, b in zip(out, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_pilot_fit_recovers_noise_free_curves():
    from bioworkbench.models.growth import GrowthModel as G
    from bioworkbench.models.growth import pilot_fit

    truth = np.array([[3.0, -0.1, 4.4, 9.5, -2.5], [2.6, -0.4, 5.2, 8.0, -1.8], [3.3, 0.0, 3.8, 10.0, -2.0]])
    t = np.tile(np.arange(0.0, 14.5, 1.0), (3, 1))
    log_y = np.log(G.curve(np.column_stack([np.exp(truth[:, :2]), truth[:, 2:4], np.exp(truth[:, 4])]), t[0]))
    fit = pilot_fit(t, log_y, np.ones_like(t))
    # the weak prior pulls a little; the noise-free curves pin the parameters to within 1 %
    np.testing.assert_allclose(fit["theta"], truth, rtol=0.01, atol=0.02)
    assert np.all(fit["cond_se"] <= fit["se"] + 1e-12)


def test_small_campaigns_are_non_centred_large_ones_centred(camp):
    small = GrowthModel()._prepare(camp)
    assert small["centred"] == [False] * 5 and not any(small["sparse"])
    big = bw.simulate_campaign(n_batches=40, random_seed=5, online_interval_min=600)
    d = GrowthModel()._prepare(big, batch_ids=[b for b in big.batch_ids if b != _aborted(big)])
    assert d["centred"][1:3] == [True, True] and d["centred"][4] is False
    assert 0 < d["t_ref"][0] < d["t_ref"][1] < d["t_max"]
    model = GrowthModel().build(d)
    assert "growth_prior" in [p.name for p in model.potentials]
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    # a running batch known for 3 days is non-centred whatever the campaign
    running = GrowthModel()._prepare(camp, known_until_h={camp.batch_ids[0]: 72.0})
    assert running["sparse"][0] and not any(running["sparse"][1:])


def _aborted(campaign) -> str:
    return campaign.batches.filter(pl.col("status") != "completed")["batch_id"][0]


def test_mid_sized_campaigns_centre_growth_rate_and_inflection_day_only_when_the_data_pin_them():
    """15-29 whole batches: log μ and t_m centred together when both spreads exceed six conditional SEs (the demo's
    23), nothing for NISTCHO's 25 cultures in 10 groups (ratios ~5: centred, its fit had 50 divergences)."""
    import warnings

    demo = bw.datasets.demo()
    assert GrowthModel()._prepare(demo)["centred"] == [False, True, True, False, False]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        nist = GrowthModel()._prepare(bw.datasets.nistcho())
    assert nist["centred"] == [False] * 5


def test_collapsed_culture_is_left_out_with_a_warning(camp):
    b = camp.batch_ids[1]
    vcd = (pl.col("batch_id") == b) & (pl.col("variable") == "vcd") & (pl.col("time_h") > 250)
    obs = camp.observations.with_columns(value=pl.when(vcd).then(pl.col("value") * 0.05).otherwise("value"))
    crashed = bw.Campaign(**{**camp.frames(), "observations": obs})
    n_low = obs.filter(vcd).height
    assert n_low >= 1
    with pytest.warns(
        bw.BioWorkbenchWarning, match=rf"{n_low} VCD sample\(s\) of collapsed cultures.*batch {b}, 2\d\d"
    ):
        d = GrowthModel()._prepare(crashed)
    assert [e["batch_id"] for e in d["excluded"]] == [b] * n_low
    assert len(d["t"]) == len(GrowthModel()._prepare(camp)["t"]) - n_low
    kept = GrowthModel()._prepare(crashed, crash_fraction=None)
    assert kept["excluded"] == [] and len(kept["t"]) == len(d["t"]) + n_low
    with pytest.raises(bw.ConfigError, match="crash_fraction must lie between 0 and 1"):
        GrowthModel()._prepare(crashed, crash_fraction=2.0)


def test_tune_defaults_to_the_backends(camp):
    from bioworkbench.models.growth import DEFAULT_TUNE

    m = GrowthModel(sampler={"backend": "nutpie"})
    assert m.sampler["tune"] is None and GrowthModel(sampler={"tune": 50}).sampler["tune"] == 50
    m.fit(camp, draws=20, chains=1, random_seed=1)
    assert m.sampling["tune"] == DEFAULT_TUNE["nutpie"] == 500
