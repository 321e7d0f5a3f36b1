"""Benchmark: the digital twin's numerical core (issue 16, stage 1) on one 14-day fed batch.

What is timed, on batch B01 of ``bw.simulate_campaign(2, random_seed=0)`` (its real events: daily
samples, FeedA from day 3, glucose boluses, base, the temperature shift; its offline observations of
six variables, ``vcd, glucose, glutamine, lactate, ammonium, titer``, daily, readings below the limit
of detection as left-censored), with the model's 23 parameters at the prior centres:

* ``forward``: one solve to day 14 (``bioworkbench.twin.simulate``, states at the sample times);
* ``loglik+grad``: the log-likelihood and its exact gradient with respect to all parameters and the
  initial state (``BatchLikelihood.__call__``: forward sweep, likelihood, adjoint sweep in one kernel);
  with the stiffness check (default) and without it (``on_stiff="ignore"``);
* cold start: numba compilation of every kernel with an empty cache (a fresh ``NUMBA_CACHE_DIR``),
  and the start with that cache filled, each in a new process.

Target (issue 16): one batch's log-likelihood gradient < 2 ms on this 2-core machine.

Usage::

    .venv/bin/python benchmarks/bench_twin.py            # 300 repetitions per timing
    .venv/bin/python benchmarks/bench_twin.py --quick    # 50 repetitions, no cold-start subprocesses

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
from bioworkbench.twin import BatchLikelihood, FeedPlan, Observations, default_theta, parameter_names, simulate

VARIABLES = ("vcd", "glucose", "glutamine", "lactate", "ammonium", "titer")
#: limits of detection of the demo's analysers (mmol/L; simulate_campaign's docstring)
LOD = {"glucose": 0.1, "glutamine": 0.1, "lactate": 0.3, "ammonium": 0.2}
#: SD of the log of each reading (the demo's CVs, a little wider)
SIGMA = {"vcd": 0.08, "glucose": 0.06, "glutamine": 0.08, "lactate": 0.06, "ammonium": 0.08, "titer": 0.06}
TARGET_GRAD_MS = 2.0

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


def setup() -> dict:
    """The benchmark batch: plan, solver events, observations, parameters, initial state, likelihood."""
    campaign = bw.simulate_campaign(2, random_seed=0, online_interval_min=60)
    plan = FeedPlan.from_events(campaign.events, batch_id="B01")
    events = plan.to_solver(campaign.media)
    obs = campaign.observations.filter(
        (pl.col("batch_id") == "B01") & (pl.col("source") == "offline") & pl.col("variable").is_in(VARIABLES)
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
    first = campaign.observations.filter((pl.col("batch_id") == "B01") & (pl.col("time_h") < 1.0))
    at0 = dict(zip(*first.select("variable", "value"), strict=False))
    volume0 = campaign.batches.filter(pl.col("batch_id") == "B01")["initial_volume_ml"][0]
    y0 = np.array(
        [
            at0["vcd"],
            at0["tcd"] - at0["vcd"],
            at0["glucose"],
            at0["glutamine"],
            at0["lactate"],
            at0["ammonium"],
            0.0,
            volume0,
        ]
    )
    theta = default_theta()
    theta[parameter_names().index("y_x_gln")] = 3.0
    observations = Observations.from_arrays(
        obs["time_h"].to_numpy(),
        obs["variable"].to_numpy(),
        obs["value"].to_numpy(),
        obs["variable"].replace_strict(SIGMA).to_numpy(),
        censored=obs["censored"].to_numpy(),
    )
    t_obs = np.unique(obs["time_h"].to_numpy())
    return {
        "plan": plan,
        "events": events,
        "observations": observations,
        "theta": theta,
        "y0": y0,
        "t_obs": t_obs,
        "likelihood": BatchLikelihood(events, observations),
        "likelihood_unchecked": BatchLikelihood(events, observations, on_stiff="ignore"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 repetitions, no cold-start subprocesses")
    args = parser.parse_args()
    repeat = 50 if args.quick else 300

    s = setup()
    lik = s["likelihood"]
    res = lik(s["theta"], s["y0"])
    n_obs = s["observations"].time_h.size
    print(f"bench_twin: {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(
        f"batch B01: {s['t_obs'].max():.0f} h, {lik.schedule.t_b.size - 1} intervals, {lik.schedule.n_steps} RK4 steps "
        f"(h_max 0.5 h), {s['events'].jump_time_h.size} volume jumps, {len(parameter_names())} parameters + 8 initial "
        f"states, {n_obs} observations of {len(VARIABLES)} variables ({int(s['observations'].censored.sum())} censored); "
        f"loglik at the prior centres {res.loglik:.1f}"
    )
    rows = [
        (
            "forward (simulate, states at the sample days)",
            *_time(lambda: simulate(s["theta"], s["y0"], s["events"], s["t_obs"]), repeat),
            None,
        ),
        ("loglik+grad, stiffness check on", *_time(lambda: lik(s["theta"], s["y0"]), repeat), TARGET_GRAD_MS),
        (
            "loglik+grad, stiffness check off",
            *_time(lambda: s["likelihood_unchecked"](s["theta"], s["y0"]), repeat),
            TARGET_GRAD_MS,
        ),
    ]
    print()
    print(f"{'what':<48} {'median ms':>10} {'min ms':>8}  target")
    for name, med, best, target in rows:
        verdict = "" if target is None else f"< {target:g} ms {'PASS' if med < target else 'FAIL'}"
        print(f"{name:<48} {med:>10.3f} {best:>8.3f}  {verdict}")
    if not args.quick:
        cold, warm = _cold_start()
        print()
        print(f"{'start of a new process':<48} {'import s':>10} {'1st forward s':>14} {'1st grad s':>11}")
        for name, r in (("numba cache empty (compiles every kernel)", cold), ("numba cache filled", warm)):
            print(f"{name:<48} {r['import_s']:>10.2f} {r['forward_first_s']:>14.2f} {r['grad_first_s']:>11.2f}")


if __name__ == "__main__":
    main()
