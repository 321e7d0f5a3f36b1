"""Argument checks shared by every public function: one wording for "expected X, got Y".

Each check raises a :class:`~bioworkbench.errors.BioWorkbenchError` subclass that names the
function, the argument, what was expected and what was found, so that a natural mistake
(``golden_batch(campaign.observations)``, ``shelf_life(lower="95%")``, ``BatchPCA().fit(campaign)``)
never surfaces as a raw polars, numpy or ``AttributeError``.

Layer: a utility at the bottom of the package, beside :mod:`bioworkbench.errors`, the only
bioworkbench module it imports. It recognises a :class:`~bioworkbench.Campaign` without importing
:mod:`bioworkbench.campaign` (see :func:`_campaign_class`), so that every layer may use it.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from bioworkbench.errors import ArgumentError, SchemaError, suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = [
    "describe_type",
    "missing_columns",
    "require_campaign",
    "require_choice",
    "require_columns",
    "require_frame",
    "require_number",
    "require_prob",
]


def _campaign_class() -> type | None:
    """The :class:`~bioworkbench.Campaign` class if :mod:`bioworkbench.campaign` is loaded, else ``None``.

    Nothing can be a Campaign before that module is imported, so checks look the class up instead of
    importing it: this module stays at the bottom of the layers.
    """
    module = sys.modules.get("bioworkbench.campaign")
    return getattr(module, "Campaign", None)


def _is_campaign(obj: Any) -> bool:
    cls = _campaign_class()
    return cls is not None and isinstance(obj, cls)


def describe_type(obj: Any) -> str:
    """How an error names what it was given.

    Parameters
    ----------
    obj
        Anything.

    Returns
    -------
    str
        ``"a Campaign ('demo')"``, ``"a polars DataFrame with columns a, b"``, ``"the str '95%'"``,
        ``"None"``, ``"a numpy.ndarray"``...
    """
    if _is_campaign(obj):
        return f"a Campaign ({obj.name!r})"
    if isinstance(obj, pl.DataFrame):
        return f"a polars DataFrame with columns {', '.join(obj.columns[:12])}{' …' if obj.width > 12 else ''}"
    if isinstance(obj, pl.LazyFrame):
        return "a polars LazyFrame"
    if obj is None:
        return "None"
    if isinstance(obj, str | int | float | bool):
        return f"the {type(obj).__name__} {obj!r}"
    return f"a {type(obj).__module__.split('.')[0]}.{type(obj).__name__}".replace("builtins.", "")


def _where(function: str | None, argument: str) -> str:
    return f"{function}: {argument}" if function else argument


def require_campaign(obj: Any, *, function: str | None = None, argument: str = "campaign") -> Campaign:
    """``obj`` if it is a :class:`~bioworkbench.Campaign`, else an :class:`ArgumentError`.

    Parameters
    ----------
    obj
        What the caller was given.
    function, argument
        The function and argument named in the message.

    Returns
    -------
    Campaign
        ``obj``.

    Raises
    ------
    ArgumentError
        Naming the function and argument, with a hint when a frame was passed instead.
    """
    if _is_campaign(obj):
        return obj
    hint = ""
    if isinstance(obj, pl.DataFrame | pl.LazyFrame):
        hint = " Build one with bw.Campaign(batches=..., observations=...) or read a folder with bw.read_campaign()."
    raise ArgumentError(f"{_where(function, argument)} must be a Campaign; got {describe_type(obj)}.{hint}")


def require_frame(
    obj: Any,
    *,
    function: str | None = None,
    argument: str = "data",
    columns: Iterable[str] = (),
    hint: str | None = None,
) -> pl.DataFrame:
    """``obj`` as a polars DataFrame holding ``columns``.

    Parameters
    ----------
    obj
        What the caller was given: a polars DataFrame or LazyFrame (collected) or a pandas frame
        (converted).
    function, argument
        The function and argument named in the message.
    columns
        Columns the frame must have.
    hint
        Said after the problem (e.g. which function makes such a frame).

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    ArgumentError
        ``obj`` is not a frame (a Campaign, a list, a number...).
    SchemaError
        A required column is missing (all of them are named, with the columns found).
    """
    if isinstance(obj, pl.LazyFrame):
        obj = obj.collect()
    elif type(obj).__module__.startswith("pandas") and hasattr(obj, "columns"):
        obj = pl.from_pandas(obj)
    if not isinstance(obj, pl.DataFrame):
        extra = f" {hint}" if hint else ""
        if _is_campaign(obj) and not hint:
            extra = " Pass one of its frames (e.g. campaign.observations) or the frame this function documents."
        raise ArgumentError(
            f"{_where(function, argument)} must be a polars DataFrame; got {describe_type(obj)}.{extra}"
        )
    require_columns(obj, columns, what=_where(function, argument), hint=hint)
    return obj


def missing_columns(frame: pl.DataFrame, columns: Iterable[str]) -> list[str]:
    """The columns of ``columns`` that ``frame`` lacks, in the order given.

    Parameters
    ----------
    frame
        A polars DataFrame.
    columns
        The columns it needs.

    Returns
    -------
    list[str]
        Empty when none is missing.
    """
    have = set(frame.columns)
    return [c for c in columns if c not in have]


def require_columns(frame: pl.DataFrame, columns: Iterable[str], *, what: str, hint: str | None = None) -> None:
    """Raise one :class:`SchemaError` naming every column of ``columns`` that ``frame`` lacks.

    Parameters
    ----------
    frame
        A polars DataFrame.
    columns
        The columns it needs.
    what
        Names the frame in the message (``"observations"``, ``"golden_batch: aligned"``).
    hint
        Said after the problem.

    Raises
    ------
    SchemaError
        ``"<what>: missing required columns 'a', 'b'; found: x, y."``
    """
    missing = missing_columns(frame, columns)
    if missing:
        plural = "s" if len(missing) > 1 else ""
        text = (
            f"{what}: missing required column{plural} {', '.join(repr(c) for c in missing)}; "
            f"found: {', '.join(frame.columns) or 'no columns'}."
        )
        if hint:
            text += f" {hint}"
        raise SchemaError(text)


def require_number(
    value: Any,
    *,
    function: str | None = None,
    argument: str,
    minimum: float | None = None,
    maximum: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
    integer: bool = False,
    allow_none: bool = False,
    unit: str = "",
) -> float | int | None:
    """``value`` as a finite number within the given bounds, else an :class:`ArgumentError`.

    Parameters
    ----------
    value
        What the caller was given. Text such as ``"95%"`` or ``"5 d"`` is refused (never parsed by
        guess); booleans are not numbers; numpy scalars are accepted.
    function, argument
        The function and argument named in the message.
    minimum, maximum
        Bounds, inclusive unless ``min_inclusive``/``max_inclusive`` is false.
    min_inclusive, max_inclusive
        Whether the bounds themselves are allowed.
    integer
        Require a whole number (returned as ``int``).
    allow_none
        Accept ``None`` (returned as is).
    unit
        Named in the message (``"h"``).

    Returns
    -------
    float, int or None

    Raises
    ------
    ArgumentError
        Saying what was expected (kind, bounds, unit) and what was found.
    """
    if value is None and allow_none:
        return None
    kind = "an integer" if integer else "a finite number"
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>=' if min_inclusive else '>'} {minimum:g}")
    if maximum is not None:
        bounds.append(f"{'<=' if max_inclusive else '<'} {maximum:g}")
    expected = kind + (f" {' and '.join(bounds)}" if bounds else "") + (f" ({unit})" if unit else "")
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok_type and hasattr(value, "dtype") and getattr(value, "shape", None) == ():  # numpy scalar
        value, ok_type = value.item(), True
    if not ok_type or not math.isfinite(value) or (integer and float(value) != int(value)):
        hint = ""
        if isinstance(value, str):
            hint = " Give the number itself, without text or units (e.g. 95, not '95%')."
        raise ArgumentError(f"{_where(function, argument)} must be {expected}; got {describe_type(value)}.{hint}")
    if (minimum is not None and (value < minimum if min_inclusive else value <= minimum)) or (
        maximum is not None and (value > maximum if max_inclusive else value >= maximum)
    ):
        raise ArgumentError(f"{_where(function, argument)} must be {expected}; got {value!r}.")
    return int(value) if integer else value


def require_prob(value: Any, *, function: str | None = None, argument: str = "prob") -> float:
    """A probability strictly between 0 and 1 (``0.9``, not ``90``).

    Parameters
    ----------
    value
        What the caller was given.
    function, argument
        The function and argument named in the message.

    Returns
    -------
    float

    Raises
    ------
    ArgumentError
        Not a number in (0, 1); a percentage between 1 and 100 is answered with "Did you mean 0.9?".
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value < 100:
        raise ArgumentError(
            f"{_where(function, argument)} must be a probability between 0 and 1 (exclusive); got {value!r}. "
            f"Did you mean {value / 100:g}?"
        )
    return float(
        require_number(
            value, function=function, argument=argument, minimum=0, maximum=1, min_inclusive=False, max_inclusive=False
        )
    )


def require_choice(
    value: Any, choices: Iterable[str] | Mapping[str, Any], *, function: str | None = None, argument: str
) -> str:
    """``value`` if it is one of ``choices`` (matched exactly), else an error listing the valid ones.

    Parameters
    ----------
    value
        What the caller was given.
    choices
        The valid values (a mapping's keys).
    function, argument
        The function and argument named in the message.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ArgumentError
        Naming the closest valid value and listing them all.
    """
    valid = list(choices)
    if not isinstance(value, str) or value not in valid:
        raise ArgumentError(
            f"{_where(function, argument)}: {describe_type(value)} is not valid. " + suggest(str(value), valid)
        )
    return value
