"""Benchmark: a quadratic response surface on a 30-run, 4-factor design and its 100×100 design-space map.

The issue's target: the 100×100 map (Peterson's P(all CQAs within spec), 4,000 posterior draws) in
under 10 s on this 2-core machine. One simulated design (a rotatable central composite design in four
factors: 16 factorial + 8 axial + 6 centre runs = 30 runs) with two correlated responses (titer and
aggregates, known full-quadratic truth) is fitted and mapped three ways in one process, all with the
same ``draws``, ``tune`` and ``chains``:

* ``ours cold``: ``ResponseSurface(factors, ["titer", "aggregates"]).fit(frame)`` (the default path:
  nutpie, first fit of this structure, numba compile) then ``.design_space(specs, grid={temp: 100,
  ph: 100})`` with the other two factors at their centre, then ``.proven_acceptable_range()``.
* ``ours warm``: the same on new data of the same shape (another seed): the compiled model comes from
  the in-process cache.
* ``plain PyMC``: the same model written plainly (coded model matrix and standardised responses as
  ``pm.Data``, same priors, ``pm.MvNormal(observed=…)`` with an ``LKJCholeskyCov``), ``pm.sample``
  with PyMC's NUTS (``nuts_sampler="pymc"``: a bare ``pm.sample()`` would hand the model to nutpie,
  see bench_models.py; ``cores`` = min(chains, CPUs)), then ``pm.set_data`` to the 10,000 grid
  points and ``pm.sample_posterior_predictive``, and P = the fraction of predictive draws with both
  responses within spec, per grid point.

Columns: ``compile`` (s; for plain PyMC the logp+gradient compile measured on its own), ``sample``
(s), ``fit`` = wall time from the data frame to the posterior, ``map`` = wall time of the 100×100
probability map from the posterior, ``PAR`` = the one-factor-at-a-time ranges (4 lines of 401
points), ``min ESS`` (bulk, every parameter), ``r̂`` (max), ``div`` (divergences), ``load`` (1-minute
load average after the step). The two maps estimate the same probability by different Monte Carlo
(ours: conditional MC, exact over the last response; plain: indicator over predictive draws), so
``max |ΔP|`` between them should be within a few of their Monte Carlo errors (≤ 0.5/√draws each).

Usage::

    PYTHONPATH=. python benchmarks/bench_doe.py               # 4 chains × 1000 draws, 100×100
    PYTHONPATH=. python benchmarks/bench_doe.py --quick       # 2 chains × 250 draws, 50×50

The exit status is 0 whatever the target says (a missed target is a FAIL line).
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

from bioworkbench.models import ResponseSurface
from bioworkbench.terms import decode, model_matrix, parse_terms

MAP_TARGET_S = 10.0
FACTORS = {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (1.0, 3.0), "do": (20.0, 60.0)}
SPECS = {"titer": (9.0, None), "aggregates": (None, 4.0)}
RESPONSES = list(SPECS)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _truth() -> tuple[np.ndarray, np.ndarray]:
    """Full-quadratic coefficients (coded units) of titer and aggregates, terms in parse_terms order."""
    names = list(FACTORS)
    terms = parse_terms("quadratic", names)
    titer = dict.fromkeys(terms, 0.0) | {
        "temp": 1.2, "ph": -0.6, "feed": 0.8, "do": 0.2, "temp:ph": 0.4, "temp:feed": -0.3,
        "temp^2": -1.5, "ph^2": -1.0, "feed^2": -0.6, "do^2": -0.2,
    }  # fmt: skip
    agg = dict.fromkeys(terms, 0.0) | {
        "temp": 0.5, "ph": 0.3, "feed": 0.2, "temp:ph": 0.2, "temp^2": 0.3, "feed^2": 0.2,
    }  # fmt: skip
    return np.array([10.0, *titer.values()]), np.array([3.2, *agg.values()])


def design(seed: int) -> pl.DataFrame:
    """30-run rotatable CCD in 4 factors with the two responses simulated (correlated noise)."""
    k = len(FACTORS)
    cube = list(itertools.product([-1.0, 1.0], repeat=k))
    axial = [tuple(s * 2.0 if i == j else 0.0 for j in range(k)) for i in range(k) for s in (-1, 1)]
    coded = np.array(cube + axial + [(0.0,) * k] * 6)
    names = list(FACTORS)
    M = model_matrix(coded, names, parse_terms("quadratic", names))
    bt, ba = _truth()
    cov = np.array([[0.25, 0.3 * 0.5 * 0.25], [0.3 * 0.5 * 0.25, 0.0625]])
    noise = np.random.default_rng(seed).multivariate_normal([0, 0], cov, size=len(coded))
    X = decode(coded, FACTORS)
    return pl.DataFrame(
        {**{f: X[:, j] for j, f in enumerate(names)}, "titer": M @ bt + noise[:, 0], "aggregates": M @ ba + noise[:, 1]}
    )


def _grid(n: int) -> dict[str, Any]:
    return {"temp": n, "ph": n}


def _stats(idata: Any) -> dict[str, float]:
    import arviz as az

    post = idata["posterior"].to_dataset()
    stats = idata["sample_stats"].to_dataset()
    ess = az.ess(post, method="bulk")
    rhat = az.rhat(post)
    return {
        "min_ess": float(min(float(v.min()) for v in ess.data_vars.values())),
        "max_rhat": float(max(float(v.max()) for v in rhat.data_vars.values())),
        "div": int(stats["diverging"].sum()),
    }


def run_ours(label: str, frame: pl.DataFrame, *, draws: int, tune: int, chains: int, seed: int, grid: int) -> dict:
    t0 = time.perf_counter()
    m = ResponseSurface(FACTORS, RESPONSES).fit(frame, draws=draws, tune=tune, chains=chains, random_seed=seed)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = m.design_space(SPECS, grid=_grid(grid), random_seed=seed)
    t_map = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = ds.proven_acceptable_range()
    t_par = time.perf_counter() - t0
    row = {
        "path": label,
        "compile": m.sampling["compile_s"],
        "sample": m.sampling["sample_s"],
        "fit": fit,
        "map": t_map,
        "par": t_par,
        "load": os.getloadavg()[0],
        "cached": m.sampling["compiled_from_cache"],
        "map_frame": ds.map,
        "region": ds.region_fraction,
        "par_frame": par,
        **_stats(m.idata),
    }
    print(
        f"  {label}: fit {fit:.1f} s (compile {row['compile']:.1f}, sample {row['sample']:.1f}, from cache "
        f"{row['cached']}), map {t_map:.2f} s, PAR {t_par:.2f} s; load {_load()}"
    )
    return row


def run_plain(frame: pl.DataFrame, *, draws: int, tune: int, chains: int, seed: int, grid: int) -> dict:
    """The same model in plain PyMC: pm.sample, then pm.sample_posterior_predictive over the grid."""
    import pymc as pm

    from bioworkbench.terms import code

    names = list(FACTORS)
    terms = parse_terms("quadratic", names)
    t_start = time.perf_counter()
    Xc = model_matrix(code(frame.select(names).to_numpy(), FACTORS), names, terms, intercept=False)
    Y = frame.select(RESPONSES).to_numpy()
    ym, ys = Y.mean(axis=0), Y.std(axis=0, ddof=1)
    with pm.Model() as model:
        X = pm.Data("X", Xc)
        Yd = pm.Data("Y", (Y - ym) / ys)
        b0 = pm.Normal("intercept", 0.0, 2.5, shape=2)
        beta = pm.Normal("beta", 0.0, 2.5, shape=(2, len(terms)))
        chol, _, _ = pm.LKJCholeskyCov(
            "resid_chol", n=2, eta=2.0, sd_dist=pm.HalfNormal.dist(1.0, shape=2), compute_corr=True
        )
        mu = b0[None, :] + X @ beta.T
        pm.MvNormal("y", mu=mu, chol=chol, observed=Yd, shape=mu.shape)
    t0 = time.perf_counter()
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    t_compile = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            model=model,
            nuts_sampler="pymc",
            cores=min(chains, os.cpu_count() or 1),
            progressbar=False,
            compute_convergence_checks=False,
        )
        t_sample_call = time.perf_counter() - t0
    fit = time.perf_counter() - t_start
    sampling = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    print(f"  plain PyMC: pm.sample call {t_sample_call:.1f} s (sampling {sampling:.1f}), load {_load()}")
    # the grid: temp × ph at n × n, feed and do at their centre (as in ours)
    lo = {f: r[0] for f, r in FACTORS.items()}
    hi = {f: r[1] for f, r in FACTORS.items()}
    axes = [np.linspace(lo[f], hi[f], grid) if f in ("temp", "ph") else np.array([(lo[f] + hi[f]) / 2]) for f in names]
    mesh = np.meshgrid(*axes, indexing="ij")
    settings = np.column_stack([m_.ravel() for m_ in mesh])
    Xg = model_matrix(code(settings, FACTORS), names, terms, intercept=False)
    t0 = time.perf_counter()
    with model, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm.set_data({"X": Xg, "Y": np.zeros((len(Xg), 2))})
        ppc = pm.sample_posterior_predictive(idata, var_names=["y"], random_seed=seed, progressbar=False)
    yg = ppc["posterior_predictive"]["y"].values * ys + ym  # (chain, draw, point, response)
    ok = np.ones(yg.shape[:3], bool)
    for j, r in enumerate(RESPONSES):
        lo_s, hi_s = SPECS[r]
        if lo_s is not None:
            ok &= yg[..., j] >= lo_s
        if hi_s is not None:
            ok &= yg[..., j] <= hi_s
    prob = ok.reshape(-1, ok.shape[-1]).mean(axis=0)
    t_map = time.perf_counter() - t0
    del yg, ppc
    print(f"  plain PyMC: posterior predictive map {t_map:.1f} s, load {_load()}")
    mp = pl.DataFrame({f: settings[:, j] for j, f in enumerate(names)}).with_columns(prob=pl.Series(prob))
    return {
        "path": "plain PyMC",
        "compile": t_compile,
        "sample": sampling,
        "fit": fit,
        "map": t_map,
        "par": float("nan"),
        "load": os.getloadavg()[0],
        "cached": False,
        "map_frame": mp,
        "region": float((prob >= 0.9).mean()),
        **_stats(idata),
    }


def _versions() -> str:
    import arviz
    import nutpie
    import pymc
    import pytensor
    import scipy

    return (
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, polars {pl.__version__}, "
        f"pymc {pymc.__version__}, pytensor {pytensor.__version__}, nutpie {nutpie.__version__}, arviz {arviz.__version__}"
    )


def print_table(rows: list[dict], *, draws: int, tune: int, chains: int, grid: int) -> None:
    print(
        f"\nResponseSurface (4 factors, full quadratic: 15 coefficients per response, 2 responses, 30 runs), "
        f"draws={draws}, tune={tune}, chains={chains}; map {grid}×{grid} ({grid * grid:,} points × "
        f"{draws * chains:,} draws); {os.cpu_count()} CPUs, load {_load()}"
    )
    head = (
        f"{'path':<11} {'compile':>8} {'sample':>7} {'fit':>7} {'map':>7} {'PAR':>6} {'min ESS':>8} {'r̂':>6} "
        f"{'div':>4} {'region':>7} {'load':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['path']:<11} {r['compile']:>8.1f} {r['sample']:>7.1f} {r['fit']:>7.1f} {r['map']:>7.2f} {r['par']:>6.2f} "
            f"{r['min_ess']:>8.0f} {r['max_rhat']:>6.3f} {r['div']:>4} {100 * r['region']:>6.1f}% {r['load']:>5.1f}"
        )
    by = {r["path"]: r for r in rows}
    print("\nTargets")
    for label in ("ours cold", "ours warm"):
        if label in by:
            t = by[label]["map"]
            flag = "PASS" if t < MAP_TARGET_S else "FAIL"
            print(f"  {flag}  {grid}×{grid} design-space map < {MAP_TARGET_S:g} s ({label}): {t:.2f} s")
    if "plain PyMC" in by and "ours warm" in by:
        a, b = by["ours warm"], by["plain PyMC"]
        print(
            f"  map speed-up over plain PyMC (sample_posterior_predictive + indicator): {b['map'] / a['map']:.1f}x; "
            f"data to map: ours warm {a['fit'] + a['map']:.1f} s, ours cold "
            f"{by['ours cold']['fit'] + by['ours cold']['map']:.1f} s, plain PyMC {b['fit'] + b['map']:.1f} s"
        )
    if "plain PyMC" in by and "ours cold" in by:
        a, b = by["ours cold"], by["plain PyMC"]
        diff = np.abs(a["map_frame"]["prob"].to_numpy() - b["map_frame"]["prob"].to_numpy())
        mc = 0.5 / np.sqrt(draws * chains)
        print(
            f"  agreement (same data, both MC): max |ΔP| {diff.max():.3f}, mean |ΔP| {diff.mean():.4f} "
            f"(MC error of each ≤ {mc:.3f} per point, plus the two posteriors' own MC)"
        )
    for r in rows:
        if r["div"] or r["max_rhat"] > 1.01:
            print(f"  note: {r['path']} has {r['div']} divergences and max r̂ {r['max_rhat']:.3f}")
    if "ours warm" in by:
        print("\nPAR (ours warm, around the best grid point):")
        print(
            by["ours warm"]["par_frame"].select("factor", "set_point", "lower", "upper", "lower_limit", "upper_limit")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--grid", type=int, default=100, help="points per factor of the temp × ph map")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-plain", action="store_true", help="skip the plain PyMC path")
    ap.add_argument("--quick", action="store_true", help="2 chains × 250 draws, a 50×50 map: a smoke run")
    a = ap.parse_args(argv)
    if a.quick:
        a.draws, a.tune, a.chains, a.grid = 250, 250, 2, 50
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # r̂ of the constant diagonal of a correlation
    print(
        f"bench_doe: draws={a.draws}, tune={a.tune}, chains={a.chains}, grid={a.grid}, seed={a.seed}; "
        f"load at start {_load()}\n{_versions()}"
    )
    kw = {"draws": a.draws, "tune": a.tune, "chains": a.chains, "grid": a.grid}
    frame = design(a.seed)
    rows = [run_ours("ours cold", frame, seed=a.seed, **kw)]
    rows.append(run_ours("ours warm", design(a.seed + 1), seed=a.seed + 1, **kw))
    if not a.no_plain:
        rows.append(run_plain(frame, seed=a.seed, **kw))
    print_table(rows, **{k: v for k, v in kw.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
