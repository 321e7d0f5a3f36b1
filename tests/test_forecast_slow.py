"""Calibration of the batch forecast on held-out batches: demo campaigns and the real NISTCHO cultures.

Slow (real NUTS with the forecast's default sampler settings, ~20 fits); run with
``pytest -m slow tests/test_forecast_slow.py``. The forecasts and the comparison with what was
measured are those of ``benchmarks/bench_forecast.py`` (see its docstring for the design): held-out
batches forecast from day 5 and day 7, each 90 % interval compared with the measured value —
the last in-process titer, the highest VCD sample and the first culture day within 5 % of it.

Targets (the issue's): coverage ≥ 85 % for final titer, peak VCD and day of peak on the demo (at
least 40 held-out forecasts from each day: 7 seeds × 6), ≥ 80 % for peak VCD and day of peak on
NISTCHO (31 cultures, 3 folds), and mean interval widths that shrink from day 5 to day 7. With 84
forecasts per endpoint and calibrated 90 % intervals, the number covered is roughly Binomial(84,
0.9) (the two days of a batch are correlated, so a little wider): asking for ≥ 85 % fails a
calibrated forecast with probability ~5 %.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_data

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_forecast.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_forecast", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def calibration():
    shared_data("nistcho-vcd", "vicell_growth_fb2_fb4_combined.csv")
    bench = _bench()
    from bioworkbench.models.forecast import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_TUNE

    results, fits = bench.run(
        seeds=bench.DEMO_SEEDS,
        nistcho=True,
        days=bench.DAYS,
        draws=DEFAULT_DRAWS,
        tune=DEFAULT_TUNE,
        chains=DEFAULT_CHAINS,
    )
    bench.print_report(results, fits, bench.DAYS)
    return bench, results, fits


@pytest.mark.slow
def test_enough_held_out_forecasts(calibration):
    bench, results, _ = calibration
    n = results.filter(pl.col("quantity") == "peak_vcd").group_by("dataset", "day").len()
    for dataset, day, k in n.iter_rows():
        assert k >= bench.MIN_FORECASTS[dataset], f"{dataset} day {day}: {k} held-out forecasts"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "quantity"),
    [
        ("demo", "final_titer"),
        ("demo", "peak_vcd"),
        ("demo", "time_of_peak"),
        ("nistcho", "peak_vcd"),
        ("nistcho", "time_of_peak"),
    ],
)
def test_90_percent_intervals_cover_the_measured_values(calibration, dataset, quantity):
    bench, results, _ = calibration
    s = results.filter((pl.col("dataset") == dataset) & (pl.col("quantity") == quantity))
    target = bench.TARGETS[dataset][quantity]
    assert s["covered"].mean() >= target, (
        f"{dataset} {quantity}: {int(s['covered'].sum())} of {s.height} 90 % intervals cover the measured value"
    )


@pytest.mark.slow
def test_intervals_shrink_from_day_5_to_day_7(calibration):
    bench, results, _ = calibration
    widths = bench.coverage_table(results).pivot(on="day", index=["dataset", "quantity"], values="width")
    for dataset, quantity, w5, w7 in widths.select("dataset", "quantity", "5", "7").iter_rows():
        assert w7 < w5, f"{dataset} {quantity}: mean width {w5:.3g} from day 5, {w7:.3g} from day 7"


@pytest.mark.slow
def test_forecast_fits_converge(calibration):
    # the demo fits with the forecast's defaults pass every check (r̂ ≤ 1.01, no divergences); on
    # NISTCHO (31 cultures in 10 groups, a third of them cut at day 5) one fit of six had r̂ 1.017
    # in the benchmark run: no divergences are asked there, and r̂ ≤ 1.05
    _, _, fits = calibration
    bad = []
    for f in fits:
        for w, v in f.items():
            if w not in ("growth", "titer"):
                continue
            limit = 1.01 if f["label"].startswith("demo") else 1.05
            if v[0] > 0 or v[1] > limit:
                bad.append((f["label"], w, v))
    assert not bad, bad
