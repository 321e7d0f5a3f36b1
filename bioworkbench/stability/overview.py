"""A stability study at a glance: one row per condition and attribute, and the condition stored at a
temperature.

Pure tables of the study frame (:mod:`bioworkbench.stability.frame`); the sentences a stability
report writes about the study and its two shelf lives are in :mod:`bioworkbench.review.stability`.
"""

from __future__ import annotations

import polars as pl

from bioworkbench.checks import require_number
from bioworkbench.errors import ConfigError
from bioworkbench.stability.frame import require_study, unflagged

__all__ = ["condition_at", "study_overview"]


def study_overview(study: pl.DataFrame) -> pl.DataFrame:
    """Per condition and attribute: lots, results, time span, unit, and flagged results.

    Parameters
    ----------
    study
        A stability study frame (:func:`~bioworkbench.stability.read_study`).

    Returns
    -------
    polars.DataFrame
        ``condition, attribute, temperature_c, lots, results, flagged, first_time, last_time,
        time_unit, unit``, sorted by attribute and temperature (°C); times in ``time_unit``.

    Raises
    ------
    ArgumentError
        ``study`` is not a frame (a Campaign, say): the message says how to read a study.
    SchemaError
        ``study`` lacks a study column (each is named).
    """
    study = require_study(study, "study_overview", ("batch_id", "condition", "temperature_c", "attribute", "time",
                                                    "time_unit", "unit"))  # fmt: skip
    flagged = (~unflagged()).sum() if "flag" in study.columns else pl.lit(0)
    return (
        study.group_by("condition", "attribute", maintain_order=True)
        .agg(
            temperature_c=pl.col("temperature_c").first(),
            lots=pl.col("batch_id").n_unique(),
            results=pl.len(),
            flagged=flagged,
            first_time=pl.col("time").min(),
            last_time=pl.col("time").max(),
            time_unit=pl.col("time_unit").first(),
            unit=pl.col("unit").first(),
        )
        .sort("attribute", "temperature_c", nulls_last=True)
    )


def condition_at(study: pl.DataFrame, temperature_c: float) -> str:
    """The label of the study's condition at ``temperature_c`` (the only condition if there is one).

    Parameters
    ----------
    study
        A stability study frame with ``condition`` and ``temperature_c``.
    temperature_c
        The storage temperature, °C (matched within 1e-6 °C).

    Returns
    -------
    str
        The condition label, e.g. ``"25 °C/60 % RH"``.

    Raises
    ------
    ArgumentError
        ``study`` is not a frame; ``temperature_c`` is not a number (``"25 °C"``).
    SchemaError
        ``study`` lacks ``condition`` or ``temperature_c``.
    ConfigError
        No condition at that temperature (the temperatures present are listed).
    """
    study = require_study(study, "condition_at", ("condition", "temperature_c"))
    temperature_c = require_number(temperature_c, function="condition_at", argument="temperature_c", unit="°C")
    conds = study.select("condition", "temperature_c").unique()
    if conds.height == 1:
        return conds["condition"][0]
    hit = conds.filter((pl.col("temperature_c") - temperature_c).abs() < 1e-6)
    if hit.height == 1:
        return hit["condition"][0]
    temps = ", ".join(f"{t:g} °C" for t in conds["temperature_c"].drop_nulls().sort().to_list())
    raise ConfigError(
        f"the study has no single condition at {temperature_c:g} °C; conditions at: {temps or 'unknown temperatures'}. "
        "Set storage_c to one of them."
    )
