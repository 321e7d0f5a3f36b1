"""Slow tests of ResponseSurface: real NUTS (the default nutpie path) on simulated designs with known truth.

Deselected by default; run with ``pytest -m slow tests/test_response_surface_slow.py``. A compiled model
is cached per structure in-process, so the repeated fits below (one per seed) compile once.

* Coverage: over 20 simulated CCDs the 90 % intervals of the effects and of the stationary point
  cover the truth about 90 % of the time (binomial bounds), with r̂ < 1.01 and no divergences.
* Design space: with many runs the probability map matches the truth (normal closed form for one
  response; the bivariate normal for two correlated responses) within the posterior uncertainty of
  the probability itself.
* Two correlated responses: effects and residual correlation recovered; a refit of the same shape
  reuses the compiled model.
* Blocks: the block-to-block SD and the block shifts are recovered.
"""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from scipy import stats
from test_response_surface import AGG, F2, TITER, _stationary, ccd, simulate

from bioworkbench.models import ResponseSurface
from bioworkbench.terms import code, decode, model_matrix

pytestmark = pytest.mark.slow

FIT = {"draws": 1000, "tune": 1000, "chains": 4}
SEEDS = range(20)
_T0 = time.perf_counter()


def _report(label: str, m: ResponseSurface) -> dict:
    d = m.diagnostics()
    s = m.sampling
    print(
        f"\n[{label}] {d['n_runs']} runs: divergences {d['divergences']}, max r̂ {d['max_rhat']:.4f}, "
        f"min bulk ESS {d['min_ess_bulk']:.0f}; compile {s['compile_s']:.1f} s (cached {s['compiled_from_cache']}), "
        f"sampling {s['sample_s']:.2f} s; {time.perf_counter() - _T0:.0f} s into the module"
    )
    return d


def test_intervals_cover_the_truth_over_many_designs():
    covered, n, sp_covered, sp_n = 0, 0, 0, 0
    xs = decode(_stationary(TITER)[None, :], F2)[0]
    for seed in SEEDS:
        df = simulate(np.vstack([ccd(2)] * 2), [TITER], np.array([[0.25]]), seed=100 + seed)
        m = ResponseSurface(F2, "titer").fit(df, random_seed=seed, **FIT)
        d = _report(f"coverage seed {seed}", m)
        assert d["divergences"] == 0 and d["max_rhat"] < 1.01
        assert m.sampling["backend"] == "nutpie" and (seed == 0 or m.sampling["compiled_from_cache"])
        e = m.effects(prob=0.9)
        inside = (e["lower"].to_numpy() <= TITER[1:]) & (TITER[1:] <= e["upper"].to_numpy())
        covered += int(inside.sum())
        n += inside.size
        o = m.optimum(prob=0.9)
        sp_covered += int(((o["lower"].to_numpy() <= xs) & (xs <= o["upper"].to_numpy())).sum())
        sp_n += len(xs)
        assert o["kind"][0] == "maximum"
    print(f"\neffects: {covered}/{n} 90 % intervals cover the truth; stationary point: {sp_covered}/{sp_n}")
    # binomial(100, 0.9): 99.9 % of outcomes lie in 80..97
    assert 80 <= covered <= 97
    assert sp_covered >= 31  # binomial(40, 0.9): P(< 31) < 0.2 %


def test_single_response_map_matches_the_truth_with_many_runs():
    grid3 = np.array([(a, b) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)])
    df = simulate(np.vstack([grid3] * 30), [TITER], np.array([[0.25]]), seed=5)
    m = ResponseSurface(F2, "titer").fit(df, random_seed=1, **FIT)
    _report("map, 270 runs", m)
    ds = m.design_space({"titer": (8.0, 11.0)}, grid=15, prob=0.8)
    X = np.column_stack([ds.map["temp"], ds.map["ph"]])
    mu = model_matrix(code(X, F2), list(F2), m.terms) @ TITER
    truth = stats.norm.cdf((11.0 - mu) / 0.5) - stats.norm.cdf((8.0 - mu) / 0.5)
    # posterior SD of P(x | θ) = mc_se · √S: the truth lies within a few of them of the posterior mean
    S = FIT["chains"] * FIT["draws"]
    sd = ds.map["mc_se"].to_numpy() * np.sqrt(S)
    gap = np.abs(ds.map["prob"].to_numpy() - truth)
    print(f"\nmax |P - truth| = {gap.max():.3f}, max posterior SD of P = {sd.max():.3f}")
    assert np.all(gap < 4 * sd + 0.02), gap
    assert gap.max() < 0.1
    # the region agrees with the truth's except within the uncertainty band
    disagree = ds.map["in_region"].to_numpy() != (truth >= 0.8)
    assert np.all(np.abs(truth[disagree] - 0.8) < 4 * sd[disagree] + 0.02)


def _bvn_box(mean: np.ndarray, cov: np.ndarray, lower: list, upper: list) -> float:
    return float(stats.multivariate_normal(mean, cov).cdf(upper, lower_limit=lower))


def test_two_correlated_responses_with_nutpie():
    """900 runs: P(both in spec) matches the bivariate normal of the truth within the posterior SD of
    P(x | θ) (from the exact bivariate probability at 200 posterior draws) plus Monte Carlo error."""
    cov = np.array([[0.25, 0.7 * 0.5 * 0.4], [0.7 * 0.5 * 0.4, 0.16]])
    grid3 = np.array([(a, b) for a in (-1.0, 0.0, 1.0) for b in (-1.0, 0.0, 1.0)])
    df = simulate(np.vstack([grid3] * 100), [TITER, AGG], cov, seed=8)
    m = ResponseSurface(F2, ["titer", "agg"]).fit(df, random_seed=2, **FIT)
    d = _report("two responses, 900 runs", m)
    assert d["divergences"] == 0 and d["max_rhat"] < 1.01
    corr = m.summary().filter((pl.col("parameter") == "correlation") & (pl.col("response") == "titer"))
    assert corr["lower"][0] < 0.7 < corr["upper"][0]
    lo, hi = [8.5, 4.0], [np.inf, 5.5]
    ds = m.design_space({"titer": (8.5, None), "agg": (4.0, 5.5)}, grid=7, random_seed=3)
    X = np.column_stack([ds.map["temp"], ds.map["ph"]])
    Mx = model_matrix(code(X, F2), list(F2), m.terms)
    truth = np.array([_bvn_box(np.array([Mx[i] @ TITER, Mx[i] @ AGG]), cov, lo, hi) for i in range(len(Mx))])
    # posterior SD of P(x | θ): the exact box probability at 200 posterior draws
    mean = m.draws(ds.map, kind="mean")  # (sample, point, response), natural units
    ys = np.asarray(m.data["y_sd"])
    Sig = m._post()["Sigma"] * np.outer(ys, ys)
    pick = np.linspace(0, mean.shape[0] - 1, 200).astype(int)
    p_theta = np.array([[_bvn_box(mean[s, i], Sig[s], lo, hi) for i in range(len(Mx))] for s in pick])
    sd_param = p_theta.std(axis=0)
    gap = np.abs(ds.map["prob"].to_numpy() - truth)
    print(f"\nmax |P - truth| = {gap.max():.3f}; max posterior SD of P(x|θ) = {sd_param.max():.3f}")
    assert np.all(gap < 4 * (sd_param + ds.map["mc_se"].to_numpy()) + 0.005), (gap, sd_param)
    # the map is the posterior mean of P(x | θ): the subsample's mean agrees within its own error
    assert np.all(np.abs(p_theta.mean(axis=0) - ds.map["prob"].to_numpy()) < 4 * sd_param / np.sqrt(200) + 0.02)
    # a refit of the same shape (new data, same design size) reuses the compiled model
    again = ResponseSurface(F2, ["titer", "agg"]).fit(
        simulate(np.vstack([grid3] * 100), [TITER, AGG], cov, seed=9), random_seed=3, **FIT
    )
    assert again.sampling["compiled_from_cache"] and again.sampling["compile_s"] < 1.0


def test_block_shifts_are_recovered():
    shift = {"d1": -1.0, "d2": 0.0, "d3": 0.5, "d4": 1.5}
    frames = [
        simulate(ccd(2), [TITER], np.array([[0.16]]), seed=40 + i).with_columns(
            day=pl.lit(day), titer=pl.col("titer") + s
        )
        for i, (day, s) in enumerate(shift.items())
    ]
    m = ResponseSurface(F2, "titer", block="day").fit(pl.concat(frames), random_seed=4, **FIT)
    d = _report("blocks", m)
    assert d["max_rhat"] < 1.01 and d["divergences"] <= 5
    at = {"temp": 35.0, "ph": 7.0}
    base = m.predict(at)["mean"][0]
    for day, s in shift.items():
        p = m.predict(at, block=day, prob=0.99)
        assert p["lower"][0] < TITER[0] + s < p["upper"][0], (day, p)
    assert abs(base - (TITER[0] + np.mean(list(shift.values())))) < 1.5
