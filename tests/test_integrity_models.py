"""Integrity of the process models: no genuine data dropped for one outlier, warnings when a fit
does not converge, the same numbers for the same seed whatever the compile cache holds, and
located errors (never a raw TypeError/AttributeError/polars error) for wrong arguments.
"""

from __future__ import annotations

import inspect
import warnings
from unittest import mock

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.models import GrowthModel, ResponseSurface, TiterModel, diagnostics_markdown, usable_batches
from bioworkbench.models.growth import crash_points

PYMC = {"backend": "pymc"}
TINY = {"draws": 30, "tune": 30, "chains": 1, "random_seed": 2}


@pytest.fixture(scope="module")
def camp():
    c = bw.simulate_campaign(n_batches=6, random_seed=31, online_interval_min=240)
    return c.filter_batches(c.batches.filter(pl.col("status") == "completed")["batch_id"].to_list())


def _vcd(campaign, batch_id: str) -> pl.DataFrame:
    return campaign.observations.filter(
        (pl.col("batch_id") == batch_id) & (pl.col("variable") == "vcd") & (pl.col("source") != "online")
    ).sort("time_h")


def _with_vcd(campaign, batch_id: str, fn) -> bw.Campaign:
    """The campaign with ``fn(time_h, value)`` (an expression) as the VCD of ``batch_id``."""
    sel = (pl.col("batch_id") == batch_id) & (pl.col("variable") == "vcd") & (pl.col("source") != "online")
    obs = campaign.observations.with_columns(value=pl.when(sel).then(fn).otherwise("value"))
    return bw.Campaign(**{**campaign.frames(), "observations": obs})


# -- one unflagged outlier --------------------------------------------------------------------------
def _old_crash_points(vcd: pl.DataFrame) -> pl.DataFrame:
    """The rule before: below 1/4 of the plain running maximum, and every later sample too."""
    s = vcd.with_columns(low=(pl.col("value") < 0.25 * pl.col("value").cum_max().shift(1)).fill_null(False))
    return s.filter(pl.col("low").cast(pl.Int8).reverse().cum_min().reverse() == 1)


def test_one_outlier_drops_no_genuine_sample_and_is_named(camp):
    b = camp.batch_ids[1]
    spike_h = float(_vcd(camp, b)["time_h"][4])  # the day-4 sample (6.43), 10x too high
    spiked = _with_vcd(camp, b, pl.when(pl.col("time_h") == spike_h).then(pl.col("value") * 10).otherwise("value"))
    n_b = _vcd(camp, b).height
    # the old rule took the 5 genuine samples of days 10-14 (15.7 to 12.2) for a collapse below a
    # quarter of the outlier (64.3) and kept the outlier
    assert _old_crash_points(_vcd(spiked, b))["time_h"].to_list() == [240.7, 264.4, 288.8, 312.7, 335.3]
    assert crash_points(_vcd(spiked, b)).is_empty()
    with pytest.warns(bw.BioWorkbenchWarning, match=rf"1 VCD sample\(s\) look like outliers.*batch {b}, {spike_h:g} h"):
        d = GrowthModel()._prepare(spiked)
    assert d["excluded"] == []
    assert [(s["batch_id"], s["time_h"]) for s in d["suspect"]] == [(b, spike_h)]
    assert d["suspect"][0]["ratio"] == pytest.approx(64.3 / 10.34)
    assert np.bincount(d["b"])[d["batch_ids"].index(b)] == n_b  # every sample kept, the outlier too


def test_a_real_collapse_is_still_left_out(camp):
    b = camp.batch_ids[2]
    crashed = _with_vcd(camp, b, pl.when(pl.col("time_h") > 250).then(pl.col("value") * 0.05).otherwise("value"))
    n_low = _vcd(camp, b).filter(pl.col("time_h") > 250).height
    with pytest.warns(bw.BioWorkbenchWarning, match=rf"{n_low} VCD sample\(s\) of collapsed cultures left out"):
        d = GrowthModel()._prepare(crashed)
    assert len(d["excluded"]) == n_low and d["suspect"] == []


# -- a batch that does not grow, and fits that do not converge --------------------------------------
def test_constant_vcd_batch_is_named(camp):
    b = camp.batch_ids[0]
    flat = _with_vcd(camp, b, pl.lit(0.5) + pl.col("time_h") * 0.0001)
    with pytest.warns(
        bw.BioWorkbenchWarning, match=rf"1 batch\(es\) whose VCD does not grow.*{b} \(0.50\d* to at most 0.53\d*\)"
    ):
        GrowthModel()._prepare(flat)


def test_fit_that_does_not_converge_warns(camp):
    bad = {
        "divergences": 3,
        "max_rhat": 1.83,
        "min_ess_bulk": 12.0,
        "min_ess_tail": 20.0,
        "chains": 2,
        "draws": 30,
        "ok": False,
        "notes": [],
    }
    from bioworkbench.models import base

    bad["issues"] = base._plain_issues(3, 1.83, 12.0, 2, 30, 30)
    with mock.patch.object(GrowthModel, "diagnostics", return_value=bad):
        with pytest.warns(
            bw.BioWorkbenchWarning, match=r"GrowthModel did not converge: The sampler hit 3 divergent"
        ) as rec:
            GrowthModel(sampler=PYMC).fit(camp, **TINY)
    text = str(rec[0].message)
    assert "The 2 chains disagree (r̂ up to 1.830; at most 1.01 wanted)" in text
    assert "effective sample size" not in text  # imprecision is not non-convergence
    md = diagnostics_markdown(bad, name="Growth model")
    assert md.startswith("> ⚠️ **Growth model: read these numbers with caution.**")
    assert "Rerun with more draws (draws=60, tune=1000)" in md and "_Sampler ?, 2 chains × 30 draws" in md


def test_good_diagnostics_read_as_one_plain_sentence():
    good = {
        "divergences": 0,
        "max_rhat": 1.004,
        "min_ess_bulk": 812.0,
        "min_ess_tail": 901.0,
        "chains": 2,
        "draws": 1000,
        "sampler_backend": "nutpie",
        "sampler_tune": 1000,
        "ok": True,
        "issues": [],
        "notes": ["Batches are grouped by cpp_feeding (7 groups; chosen automatically: the categorical CPP)."],
    }
    md = diagnostics_markdown(good, name="Growth model")
    assert md.startswith("**Growth model**: the sampler checks passed, so the intervals can be read as they are.")
    # the note names a column (data): escaped for the page, so its "_" cannot start emphasis
    assert "grouped by cpp&#95;feeding" in md and "cpp_feeding" not in md and "⚠️" not in md
    assert "_Sampler nutpie, 2 chains × 1000 draws after 1000 tuning steps; 0 divergent transitions" in md


# -- the same seed gives the same numbers, whatever the compile cache holds --------------------------
@pytest.mark.slow
def test_same_seed_same_draws_with_a_fresh_or_a_warm_cache(camp):
    from bioworkbench.models.base import _COMPILED

    other = bw.simulate_campaign(n_batches=6, random_seed=32, online_interval_min=240)
    other = other.filter_batches(other.batches.filter(pl.col("status") == "completed")["batch_id"].to_list())
    kw = {"draws": 100, "tune": 100, "chains": 2, "random_seed": 4, "covariates": "auto"}
    nutpie = {"backend": "nutpie"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        for key in [k for k in _COMPILED if k[0] == "GrowthModel"]:
            del _COMPILED[key]
        fresh = GrowthModel(sampler=nutpie).fit(camp, **kw)
        first_other = GrowthModel(sampler=nutpie).fit(other, **kw)  # same structure, other data
        warm = GrowthModel(sampler=nutpie).fit(camp, **kw)
        for key in [k for k in _COMPILED if k[0] == "GrowthModel"]:
            del _COMPILED[key]
        fresh_other = GrowthModel(sampler=nutpie).fit(other, **kw)
    assert not fresh.sampling["compiled_from_cache"] and warm.sampling["compiled_from_cache"]
    assert first_other.sampling["compiled_from_cache"] and not fresh_other.sampling["compiled_from_cache"]
    # the covariates differ between the campaigns: a cached model must not keep the first ones
    np.testing.assert_array_equal(warm.posterior_draws("theta"), fresh.posterior_draws("theta"))
    np.testing.assert_array_equal(first_other.posterior_draws("theta"), fresh_other.posterior_draws("theta"))
    assert warm.sampling["data_hash"] == fresh.sampling["data_hash"] != fresh_other.sampling["data_hash"]
    assert set(warm.sampling["versions"]) >= {"nutpie", "numba", "pymc", "pytensor"}


def test_a_cached_model_gets_every_data_value_of_the_fit():
    # a pm.Data the model does not list in _shared_data is read from the model built for the fit
    import pymc as pm

    from bioworkbench.models.base import _with_fit_data

    def build(x):
        with pm.Model() as m:
            pm.Data("a", np.array([1.0, 2.0]))
            pm.Data("b", np.array(x))
        return m

    first = build([0.0, 0.0])
    compiled = mock.Mock()
    compiled.shared_var_keys = {v: i for i, v in enumerate(first.data_vars)}
    compiled.with_data = lambda **kw: kw
    got = _with_fit_data(compiled, {"a": np.array([5.0, 6.0])}, lambda: build([7.0, 8.0]))
    np.testing.assert_array_equal(got["a"], [5.0, 6.0])
    np.testing.assert_array_equal(got["b"], [7.0, 8.0])
    # the initial-point function reads the shared variables: they hold this fit's values too
    np.testing.assert_array_equal([v.get_value() for v in first.data_vars][1], [7.0, 8.0])


# -- too few batches --------------------------------------------------------------------------------
def test_empty_or_too_small_batch_lists(camp):
    with pytest.raises(bw.SchemaError, match=r"GrowthModel.fit: batch_ids is empty; give the batches to use"):
        GrowthModel().fit(camp, batch_ids=[])
    with pytest.raises(
        bw.SchemaError, match=r"1 batch with enough VCD data \(B02\); the growth model needs at least 2"
    ):
        GrowthModel().fit(camp, batch_ids=["B02"])
    few = camp.observations.filter(
        ~((pl.col("variable") == "vcd") & (pl.col("batch_id") != "B02") & (pl.col("time_h") > 30))
    )
    c = bw.Campaign(**{**camp.frames(), "observations": few})
    with pytest.raises(bw.SchemaError) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        GrowthModel().fit(c)
    msg = str(e.value)
    assert "1 batch with enough VCD data (B02); the growth model needs at least 2. Left out:" in msg
    for b in camp.batch_ids:
        if b != "B02":
            assert f"{b}: 2 VCD points (needs 4)" in msg
    with pytest.raises(bw.SchemaError, match=r"TiterModel.fit: batch_ids is empty"):
        TiterModel().fit(camp, batch_ids=[])


def test_growth_only_campaign_is_usable_and_titer_model_says_why_not(camp):
    no_titer = bw.Campaign(**{**camp.frames(), "observations": camp.observations.filter(pl.col("variable") != "titer")})
    ids, left = usable_batches(no_titer)
    assert ids == camp.batch_ids and left.is_empty()
    ids, left = usable_batches(no_titer, min_titer=3)
    assert ids == [] and left["reason"].unique().to_list() == ["0 titer points (needs 3)"]
    with pytest.raises(bw.SchemaError, match=r"TiterModel.fit: campaign .* has no titer samples"):
        TiterModel().fit(no_titer)


# -- every fit shows its options ----------------------------------------------------------------------
@pytest.mark.parametrize("cls", [GrowthModel, TiterModel, ResponseSurface])
def test_fit_options_are_explicit_and_documented(cls):
    sig = inspect.signature(cls.fit)
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    names = [n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert {"draws", "tune", "chains", "random_seed"} <= set(names)
    doc = cls.fit.__doc__
    assert "Parameters" in doc and "Returns" in doc and "Raises" in doc
    for n in names:
        assert n in doc, f"{cls.__name__}.fit does not document {n}"
    if cls is GrowthModel:
        assert {"batch_ids", "group", "covariates", "known_until_h", "crash_fraction"} <= set(names)
        assert sig.parameters["group"].default == "auto"


# -- wrong arguments: located errors of the BioWorkbenchError family ---------------------------------
@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda c: GrowthModel().fit(c.observations),
            bw.ArgumentError,
            r"GrowthModel.fit: campaign must be a Campaign; got a polars DataFrame",
        ),
        (
            lambda c: TiterModel().fit("campaign.csv"),
            bw.ArgumentError,
            r"TiterModel.fit: campaign must be a Campaign; got the str 'campaign.csv'",
        ),
        (lambda c: GrowthModel().fit(c, batch_ids=["B99"]), bw.SchemaError, r"batch 'B99' is not in campaign"),
        (
            lambda c: GrowthModel().fit(c, batch_ids=[2, 3]),
            bw.ArgumentError,
            r"batch_ids must hold batch ids \(strings\)",
        ),
        (
            lambda c: GrowthModel().fit(c, batch_ids=["B02", "B02"]),
            bw.SchemaError,
            r"names batch\(es\) B02 more than once",
        ),
        (
            lambda c: GrowthModel().fit(c, draws="100"),
            bw.ArgumentError,
            r"GrowthModel.fit: draws must be an integer >= 1; got the str '100'",
        ),
        (
            lambda c: GrowthModel().fit(c, chains=1.5),
            bw.ArgumentError,
            r"GrowthModel.fit: chains must be an integer >= 1",
        ),
        (
            lambda c: GrowthModel().fit(c, known_until_h=[96]),
            bw.ArgumentError,
            r"known_until_h must map batch ids to hours",
        ),
        (
            lambda c: GrowthModel().fit(c, known_until_h={"B02": "4 d"}),
            bw.ArgumentError,
            r"known_until_h\['B02'\] must be a finite number",
        ),
        (
            lambda c: GrowthModel().fit(c, group="feeding"),
            bw.ConfigError,
            r"group column 'feeding' not in the batches table",
        ),
        (
            lambda c: GrowthModel().fit(c, covariates=["cpp_ph_set_point"]),
            bw.ConfigError,
            r"Did you mean 'cpp_ph_setpoint'",
        ),
        (
            lambda c: GrowthModel().fit(c, crash_fraction=2.0),
            bw.ConfigError,
            r"crash_fraction must lie between 0 and 1",
        ),
        (lambda c: GrowthModel().fit(c, min_points="4"), bw.ArgumentError, r"min_points must be an integer >= 2"),
        (lambda c: usable_batches(c.batches), bw.ArgumentError, r"usable_batches: campaign must be a Campaign"),
        (lambda c: usable_batches(c, min_vcd=-1), bw.ArgumentError, r"usable_batches: min_vcd must be an integer >= 0"),
    ],
)
def test_wrong_arguments_raise_located_errors(camp, call, error, text):
    with pytest.raises(error, match=text) as e:
        call(camp)
    assert isinstance(e.value, bw.BioWorkbenchError)


@pytest.fixture(scope="module")
def fitted(camp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        return GrowthModel(sampler=PYMC).fit(camp, **TINY), TiterModel(sampler=PYMC).fit(camp, **TINY)


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (
            lambda g, t: g.summary(prob=90),
            bw.ArgumentError,
            r"GrowthModel.summary: prob must be a probability .* Did you mean 0.9",
        ),
        (
            lambda g, t: g.predict(times_h="0, 24"),
            bw.ArgumentError,
            r"GrowthModel.predict: times_h must be culture times in hours",
        ),
        (
            lambda g, t: g.predict(kind="median"),
            bw.ArgumentError,
            r"GrowthModel.predict: kind: the str 'median' is not valid",
        ),
        (
            lambda g, t: g.predict(batch_ids="B2"),
            bw.SchemaError,
            r"batch\(es\) B2 were not in the data .* Did you mean 'B02'",
        ),
        (
            lambda g, t: g.curve_draws(["B02", "B03"], [0, 24]),
            bw.ArgumentError,
            r"GrowthModel.curve_draws: batch_ids must be a batch id",
        ),
        (
            lambda g, t: g.unusual(prob=0),
            bw.ArgumentError,
            r"GrowthModel.unusual: prob must be a finite number > 0 and < 1; got 0",
        ),
        (lambda g, t: t.summary(prob="90%"), bw.ArgumentError, r"TiterModel.summary: prob must be a finite number"),
        (
            lambda g, t: g.posterior_draws("peak_vcd_campain"),
            bw.ArgumentError,
            r"GrowthModel.posterior_draws: no posterior variable 'peak_vcd_campain'. Did you mean 'peak_vcd_campaign'",
        ),
        (lambda g, t: g.save(42), bw.ArgumentError, r"GrowthModel.save: path must be a file path"),
        (lambda g, t: t.titer_draws("B99", np.ones(2), np.zeros(2)), bw.SchemaError, r"B99 were not in the data"),
        (
            lambda g, t: t.predict(batch_id="B02", ivcd_pre=[1.0, None], ivcd_post=[0, 0]),
            bw.ArgumentError,
            r"TiterModel.predict: ivcd_pre must be IVCDs",
        ),
    ],
)
def test_wrong_arguments_of_fitted_models(fitted, call, error, text):
    with pytest.raises(error, match=text) as e:
        call(*fitted)
    assert isinstance(e.value, bw.BioWorkbenchError)


def test_module_functions_check_their_arguments(camp):
    from bioworkbench.models import load

    with pytest.raises(bw.ArgumentError, match=r"load: path must be a file path \(str or Path\); got the int 3"):
        load(3)
    with pytest.raises(bw.ArgumentError, match=r"diagnostics_markdown: diag must be a model's .diagnostics\(\)"):
        diagnostics_markdown("ok")
    with pytest.raises(bw.ArgumentError, match=r"GrowthModel.sample_prior_predictive: draws must be an integer >= 1"):
        GrowthModel().sample_prior_predictive(camp, draws="10")
