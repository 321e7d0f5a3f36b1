"""Which instrument wrote a file, and :func:`read_instrument`, which reads any of them.

Detection reads the file's first bytes and looks for what each instrument writes and no other
does: the Cedex Bio HT ``#ARC-FILE#`` marker, the Vi-CELL BLU header, the NucleoView key-value
block, and so on (:data:`INSTRUMENTS` lists them). The file name is never used.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from bioworkbench.checks import require_choice
from bioworkbench.errors import BioWorkbenchWarning, DataReadError
from bioworkbench.instruments import cedex, chemometec, flex2, vicell
from bioworkbench.instruments.common import read_grid, read_text
from bioworkbench.instruments.samples import apply_dilution, map_samples, number_replicates, replicate_means

__all__ = ["INSTRUMENTS", "Instrument", "detect_instrument", "read_instrument"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """An instrument family this package reads: its name, what it is, its files and its reader."""

    name: str
    description: str
    formats: str
    reader: Callable[..., pl.DataFrame]


INSTRUMENTS: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument(
            "vicell_blu", "Beckman Coulter Vi-CELL BLU cell counter", ".csv (UTF-8, UTF-16)", vicell.read_vicell_blu
        ),
        Instrument(
            "vicell_xr",
            "Beckman Coulter Vi-CELL XR cell counter",
            ".xls, .xlsx (results table or one-sample report), .txt",
            vicell.read_vicell_xr,
        ),
        Instrument("cedex_hires", "Roche Cedex HiRes cell counter", ".csv, .xlsx", cedex.read_cedex_hires),
        Instrument(
            "cedex_bioht", "Roche Cedex Bio HT analyser", "tab-separated .txt (#ARC-FILE#)", cedex.read_cedex_bioht
        ),
        Instrument("flex2", "Nova Biomedical BioProfile FLEX2 analyser", ".csv", flex2.read_flex2),
        Instrument("nucleoview", "ChemoMetec NucleoView (NC-200/202) cell counter", ".csv", chemometec.read_nucleoview),
        Instrument("nc_view", "ChemoMetec NC-View cell counter", ".csv", chemometec.read_nc_view),
    )
}

_EXCEL = (".xls", ".xlsx", ".xlsm")


def detect_instrument(path: str | os.PathLike) -> str:
    """The instrument that wrote a file, from its content.

    Parameters
    ----------
    path
        An instrument export.

    Returns
    -------
    str
        A key of :data:`INSTRUMENTS`.

    Raises
    ------
    DataReadError
        The file is missing, or no instrument's signature is in it (the message lists the
        instruments known and says to pass ``instrument=``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataReadError(f"{path}: no such file.")
    if path.suffix.lower() in _EXCEL:
        grid = read_grid(path)
        head = "\n".join(",".join(c or "" for c in row) for row in grid[:40])
        if vicell.looks_like_vicell_xr(head):
            return "vicell_xr"
        if cedex.looks_like_cedex_hires(head):
            return "cedex_hires"
    else:
        text, _ = read_text(path)
        head = text[:20000]
        for name, test in (
            ("cedex_bioht", cedex.looks_like_cedex_bioht),
            ("vicell_blu", vicell.looks_like_vicell_blu),
            ("vicell_xr", vicell.looks_like_vicell_xr),
            ("cedex_hires", cedex.looks_like_cedex_hires),
            ("flex2", flex2.looks_like_flex2),
            ("nc_view", chemometec.looks_like_nc_view),
            ("nucleoview", chemometec.looks_like_nucleoview),
        ):
            if test(head):
                return name
    known = ", ".join(f"{k} ({v.description}, {v.formats})" for k, v in INSTRUMENTS.items())
    raise DataReadError(
        f"{path}: not recognised as an instrument export; the first lines match none of the instruments "
        f"read here: {known}. Pass instrument=... if it is one of them, or read it with bw.read_wide and a column map."
    )


def read_instrument(
    path: str | os.PathLike,
    *,
    instrument: str | None = None,
    batch_from: str | re.Pattern | None = None,
    time_from: pl.DataFrame | Mapping[str, datetime] | None = None,
    timezone: str = "UTC",
    replicates: Literal["keep", "mean"] = "keep",
    dilution: float | Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """Read an instrument export into tidy observations, in canonical units, with lineage.

    Parameters
    ----------
    path
        The file, as the instrument wrote it.
    instrument
        A key of :data:`INSTRUMENTS` (default: detected from the content, :func:`detect_instrument`).
    batch_from
        A regular expression matched against each sample ID (:func:`re.search`), with a named
        group ``batch_id`` and optionally ``day`` or ``hour`` (culture time), e.g.
        ``r"(?P<batch_id>B\\d+)-D(?P<day>\\d+)"``. Without it, ``batch_id`` is the vessel or
        batch the file names for the sample (Cedex HiRes reactor, FLEX2 batch ID, Cedex Bio HT
        batch), when it names one.
    time_from
        The batches' start: a batches frame (``batch_id``, ``start``) or a mapping batch ID ->
        start date-time. ``time_h`` is then the sample's time (its draw time where the instrument
        records one, else its first analysis) minus its batch's start, in hours. A pattern's
        ``day``/``hour`` take precedence where they matched.
    timezone
        The IANA zone of the instrument's clock, for date-times written without a UTC offset
        (all of these instruments but NucleoView), and for naive starts in ``time_from``.
    replicates
        ``"keep"``: every count or measurement is a row, numbered in ``replicate`` (1, 2, ...)
        within its sample and variable; ``"mean"``: one row per sample and variable, the mean of
        the unflagged replicates (:func:`~bioworkbench.instruments.replicate_means`).
    dilution
        A dilution made by hand before the instrument and not entered on it (a factor such as
        ``2.0`` for 1 + 1, or a mapping sample ID -> factor): concentrations and cell densities
        are multiplied by it and ``dilution`` records the total. Dilutions entered on the
        instrument are already applied in its results.

    Returns
    -------
    polars.DataFrame
        One row per value: first the observations columns of a Campaign (``batch_id``,
        ``time_h``, ``variable``, ``value``, ``unit``, ``source``, ``flag``, ``flag_reason``,
        ``source_file``, ``source_line``), then ``source_cell`` (spreadsheets), ``sample_id``,
        ``replicate``, ``measured_at`` and ``sampled_at`` (UTC), ``vessel``, ``instrument``,
        ``quantity`` (the instrument's own name), ``raw_value`` (the text as written),
        ``raw_unit`` and ``dilution``.

    Raises
    ------
    DataReadError
        The file is missing, unreadable, or (without ``instrument=``) not recognised.
    SchemaError
        A file that does not follow its instrument's format, with file, line or cell, column and
        what was expected.
    ArgumentError
        An unknown ``instrument``, a ``batch_from`` pattern without a ``batch_id`` group,
        ``time_from`` without the batch of a sample.

    Warns
    -----
    BioWorkbenchWarning
        How many values were flagged, by flag, and samples left without a batch or time.

    Notes
    -----
    Values stay as the instrument reported them, converted to the registry's canonical unit
    (:mod:`bioworkbench.variables`); what the registry does not hold keeps the names and units of
    :data:`~bioworkbench.instruments.EXTRA_VARIABLES` (register them with
    :func:`~bioworkbench.instruments.register_instrument_variables` before building a Campaign).
    Nothing in the file is dropped: values out of the instrument's range are kept and flagged
    ``<LOD``/``>ULOQ``, text in a numeric field is flagged ``unreadable`` (no value), and the
    count of each flag is reported in a warning.
    """
    path = Path(path)
    if instrument is None:
        instrument = detect_instrument(path)
    else:
        require_choice(instrument, tuple(INSTRUMENTS), function="read_instrument", argument="instrument")
    require_choice(replicates, ("keep", "mean"), function="read_instrument", argument="replicates")
    if not path.is_file():
        raise DataReadError(f"{path}: no such file.")
    obs = INSTRUMENTS[instrument].reader(path, timezone=timezone)
    obs = apply_dilution(obs, dilution)
    obs = map_samples(obs, batch_from=batch_from, time_from=time_from, timezone=timezone)
    obs = number_replicates(obs)
    _warn_counts(obs, path)
    if replicates == "mean":
        obs = replicate_means(obs)
    return obs


def _warn_counts(obs: pl.DataFrame, path: Path) -> None:
    counts = obs.filter(pl.col("flag").is_not_null()).group_by("flag").len().sort("len", descending=True)
    if counts.is_empty():
        return
    parts = ", ".join(f"{n} {flag}" for flag, n in counts.iter_rows())
    total = int(counts["len"].sum())
    warnings.warn(
        f"{path}: {total} of {obs.height} values flagged ({parts}); kept with the reason in flag_reason. "
        "Analyses leave flagged rows out.",
        BioWorkbenchWarning,
        stacklevel=3,
    )
