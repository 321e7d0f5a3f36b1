"""Known-truth recovery of the Bayesian accelerated-stability model (real NUTS sampling: slow)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw

pytestmark = pytest.mark.slow
SEEDS = (3, 4, 5)


@pytest.mark.parametrize(
    "kinetics",
    [
        pytest.param(
            "zero_order",
            marks=pytest.mark.xfail(
                strict=True,
                reason="known: 25 of 33 zero-order intervals cover on seeds 3-5 (first order: calibrated); "
                "to investigate (strict: a fix makes this XPASS and fail, so the mark is removed)",
            ),
        ),
        "first_order",
    ],
)
def test_population_and_lot_parameters_lie_in_their_90_percent_intervals(kinetics):
    """Over three simulated studies, the 90 % intervals of Ea and of every lot's k_ref and y0 (33
    intervals) cover the truth at about the nominal rate; every fit has r̂ < 1.01 and no divergence."""
    hits: list[bool] = []
    for seed in SEEDS:
        study, truth = bw.simulate_stability(
            kinetics=kinetics, conditions=(5.0, 25.0, 30.0, 40.0), random_seed=seed, return_truth=True
        )
        m = bw.models.StabilityModel(kinetics=kinetics, reference_temperature=truth["reference_temperature"])
        m.fit(study, attribute="potency", draws=1000, chains=2, random_seed=seed)
        d = m.diagnostics()
        assert d["divergences"] == 0 and d["max_rhat"] < 1.01, d["issues"]
        s = m.summary(prob=0.9)
        ea = s.filter((pl.col("level") == "campaign") & (pl.col("parameter") == "activation_energy")).row(0, named=True)
        hits.append(ea["lower"] <= truth["activation_energy"] <= ea["upper"])
        for par in ("k_ref", "y0"):
            est = s.filter((pl.col("level") == "batch") & (pl.col("parameter") == par)).join(
                truth["lots"].select("batch_id", pl.col(par).alias("truth")), on="batch_id"
            )
            hits += ((est["lower"] <= est["truth"]) & (est["truth"] <= est["upper"])).to_list()
    # 33 intervals at 90 %: P(fewer than 26 cover) < 3 % when the intervals are calibrated
    assert len(hits) == 33 and sum(hits) >= 26, f"{sum(hits)} of {len(hits)} 90 % intervals cover the truth"


def test_prediction_at_storage_matches_the_true_curve():
    study, truth = bw.simulate_stability(
        kinetics="first_order", conditions=(5.0, 25.0, 40.0), random_seed=7, return_truth=True
    )
    m = bw.models.StabilityModel(kinetics="first_order", reference_temperature=5.0).fit(
        study, attribute="potency", draws=1000, chains=2, random_seed=7
    )
    times = np.array([0.0, 12.0, 24.0, 36.0])
    pred = m.predict(condition=5.0, times=times, prob=0.9, kind="mean")
    true = truth["y0"] * np.exp(-truth["k_ref"] * times)  # population curve of the simulator at 5 °C
    assert np.all((pred["lower"].to_numpy() <= true) & (true <= pred["upper"].to_numpy()))
