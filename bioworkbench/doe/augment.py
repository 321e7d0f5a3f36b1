"""Adding runs to a design that has been run: D-optimal augmentation and fold-over.

:func:`augment` keeps every run of the design and adds the runs that maximise ``det(XᵀX)`` of the
new model, with the exchange of :mod:`bioworkbench.doe.optimal` restricted to the new runs.
:func:`fold_over` adds the mirror image of a two-level design (all factors or chosen ones), which
separates main effects from the two-factor interactions they were aliased with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from bioworkbench.doe.design import Design, check_int, natural_values, seed_streams, sig15
from bioworkbench.doe.evaluation import aliased_terms
from bioworkbench.doe.optimal import Exclude, _candidate_set, _exclusion_mask, _fedorov
from bioworkbench.doe.words import _identify_generators, defining_group, parse_generators, word_letters
from bioworkbench.errors import ArgumentError, ConfigError
from bioworkbench.schema import suggest
from bioworkbench.terms import LETTERS, factor_letters, model_matrix, parse_terms

__all__ = ["augment", "fold_over"]


def augment(
    design: Design,
    n_runs: int,
    terms: str | Sequence[str] = "quadratic",
    *,
    candidates: pl.DataFrame | None = None,
    levels: int | Mapping[str, int] | Sequence[int] = 3,
    exclude: Exclude | None = None,
    new_block: bool = True,
    n_starts: int = 10,
    max_iter: int = 1000,
    random_seed: int | None = None,
) -> Design:
    """D-optimal augmentation: add ``n_runs`` runs to a design, keeping every run it has.

    Parameters
    ----------
    design
        The design that was run (its frame, response columns included, is kept as it is).
    n_runs
        Runs to add.
    terms
        The model the augmented design must support (e.g. ``"quadratic"`` after a screening design
        showed curvature).
    candidates, levels, exclude
        As in :func:`~bioworkbench.doe.d_optimal`: the candidate runs (default: the grid of ``levels``
        levels per factor over the design's ranges) and the ones never to run.
    new_block
        Put the new runs in a new block (they are run later, under other conditions) and include the
        block effects in the criterion; ``False`` adds them to the last block and the criterion has no
        block effects.
    n_starts, max_iter
        Random starts of the exchange and the most exchanges per start.
    random_seed
        Seed of the starts and of the new runs' order (drawn and recorded when ``None``).

    Returns
    -------
    Design
        ``kind="d_optimal"`` with the original runs first (their ``std_order``, ``run_order``, block and
        responses unchanged) and the new runs after them (``point_type="optimal"``, run order randomised
        after the last run when the design was randomised); ``terms``, ``d_efficiency`` and ``log_det``
        of the whole design; a note saying what was augmented.

    Raises
    ------
    ArgumentError
        ``design`` is not a Design.
    ConfigError
        ``n_runs`` not a positive integer; an exclusion that removes every candidate; a model the
        augmented design still cannot estimate (the aliased terms are named: add runs).
    SchemaError
        Candidate columns missing, not numeric or outside the ranges.

    Notes
    -----
    Criterion: ``log det(XᵀX)`` with ``X`` = intercept, block indicators (blocks 2, 3, …, with
    ``new_block``) and the model terms at the coded settings of old and new runs. Search: Fedorov's
    exchange (as :func:`~bioworkbench.doe.d_optimal`) on the new runs only, the old runs held fixed
    (Atkinson, Donev & Tobias 2007, *Optimum Experimental Designs, with SAS*, §19.1; Montgomery,
    *Design and Analysis of Experiments*, 9th ed., §11.4.4, design augmentation).
    """
    if not isinstance(design, Design):
        raise ArgumentError(f"augment: design must be a bw.doe.Design; got {type(design).__name__}.")
    n_new = check_int("n_runs", n_runs, minimum=1)
    n_starts = check_int("n_starts", n_starts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    ranges, names = design.factors, design.factor_names
    model = parse_terms(terms, names)
    seed, order_rng, search_rng = seed_streams(random_seed)

    cand_coded, cand_natural, cand_frame = _candidate_set(candidates, levels, ranges, names)
    excluded = _exclusion_mask(exclude, cand_frame)
    if excluded.all():
        raise ConfigError(f"augment: exclude removes all {len(excluded)} candidates; relax the exclusion.")
    feasible = np.flatnonzero(~excluded)
    cand_coded, cand_natural = cand_coded[feasible], cand_natural[feasible]

    old_coded, old_block = design.coded, design.frame["block"].to_numpy()
    last = int(old_block.max())
    new_id = last + 1 if new_block else last
    block_ids = sorted({*old_block.tolist(), new_id}) if new_block else []
    f_cand = _with_blocks(model_matrix(cand_coded, names, model), np.full(len(cand_coded), new_id), block_ids)
    f_old = _with_blocks(model_matrix(old_coded, names, model), old_block, block_ids)
    f_all = np.vstack([f_cand, f_old])
    n_cand, n_old = len(f_cand), len(f_old)
    fixed = n_cand + np.arange(n_old)
    allowed = np.zeros((n_old + n_new, n_cand + n_old), dtype=bool)
    allowed[np.arange(n_old), fixed] = True
    allowed[n_old:, :n_cand] = True

    best, best_ld = None, -np.inf
    for _ in range(n_starts):
        start = np.concatenate([fixed, search_rng.integers(n_cand, size=n_new)])
        idx = _fedorov(f_all, start, allowed, max_iter)
        sign, ld = np.linalg.slogdet(f_all[idx].T @ f_all[idx])
        if sign > 0 and ld > best_ld + 1e-12:
            best, best_ld = idx, ld
    labels = ["intercept", *(f"block {b}" for b in block_ids[1:]), *model]
    if best is None:
        start = np.concatenate([fixed, search_rng.integers(n_cand, size=n_new)])
        problems = aliased_terms(f_all[_fedorov(f_all, start, allowed, max_iter)], labels)
        raise ConfigError(
            f"augment: {n_old} runs + {n_runs} new cannot estimate the model ({len(labels)} parameters with the "
            f"blocks); aliased: {'; '.join(problems) or 'rank deficient'}. Add more runs."
        )
    chosen = np.sort(best[n_old:])  # standard order: candidate order
    new_coded, new_natural = cand_coded[chosen], cand_natural[chosen]
    x = model_matrix(np.vstack([old_coded, new_coded]), names, model)
    _, log_det = np.linalg.slogdet(x.T @ x)
    frame = _append_runs(design, new_coded, new_natural, np.full(n_new, new_id), ["optimal"] * n_new, order_rng)
    where = f"in a new block {new_id}" if new_block else f"in block {new_id}"
    return Design(
        frame=frame,
        factors=dict(ranges),
        units=dict(design.units),
        kind="d_optimal",
        random_seed=seed,
        randomized=design.randomized,
        terms=tuple(model),
        d_efficiency=sig15(float(100.0 * np.exp(log_det / x.shape[1]) / len(x))),
        log_det=sig15(float(log_det)),
        n_candidates=len(excluded),
        n_excluded=int(excluded.sum()),
        notes=(
            *design.notes,
            f"augmented: the {design.n_runs} runs of the {design._title()} kept (std_order 1–{design.n_runs}), "
            f"{n_new} D-optimal runs added {where} for the model {', '.join(model)}.",
        ),
    )


def fold_over(design: Design, factors: Sequence[str] | None = None, *, random_seed: int | None = None) -> Design:
    """Fold-over of a two-level design: its runs again with the signs of all (or the given) factors switched.

    Parameters
    ----------
    design
        A two-level design (every coded setting of the folded factors -1, 0 or +1), e.g. a resolution III
        fraction.
    factors
        Fold only these factors (names or letters): the single-factor fold-over de-aliases that factor's
        main effect and its two-factor interactions. Default: all factors (the full fold-over).
    random_seed
        Seed of the new runs' order (used when the design was randomised).

    Returns
    -------
    Design
        The original runs (unchanged) then the folded runs in a new block, centre runs not repeated. For
        a regular fraction: the combined design's generators, defining relation (the words with an even
        number of folded letters) and resolution; the dropped words are confounded with the blocks.

    Raises
    ------
    ArgumentError
        ``design`` is not a Design.
    ConfigError
        An unknown factor; a folded factor with settings other than -1, 0 and +1 coded.

    Notes
    -----
    Switching the signs of the factors in ``S`` changes the sign of every word ``W`` of the defining
    relation with an odd number of letters in ``S``; the two halves together keep only the words with
    an even number (Montgomery, *Design and Analysis of Experiments*, 9th ed., §8.6.2; Box, Hunter &
    Hunter 2005, §6.8). Folding all factors of a resolution III design removes every odd-length word: the
    combined design has resolution IV, main effects clear of two-factor interactions.
    """
    if not isinstance(design, Design):
        raise ArgumentError(f"fold_over: design must be a bw.doe.Design; got {type(design).__name__}.")
    names = design.factor_names
    letters = factor_letters(names)
    if factors is None:
        folded = list(range(len(names)))
    else:
        folded = []
        for f in [factors] if isinstance(factors, str) else factors:
            name = f if f in names else letters.get(f)
            if name is None:
                raise ConfigError(f"fold_over: {f!r} is not a factor. " + suggest(f, names, what="Factors"))
            folded.append(names.index(name))
    coded = design.coded
    sub = coded[:, folded]
    odd = ~np.isclose(sub, -1.0) & ~np.isclose(sub, 0.0) & ~np.isclose(sub, 1.0)
    if odd.any():
        j = folded[int(np.flatnonzero(odd.any(axis=0))[0])]
        raise ConfigError(
            f"fold_over: factor {names[j]!r} has coded settings other than -1, 0 and +1; a fold-over needs "
            "two-level factors (centre runs allowed)."
        )
    keep = ~np.all(np.isclose(coded, 0.0), axis=1)  # centre runs are not repeated
    new_coded = coded[keep].copy()
    new_coded[:, folded] *= -1.0
    new_coded += 0.0  # no negative zeros
    new_natural = natural_values(new_coded, design.factors)
    new_id = int(design.frame["block"].max()) + 1
    seed, order_rng, _ = seed_streams(random_seed)
    frame = _append_runs(
        design,
        new_coded,
        new_natural,
        np.full(len(new_coded), new_id),
        design.frame["point_type"].to_list(),
        order_rng,
        keep,
    )
    which = "all factors" if factors is None else ", ".join(names[j] for j in folded)
    facts: dict = {"notes": (*design.notes, f"fold-over of {which}: the folded runs are block {new_id}.")}
    kind, levels = design.kind, design.levels
    if design.generators:
        facts.update(_folded_relation(design, frame, folded))
        confounded = ", ".join(facts["blocks_confounded"][:6]) + (" …" if len(facts["blocks_confounded"]) > 6 else "")
        facts["notes"] += (f"the blocks are confounded with the dropped words {confounded} (and their aliases).",)
        if not facts["generators"]:  # the two halves make the full factorial
            kind, levels = "full_factorial", (2,) * len(names)
    return Design(
        frame=frame,
        factors=dict(design.factors),
        units=dict(design.units),
        kind=kind,
        random_seed=seed,
        randomized=design.randomized,
        levels=levels,
        **facts,
    )


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _with_blocks(f: np.ndarray, block: np.ndarray, block_ids: list[int]) -> np.ndarray:
    """``f`` with block indicator columns (blocks after the first) after the intercept."""
    if len(block_ids) < 2:
        return f
    ind = np.stack([(block == b).astype(float) for b in block_ids[1:]], axis=1)
    return np.hstack([f[:, :1], ind, f[:, 1:]])


def _append_runs(
    design: Design,
    coded: np.ndarray,
    natural: np.ndarray,
    block: np.ndarray,
    point_type: list[str],
    rng: np.random.Generator,
    rows: np.ndarray | None = None,
) -> pl.DataFrame:
    """The design's frame with new runs after it (std_order and run_order continue; other columns null)."""
    old = design.frame
    n = len(coded)
    if rows is not None:  # point types of the runs that were folded
        point_type = [t for t, k in zip(point_type, rows, strict=True) if k]
    start = int(old["run_order"].max())
    run = start + 1 + (rng.permutation(n) if design.randomized else np.arange(n))
    coded, natural = sig15(coded), sig15(natural)
    cols = {
        "std_order": pl.Series(int(old["std_order"].max()) + 1 + np.arange(n), dtype=pl.Int64),
        "run_order": pl.Series(run, dtype=pl.Int64),
        "block": pl.Series(block, dtype=pl.Int64),
        "point_type": pl.Series(point_type, dtype=pl.String),
        **{name: pl.Series(natural[:, j], dtype=pl.Float64) for j, name in enumerate(design.factors)},
        **{f"{name}_coded": pl.Series(coded[:, j], dtype=pl.Float64) for j, name in enumerate(design.factors)},
    }
    new = pl.DataFrame(cols)
    return pl.concat([old, new], how="diagonal_relaxed").sort("run_order")


def _folded_relation(design: Design, frame: pl.DataFrame, folded: list[int]) -> dict:
    """Generators, defining relation, resolution and blocks-confounded words of a folded regular fraction."""
    names = design.factor_names
    mask = sum(1 << j for j in folded)
    group = defining_group(parse_generators(list(design.generators), names))
    dropped = tuple(word_letters(w, s) for w, s in group if (w & mask).bit_count() % 2)
    runs = frame.filter(pl.col("point_type") != "center").select(design.coded_columns).to_numpy()
    runs = np.unique(np.round(runs, 9), axis=0)
    gens = _identify_generators(runs)
    if not gens:
        return {"generators": (), "defining_relation": (), "resolution": None, "blocks_confounded": dropped}
    kept = defining_group(parse_generators(list(gens), [LETTERS[j] for j in range(len(names))]))
    return {
        "generators": gens,
        "defining_relation": tuple(word_letters(w, s) for w, s in kept),
        "resolution": min(w.bit_count() for w, _ in kept),
        "blocks_confounded": dropped,
    }
