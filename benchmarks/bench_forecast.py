"""Benchmark: calibration of the batch forecast (``bw.models.forecast``) on held-out batches.

The issue's targets: forecast held-out batches from day 5 and from day 7, on (a) demo campaigns of
several seeds and (b) the real NISTCHO cultures (VCD only), and compare each 90 % interval with what
was then *measured*:

* ``final_titer``: the last in-process titer sample of the batch (demo only; NISTCHO has no titer);
* ``peak_vcd``: the highest VCD sample;
* ``time_of_peak``: the culture day (sample time rounded to whole days) of the first VCD sample
  within 5 % of the highest sample (the day of the single highest sample is ill-posed on a plateau).

Targets: coverage of the 90 % intervals ≥ 85 % for each of the three on the demo, with at least 40
held-out forecasts from each day; ≥ 80 % for ``peak_vcd`` and ``time_of_peak`` on NISTCHO; and
intervals that shrink from day 5 to day 7 (mean width) for every endpoint.

Design. "From day N" means with the day-N sample: the batch is known up to ``24 N + 3`` hours
(samples are taken within about an hour of the nominal time). The held-out batches of one
campaign are cut (:meth:`Campaign.as_of`, inside ``forecast``) and forecast together from one fit
per (campaign, day): each held-out batch joins the hierarchical models with its first days only, as
several batches running at once would. The history is every other completed batch.

* Demo: ``bw.simulate_campaign(24, random_seed=seed)`` for each seed (the aborted batch left out); the
  held-out batches are every 4th completed batch, starting at ``seed % 3`` (6 per campaign), so that
  seven seeds give 42 held-out forecasts per day.
* NISTCHO (``bw.datasets.nistcho()``): the 31 cultures with at least 4 VCD samples, in 3 folds
  (every 3rd culture); each fold is held out once per day, the other two folds are the history.

Columns of the coverage table: ``n`` forecasts, ``covered`` (interval contains the measured value),
``coverage``, ``width`` (mean width of the interval), ``bias`` (mean of forecast median − measured).
The sampler diagnostics of every fit (divergences, max r̂, min bulk ESS) are printed: a fit that
did not converge is named.

Usage::

    .venv/bin/python benchmarks/bench_forecast.py              # 7 demo seeds + NISTCHO, the forecast's defaults
    .venv/bin/python benchmarks/bench_forecast.py --quick      # 3 demo seeds + NISTCHO, 1000 draws
    .venv/bin/python benchmarks/bench_forecast.py --seeds 1 2 --no-nistcho

The exit status is 0 whatever the targets say (missed targets are FAIL lines in the table).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
import warnings
from typing import Any

import numpy as np
import polars as pl

import bioworkbench as bw
from bioworkbench.models.forecast import DEFAULT_CHAINS, DEFAULT_DRAWS, DEFAULT_TUNE

DAYS = (5, 7)
#: known up to the day's sample: samples are taken within about an hour of the nominal time
GRACE_H = 3.0
DEMO_SEEDS = (1, 2, 3, 4, 5, 6, 7)
DEMO_STRIDE = 4
NISTCHO_FOLDS = 3
PROB = 0.9
TARGETS = {
    "demo": {"final_titer": 0.85, "peak_vcd": 0.85, "time_of_peak": 0.85},
    "nistcho": {"peak_vcd": 0.80, "time_of_peak": 0.80},
}
MIN_FORECASTS = {"demo": 40, "nistcho": 30}
PEAK_WITHIN = 0.05


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _versions() -> str:
    import arviz
    import nutpie
    import pymc
    import pytensor

    return (
        f"python {platform.python_version()}, numpy {np.__version__}, polars {pl.__version__}, "
        f"pymc {pymc.__version__}, pytensor {pytensor.__version__}, nutpie {nutpie.__version__}, "
        f"arviz {arviz.__version__}, bioworkbench {bw.__version__}"
    )


def measured_endpoints(campaign: Any, batch_ids: list[str]) -> pl.DataFrame:
    """What was measured for each batch: ``batch_id, quantity, measured`` (the forecast's definitions)."""
    obs = campaign.observations.filter(
        pl.col("batch_id").is_in(batch_ids)
        & (pl.col("source") != "online")
        & pl.col("flag").is_null()
        & pl.col("value").is_not_null()
    )
    vcd = obs.filter((pl.col("variable") == "vcd") & (pl.col("value") > 0)).sort("batch_id", "time_h")
    peak = vcd.group_by("batch_id").agg(
        peak_vcd=pl.col("value").max(),
        time_of_peak=(
            pl.col("time_h").filter(pl.col("value") >= (1 - PEAK_WITHIN) * pl.col("value").max()).first() / 24
        ).round(),
    )
    rows = peak.unpivot(index="batch_id", variable_name="quantity", value_name="measured")
    titer = obs.filter(pl.col("variable") == "titer").sort("batch_id", "time_h")
    if titer.height:
        last = (
            titer.group_by("batch_id").agg(measured=pl.col("value").last()).with_columns(quantity=pl.lit("final_titer"))
        )
        rows = pl.concat([rows, last.select("batch_id", "quantity", "measured")])
    return rows


def _fit_row(label: str, fc: Any) -> dict[str, Any]:
    row = {"label": label}
    for what in ("growth", "titer"):
        d = fc.diagnostics.get(what)
        if d is not None:
            row[what] = (d["divergences"], d["max_rhat"], d["min_ess_bulk"], d["sampler_sample_s"])
    return row


def run_forecasts(
    dataset: str,
    campaign: Any,
    history: list[str],
    held_out: list[str],
    *,
    day: int,
    label: str,
    draws: int,
    tune: int,
    chains: int,
    seed: int,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One fit: ``held_out`` forecast from ``day`` with ``history``; the endpoints joined with what was measured."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = bw.models.forecast(
            campaign,
            held_out,
            known_h=24.0 * day + GRACE_H,
            history=history,
            prob=PROB,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
        )
    res = (
        fc.endpoints.filter(pl.col("quantity").is_in(["final_titer", "peak_vcd", "time_of_peak"]))
        .join(measured_endpoints(campaign, held_out), on=["batch_id", "quantity"], how="inner")
        .with_columns(
            dataset=pl.lit(dataset),
            campaign=pl.lit(label),
            day=pl.lit(day),
            covered=pl.col("measured").is_between("lower", "upper"),
            width=pl.col("upper") - pl.col("lower"),
        )
        .select(
            "dataset",
            "campaign",
            "day",
            "batch_id",
            "quantity",
            "median",
            "lower",
            "upper",
            "measured",
            "covered",
            "width",
        )
    )
    return res, _fit_row(f"{label} day {day}", fc)


def demo_cases(seeds: tuple[int, ...]) -> list[tuple[str, Any, list[str], list[str]]]:
    """Per seed: label, campaign, history and held-out batches (every 4th completed batch from ``seed % 3``)."""
    out = []
    for seed in seeds:
        campaign, truth = bw.simulate_campaign(24, random_seed=seed, online_interval_min=240.0, return_truth=True)
        done = truth.filter(~pl.col("aborted"))["batch_id"].to_list()
        held = done[seed % 3 :: DEMO_STRIDE][:6]
        out.append((f"demo seed {seed}", campaign, [b for b in done if b not in held], held))
    return out


def nistcho_campaign() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if hasattr(bw, "datasets") and hasattr(bw.datasets, "nistcho"):
            return bw.datasets.nistcho()
        return bw.read_wide("/work/shared/data/nistcho-vcd/vicell_growth_fb2_fb4_combined.csv", "nistcho")


def nistcho_cases(folds: int = NISTCHO_FOLDS) -> list[tuple[str, Any, list[str], list[str]]]:
    """The usable NISTCHO cultures in ``folds`` folds (every ``folds``-th culture); each fold held out once."""
    campaign = nistcho_campaign()
    ids, _ = bw.models.usable_batches(campaign, min_vcd=4)
    return [
        (f"nistcho fold {k + 1}/{folds}", campaign, [b for b in ids if b not in ids[k::folds]], ids[k::folds])
        for k in range(folds)
    ]


def run(
    *,
    seeds: tuple[int, ...],
    nistcho: bool,
    days: tuple[int, ...],
    draws: int,
    tune: int,
    chains: int,
    folds: int = NISTCHO_FOLDS,
    verbose: bool = True,
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Every forecast of the benchmark: the per-batch results and one diagnostics row per fit."""
    cases = [("demo", *c) for c in demo_cases(seeds)] + (
        [("nistcho", *c) for c in nistcho_cases(folds)] if nistcho else []
    )
    results, fits = [], []
    for i, (dataset, label, campaign, history, held) in enumerate(cases):
        for day in days:
            t0 = time.perf_counter()
            res, fit = run_forecasts(
                dataset,
                campaign,
                history,
                held,
                day=day,
                label=label,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=i + 1,
            )
            fit["s"] = time.perf_counter() - t0
            results.append(res)
            fits.append(fit)
            if verbose:
                cov = res.group_by("quantity").agg(pl.col("covered").sum(), pl.len()).sort("quantity")
                txt = ", ".join(f"{q} {c}/{n}" for q, c, n in cov.iter_rows())
                print(f"  {label}, day {day}: {len(held)} held out, {fit['s']:.0f} s; covered {txt}; load {_load()}")
    return pl.concat(results), fits


def coverage_table(results: pl.DataFrame) -> pl.DataFrame:
    return (
        results.group_by("dataset", "quantity", "day")
        .agg(
            n=pl.len(),
            covered=pl.col("covered").sum(),
            coverage=pl.col("covered").mean(),
            width=pl.col("width").mean(),
            bias=(pl.col("median") - pl.col("measured")).mean(),
        )
        .sort("dataset", "quantity", "day")
    )


def targets(results: pl.DataFrame, days: tuple[int, ...]) -> list[tuple[bool, str]]:
    """``(passed, line)`` for every target (see the module docstring)."""
    out = []
    tab = coverage_table(results)
    for dataset, want in TARGETS.items():
        sub = results.filter(pl.col("dataset") == dataset)
        if sub.is_empty():
            continue
        for q, target in want.items():
            s = sub.filter(pl.col("quantity") == q)
            n_day = s.group_by("day").len()
            enough = n_day.height == len(days) and int(n_day["len"].min()) >= MIN_FORECASTS[dataset]
            cov = float(s["covered"].mean())
            out.append(
                (
                    cov >= target and enough,
                    f"{dataset} {q}: coverage of the 90 % intervals {cov:.1%} ({int(s['covered'].sum())}/{s.height}, "
                    f"days {', '.join(map(str, days))}) ≥ {target:.0%}"
                    + ("" if enough else f"; needs ≥ {MIN_FORECASTS[dataset]} forecasts per day"),
                )
            )
        if len(days) >= 2:
            for q in want:
                w = tab.filter((pl.col("dataset") == dataset) & (pl.col("quantity") == q)).sort("day")
                widths = w["width"].to_list()
                ok = all(b < a for a, b in itertools.pairwise(widths))
                out.append(
                    (
                        ok,
                        f"{dataset} {q}: mean interval width shrinks from day {days[0]} to day {days[-1]}: "
                        + " → ".join(f"{x:.3g}" for x in widths),
                    )
                )
    return out


def print_report(results: pl.DataFrame, fits: list[dict[str, Any]], days: tuple[int, ...]) -> None:
    print("\nSampler diagnostics per fit (divergences, max r̂, min bulk ESS, sampling s)")
    for f in fits:
        parts = [
            f"{w} {v[0]} div, r̂ {v[1]:.3f}, ESS {v[2]:.0f}, {v[3]:.1f} s"
            for w, v in f.items()
            if w in ("growth", "titer")
        ]
        bad = any(v[0] or v[1] > 1.01 for w, v in f.items() if w in ("growth", "titer"))
        print(f"  {'NOT CONVERGED ' if bad else ''}{f['label']}: " + "; ".join(parts) + f"; {f['s']:.0f} s in all")
    print("\nCoverage of the 90 % intervals against the measured values")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160, float_precision=3):
        print(coverage_table(results))
    print("\nTargets")
    for ok, line in targets(results, days):
        print(f"  {'PASS' if ok else 'FAIL'}  {line}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=list(DEMO_SEEDS), help="demo campaign seeds")
    ap.add_argument("--days", type=int, nargs="+", default=list(DAYS))
    ap.add_argument("--draws", type=int, default=DEFAULT_DRAWS, help="default: the forecast's own")
    ap.add_argument("--tune", type=int, default=DEFAULT_TUNE, help="default: the forecast's own")
    ap.add_argument("--chains", type=int, default=DEFAULT_CHAINS, help="default: the forecast's own")
    ap.add_argument("--no-nistcho", action="store_true", help="demo campaigns only")
    ap.add_argument("--no-demo", action="store_true", help="NISTCHO only")
    ap.add_argument("--quick", action="store_true", help="3 demo seeds, 1000 draws, 500 tuning steps: a smoke run")
    ap.add_argument("--csv", default=None, help="write the per-forecast results to this CSV file")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.draws, a.tune = a.seeds[:3], 1000, 500
    seeds = () if a.no_demo else tuple(a.seeds)
    days = tuple(a.days)
    print(
        f"bench_forecast: demo seeds {list(seeds)}, NISTCHO {not a.no_nistcho}, days {list(days)}, "
        f"draws={a.draws}, tune={a.tune}, chains={a.chains}; {os.cpu_count()} cores, load at start {_load()}\n"
        f"{_versions()}"
    )
    t0 = time.perf_counter()
    results, fits = run(seeds=seeds, nistcho=not a.no_nistcho, days=days, draws=a.draws, tune=a.tune, chains=a.chains)
    if a.csv:
        results.write_csv(a.csv)
    print_report(results, fits, days)
    print(f"\n{len(fits)} fits, {results['batch_id'].n_unique()} batches, {time.perf_counter() - t0:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
