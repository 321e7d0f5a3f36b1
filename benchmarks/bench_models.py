"""Benchmark: the growth model fitted by our default path (nutpie) against plain ``pm.sample()``.

The issue's targets: fitting :class:`bioworkbench.models.GrowthModel` on simulated campaigns of 8,
32 and 128 batches, our default path reaches at least 3x the ESS per second of plain
``pm.sample()`` on the same model at 32 and 128 batches, and goes from data to posterior in under
10 s (compile included, warm cache) at 128 batches on a 2-core machine.

For every size the same campaign (``bw.simulate_campaign(n, seed)``, the aborted batch left out) is
fitted three ways in one process, each with its own defaults for ``draws`` and ``tune`` (unless
``--draws``/``--tune`` are given, which then apply to every path) and the same ``chains``:

* ``nutpie cold``: ``GrowthModel().fit(campaign, chains=...)``, our default path: nutpie, 1000
  draws, 300 tuning steps (:data:`bioworkbench.models.growth.DEFAULT_TUNE`), the first fit of this
  structure (numba compile; PyTensor's disk cache may hold parts of it from earlier runs).
  The disk cache of compiled models (:mod:`bioworkbench.models.compile_cache`) is pointed at an
  empty temporary folder, so this row compiles; ``benchmarks/bench_cold_start.py`` measures that
  cache across processes.
* ``nutpie warm``: a second ``GrowthModel().fit(...)`` of the same structure (another seed); the
  compiled model comes from the in-process cache (``model.sampling["compiled_from_cache"]``).
* ``pm.sample``: ``pm.sample(model=GrowthModel().build(campaign), nuts_sampler="pymc", ...)`` on
  the same PyMC model, PyMC's own NUTS with its defaults (1000 draws, 1000 tuning steps,
  ``target_accept=0.8``, jitter+adapt_diag, PyTensor's default compile mode) except
  ``cores=chains`` (the parallelism nutpie gets: PyMC counts 2 logical CPUs as 1 core and would
  otherwise run the chains one after the other) and ``compute_convergence_checks=False`` (the
  nutpie path computes no diagnostics either). ``nuts_sampler="pymc"`` is needed: since PyMC 6, a
  bare ``pm.sample()`` hands a continuous model to nutpie when nutpie is installed and PyTensor's
  default linker is numba (the PyTensor 3 default), so "plain ``pm.sample()``" would be nutpie
  itself. Its compile time is measured separately first (``model.logp_dlogp_function()``: logp +
  gradient in PyTensor's default mode, numba on PyTensor 3); its sampling time is
  ``posterior.attrs["sampling_time"]``; ``total`` is the wall time of the ``pm.sample`` call
  (compile, on a now warm PyTensor disk cache, + process start + sampling).

Columns: ``compile`` and ``sample`` in s; ``total`` = wall time from the campaign to the posterior
(prepare + build + compile + sample); ``cpu`` = CPU seconds of the whole fit (this process and its
children: PyMC samples in worker processes); ``min ESS`` = smallest bulk ESS over every posterior
variable (ArviZ); ``ESS/s`` = min ESS / sampling time (sampler efficiency); ``ESS/s tot`` = min ESS
/ total; ``ESS/cpu`` = min ESS / cpu (what the machine's load does not change much); ``div`` =
divergent transitions after tuning; ``r̂`` = max r̂; ``depth``/``grads`` = mean tree depth and
gradient evaluations per draw; ``ESS/kgrad`` = min ESS per 1,000 gradient evaluations of the kept
draws (tuning not counted: neither path keeps its statistics), the sampler's efficiency independent
of the machine's load; ``µs/grad`` = CPU time of one logp+gradient evaluation (1,000 evaluations of
each compiled function on one core at the initial point); ``load`` = 1-min load average after the
fit. The sampler statistics (ESS, divergences, depth) are reproducible for a given seed; the times
are not on a shared machine, so compare rows of one run only.

Targets: ESS/s (sampling) of ``nutpie warm`` ≥ 3 × that of ``pm.sample`` at 32 and 128 batches,
and ``total`` of ``nutpie warm`` < 10 s at 128 batches. The machine's load (``os.getloadavg``) is
printed before and after every fit: other processes on a 2-core machine slow every timing.

Usage::

    PYTHONPATH=. python benchmarks/bench_models.py                         # 8, 32, 128 batches
    PYTHONPATH=. python benchmarks/bench_models.py --quick                 # 8 batches, 200/200
    PYTHONPATH=. python benchmarks/bench_models.py --sizes 32 --draws 500 --tune 500 --chains 2

The exit status is 0 whatever the targets say (missed targets are FAIL lines in the table).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings
from typing import Any

import numpy as np

import bioworkbench as bw
from bioworkbench.models import GrowthModel

ESS_RATIO_TARGET = 3.0
ESS_RATIO_SIZES = (32, 128)
WARM_TOTAL_TARGET_S = 10.0
WARM_TOTAL_SIZE = 128
N_GRAD_EVALS = 1000


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu() -> float:
    """CPU seconds used so far by this process and its waited-for children (PyMC's chain workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _campaign(n: int, seed: int) -> tuple[Any, list[str]]:
    """A simulated campaign of ``n`` batches and its non-aborted batch ids."""
    campaign, truth = bw.simulate_campaign(n, random_seed=seed, online_interval_min=60.0, return_truth=True)
    ids = truth.filter(~truth["aborted"])["batch_id"].to_list()
    return campaign, ids


def _posterior_stats(idata: Any) -> dict[str, float]:
    """Min bulk ESS, max r̂, divergences, mean tree depth and gradient evaluations per draw."""
    import arviz as az

    post = idata["posterior"].to_dataset()
    stats = idata["sample_stats"].to_dataset()
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    depth = stats["depth"] if "depth" in stats else stats["tree_depth"]
    return {
        "min_ess": float(min(float(v.min()) for v in ess.data_vars.values())),
        "max_rhat": float(max(float(v.max()) for v in rhat.data_vars.values())),
        "div": int(stats["diverging"].sum()),
        "depth": float(depth.mean()),
        "grads": float(stats["n_steps"].mean()),
        "maxdepth": int(stats["maxdepth_reached"].sum()) if "maxdepth_reached" in stats else -1,
    }


def _grad_cost_nutpie(model: GrowthModel, campaign: Any, ids: list[str]) -> float:
    """µs per logp+gradient evaluation of the cached nutpie (numba) model, one core."""
    from bioworkbench.models.base import _COMPILED

    d = model._prepare(campaign, batch_ids=ids)
    compiled = next(v for k, v in _COMPILED.items() if k[0] == "GrowthModel" and k[1] == model._structure(d))
    known = {getattr(v, "name", None) for v in compiled.shared_var_keys}
    compiled = compiled.with_data(**{k: v for k, v in model._shared_data(d).items() if k in known})
    # the numba C callback nutpie's Rust sampler calls: (dim, x, grad out, logp out, user data)
    import ctypes

    fn = compiled.compiled_logp_func.ctypes
    x0 = np.ascontiguousarray(compiled.initial_point_func(0), dtype=float)
    grad, logp = np.zeros_like(x0), np.zeros(1)
    dp = ctypes.POINTER(ctypes.c_double)
    args = (
        ctypes.c_uint64(x0.size),
        x0.ctypes.data_as(dp),
        grad.ctypes.data_as(dp),
        logp.ctypes.data_as(dp),
        ctypes.c_void_p(compiled.user_data.ctypes.data),
    )
    if fn(*args) != 0:
        return float("nan")
    t0 = time.process_time()
    for _ in range(N_GRAD_EVALS):
        fn(*args)
    return (time.process_time() - t0) / N_GRAD_EVALS * 1e6


def _grad_cost_pymc(fn: Any, x0: np.ndarray) -> float:
    """µs per logp+gradient evaluation of the PyTensor C function, one core."""
    fn(x0)
    t0 = time.process_time()
    for _ in range(N_GRAD_EVALS):
        fn(x0)
    return (time.process_time() - t0) / N_GRAD_EVALS * 1e6


def run_size(n: int, *, draws: int | None, tune: int | None, chains: int, seed: int) -> list[dict[str, Any]]:
    import pymc as pm

    rows = []
    t_data = time.perf_counter()
    campaign, ids = _campaign(n, seed)
    t_sim = time.perf_counter() - t_data
    print(f"\n== {n} batches ({len(ids)} fitted; simulated in {t_sim:.1f} s), load {_load()}")

    for label, rs in (("nutpie cold", seed), ("nutpie warm", seed + 1)):
        t0, c0 = time.perf_counter(), _cpu()
        m = GrowthModel().fit(campaign, batch_ids=ids, draws=draws, tune=tune, chains=chains, random_seed=rs)
        total, cpu = time.perf_counter() - t0, _cpu() - c0
        s = _posterior_stats(m.idata)
        rows.append(
            {
                "n": n,
                "path": label,
                "compile": m.sampling["compile_s"],
                "sample": m.sampling["sample_s"],
                "total": total,
                "cpu": cpu,
                "draws": m.sampling["draws"],
                "tune": m.sampling["tune"],
                "cached": m.sampling["compiled_from_cache"],
                "load": os.getloadavg()[0],
                **s,
            }
        )
        print(
            f"  {label}: total {total:.1f} s (compile {m.sampling['compile_s']:.1f}, sample {m.sampling['sample_s']:.1f}, "
            f"from cache {m.sampling['compiled_from_cache']}), load {_load()}"
        )
    grad_np = _grad_cost_nutpie(m, campaign, ids)
    for r in rows:
        r["us_grad"] = grad_np

    # plain PyMC: build, compile logp+grad (timed on its own), then pm.sample
    t0, c0 = time.perf_counter(), _cpu()
    model = GrowthModel().build(campaign, batch_ids=ids)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    pm_defaults = {k: v for k, v in (("draws", draws), ("tune", tune)) if v is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = pm.sample(
            **pm_defaults,
            chains=chains,
            random_seed=seed,
            model=model,
            nuts_sampler="pymc",
            cores=chains,
            progressbar=False,
            compute_convergence_checks=False,
        )
    t_call = time.perf_counter() - t0
    cpu = _cpu() - c0
    ip = model.initial_point()
    grad_pm = _grad_cost_pymc(fn, np.concatenate([np.ravel(ip[v.name]) for v in fn._grad_vars]))
    sampling = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    s = _posterior_stats(idata)
    rows.append(
        {
            "n": n,
            "path": "pm.sample",
            "compile": t_compile,
            "sample": sampling,
            "total": t_build + t_compile + t_call,
            "cpu": cpu,
            "draws": idata["posterior"].sizes["draw"],
            "tune": int(idata["posterior"].attrs.get("tuning_steps", -1)),
            "cached": False,
            "us_grad": grad_pm,
            "load": os.getloadavg()[0],
            **s,
        }
    )
    print(
        f"  pm.sample: compile {t_compile:.1f} s, pm.sample call {t_call:.1f} s (sampling {sampling:.1f}), "
        f"cpu {cpu:.1f} s, load {_load()}"
    )
    for r in rows:
        r["ess_s"] = r["min_ess"] / r["sample"]
        r["ess_s_total"] = r["min_ess"] / r["total"]
        r["ess_cpu"] = r["min_ess"] / r["cpu"]
        r["ess_kgrad"] = r["min_ess"] / (chains * r["draws"] * r["grads"]) * 1000
    return rows


def print_table(rows: list[dict[str, Any]], *, chains: int) -> None:
    print(f"\nGrowthModel, chains={chains} (every path); {os.cpu_count()} cores, load {_load()}")
    head = (
        f"{'batches':>7} {'path':<12} {'draws':>5} {'tune':>5} {'compile':>8} {'sample':>7} {'total':>7} {'cpu':>6} "
        f"{'min ESS':>8} {'ESS/s':>7} {'ESS/s tot':>9} {'ESS/cpu':>8} {'div':>4} {'r̂':>6} {'depth':>5} {'grads':>6} "
        f"{'ESS/kgrad':>9} {'µs/grad':>8} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['n']:>7} {r['path']:<12} {r['draws']:>5} {r['tune']:>5} {r['compile']:>8.1f} {r['sample']:>7.1f} "
            f"{r['total']:>7.1f} {r['cpu']:>6.1f} {r['min_ess']:>8.0f} {r['ess_s']:>7.1f} {r['ess_s_total']:>9.1f} "
            f"{r['ess_cpu']:>8.1f} {r['div']:>4} {r['max_rhat']:>6.3f} {r['depth']:>5.1f} {r['grads']:>6.1f} "
            f"{r['ess_kgrad']:>9.2f} {r['us_grad']:>8.1f} {r['load']:>5.1f}"
        )
    print("\nTargets")
    by = {(r["n"], r["path"]): r for r in rows}
    for n in ESS_RATIO_SIZES:
        if (n, "pm.sample") not in by:
            print(f"  ESS/s ≥ {ESS_RATIO_TARGET:g}x pm.sample at {n} batches: not run")
            continue
        w, p = by[(n, "nutpie warm")], by[(n, "pm.sample")]
        ratio = w["ess_s"] / p["ess_s"]
        ratio_tot = w["ess_s_total"] / p["ess_s_total"]
        ratio_cpu = w["ess_cpu"] / p["ess_cpu"]
        flag = "PASS" if ratio >= ESS_RATIO_TARGET else "FAIL"
        print(
            f"  {flag}  ESS/s ≥ {ESS_RATIO_TARGET:g}x pm.sample at {n} batches: {ratio:.2f}x "
            f"({w['ess_s']:.1f} vs {p['ess_s']:.1f} ESS/s; incl. compile, warm cache: {ratio_tot:.2f}x; "
            f"per CPU second: {ratio_cpu:.2f}x)"
        )
    if (WARM_TOTAL_SIZE, "nutpie warm") in by:
        w = by[(WARM_TOTAL_SIZE, "nutpie warm")]
        flag = "PASS" if w["total"] < WARM_TOTAL_TARGET_S else "FAIL"
        print(
            f"  {flag}  data to posterior < {WARM_TOTAL_TARGET_S:g} s at {WARM_TOTAL_SIZE} batches (warm cache): "
            f"{w['total']:.1f} s (compile {w['compile']:.2f} s, sampling {w['sample']:.1f} s; {w['cpu']:.1f} CPU s, "
            f"load {w['load']:.1f})"
        )
    else:
        print(f"  data to posterior < {WARM_TOTAL_TARGET_S:g} s at {WARM_TOTAL_SIZE} batches: not run")
    bad = [r for r in rows if r["div"] or r["max_rhat"] > 1.01]
    for r in bad:
        print(
            f"  note: {r['path']} at {r['n']} batches has {r['div']} divergences and max r̂ {r['max_rhat']:.3f}; "
            "ESS/s of a sampler that has not converged flatters it"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 128], help="numbers of simulated batches")
    ap.add_argument("--draws", type=int, default=None, help="draws of every path (default: each path's own, 1000)")
    ap.add_argument("--tune", type=int, default=None, help="tuning steps of every path (default: each path's own)")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1, help="campaign and sampler seed")
    ap.add_argument("--quick", action="store_true", help="8 batches, 200 draws, 200 tune: a smoke run")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.draws, a.tune = [8], 200, 200
    warnings.filterwarnings("ignore", category=UserWarning)
    import tempfile

    from bioworkbench.models import compile_cache

    compile_cache.configure(directory=tempfile.mkdtemp(prefix="bench_models-compiled-"))  # "cold" compiles
    print(
        f"bench_models: sizes {a.sizes}, draws={a.draws or 'default'}, tune={a.tune or 'default'}, "
        f"chains={a.chains}, seed={a.seed}; load at start {_load()}"
    )
    rows = []
    for n in a.sizes:
        rows += run_size(n, draws=a.draws, tune=a.tune, chains=a.chains, seed=a.seed)
    print_table(rows, chains=a.chains)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
