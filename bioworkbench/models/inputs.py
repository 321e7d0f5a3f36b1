"""Validation of what users hand to the models: data frames, numeric columns, specs and probabilities.

Shared by :class:`~bioworkbench.models.response.ResponseSurface` and :mod:`bioworkbench.models.design_space`:

* :func:`as_frame` turns a polars/pandas frame or a mapping of columns into a polars frame;
* :func:`numeric_columns` reads columns as float arrays and records an :class:`~bioworkbench.errors.Issue`
  for every cell that is not a finite number (naming the row, column and run);
* :func:`parse_specs` validates quality specifications ``{response: (lower, upper)}`` or a campaign
  ``specs`` frame;
* :func:`_check_prob` checks an interval or design-space probability.

Everything here is light (numpy and polars only), so importing it keeps ``import bioworkbench`` fast.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, Issue
from bioworkbench.schema import suggest

__all__ = ["as_frame", "numeric_columns", "parse_specs"]


def parse_specs(specs: Any, responses: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
    """``{response: (lower, upper)}`` from a mapping or a campaign ``specs`` frame, validated.

    Parameters
    ----------
    specs
        ``{response: (lower, upper)}`` with ``None`` (or NaN) for an open side, or a polars frame with
        ``name`` (or ``variable_or_attribute``), ``lower``, ``upper`` and optionally ``kind`` (only rows
        with ``kind == "spec"`` are used). Rows of a frame for responses that were not modelled are
        skipped with a warning; in a mapping they are an error.
    responses
        The modelled responses.

    Raises
    ------
    ConfigError
        A spec on a response that was not modelled (mapping), no usable spec, ``lower >= upper``, a spec
        without any limit, a limit that is not a number, a response with two spec rows.
    """
    responses = list(responses)
    if isinstance(specs, pl.DataFrame):
        name = next((c for c in ("name", "variable_or_attribute") if c in specs.columns), None)
        absent = [c for c in ("lower", "upper") if c not in specs.columns]
        if name is None or absent:
            raise ConfigError(
                "a specs frame needs columns name (or variable_or_attribute), lower, upper (and optionally kind); "
                f"found: {', '.join(specs.columns)}."
            )
        frame = specs.filter(pl.col("kind") == "spec") if "kind" in specs.columns else specs
        skipped = sorted(set(frame[name].to_list()) - set(responses))
        if skipped:
            warnings.warn(
                f"design space: spec rows for {', '.join(map(str, skipped))} skipped (not modelled; modelled: "
                f"{', '.join(responses)}).",
                BioWorkbenchWarning,
                stacklevel=3,
            )
        frame = frame.filter(pl.col(name).is_in(responses))
        dup = frame[name].filter(frame[name].is_duplicated()).unique().to_list()
        if dup:
            raise ConfigError(f"the specs frame has several 'spec' rows for {', '.join(map(str, dup))}; keep one each.")
        raw: dict[str, Any] = {r: (lo, hi) for r, lo, hi in frame.select(name, "lower", "upper").iter_rows()}
    elif isinstance(specs, Mapping):
        raw = dict(specs)
        unknown = [r for r in raw if r not in responses]
        if unknown:
            raise ConfigError(
                f"spec on {', '.join(map(repr, unknown))}, which the model does not include. Modelled responses: "
                f"{', '.join(responses)}. " + suggest(str(unknown[0]), responses, what="Responses")
            )
    else:
        raise ConfigError(f"specs must be {{response: (lower, upper)}} or a specs frame; got {type(specs).__name__}.")
    if not raw:
        raise ConfigError(f"no spec for any modelled response ({', '.join(responses)}).")
    out: dict[str, tuple[float | None, float | None]] = {}
    for r, lim in raw.items():
        try:
            lo, hi = lim
        except (TypeError, ValueError):
            raise ConfigError(
                f"spec of {r!r}: expected (lower, upper) with None for an open side; got {lim!r}."
            ) from None
        vals = []
        for side, v in (("lower", lo), ("upper", hi)):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                vals.append(None)
                continue
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ConfigError(f"spec of {r!r}: {side} limit {v!r} is not a number.") from None
            if math.isinf(v):
                vals.append(None)
            else:
                vals.append(v)
        if vals[0] is None and vals[1] is None:
            raise ConfigError(f"spec of {r!r} has neither a lower nor an upper limit.")
        if vals[0] is not None and vals[1] is not None and not vals[0] < vals[1]:
            raise ConfigError(f"spec of {r!r}: lower {vals[0]:g} must be below upper {vals[1]:g}.")
        out[r] = (vals[0], vals[1])
    return {r: out[r] for r in responses if r in out}


def as_frame(data: Any, *, what: str = "data") -> pl.DataFrame:
    """A polars frame from a polars or pandas frame or a mapping of columns."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if type(data).__module__.startswith("pandas"):
        return pl.from_pandas(data)
    if isinstance(data, Mapping):
        cols = {
            k: (list(v) if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str) else [v])
            for k, v in data.items()
        }
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"{what}: the columns have different lengths ({lengths}); give one value per point.")
        return pl.DataFrame(cols, strict=False)
    raise ConfigError(f"{what}: expected a polars or pandas frame or a mapping of columns; got {type(data).__name__}.")


def _run_label(frame: pl.DataFrame) -> list[str] | None:
    """Run identifiers to name in errors (``batch_id`` or ``run`` column), if the frame has one."""
    for c in ("batch_id", "run", "run_id"):
        if c in frame.columns:
            return [str(v) for v in frame[c].to_list()]
    return None


def numeric_columns(
    frame: pl.DataFrame, columns: Sequence[str], *, missing_ok: Sequence[str] = (), what: str = "data"
) -> tuple[dict[str, np.ndarray], list[Issue]]:
    """The columns as float arrays (NaN where missing) and an :class:`Issue` for every bad cell.

    A cell is bad when it is not a number (text that does not parse, a boolean or another type), not
    finite (±inf) or missing in a column that must be complete (not in ``missing_ok``). Row numbers in
    the issues are 0-based positions in ``frame``.
    """
    runs = _run_label(frame)
    out: dict[str, np.ndarray] = {}
    issues: list[Issue] = []
    for c in columns:
        s = frame[c]
        unreadable = np.zeros(frame.height, bool)
        if s.dtype.is_numeric():
            vals = s.cast(pl.Float64)
        elif s.dtype in (pl.String, pl.Categorical, pl.Enum) or s.dtype == pl.Null:
            vals = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
            text = s.cast(pl.String).to_list()
            unreadable = vals.is_null().to_numpy() & s.is_not_null().to_numpy()
            for i in np.flatnonzero(unreadable):
                issues.append(
                    Issue(
                        f"row {i}: expected a number, found {text[i]!r}.",
                        column=c,
                        batch=runs[i] if runs else None,
                        hint="a decimal comma? convert the column to numbers first" if "," in text[i] else None,
                    )
                )
        else:
            issues.append(Issue(f"column of type {s.dtype}; expected numbers.", column=c))
            continue
        arr = vals.fill_null(float("nan")).to_numpy().astype(float)
        for i in np.flatnonzero(np.isinf(arr)):
            issues.append(Issue(f"row {i}: value {arr[i]} is not finite.", column=c, batch=runs[i] if runs else None))
        if c not in missing_ok:
            for i in np.flatnonzero(np.isnan(arr) & ~unreadable)[:50]:
                issues.append(
                    Issue(
                        f"row {i}: missing value; {what} needs every value of this column.",
                        column=c,
                        batch=runs[i] if runs else None,
                    )
                )
        out[c] = arr
    return out, issues


def _check_prob(prob: float) -> None:
    if not (isinstance(prob, (int, float)) and 0 < prob < 1):
        raise ConfigError(f"prob must be a number between 0 and 1 (exclusive); got {prob!r}.")
