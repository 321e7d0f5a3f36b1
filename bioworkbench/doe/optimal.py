"""D-optimal designs from a candidate set, with exclusions and factors shared within blocks of runs.

Size: :func:`d_optimal` is about 130 lines of code besides its docstring (over the 120 of issue 15):
the checks of candidates, exclusions, terms and shared factors and the exchange search with its
restarts, in that order and on the same local state; splitting it is left to a later change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.doe.design import (
    Design,
    assemble,
    check_factors,
    check_int,
    check_levels,
    check_units,
    natural_values,
    seed_streams,
    sig15,
)
from bioworkbench.errors import ConfigError, Issue, SchemaError
from bioworkbench.schema import suggest
from bioworkbench.terms import code, factor_letters, model_matrix, parse_terms, term_powers

__all__ = ["d_optimal"]

_RIDGE = 1e-6  # added to XᵀX during the search so that singular random starts can be improved
_TOL = 1e-9  # smallest relative gain in det(XᵀX) that counts as an improvement

Exclude = pl.Expr | Callable[[pl.DataFrame], object]


def d_optimal(
    factors: Mapping[str, Sequence[float]],
    *,
    n_runs: int,
    terms: str | Sequence[str] = "quadratic",
    candidates: pl.DataFrame | None = None,
    levels: int | Mapping[str, int] | Sequence[int] = 3,
    exclude: Exclude | None = None,
    shared: Sequence[str] | None = None,
    block_size: int | None = None,
    center_points: int = 0,
    n_starts: int = 10,
    max_iter: int = 1000,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """D-optimal exact design for a model: ``n_runs`` candidates that maximise ``det(XᵀX)``.

    Parameters
    ----------
    factors
        ``{name: (low, high)}`` in natural units; the bounds of every run.
    n_runs
        Number of runs; at least the number of model parameters ``p`` (intercept + terms).
    terms
        The model, in the term language of :mod:`bioworkbench.terms` (``"linear"``, ``"interactions"``,
        ``"quadratic"`` or a list like ``["A", "B", "A:B", "A^2"]``); the intercept is always included.
    candidates
        Natural-unit candidate runs (one column per factor; other columns are kept for ``exclude``).
        Default: the full grid of ``levels`` equally spaced levels per factor in coded units.
    levels
        Levels of the default grid (an int, or per factor); ignored when ``candidates`` are given.
    exclude
        Candidates that must never be run: a polars expression on the natural-unit columns, e.g.
        ``(pl.col("temp") > 36.5) & (pl.col("ph") < 6.9)``, or a callable taking the candidate frame and
        returning a boolean mask (``True`` = excluded).
    shared, block_size
        Runs come in blocks of ``block_size`` (a bioreactor array) and all runs of a block share one level
        of each factor in ``shared`` (e.g. one temperature per array). ``n_runs`` must be a multiple of
        ``block_size``; the blocks get ``block`` ids.
    center_points
        Centre runs (every factor at the middle of its range) added to the ``n_runs`` optimal runs, so
        that replicates give a pure-error estimate and a lack-of-fit test. With ``shared`` factors they
        form their own blocks of ``block_size`` runs (a multiple of it), after the others.
    n_starts, max_iter
        Random starts of the exchange algorithm and the most exchanges per start.
    randomize, random_seed, units
        As in :func:`full_factorial`; the seed also drives the random starts.

    Returns
    -------
    Design
        ``kind="d_optimal"``, ``point_type="optimal"`` (``"center"`` for the centre runs), with ``terms``,
        ``d_efficiency`` and ``log_det`` (of all runs, centre runs included),
        ``n_candidates``, ``n_excluded``, ``shared`` and ``block_size``.

    Raises
    ------
    SchemaError
        Candidate columns missing, not numeric, not finite or outside the factor ranges (row and column named).
    ConfigError
        ``n_runs`` below the number of parameters; an exclusion that removes every candidate or is not a
        boolean mask; feasible candidates that cannot estimate the model (the inestimable terms are
        named); ``shared`` without ``block_size`` (or the reverse), ``n_runs`` not a multiple of
        ``block_size``, fewer blocks than the model's whole-block parameters; a factor with one level;
        ``center_points`` not a multiple of ``block_size`` (with ``shared``) or excluded by ``exclude``.

    Notes
    -----
    Criterion: ``log det(XᵀX)`` of the model matrix ``X`` (intercept + terms, coded units).
    ``D-efficiency = 100 · det(XᵀX)^{1/p} / n``, the efficiency relative to a hypothetical orthogonal
    design with all coded settings at ±1 (as reported by JMP and SAS OPTEX); 100 % is reachable only
    for first-order models on the cube.

    Search: Fedorov's exchange algorithm (Fedorov 1972, *Theory of Optimal Experiments*; Atkinson,
    Donev & Tobias 2007, *Optimum Experimental Designs, with SAS*, ch. 12) from ``n_starts`` random
    starts, the best kept. Each step makes the single swap of a design run ``x_i`` for a candidate
    ``x_j`` with the largest ``Δ = d(x_j) − d(x_i) − d(x_i) d(x_j) + d(x_i, x_j)²``, where
    ``d(x, y) = f(x)ᵀ M⁻¹ f(y)`` and ``det M_new / det M = 1 + Δ``; candidates may repeat. During the
    search ``M = XᵀX + 10⁻⁶ I`` so that a singular start can improve; the result is judged on
    ``XᵀX`` itself. With ``shared`` factors, a run may only move to candidates with its block's
    shared level, and a second move changes a whole block's shared level (its runs keep their other
    settings where that candidate is feasible) followed by exchanges inside the block. The criterion
    treats blocks as fixed groupings without a block effect in the model (the split-plot GLS
    criterion of Goos & Vandebroek 2003, Technometrics 45, 1–10, in the limit of a small whole-plot
    variance).

    Written here rather than with pyDOE3 1.6 ``doe_optimal``, which takes polynomial degrees rather
    than a term list, never repeats a candidate, has no exclusions, shared levels or random starts,
    and recomputes determinants for every trial swap.

    Centre runs are added after the search, which chooses the ``n_runs`` optimal runs as without them;
    ``d_efficiency`` and ``log_det`` are then those of all ``n_runs + center_points`` runs.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    n_runs = check_int("n_runs", n_runs, minimum=1)
    n_starts = check_int("n_starts", n_starts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    center_points = check_int("center_points", center_points, minimum=0)
    terms = parse_terms(terms, names)
    p = len(terms) + 1
    units = check_units(units, names)
    seed, order_rng, search_rng = seed_streams(random_seed)

    coded_all, natural_all, cand_frame = _candidate_set(candidates, levels, ranges, names)
    n_cand = len(coded_all)
    excluded = _exclusion_mask(exclude, cand_frame)
    n_excl = int(excluded.sum())
    if n_excl == n_cand:
        raise ConfigError(f"exclude removes all {n_cand} candidates: nothing is left to run. Relax the exclusion.")
    feasible = np.flatnonzero(~excluded)
    coded = coded_all[feasible]
    f = model_matrix(coded, names, terms)
    labels = ["intercept", *terms]
    if n_runs < p:
        raise ConfigError(
            f"n_runs={n_runs} is fewer than the {p} parameters of the model ({', '.join(labels)}); give n_runs >= {p}."
        )
    dependent = _dependent_columns(f)
    if dependent:
        raise ConfigError(
            f"the {len(feasible)} feasible candidates cannot estimate the model: "
            + ", ".join(labels[j] for j in dependent)
            + " cannot be separated from the terms before them. A square needs 3 or more levels of its factor "
            "(levels=3); an exclusion may have removed the settings needed."
        )

    # blocks of runs sharing levels
    shared_idx, n_blocks = _shared(shared, block_size, n_runs, names)
    if shared_idx:
        whole = [t for t in terms if set(term_powers(t, names)) <= {names[j] for j in shared_idx}]
        if len(whole) + 1 > n_blocks:
            raise ConfigError(
                f"{n_runs} runs in blocks of {block_size} make {n_blocks} blocks, but the model has {len(whole) + 1} "
                f"parameters that only change between blocks (intercept, {', '.join(whole)}): give n_runs >= "
                f"{(len(whole) + 1) * block_size}."
            )
        levels_of, level_id = np.unique(np.round(coded[:, shared_idx], 12), axis=0, return_inverse=True)
        level_id = level_id.ravel()
    else:
        levels_of, level_id = None, None

    best_idx, best_ld, best_blocks = None, -np.inf, None
    for _ in range(n_starts):
        if shared_idx:
            idx, run_block = _search_shared(f, coded, shared_idx, level_id, n_blocks, block_size, search_rng, max_iter)
        else:
            idx = _fedorov(f, search_rng.integers(len(f), size=n_runs), None, max_iter)
            run_block = np.zeros(n_runs, dtype=np.int64)
        sign, ld = np.linalg.slogdet(f[idx].T @ f[idx])
        if sign > 0 and np.linalg.matrix_rank(f[idx]) == p and ld > best_ld + 1e-12:
            best_idx, best_ld, best_blocks = idx, ld, run_block
    if best_idx is None:
        raise ConfigError(
            f"no design of {n_runs} runs found that estimates the model ({', '.join(labels)}) under the "
            "restrictions; more runs, more blocks or fewer exclusions are needed."
        )

    # standard order: blocks by their shared level, runs by candidate order
    if shared_idx:
        keys = []
        for b in range(n_blocks):
            rows = np.flatnonzero(best_blocks == b)
            keys.append((tuple(levels_of[level_id[best_idx[rows[0]]]]), tuple(sorted(best_idx[rows]))))
        rank = {b: r + 1 for r, b in enumerate(sorted(range(n_blocks), key=keys.__getitem__))}
        block = np.array([rank[b] for b in best_blocks], dtype=np.int64)
    else:
        block = np.ones(n_runs, dtype=np.int64)
    order = np.lexsort((best_idx, block))
    chosen = feasible[best_idx[order]]
    runs_coded, runs_natural, block = coded_all[chosen], natural_all[chosen], block[order]
    if center_points:
        runs_coded, runs_natural, block = _center_runs(
            runs_coded, runs_natural, block, center_points, ranges, exclude, block_size if shared_idx else None
        )
    point_type = ["optimal"] * n_runs + ["center"] * center_points
    frame = assemble(runs_coded, point_type, block, ranges, randomize=randomize, rng=order_rng, natural=runs_natural)
    if center_points:  # judged on all runs, the centre runs included
        x_runs = model_matrix(runs_coded, names, terms)
        best_ld = float(np.linalg.slogdet(x_runs.T @ x_runs)[1])
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="d_optimal",
        random_seed=seed,
        randomized=randomize,
        terms=tuple(terms),
        d_efficiency=sig15(float(100.0 * np.exp(best_ld / p) / (n_runs + center_points))),
        log_det=sig15(float(best_ld)),
        n_candidates=n_cand,
        n_excluded=n_excl,
        shared=tuple(names[j] for j in shared_idx),
        block_size=block_size if shared_idx else None,
    )


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def _center_runs(
    coded: np.ndarray,
    natural: np.ndarray,
    block: np.ndarray,
    n: int,
    ranges: Mapping[str, tuple[float, float]],
    exclude: Exclude | None,
    block_size: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs with ``n`` centre runs appended (in block 1, or in new blocks of ``block_size``)."""
    centre = natural_values(np.zeros((1, len(ranges))), ranges)
    try:
        excluded = _exclusion_mask(exclude, pl.DataFrame({name: centre[:, j] for j, name in enumerate(ranges)}))
    except (ConfigError, pl.exceptions.PolarsError, KeyError) as exc:
        raise ConfigError(
            f"center_points: exclude could not be evaluated at the centre of the ranges ({exc})."
        ) from exc
    if excluded[0]:
        raise ConfigError(
            "center_points: the centre of the ranges is excluded by exclude; no centre runs can be added."
        )
    if block_size is None:
        extra = np.ones(n, dtype=np.int64)
    else:
        if n % block_size:
            raise ConfigError(
                f"center_points={n} with shared factors must fill whole blocks of block_size={block_size}; use "
                f"center_points={(n // block_size + 1) * block_size}."
            )
        extra = block.max() + 1 + np.arange(n) // block_size
    return (
        np.vstack([coded, np.zeros((n, len(ranges)))]),
        np.vstack([natural, np.repeat(centre, n, axis=0)]),
        np.concatenate([block, extra]),
    )


def _candidate_set(
    candidates: Any, levels: Any, ranges: Any, names: Any
) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
    """The candidate runs (coded, natural, as a frame): the given ones, checked, or a full factorial
    grid of ``levels`` per factor (pyDOE3) over ``ranges``."""
    if candidates is None:
        from pyDOE3 import fullfact

        lv = check_levels(levels, names)
        coded = -1.0 + 2.0 * fullfact(lv) / (np.array(lv) - 1.0)
        natural = natural_values(coded, ranges)
        return coded, natural, pl.DataFrame({n: natural[:, j] for j, n in enumerate(names)})
    natural = _check_candidates(candidates, ranges)
    return code(natural, ranges), natural, candidates


def _check_candidates(candidates: pl.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    if not isinstance(candidates, pl.DataFrame):
        raise ConfigError(f"candidates must be a polars DataFrame with one column per factor; got {type(candidates)}.")
    issues = []
    for name, (lo, hi) in ranges.items():
        if name not in candidates.columns:
            issues.append(
                Issue(
                    "missing: candidates need one natural-unit column per factor.",
                    column=name,
                    hint=f"columns found: {', '.join(candidates.columns)}.",
                )
            )
            continue
        col = candidates[name]
        if not col.dtype.is_numeric():
            issues.append(Issue(f"expected numbers, found type {col.dtype}.", column=name))
            continue
        values = col.cast(pl.Float64).to_numpy()
        for i in np.flatnonzero(~np.isfinite(values))[:5]:
            issues.append(Issue(f"row {i + 1}: expected a finite number, found {col[int(i)]}.", column=name))
        for i in np.flatnonzero(np.isfinite(values) & ((values < lo) | (values > hi)))[:5]:
            issues.append(
                Issue(
                    f"row {i + 1}: {values[i]:g} lies outside the factor range {lo:g} to {hi:g}.",
                    column=name,
                    hint="widen the range in factors or remove the candidate.",
                )
            )
    if issues:
        raise SchemaError(issues, context="candidates")
    if candidates.height == 0:
        raise ConfigError("candidates is empty: give at least one candidate run.")
    return candidates.select(list(ranges)).cast(pl.Float64).to_numpy()


def _exclusion_mask(exclude: Exclude | None, frame: pl.DataFrame) -> np.ndarray:
    n = frame.height
    if exclude is None:
        return np.zeros(n, dtype=bool)
    if isinstance(exclude, pl.Expr):
        try:
            out = frame.select(exclude.alias("__exclude__")).to_series()
        except pl.exceptions.PolarsError as exc:
            raise ConfigError(
                "exclude could not be evaluated on the candidates "
                f"({exc.__class__.__name__}: {str(exc).splitlines()[0]}). "
                f"Candidate columns: {', '.join(frame.columns)}."
            ) from exc
    elif callable(exclude):
        out = exclude(frame)
    else:
        raise ConfigError(
            "exclude must be a polars expression such as (pl.col('temp') > 36.5) & (pl.col('ph') < 6.9), or a "
            f"function of the candidate frame returning a boolean mask; got {type(exclude).__name__}."
        )
    series = out if isinstance(out, pl.Series) else pl.Series("__exclude__", np.asarray(out))
    if series.len() != n or series.dtype != pl.Boolean:
        raise ConfigError(
            f"exclude must give one boolean per candidate ({n}); got {series.len()} values of type {series.dtype}."
        )
    if series.null_count():
        first = int(np.flatnonzero(series.is_null().to_numpy())[0]) + 1
        raise ConfigError(
            f"exclude gives null for {series.null_count()} candidate(s) (first: row {first}); decide them explicitly, "
            "e.g. with .fill_null(False)."
        )
    return series.to_numpy().astype(bool)


def _dependent_columns(f: np.ndarray) -> list[int]:
    """Columns of ``f`` that are linear combinations of the columns before them."""
    out, rank = [], 0
    for j in range(f.shape[1]):
        r = np.linalg.matrix_rank(f[:, : j + 1])
        if r == rank:
            out.append(j)
        rank = r
    return out


def _shared(
    shared: Sequence[str] | None, block_size: int | None, n_runs: int, names: Sequence[str]
) -> tuple[list[int], int]:
    if shared is None and block_size is None:
        return [], 1
    if shared is None or block_size is None:
        raise ConfigError(
            "shared and block_size go together: shared=['temp'], block_size=4 makes blocks of 4 runs that share "
            "one temperature."
        )
    if isinstance(shared, str):
        shared = [shared]
    letters = factor_letters(names)
    idx = []
    for s in shared:
        name = s if s in names else letters.get(s)
        if name is None:
            raise ConfigError(f"shared factor {s!r} is not a factor. " + suggest(s, names, what="Factors"))
        idx.append(names.index(name))
    if not idx or len(set(idx)) < len(idx) or len(idx) == len(names):
        raise ConfigError(
            f"shared={list(shared)!r}: name each shared factor once, and leave at least one factor free within blocks."
        )
    block_size = check_int("block_size", block_size, minimum=1)
    if n_runs % block_size:
        raise ConfigError(
            f"n_runs={n_runs} is not a multiple of block_size={block_size}; use e.g. n_runs="
            f"{(n_runs // block_size + 1) * block_size}."
        )
    return sorted(idx), n_runs // block_size


# ---------------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------------
def _fedorov(f: np.ndarray, idx: np.ndarray, allowed: np.ndarray | None, max_iter: int) -> np.ndarray:
    """Fedorov exchange: best single swap (run i -> candidate j) until none raises det(XᵀX + εI)."""
    idx = np.array(idx)
    p = f.shape[1]
    m = f[idx].T @ f[idx] + _RIDGE * np.eye(p)
    for _ in range(max_iter):
        fm = f @ np.linalg.inv(m)
        d = np.einsum("ij,ij->i", fm, f)
        dd = d[idx]
        cross = fm[idx] @ f.T
        delta = d[None, :] - dd[:, None] - dd[:, None] * d[None, :] + cross**2
        if allowed is not None:
            delta = np.where(allowed, delta, -np.inf)
        i, j = np.unravel_index(np.argmax(delta), delta.shape)
        if not delta[i, j] > _TOL:
            break
        m += np.outer(f[j], f[j]) - np.outer(f[idx[i]], f[idx[i]])
        idx[i] = j
    return idx


def _ridge_logdet(x: np.ndarray) -> float:
    return float(np.linalg.slogdet(x.T @ x + _RIDGE * np.eye(x.shape[1]))[1])


def _search_shared(
    f: np.ndarray,
    coded: np.ndarray,
    shared_idx: list[int],
    level_id: np.ndarray,
    n_blocks: int,
    block_size: int,
    rng: np.random.Generator,
    max_iter: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One random start of the exchange with runs restricted to their block's shared level."""
    n_levels = int(level_id.max()) + 1
    members = [np.flatnonzero(level_id == lev) for lev in range(n_levels)]
    free = [j for j in range(coded.shape[1]) if j not in shared_idx]
    sub_key = [tuple(np.round(row[free], 12)) for row in coded]
    lookup = {(int(level_id[j]), sub_key[j]): j for j in range(len(coded))}
    run_block = np.repeat(np.arange(n_blocks), block_size)
    block_level = rng.integers(n_levels, size=n_blocks)
    idx = np.array([rng.choice(members[block_level[b]]) for b in run_block])

    def allowed_for(levels: np.ndarray, only: int | None = None) -> np.ndarray:
        ok = level_id[None, :] == levels[run_block][:, None]
        if only is not None:
            ok &= (run_block == only)[:, None]
        return ok

    for _ in range(max_iter):
        idx = _fedorov(f, idx, allowed_for(block_level), max_iter)
        current = _ridge_logdet(f[idx])
        best = (current + _TOL, None)
        for b in range(n_blocks):
            rows = np.flatnonzero(run_block == b)
            for lev in range(n_levels):
                if lev == block_level[b]:
                    continue
                trial = idx.copy()
                for r in rows:  # keep the run's other settings where that candidate is feasible
                    j = lookup.get((lev, sub_key[idx[r]]))
                    trial[r] = rng.choice(members[lev]) if j is None else j
                levels = block_level.copy()
                levels[b] = lev
                trial = _fedorov(f, trial, allowed_for(levels, b), max_iter)
                value = _ridge_logdet(f[trial])
                if value > best[0]:
                    best = (value, (trial, levels))
        if best[1] is None:
            break
        idx, block_level = best[1]
    return idx, run_block
