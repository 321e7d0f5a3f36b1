"""Issue 14's blocked D-optimal example, sampled with the default settings (slow: real NUTS, ~1-2 min).

16 runs in 8 pairs of bioreactors that share one pH (hard to change), a quadratic model of two
correlated CQAs with a random block effect: the fit must show no divergences and r̂ ≤ 1.01 with
default sampler settings (before the QR coordinates of the coefficients: ~100 divergences).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.models import ResponseSurface

pytestmark = pytest.mark.slow

F3 = {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (2.0, 4.0)}


def blocked_example(seed: int = 1) -> tuple[bw.doe.Design, pl.DataFrame]:
    """The design and simulated CQAs: block SD 0.5, residual SDs 0.3 (titer) and 0.2 (aggregates)."""
    d = bw.doe.d_optimal(F3, n_runs=16, terms="quadratic", shared=["ph"], block_size=2, random_seed=3)
    rng = np.random.default_rng(seed)
    t, p, f = d.coded.T
    blk = d.frame["block"].to_numpy()
    shift = rng.normal(0, 0.5, blk.max() + 1)[blk]
    titer = 5 + 0.8 * t - 0.4 * p + 0.6 * f - 0.7 * t**2 - 0.5 * p**2 - 0.3 * f**2 + 0.2 * t * f
    agg = 3 + 0.4 * t + 0.3 * p + 0.5 * f + 0.2 * t**2
    return d, d.frame.with_columns(
        titer=pl.Series(titer + shift + rng.normal(0, 0.3, 16)), aggregates=pl.Series(agg + rng.normal(0, 0.2, 16))
    )


def test_blocked_d_optimal_design_fits_without_divergences_with_default_settings():
    _, df = blocked_example()
    m = ResponseSurface(F3, ["titer", "aggregates"], terms="quadratic", block="block").fit(df, random_seed=1)
    d = m.diagnostics()
    print(f"\ndivergences {d['divergences']}, max r̂ {d['max_rhat']:.4f}, min bulk ESS {d['min_ess_bulk']:.0f}")
    assert m.sampling["backend"] == "nutpie"
    assert d["divergences"] == 0 and d["max_rhat"] <= 1.01 and d["min_ess_bulk"] > 400
    e = m.effects(prob=0.99).filter(pl.col("response") == "titer")
    assert (e.filter(pl.col("term") == "temp")["lower"] > 0).all()
