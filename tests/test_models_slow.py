"""Slow tests of the Bayesian models: real NUTS (nutpie) on data with known truth and on real data.

Deselected by default; run with ``pytest -m slow tests/test_models_slow.py``. Each fit is done once
per module (fixtures) and shared by the tests that read it. The calibration of forecasts is tested
in tests/test_forecast_slow.py.

What "truth" means here (see :func:`bioworkbench.simulate.simulate_campaign`):

* ``peak_vcd`` of the truth frame is the maximum of the noise-free hourly VCD state up to harvest;
  :meth:`GrowthModel.summary` gives the maximum of the fitted curve; the two are the same quantity.
* ``qp``: :class:`TiterModel`'s ``qp`` is the *apparent* pre-shift specific productivity, the slope
  of the titer concentration on the IVCD of the viable cell concentration (the titer-IVCD plot).
  The truth frame's ``qp_pg_per_cell_day`` is something else: the simulator's kinetic constant at
  36.5 °C, which its cells reach only with amino acids in excess (``dP/dt = qp (1 + 0.6 θ)
  (0.4 + 0.6 N/(1 + N)) Xv``, N the hidden amino-acid pool), and the feeds dilute the titer. Like
  for like, :func:`_simulated_qp` computes the apparent pre-shift qp of the simulated reactor from
  its noise-free hourly states: the least-squares slope of the titer concentration on the IVCD
  (hourly trapezoid of the viable cell concentration) from the first titer sample (day 3) to the
  shift. For seed 3 the cells realise 92–97 % of the kinetic constant before the shift (the
  amino-acid factor; ``qp_realized``: Xv-weighted mean of the per-cell rate), the dilution takes the
  apparent qp to 90–96 %; the model's posterior means are 0.98–1.05 × the apparent qp and its 90 %
  intervals cover it for 11 of 11 batches (the kinetic constant: 5 of 11). Those hourly states are
  not public: the simulator's private ``_integrate`` is wrapped to see them (a new truth column
  ``qp_apparent_pre_shift`` in ``simulate.py`` would replace that).
"""

from __future__ import annotations

import time
import warnings
from unittest import mock

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.models import GrowthModel, TiterModel

RECOVERY_SEED = 3
RECOVERY_BATCHES = 12
FIT = {"draws": 1000, "tune": 1000, "chains": 2}
PROB = 0.9
_T0 = time.perf_counter()


def _report(label: str, model) -> dict:
    d = model.diagnostics()
    s = model.sampling
    print(
        f"\n[{label}] {len(model.data['batch_ids'])} batches: divergences {d['divergences']}, max r̂ {d['max_rhat']:.4f}, "
        f"min bulk ESS {d['min_ess_bulk']:.0f}, min tail ESS {d['min_ess_tail']:.0f}; compile {s['compile_s']:.1f} s "
        f"(cached {s['compiled_from_cache']}), sampling {s['sample_s']:.1f} s; {time.perf_counter() - _T0:.0f} s into the module"
    )
    return d


def _completed(truth: pl.DataFrame) -> list[str]:
    return truth.filter(~pl.col("aborted"))["batch_id"].to_list()


# -------------------------------------------------------------------------------------------------
# known-truth recovery (12 batches, 11 fitted: the aborted one is left out)
# -------------------------------------------------------------------------------------------------
def _simulated_qp(n_batches: int, seed: int) -> tuple:
    """The campaign, its truth frame and, per batch, the like-for-like qp truths (see the module
    docstring): ``qp_apparent`` (titer-IVCD slope of the noise-free states, day 3 to the shift) and
    ``qp_realized`` (Xv-weighted mean per-cell rate before the shift), both in pg/cell/d."""
    import bioworkbench.simulate as sim

    seen = {}
    integrate = sim._integrate

    def capture(p, sched, n_steps):
        seen["run"], seen["p"] = integrate(p, sched, n_steps), p
        return seen["run"]

    with mock.patch.object(sim, "_integrate", capture):
        campaign, truth = bw.simulate_campaign(n_batches, random_seed=seed, online_interval_min=60.0, return_truth=True)
    hourly, p = seen["run"].hourly, seen["p"]
    hours = np.arange(hourly.shape[0])[:, None]
    xv, titer, aa = hourly[:, sim._XV], hourly[:, sim._TITER], hourly[:, sim._AA]
    rate = p["qp"] * (sim._K.qp_aa_free + (1 - sim._K.qp_aa_free) * aa / (sim._K.k_aa + aa))
    ivcd = np.vstack([np.zeros((1, xv.shape[1])), np.cumsum((xv[1:] + xv[:-1]) / 2 / 24, axis=0)])
    pre = hours < p["shift_d"][None, :] * 24
    window = pre & (hours >= sim._K.first_titer_day * 24)
    apparent = [np.polyfit(ivcd[window[:, b], b], titer[window[:, b], b], 1)[0] for b in range(xv.shape[1])]
    realized = (rate * xv * pre).sum(axis=0) / (xv * pre).sum(axis=0)
    qp = pl.DataFrame({"batch_id": truth["batch_id"], "qp_apparent": apparent, "qp_realized": realized})
    return campaign, truth.join(qp, on="batch_id")


@pytest.fixture(scope="module")
def recovery():
    campaign, truth = _simulated_qp(RECOVERY_BATCHES, RECOVERY_SEED)
    ids = _completed(truth)
    growth = GrowthModel().fit(campaign, batch_ids=ids, random_seed=1, **FIT)
    # the titer model with its default sampler (4 chains, low-rank mass matrix): with FIT's 2 chains
    # the r̂ of its batch SDs is too noisy to test (1.004-1.012 between runs at ~400 bulk ESS)
    titer = TiterModel().fit(campaign, batch_ids=ids, random_seed=2)
    return campaign, truth.filter(pl.col("batch_id").is_in(ids)), growth, titer


def _coverage(summary: pl.DataFrame, parameter: str, truth: pl.DataFrame, column: str) -> pl.DataFrame:
    return (
        summary.filter((pl.col("parameter") == parameter) & (pl.col("level") == "batch"))
        .join(truth.select("batch_id", true=column), on="batch_id")
        .with_columns(covered=(pl.col("lower") <= pl.col("true")) & (pl.col("true") <= pl.col("upper")))
        .select("batch_id", "true", "mean", "lower", "upper", "covered")
    )


# With 11 batches and calibrated 90 % intervals, the number of batches whose interval covers the
# truth is ~ Binomial(11, 0.9) (the batches share population parameters, so they are not quite
# independent). Asking for ≥ 70 % (≥ 8 of 11) fails a calibrated model with probability
# P(X ≤ 7) = 1.9 %; a model whose intervals are half as wide as they should be (true coverage
# ~ 59 %) still passes with probability 27 %.
MIN_COVERAGE = 0.7


def _print_all(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200):
        print(frame)


def _assert_converged(d: dict) -> None:
    assert d["divergences"] == 0, d["issues"]
    assert d["max_rhat"] < 1.01, d["issues"]


@pytest.mark.slow
def test_growth_converges_on_small_campaign(recovery):
    _assert_converged(_report("growth, recovery", recovery[2]))


@pytest.mark.slow
def test_growth_recovers_true_peak_vcd(recovery):
    _, truth, growth, _ = recovery
    cov = _coverage(growth.summary(PROB), "peak_vcd", truth, "peak_vcd")
    _print_all(cov)
    assert cov["covered"].mean() >= MIN_COVERAGE, (
        f"peak VCD: {cov['covered'].sum()} of {cov.height} 90 % intervals cover the truth"
    )


@pytest.mark.slow
def test_titer_converges_on_small_campaign(recovery):
    _assert_converged(_report("titer, recovery", recovery[3]))


def _qp(recovery) -> pl.DataFrame:
    _, truth, _, titer = recovery
    cov = _coverage(titer.summary(PROB), "qp", truth, "qp_apparent")
    return cov.join(truth.select("batch_id", "qp_realized", "qp_pg_per_cell_day"), on="batch_id").with_columns(
        ratio=pl.col("mean") / pl.col("true"),
        ratio_realized=pl.col("mean") / pl.col("qp_realized"),
        ratio_kinetic=pl.col("mean") / pl.col("qp_pg_per_cell_day"),
    )


@pytest.mark.slow
def test_titer_recovers_true_qp(recovery):
    # like for like: the model's apparent qp against the simulated reactor's apparent qp (module
    # docstring); the realised and kinetic qp are printed for the record
    cov = _qp(recovery)
    _print_all(cov)
    print(
        "posterior mean qp / apparent qp: median "
        f"{cov['ratio'].median():.3f} (range {cov['ratio'].min():.3f}–{cov['ratio'].max():.3f}); "
        f"/ realised qp: {cov['ratio_realized'].median():.3f}; / kinetic constant: {cov['ratio_kinetic'].median():.3f}"
    )
    assert cov["covered"].mean() >= MIN_COVERAGE, (
        f"qp: {cov['covered'].sum()} of {cov.height} 90 % intervals cover the simulated apparent pre-shift qp; "
        f"posterior mean / truth has median {cov['ratio'].median():.3f}"
    )


@pytest.mark.slow
def test_titer_qp_orders_batches_like_truth(recovery):
    # the batch-to-batch differences of the kinetic constant come through in the apparent qp
    cov = _qp(recovery)
    rho = cov.select(pl.corr("mean", "qp_pg_per_cell_day", method="spearman")).item()
    print(f"Spearman correlation of posterior mean qp with the simulator's kinetic qp: {rho:.2f}")
    assert rho >= 0.7


# -------------------------------------------------------------------------------------------------
# default sampler settings on the demo campaign and on real data
# -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    campaign, truth = bw.simulate_campaign(random_seed=0, return_truth=True)
    return campaign, _completed(truth)


@pytest.mark.slow
def test_growth_has_no_divergences_on_demo_campaign(demo):
    campaign, ids = demo
    _assert_converged(
        _report("growth, demo seed 0, default sampler", GrowthModel().fit(campaign, batch_ids=ids, random_seed=0))
    )


@pytest.mark.slow
def test_titer_has_no_divergences_on_demo_campaign(demo):
    campaign, ids = demo
    _assert_converged(
        _report("titer, demo seed 0, default sampler", TiterModel().fit(campaign, batch_ids=ids, random_seed=0))
    )


@pytest.mark.slow
def test_growth_converges_on_nistcho_with_default_settings():
    campaign = bw.datasets.nistcho()  # shipped with the package: the test never skips
    # Defaults only. The three cultures with fewer than 4 counts are left out and named; the
    # cultures are grouped by their categorical CPPs (7 feeding strategies × 2 experiments: 10
    # groups). Without grouping, the strategies that crash or drop (C, G) and those still growing
    # at day 11 share one population: nu falls to ~1.7 and the chains wander along the
    # capacity/decline ridge (r̂ ~1.2). The collapsed samples (G on day 10, C-R5/R6) are left out
    # with a warning that names them.
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        model = GrowthModel().fit(campaign, random_seed=0)
    messages = [str(w.message) for w in rec if issubclass(w.category, bw.BioWorkbenchWarning)]
    assert any("6 VCD sample(s) of collapsed cultures left out" in m and "FB4-G-R1" in m for m in messages)
    assert any("3 batch(es) left out: FB2-A-R1 (2 VCD points (needs 4))" in m for m in messages)
    assert not any("did not converge" in m for m in messages), messages
    assert len(model.data["excluded"]) == 6 and len(model.data["batch_ids"]) == 31
    assert model.data["grouping"]["levels"] == 10
    d = _report("growth, NISTCHO, default settings", model)
    assert any("grouped by cpp_" in n for n in d["notes"])
    _assert_converged(d)
    assert d["min_ess_bulk"] >= 400, d["issues"]
