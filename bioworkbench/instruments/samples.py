"""Samples -> batches and culture time; replicates; a dilution made by hand.

An instrument knows a sample by its ID (``B07-D3``) and by when it measured it; a Campaign knows
an observation by its batch and its culture time. :func:`map_samples` takes the batch (and the
day or hour) from the sample ID by a pattern, or the culture time from the sample's time
against its batch's start. :func:`number_replicates` numbers repeated counts of one sample, and
:func:`replicate_means` averages them.

A *sample* is what one draw from a vessel gave: where the instrument records the draw time
(Cedex HiRes), the results of one vessel at one draw time; elsewhere the results of one sample
ID measured without a gap of more than :data:`SAMPLE_GAP` (the same ID measured again the next
day is a new sample).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta

import polars as pl

from bioworkbench.errors import ArgumentError, BioWorkbenchWarning
from bioworkbench.schema import UTC

__all__ = ["SAMPLE_GAP", "apply_dilution", "map_samples", "number_replicates", "replicate_means"]

#: results of one sample ID further apart than this are two samples
SAMPLE_GAP = timedelta(hours=1)


def _with_sample_keys(obs: pl.DataFrame) -> pl.DataFrame:
    """Add ``_sample`` (one key per sample, see the module docstring) and ``_sample_time``."""
    gap = pl.col("measured_at").diff().over("sample_id", order_by=["measured_at", "source_line"])
    ordered = obs.with_columns(_new=(gap.is_null() | (gap > SAMPLE_GAP)).cast(pl.Int32))
    ordered = ordered.with_columns(
        _run=pl.col("_new").cum_sum().over("sample_id", order_by=["measured_at", "source_line"])
    )
    by_id = pl.format("{}|{}", pl.col("sample_id").fill_null(""), pl.col("_run"))
    by_draw = pl.format("{}|{}", pl.col("vessel").fill_null(""), pl.col("sampled_at").cast(pl.String))
    keyed = ordered.with_columns(_sample=pl.when(pl.col("sampled_at").is_not_null()).then(by_draw).otherwise(by_id))
    return keyed.with_columns(
        _sample_time=pl.coalesce(pl.col("sampled_at"), pl.col("measured_at").min().over("_sample"))
    ).drop("_new", "_run")


def apply_dilution(obs: pl.DataFrame, dilution: float | Mapping[str, float] | None) -> pl.DataFrame:
    """Multiply concentrations by a dilution made before the instrument and not entered on it.

    Parameters
    ----------
    obs
        Instrument observations.
    dilution
        One factor for every sample, or sample ID -> factor (samples not named: 1); ``None``
        leaves ``obs`` as it is.

    Returns
    -------
    polars.DataFrame
        Values of concentrations and cell densities (units per litre or millilitre) multiplied
        by the factor, and ``dilution`` multiplied by it (a null dilution becomes the factor).

    Raises
    ------
    ArgumentError
        A factor that is not a positive number.
    """
    if dilution is None:
        return obs
    factors = dict(dilution) if isinstance(dilution, Mapping) else None
    for name, f in (factors or {"dilution": dilution}).items():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not f > 0:
            raise ArgumentError(f"read_instrument: dilution for {name!r} must be a positive number; found {f!r}.")
    factor = (
        pl.col("sample_id").replace_strict(factors, default=1.0, return_dtype=pl.Float64)
        if factors is not None
        else pl.lit(float(dilution))
    )
    per_volume = pl.col("unit").str.contains(r"/\s*(?:[mu]?L|ml)$")
    return obs.with_columns(
        value=pl.when(per_volume).then(pl.col("value") * factor).otherwise(pl.col("value")),
        dilution=pl.when(factor != 1.0).then(pl.col("dilution").fill_null(1.0) * factor).otherwise(pl.col("dilution")),
    )


def _starts(time_from: pl.DataFrame | Mapping[str, datetime], timezone: str) -> pl.DataFrame:
    if isinstance(time_from, pl.DataFrame):
        missing = [c for c in ("batch_id", "start") if c not in time_from.columns]
        if missing:
            raise ArgumentError(
                f"read_instrument: time_from needs columns batch_id and start; missing {', '.join(missing)} "
                f"(found {', '.join(time_from.columns)})."
            )
        frame = time_from.select(pl.col("batch_id").cast(pl.String), "start")
    elif isinstance(time_from, Mapping):
        frame = pl.DataFrame(
            {"batch_id": [str(k) for k in time_from], "start": list(time_from.values())},
            schema_overrides={"batch_id": pl.String},
        )
    else:
        raise ArgumentError(
            "read_instrument: time_from must be a batches frame (batch_id, start) or a mapping "
            f"batch_id -> start date-time; found {type(time_from).__name__}."
        )
    start = frame.schema["start"]
    if not isinstance(start, pl.Datetime):
        raise ArgumentError(
            f"read_instrument: time_from's start must hold date-times; found {start}. "
            "Parse text first, e.g. pl.col('start').str.to_datetime()."
        )
    expr = pl.col("start").dt.cast_time_unit("us")
    expr = (
        expr.dt.convert_time_zone("UTC")
        if start.time_zone is not None
        else expr.dt.replace_time_zone(timezone, ambiguous="earliest").dt.convert_time_zone("UTC")
    )
    return frame.select("batch_id", _start=expr).unique("batch_id", keep="first")


def map_samples(
    obs: pl.DataFrame,
    *,
    batch_from: str | re.Pattern | None = None,
    time_from: pl.DataFrame | Mapping[str, datetime] | None = None,
    timezone: str = "UTC",
) -> pl.DataFrame:
    """Fill ``batch_id`` and ``time_h`` from the sample IDs, the sample times and the batches' start.

    Parameters
    ----------
    obs
        Instrument observations.
    batch_from
        A regular expression with a named group ``batch_id`` and optionally ``day`` or ``hour``,
        searched in each sample ID (Python :mod:`re` syntax). Without it, a sample's batch is the
        vessel the file names, if any.
    time_from
        Batch ID -> start (a frame with ``batch_id`` and ``start``, or a mapping): ``time_h`` is
        the sample's time minus its batch's start, in hours, where the pattern gave no day/hour.
    timezone
        The zone of naive starts.

    Returns
    -------
    polars.DataFrame
        ``obs`` with ``batch_id`` and ``time_h`` filled where they could be; nothing is dropped.

    Raises
    ------
    ArgumentError
        A pattern that does not compile or has no ``batch_id`` group; ``time_from`` of the wrong
        kind.

    Warns
    -----
    BioWorkbenchWarning
        Samples whose ID the pattern does not match, and samples without a time or start, with
        their count and the first IDs.

    Notes
    -----
    ``time_h = day * 24`` or ``hour`` from the pattern; else ``(t_sample - start) / 1 h`` where
    ``t_sample`` is the sample's draw time, or its first analysis when the instrument records
    no draw time.
    """
    obs = _with_sample_keys(obs)
    day = pl.lit(None, dtype=pl.Float64)
    if batch_from is not None:
        try:
            pattern = re.compile(batch_from) if isinstance(batch_from, str) else batch_from
        except re.error as exc:
            raise ArgumentError(
                f"read_instrument: batch_from {batch_from!r} is not a regular expression ({exc})."
            ) from None
        if not isinstance(pattern, re.Pattern) or "batch_id" not in pattern.groupindex:
            raise ArgumentError(
                f"read_instrument: batch_from {batch_from!r} needs a named group batch_id, e.g. "
                r"r'(?P<batch_id>B\d+)-D(?P<day>\d+)'."
            )
        ids = obs["sample_id"].drop_nulls().unique().to_list()
        rows = []
        for sid in ids:
            m = pattern.search(sid)
            if m is None:
                continue
            g = m.groupdict()
            hours = None
            if g.get("day") not in (None, ""):
                hours = float(g["day"]) * 24.0
            elif g.get("hour") not in (None, ""):
                hours = float(g["hour"])
            rows.append((sid, g.get("batch_id"), hours))
        table = pl.DataFrame(
            rows, schema={"sample_id": pl.String, "_batch": pl.String, "_hours": pl.Float64}, orient="row"
        )
        obs = obs.join(table, on="sample_id", how="left", maintain_order="left")
        unmatched = sorted(set(ids) - set(table["sample_id"].to_list()))
        if unmatched:
            warnings.warn(
                f"{obs['source_file'][0]}: {len(unmatched)} sample ID{'s' if len(unmatched) != 1 else ''} do not match "
                f"batch_from {pattern.pattern!r} and have no batch: {', '.join(unmatched[:10])}"
                f"{' …' if len(unmatched) > 10 else ''}.",
                BioWorkbenchWarning,
                stacklevel=4,
            )
        obs = obs.with_columns(batch_id=pl.col("_batch")).drop("_batch")
        day = pl.col("_hours")
    else:
        obs = obs.with_columns(batch_id=pl.col("vessel"), _hours=pl.lit(None, dtype=pl.Float64))
    time = day
    if time_from is not None:
        starts = _starts(time_from, timezone)
        obs = obs.join(starts, on="batch_id", how="left", maintain_order="left")
        elapsed = (pl.col("_sample_time") - pl.col("_start")).dt.total_microseconds() / 3.6e9
        time = pl.coalesce(day, elapsed)
        obs = obs.with_columns(time_h=time)
        untimed = obs.filter(pl.col("batch_id").is_not_null() & pl.col("time_h").is_null())
        if not untimed.is_empty():
            no_start = untimed.filter(pl.col("_start").is_null())["batch_id"].unique().sort().to_list()
            no_time = untimed.filter(pl.col("_sample_time").is_null())["sample_id"].unique().sort().to_list()
            why = []
            if no_start:
                why.append(f"no start in time_from for batch {', '.join(no_start[:10])}")
            if no_time:
                why.append(f"no readable sample time for {', '.join(no_time[:10])}")
            warnings.warn(
                f"{obs['source_file'][0]}: {untimed.height} values have a batch but no culture time "
                f"({'; '.join(why)}).",
                BioWorkbenchWarning,
                stacklevel=4,
            )
        obs = obs.drop("_start")
    else:
        obs = obs.with_columns(time_h=time)
    return obs.drop("_hours", "_sample", "_sample_time")


def number_replicates(obs: pl.DataFrame) -> pl.DataFrame:
    """Number repeated results of one sample and variable 1, 2, ... in ``replicate``.

    Parameters
    ----------
    obs
        Instrument observations (after :func:`map_samples`).

    Returns
    -------
    polars.DataFrame
        ``obs`` with ``replicate`` (Int32, from 1).

    Notes
    -----
    Results are replicates when they share batch, culture time and variable (once both are
    known), else sample (see the module docstring) and variable; numbered in the order measured.
    """
    keyed = _with_sample_keys(obs)
    mapped = pl.col("batch_id").is_not_null() & pl.col("time_h").is_not_null()
    key = pl.when(mapped).then(pl.format("{}|{}", "batch_id", "time_h")).otherwise(pl.col("_sample"))
    keyed = keyed.with_columns(_rkey=key)
    numbered = keyed.with_columns(
        replicate=pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(
            "_rkey", "variable", order_by=["measured_at", "source_line"]
        )
    )
    return numbered.drop("_sample", "_sample_time", "_rkey")


def replicate_means(obs: pl.DataFrame) -> pl.DataFrame:
    """One row per sample and variable: the mean of its unflagged replicates.

    Parameters
    ----------
    obs
        Observations from :func:`~bioworkbench.instruments.read_instrument` (with ``replicate``).

    Returns
    -------
    polars.DataFrame
        The first replicate's row (its lineage: file, line, cell), without ``replicate``, with
        ``value`` = the mean of the
        unflagged replicates' values, ``n_replicates`` (rows averaged), ``sd`` (their sample
        standard deviation, null for one), ``raw_value`` = every replicate's text joined by
        ``"; "``. Where every replicate is flagged, the mean of their values keeps the first
        flag, and the reason says all were flagged.

    Notes
    -----
    ``mean = sum(x_i) / n`` and ``sd = sqrt(sum((x_i - mean)^2) / (n - 1))`` over the unflagged
    replicates ``x_i`` (units: the variable's canonical unit).
    """
    keyed = _with_sample_keys(obs)
    mapped = pl.col("batch_id").is_not_null() & pl.col("time_h").is_not_null()
    keyed = keyed.with_columns(
        _rkey=pl.when(mapped).then(pl.format("{}|{}", "batch_id", "time_h")).otherwise(pl.col("_sample"))
    )
    free = pl.col("flag").is_null() & pl.col("value").is_not_null()
    any_free = free.any()
    kept = pl.when(any_free).then(free).otherwise(pl.col("value").is_not_null())
    columns = [c for c in obs.columns if c not in ("value", "raw_value", "flag", "flag_reason", "replicate")]
    out = (
        keyed.sort("measured_at", "source_line", nulls_last=True)
        .group_by("_rkey", "variable", maintain_order=True)
        .agg(
            *[pl.col(c).first() for c in columns if c != "variable"],
            value=pl.col("value").filter(kept).mean(),
            sd=pl.col("value").filter(kept).std(),
            n_replicates=kept.sum().cast(pl.Int32),
            raw_value=pl.col("raw_value").str.join("; "),
            flag=pl.when(any_free).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("flag").first()),
            flag_reason=pl.when(any_free)
            .then(pl.lit(None, dtype=pl.String))
            .otherwise(pl.format("all {} replicates flagged; first: {}", pl.len(), pl.col("flag_reason").first())),
        )
        .drop("_rkey")
    )
    order = [c for c in obs.columns if c in out.columns] + ["n_replicates", "sd"]
    return out.select(order).with_columns(pl.col("measured_at").cast(UTC))
