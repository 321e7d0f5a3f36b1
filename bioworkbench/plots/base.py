"""What every plot shares: the HoloViews set-up, colours, axis labels, titles that fit, input checks.

Layer: the bottom of :mod:`bioworkbench.plots`. It imports :mod:`bioworkbench.errors`,
:mod:`bioworkbench.checks` and the variable registry (:func:`bioworkbench.variables.registry`, for
labels and canonical units) and nothing above them: plots take frames and result objects as
arguments and never compute a review, a model or a monitoring statistic themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from bioworkbench._imports import without_iri_grammar
from bioworkbench.checks import describe_type, require_frame, require_number
from bioworkbench.errors import ArgumentError, MissingDependencyError, SchemaError

__all__ = [
    "BAND",
    "HIGHLIGHT",
    "NEGATIVE",
    "OBSERVATION_COLUMNS",
    "OTHERS",
    "POSITIVE",
    "TITLE_MARGIN_PX",
    "TITLE_PX",
    "axis_label",
    "narrow_observations",
    "require_name",
    "require_names",
    "require_observations",
    "require_result",
    "require_size",
    "setup",
    "single_line",
    "text_px",
    "unit_of",
    "wrap_title",
]

HIGHLIGHT = "#d62728"
OTHERS = "#9aa5b1"
BAND = "#4c78a8"
#: effects and edges: blue for a positive, red for a negative sign
POSITIVE = "#1f77b4"
NEGATIVE = "#d62728"
#: the columns of tidy observations that the plots read (see :data:`bioworkbench.schema.FRAMES`)
OBSERVATION_COLUMNS = ("batch_id", "time_h", "variable", "value", "flag")
_READY = False


def setup() -> Any:
    """Load HoloViews' Bokeh extension with inline resources (once) and register ``.hvplot``.

    Safe to call repeatedly (e.g. on notebook re-runs): the extension is loaded once per process.
    Nothing else of the process is changed (no warning filter, no ``warnings.showwarning``): a
    report's rendering shortens warnings on the page instead (:mod:`bioworkbench.reports.render`).

    Returns
    -------
    module
        The ``holoviews`` module.

    Raises
    ------
    MissingDependencyError
        hvplot or holoviews is not installed.
    """
    global _READY
    try:
        import holoviews as hv
    except ImportError as exc:  # pragma: no cover - hvplot is a hard dependency
        raise MissingDependencyError("plots need hvplot and holoviews: pip install hvplot") from exc
    if not _READY:
        with without_iri_grammar():  # the extension imports nbformat: see bioworkbench._imports
            hv.extension("bokeh", inline=True, logo=False)
        import hvplot.polars  # noqa: F401  (registers DataFrame.hvplot)

        _READY = True
    return hv


# ---------------------------------------------------------------------------------------------
# titles and labels
# ---------------------------------------------------------------------------------------------
#: advance widths of Helvetica Bold (Adobe's AFM metrics, 1/1000 em) by character class; Bokeh draws
#: titles in bold Helvetica (or a metric-compatible Arial/Liberation Sans) at 16 px in HoloViews
_NARROW = dict.fromkeys(" !'(),-./:;I[]fijlrt|", 300)
_WIDE = dict.fromkeys("mwMW%@", 900)
TITLE_PX = 16
#: room a title leaves free: the y axis with its tick labels on the left, a margin on the right
TITLE_MARGIN_PX = 80


def text_px(text: str, *, size: float = TITLE_PX) -> float:
    """Width of ``text`` drawn in bold Helvetica.

    Parameters
    ----------
    text
        One line of text.
    size
        Font size in px.

    Returns
    -------
    float
        An upper estimate of the width in px.

    Notes
    -----
    Width = Σ advance × ``size`` / 1000, with the advances of Adobe's Helvetica Bold AFM metrics by
    character class: 300/1000 em for narrow characters, 900 for ``m w M W % @``, 722 (the widest)
    for capitals and digits and 611 for other characters.
    """
    em = sum(_NARROW.get(c) or _WIDE.get(c) or (722 if c.isupper() or c.isdigit() else 611) for c in text)
    return em * size / 1000


def wrap_title(text: str, width: int, *, margin: int = TITLE_MARGIN_PX) -> str:
    """A title broken into lines that fit a plot of ``width`` px.

    Bokeh draws ``\\n`` in a title as a line break; a long title (variable, unit, batch) is wrapped
    at spaces instead of running past the plot's edge. A single word longer than the room is kept
    whole.

    Parameters
    ----------
    text
        The title on one line.
    width
        The plot's width in px.
    margin
        Px of the width not available to the title (axis and tick labels, a colour bar, a legend).

    Returns
    -------
    str
        The title, lines joined by ``\\n``; no line wider (by :func:`text_px`) than
        ``max(width - margin, 60)`` px unless it is one word.
    """
    room = max(width - margin, 60)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and text_px(lines[-1] + " " + word) <= room:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


def axis_label(variable: str, unit: str | None) -> str:
    """The label of a variable's axis: its registry description and its unit.

    Parameters
    ----------
    variable
        Canonical variable name (``"vcd"``); an unregistered name is used as it is.
    unit
        Unit shown in parentheses; left out when ``None``, ``"1"`` or already a word of the
        description (``"pH"``, not ``"pH (pH)"``).

    Returns
    -------
    str
        ``"Viable cell density (1e6 cells/mL)"``; the first letter capitalised unless the
        description is a symbol such as ``pH`` or ``pCO2``.
    """
    from bioworkbench.variables import registry

    reg = registry()
    desc = reg[variable].description if variable in reg else variable
    # capitalise the first letter, but keep symbols such as "pH" or "pCO2" as they are
    name = desc if not desc else desc if len(desc) > 1 and desc[1].isupper() else desc[:1].upper() + desc[1:]
    if not unit or unit == "1" or unit in name.replace(",", " ").split():  # "pH (pH)", "…, % of air (%)"
        return name
    return f"{name} ({unit})"


def unit_of(frame: pl.DataFrame, variable: str) -> str | None:
    """The unit of ``variable`` in a tidy frame, else its canonical unit in the registry.

    Parameters
    ----------
    frame
        Tidy rows with ``variable`` and, optionally, ``unit``.
    variable
        Canonical variable name.

    Returns
    -------
    str or None
        The first unit of the variable's rows; the registry's unit when the frame has no ``unit``
        column or no rows of the variable; ``None`` for an unregistered variable without rows.
    """
    if "unit" in frame.columns:
        units = frame.filter(pl.col("variable") == variable)["unit"].unique().to_list()
        if units:
            return units[0]
    from bioworkbench.variables import registry

    reg = registry()
    return reg[variable].unit if variable in reg else None


# ---------------------------------------------------------------------------------------------
# frames narrowed to what is drawn
# ---------------------------------------------------------------------------------------------
def narrow_observations(
    observations: pl.DataFrame,
    variable: str,
    *,
    source: str | None,
    batch_ids: Iterable[str] | None = None,
    include_flagged: bool = False,
) -> pl.DataFrame:
    """The rows of one variable to draw, with culture time in days.

    Parameters
    ----------
    observations
        Tidy observations (checked by :func:`require_observations`).
    variable
        Canonical variable name.
    source
        ``"offline"``, ``"online"``, ``"atline"`` or ``None`` for every source.
    batch_ids
        Keep these batches only.
    include_flagged
        Keep flagged rows (left out by default).

    Returns
    -------
    polars.DataFrame
        ``batch_id, day, value`` sorted by batch and day.

    Raises
    ------
    SchemaError
        No row is left to draw; the message lists the variables present.

    Notes
    -----
    ``day = time_h / 24``.
    """
    obs = observations.filter(pl.col("variable") == variable)
    if source is not None:
        obs = obs.filter(pl.col("source") == source)
    if batch_ids is not None:
        obs = obs.filter(pl.col("batch_id").is_in(list(batch_ids)))
    if not include_flagged:
        obs = obs.filter(pl.col("flag").is_null())
    if obs.is_empty():
        found = observations["variable"].unique().sort().to_list()
        raise SchemaError(
            f"no {source + ' ' if source else ''}observations of {variable!r} to plot"
            f"{' for the batches asked for' if batch_ids is not None else ''}. "
            f"Variables present: {', '.join(found) or 'none'}."
        )
    return obs.select("batch_id", (pl.col("time_h") / 24).alias("day"), "value").sort("batch_id", "day")


def single_line(df: pl.DataFrame, *, x: str = "day", y: str = "value", by: str = "batch_id") -> pl.DataFrame:
    """All groups in one line, broken by a null row after each group.

    One glyph instead of one per batch keeps plots of many batches fast to build and to draw.

    Parameters
    ----------
    df
        Rows with the columns ``by``, ``x`` and ``y``.
    x, y, by
        The columns of the line's coordinates and of the groups.

    Returns
    -------
    polars.DataFrame
        ``by, x, y``: each group's rows sorted by ``x``, then one row with null ``x`` and ``y``.
    """
    breaks = (
        df.select(by)
        .unique(maintain_order=True)
        .with_columns(pl.lit(None, dtype=df.schema[x]).alias(x), pl.lit(None, dtype=df.schema[y]).alias(y))
    )
    return pl.concat([df.select(by, x, y), breaks]).sort(by, x, nulls_last=True, maintain_order=True)


# ---------------------------------------------------------------------------------------------
# input checks shared by the plot functions
# ---------------------------------------------------------------------------------------------
def require_observations(
    observations: Any, *, function: str, argument: str = "observations", source: str | None = None
) -> pl.DataFrame:
    """Tidy observations as a polars frame holding the columns the plots read.

    Parameters
    ----------
    observations
        What the caller passed.
    function, argument
        Named in the error.
    source
        When not ``None``, the ``source`` column is required too.

    Returns
    -------
    polars.DataFrame
        ``observations`` (a LazyFrame collected, a pandas frame converted).

    Raises
    ------
    ArgumentError
        Not a frame (e.g. a Campaign: pass ``campaign.observations``).
    SchemaError
        A required column is missing.
    """
    columns = (*OBSERVATION_COLUMNS, *(("source",) if source is not None else ()))
    return require_frame(
        observations,
        function=function,
        argument=argument,
        columns=columns,
        hint="Pass tidy observations such as campaign.observations.",
    )


def require_name(value: Any, *, function: str, argument: str, allow_none: bool = False) -> str | None:
    """``value`` if it is a non-empty string (a variable, a batch id, a column), else an error.

    Parameters
    ----------
    value
        What the caller passed.
    function, argument
        Named in the error.
    allow_none
        Accept ``None`` (returned as it is).

    Returns
    -------
    str or None
        ``value``.

    Raises
    ------
    ArgumentError
        ``value`` is not a string, or is empty.
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        hint = " Give one name; other arguments take several." if isinstance(value, list | tuple | set) else ""
        raise ArgumentError(
            f"{function}: {argument} must be a non-empty string{' or None' if allow_none else ''}; "
            f"got {describe_type(value)}.{hint}"
        )
    return value


def require_names(values: Any, *, function: str, argument: str, allow_none: bool = False) -> list[str] | None:
    """``values`` as a list of non-empty strings (a single string is refused, not split into letters).

    Parameters
    ----------
    values
        What the caller passed.
    function, argument
        Named in the error.
    allow_none
        Accept ``None`` (returned as it is).

    Returns
    -------
    list of str or None
        The names in their order.

    Raises
    ------
    ArgumentError
        ``values`` is a string, not iterable, or holds something other than a non-empty string.
    """
    if values is None and allow_none:
        return None
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ArgumentError(
            f"{function}: {argument} must be a list of names; got {describe_type(values)}."
            + (f" Write [{values!r}]." if isinstance(values, str) else "")
        )
    names = list(values)
    bad = [v for v in names if not isinstance(v, str) or not v]
    if bad:
        raise ArgumentError(f"{function}: {argument} must hold non-empty strings; got {describe_type(bad[0])}.")
    return names


def require_size(*, function: str, width: Any, height: Any = None) -> None:
    """Check a plot's ``width`` and ``height``: whole numbers of px, at least 50.

    Parameters
    ----------
    function
        Named in the error.
    width, height
        What the caller passed; ``height`` may be ``None`` where the plot sizes itself.

    Raises
    ------
    ArgumentError
        Not an integer, or below 50 px.
    """
    require_number(width, function=function, argument="width", minimum=50, integer=True, unit="px")
    require_number(height, function=function, argument="height", minimum=50, integer=True, unit="px", allow_none=True)


def require_result(obj: Any, attributes: Sequence[str], *, function: str, argument: str, expected: str) -> Any:
    """A result object (a model, a design space, a shelf-life result) that has ``attributes``.

    The plots do not import the modules that make these objects (they sit above the plots), so
    the object is recognised by what it offers.

    Parameters
    ----------
    obj
        What the caller passed.
    attributes
        Attributes (or methods) the plot uses.
    function, argument
        Named in the error.
    expected
        What to pass, as a reader would say it (``"a ShelfLifeResult from bw.stability.shelf_life"``).

    Returns
    -------
    object
        ``obj``.

    Raises
    ------
    ArgumentError
        ``obj`` lacks one of ``attributes``.
    """
    missing = [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise ArgumentError(
            f"{function}: {argument} must be {expected}; got {describe_type(obj)} "
            f"(without {', '.join(map(repr, missing))})."
        )
    return obj
