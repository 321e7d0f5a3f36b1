"""Benchmark: the classical DoE analysis (``bw.doe.analyze``) of 30 runs × 4 responses.

The issue's target: under 0.2 s for a 30-run design with four responses (issue 14). One simulated
design (a rotatable central composite design in four factors: 16 factorial + 8 axial + 6 centre runs
= 30 runs) with four responses of known full-quadratic truth is analysed with the full second-order
model (15 parameters per response): ANOVA with lack of fit against the 6 centre points, R², Q² from
PRESS, coefficients with VIF, residuals. Rows:

* ``analyze cold``: the first call in the process (imports statsmodels and pandas);
* ``analyze warm``: the median of ``--repeat`` further calls;
* ``reduce``: ``Analysis.reduce(alpha=0.05)`` of the warm result (backward elimination, one refit
  per removed term);
* ``evaluate``: ``design.evaluate("quadratic")`` (VIF, efficiencies, power, FDS with 5,000 points).

Usage::

    PYTHONPATH=. python benchmarks/bench_doe_analysis.py
    PYTHONPATH=. python benchmarks/bench_doe_analysis.py --repeat 50

The exit status is 0 whatever the target says (a missed target is a FAIL line).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
import warnings

import numpy as np
import polars as pl

import bioworkbench as bw
from bioworkbench.errors import BioWorkbenchWarning

TARGET_S = 0.2
FACTORS = {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (1.0, 3.0), "do": (20.0, 60.0)}
RESPONSES = ["titer", "aggregates", "charge_variants", "glycan_g0f"]


def simulated_design(seed: int = 1) -> bw.doe.Design:
    """A 30-run rotatable CCD in four factors with four simulated responses (quadratic truth + noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)  # axial points outside the ranges
        d = bw.doe.central_composite(FACTORS, center_points=(6, 0), random_seed=seed)
    assert d.n_runs == 30
    x = d.coded
    rng = np.random.default_rng(seed)
    truth = {
        "titer": 9 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + 0.3 * x[:, 0] * x[:, 2] - 0.6 * x[:, 0] ** 2,
        "aggregates": 3 + 0.4 * x[:, 1] + 0.2 * x[:, 3] - 0.3 * x[:, 1] ** 2,
        "charge_variants": 20 - 1.5 * x[:, 2] + 0.5 * x[:, 2] * x[:, 3],
        "glycan_g0f": 45 + 2.0 * x[:, 0] - 1.0 * x[:, 3] ** 2,
    }
    noise = {"titer": 0.2, "aggregates": 0.1, "charge_variants": 0.5, "glycan_g0f": 0.8}
    cols = [pl.Series(r, truth[r] + rng.normal(0, noise[r], d.n_runs)) for r in RESPONSES]
    return dataclasses.replace(d, frame=d.frame.with_columns(cols))


def main() -> None:
    """Time the steps and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="warm calls timed (median reported)")
    args = parser.parse_args()
    design = simulated_design()

    t0 = time.perf_counter()
    bw.doe.analyze(design, RESPONSES, terms="quadratic")
    cold = time.perf_counter() - t0
    warm_times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        analysis = bw.doe.analyze(design, RESPONSES, terms="quadratic")
        warm_times.append(time.perf_counter() - t0)
    warm = statistics.median(warm_times)
    t0 = time.perf_counter()
    reduced = analysis.reduce(alpha=0.05)
    reduce_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    design.evaluate("quadratic")
    evaluate_s = time.perf_counter() - t0

    print(f"bw.doe.analyze: 30 runs × {len(RESPONSES)} responses, full quadratic in 4 factors (15 parameters)")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}\n")
    print("| step | time (s) | note |\n|---|---:|---|")
    print(f"| analyze cold | {cold:.3f} | first call: imports statsmodels |")
    print(
        f"| analyze warm | {warm:.3f} | median of {args.repeat} (min {min(warm_times):.3f}, max {max(warm_times):.3f}) |"
    )
    removed = {r: 14 - len(t) for r, t in reduced.terms.items()}
    print(f"| reduce | {reduce_s:.3f} | terms removed: {removed} |")
    print(f"| evaluate | {evaluate_s:.3f} | VIF, efficiencies, power, FDS (5,000 points) |")
    print()
    print(analysis.statistics)
    verdict = "PASS" if warm < TARGET_S else "FAIL"
    print(f"\n{verdict}: analyze warm {warm:.3f} s (target < {TARGET_S} s)")


if __name__ == "__main__":
    main()
