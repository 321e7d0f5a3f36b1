"""Full and fractional factorial designs (2-level and multi-level), with centre points, replicates, blocks.

pyDOE3 builds the run tables (``fullfact``, ``fracfact``); :mod:`bioworkbench.doe.words` computes
defining relations and aliases, :mod:`bioworkbench.doe.blocking` the blocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bioworkbench.doe.blocking import block_plan
from bioworkbench.doe.design import (
    Design,
    assemble,
    check_factors,
    check_int,
    check_levels,
    check_units,
    seed_streams,
)
from bioworkbench.doe.words import (
    Generator,
    bits,
    defining_group,
    generator_text,
    parse_generators,
    resolution_number,
    standard_generators,
    word_letters,
)
from bioworkbench.errors import ConfigError

__all__ = ["fraction_matrix", "fractional_factorial", "full_factorial", "two_level_full"]


# ---------------------------------------------------------------------------------------------
# run tables
# ---------------------------------------------------------------------------------------------
def two_level_full(k: int) -> np.ndarray:
    """2^k in Yates standard order (first factor fastest), via pyDOE3 ``fullfact``.

    Parameters
    ----------
    k
        Number of factors.

    Returns
    -------
    numpy.ndarray
        ``2^k`` runs × ``k`` factors of ±1.
    """
    from pyDOE3 import fullfact

    return fullfact([2] * k) * 2.0 - 1.0


def fraction_matrix(gens: Sequence[Generator], k: int) -> np.ndarray:
    """The ±1 fraction in Yates order of the base factors, via pyDOE3 ``fracfact`` (checked here).

    Parameters
    ----------
    gens
        Generators ``(generated factor, right-hand-side mask, sign)``
        (:func:`bioworkbench.doe.words.parse_generators`).
    k
        Number of factors, base and generated.

    Returns
    -------
    numpy.ndarray
        ``2^(k-p)`` runs × ``k`` factors of ±1; each generated column equals its generator.
    """
    from pyDOE3 import fracfact

    generated = {g: (rhs, sign) for g, rhs, sign in gens}
    base = [j for j in range(k) if j not in generated]
    py = {j: chr(97 + i) for i, j in enumerate(base)}  # pyDOE3 wants the base factors as a, b, c, ...
    tokens = []
    for j in range(k):
        if j in generated:
            rhs, sign = generated[j]
            tokens.append(("-" if sign < 0 else "") + "".join(py[b] for b in bits(rhs)))
        else:
            tokens.append(py[j])
    h = fracfact(" ".join(tokens))
    h = h[np.lexsort([h[:, b] for b in base])]  # last key primary: the first base factor changes fastest
    for g, (rhs, sign) in generated.items():
        if not np.array_equal(h[:, g], sign * np.prod(h[:, bits(rhs)], axis=1)):  # pragma: no cover
            raise RuntimeError(f"pyDOE3 fracfact returned a column {word_letters(1 << g)} that is not its generator")
    return h


def _blocks_per_replicate(blocks: int, replicates: int) -> tuple[int, bool]:
    """Blocks per replicate and whether each replicate gets its own blocks.

    ``blocks`` counts all blocks: ``blocks == replicates`` makes each replicate a block; ``blocks ==
    b·replicates`` splits every replicate into ``b`` blocks; otherwise the replicates share ``blocks`` blocks.
    """
    if blocks == 1:
        return 1, False
    if replicates > 1 and blocks % replicates == 0:
        return blocks // replicates, True
    return blocks, False


def _stack(
    points: np.ndarray,
    block: np.ndarray,
    *,
    n_blocks: int,
    center_points: int,
    replicates: int,
    own_blocks: bool,
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Replicates of the factorial points with ``center_points`` centre runs added to each block."""
    k = points.shape[1]
    coded, types, blocks = [], [], []
    for r in range(replicates):
        offset = r * n_blocks if own_blocks else 0
        coded.append(points)
        types += ["factorial"] * len(points)
        blocks.append(block + offset)
        for b in range(1, n_blocks + 1):
            coded.append(np.zeros((center_points, k)))
            types += ["center"] * center_points
            blocks.append(np.full(center_points, b + offset, dtype=np.int64))
    return np.vstack(coded), types, np.concatenate(blocks)


# ---------------------------------------------------------------------------------------------
# public generators
# ---------------------------------------------------------------------------------------------
def full_factorial(
    factors: Mapping[str, Sequence[float]],
    *,
    levels: int | Mapping[str, int] | Sequence[int] = 2,
    center_points: int = 0,
    replicates: int = 1,
    blocks: int = 1,
    block_generators: Sequence[str] | None = None,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """Full factorial design, 2-level or multi-level, with centre points, replicates and blocks.

    Parameters
    ----------
    factors
        ``{name: (low, high)}`` in natural units.
    levels
        Levels per factor (an int for all, or per factor); levels are equally spaced in coded units
        from −1 to +1 (3 levels: −1, 0, +1).
    center_points
        Centre runs (all factors coded 0) added to *each block* of each replicate.
    replicates
        Complete copies of the design.
    blocks
        Total number of blocks. ``blocks == replicates``: each replicate is a block. Otherwise a 2-level
        design is split into ``2^q`` blocks per replicate by confounding interactions with blocks:
        the generators are chosen to confound the highest-order interactions possible (exhaustive search
        minimising the confounded effects of order 2, then 3, …), or given as ``block_generators``. The
        words used are stated in ``Design.block_generators`` and ``Design.blocks_confounded``.
    block_generators
        Words to confound with blocks, e.g. ``["ABC", "ACD"]`` (letters or ``"temp:ph:feed"``).
    randomize, random_seed
        Randomise the run order within blocks with this seed (recorded; drawn when ``None``).
    units
        ``{name: unit}`` for the lab sheet.

    Returns
    -------
    Design
        ``kind="full_factorial"``; ``levels`` holds the levels per factor.

    Raises
    ------
    ConfigError
        A factor with fewer than 2 levels (one level cannot be estimated), a block count that cannot be
        made by confounding (not a power of two per replicate, or more blocks than halving allows), a
        block generator that confounds a main effect, blocks with a multi-level design other than
        ``blocks == replicates``.

    Notes
    -----
    Run table from pyDOE3 ``fullfact`` in Yates standard order (first factor changes fastest). The
    2-level design is orthogonal: ``XᵀX = N·I`` for the model with all interactions. Blocking by
    confounding follows Montgomery (2017), *Design and Analysis of Experiments*, 9th ed., §7.4–7.6.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    lv = check_levels(levels, names)
    center_points = check_int("center_points", center_points, minimum=0)
    replicates = check_int("replicates", replicates, minimum=1)
    blocks = check_int("blocks", blocks, minimum=1)
    units = check_units(units, names)
    seed, order_rng, _ = seed_streams(random_seed)
    from pyDOE3 import fullfact

    grid = fullfact(lv)
    points = -1.0 + 2.0 * grid / (np.array(lv) - 1.0)
    per_rep, own = _blocks_per_replicate(blocks, replicates)
    gen_words: tuple[str, ...] = ()
    confounded: tuple[str, ...] = ()
    block = np.ones(len(points), dtype=np.int64)
    if per_rep > 1:
        if any(n != 2 for n in lv):
            raise ConfigError(
                f"blocks={blocks}: only 2-level designs are blocked by confounding here; with levels "
                f"{dict(zip(names, lv, strict=True))} use blocks=1 or blocks=replicates ({replicates}) so that "
                "each replicate is a block."
            )
        block, gen_words, confounded = block_plan(points, names, [], per_rep, block_generators)
    elif block_generators is not None:
        raise ConfigError("block_generators given but blocks leaves nothing to confound; set blocks=2, 4, ….")
    coded, types, block_all = _stack(
        points, block, n_blocks=per_rep, center_points=center_points, replicates=replicates, own_blocks=own
    )
    frame = assemble(coded, types, block_all, ranges, randomize=randomize, rng=order_rng)
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="full_factorial",
        random_seed=seed,
        randomized=randomize,
        levels=tuple(lv),
        block_generators=gen_words,
        blocks_confounded=confounded,
    )


def fractional_factorial(
    factors: Mapping[str, Sequence[float]],
    *,
    generators: str | Sequence[str] | None = None,
    resolution: int | str | None = None,
    center_points: int = 0,
    replicates: int = 1,
    blocks: int = 1,
    block_generators: Sequence[str] | None = None,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """Regular 2-level fractional factorial ``2^(k−p)`` from generators or a requested resolution.

    Parameters
    ----------
    factors
        ``{name: (low, high)}``; letters ``A, B, C, …`` follow this order.
    generators
        ``["D=ABC"]`` (letters), ``["feed=temp:ph"]`` (names), a minus sign for the other fraction
        (``"D=-ABC"``). The generated factors are the left-hand sides; the others are the base factors
        of a full ``2^(k−p)`` factorial.
    resolution
        Instead of generators: the smallest standard fraction with at least this resolution (3, 4, 5 or
        ``"III"``, ``"IV"``, ``"V"``, …), see :func:`standard_generators`.
    center_points, replicates, blocks, block_generators, randomize, random_seed, units
        As in :func:`full_factorial`; block generators are chosen among the alias chains, never
        confounding a main effect.

    Returns
    -------
    Design
        ``kind="fractional_factorial"`` with ``generators``, ``defining_relation`` (all ``2^p − 1`` words),
        ``resolution`` and the ``aliases`` frame.

    Raises
    ------
    ConfigError
        Neither or both of ``generators`` and ``resolution``; unknown generator letters; a generator that
        aliases two main effects (resolution < III); a resolution no fraction reaches.

    Notes
    -----
    The defining relation is the group generated by the words ``I = D·ABC`` of the generators; the
    resolution is its shortest word length; the aliases of effect ``E`` are ``E·W`` for every word
    ``W`` (Box & Hunter 1961, Technometrics 3, 311–351 and 449–458; Montgomery 9th ed. §8.2–8.5).
    Resolution III: main effects clear of each other but aliased with two-factor interactions; IV: main
    effects clear of two-factor interactions; V: two-factor interactions clear of each other.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    k = len(names)
    notes: list[str] = []
    if (generators is None) == (resolution is None):
        raise ConfigError(
            "fractional_factorial needs exactly one of generators=['D=ABC', ...] or resolution=3/4/5 (III/IV/V)."
        )
    if resolution is not None:
        res = resolution_number(resolution)
        generators, source = standard_generators(k, res)
        notes.append(source)
    gens = parse_generators(generators, names)
    center_points = check_int("center_points", center_points, minimum=0)
    replicates = check_int("replicates", replicates, minimum=1)
    blocks = check_int("blocks", blocks, minimum=1)
    units = check_units(units, names)
    seed, order_rng, _ = seed_streams(random_seed)
    points = fraction_matrix(gens, k)
    group = defining_group(gens)
    per_rep, own = _blocks_per_replicate(blocks, replicates)
    gen_words: tuple[str, ...] = ()
    confounded: tuple[str, ...] = ()
    block = np.ones(len(points), dtype=np.int64)
    if per_rep > 1:
        block, gen_words, confounded = block_plan(points, names, gens, per_rep, block_generators)
    elif block_generators is not None:
        raise ConfigError("block_generators given but blocks leaves nothing to confound; set blocks=2, 4, ….")
    coded, types, block_all = _stack(
        points, block, n_blocks=per_rep, center_points=center_points, replicates=replicates, own_blocks=own
    )
    frame = assemble(coded, types, block_all, ranges, randomize=randomize, rng=order_rng)
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="fractional_factorial",
        random_seed=seed,
        randomized=randomize,
        generators=tuple(generator_text(g) for g in gens),
        defining_relation=tuple(word_letters(w, s) for w, s in group),
        resolution=min(w.bit_count() for w, _ in group),
        block_generators=gen_words,
        blocks_confounded=confounded,
        notes=tuple(notes),
    )
