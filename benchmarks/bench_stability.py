"""Benchmark: an ICH Q1E analysis of 50 lots × 10 time points, and the Bayesian accelerated-stability
model fitted on 4 conditions × 5 lots.

The issue's targets on this 2-core machine: the ICH Q1E analysis (``bw.stability.shelf_life``:
per-lot regressions, ANCOVA poolability, confidence bounds, shelf life) under 1 s; the Bayesian
model (``bw.models.StabilityModel``) from the study frame to the posterior under 30 s, compile
included, with a warm cache (a second fit of the same structure in the same process reuses the
compiled model, as a report run that fits several attributes or a rerun in a notebook does).

Both studies come from ``bw.simulate_stability`` (first-order kinetics, Arrhenius, lots partially
pooled). The Q1E study has one condition (5 °C) and 10 time points per lot (0–36 months); the
Bayesian study has 5, 25, 30 and 40 °C with the simulator's default schedules. Printed: the best of
``--repeat`` Q1E runs, and for the Bayesian model a cold fit (first of its structure: numba compile)
and a warm fit on new data of the same shape, with compile and sampling times, min bulk ESS, max r̂,
divergences and the load average.

Usage::

    .venv/bin/python benchmarks/bench_stability.py [--draws 1000] [--chains 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

import bioworkbench as bw


def load() -> float:
    return os.getloadavg()[0]


def q1e_study(n_lots: int, seed: int):
    times = [0, 3, 6, 9, 12, 18, 24, 27, 30, 36]
    return bw.simulate_stability(
        kinetics="first_order", n_lots=n_lots, conditions=(5.0,), times=times, random_seed=seed
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=None)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    import nutpie
    import polars as pl
    import pymc

    print(
        f"bench_stability on {os.cpu_count()} cores, python {platform.python_version()}, polars {pl.__version__}, "
        f"pymc {pymc.__version__}, nutpie {nutpie.__version__}; load {load():.1f}"
    )

    # -- ICH Q1E: 50 lots x 10 time points --------------------------------------------------------
    study = q1e_study(50, seed=1)
    n_rows = study.height
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bw.stability.shelf_life(study, attribute="potency", lower=95.0)  # import and first-call costs
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            res = bw.stability.shelf_life(study, attribute="potency", lower=95.0, storage="refrigerated")
            times.append(time.perf_counter() - t0)
    best = min(times)
    print(
        f"\nICH Q1E: {study['batch_id'].n_unique()} lots x {study.filter(pl.col('batch_id') == 'L01').height} "
        f"times ({n_rows} rows): best of {args.repeat} {best * 1e3:.1f} ms (runs "
        f"{', '.join(f'{t * 1e3:.1f}' for t in times)} ms); model {res.model}, shelf life {res.shelf_life:.2f} "
        f"months; load {load():.1f}"
    )
    ok_q1e = best < 1.0
    print(f"  {'PASS' if ok_q1e else 'FAIL'}  ICH Q1E analysis of 50 lots x 10 times < 1 s: {best:.4f} s")

    # -- Bayesian: 4 conditions x 5 lots -------------------------------------------------------------
    print(f"\nBayesian StabilityModel (first order), 4 conditions x 5 lots, {args.chains} chains x {args.draws} draws")
    print(f"{'fit':<6}{'rows':>6}{'compile':>9}{'sample':>8}{'total':>8}{'min ESS':>9}{'r̂':>7}{'div':>5}{'load':>6}")
    totals = {}
    for label, seed in (("cold", 11), ("warm", 12)):
        s = bw.simulate_stability(
            kinetics="first_order", n_lots=5, conditions=(5.0, 25.0, 30.0, 40.0), random_seed=seed
        )
        t0 = time.perf_counter()
        m = bw.models.StabilityModel(kinetics="first_order", reference_temperature=5.0)
        m.fit(s, attribute="potency", draws=args.draws, tune=args.tune, chains=args.chains, random_seed=seed)
        total = time.perf_counter() - t0
        d = m.diagnostics()
        totals[label] = total
        print(
            f"{label:<6}{s.height:>6}{m.sampling['compile_s']:>9.1f}{m.sampling['sample_s']:>8.1f}{total:>8.1f}"
            f"{d['min_ess_bulk']:>9.0f}{d['max_rhat']:>7.3f}{d['divergences']:>5}{load():>6.1f}"
        )
    ok_bayes = totals["warm"] < 30.0
    print(
        f"  {'PASS' if ok_bayes else 'FAIL'}  Bayesian fit, 4 conditions x 5 lots, warm cache < 30 s: "
        f"{totals['warm']:.1f} s (cold, compile included: {totals['cold']:.1f} s)"
    )
    raise SystemExit(0 if ok_q1e and ok_bayes else 1)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
