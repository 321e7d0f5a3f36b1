"""Which batches and which observations the monitoring checks use.

One place for the selection every check repeats: the batches asked for (each checked to be in the
campaign), the observations an analysis may use (not flagged, with a value) and the culture day of a
time. A flagged observation is never dropped from the data: the checks leave it out and say so (or,
in :func:`~bioworkbench.monitoring.completeness`, count it as a sample taken).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import polars as pl

from bioworkbench.checks import require_campaign
from bioworkbench.errors import SchemaError
from bioworkbench.schema import suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["batch_list", "culture_day", "good_observations", "unflagged"]


def batch_list(campaign: Campaign, batch_ids: str | Sequence[str] | None, *, function: str) -> list[str]:
    """The batches asked for (default: all), each checked to be in the campaign.

    Parameters
    ----------
    campaign
        The campaign.
    batch_ids
        One batch id, several, or ``None`` for every batch of the campaign.
    function
        The calling function, named in the messages.

    Returns
    -------
    list of str
        The batch ids, in the order given (the campaign's order for ``None``).

    Raises
    ------
    ArgumentError
        ``campaign`` is not a Campaign.
    SchemaError
        A batch that is not in the campaign (the closest names are suggested).
    """
    require_campaign(campaign, function=function)
    if batch_ids is None:
        return campaign.batch_ids
    ids = [batch_ids] if isinstance(batch_ids, str) else list(batch_ids)
    unknown = [b for b in ids if b not in campaign.batch_ids]
    if unknown:
        raise SchemaError(
            f"{function}: batch {unknown[0]!r} is not in campaign {campaign.name!r}. "
            + suggest(unknown[0], campaign.batch_ids, what="Batches")
        )
    return ids


def unflagged() -> pl.Expr:
    """Rows whose ``flag`` is null (a flagged row, e.g. ``<LOD``, is kept in the data and left out of analyses).

    Returns
    -------
    polars.Expr
        ``pl.col("flag").is_null()``; negate it for the flagged rows.
    """
    return pl.col("flag").is_null()


def good_observations(observations: pl.DataFrame) -> pl.DataFrame:
    """The observations analyses use: not flagged, with a value.

    Parameters
    ----------
    observations
        A tidy observations frame (with ``flag`` and ``value``).

    Returns
    -------
    polars.DataFrame
        The rows with a null ``flag`` and a non-null ``value``.
    """
    return observations.filter(unflagged() & pl.col("value").is_not_null())


def culture_day(time_h: pl.Expr) -> pl.Expr:
    """The culture day of a time in hours: ``round(time_h / 24)`` as an integer (a sample taken a little
    early or late belongs to its day).

    Parameters
    ----------
    time_h
        An expression of times in hours since inoculation.

    Returns
    -------
    polars.Expr
        Int64 culture days.
    """
    return (time_h / 24).round(0).cast(pl.Int64)
