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
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, Issue, SchemaError
from bioworkbench.schema import suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["as_frame", "enough_batches", "numeric_columns", "parse_specs"]


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

    Returns
    -------
    dict
        ``{response: (lower, upper)}`` for the modelled responses with a spec, ``None`` for an open side.

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
    """A polars frame from a polars or pandas frame or a mapping of columns.

    Parameters
    ----------
    data
        A polars frame or lazy frame, a pandas frame, or a mapping of columns (a scalar is one row).
    what
        What the data are, for the error message.

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    ConfigError
        Columns of different lengths, or another type.
    """
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

    Parameters
    ----------
    frame
        The data.
    columns
        The columns to read.
    missing_ok
        Columns that may have missing values.
    what
        What the data are, named in the issues.

    Returns
    -------
    columns : dict
        ``{column: float array}``.
    issues : list of Issue
        One per bad cell.
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


# -- campaign arguments of the process models (growth, titer, forecast) ----------------------------
def batch_list(batch_ids: Any, campaign: Campaign, *, function: str, argument: str = "batch_ids") -> list[str]:
    """``batch_ids`` (one id or a sequence of ids) checked against ``campaign``.

    Raises
    ------
    ArgumentError
        Not a string or a sequence of strings.
    SchemaError
        An empty list, an id given twice, or ids not in the campaign (each named, with the close matches).
    """
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError, SchemaError

    if isinstance(batch_ids, str):
        ids = [batch_ids]
    elif isinstance(batch_ids, Sequence | pl.Series | np.ndarray) and not isinstance(batch_ids, bytes):
        ids = list(batch_ids)
    else:
        raise ArgumentError(
            f"{function}: {argument} must be a batch id or a list of batch ids; got {describe_type(batch_ids)}."
        )
    bad = [b for b in ids if not isinstance(b, str)]
    if bad:
        raise ArgumentError(
            f"{function}: {argument} must hold batch ids (strings); got {describe_type(bad[0])} among them."
        )
    if not ids:
        all_ids = campaign.batch_ids
        shown = ", ".join(all_ids[:12]) + (" …" if len(all_ids) > 12 else "")
        raise SchemaError(
            f"{function}: {argument} is empty; give the batches to use (campaign {campaign.name!r} has "
            f"{len(all_ids)}: {shown})."
        )
    twice = sorted({b for b in ids if ids.count(b) > 1})
    if twice:
        raise SchemaError(f"{function}: {argument} names batch(es) {', '.join(twice)} more than once.")
    unknown = [b for b in ids if b not in set(campaign.batch_ids)]
    if unknown:
        raise SchemaError(
            [
                Issue(
                    f"{function}: batch {b!r} is not in campaign {campaign.name!r}.",
                    hint=suggest(b, campaign.batch_ids, what="Batches"),
                )
                for b in unknown
            ]
        )
    return ids


def known_times(known: Any, ids: Sequence[str], *, function: str, argument: str = "known_until_h") -> dict[str, float]:
    """``{batch_id: hours}`` of the batches known only up to a time, checked (``None``: ``{}``)."""
    from bioworkbench.checks import describe_type, require_number
    from bioworkbench.errors import ArgumentError, SchemaError

    if known is None:
        return {}
    if not isinstance(known, Mapping):
        raise ArgumentError(
            f"{function}: {argument} must map batch ids to hours ({{'B14': 120.0}}); got {describe_type(known)}."
        )
    out = {}
    for b, v in known.items():
        if b not in ids:
            raise SchemaError(f"{function}: {argument} names batch {b!r}, which is not among the batches fitted.")
        out[b] = float(require_number(v, function=function, argument=f"{argument}[{b!r}]", minimum=0, unit="h"))
    return out


def numeric_cpps(campaign: Campaign, ids: Sequence[str]) -> list[str]:
    """The CPP setpoint columns (``cpp_*``) that are numeric, known for every batch of ``ids`` and vary."""
    sub = campaign.batches.filter(pl.col("batch_id").is_in(list(ids)))
    return [
        c for c in campaign.cpps if sub[c].dtype.is_numeric() and sub[c].null_count() == 0 and sub[c].n_unique() > 1
    ]


def resolve_covariates(covariates: Any, campaign: Campaign, ids: Sequence[str], *, function: str) -> list[str]:
    """``None`` or ``[]``: none; ``"auto"``: :func:`numeric_cpps`; a list: those batch columns (checked)."""
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError

    if covariates is None:
        return []
    if isinstance(covariates, str):
        if covariates == "auto":
            return numeric_cpps(campaign, ids)
        covariates = [covariates]
    if not isinstance(covariates, Sequence) or not all(isinstance(c, str) for c in covariates):
        raise ArgumentError(
            f"{function}: covariates must be 'auto', None or a list of batch columns; got {describe_type(covariates)}."
        )
    missing = [c for c in covariates if c not in campaign.batches.columns]
    if missing:
        raise ConfigError(
            f"{function}: covariate(s) {', '.join(map(repr, missing))} not in the batches table. "
            + suggest(missing[0], campaign.batches.columns, what="Columns")
        )
    return list(covariates)


def resolve_group(group: Any, campaign: Campaign, ids: Sequence[str], *, function: str) -> dict[str, Any]:
    """The grouping of the batches: ``{"columns", "labels" (one per id), "how"}`` (``columns`` empty: none).

    ``"auto"``: a batches column named ``group`` when there is one, else the categorical (non-numeric)
    CPP columns (``cpp_*``) whose levels split the batches (more than one level, fewer than the
    batches), combined when there are several; ``None``: no grouping; a column name: that column.
    """
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError

    sub = campaign.batches.filter(pl.col("batch_id").is_in(list(ids)))

    def splits(c: str) -> bool:
        return sub[c].null_count() == 0 and 1 < sub[c].n_unique() < len(ids)

    if group is None:
        return {"columns": [], "labels": [], "how": "not grouped (group=None)"}
    if not isinstance(group, str):
        raise ArgumentError(f"{function}: group must be 'auto', None or a batches column; got {describe_type(group)}.")
    if group == "auto":
        if "group" in sub.columns and splits("group"):
            cols, how = ["group"], "the batches' declared group column"
        else:
            cols = [c for c in campaign.cpps if not sub[c].dtype.is_numeric() and splits(c)]
            how = "the categorical CPP" + ("s" if len(cols) > 1 else "")
        if not cols:
            return {
                "columns": [],
                "labels": [],
                "how": "not grouped: no group column and no categorical CPP that splits the batches",
            }
        how = f"chosen automatically: {how}"
    else:
        if group not in sub.columns:
            raise ConfigError(
                f"{function}: group column {group!r} not in the batches table. "
                + suggest(group, sub.columns, what="Columns")
            )
        if sub[group].null_count():
            raise ConfigError(f"{function}: group column {group!r} is empty for some of the batches.")
        cols, how = [group], "as asked (group=...)"
    lab = dict(
        sub.select(
            "batch_id", _label=pl.concat_str([pl.col(c).cast(pl.String) for c in cols], separator=" / ")
        ).iter_rows()
    )
    return {"columns": cols, "labels": [lab[b] for b in ids], "how": how}


def enough_batches(
    ids: Sequence[str],
    left_out: Sequence[Mapping[str, str]],
    *,
    function: str,
    model: str,
    data: str,
    stacklevel: int = 2,
) -> list[str]:
    """Check that a hierarchical model keeps at least two batches, and say which were left out.

    Shared by the growth and titer models, whose partial pooling needs two batches at least.

    Parameters
    ----------
    ids
        The batches kept for the fit.
    left_out
        ``{"batch_id": ..., "reason": ...}`` of each batch left out (e.g. too few points).
    function
        The calling function, named at the head of the error (``"GrowthModel.fit"``).
    model
        The model's class name, named at the head of the warning.
    data
        The data the model needs, in words (``"VCD"``, ``"titer"``).
    stacklevel
        Passed to :func:`warnings.warn` (counted from the caller of this function).

    Returns
    -------
    list of str
        ``ids``, unchanged.

    Raises
    ------
    SchemaError
        Fewer than two batches kept; names the kept ones and why the others were left out.

    Warns
    -----
    BioWorkbenchWarning
        Once, naming each batch left out and why, when some were.
    """
    ids = list(ids)
    if len(ids) < 2:
        why = "; ".join(f"{e['batch_id']}: {e['reason']}" for e in left_out)
        what = model.removesuffix("Model").lower()
        raise SchemaError(
            f"{function}: {len(ids)} batch{'es' if len(ids) != 1 else ''} with enough {data} data "
            f"({', '.join(ids) or 'none'}); the {what} model needs at least 2." + (f" Left out: {why}." if why else "")
        )
    if left_out:
        warnings.warn(
            f"{model}: {len(left_out)} batch(es) left out: "
            + "; ".join(f"{e['batch_id']} ({e['reason']})" for e in left_out)
            + ". Pass batch_ids=[...] to choose the batches yourself.",
            BioWorkbenchWarning,
            stacklevel=stacklevel + 1,
        )
    return ids
