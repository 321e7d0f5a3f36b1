"""The ``bioworkbench`` command: thin, each subcommand turns its flags into one function call."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from bioworkbench.errors import ArgumentError, BioWorkbenchError


def _refuse_non_empty(out: str | Path, *, overwrite: bool) -> None:
    """Refuse to write into a file, or into a folder that holds anything, unless ``overwrite``.

    Raises
    ------
    FileExistsError
        Saying which folder, what it holds and the flag that replaces it.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder; choose another --out folder.")
    if out.is_dir() and not overwrite:
        held = sorted(p.name for p in out.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise FileExistsError(
                f"{out} is not empty (it holds {shown}); nothing was written. "
                "Pass --overwrite to replace its contents, or choose another --out folder."
            )


def _running(items: list[str]) -> dict[str, float]:
    """``["B14=5", "B22=7.5"]`` -> ``{"B14": 5.0, "B22": 7.5}``; a malformed item is an ArgumentError."""
    out: dict[str, float] = {}
    for item in items:
        batch, sep, day = item.partition("=")
        try:
            out[batch.strip()] = float(day)
        except ValueError:
            sep = ""
        if not sep or not batch.strip():
            raise ArgumentError(f"--running {item!r}: expected BATCH=DAY, e.g. --running B14=5 (DAY a culture day).")
    return out


def demo(
    out: str | Path = "data/demo",
    *,
    n_batches: int = 24,
    random_seed: int = 0,
    overwrite: bool = False,
    running_days: Mapping[str, float] | None = None,
) -> Path:
    """Simulate the demo campaign, write it to ``out``, and print its summary (``bioworkbench demo``).

    Parameters
    ----------
    out
        The campaign folder to write.
    n_batches, random_seed
        As for :func:`bioworkbench.simulate_campaign` (the command's ``--n-batches`` and ``--seed``).
    overwrite
        Replace the contents of a non-empty ``out``.
    running_days
        ``{batch_id: culture day}``: write these batches as still running, known up to that day
        (:meth:`Campaign.as_of`; the command's ``--running B14=5``), e.g. for the operator dashboard.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or a non-empty folder and ``overwrite`` is false (nothing is written).
    """
    from bioworkbench.simulate import simulate_campaign

    _refuse_non_empty(out, overwrite=overwrite)
    campaign = simulate_campaign(n_batches=n_batches, random_seed=random_seed)
    if running_days:
        campaign = campaign.as_of({b: 24.0 * float(d) for b, d in running_days.items()})
    path = campaign.write(out, overwrite=overwrite)
    print(f"demo campaign written to {path}/")
    print(campaign.describe())
    print()
    _print_frame(campaign.summary())
    return path


def dataset(name: str, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write a shipped campaign as a campaign folder and print its summary (``bioworkbench dataset``).

    Parameters
    ----------
    name
        ``demo``, ``nistcho`` or ``ambr250`` (:mod:`bioworkbench.datasets`).
    out
        The campaign folder to write.
    overwrite
        Replace the contents of a non-empty ``out``.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or a non-empty folder and ``overwrite`` is false (nothing is written).
    ArgumentError
        An unknown ``name``.
    """
    from bioworkbench import datasets
    from bioworkbench.io import read_campaign

    _refuse_non_empty(out, overwrite=overwrite)
    path = datasets.write(name, out, overwrite=overwrite)
    campaign = read_campaign(path)
    print(f"dataset {name} written to {path}/")
    print(campaign.describe())
    print()
    _print_frame(campaign.summary())
    return path


def simulate(out: str | Path, *, n_batches: int = 24, random_seed: int = 0, overwrite: bool = False) -> Path:
    """Simulate a campaign and write it as a campaign folder (``bioworkbench simulate``).

    Parameters
    ----------
    out
        The campaign folder to write.
    n_batches, random_seed
        As for :func:`bioworkbench.simulate_campaign` (the command's ``--n-batches`` and ``--seed``).
    overwrite
        Replace the contents of a non-empty ``out``.

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    FileExistsError
        ``out`` is a file, or a non-empty folder and ``overwrite`` is false (nothing is written).
    """
    from bioworkbench.simulate import simulate_campaign

    _refuse_non_empty(out, overwrite=overwrite)
    path = simulate_campaign(n_batches=n_batches, random_seed=random_seed).write(out, overwrite=overwrite)
    print(f"campaign written to {path}/")
    return path


def summary(folder: str | Path) -> None:
    """Read a campaign folder and print what it holds, one line per batch (``bioworkbench summary``).

    Parameters
    ----------
    folder
        The campaign folder.

    Raises
    ------
    DataReadError, SchemaError
        As :func:`bioworkbench.read_campaign`.
    """
    from bioworkbench.io import read_campaign

    campaign = read_campaign(folder)
    print(campaign.describe())
    print()
    _print_frame(campaign.summary())


def report(
    name: str,
    *,
    parameter_file: str | None = None,
    parameters: dict | None = None,
    output_dir: str = "reports",
    kernel: str | None = None,
) -> Path:
    """Run one report notebook and print where its HTML and the index are (``bioworkbench report``).

    The kernel is forked by a report server an earlier command left running, if one of the same code,
    packages and settings is there; otherwise the report runs in a plain kernel and then leaves such a
    server for the next command (it exits after 15 idle minutes; :mod:`bioworkbench.reports.warmserver`,
    ``BW_REPORT_SERVER=0`` turns it off).

    Parameters
    ----------
    name
        The report notebook (``notebooks/NAME.ipynb``).
    parameter_file
        A YAML file of parameters.
    parameters
        Parameters given on the command line (they override the file's).
    output_dir
        Where runs and the index are written.
    kernel
        The Jupyter kernel (default: the runner's).

    Returns
    -------
    pathlib.Path
        The run's folder.

    Raises
    ------
    ConfigError, ReportError
        As :func:`bioworkbench.reports.run_report`.
    """
    from bioworkbench.reports import run_report

    res = run_report(
        name,
        parameter_file=parameter_file,
        parameters=parameters,
        output_dir=output_dir,
        kernel=kernel,
        fork_kernel="warm",  # a kernel forked by a server an earlier command left (reports.warmserver)
    )
    print(f"{res.status}: {res.html}")
    print(f"index: {Path(output_dir).resolve() / 'index.html'}")
    return res.run_dir


def run(
    paths: list[str],
    *,
    output_dir: str = "reports",
    scheduler: str | None = None,
    workers: int | None = None,
    kernel: str | None = None,
    changed: bool = False,
) -> int:
    """Run many reports in parallel through Dask and print a line per failure (``bioworkbench run``).

    Parameters
    ----------
    paths
        YAML parameter files, or folders laid out as ``parameters/<report>/*.yaml``.
    output_dir
        Where runs and the index are written.
    scheduler
        The address of an existing Dask scheduler (default: a local cluster).
    workers
        Local workers (default: one per core).
    kernel
        The Jupyter kernel.
    changed
        Run only the reports whose inputs changed since their last completed run, or whose last
        run did not complete (:func:`bioworkbench.reports.changed.changed_reports`); print a line
        per report skipped, and why.

    Returns
    -------
    int
        The number of runs that did not complete.
    """
    from bioworkbench.reports import run_many

    if changed:
        from bioworkbench.reports.changed import changed_reports

        decisions = changed_reports(paths, output_dir=output_dir, kernel=kernel)
        for d in decisions:
            print(d)
        todo = [str(d.file) for d in decisions if d.run]
        print(f"{len(todo)} of {len(decisions)} reports to run; {len(decisions) - len(todo)} unchanged, skipped.")
        if not todo:
            return 0
        paths = todo
    results = run_many(paths, output_dir=output_dir, scheduler=scheduler, n_workers=workers, kernel=kernel)
    failed = [r for r in results if r["status"] != "completed"]
    print(
        f"{len(results) - len(failed)} of {len(results)} reports completed; "
        f"index: {Path(output_dir).resolve() / 'index.html'}"
    )
    for r in failed:
        err = r.get("error") or {}
        print(
            f"  {r['status']}: {r['file']}: {err.get('ename')}: {err.get('evalue')}",
            file=sys.stderr,
        )
    return len(failed)


def serve(
    campaign: str | Path | None = None,
    *,
    store: str | None = None,
    port: int = 5006,
    address: str = "127.0.0.1",
    refresh: float = 60.0,
    forecast: bool = True,
    forecast_draws: int = 1000,
) -> None:
    """Serve the operator dashboard of a campaign folder or store until interrupted (``bioworkbench serve``).

    Parameters
    ----------
    campaign
        The campaign folder, re-read when its files change.
    store
        Instead of a folder, a campaign store's URL, re-read when something was added to it.
    port, address
        Where to listen (127.0.0.1: this computer only).
    refresh
        Seconds between checks of the folder or store for new data.
    forecast, forecast_draws
        Compute harvest titer forecasts in the background, with this many draws per chain.

    Raises
    ------
    DataReadError, SchemaError
        The folder or store cannot be read.
    ArgumentError
        Both or neither of ``campaign`` and ``store``.
    """
    from bioworkbench.interactive.dashboard import serve as serve_dashboard

    serve_dashboard(
        campaign,
        store=store,
        port=port,
        address=address,
        refresh=refresh,
        forecast=forecast,
        forecast_draws=forecast_draws,
    )


def ingest(
    paths: list[str],
    *,
    store: str,
    batch_from: str | None = None,
    column_map: str | None = None,
    timezone: str | None = None,
) -> bool:
    """Add what is new in files to a store, one file at a time; print what each file did.

    Parameters
    ----------
    paths
        Instrument exports, LIMS quality tables, campaign folders, or (with ``column_map``) wide
        exports (see :func:`bioworkbench.database.ingest_files`).
    store
        The store's URL (``duckdb:///data/plant.duckdb``, ``postgresql:///bw?host=/run/postgresql``).
    batch_from
        Pattern mapping instrument sample IDs to batch and day.
    column_map
        Read the files as wide exports with this column map.
    timezone
        IANA zone of timestamps written without an offset.

    Returns
    -------
    bool
        Whether some file failed (it is reported on stderr; the other files are still ingested).
    """
    from bioworkbench.database import ingest_files, open_store

    failed = False
    with open_store(store) as db:
        for path in paths:
            try:
                (result,) = ingest_files(db, [path], batch_from=batch_from, column_map=column_map, timezone=timezone)
            except BioWorkbenchError as exc:
                print(f"{path}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failed = True
                continue
            print(result)
    return failed


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _print_frame(df) -> None:
    import polars as pl

    with pl.Config(
        tbl_rows=200,
        tbl_cols=20,
        tbl_width_chars=160,
        float_precision=2,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        print(df)


def _parser() -> argparse.ArgumentParser:
    """The command line: one subparser per subcommand, each flag one argument of its function."""
    parser = argparse.ArgumentParser(prog="bioworkbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate the demo campaign to a folder and summarise it")
    p.add_argument("--out", default="data/demo", help="campaign folder (default: data/demo)")
    p.add_argument("--n-batches", type=int, default=24)
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out folder")
    p.add_argument(
        "--running",
        action="append",
        default=[],
        metavar="BATCH=DAY",
        help="write BATCH as still running, known up to culture day DAY (repeatable), e.g. --running B14=5",
    )

    p = sub.add_parser("dataset", help="write a shipped campaign (demo, nistcho, ambr250) to a folder and summarise it")
    p.add_argument("name", choices=["demo", "nistcho", "ambr250"], help="the campaign")
    p.add_argument("--out", required=True, help="campaign folder to write")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of a non-empty --out folder")

    p = sub.add_parser("simulate", help="simulate a campaign to a folder")
    p.add_argument("out", help="campaign folder to write")
    p.add_argument("--n-batches", type=int, default=24)
    p.add_argument("--seed", type=int, default=0, help="random seed of the simulation (default: 0)")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("summary", help="read a campaign folder and print a summary")
    p.add_argument("folder")

    p = sub.add_parser("report", help="run one report notebook with papermill and render it to HTML")
    p.add_argument("name", help="report notebook name (notebooks/NAME.ipynb)")
    p.add_argument("-f", "--file", dest="parameter_file", help="YAML parameter file")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        default=[],
        help="set a parameter (VALUE is read as YAML: 3, 0.5, true, text)",
    )
    p.add_argument("-o", "--output", default="reports", help="output folder (default: reports/)")
    p.add_argument("--kernel", default=None, help="Jupyter kernel (default: bioworkbench)")

    p = sub.add_parser("run", help="run many reports in parallel (Dask) from parameter files or folders")
    p.add_argument("paths", nargs="+", help="YAML files or folders laid out as parameters/<report>/*.yaml")
    p.add_argument("-o", "--output", default="reports")
    p.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    p.add_argument("--kernel", default=None)
    p.add_argument(
        "--changed",
        action="store_true",
        help="run only the reports whose inputs (files, store data, notebook, parameters) changed since their last "
        "completed run, or whose last run failed; say which are skipped and why",
    )

    p = sub.add_parser(
        "ingest",
        help="add what is new in instrument exports, LIMS quality tables or wide exports to a store",
        description="Add files to a campaign store (DuckDB or PostgreSQL). A file already ingested (same sha256) is "
        "skipped and said so; a corrected value supersedes the old one, which stays in the store's history.",
    )
    p.add_argument(
        "paths", nargs="+", metavar="FILES", help="instrument exports, LIMS quality CSV/Excel, campaign folders"
    )
    p.add_argument(
        "--store", default="duckdb:///data/plant.duckdb", help="store URL (default: duckdb:///data/plant.duckdb)"
    )
    p.add_argument(
        "--batch-from",
        default=None,
        metavar="REGEX",
        help="sample ID pattern, e.g. '(?P<batch_id>B\\d+)-D(?P<day>\\d+)'",
    )
    p.add_argument(
        "--map",
        dest="column_map",
        default=None,
        metavar="NAME",
        help="read the files as wide exports with this column map",
    )
    p.add_argument("--timezone", default=None, help="IANA zone of timestamps written without an offset")

    p = sub.add_parser(
        "serve",
        help="serve the operator dashboard of a campaign folder or store in the browser",
        description="Serve the operator dashboard: running batches as cards (culture day, latest values, "
        "status against the golden batch, open exceptions, harvest titer forecast) and a page per batch. "
        "The folder is re-read when its files change, the store when something was added to it. "
        "Nothing is loaded from the internet.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--campaign", default="data/demo", help="campaign folder (default: data/demo)")
    source.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="instead of a folder, a campaign store (duckdb:///data/plant.duckdb or postgresql://user@host/db), "
        "re-read when its latest ingest changes",
    )
    p.add_argument("--port", type=int, default=5006, help="port (default: 5006)")
    p.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)"
    )
    p.add_argument("--refresh", type=float, default=60.0, help="seconds between checks for new data (default: 60)")
    p.add_argument("--no-forecast", action="store_true", help="do not compute harvest titer forecasts")
    p.add_argument(
        "--forecast-draws", type=int, default=1000, help="posterior draws per chain of the forecasts (default: 1000)"
    )

    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``bioworkbench`` command: parse ``argv`` and call the subcommand's function.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0, or 1 when a subcommand failed with a bioworkbench error or refused to
        overwrite a folder (the error is printed to stderr) or, for ``run``, some report failed.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            demo(
                args.out,
                n_batches=args.n_batches,
                random_seed=args.seed,
                overwrite=args.overwrite,
                running_days=_running(args.running),
            )
        elif args.command == "dataset":
            dataset(args.name, args.out, overwrite=args.overwrite)
        elif args.command == "simulate":
            simulate(args.out, n_batches=args.n_batches, random_seed=args.seed, overwrite=args.overwrite)
        elif args.command == "summary":
            summary(args.folder)
        elif args.command == "report":
            report(
                args.name,
                parameter_file=args.parameter_file,
                parameters={k: _parse_value(v) for k, v in args.parameter},
                output_dir=args.output,
                kernel=args.kernel,
            )
        elif args.command == "serve":
            serve(
                None if args.store is not None else args.campaign,
                store=args.store,
                port=args.port,
                address=args.address,
                refresh=args.refresh,
                forecast=not args.no_forecast,
                forecast_draws=args.forecast_draws,
            )
        elif args.command == "ingest":
            return (
                1
                if ingest(
                    args.paths,
                    store=args.store,
                    batch_from=args.batch_from,
                    column_map=args.column_map,
                    timezone=args.timezone,
                )
                else 0
            )
        elif args.command == "run":
            return (
                1
                if run(
                    args.paths,
                    output_dir=args.output,
                    scheduler=args.scheduler,
                    workers=args.workers,
                    kernel=args.kernel,
                    changed=args.changed,
                )
                else 0
            )
    except (BioWorkbenchError, FileExistsError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
