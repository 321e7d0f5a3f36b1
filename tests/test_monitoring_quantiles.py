"""The monitoring limits take their quantiles from scipy.special (importing scipy.stats costs every batch
report 0.4 s): each one must equal the scipy.stats distribution it stands for, over the sizes the
charts meet, and a batch report must not import scipy.stats."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from scipy import stats

from bioworkbench.monitoring import limits
from bioworkbench.monitoring.envelope import envelope_summary
from bioworkbench.monitoring.screening import SCREEN_ALPHA, _screen_columns

PROBS = [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999]


@pytest.mark.parametrize("prob", PROBS)
@pytest.mark.parametrize("a", [1, 2, 3, 5])
def test_t2_limits_equal_the_beta_and_f_quantiles(prob, a):
    n = np.arange(a + 1, 60, dtype=float)
    training = limits.t2_limit_training(n, a, prob)
    want = np.where(n >= a + 2, (n - 1) ** 2 / n * stats.beta.ppf(prob, a / 2, (n - a - 1) / 2), np.nan)
    np.testing.assert_allclose(training, want, rtol=1e-12, equal_nan=True)
    new = limits.t2_limit_new(n, a, prob)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(n >= a + 1, a * (n * n - 1) / (n * (n - a)) * stats.f.ppf(prob, a, n - a), np.nan)
    np.testing.assert_allclose(new, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("prob", PROBS)
def test_spe_limits_equal_the_chi2_and_normal_quantiles(prob):
    rng = np.random.default_rng(3)
    spe = rng.chisquare(4, size=(25, 40)) * rng.uniform(0.1, 10, size=40)
    m, v = spe.mean(axis=0), spe.var(axis=0, ddof=1)
    np.testing.assert_allclose(
        limits.spe_limit_box(spe, prob), v / (2 * m) * stats.chi2.ppf(prob, 2 * m * m / v), rtol=1e-12
    )
    theta = (3.0, 2.0, 1.5)
    t1, t2, t3 = theta
    h0 = 1 - 2 * t1 * t3 / (3 * t2 * t2)
    z = stats.norm.ppf(prob)
    want = t1 * (z * np.sqrt(2 * t2 * h0 * h0) / t1 + 1 + t2 * h0 * (h0 - 1) / (t1 * t1)) ** (1 / h0)
    assert limits.spe_limit_jackson_mudholkar(theta, prob) == pytest.approx(want, rel=1e-12)


def test_envelope_p_value_is_the_binomial_upper_tail():
    rows = []
    for i, (n, k) in enumerate([(1, 0), (1, 1), (7, 0), (7, 3), (14, 14), (30, 2)]):
        rows += [{"batch_id": f"B{i}", "variable": "vcd", "outside": "above" if j < k else None} for j in range(n)]
    out = envelope_summary(
        pl.DataFrame(rows, schema={"batch_id": pl.String, "variable": pl.String, "outside": pl.String})
    )
    out = out.sort("batch_id")
    want = stats.binom.sf(out["n_outside"].to_numpy() - 1, out["n_points"].to_numpy(), 0.1)
    np.testing.assert_allclose(out["p_value"].to_numpy(), want, rtol=1e-12)
    assert out.filter(pl.col("n_outside") == 0)["p_value"].to_list() == [1.0, 1.0]


def test_screening_chance_level_is_the_bonferroni_t_quantile():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 6))
    x[3, 2] += 30.0  # one batch far from the others in one column
    screen = _screen_columns(x)
    c, n_active = 12.0, 6
    t = stats.t.ppf(1 - SCREEN_ALPHA / (2 * c * n_active), c - 2)
    want = max(np.sqrt(n_active), np.sqrt(1 + 1 / (c - 1)) * t)
    np.testing.assert_allclose(screen["cutoff"], want, rtol=1e-12)
    assert screen["reason"][2] == "one batch" and screen["batch"][2] == 3


def test_a_batch_report_does_not_import_scipy_stats(tmp_path):
    """What the batch report's first cell runs, in a fresh process: scipy.stats stays out."""
    from bioworkbench.simulate import simulate_campaign

    folder = tmp_path / "camp"
    simulate_campaign(n_batches=6, random_seed=2).write(folder)
    code = (
        "import sys, bioworkbench as bw\n"
        f"camp = bw.read_campaign({str(folder)!r})\n"
        "rev = bw.review.batch_review(camp, camp.batch_ids[0])\n"
        "rev.kinetics_summary(); rev.plot_envelopes(); rev.plot_kinetics()\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False"
