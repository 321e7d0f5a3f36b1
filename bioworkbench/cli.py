"""The ``bioworkbench`` command: thin, each subcommand turns its flags into one function call."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bioworkbench.errors import BioWorkbenchError


def demo(out: str | Path = "data/demo", *, n_batches: int = 24, seed: int = 0) -> Path:
    """Simulate the demo campaign, write it to ``out`` (replacing it), and print its summary."""
    from bioworkbench.simulate import simulate_campaign

    campaign = simulate_campaign(n_batches=n_batches, seed=seed)
    path = campaign.write(out, overwrite=True)
    print(f"demo campaign written to {path}/")
    print(campaign.describe())
    print()
    _print_frame(campaign.summary())
    return path


def simulate(
    out: str | Path, *, n_batches: int = 24, seed: int = 0, overwrite: bool = False
) -> Path:
    """Simulate a campaign and write it as a campaign folder."""
    from bioworkbench.simulate import simulate_campaign

    path = simulate_campaign(n_batches=n_batches, seed=seed).write(out, overwrite=overwrite)
    print(f"campaign written to {path}/")
    return path


def summary(folder: str | Path) -> None:
    """Read a campaign folder and print what it holds, one line per batch."""
    from bioworkbench.campaign import read_campaign

    campaign = read_campaign(folder)
    print(campaign.describe())
    print()
    _print_frame(campaign.summary())


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bioworkbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="simulate the demo campaign to a folder and summarise it")
    p.add_argument("--out", default="data/demo", help="campaign folder (default: data/demo)")
    p.add_argument("--n-batches", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("simulate", help="simulate a campaign to a folder")
    p.add_argument("out", help="campaign folder to write")
    p.add_argument("--n-batches", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("summary", help="read a campaign folder and print a summary")
    p.add_argument("folder")

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            demo(args.out, n_batches=args.n_batches, seed=args.seed)
        elif args.command == "simulate":
            simulate(args.out, n_batches=args.n_batches, seed=args.seed, overwrite=args.overwrite)
        elif args.command == "summary":
            summary(args.folder)
    except (BioWorkbenchError, FileExistsError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
