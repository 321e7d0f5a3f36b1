"""CPP identification: process table, impact ratios relative to spec width, relation graph."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import criticality as cr
from bioworkbench.errors import ConfigError, SchemaError
from tests.conftest import small_frames


class LinearSurface:
    """A stand-in for a fitted ResponseSurface whose posterior draws are known exactly."""

    def __init__(self, factors, beta, intercept, n_draws=200, spread=0.0, seed=0):
        self.factors = factors
        self.responses = list(beta)
        rng = np.random.default_rng(seed)
        # draws of each coefficient: exact value plus optional spread
        self._b = {r: np.asarray(b) + spread * rng.standard_normal((n_draws, len(b))) for r, b in beta.items()}
        self._a = intercept
        self.n = n_draws

    def draws(self, settings, *, kind="mean"):
        lo = np.array([v[0] for v in self.factors.values()])
        hi = np.array([v[1] for v in self.factors.values()])
        x = (settings.select(list(self.factors)).to_numpy() - (lo + hi) / 2) / ((hi - lo) / 2)
        out = np.stack([self._a[r] + self._b[r] @ x.T for r in self.responses], axis=-1)
        return out.reshape(self.n, x.shape[0], len(self.responses))


FACTORS = {"temp": (34.0, 37.0), "ph": (6.9, 7.1)}


def test_impact_ratio_of_a_linear_surface_is_twice_the_coefficient_over_the_tolerance():
    m = LinearSurface(
        FACTORS, {"titer": [300.0, -50.0], "aggregates": [0.1, 0.6]}, {"titer": 4000.0, "aggregates": 2.0}
    )
    out = cr.cpp_impact(m, {"titer": (3000.0, None), "aggregates": (None, 4.0)}, threshold=0.2)
    t = {(r["response"], r["factor"]): r for r in out.iter_rows(named=True)}
    # titer: one-sided, tolerance = centre prediction (4000) - limit (3000) = 1000
    assert t["titer", "temp"]["impact_ratio"] == pytest.approx(600 / 1000)
    assert t["titer", "ph"]["impact_ratio"] == pytest.approx(100 / 1000)
    # aggregates: one-sided upper, tolerance = 4 - 2 = 2
    assert t["aggregates", "ph"]["impact_ratio"] == pytest.approx(1.2 / 2)
    assert t["titer", "temp"]["critical"] and not t["titer", "ph"]["critical"]
    assert t["titer", "temp"]["rank"] == 1 and t["aggregates", "ph"]["rank"] == 1


def test_two_sided_spec_uses_the_spec_width_and_intervals_reflect_posterior_spread():
    m = LinearSurface(FACTORS, {"acidic": [1.0, 3.0]}, {"acidic": 22.0}, n_draws=4000, spread=0.5)
    out = cr.cpp_impact(m, {"acidic": (15.0, 30.0)}, prob=0.9)
    ph = out.filter(pl.col("factor") == "ph").row(0, named=True)
    assert ph["impact_ratio"] == pytest.approx(6 / 15, rel=0.03)
    assert ph["lower"] < 6 / 15 < ph["upper"]
    assert 0.0 < ph["p_critical"] <= 1.0


def test_impact_needs_a_spec_and_a_valid_one():
    m = LinearSurface(FACTORS, {"titer": [1.0, 1.0]}, {"titer": 10.0})
    with pytest.raises(ConfigError, match="none of the modelled responses"):
        cr.cpp_impact(m, {"aggregates": (None, 4.0)})
    with pytest.raises(ConfigError, match="lower 5 must be below upper 2"):
        cr.cpp_impact(m, {"titer": (5, 2)})


def _chain(n=400, seed=1):
    """x1 acts on y only through m; x2 acts on y directly; x3 does nothing."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.standard_normal((3, n))
    m = 0.8 * x1 + 0.3 * rng.standard_normal(n)
    y = 0.9 * m - 0.5 * x2 + 0.3 * rng.standard_normal(n)
    return pl.DataFrame({"x1": x1, "x2": x2, "x3": x3, "m": m, "y": y})


def test_relation_graph_finds_the_mediated_path_and_no_direct_edge():
    e = cr.relation_graph(_chain(), cpps=["x1", "x2", "x3"], intermediates=["m"], cqas=["y"])
    edge = {(r["source"], r["target"]): r for r in e.iter_rows(named=True)}
    assert edge["x1", "m"]["clear"] and edge["x1", "m"]["strength"] > 0.9
    assert edge["m", "y"]["clear"] and edge["x2", "y"]["clear"] and edge["x2", "y"]["strength"] < 0
    assert not edge["x3", "m"]["clear"] and not edge["x3", "y"]["clear"]
    assert abs(edge["x1", "y"]["strength"]) < 0.15  # no direct path once m is known
    assert e["n"].unique().to_list() == [400]


def test_relation_graph_matches_statsmodels_on_standardised_data():
    sm = pytest.importorskip("statsmodels.api")
    t = _chain(n=30, seed=3)
    e = cr.relation_graph(t, cpps=["x1", "x2", "x3"], intermediates=["m"], cqas=["y"], prob=0.9)
    z = t.with_columns((pl.all() - pl.all().mean()) / pl.all().std()).to_pandas()
    fit = sm.OLS(z["y"], sm.add_constant(z[["x1", "x2", "x3", "m"]])).fit()
    ci = fit.conf_int(alpha=0.1)
    got = e.filter(pl.col("target") == "y").sort("source")
    for r in got.iter_rows(named=True):
        assert r["strength"] == pytest.approx(fit.params[r["source"]], abs=1e-10)
        assert r["lower"] == pytest.approx(ci.loc[r["source"], 0], abs=1e-10)
        assert r["upper"] == pytest.approx(ci.loc[r["source"], 1], abs=1e-10)
        assert r["p_sign"] == pytest.approx(1 - fit.pvalues[r["source"]] / 2, abs=1e-10)


def test_relation_graph_errors_name_the_problem():
    t = _chain(n=5)
    with pytest.raises(ConfigError, match="'m' has 5 complete batches for 3 inputs; needs at least 6"):
        cr.relation_graph(t, cpps=["x1", "x2", "x3"], intermediates=["m"], cqas=["y"])
    with pytest.raises(ConfigError, match="not in the table"):
        cr.relation_graph(_chain(), cpps=["x9"], cqas=["y"])
    with pytest.raises(ConfigError, match="do not vary"):
        cr.relation_graph(_chain().with_columns(x3=pl.lit(1.0)), cpps=["x1", "x3"], cqas=["y"])


def test_value_at_day_interpolates_between_samples_and_never_extrapolates():
    c = bw.Campaign(**small_frames())
    v = cr.value_at_day(c, "glucose", 1.5).sort("batch_id")
    assert v.columns == ["batch_id", "glucose_day1.5"]
    assert v["glucose_day1.5"].to_list() == pytest.approx([32.5, 32.5])
    assert v.pipe(lambda d: cr.value_at_day(c, "glucose", 9))["glucose_day9"].is_null().all()
    with pytest.raises(SchemaError, match="no offline observations of 'lactate'"):
        cr.value_at_day(c, "lactate", 7)


def test_process_table_has_cpps_intermediates_cqas_and_day_values():
    c = bw.simulate_campaign(n_batches=6, random_seed=2)
    t = cr.process_table(c, at_day={"lactate": 7})
    assert t.height == 6
    for col in [*c.cpps, *cr.DEFAULT_INTERMEDIATES, "titer", "lactate_day7"]:
        assert col in t.columns
    with pytest.raises(ConfigError, match="unknown"):
        cr.process_table(c, intermediates=["peak_vcdd"])


def test_campaign_design_takes_setpoint_ranges_specced_cqas_and_leaves_out_aborted_batches():
    c = bw.simulate_campaign(n_batches=10, random_seed=0)
    d = cr.campaign_design(c)
    aborted = c.batches.filter(pl.col("status") != "completed")["batch_id"].to_list()
    assert sorted(d.left_out["batch_id"].to_list()) == sorted(aborted)
    assert not set(aborted) & set(d.table["batch_id"].to_list())
    for cpp, (lo, hi) in d.factors.items():
        kept = c.batches.filter(pl.col("status") == "completed")[cpp]
        assert (lo, hi) == (kept.min(), kept.max())
    specced = set(cr.spec_limits(c.specs))
    assert set(d.responses) <= specced and d.responses
    assert "left out" in d.describe() or not aborted
    s = d.summary()
    assert s["response"].to_list() == d.responses
    assert s["n_batches"].to_list() == [d.table[r].drop_nulls().len() for r in d.responses]
    assert all(s.row(i)[1:3] == d.specs[r] for i, r in enumerate(d.responses))
    every = cr.campaign_design(c, statuses=None)
    assert every.table.height == c.batches.height
    with pytest.raises(ConfigError, match="CPP"):
        cr.campaign_design(c, cpps=["cpp_temp"])


def test_small_campaigns_get_a_relation_graph_with_fewer_in_process_variables_and_a_note():
    c = bw.simulate_campaign(n_batches=9, random_seed=3, days=14, online_interval_min=30)
    d = cr.campaign_design(c, at_day={"lactate": 7})
    edges, note = cr.campaign_relation_graph(d)
    assert edges is not None and "left out" in note
    inter = set(edges["source"]) - set(d.factors)
    assert 0 < len(inter) < 3 and len(d.factors) + len(inter) + 3 <= d.table.height
    tiny = cr.campaign_design(bw.simulate_campaign(n_batches=6, random_seed=3, days=14, online_interval_min=30))
    edges, note = cr.campaign_relation_graph(tiny)
    assert edges is None and note.startswith("No relation graph") and "needs at least 6" in note


def test_fit_response_surface_falls_back_to_main_effects_when_runs_are_few(monkeypatch):
    from bioworkbench.models import ResponseSurface

    monkeypatch.setattr(ResponseSurface, "fit", lambda self, frame, **kw: self)
    small = cr.campaign_design(bw.simulate_campaign(n_batches=6, random_seed=3, days=14, online_interval_min=30))
    model, note = cr.fit_response_surface(small, terms="interactions")
    assert "main-effects model" in note and model.terms == list(small.factors)
    big = cr.campaign_design(bw.simulate_campaign(n_batches=12, random_seed=1))
    model, note = cr.fit_response_surface(big, terms="interactions")
    assert note == "" and len(model.terms) == 6


def test_cpp_impact_from_campaign_fits_completed_batches_on_observed_ranges(monkeypatch):
    """The wiring, without sampling: which batches, columns, ranges, CQAs and specs reach the fit
    and the impact calculation."""
    from bioworkbench.models import ResponseSurface

    seen = {}

    def fake_fit(self, frame, **kw):
        seen["frame"], seen["fit_kw"] = frame, kw
        return self

    def fake_impact(model, specs, *, threshold, prob):
        seen["model"], seen["specs"], seen["threshold"], seen["prob"] = model, specs, threshold, prob
        return pl.DataFrame({"cpp": ["stand-in"]})

    monkeypatch.setattr(ResponseSurface, "fit", fake_fit)
    monkeypatch.setattr(cr, "cpp_impact", fake_impact)
    c = bw.simulate_campaign(n_batches=12, random_seed=1)
    completed = c.batches.filter(pl.col("status") == "completed")
    out, model = cr.cpp_impact_from_campaign(c, threshold=0.3, prob=0.8, draws=10, tune=20, chains=1, random_seed=5)

    assert out["cpp"].to_list() == ["stand-in"] and model is seen["model"]
    limits = cr.spec_limits(c.specs)
    measured = set(c.quality["attribute"].unique().to_list())
    assert set(model.responses) == measured & set(limits) and model.responses
    assert seen["specs"] == {k: limits[k] for k in model.responses}
    assert (seen["threshold"], seen["prob"]) == (0.3, 0.8)
    assert seen["fit_kw"] == {"draws": 10, "tune": 20, "chains": 1, "random_seed": 5}
    cpps = [k for k in c.batches.columns if k.startswith("cpp_")]
    assert set(model.factors) == set(cpps)
    for cpp, (lo, hi) in model.factors.items():
        assert (lo, hi) == (completed[cpp].min(), completed[cpp].max())
    frame = seen["frame"]
    assert frame.columns == [*model.factors, *model.responses]
    assert frame.height == completed.height  # aborted batches are not fitted

    # explicit CQAs and specs win over the campaign's
    cqa = model.responses[0]
    cr.cpp_impact_from_campaign(c, cqas=[cqa], specs={cqa: (None, 1e9)}, draws=10, tune=20, chains=1)
    assert seen["model"].responses == [cqa] and seen["specs"] == {cqa: (None, 1e9)}
    # every batch on request
    cr.cpp_impact_from_campaign(c, statuses=None, draws=10, tune=20, chains=1)
    assert seen["frame"].height == c.batches.height > completed.height


def test_design_space_summary_states_the_set_points_probability_and_how_it_was_chosen():
    from bioworkbench.criticality import design_space_summary
    from bioworkbench.models.design_space import SetPoint

    class Space:  # the attributes design_space_summary reads from a DesignSpace
        prob = 0.9
        factors_on_grid = ("temp", "ph")
        map = pl.DataFrame(
            {
                "temp": [35.0, 36.0, 37.0],
                "ph": [6.9, 7.0, 7.1],
                "prob": [0.5, 0.95, 0.92],
                "in_region": [False, True, True],
            }
        )

        def set_point(self):
            return SetPoint(
                {"temp": 36.0, "ph": 7.0}, method="robust", prob=0.95, margin=0.5, note="Farthest from the edge."
            )

    text = str(design_space_summary(Space()))
    assert "67% of the grid meets the requirement" in text
    assert "(P = 0.95). Farthest from the edge." in text
