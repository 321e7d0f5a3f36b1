"""Optimisation under constraints, desirability, the robust set point and the optimum's verdict (issue 14,
point 5), on known quadratics with a point-mass posterior at the truth (exact, no sampling)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import optimize as sopt
from scipy import stats
from test_response_surface import AGG, F2, TITER, ccd, point_mass, simulate

from bioworkbench.errors import ConfigError
from bioworkbench.models import ResponseSurface
from bioworkbench.models.optimize import desirability
from bioworkbench.terms import code, decode, model_matrix, parse_terms

COV = np.diag([0.25, 0.04])  # residual SDs 0.5 (titer) and 0.2 (agg), independent
F3 = {**F2, "feed": (1.0, 3.0)}


def _mu(b: np.ndarray, xc: np.ndarray, names=("temp", "ph")) -> float:
    names = list(names)
    return float((model_matrix(np.atleast_2d(xc), names, parse_terms("quadratic", names)) @ b)[0])


@pytest.fixture(scope="module")
def two():
    df = simulate(ccd(2), [TITER, AGG], COV, seed=1)
    return point_mass(ResponseSurface(F2, ["titer", "agg"]), df, [TITER, AGG], COV, S=400)


def test_constrained_optimum_of_a_known_quadratic(two):
    # titer's unconstrained maximum has agg ≈ 4.60; require agg ≤ 4.5 with P ≥ 0.9: agg's mean ≤ 4.5 − 0.2 z₀.₉
    limit = 4.5
    bound = limit - 0.2 * stats.norm.ppf(0.9)
    exact = sopt.minimize(
        lambda x: -_mu(TITER, x),
        np.zeros(2),
        method="SLSQP",
        bounds=[(-1, 1)] * 2,
        constraints=[{"type": "ineq", "fun": lambda x: bound - _mu(AGG, x)}],
    ).x
    o = two.optimize({"titer": "max"}, constraints={"agg": (None, limit)}, prob=0.9)
    got = code(np.array([[o.settings["temp"], o.settings["ph"]]]), F2)[0]
    np.testing.assert_allclose(got, exact, atol=5e-3)
    assert o.feasible and o.p_constraints == pytest.approx(0.9, abs=5e-3) and o.on_boundary == []
    row = o.predictions.filter(pl.col("response") == "titer").row(0, named=True)
    assert row["mean"] == pytest.approx(_mu(TITER, got), abs=1e-9) and row["objective"] == "max"
    agg = o.predictions.filter(pl.col("response") == "agg").row(0, named=True)
    assert agg["limit_upper"] == limit and agg["limit_lower"] is None
    assert agg["new_lower"] < agg["mean"] < agg["new_upper"]  # a new run's interval (residual SD 0.2)
    # without the constraint: the stationary point (a maximum inside the region)
    free = two.optimize({"titer": "max"})
    B = np.array([[TITER[4], TITER[3] / 2], [TITER[3] / 2, TITER[5]]])
    xs = -0.5 * np.linalg.solve(B, TITER[1:3])
    np.testing.assert_allclose(code(np.array([list(free.settings.values())]), F2)[0], xs, atol=2e-3)
    assert free.p_constraints == 1.0 and "Best settings for the maximum mean titer" in free.describe()


def test_held_factors_and_regions(two):
    o = two.optimize({"titer": "max"}, fixed={"ph": 6.9}, region={"temp": (34.0, 35.0)})
    assert o.settings["ph"] == 6.9 and o.held == {"ph": 6.9}
    # titer rises with temp up to coded ≈ 0.31 (35.6 °C): pushed against the narrowed region's end
    assert o.settings["temp"] == pytest.approx(35.0, abs=1e-3) and o.on_boundary == ["temp"]
    assert "at the end of the studied range" in o.describe()
    with pytest.raises(ConfigError, match=r"region of 'temp': \(30, 35\) must be an interval within"):
        two.optimize({"titer": "max"}, region={"temp": (30.0, 35.0)})
    with pytest.raises(ConfigError, match=r"objective names 'titr'.*titer"):
        two.optimize({"titr": "max"})
    with pytest.raises(ConfigError, match=r"goal must be 'max', 'min' or a target value; got 'maximise'"):
        two.optimize({"titer": "maximise"})


def test_infeasible_constraints_return_the_most_probable_point_and_say_so(two):
    o = two.optimize({"titer": "max"}, constraints={"agg": (None, 1.0)}, prob=0.9)
    assert not o.feasible and o.p_constraints < 0.9
    assert "below the required 0.9" in o.describe()


def test_desirability_functions_and_several_objectives(two):
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(desirability(y, goal="max", low=1.0, high=3.0), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(desirability(y, goal="min", low=1.0, high=3.0), [1, 1, 0.5, 0, 0])
    np.testing.assert_allclose(desirability(y, goal="max", low=1.0, high=3.0, weight=2), [0, 0, 0.25, 1, 1])
    np.testing.assert_allclose(desirability(y, goal="target", low=0.0, high=4.0, target=1.0), [0, 1, 2 / 3, 1 / 3, 0])
    with pytest.raises(ConfigError, match="low < target < high"):
        desirability(y, goal="target", low=0.0, high=4.0)
    # max titer and min agg together, with explicit limits: the exact optimum of D = √(d_titer d_agg) on a fine grid
    goals = {"titer": {"goal": "max", "low": 8.0, "high": 10.5}, "agg": {"goal": "min", "low": 3.0, "high": 5.0}}
    both = two.optimize(goals)
    assert 0 < both.objective_value <= 1 and "expected overall desirability" in both.objective
    g = np.linspace(-1, 1, 401)
    xc = np.array([(a, b) for a in g for b in g])
    M = model_matrix(xc, ["temp", "ph"], parse_terms("quadratic", ["temp", "ph"]))
    D = np.sqrt(
        desirability(M @ TITER, goal="max", low=8.0, high=10.5) * desirability(M @ AGG, goal="min", low=3.0, high=5.0)
    )
    got = code(np.array([list(both.settings.values())]), F2)[0]
    assert both.objective_value == pytest.approx(D.max(), abs=1e-4)
    np.testing.assert_allclose(got, xc[np.argmax(D)], atol=0.02)
    # the compromise lies between the two single optima
    t = [
        two.optimize({"agg": "min"}).settings["temp"],
        both.settings["temp"],
        two.optimize({"titer": "max"}).settings["temp"],
    ]
    assert t[0] > t[1] > t[2] or t[0] < t[1] < t[2] or len(set(np.round(t, 3))) < 3, t


def test_optimum_says_a_saddle_or_a_point_outside_is_not_an_optimum():
    df = simulate(ccd(2), [TITER], np.array([[0.25]]), seed=1)
    m = point_mass(ResponseSurface(F2, "titer"), df, [TITER], [[0.25]], S=50)
    o = m.optimum()
    assert o["is_optimum"].all() and o["verdict"][0].startswith("a maximum (P = 1.00; eigenvalues")
    ev = np.linalg.eigvalsh(np.array([[TITER[4], TITER[3] / 2], [TITER[3] / 2, TITER[5]]]))
    np.testing.assert_allclose(o["eigenvalues"][0].to_list(), ev, rtol=1e-10)
    saddle = TITER * np.array([1, 1, 1, 1, 1, -1])
    s = point_mass(ResponseSurface(F2, "titer"), df, [saddle], [[0.25]], S=50)
    so = s.optimum()
    assert not so["is_optimum"].any() and "a saddle" in so["verdict"][0] and "not an optimum" in so["verdict"][0]
    # the best point of a saddle surface within the region is on its boundary, and optimize says so
    best = s.optimize({"titer": "max"})
    assert best.on_boundary == ["ph"] and "end of the studied range" in best.describe()
    # a maximum outside the studied region is not an optimum either
    far = np.array([10.0, 8.0, 0.0, 0.0, -1.0, -1.0])  # stationary point at temp coded +4
    fo = point_mass(ResponseSurface(F2, "titer"), df, [far], [[0.25]], S=50).optimum()
    assert fo["kind"][0] == "maximum" and fo["inside_region"][0] == 0.0 and not fo["is_optimum"][0]
    assert "outside the studied region" in fo["verdict"][0]


def _linear(slope: float, sd: float) -> ResponseSurface:
    """titer = 10 + slope·temp (coded), residual SD ``sd``."""
    b = np.array([10.0, slope, 0.0, 0.0, 0.0, 0.0])
    df = simulate(ccd(2), [b], np.array([[sd**2]]), seed=1)
    return point_mass(ResponseSurface(F2, "titer"), df, [b], [[sd**2]], S=20)


def test_robust_set_point_is_inside_and_best_is_on_the_edge():
    # design space: temp coded ≥ (−1 + 0.5 z₀.₉) / 2 ≈ −0.18; P rises towards temp's upper end
    m = _linear(2.0, 0.5)
    ds = m.design_space({"titer": (9.0, None)}, grid=21, prob=0.9)
    best = ds.set_point(method="best")
    assert best["temp"] == 37.0 and best.method == "best"
    sp = ds.set_point()
    xc = code(np.array([[sp["temp"], sp["ph"]]]), F2)[0]
    # the centre of the largest ball in [−0.18, 1] × [−1, 1]: temp coded ≈ 0.41 (grid step 0.1), ph at the centre
    assert xc[0] == pytest.approx(0.4) and xc[1] == 0.0, xc
    assert sp.method == "robust" and sp.on_boundary == [] and sp.prob >= 0.9 and sp.margin == pytest.approx(0.6)
    assert "Robust set point" in sp.note
    par = ds.proven_acceptable_range()  # around the robust set point
    assert par["set_point"].to_list() == [sp["temp"], sp["ph"]]


def test_robust_set_point_on_the_edge_only_when_the_whole_region_is_there():
    # a thin strip: only temp coded = +1 reaches P ≥ 0.9 on the grid (needs temp ≥ ~0.96)
    m = _linear(2.0, 0.1)
    ds = m.design_space({"titer": (11.8, None)}, grid=11, prob=0.9)
    assert set(ds.map.filter("in_region")["temp"].to_list()) == {37.0}
    sp = ds.set_point()
    assert sp["temp"] == 37.0 and sp.on_boundary == ["temp"] and "whole design space lies on the edge" in sp.note
    # an empty design space: the most probable point, and the note says it is not supported
    empty = m.design_space({"titer": (20.0, None)}, grid=5, prob=0.9).set_point()
    assert empty.method == "best" and "design space is empty" in empty.note


def test_design_space_maps_every_factor_and_states_the_grid():
    coded = ccd(3)
    names = list(F3)
    b = np.zeros(10)
    b[[0, 1, 2, 3, 7, 8, 9]] = [10.0, 2.0, -1.0, 1.0, -3.0, -2.0, -1.0]
    df = pl.DataFrame(
        {
            **{f: decode(coded, F3)[:, j] for j, f in enumerate(names)},
            "titer": model_matrix(coded, names, parse_terms("quadratic", names)) @ b,
        }
    )
    m = point_mass(ResponseSurface(F3, "titer"), df, [b], [[0.25]], S=20)
    ds = m.design_space({"titer": (9.0, None)}, grid=11)
    assert ds.factors_on_grid == ["temp", "ph", "feed"] and ds.fixed == {} and ds.map.height == 11**3
    assert ds.notes == ["grid of 11 (temp) × 11 (ph) × 11 (feed) points over the studied ranges"]
    big = m.design_space({"titer": (9.0, None)}, grid=60)  # 60³ > 100,000 points: 46 per factor
    assert big.map.height == 46**3 and "46 (temp)" in big.notes[0]
    held = m.design_space({"titer": (9.0, None)}, grid=5, fixed={"feed": 2.5})
    assert held.notes[-1] == "held: feed = 2.5" and held.set_point()["feed"] == 2.5


def test_classical_and_bayesian_effects_side_by_side(two):
    from bioworkbench.doe import analyze
    from bioworkbench.models import compare_effects

    df = simulate(ccd(2), [TITER, AGG], COV, seed=1)
    analysis = analyze(df, ["titer", "agg"], terms="quadratic", factors=F2)
    out = compare_effects(two, analysis, prob=0.9)
    assert out.columns == [
        "response", "term", "ls_estimate", "ls_lower", "ls_upper", "p_value",
        "bayes_mean", "bayes_lower", "bayes_upper", "p_sign", "agree",
    ]  # fmt: skip
    assert out.height == 10 and out["ls_estimate"].null_count() == 0
    # the point-mass posterior sits at the truth; least squares on the noisy runs lies around it
    truth = np.concatenate([TITER[1:], AGG[1:]])
    np.testing.assert_allclose(out["bayes_mean"].to_numpy(), truth, atol=1e-9)
    ls = analysis.coefficients.filter(pl.col("term") != "intercept")
    assert (
        out["ls_estimate"].to_list()
        == ls.join(out.select("response", "term"), on=["response", "term"])["estimate"].to_list()
    )
    inside = (out["ls_lower"] <= out["bayes_mean"]) & (out["bayes_mean"] <= out["ls_upper"])
    assert inside.sum() >= 8  # 90 % confidence intervals around the truth
    titer_temp = out.filter(pl.col("response") == "titer", pl.col("term") == "temp").row(0, named=True)
    assert titer_temp["agree"] and titer_temp["p_value"] < 0.01
    with pytest.raises(ConfigError, match="the analysis has no response 'agg'"):
        compare_effects(two, analyze(df, "titer", terms="quadratic", factors=F2))
