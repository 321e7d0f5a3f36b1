"""Benchmark: the digital twin's numerical core (issue 16, stage 1) on one 14-day fed batch.

What is timed, on batch B01 of ``bw.simulate_campaign(2, random_seed=0)`` (its real events: daily
samples, FeedA from day 3, glucose boluses, base, the temperature shift; its offline observations of
six variables, ``vcd, glucose, glutamine, lactate, ammonium, titer``, daily, readings below the limit
of detection as left-censored), with the model's 36 parameters at the prior centres:

* ``forward``: one solve to day 14 (``bioworkbench.twin.simulate``, states at the sample times);
* ``loglik+grad``: the log-likelihood and its exact gradient with respect to all parameters and the
  initial state (``BatchLikelihood.__call__``: forward sweep, likelihood, adjoint sweep in one kernel);
  with the stiffness check (default) and without it (``on_stiff="ignore"``);
* cold start: numba compilation of every kernel with an empty cache (a fresh ``NUMBA_CACHE_DIR``),
  and the start with that cache filled, each in a new process;
* calibration (stage 2, ``--calibration``): ``bw.twin.FedBatchTwin().fit`` on the 12 completed batches
  of ``bw.simulate_campaign(13, random_seed=0)`` with ``--draws``/``--tune`` per chain on 2 chains
  (default: the twin's own, :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`)
  (nutpie, low-rank mass matrix), cold (an empty compile cache: compile + sample), again in the same
  process, and in a new process that loads the compiled model from the disk cache;
  leapfrog steps per draw, divergences, max r̂;
* what-if: ``twin.what_if`` of one batch from day 5 with its feeds +20 %, over 1,000 posterior draws
  (the calibration's draws repeated to 1,000 when it has fewer: the timing is the simulation's);
* recommendation (with ``--calibration``): ``twin.recommend_feed`` of one batch from day 5.

Targets (issue 16): one batch's log-likelihood gradient < 2 ms on this 2-core machine; calibration on
12 batches < 60 s with the compiled model cached (< 120 s cold), 2 chains, no divergences, r̂ ≤ 1.01;
one what-if over 1,000 draws < 1 s; a recommendation < 15 s.

Usage::

    .venv/bin/python benchmarks/bench_twin.py            # 300 repetitions per timing
    .venv/bin/python benchmarks/bench_twin.py --quick    # 50 repetitions, no cold-start subprocesses
    .venv/bin/python benchmarks/bench_twin.py --quick --calibration --draws 100 --tune 100

The exit status is 0 whatever the target says (a missed target is a FAIL line in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import polars as pl

import bioworkbench as bw
from bioworkbench.models.sampling import sampler_defaults
from bioworkbench.twin import BatchLikelihood, FeedPlan, Observations, default_theta, parameter_names, simulate
from bioworkbench.twin._kernels import OBSERVABLE_NAMES
from bioworkbench.twin.op import CampaignLikelihood

VARIABLES = ("vcd", "glucose", "glutamine", "lactate", "ammonium", "titer")
#: limits of detection of the demo's analysers (mmol/L; simulate_campaign's docstring)
LOD = {"glucose": 0.1, "glutamine": 0.1, "lactate": 0.3, "ammonium": 0.2}
#: SD of the log of each reading (the demo's CVs, a little wider)
SIGMA = {"vcd": 0.08, "glucose": 0.06, "glutamine": 0.08, "lactate": 0.06, "ammonium": 0.08, "titer": 0.06}
TARGET_GRAD_MS = 2.0
#: batches whose summed log-likelihood is timed (the issue's calibration campaign has 12)
N_CAMPAIGN = 12

_COLD_SNIPPET = """
import json, time
t0 = time.perf_counter()
import sys; sys.path.insert(0, {bench_dir!r})
import bench_twin as B
t1 = time.perf_counter()
setup = B.setup()
t2 = time.perf_counter()
simulate = B.simulate
simulate(setup["theta"], setup["y0"], setup["events"], setup["t_obs"])
t3 = time.perf_counter()
setup["likelihood"](setup["theta"], setup["y0"])
t4 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "forward_first_s": t3 - t2, "grad_first_s": t4 - t3}}))
"""


def _batch(campaign, batch_id: str) -> dict:
    """One batch of the campaign: solver events, observations (six variables, censored below LOD), y0."""
    events = FeedPlan.from_events(campaign.events, batch_id=batch_id).to_solver(campaign.media)
    obs = campaign.observations.filter(
        (pl.col("batch_id") == batch_id) & (pl.col("source") == "offline") & pl.col("variable").is_in(VARIABLES)
    ).drop_nulls("value")
    obs = obs.filter((pl.col("variable") != "titer") | (pl.col("value") > 0))
    censored = (pl.col("flag") == "<LOD").fill_null(False)
    obs = obs.with_columns(
        censored.alias("censored"),
        pl.when(censored)
        .then(pl.col("variable").replace_strict(LOD, default=None))
        .otherwise(pl.col("value"))
        .alias("value"),
    ).sort("time_h")
    first = campaign.observations.filter((pl.col("batch_id") == batch_id) & (pl.col("time_h") < 1.0))
    at0 = dict(zip(*first.select("variable", "value"), strict=False))
    volume0 = campaign.batches.filter(pl.col("batch_id") == batch_id)["initial_volume_ml"][0]
    vcd, tcd, glc, gln, lac, amm = (at0[n] for n in ("vcd", "tcd", "glucose", "glutamine", "lactate", "ammonium"))
    observations = Observations.from_arrays(
        obs["time_h"].to_numpy(),
        obs["variable"].to_numpy(),
        obs["value"].to_numpy(),
        obs["variable"].replace_strict(SIGMA).to_numpy(),
        censored=obs["censored"].to_numpy(),
    )
    return {
        "events": events,
        "observations": observations,
        # titer 0, the amino-acid pool (a placeholder: the kernels put in the parameter n0), age 0
        "y0": np.array([vcd, tcd - vcd, glc, gln, lac, amm, 0.0, 0.0, 0.0, volume0]),
        "t_obs": np.unique(obs["time_h"].to_numpy()),
    }


def setup(n_batches: int = 1) -> dict:
    """Batch B01 of a simulated campaign (and the first ``n_batches`` completed batches), the prior centres."""
    campaign = bw.simulate_campaign(n_batches + 1, random_seed=0, online_interval_min=60)  # one batch is aborted
    theta = default_theta()
    theta[parameter_names().index("y_x_gln")] = 3.0
    completed = campaign.batches.filter(pl.col("status") == "completed")["batch_id"].to_list()
    batches = [_batch(campaign, b) for b in completed[:n_batches]]
    first = batches[0]
    return {
        **first,
        "theta": theta,
        "batches": batches,
        "likelihood": BatchLikelihood(first["events"], first["observations"]),
        "likelihood_unchecked": BatchLikelihood(first["events"], first["observations"], on_stiff="ignore"),
    }


def _time(fn, repeat: int) -> tuple[float, float]:
    fn()
    times = np.empty(repeat)
    for i in range(repeat):
        t = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t
    return float(np.median(times)) * 1e3, float(times.min()) * 1e3


def _cold_start() -> tuple[dict, dict]:
    bench_dir = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        runs = []
        for _ in range(2):
            out = subprocess.run(
                [sys.executable, "-c", _COLD_SNIPPET.format(bench_dir=bench_dir)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs[0], runs[1]


def _rows(s: dict, repeat: int) -> list[tuple]:
    theta, y0, events, t_obs = s["theta"], s["y0"], s["events"], s["t_obs"]
    coarse = {h: BatchLikelihood(events, s["observations"], h_max=h) for h in (1.0, 2.0)}
    n = len(s["batches"])
    campaign = {
        h: CampaignLikelihood([BatchLikelihood(b["events"], b["observations"], h_max=h) for b in s["batches"]])
        for h in (0.5, 2.0)
    }
    theta_m = np.tile(theta, (n, 1))
    y0_m = np.vstack([b["y0"] for b in s["batches"]])
    sigma = np.array([SIGMA.get(v, 1.0) for v in OBSERVABLE_NAMES])

    def campaign_call(h):
        def call():
            campaign[h]._key = None  # a new point each time: no cache hit
            campaign[h](theta_m, y0_m, sigma)

        return call

    few = max(repeat // 10, 5)
    return [
        (
            "forward (simulate, states at the sample days)",
            *_time(lambda: simulate(theta, y0, events, t_obs), repeat),
            None,
        ),
        ("loglik+grad, stiffness check on", *_time(lambda: s["likelihood"](theta, y0), repeat), TARGET_GRAD_MS),
        (
            "loglik+grad, stiffness check off",
            *_time(lambda: s["likelihood_unchecked"](theta, y0), repeat),
            TARGET_GRAD_MS,
        ),
        ("loglik+grad, h_max 1 h", *_time(lambda: coarse[1.0](theta, y0), repeat), TARGET_GRAD_MS),
        ("loglik+grad, h_max 2 h", *_time(lambda: coarse[2.0](theta, y0), repeat), TARGET_GRAD_MS),
        (f"{n} batches summed (CampaignLikelihood), h_max 0.5 h", *_time(campaign_call(0.5), few), None),
        (f"{n} batches summed (CampaignLikelihood), h_max 2 h", *_time(campaign_call(2.0), few), None),
    ]


def _calibration_campaign():
    campaign = bw.simulate_campaign(N_CAMPAIGN + 1, random_seed=0, online_interval_min=60)
    ids = campaign.batches.filter(pl.col("status") == "completed")["batch_id"].to_list()[:N_CAMPAIGN]
    return campaign, ids


def _fit_row(campaign, ids: list[str], draws: int, tune: int) -> tuple[dict, object]:
    """One calibration: its timings and diagnostics, and the fitted twin."""
    import warnings

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        twin = bw.twin.FedBatchTwin().fit(campaign, batch_ids=ids, draws=draws, tune=tune, chains=2, random_seed=1)
    total = time.perf_counter() - t
    d = twin.diagnostics()
    s = twin.sampling
    row = {
        "total": total,
        "compile": s["compile_s"],
        "mode": s.get("mode_s", 0.0),
        "sample": s["sample_s"],
        "steps": float(twin.idata["sample_stats"]["n_steps"].mean()),
        "div": int(d["divergences"]),
        "rhat": float(d["max_rhat"]),
    }
    return row, twin


_FIT_SNIPPET = """
import json, sys
sys.path.insert(0, {bench_dir!r})
import bench_twin as B
campaign, ids = B._calibration_campaign()
row, _ = B._fit_row(campaign, ids, {draws}, {tune})
print("ROW " + json.dumps(row))
"""


def calibration(draws: int, tune: int) -> None:
    """Fit the twin on 12 batches: cold (empty compile cache), again in the process, again in a new process
    that loads the compiled model from the disk cache; then time a what-if and a recommendation."""
    from bioworkbench.models import compile_cache

    campaign, ids = _calibration_campaign()
    print()
    print(f"calibration: FedBatchTwin on {len(ids)} batches, {draws} draws + {tune} tuning steps x 2 chains")
    print(
        f"{'run':<34} {'total s':>8} {'compile s':>10} {'mode s':>7} {'sample s':>9} {'steps/draw':>11} {'div':>4} "
        f"{'max r^':>7}  target"
    )
    with tempfile.TemporaryDirectory(prefix="bench_twin_cache_") as cache:
        compile_cache.configure(directory=cache)
        rows = []
        row, _ = _fit_row(campaign, ids, draws, tune)
        rows.append(("cold (empty compile cache)", row, 120.0))
        row, twin = _fit_row(campaign, ids, draws, tune)
        rows.append(("again in the same process", row, 60.0))
        code = _FIT_SNIPPET.format(bench_dir=os.path.dirname(os.path.abspath(__file__)), draws=draws, tune=tune)
        env = {**os.environ, "BIOWORKBENCH_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
        row = json.loads(next(line for line in out.splitlines() if line.startswith("ROW "))[4:])
        rows.append(("new process, compiled model on disk", row, 60.0))
    for name, r, target in rows:
        ok = r["total"] < target and r["div"] == 0 and r["rhat"] <= 1.01
        print(
            f"{name:<34} {r['total']:>8.1f} {r['compile']:>10.1f} {r['mode']:>7.1f} {r['sample']:>9.1f} "
            f"{r['steps']:>11.0f} {r['div']:>4d} {r['rhat']:>7.3f}  < {target:g} s, no divergences, "
            f"r^ <= 1.01 {'PASS' if ok else 'FAIL'}"
        )
    what_if_timing(twin, campaign, ids[0])
    recommendation_timing(twin, campaign, ids[0])


def recommendation_timing(twin, campaign, batch_id: str) -> None:
    """Time one recommendation from day 5 (10 candidate volumes x 400 draws, Laplace + importance sampling)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        t = time.perf_counter()
        rec = twin.recommend_feed(campaign, batch_id=batch_id, known_h=120.0, random_seed=0)
        sec = time.perf_counter() - t
    print()
    print(f"{'recommend_feed, ' + batch_id + ' from day 5 (10 volumes x 400 draws)':<52} {'s':>8}  target")
    print(f"{'':<52} {sec:>8.2f}  < 15 s {'PASS' if sec < 15 else 'FAIL'}")
    print(rec.sentence)


def what_if_timing(twin, campaign, batch_id: str) -> None:
    """Time one what-if (FeedA +20 % from day 5) over 1,000 draws, for a fitted batch and from day 5."""
    import warnings

    import xarray as xr

    post = twin.idata["posterior"].to_dataset()
    n = post.sizes["chain"] * post.sizes["draw"]
    if n < 1000:  # repeat the draws: the timing is the forward simulation's, not the posterior's
        reps = -(-1000 // n)
        post = xr.concat([post] * reps, dim="draw").isel(draw=slice(0, -(-1000 // post.sizes["chain"])))
        post = post.assign_coords(draw=np.arange(post.sizes["draw"]))
        twin.idata = xr.DataTree.from_dict({"posterior": post, "sample_stats": twin.idata["sample_stats"].to_dataset()})
    plan = bw.twin.FeedPlan.from_events(campaign.events, batch_id=batch_id).scaled(1.2, from_h=120.0)
    rows = []
    for known_h, label in ((None, "fitted batch"), (120.0, "from day 5 (Laplace + importance sampling)")):
        twin.what_if(campaign, batch_id=batch_id, known_h=known_h, plan=plan, draws=1000, random_seed=0)  # warm up
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
            r = twin.what_if(campaign, batch_id=batch_id, known_h=known_h, plan=plan, draws=1000, random_seed=0)
        rows.append((label, time.perf_counter() - t, r.n_draws, r.ess))
    print()
    print(f"{'what-if, FeedA +20 %, ' + batch_id:<52} {'s':>8} {'draws':>6} {'ESS':>6}  target")
    for label, sec, nd, ess in rows:
        print(f"{label:<52} {sec:>8.3f} {nd:>6d} {ess:>6.0f}  < 1 s {'PASS' if sec < 1 else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 repetitions, no cold-start subprocesses")
    parser.add_argument("--calibration", action="store_true", help="also fit the twin on 12 batches and time a what-if")
    twin_defaults = sampler_defaults("FedBatchTwin")
    parser.add_argument(
        "--draws", type=int, default=twin_defaults.draws, help="calibration draws per chain (default: the twin's)"
    )
    parser.add_argument(
        "--tune", type=int, default=twin_defaults.tune, help="calibration tuning steps per chain (default: the twin's)"
    )
    args = parser.parse_args()
    repeat = 50 if args.quick else 300

    s = setup(N_CAMPAIGN)
    lik = s["likelihood"]
    res = lik(s["theta"], s["y0"])
    obs = s["observations"]
    print(f"bench_twin: {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"batch B01: {s['t_obs'].max():.0f} h, {lik.schedule.t_b.size - 1} intervals, {lik.schedule.n_steps} RK4 "
        f"steps (h_max 0.5 h), {s['events'].jump_time_h.size} volume jumps, {len(parameter_names())} parameters + "
        f"{s['y0'].size} initial states, {obs.time_h.size} observations of {len(VARIABLES)} variables "
        f"({int(obs.censored.sum())} censored); loglik at the prior centres {res.loglik:.1f}"
    )
    rows = _rows(s, repeat)
    print()
    print(f"{'what':<52} {'median ms':>10} {'min ms':>8}  target")
    for name, med, best, target in rows:
        verdict = "" if target is None else f"< {target:g} ms {'PASS' if med < target else 'FAIL'}"
        print(f"{name:<52} {med:>10.3f} {best:>8.3f}  {verdict}")
    states = {h: simulate(s["theta"], s["y0"], s["events"], s["t_obs"], h_max=h) for h in (0.25, 0.5, 1.0, 2.0)}
    diff = {h: np.abs(states[h] - states[0.25]).max(axis=0) / np.abs(states[0.25]).max(axis=0) for h in (0.5, 1, 2)}
    print()
    print(
        "largest difference of a state from its h_max 0.25 h solution (relative to its largest value): "
        + ", ".join(f"h_max {h:g} h {d.max():.1e}" for h, d in diff.items())
    )
    if not args.quick:
        cold, warm = _cold_start()
        print()
        print(f"{'start of a new process':<52} {'import s':>10} {'1st forward s':>14} {'1st grad s':>11}")
        for name, r in (("numba cache empty (compiles every kernel)", cold), ("numba cache filled", warm)):
            print(f"{name:<52} {r['import_s']:>10.2f} {r['forward_first_s']:>14.2f} {r['grad_first_s']:>11.2f}")
    if args.calibration:
        calibration(args.draws, args.tune)
    else:  # the what-if's timing does not depend on the fit's quality: a tiny fit on 3 batches
        import warnings

        campaign = bw.simulate_campaign(4, random_seed=0, online_interval_min=60)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
            twin = bw.twin.FedBatchTwin().fit(
                campaign, batch_ids=["B01", "B02", "B03"], draws=20, tune=20, chains=1, random_seed=1
            )
        print()
        print("what-if on a 3-batch fit of 20 draws (repeated to 1,000; pass --calibration for the 12-batch fit)")
        what_if_timing(twin, campaign, "B01")


if __name__ == "__main__":
    main()
