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
    c = bw.simulate_campaign(n_batches=5, seed=11, online_interval_min=240)
    return c.select([b for b in c.batch_ids if c.batches.filter(pl.col("batch_id") == b)["status"][0] == "completed"])


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
        GrowthModel(sampler=PYMC).fit(c, **FAST)


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
    with pytest.raises(bw.ConfigError, match="not a bioworkbench model file"):
        load(p)
    with pytest.raises(bw.ConfigError, match="not found"):
        load(tmp_path / "missing.nc")


def test_titer_summary_has_qp_per_batch(fitted, camp):
    _, t = fitted
    s = t.summary()
    qp = s.filter((pl.col("parameter") == "qp") & (pl.col("level") == "batch"))
    assert qp["batch_id"].to_list() == camp.batch_ids
    assert qp["unit"].unique().to_list() == ["pg/cell/d"]
    assert (qp["mean"] > 1).all() and (qp["mean"] < 200).all()


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
