"""Benchmark: the 24 demo batch reports, serially and through the Dask runner; one report's time.

The issue's targets, on a 2-core machine:

* rendering the 24 demo batch reports through :func:`bioworkbench.reports.run_many` on 2 workers
  is at least 1.7x faster than rendering them one after the other with
  :func:`bioworkbench.reports.run_report`;
* one batch report takes under 20 s from ``bioworkbench report batch_report -f FILE`` to the
  finished HTML (the command's wall time, measured as a subprocess, best of 3; the kernel is
  registered beforehand, as ``make kernel`` does once).

The demo campaign is ``data/demo`` when it exists, otherwise it is simulated (24 batches, seed 0)
into a temporary folder. Parameter files pointing at it are written to a temporary folder
(``parameters/batch_report/*.yaml`` in the project use the relative path ``data/demo``). One
report is rendered first and not timed, so that every timed run finds the files in the OS cache.

After the table, the time of one report is broken down: the command's own start, the kernel's
start, each notebook cell (papermill's durations in the executed notebook), hashing the inputs
(twice: before the kernel and after), the HTML rendering (with its sanitising) and the manifest, so
that a missed target says where the time goes.

Usage::

    .venv/bin/python benchmarks/bench_reports.py                 # the full benchmark
    .venv/bin/python benchmarks/bench_reports.py --n-batches 4   # a smoke run
    .venv/bin/python benchmarks/bench_reports.py --out /tmp/bench --keep

Missed targets are reported as FAIL in the table; the exit status is 1 only when a report failed.

Figures measured once, moved here from the docstrings and comments of the runner (issue 15: a
measurement belongs to the benchmark that can repeat it, with its date and machine, not to code):

* importing ``rfc3987_syntax`` (jsonschema's IRI format checkers, imported by nbformat) builds a
  Lark grammar: about 2.5 s of CPU in every report kernel and every runner process, out of a 14 s
  batch report; :func:`bioworkbench._imports.without_iri_grammar` skips it (was in the docstring of
  ``bioworkbench/_imports.py`` and a comment of ``run_report``);
* a graceful kernel shutdown waits about 1.5 s for the kernel's atexit hooks and interpreter
  teardown; papermill's ``shutdown_kernel="immediate"`` kills its process group instead (was a
  comment of ``run_report`` and the docstring of
  ``tests/test_reports.py::test_no_kernel_or_kernel_child_outlives_its_run``);
* the Dask workers' statistical profiler costs about 0.5 s of CPU per report, and the quiet cluster
  settings (``bioworkbench.reports.parallel._QUIET_CLUSTER``) halve the CPU the runner's own
  processes use (was a comment above those settings).

The breakdown ("where the time of one report goes") times the runner's imports and the kernel's
shutdown on the machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_TARGET = 1.7
SINGLE_TARGET_S = 20.0
N_WORKERS = 2
SINGLE_REPEATS = 3


def _load() -> str:
    """The 1-minute load average: above the number of cores, other work is slowing the timings."""
    return f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"


def demo_campaign(workdir: Path) -> Path:
    """``data/demo`` if it holds a campaign, else the demo simulated into ``workdir``."""
    demo = ROOT / "data" / "demo"
    if (demo / "batches.parquet").exists() or (demo / "batches.csv").exists():
        return demo.resolve()
    import bioworkbench as bw

    print(f"{demo} not found: simulating the demo campaign (24 batches, seed 0) ...", flush=True)
    return bw.simulate_campaign(n_batches=24, random_seed=0).write(workdir / "demo")


def write_parameter_files(campaign: Path, folder: Path, n_batches: int | None) -> list[Path]:
    """One ``batch_report/<batch>.yaml`` per batch of ``campaign`` (the first ``n_batches``)."""
    import polars as pl

    ids = pl.read_parquet(campaign / "batches.parquet", columns=["batch_id"])["batch_id"].to_list()
    ids = sorted(ids)[:n_batches] if n_batches else sorted(ids)
    target = folder / "batch_report"
    target.mkdir(parents=True, exist_ok=True)
    files = []
    for b in ids:
        f = target / f"{b}.yaml"
        f.write_text(yaml.safe_dump({"campaign": str(campaign), "batch_id": b}))
        files.append(f)
    return files


def cli() -> list[str]:
    exe = Path(sys.executable).with_name("bioworkbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bioworkbench"]


def time_serial(files: list[Path], out: Path, kernel: str | None) -> tuple[float, list[str]]:
    from bioworkbench.reports import run_report

    t0 = time.perf_counter()
    statuses = []
    for f in files:
        res = run_report("batch_report", parameter_file=f, output_dir=out, kernel=kernel, raise_on_failure=False)
        statuses.append(res.status)
    return time.perf_counter() - t0, statuses


def time_parallel(folder: Path, out: Path, kernel: str | None) -> tuple[float, list[str]]:
    from bioworkbench.reports import run_many

    t0 = time.perf_counter()
    results = run_many([folder], output_dir=out, n_workers=N_WORKERS, kernel=kernel, progress=False)
    return time.perf_counter() - t0, [r["status"] for r in results]


def time_command(file: Path, out: Path, kernel: str | None) -> tuple[float, Path | None, str]:
    """Wall time of ``bioworkbench report batch_report -f FILE -o OUT`` and the run folder."""
    args = [*cli(), "report", "batch_report", "-f", str(file), "-o", str(out)]
    if kernel:
        args += ["--kernel", kernel]
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    runs = sorted((out / "batch_report").glob("*/report.html"))
    if proc.returncode != 0 or not runs:
        return seconds, None, proc.stderr.strip()
    return seconds, runs[-1].parent, proc.stdout.strip()


_INSTRUMENTED = r"""
import json, sys, time
t_start = time.perf_counter()
from bioworkbench import reports
from bioworkbench.reports import run  # run_report looks its steps up in its own module
from bioworkbench._imports import without_iri_grammar
with without_iri_grammar():  # as run_report imports it
    import papermill

times = {}

def timed(owner, name, label):
    fn = getattr(owner, name)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            times[label] = times.get(label, 0.0) + time.perf_counter() - t0
    setattr(owner, name, wrapper)

timed(run, "check_parameters", "checks before the kernel (parameters, campaign, batch)")
timed(run, "_check_kernel", "kernel spec look-up")
timed(papermill, "execute_notebook", "papermill: kernel start, cells, shutdown, notebook written")
timed(run, "hash_inputs", "sha256 of the inputs (before the kernel and after it)")
timed(run, "render_html", "HTML rendering (sanitising, nbconvert, CDN inlining)")
timed(run, "build_manifest", "manifest (versions, environment, git)")
timed(run, "write_index", "index.html")
t_import = time.perf_counter() - t_start
res = reports.run_report("batch_report", parameter_file=sys.argv[1], output_dir=sys.argv[2],
                         kernel=sys.argv[3] if len(sys.argv) > 3 else None)
times = {"imports of the runner (bioworkbench.reports, papermill)": t_import, **times}
times["run_report total"] = time.perf_counter() - t_start - t_import
print(json.dumps({"times": times, "run_dir": str(res.run_dir)}))
"""

_KERNEL_STEPS = (
    ("import bioworkbench as bw", "import bioworkbench"),
    ("import bokeh.plotting", "import bokeh"),
    ("import holoviews", "import holoviews"),
    ("import panel", "import panel"),
    ("bw.plots.setup()", "bw.plots.setup() (extension with inline BokehJS, hvplot.polars)"),
)


def breakdown(file: Path, work: Path, kernel: str | None) -> list[tuple[str, float]]:
    """Where the time of one report goes (seconds per step), from a fresh process."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    from bioworkbench import reports

    steps: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import bioworkbench.cli"], check=True)
    steps.append(("python start + import bioworkbench.cli (a separate process)", time.perf_counter() - t0))
    # one report in a fresh process, each step of run_report timed
    args = [sys.executable, "-c", _INSTRUMENTED, str(file), str(work)] + ([kernel] if kernel else [])
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    steps += [(k, v) for k, v in out["times"].items()]
    steps.append(("process wall time (python start to exit)", wall))
    # inside papermill: the cells as papermill timed them; the rest is kernel start and shutdown
    run_dir = Path(out["run_dir"])
    nb = nbformat.read(run_dir / "batch_report.ipynb", as_version=4)
    cells = 0.0
    for i, cell in enumerate(nb.cells):
        d = cell.metadata.get("papermill", {}).get("duration")
        if cell.cell_type != "code" or d is None:
            continue
        cells += d
        last = cell.source.strip().splitlines()[-1][:58] if cell.source.strip() else ""
        steps.append((f"  cell {i:>2}: {last}", d))
    pm_total = out["times"]["papermill: kernel start, cells, shutdown, notebook written"]
    steps.append(("  papermill minus cells (kernel start/shutdown, writing the notebook)", pm_total - cells))
    size = (run_dir / "batch_report.ipynb").stat().st_size / 1e6
    html = (run_dir / "report.html").stat().st_size / 1e6
    steps.append((f"  (executed notebook {size:.1f} MB, report.html {html:.1f} MB)", float("nan")))
    # the first cell's imports, one by one, in a fresh kernel
    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name=kernel or reports.KERNEL_NAME)
    steps.append(("fresh kernel: start until it answers", time.perf_counter() - t0))
    try:
        for code, label in _KERNEL_STEPS:
            t0 = time.perf_counter()
            kc.execute_interactive(code, timeout=120, silent=True)
            steps.append((f"  fresh kernel: {label}", time.perf_counter() - t0))
    finally:
        t0 = time.perf_counter()
        kc.stop_channels()
        km.shutdown_kernel(now=True)  # as run_report does (papermill's shutdown_kernel="immediate")
        steps.append(("fresh kernel: shutdown (killed)", time.perf_counter() - t0))
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-batches", type=int, default=None, help="first N batches only")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--kernel", default=os.environ.get("BW_KERNEL"))
    args = parser.parse_args(argv)

    from bioworkbench.reports.run import _check_kernel

    _check_kernel(args.kernel or "bioworkbench")
    work = args.out or Path(tempfile.mkdtemp(prefix="bw-bench-reports-"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    try:
        campaign = demo_campaign(work)
        params = work / "parameters"
        files = write_parameter_files(campaign, params, args.n_batches)
        n = len(files)
        print(
            f"bench_reports: {n} batch reports of {campaign} on {os.cpu_count()} cores "
            f"({platform.python_version()}, {platform.machine()}); work folder {work}",
            flush=True,
        )

        from bioworkbench.reports import run_report

        t0 = time.perf_counter()
        run_report("batch_report", parameter_file=files[0], output_dir=work / "warmup", kernel=args.kernel)
        print(f"warm-up report (not timed in the table): {time.perf_counter() - t0:.1f} s", flush=True)

        serial_s, serial_status = time_serial(files, work / "serial", args.kernel)
        print(f"serial:   {n} reports in {serial_s:.1f} s{_load()}", flush=True)
        parallel_s, parallel_status = time_parallel(params, work / "parallel", args.kernel)
        print(f"parallel: {n} reports in {parallel_s:.1f} s on {N_WORKERS} workers{_load()}", flush=True)
        singles = []
        for i in range(SINGLE_REPEATS):
            single_s, run_dir, said = time_command(files[0], work / f"single{i}", args.kernel)
            singles.append(single_s)
            print(
                f"command:  1 report in {single_s:.1f} s{_load()}: {said.splitlines()[0] if said else ''}",
                flush=True,
            )
            if run_dir is None:
                break
        single_s = min(singles)

        failed = [s for s in serial_status + parallel_status if s != "completed"]
        ratio = serial_s / parallel_s
        rows = [
            ("serial, run_report loop", f"{serial_s:.1f} s", f"{serial_s / n:.1f} s/report", ""),
            (f"Dask run_many, {N_WORKERS} workers", f"{parallel_s:.1f} s", f"{parallel_s / n:.1f} s/report", ""),
            ("speed-up serial / parallel", f"{ratio:.2f}x", f">= {SPEEDUP_TARGET}x",
             "PASS" if ratio >= SPEEDUP_TARGET else "FAIL"),
            (f"one report, command to HTML (best of {len(singles)})", f"{single_s:.1f} s", f"< {SINGLE_TARGET_S:.0f} s",
             "PASS" if run_dir is not None and single_s < SINGLE_TARGET_S else "FAIL"),
            ("reports completed", f"{2 * n - len(failed)} of {2 * n}", "all",
             "PASS" if not failed else "FAIL"),
        ]  # fmt: skip
        width = max(len(r[0]) for r in rows)
        print()
        print(f"{'measure':<{width}}  {'value':>12}  {'target / per report':>20}  result")
        for name, value, target, result in rows:
            print(f"{name:<{width}}  {value:>12}  {target:>20}  {result}")
        load1 = os.getloadavg()
        print(
            f"\nload average (1 min) before / after: {load0[0]:.2f} / {load1[0]:.2f} "
            f"(other work on the machine slows every timing)"
        )

        print("\nwhere the time of one report goes:")
        for step, seconds in breakdown(files[0], work / "breakdown", args.kernel):
            print(f"  {seconds:7.2f} s  {step}" if seconds == seconds else f"            {step}")
        return 1 if failed or run_dir is None else 0
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep or args.out is not None:
            print(f"\nkept {work}")


if __name__ == "__main__":
    sys.exit(main())
