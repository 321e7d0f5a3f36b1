"""Blocking 2-level designs by confounding interactions with blocks.

pyDOE3 has no blocking, so the block generators are chosen here: an exhaustive search for the ``q``
generators (``2^q`` blocks) that confound the fewest low-order effects (alias chains for a fraction).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from bioworkbench.doe.words import Generator, bits, defining_group, parse_effect, word_letters
from bioworkbench.errors import ConfigError

__all__ = ["block_plan"]

_MAX_BLOCK_SEARCH = 3_000_000  # combinations of block generators tried exhaustively


def _class_counts(base: Sequence[int], group: Sequence[tuple[int, int]], k: int) -> tuple[np.ndarray, list[int]]:
    """For each alias class (indexed by its base-factor vector ``v``): effects per order; and ``v``'s mask."""
    m = len(base)
    words = [0, *[w for w, _ in group]]
    counts = np.zeros((2**m, k + 1), dtype=np.int64)
    masks = [0] * 2**m
    for v in range(1, 2**m):
        mask = sum(1 << base[i] for i in range(m) if v >> i & 1)
        masks[v] = mask
        for w in words:
            counts[v, (mask ^ w).bit_count()] += 1
    return counts, masks


def _span(vectors: Sequence[int]) -> list[int]:
    out = []
    for r in range(1, len(vectors) + 1):
        for combo in itertools.combinations(vectors, r):
            x = 0
            for v in combo:
                x ^= v
            out.append(x)
    return out


def _search_block_vectors(counts: np.ndarray, q: int) -> tuple[int, ...]:
    """``q`` independent class vectors whose span confounds the fewest low-order effects with blocks.

    Exhaustive over all choices. The cost is the number of effects of order 1, 2, 3, … confounded with
    blocks, compared in that order: the minimum aberration of the block word-length pattern of the
    given design (Sun, Wu & Chen 1997, Technometrics 39, 298–307, with the treatment design fixed).
    Main effects are never confounded.
    """
    allowed = np.flatnonzero((counts[:, 1] == 0) & (np.arange(len(counts)) > 0))
    n_comb = math.comb(len(allowed), q)
    if n_comb > _MAX_BLOCK_SEARCH:
        raise ConfigError(
            f"choosing {q} block generators among {len(allowed)} effects means {n_comb:,} combinations; "
            "give block_generators=[...] (e.g. ['ABCD', 'CDEF']) instead."
        )
    coeffs = [c for c in range(1, 2**q)]
    best_key, best = None, None
    it = itertools.combinations(allowed.tolist(), q)
    while True:
        chunk = np.array(list(itertools.islice(it, 50_000)), dtype=np.int64).reshape(-1, q)
        if not len(chunk):
            break
        span = np.stack(
            [np.bitwise_xor.reduce(chunk[:, [j for j in range(q) if c >> j & 1]], axis=1) for c in coeffs], axis=1
        )
        dependent = (span == 0).any(axis=1)
        cost = counts[span].sum(axis=1)  # (n, k + 1)
        keys = [cost[:, o] for o in range(cost.shape[1] - 1, 0, -1)] + [dependent]
        i = np.lexsort(keys)[0]
        key = (bool(dependent[i]), *cost[i, 1:].tolist())
        if best_key is None or key < best_key:
            best_key, best = key, tuple(int(v) for v in chunk[i])
    if best is None or best_key[0]:
        raise ConfigError(
            f"cannot split the design into {2**q} blocks without confounding a main effect with blocks; use fewer "
            "blocks or a larger fraction."
        )
    return best


def block_plan(
    coded: np.ndarray,
    names: Sequence[str],
    gens: Sequence[Generator],
    n_blocks: int,
    block_generators: Sequence[str] | None,
) -> tuple[np.ndarray, tuple[str, ...], tuple[str, ...]]:
    """Blocks of a 2-level (fractional) factorial by confounding, and the words that do it.

    Parameters
    ----------
    coded
        The factorial runs in coded units (±1), runs × factors, in standard order.
    names
        Factor names, one per column.
    gens
        The fraction's generators (:func:`bioworkbench.doe.words.parse_generators`); empty for a full
        factorial.
    n_blocks
        Blocks per replicate: 2, 4, 8, …
    block_generators
        The effects to confound with blocks, in letters or names; ``None`` chooses those that
        confound the fewest low-order effects with blocks and never a main effect (minimum
        aberration of the block word-length pattern).

    Returns
    -------
    block, generators, confounded
        1-based block of each run (numbered in order of first appearance in standard order), the
        generating words, and every alias chain confounded with blocks (``"ABC"`` or ``"AB=CD"``).

    Raises
    ------
    ConfigError
        ``n_blocks`` not a power of two, blocks of fewer than 2 runs, the wrong number of block
        generators, generators that are not independent or that confound a main effect with blocks.
    """
    k = len(names)
    if n_blocks & (n_blocks - 1):
        raise ConfigError(
            f"blocks={n_blocks}: a 2-level design is split by confounding into 2, 4, 8, … blocks (per replicate)."
        )
    q = n_blocks.bit_length() - 1
    generated = {g: rhs for g, rhs, _ in gens}
    base = [j for j in range(k) if j not in generated]
    group = defining_group(gens) if gens else []
    counts, masks = _class_counts(base, group, k)
    if q > len(base) - 1:
        raise ConfigError(
            f"blocks={n_blocks} would leave fewer than 2 runs per block in a design of {2 ** len(base)} factorial runs."
        )
    if block_generators is not None:
        if isinstance(block_generators, str):
            block_generators = [block_generators]
        if len(block_generators) != q:
            raise ConfigError(f"blocks={n_blocks} needs {q} block generator(s); got {len(block_generators)}.")
        vectors = []
        for text in block_generators:
            mask = parse_effect(text, names, what=f"block generator {text!r}")
            for g in bits(mask):  # a generated factor stands for its generator's base word
                if g in generated:
                    mask ^= 1 << g | generated[g]
            vectors.append(sum(1 << i for i, b in enumerate(base) if mask >> b & 1))
        span = _span(vectors)
        if 0 in span:
            raise ConfigError(
                f"block generators {', '.join(block_generators)} are not independent (their product is I)."
            )
        mains = [v for v in span if counts[v, 1]]
        if mains:
            raise ConfigError(
                f"block generators {', '.join(block_generators)} confound a main effect with blocks "
                f"({_chain(masks[mains[0]], group)}); choose higher-order interactions."
            )
    else:
        vectors = list(_search_block_vectors(counts, q))
    span = sorted(
        _span(vectors), key=lambda v: (_lowest(masks[v], group).bit_count(), word_letters(_lowest(masks[v], group)))
    )
    keys = np.stack([np.prod(coded[:, bits(masks[v])], axis=1) > 0 for v in vectors], axis=1)
    labels = keys @ (1 << np.arange(q))
    _, first = np.unique(labels, return_index=True)
    number = {labels[i]: n + 1 for n, i in enumerate(sorted(first))}
    block = np.array([number[lab] for lab in labels], dtype=np.int64)
    gen_words = tuple(word_letters(_lowest(masks[v], group)) for v in vectors)
    return block, gen_words, tuple(_chain(masks[v], group) for v in span)


def _lowest(mask: int, group: Sequence[tuple[int, int]]) -> int:
    return min([mask, *[mask ^ w for w, _ in group]], key=lambda m: (m.bit_count(), word_letters(m)))


def _chain(mask: int, group: Sequence[tuple[int, int]]) -> str:
    members = sorted({mask, *[mask ^ w for w, _ in group]}, key=lambda m: (m.bit_count(), word_letters(m)))
    return "=".join(word_letters(m) for m in members)
