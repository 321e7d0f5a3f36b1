"""Benchmark: batch-wise PCA on 1,000 simulated batches and on-line monitoring of 100 new ones,
bioworkbench against the PyPI reference implementation pyphi-mvda (``pyphi.batch``).

Data: :func:`bioworkbench.simulate_campaign` (14 days, online records every 30 min), aligned by
:func:`bioworkbench.monitoring.align_by_time` on 200 maturity points of culture time for 8
variables (online do, pco2, ph, temperature; offline vcd, viability, glucose, lactate). The
reference set has missing values (the aborted batch ends early, flagged offline values are left
out), so both implementations fit by NIPALS with missing data. Simulation and alignment are not
part of the timed comparison (alignment is timed on its own).

Timed, on the same data for both:

- **fit**: ``BatchPCA(A, online="pmp", cv_folds=None).fit`` (the model and the per-maturity
  limits of the on-line charts, from the reference batches passed through the on-line procedure:
  pyphi's method) against ``pyphi.batch.mpca`` plus ``pyphi.batch.monitor(model, data)`` (its
  stage 1, which builds the same per-maturity limits the same way). ``BatchPCA(A).fit`` with the
  defaults (trimmed score regression, limits from 7-fold cross-validated residuals: 7 more fits)
  is timed too.
- **monitor**: ``BatchPCA.monitor`` on the 100 new batches at all 200 maturities against pyphi's
  per-batch on-line computation (``pyphi.batch._mimic_monitoring``, what ``monitor(which_batch=...)``
  runs before plotting; the plotting is left out in pyphi's favour).

pyphi's stage 1 loops over every reference batch and maturity (about 1 ms per step); with
``--reference-sample N`` (default 50) it is timed on N reference batches and scaled linearly to
all of them (the loop does the same work for every batch); ``--reference-full`` runs it all
(about 5 min). The score agreement of the two fits is printed as a check.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_mspc.py
    PYTHONPATH=. .venv/bin/python benchmarks/bench_mspc.py --quick        # 100 + 20 batches
    PYTHONPATH=. .venv/bin/python benchmarks/bench_mspc.py --reference-full
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
import warnings

import numpy as np
import polars as pl

import bioworkbench as bw
import bioworkbench.monitoring as mon

ONLINE = ["do", "pco2", "ph", "temperature"]
OFFLINE = ["vcd", "viability", "glucose", "lactate"]


def aligned_frame(n_batches: int, seed: int, grid_h: float, end_h: float) -> tuple[pl.DataFrame, float]:
    campaign = bw.simulate_campaign(n_batches, random_seed=seed, days=14.0, online_interval_min=30.0)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        frames = [
            mon.align_by_time(campaign, variables=ONLINE, grid_h=grid_h, end_h=end_h, source="online"),
            mon.align_by_time(campaign, variables=OFFLINE, grid_h=grid_h, end_h=end_h, source="offline"),
        ]
    return pl.concat(frames).sort("batch_id", "maturity", "variable"), time.perf_counter() - start


def to_pyphi(aligned: pl.DataFrame, variables: list[str]):  # -> pandas.DataFrame
    wide = aligned.pivot(on="variable", index=["batch_id", "maturity"], values="value").sort("batch_id", "maturity")
    return wide.select("batch_id", *variables).to_pandas()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-batches", type=int, default=1000)
    parser.add_argument("--n-new", type=int, default=100)
    parser.add_argument("--components", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100 reference and 20 new batches")
    parser.add_argument("--reference-sample", type=int, default=50)
    parser.add_argument("--reference-full", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n_batches, args.n_new = 100, 20
    grid_h = 1.675
    end_h = 199 * grid_h  # 200 maturity points, 0 … 333.3 h
    print(f"simulating {args.n_batches} + {args.n_new} batches (14 d, 8 variables, 200 maturities) …", flush=True)
    ref_frame, t_align = aligned_frame(args.n_batches, 1, grid_h, end_h)
    new_frame, _ = aligned_frame(args.n_new, 2, grid_h, end_h)
    variables = ref_frame["variable"].unique(maintain_order=True).to_list()
    n_missing = ref_frame["value"].null_count()
    print(f"aligned {ref_frame.height:,} rows in {t_align:.2f} s; {n_missing} missing cells in the reference set")

    a = args.components
    import scipy.stats  # noqa: F401  (imported once per process by both; pyphi at import time)

    start = time.perf_counter()
    default = mon.BatchPCA(a).fit(ref_frame)
    t_fit_default = time.perf_counter() - start
    start = time.perf_counter()
    default.monitor(new_frame)
    t_mon_default = time.perf_counter() - start
    start = time.perf_counter()
    model = mon.BatchPCA(a, online="pmp", cv_folds=None).fit(ref_frame)
    t_fit = time.perf_counter() - start
    start = time.perf_counter()
    chart = model.monitor(new_frame)
    t_mon = time.perf_counter() - start
    print(
        f"bioworkbench, defaults (TSR, 7-fold cross-validated limits): fit ({default.algorithm_}) "
        f"{t_fit_default:.2f} s, monitor {t_mon_default:.2f} s"
    )
    print(
        f"bioworkbench, like pyphi (PMP, limits from fitted residuals): fit {t_fit:.2f} s, "
        f"monitor {chart.height:,} rows {t_mon:.2f} s"
    )

    try:
        import matplotlib

        matplotlib.use("Agg")
        with contextlib.redirect_stdout(io.StringIO()):
            import pyphi.batch as phb
    except ImportError:
        print("pyphi-mvda is not installed (pip install pyphi-mvda): no reference timing")
        return 0
    ref_pd, new_pd = to_pyphi(ref_frame, variables), to_pyphi(new_frame, variables)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with quiet:
        start = time.perf_counter()
        ref_model = phb.mpca(ref_pd, a)
        t_ref_pca = time.perf_counter() - start
    # pyphi's stage 1 (limits of the on-line charts): every reference batch through the on-line procedure
    obj = phb._uf_hor_mon_loadings(dict(ref_model))
    obj.update(mx=obj["mx_ufm"], sx=obj["sx_ufm"], P=obj["P_ufm"])
    ids = ref_pd["batch_id"].unique().tolist()
    sample = ids if args.reference_full else ids[: args.reference_sample]
    with contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        if args.reference_full:
            phb.monitor(ref_model, ref_pd, shush=True)
        else:
            for b in sample:
                phb._mimic_monitoring(obj, ref_pd, b, shush=True)
        t_stage1 = (time.perf_counter() - start) * len(ids) / len(sample)
        start = time.perf_counter()
        new_ids = new_pd["batch_id"].unique().tolist()
        diags = [phb._mimic_monitoring(obj, new_pd, b, shush=True) for b in new_ids]
        t_ref_mon = time.perf_counter() - start
    t_ref_fit = t_ref_pca + t_stage1

    ours = model.scores_
    sign = np.sign(np.sum(ours * ref_model["T"], axis=0))
    agree = np.max(np.abs(ours - ref_model["T"] * sign)) / np.max(np.abs(ours))
    first = chart.filter(pl.col("batch_id") == new_ids[0]).sort("maturity")
    t_on = first.select([f"t_{i + 1}" for i in range(a)]).to_numpy()
    agree_on = np.max(np.abs(t_on - diags[0]["t_mon"] * sign)) / np.max(np.abs(diags[0]["t_mon"]))
    stage1 = "all batches" if args.reference_full else f"{len(sample)} batches, scaled to {len(ids)}"
    print(
        f"pyphi-mvda:   fit {t_ref_pca:.2f} s + on-line limits {t_stage1:.1f} s ({stage1}), monitor {t_ref_mon:.2f} s"
    )
    print(f"agreement: scores max rel diff {agree:.1e}; on-line scores of {new_ids[0]} {agree_on:.1e}")
    print()
    print(f"{'step':<36}{'bioworkbench':>14}{'pyphi-mvda':>14}{'speed-up':>10}")
    rows = [
        ("fit + on-line limits (like pyphi)", t_fit, t_ref_fit),
        ("fit + on-line limits (defaults)", t_fit_default, t_ref_fit),
        ("PCA only (like pyphi)", t_fit, t_ref_pca),
        (f"monitor {args.n_new} batches x 200", t_mon, t_ref_mon),
        ("total (like pyphi)", t_fit + t_mon, t_ref_fit + t_ref_mon),
        ("total (defaults)", t_fit_default + t_mon_default, t_ref_fit + t_ref_mon),
    ]
    for name, ours_t, ref_t in rows:
        print(f"{name:<36}{ours_t:>13.2f}s{ref_t:>13.2f}s{ref_t / ours_t:>9.1f}x")
    ok = max(t_fit + t_mon, t_fit_default + t_mon_default) < t_ref_fit + t_ref_mon
    print(f"\ntarget (faster than the reference): {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
