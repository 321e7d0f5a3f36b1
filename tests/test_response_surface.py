"""Bayesian response surfaces, design space and PAR: known truths, clear errors, save/load (fast tests).

Fits here use PyMC's NUTS (C code cached on disk) with few draws; the nutpie path and interval
coverage over many seeds are in ``test_response_surface_slow.py``. Design-space computations are also
checked exactly against closed forms with a point-mass posterior at the truth.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, ModelNotFittedError, SchemaError
from bioworkbench.models import Prior, ResponseSurface, load
from bioworkbench.terms import code, decode, model_matrix, parse_terms

F2 = {"temp": (33.0, 37.0), "ph": (6.8, 7.2)}
# coded-unit truths of the full quadratic in (temp, ph): intercept, temp, ph, temp:ph, temp^2, ph^2
TITER = np.array([10.0, 2.0, -1.0, 0.5, -3.0, -2.0])
AGG = np.array([5.0, -1.0, 1.0, 0.0, -1.0, -0.5])
SAMPLER = {"backend": "pymc", "cores": 1}
FAST = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 1}


def ccd(k: int, *, centre: int = 5) -> np.ndarray:
    """Rotatable central composite design in coded units (factorial, axial at ±(2^k)^¼, centre points)."""
    alpha = (2**k) ** 0.25
    cube = list(itertools.product([-1.0, 1.0], repeat=k))
    axial = [tuple(s * alpha if i == j else 0.0 for j in range(k)) for i in range(k) for s in (-1, 1)]
    return np.array(cube + axial + [(0.0,) * k] * centre)


def simulate(coded: np.ndarray, betas: list[np.ndarray], cov: np.ndarray, seed: int, ranges=F2) -> pl.DataFrame:
    """Responses of a full quadratic truth (coded units) plus correlated normal noise, natural-unit factors."""
    rng = np.random.default_rng(seed)
    names = list(ranges)
    M = model_matrix(coded, names, parse_terms("quadratic", names))
    noise = rng.multivariate_normal(np.zeros(len(betas)), np.atleast_2d(cov), size=len(coded))
    X = decode(coded, ranges)
    cols = {f: X[:, j] for j, f in enumerate(names)}
    for j, (name, b) in enumerate(zip(["titer", "agg", "hcp"], betas, strict=False)):
        cols[name] = M @ b + noise[:, j]
    return pl.DataFrame(cols)


def point_mass(
    model: ResponseSurface, frame: pl.DataFrame, betas: list[np.ndarray], cov, *, S: int = 4000, tau=None
) -> ResponseSurface:
    """Give ``model`` a posterior whose every draw is the truth (natural units): exact checks of the
    computations that follow the posterior."""
    import xarray as xr

    model.data = model._prepare(frame)
    ym, ys = np.asarray(model.data["y_mean"]), np.asarray(model.data["y_sd"])
    B = np.array(betas)
    k = B.shape[0]
    b0 = (B[:, 0] - ym) / ys
    Bs = B[:, 1:] / ys[:, None]
    L = np.linalg.cholesky(np.atleast_2d(cov) / np.outer(ys, ys))
    post = {
        "intercept": (("chain", "draw", "r"), np.broadcast_to(b0, (1, S, k)).copy()),
        "beta": (("chain", "draw", "r", "t"), np.broadcast_to(Bs, (1, S, *Bs.shape)).copy()),
    }
    if k == 1:
        post["sigma"] = (("chain", "draw", "r"), np.full((1, S, 1), L[0, 0]))
    else:
        packed = L[np.tril_indices(k)]
        post["resid_chol"] = (("chain", "draw", "p"), np.broadcast_to(packed, (1, S, packed.size)).copy())
    if tau is not None:
        post["sd_block"] = (("chain", "draw", "r"), np.broadcast_to(np.asarray(tau) / ys, (1, S, k)).copy())
    model.idata = xr.DataTree.from_dict({"posterior": xr.Dataset(post)})
    return model


@pytest.fixture(scope="module")
def single():
    """One response on a doubled CCD (26 runs); rows 3 and 17 lack the response."""
    df = simulate(np.vstack([ccd(2)] * 2), [TITER], np.array([[0.25]]), seed=7)
    df = df.with_columns(titer=pl.when(pl.int_range(pl.len()).is_in([3, 17])).then(None).otherwise("titer"))
    m = ResponseSurface(F2, "titer", sampler=SAMPLER)
    with pytest.warns(BioWorkbenchWarning, match=r"2 of 26 rows with a missing 'titer' left out.*row 3, 17"):
        m.fit(df, **FAST)
    return m, df


@pytest.fixture(scope="module")
def double():
    """Two correlated responses (residual correlation 0.7), one 'agg' value missing."""
    cov = np.array([[0.25, 0.7 * 0.5 * 0.4], [0.7 * 0.5 * 0.4, 0.16]])
    df = simulate(np.vstack([ccd(2)] * 2), [TITER, AGG], cov, seed=3)
    df = df.with_columns(agg=pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise("agg"))
    m = ResponseSurface(F2, ["titer", "agg"], sampler=SAMPLER).fit(df, **FAST)
    return m, df, cov


# -- configuration ------------------------------------------------------------------------------
def test_constructor_is_cheap_and_validates():
    import time

    t = time.perf_counter()
    m = ResponseSurface(
        {"temp": (33, 37), "ph": (6.8, 7.2), "feed": (1, 3)}, ["titer", "agg"], terms=["A", "C", "A:C", "A^2"]
    )
    assert time.perf_counter() - t < 0.05
    assert m.terms == ["temp", "feed", "temp:feed", "temp^2"]
    assert m.factors == {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (1.0, 3.0)}
    assert m.responses == ["titer", "agg"] and m.block is None and m.idata is None
    assert ResponseSurface(F2, "titer").responses == ["titer"]
    assert all(p.unit is not None and p.why for p in m.priors.values())
    with pytest.raises(ConfigError, match="'temp' has one level"):
        ResponseSurface({"temp": (35, 35)}, "titer")
    with pytest.raises(ConfigError, match="unknown model kind 'cubic'"):
        ResponseSurface(F2, "titer", terms="cubic")
    with pytest.raises(ConfigError, match="unknown factor 'C'"):
        ResponseSurface(F2, "titer", terms=["A", "C"])
    with pytest.raises(ConfigError, match="both a factor and a response"):
        ResponseSurface(F2, ["temp"])
    with pytest.raises(ConfigError, match="block must be the name of a column"):
        ResponseSurface(F2, "titer", block="temp")
    with pytest.raises(ConfigError, match="unknown prior"):
        ResponseSurface(F2, "titer", priors={"slope": Prior("Normal", {"sigma": 1})})
    with pytest.raises(ConfigError, match="'residual_corr' must be an LKJCorr"):
        ResponseSurface(F2, "titer", priors={"residual_corr": Prior("Normal", {"sigma": 1})})
    with pytest.raises(ModelNotFittedError, match=r"ResponseSurface has no posterior yet; call \.fit\(frame\)"):
        ResponseSurface(F2, "titer").effects()


# -- bad data: type and location ----------------------------------------------------------------
def _df(n: int = 13, seed: int = 1) -> pl.DataFrame:
    return simulate(ccd(2)[:n], [TITER], np.array([[0.25]]), seed=seed)


def test_missing_columns_are_listed():
    with pytest.raises(
        SchemaError,
        match=r'column "ph": factor column not found\. Expected columns: temp, ph, titer; found: temp, titer',
    ):
        ResponseSurface(F2, "titer").fit(_df().drop("ph"))
    with pytest.raises(SchemaError, match=r'column "day": block column not found'):
        ResponseSurface(F2, "titer", block="day").fit(_df())


def test_non_numeric_values_name_row_column_and_run():
    df = (
        _df()
        .with_columns(pl.col("temp").cast(pl.String))
        .with_columns(
            temp=pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("35,5")).otherwise("temp"),
            batch_id=pl.format("R{}", pl.int_range(pl.len())),
        )
    )
    with pytest.raises(
        SchemaError,
        match=r"column \"temp\" \(batch R3\): row 3: expected a number, found '35,5'\. Hint: a decimal comma",
    ) as e:
        ResponseSurface(F2, "titer").fit(df)
    assert len(e.value.issues) == 1
    df = _df().with_columns(ph=pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise("ph"))
    with pytest.raises(SchemaError, match=r'column "ph": row 2: missing value; a factor needs every value'):
        ResponseSurface(F2, "titer").fit(df)
    df = _df().with_columns(titer=pl.when(pl.int_range(pl.len()) == 4).then(float("inf")).otherwise("titer"))
    with pytest.raises(SchemaError, match=r'column "titer": row 4: value inf is not finite'):
        ResponseSurface(F2, "titer").fit(df)


def test_more_coefficients_than_runs_names_p_and_n_and_smaller_models():
    df = _df(n=5)
    with pytest.raises(
        SchemaError, match=r"p = 6 coefficients \(intercept \+ 5 terms\).*n = 5 runs.*terms='linear' \(p = 3\)"
    ):
        ResponseSurface(F2, "titer").fit(df)
    with pytest.raises(SchemaError, match=r"p = 6 .*n = 6 runs"):
        ResponseSurface(F2, "titer").fit(_df(n=6))


def test_factor_without_variation_and_block_with_one_level():
    df = _df().with_columns(ph=pl.lit(7.0))
    with pytest.raises(SchemaError, match=r'column "ph": factor has one value \(7\) in all 13 runs'):
        ResponseSurface(F2, "titer").fit(df)
    with pytest.raises(SchemaError, match=r'column "day": block has one level \(\'1\'\)'):
        ResponseSurface(F2, "titer", block="day").fit(_df().with_columns(day=pl.lit(1)))
    with pytest.raises(SchemaError, match=r'column "day": row 0: missing block'):
        ResponseSurface(F2, "titer", block="day").fit(_df().with_columns(day=pl.lit(None, pl.String)))


def test_aliased_quadratic_terms_on_a_two_level_design():
    coded = np.array(list(itertools.product([-1.0, 1.0], repeat=2)) * 3)
    df = simulate(coded, [TITER], np.array([[0.25]]), seed=2)
    with pytest.raises(
        SchemaError, match=r"term\(s\) temp\^2, ph\^2 of the model of 'titer' cannot be estimated.*two-level design"
    ):
        ResponseSurface(F2, "titer").fit(df)
    ResponseSurface(F2, "titer", terms="interactions").build(df)  # the interaction model is fine


def test_constant_or_absent_response():
    with pytest.raises(SchemaError, match=r'column "titer": response is constant \(3\)'):
        ResponseSurface(F2, "titer").fit(_df().with_columns(titer=pl.lit(3.0)))
    with pytest.raises(SchemaError, match=r"none of the 13 rows has a value of titer"):
        ResponseSurface(F2, "titer").fit(_df().with_columns(titer=pl.lit(None, pl.Float64)))


# -- the model ----------------------------------------------------------------------------------
def test_likelihood_marginalises_missing_responses_exactly():
    """The compiled log density equals priors + the MvNormal of each row's observed responses."""
    cov = np.array([[0.25, 0.14], [0.14, 0.16]])
    df = simulate(ccd(2), [TITER, AGG], cov, seed=4).with_columns(
        agg=pl.when(pl.int_range(pl.len()).is_in([1, 6])).then(None).otherwise("agg"),
        titer=pl.when(pl.int_range(pl.len()) == 9).then(None).otherwise("titer"),
    )
    m = ResponseSurface(F2, ["titer", "agg"])
    model = m.build(df)
    assert m.data["patterns"] == [[0, 1], [0], [1]]
    ip = model.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in ip.items()}
    outs = model.replace_rvs_by_values([model.potentials[0], model["intercept"], model["beta"], model["resid_chol"]])
    f = model.compile_fn(outs, inputs=model.value_vars, point_fn=False)
    ll, b0, B, packed = f(*[point[v.name] for v in model.value_vars])
    # the same density from scipy, row by row over the observed responses
    L = np.zeros((2, 2))
    L[np.tril_indices(2)] = packed
    S = L @ L.T
    arr = m._padded(m.data)
    mu = b0 + arr["X"] @ B.T
    want = 0.0
    for i, row in enumerate(m.data["y"]):
        obs = [j for j in range(2) if row[j] is not None]
        want += stats.multivariate_normal(mu[i, obs], S[np.ix_(obs, obs)]).logpdf(arr["Y"][i, obs])
    assert float(ll) == pytest.approx(want, rel=1e-9)


def _cells(m: ResponseSurface) -> list[tuple[int, int]]:
    """Observed (row, response) cells of the prepared data."""
    return [(i, j) for i, row in enumerate(m.data["y"]) for j, v in enumerate(row) if v is not None]


def _block_prior_cov(m: ResponseSurface, tau: np.ndarray) -> np.ndarray:
    """Prior covariance of the centred block effects over (block, response):
    ``Cov(c_bj, c_b'j') = δ_jj' τ_j² (δ_bb' − 1/nb)``."""
    nb, k = len(m.data["block_levels"]), len(tau)
    return np.kron(np.eye(nb) - 1 / nb, np.eye(k)) * np.tile(tau**2, nb)[None, :]


def _cell_design(m: ResponseSurface, Sigma: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    """Observed cells, the map P from (block, response) effects to cells, and the residual covariance E."""
    cells = _cells(m)
    k = Sigma.shape[0]
    nb = len(m.data["block_levels"])
    P = np.zeros((len(cells), nb * k))
    for a, (i, j) in enumerate(cells):
        P[a, m.data["g"][i] * k + j] = 1.0
    E = np.array([[Sigma[j, j2] if i == i2 else 0.0 for i2, j2 in cells] for i, j in cells])
    return cells, P, E


def _blocked_frame(cov: np.ndarray, seed: int) -> pl.DataFrame:
    return pl.concat(
        [
            simulate(ccd(2, centre=1), [TITER, AGG], cov, seed=seed + b).with_columns(day=pl.lit(f"d{b}"))
            for b in range(3)
        ]
    ).with_columns(
        agg=pl.when(pl.int_range(pl.len()).is_in([1, 12])).then(None).otherwise("agg"),
        titer=pl.when(pl.int_range(pl.len()) == 20).then(None).otherwise("titer"),
    )


def test_block_effects_are_integrated_out_exactly():
    """With blocks, the compiled log density equals priors + the dense MvNormal of every observed cell with
    the centred block effects in the covariance (and missing responses left out)."""
    cov = np.array([[0.25, 0.14], [0.14, 0.16]])
    m = ResponseSurface(F2, ["titer", "agg"], block="day")
    model = m.build(_blocked_frame(cov, 20))
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
    names = ["intercept", "beta", "resid_chol", "sd_block"]
    outs = model.replace_rvs_by_values([model.potentials[0], *[model[n] for n in names]])
    ll, b0, B, packed, tau = model.compile_fn(outs, inputs=model.value_vars, point_fn=False)(
        *[point[v.name] for v in model.value_vars]
    )
    L = np.zeros((2, 2))
    L[np.tril_indices(2)] = packed
    arr = m._padded(m.data)
    mu = b0 + arr["X"] @ B.T
    cells, P, E = _cell_design(m, L @ L.T)
    C = E + P @ _block_prior_cov(m, tau) @ P.T
    want = stats.multivariate_normal([mu[i, j] for i, j in cells], C).logpdf([arr["Y"][i, j] for i, j in cells])
    assert float(ll) == pytest.approx(want, rel=1e-9)


def test_block_effect_draws_follow_their_exact_conditional_posterior():
    cov = np.array([[0.25, 0.1], [0.1, 0.16]])
    tau = np.array([0.8, 0.3])
    m = point_mass(
        ResponseSurface(F2, ["titer", "agg"], block="day"), _blocked_frame(cov, 30), [TITER, AGG], cov, S=20000, tau=tau
    )
    u = m.block_effects() * np.asarray(m.data["y_sd"])  # natural units, (sample, block, response)
    assert np.allclose(u.sum(axis=1), 0.0, atol=1e-9)
    X = model_matrix(code(np.asarray(m.data["x"]), F2), list(F2), m.terms)
    mu = X @ np.array([TITER, AGG]).T
    cells, P, E = _cell_design(m, cov)
    K = _block_prior_cov(m, tau)
    r = np.array([m.data["y"][i][j] - mu[i, j] for i, j in cells])
    gain = K @ P.T @ np.linalg.inv(P @ K @ P.T + E)
    want_mean, want_cov = gain @ r, K - gain @ P @ K
    got = u.reshape(u.shape[0], -1)
    se = np.sqrt(np.diag(want_cov) / got.shape[0])
    assert np.all(np.abs(got.mean(axis=0) - want_mean) < 4 * se + 1e-9), (got.mean(axis=0), want_mean)
    np.testing.assert_allclose(np.cov(got.T), want_cov, atol=0.02 * want_cov.max())


def test_prior_predictive_works_before_fit():
    m = ResponseSurface(F2, ["titer", "agg"])
    prior = m.sample_prior_predictive(simulate(ccd(2), [TITER, AGG], np.eye(2) * 0.2, seed=1), draws=50, random_seed=2)
    y = prior["prior_predictive"]["y"]
    assert y.shape == (1, 50, 13, 2) and np.all(np.isfinite(y.values))


def test_single_response_recovers_the_truth_and_counts_dropped_rows(single):
    m, _ = single
    e = m.effects(prob=0.9)
    assert e.columns == ["response", "term", "mean", "sd", "lower", "upper", "prob", "p_positive", "p_sign"]
    assert e["term"].to_list() == ["temp", "ph", "temp:ph", "temp^2", "ph^2"]
    z = (e["mean"].to_numpy() - TITER[1:]) / e["sd"].to_numpy()
    assert np.all(np.abs(z) < 4), z
    assert (e["lower"] < e["mean"]).all() and (e["mean"] < e["upper"]).all()
    big = e.filter(pl.col("term") == "temp^2")
    assert big["p_positive"][0] < 0.01 and big["p_sign"][0] > 0.99
    s = m.summary()
    sigma = s.filter(pl.col("parameter") == "sigma")
    assert sigma["lower"][0] < 0.5 * 1.6 and sigma["upper"][0] > 0.5 / 1.6
    assert {"r_hat", "ess_bulk"} <= set(s.columns)
    d = m.diagnostics()
    assert d["rows_dropped"] == 2 and d["dropped_rows"] == [3, 17] and d["n_runs"] == 24
    assert "2 of 26 rows left out" in d["notes"][0]


def test_predictions_and_draws(single):
    m, _ = single
    settings = pl.DataFrame({"ph": [7.0, 7.1], "temp": [35.0, 36.0], "other": ["x", "y"]})
    d = m.draws(settings)
    assert d.shape == (600, 2, 1)
    truth = (
        model_matrix(code(np.array([[35.0, 7.0], [36.0, 7.1]]), F2), list(F2), parse_terms("quadratic", list(F2)))
        @ TITER
    )
    p = m.predict(settings, prob=0.999)  # one data set: a wide interval (coverage: the slow tests)
    assert p.columns == ["temp", "ph", "response", "mean", "lower", "upper", "prob"]
    assert np.all((p["lower"].to_numpy() < truth) & (truth < p["upper"].to_numpy()))
    pp = m.predict({"temp": [35.0, 36.0], "ph": [7.0, 7.1]}, kind="predictive", random_seed=3)
    assert ((pp["upper"] - pp["lower"]) > (p["upper"] - p["lower"])).all()
    assert_frame_equal(pp, m.predict({"temp": [35.0, 36.0], "ph": [7.0, 7.1]}, kind="predictive", random_seed=3))
    with pytest.raises(SchemaError, match=r'column "ph": factor column not found; settings need one column per factor'):
        m.predict({"temp": [35.0]})
    with pytest.raises(ConfigError, match="kind must be one of 'mean', 'predictive'; got 'median'"):
        m.predict(settings, kind="median")
    with pytest.raises(ConfigError, match="no block effect"):
        m.draws(settings, block="day1")
    with pytest.raises(ConfigError, match=r"settings: the columns have different lengths \(\{'temp': 2, 'ph': 1\}\)"):
        m.predict({"temp": [35.0, 36.0], "ph": [7.0]})
    assert_frame_equal(m.predict(settings.to_pandas()), m.predict(settings))  # pandas frames are converted


def test_two_responses_recover_effects_and_residual_correlation(double):
    m, _, _ = double
    e = m.effects()
    truth = np.concatenate([TITER[1:], AGG[1:]])
    z = (e["mean"].to_numpy() - truth) / e["sd"].to_numpy()
    assert np.all(np.abs(z) < 4), z
    corr = m.summary().filter((pl.col("parameter") == "correlation") & (pl.col("response") == "titer"))
    assert corr["term"][0] == "agg"
    assert corr["lower"][0] < 0.7 < corr["upper"][0] and corr["mean"][0] > 0.3
    assert m.diagnostics()["runs_per_response"] == {"titer": 26, "agg": 25}
    assert m.draws({"temp": 35.0, "ph": 7.0}, kind="predictive", random_seed=1).shape == (600, 1, 2)


# -- optimum ------------------------------------------------------------------------------------
def _stationary(b: np.ndarray) -> np.ndarray:
    B = np.array([[b[4], b[3] / 2], [b[3] / 2, b[5]]])
    return -0.5 * np.linalg.solve(B, b[1:3])


def test_optimum_of_a_known_maximum_and_saddle():
    df = simulate(ccd(2), [TITER], np.array([[0.25]]), seed=1)
    m = point_mass(ResponseSurface(F2, "titer"), df, [TITER], [[0.25]], S=50)
    o = m.optimum()
    assert o["kind"].unique().to_list() == ["maximum"] and o["p_maximum"][0] == 1.0
    xs = decode(_stationary(TITER)[None, :], F2)[0]
    np.testing.assert_allclose(o["mean"].to_numpy(), xs, rtol=1e-10)
    assert o["factor"].to_list() == ["temp", "ph"] and o["inside_region"][0] == 1.0
    saddle = TITER * np.array([1, 1, 1, 1, 1, -1])
    m = point_mass(ResponseSurface(F2, "titer"), df, [saddle], [[0.25]], S=50)
    assert m.optimum()["kind"][0] == "saddle"
    with pytest.raises(ConfigError, match=r"optimum needs a second-order model.*terms='quadratic'"):
        point_mass(ResponseSurface(F2, "titer", terms="linear"), df, [TITER[:3]], [[0.25]], S=5).optimum()
    with pytest.raises(ConfigError, match=r"factor\(s\) ph enter the model only linearly; add 'ph\^2'"):
        point_mass(
            ResponseSurface(F2, "titer", terms=["A", "B", "A^2"]), df, [TITER[[0, 1, 2, 4]]], [[0.25]], S=5
        ).optimum()


def test_optimum_from_a_fit(double):
    m, _, _ = double
    o = m.optimum(response="titer", prob=0.9)
    assert o["kind"][0] == "maximum" and o["p_maximum"][0] > 0.95
    xs = decode(_stationary(TITER)[None, :], F2)[0]
    # one data set: the truth within 4 posterior SDs (coverage over many data sets: the slow tests)
    sd = (o["upper"] - o["lower"]).to_numpy() / (2 * stats.norm.ppf(0.95))
    assert np.all(np.abs(o["median"].to_numpy() - xs) < 4 * sd), (o, xs)
    value = TITER[0] + 0.5 * _stationary(TITER) @ TITER[1:3]
    assert abs(o["value_mean"][0] - value) < 4 * (o["value_upper"][0] - o["value_lower"][0]) / 3.29
    with pytest.raises(ConfigError, match="response 'hcp' was not modelled"):
        m.optimum(response="hcp")


# -- design space --------------------------------------------------------------------------------
def test_single_response_map_is_the_normal_closed_form():
    df = simulate(ccd(2), [TITER], np.array([[0.25]]), seed=1)
    m = point_mass(ResponseSurface(F2, "titer"), df, [TITER], [[0.25]], S=200)
    ds = m.design_space({"titer": (8.0, 11.0)}, grid=21, prob=0.8)
    X = np.column_stack([ds.map["temp"], ds.map["ph"]])
    mu = model_matrix(code(X, F2), list(F2), m.terms) @ TITER
    exact = stats.norm.cdf((11.0 - mu) / 0.5) - stats.norm.cdf((8.0 - mu) / 0.5)
    np.testing.assert_allclose(ds.map["prob"].to_numpy(), exact, atol=1e-12)
    assert ds.map.columns == ["temp", "ph", "prob", "mc_se", "in_region"]
    assert ds.map.height == 441 and ds.factors_on_grid == ["temp", "ph"] and ds.fixed == {}
    assert ds.region_fraction == pytest.approx(np.mean(exact >= 0.8))
    assert ds.specs == {"titer": (8.0, 11.0)} and ds.prob == 0.8


def test_two_correlated_responses_match_the_bivariate_normal():
    cov = np.array([[0.25, -0.12], [-0.12, 0.16]])
    df = simulate(ccd(2), [TITER, AGG], cov, seed=1)
    m = point_mass(ResponseSurface(F2, ["titer", "agg"]), df, [TITER, AGG], cov, S=20000)
    ds = m.design_space(
        {"titer": (8.5, None), "agg": (4.0, 5.5)},
        grid={"temp": [34.0, 35.0, 36.0], "ph": [6.9, 7.0, 7.1]},
        random_seed=5,
    )
    X = np.column_stack([ds.map["temp"], ds.map["ph"]])
    Mx = model_matrix(code(X, F2), list(F2), m.terms)
    exact = [
        stats.multivariate_normal(mean=[Mx[i] @ TITER, Mx[i] @ AGG], cov=cov).cdf([np.inf, 5.5], lower_limit=[8.5, 4.0])
        for i in range(len(Mx))
    ]
    p, se = ds.map["prob"].to_numpy(), ds.map["mc_se"].to_numpy()
    assert np.all(np.abs(p - exact) < 4 * se + 2e-4), (p, exact, se)
    # independence would give a different answer: the correlation is used
    indep = [
        stats.norm.sf((8.5 - Mx[i] @ TITER) / 0.5)
        * (stats.norm.cdf((5.5 - Mx[i] @ AGG) / 0.4) - stats.norm.cdf((4.0 - Mx[i] @ AGG) / 0.4))
        for i in range(len(Mx))
    ]
    assert np.max(np.abs(np.array(indep) - exact)) > 0.02


def test_map_includes_parameter_uncertainty_like_brute_force_predictive_draws(double):
    m, _, _ = double
    specs = {"titer": (9.0, None), "agg": (None, 5.6)}
    pts = pl.DataFrame({"temp": [34.0, 35.0, 35.8, 36.5], "ph": [6.9, 7.0, 6.95, 7.15]})
    ds = m.design_space(specs, grid=5, random_seed=2)
    got = ds.probability(pts)
    y = np.concatenate([m.draws(pts, kind="predictive", random_seed=s) for s in range(40)])
    ok = (y[:, :, 0] >= 9.0) & (y[:, :, 1] <= 5.6)
    brute = ok.mean(axis=0)
    se = np.sqrt(brute * (1 - brute) / ok.shape[0] + got["mc_se"].to_numpy() ** 2)
    assert np.all(np.abs(got["prob"].to_numpy() - brute) < 4 * se + 1e-3), (got["prob"], brute)
    # the same grid and seed give the same map; the PAR line uses the same draws
    assert_frame_equal(ds.map, m.design_space(specs, grid=5, random_seed=2).map)


def test_slices_fixed_factors_and_set_point():
    F3 = {**F2, "feed": (1.0, 3.0)}
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
    ds = m.design_space({"titer": (9.0, None)}, grid=11, fixed={"feed": [1.5, 2.5]})
    assert ds.factors_on_grid == ["temp", "ph"] and ds.fixed == {"feed": [1.5, 2.5]}
    assert ds.map.height == 11 * 11 * 2 and sorted(ds.map["feed"].unique().to_list()) == [1.5, 2.5]
    ds = m.design_space({"titer": (9.0, None)}, grid={"temp": 5, "feed": 3})
    assert ds.fixed == {"ph": 7.0} and ds.map.height == 15 and ds.map["ph"].unique().to_list() == [7.0]
    sp = ds.set_point(method="best")  # the most probable grid point (the default is the robust one)
    assert (
        set(sp) == set(F3)
        and ds.map.filter(pl.col("temp") == sp["temp"], pl.col("feed") == sp["feed"])["prob"][0] == ds.map["prob"].max()
    )
    assert ds.set_point({"temp": 34.0}) == {"temp": 34.0, "ph": 7.0, "feed": 2.0}
    assert "DesignSpace(P(all of titer in spec) ≥ 0.9" in repr(ds)


def test_proven_acceptable_range_of_a_known_surface():
    """y = 10 − 3 A² − 2 B² (coded), σ = 0.5, spec y ≥ 8, P ≥ 0.9 at the centre:
    |x_A| ≤ √((2 − 0.5 z₀.₉)/3), |x_B| ≤ √((2 − 0.5 z₀.₉)/2)."""
    b = np.array([10.0, 0, 0, 0, -3.0, -2.0])
    df = simulate(ccd(2), [b], np.array([[0.25]]), seed=1)
    m = point_mass(ResponseSurface(F2, "titer"), df, [b], [[0.25]], S=10)
    ds = m.design_space({"titer": (8.0, None)}, grid=21, prob=0.9)
    assert ds.set_point() == {"temp": 35.0, "ph": 7.0}
    par = ds.proven_acceptable_range()
    assert par.columns == [
        "factor", "set_point", "lower", "upper", "prob", "p_set_point", "lower_limit", "upper_limit",
        "range_low", "range_high", "resolution",
    ]  # fmt: skip
    half = np.sqrt((2 - 0.5 * stats.norm.ppf(0.9)) / np.array([3.0, 2.0]))
    exact_lo = decode(-half[None, :], F2)[0]
    exact_hi = decode(half[None, :], F2)[0]
    res = par["resolution"].to_numpy()
    lo, hi = par["lower"].to_numpy(), par["upper"].to_numpy()
    assert np.all((lo >= exact_lo - 1e-9) & (lo - exact_lo < res)), (lo, exact_lo)
    assert np.all((hi <= exact_hi + 1e-9) & (exact_hi - hi < res)), (hi, exact_hi)
    assert par["lower_limit"].to_list() == ["probability"] * 2
    wide = ds.proven_acceptable_range(prob=0.6)  # |x_A| ≤ √((2 − 0.5 z₀.₆)/3) < 1: still the probability
    assert wide["upper_limit"].to_list() == ["probability"] * 2 and (wide["upper"] > par["upper"]).all()
    loose = m.design_space({"titer": (5.0, None)}, grid=5).proven_acceptable_range()
    assert loose["lower"].to_list() == [33.0, 6.8] and loose["upper_limit"].to_list() == ["range", "range"]
    off = ds.proven_acceptable_range({"temp": 36.9, "ph": 7.0})
    assert off["lower"].null_count() == 2 and off["p_set_point"][0] < 0.9


def test_design_space_errors(double):
    m, _, _ = double
    with pytest.raises(
        ConfigError, match=r"spec on 'hcp', which the model does not include\. Modelled responses: titer, agg"
    ):
        m.design_space({"hcp": (None, 100)})
    with pytest.raises(ConfigError, match=r"spec of 'agg': lower 5 must be below upper 3"):
        m.design_space({"agg": (5, 3)})
    with pytest.raises(ConfigError, match="neither a lower nor an upper"):
        m.design_space({"agg": (None, None)})
    with pytest.raises(ConfigError, match=r"grid names unknown factor\(s\) 'feed'.*Factors: ph, temp"):
        m.design_space({"agg": (None, 6)}, grid={"feed": 10})
    with pytest.raises(ConfigError, match=r"both on the grid and fixed"):
        m.design_space({"agg": (None, 6)}, grid={"temp": 10}, fixed={"temp": 35})
    with pytest.raises(ConfigError, match=r"grid of 'temp': at least 2 points"):
        m.design_space({"agg": (None, 6)}, grid=1)
    with pytest.raises(ConfigError, match="prob must be a number between 0 and 1"):
        m.design_space({"agg": (None, 6)}, prob=1.5)
    with pytest.raises(ModelNotFittedError):
        ResponseSurface(F2, "titer").design_space({"titer": (1, 2)})


def test_specs_from_a_campaign_frame(double):
    m, _, _ = double
    specs = pl.DataFrame(
        {
            "name": ["agg", "agg", "glucose", "titer"],
            "lower": [None, None, 1.0, 8.0],
            "upper": [5.6, 5.0, 9.0, None],
            "kind": ["spec", "alarm", "spec", "spec"],
        }
    )
    with pytest.warns(BioWorkbenchWarning, match=r"spec rows for glucose skipped \(not modelled"):
        ds = m.design_space(specs, grid=5, random_seed=1)
    assert ds.specs == {"titer": (8.0, None), "agg": (None, 5.6)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="no spec for any modelled response"):
            m.design_space(specs.filter(pl.col("name") == "glucose"))


# -- blocks -------------------------------------------------------------------------------------
def test_block_effect_is_estimated_and_predictions_are_for_a_new_block():
    shift = {"d1": -1.5, "d2": 0.0, "d3": 1.5}
    frames = [
        simulate(ccd(2), [TITER], np.array([[0.16]]), seed=10 + i).with_columns(
            day=pl.lit(day), titer=pl.col("titer") + s
        )
        for i, (day, s) in enumerate(shift.items())
    ]
    m = ResponseSurface(F2, "titer", block="day", sampler=SAMPLER).fit(pl.concat(frames), **FAST)
    at = {"temp": 35.0, "ph": 7.0}
    p1 = m.predict(at, block="d1", kind="predictive", random_seed=1)
    p3 = m.predict(at, block="d3", random_seed=1)
    new = m.predict(at, kind="predictive", random_seed=1)
    assert p3["mean"][0] - m.predict(at, block="d1")["mean"][0] == pytest.approx(3.0, abs=0.6)
    assert (new["upper"] - new["lower"])[0] > (p1["upper"] - p1["lower"])[0]
    s = m.summary()
    assert s.filter(pl.col("parameter") == "sd_block")["mean"][0] > 0.5
    assert (
        m.design_space({"titer": (8.0, None)}, grid=5, block="d3").map["prob"].mean()
        > m.design_space({"titer": (8.0, None)}, grid=5, block="d1").map["prob"].mean()
    )
    with pytest.raises(ConfigError, match=r"block 'd9' was not in the data\..*Blocks: d1, d2, d3"):
        m.predict(at, block="d9")


# -- persistence, imports -----------------------------------------------------------------------
def test_save_load_round_trip_reproduces_predictions_and_maps(double, tmp_path):
    m, _, _ = double
    back = load(m.save(tmp_path / "rs.nc"))
    assert isinstance(back, ResponseSurface)
    assert back.factors == m.factors and back.responses == m.responses and back.terms == m.terms
    settings = {"temp": [34.0, 36.0], "ph": [7.0, 7.1]}
    assert_frame_equal(
        back.predict(settings, kind="predictive", random_seed=4), m.predict(settings, kind="predictive", random_seed=4)
    )
    specs = {"titer": (9.0, None), "agg": (None, 5.6)}
    a, b = m.design_space(specs, grid=7, random_seed=3), back.design_space(specs, grid=7, random_seed=3)
    assert_frame_equal(a.map, b.map)
    assert_frame_equal(a.proven_acceptable_range(), b.proven_acceptable_range())
    assert_frame_equal(back.effects(), m.effects())


def test_import_stays_light():
    code = (
        "import sys, bioworkbench.models.response, bioworkbench.models.design_space; "
        "print(','.join(m for m in ('pymc', 'pytensor', 'arviz', 'scipy', 'hvplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
