"""Campaigns shipped with the package: two real campaigns (MIT) and the simulated demo.

``bw.datasets.nistcho()`` and ``bw.datasets.ambr250()`` read real data files kept in this folder
(each beside its ``LICENSE`` and ``SOURCE.md``) through the bundled column maps, offline;
``bw.datasets.demo()`` simulates the 24-batch demo campaign. ``bw.datasets.write(name, folder)``
writes any of them as a campaign folder for the reports (``bioworkbench dataset NAME --out FOLDER``).

========  ==================================================================================
name      what
========  ==================================================================================
demo      simulated CHO fed-batch campaign (mAb, 2 L, 24 batches with a small design)
nistcho   34 NISTCHO fed-batch cultures (Vi-CELL VCD, viability, diameter; 0-265 h);
          7 feeding strategies (``cpp_feeding``) in 2 experiments (``cpp_experiment``);
          csbg/DGTX_feeding_strategies_nistcho, MIT
ambr250   12 E. coli L-tryptophan fed-batches in Ambr 250 reactors (OD600, dry cell weight,
          glucose, organic acids, ammonium, tryptophan; volumes of samples, feed and base);
          2 strains (``cpp_strain``) x control/scale-down (``cpp_condition``) x 3;
          jonruh/TP-scale-down, MIT
========  ==================================================================================

The observations keep their lineage (``source_file``, ``source_line``); ``source_file`` and the
campaign's ``sources`` name the files inside the package (``bioworkbench/datasets/<name>/<file>``),
so a campaign folder written on one machine reads the same on another.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_choice, require_number

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["NAMES", "ambr250", "demo", "load", "nistcho", "source", "write"]

#: the names :func:`load`, :func:`write` and ``bioworkbench dataset`` accept
NAMES = ("demo", "nistcho", "ambr250")

# real datasets: folder in this package, the data file read, the bundled column map
_REAL = {
    "nistcho": ("nistcho", "vicell_growth_fb2_fb4_combined.csv", "nistcho"),
    "ambr250": ("ambr250", "exponential_fed-batch_scale-down_offline_data.xlsx", "ambr250"),
}


def _read_real(name: str) -> Campaign:
    """Read a shipped real dataset and make its lineage package-relative."""
    from bioworkbench.campaign import Campaign
    from bioworkbench.io.wide import read_wide

    folder, data_file, cmap = _REAL[name]
    root = resources.files("bioworkbench")
    with resources.as_file(root.joinpath("datasets", folder)) as here:
        campaign = read_wide(here / data_file, cmap)
        package_root = Path(here).parents[2]  # .../<root>/bioworkbench/datasets/<folder> -> <root>

    def rel(path: str) -> str:
        p = Path(path)
        try:
            return p.resolve().relative_to(package_root.resolve()).as_posix()
        except ValueError:
            return p.name

    sources = {rel(p): sha for p, sha in campaign.sources.items()}
    observations = campaign.observations.with_columns(
        source_file=pl.col("source_file").replace_strict(
            {p: rel(p) for p in campaign.observations["source_file"].unique().drop_nulls().to_list()},
            default=pl.col("source_file"),
        )
    )
    frames = campaign.frames()
    frames["observations"] = observations
    # the frames were validated by read_wide; only the lineage text changed
    out = Campaign(
        **frames,
        name=campaign.name,
        description=campaign.description,
        sources=sources,
        validate=False,
    )
    out._validated = campaign._validated  # so that a folder written from it is signed as validated
    return out


def nistcho() -> Campaign:
    """The NISTCHO fed-batch campaign: 34 CHO cultures, 7 feeding strategies in 2 experiments.

    Returns
    -------
    Campaign
        34 batches (``FB2-A-R1`` … ``FB4-G-R3``: experiment-strategy-replicate), 927 offline
        observations of ``vcd`` (1e6 cells/mL), ``viability`` (%) and ``diameter`` (µm) at 0-265 h.
        Batches: product cNISTmAb, process fed-batch, status completed, start date, ``cpp_feeding``
        (strategy A-G), ``cpp_experiment`` (FB2, FB4), ``replicate``; no scale or volume is known.

    Notes
    -----
    Real data, MIT (csbg/DGTX_feeding_strategies_nistcho); see ``source("nistcho")``.
    No product concentration was measured, so product outcomes are absent.
    """
    return _read_real("nistcho")


def ambr250() -> Campaign:
    """The Ambr 250 E. coli L-tryptophan campaign: 12 reactors, 2 strains x control/scale-down x 3.

    Returns
    -------
    Campaign
        12 batches (``R05`` … ``R16``), 5 offline samples each at about 12-77 h: ``od600`` (AU),
        ``cdw`` (g/L), ``glucose``, organic acids, ``ammonium``, ``phosphate``, ``tryptophan`` (all
        mmol/L), working ``volume`` (mL); sample, feed and base volumes as events; the feed medium's
        glucose, phosphate and citrate. Batches: product L-tryptophan, scale 0.25 L, process
        fed-batch, status completed, initial volume 100 mL, ``cpp_strain``, ``cpp_condition``,
        ``cpp_temperature`` (°C) and ``cpp_ph`` set points.

    Notes
    -----
    Real data, MIT (jonruh/TP-scale-down); see ``source("ambr250")``. Kinetics default to dry
    cell weight as the biomass (μ in 1/h, q-rates per g dry weight).
    """
    return _read_real("ambr250")


def demo(*, n_batches: int = 24, random_seed: int = 0, seed: int | None = None) -> Campaign:
    """The simulated demo campaign (:func:`bioworkbench.simulate_campaign`).

    Parameters
    ----------
    n_batches
        Number of batches.
    random_seed
        Seed of the simulation; the same seed gives an identical campaign.
    seed
        Deprecated name of ``random_seed``.

    Returns
    -------
    Campaign

    Raises
    ------
    ArgumentError
        ``n_batches`` is not an integer >= 1 or ``random_seed`` not an integer >= 0.

    Warns
    -----
    DeprecationWarning
        When called with ``seed=``; use ``random_seed=``.
    """
    from bioworkbench.simulate import simulate_campaign

    argument = "random_seed"
    if seed is not None:
        warnings.warn("datasets.demo(seed=...) is deprecated; use random_seed=...", DeprecationWarning, stacklevel=2)
        random_seed, argument = seed, "seed"
    n_batches = require_number(n_batches, function="datasets.demo", argument="n_batches", minimum=1, integer=True)
    random_seed = require_number(random_seed, function="datasets.demo", argument=argument, minimum=0, integer=True)
    return simulate_campaign(n_batches=n_batches, random_seed=random_seed)


def load(name: str) -> Campaign:
    """A shipped campaign by name.

    Parameters
    ----------
    name
        One of :data:`NAMES`.

    Returns
    -------
    Campaign

    Raises
    ------
    ArgumentError
        ``name`` is not one of :data:`NAMES` (the message lists them).
    """
    name = require_choice(name, NAMES, function="datasets.load", argument="name")
    return {"demo": demo, "nistcho": nistcho, "ambr250": ambr250}[name]()


def source(name: str) -> str:
    """Where a real dataset comes from, its licence and what was copied.

    Parameters
    ----------
    name
        ``"nistcho"`` or ``"ambr250"``.

    Returns
    -------
    str
        The dataset's ``SOURCE.md``.

    Raises
    ------
    ArgumentError
        ``name`` is not a real dataset.
    """
    name = require_choice(name, tuple(_REAL), function="datasets.source", argument="name")
    return resources.files("bioworkbench").joinpath("datasets", _REAL[name][0], "SOURCE.md").read_text()


def write(name: str, folder: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a shipped campaign as a campaign folder (Parquet frames plus ``campaign.yaml``).

    Parameters
    ----------
    name
        One of :data:`NAMES`.
    folder
        Where to write; it must not exist or be empty, unless ``overwrite``.
    overwrite
        Replace a non-empty ``folder`` (its contents are deleted).

    Returns
    -------
    pathlib.Path
        The folder written.

    Raises
    ------
    ArgumentError
        An unknown ``name``.
    FileExistsError
        ``folder`` exists and is not empty, and ``overwrite`` is false (nothing is changed).
    """
    name = require_choice(name, NAMES, function="datasets.write", argument="name")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is a file, not a folder; choose another --out folder.")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        # checked before loading, so a refused call costs nothing
        raise FileExistsError(f"{folder} exists and is not empty; pass overwrite=True to replace it.")
    return load(name).write(folder, overwrite=overwrite)
