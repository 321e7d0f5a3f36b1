"""The vectorised r̂ and ESS agree with ArviZ's scalar-by-scalar ones (bioworkbench.models.convergence)."""

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bioworkbench.models import convergence


def _ar1(rng, chains, draws, shape, phi):
    e = rng.normal(size=(chains, draws, *shape))
    x = np.empty_like(e)
    x[:, 0] = e[:, 0]
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def _posterior(chains, draws, seed=0):
    rng = np.random.default_rng(seed)
    theta = _ar1(rng, chains, draws, (3, 4), 0.9)
    theta[:, :, 0, 0] += np.arange(chains)[:, None] * 0.8  # chains that disagree
    theta[:, :, 1, 1] = np.round(theta[:, :, 1, 1])  # ties
    theta[:, :, 2, 2] = 1.5  # a constant
    return xr.Dataset(
        {
            "theta": (("chain", "draw", "b", "p"), theta, {}),
            "sigma": (("chain", "draw"), np.exp(_ar1(rng, chains, draws, (), 0.3))),
            "slow": (("chain", "draw", "k"), _ar1(rng, chains, draws, (2,), 0.995)),
            "anti": (("chain", "draw"), _ar1(rng, chains, draws, (), -0.7)),
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "b": ["B1", "B2", "B3"]},
    )


@pytest.mark.parametrize(("chains", "draws"), [(4, 1000), (2, 501), (1, 300), (3, 7), (2, 4)])
def test_rhat_and_ess_match_arviz(chains, draws):
    post = _posterior(chains, draws)
    with np.errstate(all="ignore"):
        ours = {
            "rhat": convergence.rhat(post),
            "bulk": convergence.ess(post, "bulk"),
            "tail": convergence.ess(post, "tail"),
        }
        ref = {"rhat": az.rhat(post), "bulk": az.ess(post, method="bulk"), "tail": az.ess(post, method="tail")}
    for what in ours:
        for var in post.data_vars:
            a, b = ours[what][var].values, np.asarray(ref[what][var].values, dtype=float)
            assert a.shape == b.shape, (what, var)
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=f"{what} {var}")
    assert list(ours["rhat"]["theta"].coords["b"].values) == ["B1", "B2", "B3"]


def test_the_diagnostics_see_what_they_should():
    post = _posterior(4, 1000)
    r, e = convergence.rhat(post), convergence.ess(post, "bulk")
    assert r["theta"].values[0, 0] > 1.05  # chains shifted apart
    assert r["sigma"].item() < 1.01 and e["sigma"].item() > 1000
    assert e["slow"].values.max() < 200  # strongly autocorrelated
    assert e["anti"].item() > 4000  # antithetic chains: ESS above the number of draws
    assert e["theta"].values[2, 2] == 4000  # a constant counts as independent draws, as in ArviZ
    nan = post.copy()
    nan["sigma"][0, 5] = np.nan
    assert np.isnan(convergence.rhat(nan)["sigma"].item())


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="'bulk' or 'tail'"):
        convergence.ess(_posterior(2, 50), "mean")


def test_the_array_functions_keep_the_shape():
    x = np.asarray(_posterior(4, 400)["theta"].values)
    assert convergence.array_rhat(x).shape == (3, 4) and convergence.array_ess(x, "tail").shape == (3, 4)
    assert np.ndim(convergence.array_ess(x[:, :, 0, 0])) == 0
    with pytest.raises(ValueError, match="'bulk' or 'tail'"):
        convergence.array_ess(x, "sd")


def test_ranks_average_ties_as_scipy_does():
    from scipy.stats import rankdata

    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(500, 6)), 1)
    x[:, 5] = 2.0
    np.testing.assert_array_equal(convergence._ranks(x), rankdata(x, method="average", axis=0))


def test_chains_stuck_at_different_values_get_a_huge_rhat_not_nan():
    # every draw is equally far from the median, so the folded r̂ is NaN; r̂ is the bulk one, as in ArviZ
    stuck = xr.Dataset({"x": (("chain", "draw"), np.vstack([np.full(1000, 0.3), np.full(1000, 1.7)]))})
    with np.errstate(all="ignore"):
        ours, ref = convergence.rhat(stuck)["x"].item(), az.rhat(stuck)["x"].item()
    assert ours > 1e6 and ours == pytest.approx(ref)


def test_large_variables_are_done_in_chunks_with_the_same_values(monkeypatch):
    x = np.asarray(_posterior(4, 300)["theta"].values)
    whole = (convergence.array_rhat(x), convergence.array_ess(x), convergence.array_ess(x, "tail"))
    monkeypatch.setattr(convergence, "_CHUNK", 4 * 300 * 5)  # 5 scalars per chunk: 3 chunks of 12
    chunked = (convergence.array_rhat(x), convergence.array_ess(x), convergence.array_ess(x, "tail"))
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_array_equal(a, b)
