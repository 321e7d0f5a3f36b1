"""Full and fractional factorial designs, their defining relation, aliases and blocking.

Words (effects) are held as bit masks over the factors (bit ``j`` = factor ``j``, letter ``A + j``);
the product of two effects is the symmetric difference of their masks (``A·AB = B`` since ``A² = I``).
pyDOE3 builds the run tables (``fullfact``, ``fracfact``); the defining relation, resolution, aliases
and the choice of block generators are computed here because pyDOE3 does not return them
(``fracfact_aliasing`` lists alias chains as text for a finished matrix only, and has no blocking).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from bioworkbench.doe.design import (
    Design,
    assemble,
    check_factors,
    check_int,
    check_units,
    roman,
    seed_streams,
)
from bioworkbench.errors import ConfigError
from bioworkbench.schema import suggest
from bioworkbench.terms import factor_letters

__all__ = [
    "alias_frame",
    "defining_relation",
    "fractional_factorial",
    "full_factorial",
    "standard_generators",
]

# Montgomery, Design and Analysis of Experiments, 9th ed. (2017), Table 8.14 "Selected 2^(k-p) fractional
# factorial designs" (after Box, Hunter & Hunter 2005): the minimum-aberration fraction for each size.
# Montgomery's letters skip I (…, H, J, K, L); they are translated to factor positions below. Each entry
# was checked against an exhaustive search of all generator choices for its word-length pattern.
_MONTGOMERY_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
_TABLE_8_14 = {
    (3, 1): ("C=AB",),
    (4, 1): ("D=ABC",),
    (5, 1): ("E=ABCD",),
    (5, 2): ("D=AB", "E=AC"),
    (6, 1): ("F=ABCDE",),
    (6, 2): ("E=ABC", "F=BCD"),
    (6, 3): ("D=AB", "E=AC", "F=BC"),
    (7, 1): ("G=ABCDEF",),
    (7, 2): ("F=ABCD", "G=ABDE"),
    (7, 3): ("E=ABC", "F=BCD", "G=ACD"),
    (7, 4): ("D=AB", "E=AC", "F=BC", "G=ABC"),
    (8, 2): ("G=ABCD", "H=ABEF"),
    (8, 3): ("F=ABC", "G=ABD", "H=BCDE"),
    (8, 4): ("E=BCD", "F=ACD", "G=ABC", "H=ABD"),
    (9, 2): ("H=ACDFG", "J=BCEFG"),
    (9, 3): ("G=ABCD", "H=ACEF", "J=CDEF"),
    (9, 4): ("F=BCDE", "G=ACDE", "H=ABDE", "J=ABCE"),
    (9, 5): ("E=ABC", "F=BCD", "G=ACD", "H=ABD", "J=ABCD"),
    (10, 3): ("H=ABCG", "J=BCDE", "K=ACDF"),
    (10, 4): ("G=BCDF", "H=ACDF", "J=ABDE", "K=ABCE"),
    (10, 5): ("F=ABCD", "G=ABCE", "H=ABDE", "J=ACDE", "K=BCDE"),
    (10, 6): ("E=ABC", "F=BCD", "G=ACD", "H=ABD", "J=ABCD", "K=AB"),
    (11, 4): ("H=ABCG", "J=BCDE", "K=ACDF", "L=ABCDEFG"),
    (11, 5): ("G=CDE", "H=ABCD", "J=ABF", "K=BDEF", "L=ADEF"),
    (11, 6): ("F=ABC", "G=BCD", "H=CDE", "J=ACD", "K=ADE", "L=BDE"),
    (11, 7): ("E=ABC", "F=BCD", "G=ACD", "H=ABD", "J=ABCD", "K=AB", "L=AC"),
}
_MAX_BLOCK_SEARCH = 3_000_000  # combinations of block generators tried exhaustively
_SPLIT = re.compile(r"[:*\s]+")

Generator = tuple[int, int, int]  # (generated factor index, mask of its right-hand side, sign)


# ---------------------------------------------------------------------------------------------
# words
# ---------------------------------------------------------------------------------------------
def _bits(mask: int) -> list[int]:
    return [j for j in range(mask.bit_length()) if mask >> j & 1]


def _letters(mask: int, sign: int = 1) -> str:
    return ("-" if sign < 0 else "") + "".join(chr(65 + j) for j in _bits(mask))


def _term(mask: int, names: Sequence[str]) -> str:
    return ":".join(names[j] for j in _bits(mask))


def _valid_factors(names: Sequence[str]) -> str:
    return ", ".join(f"{letter} ({name})" for letter, name in factor_letters(names).items())


def parse_effect(text: str, names: Sequence[str], *, what: str) -> int:
    """Mask of an effect written in letters (``"ABC"``) or factor names (``"temp:ph"``, ``"temp*ph"``)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{what}: expected an effect like 'ABC' or 'temp:ph'; got {text!r}.")
    index = {n: j for j, n in enumerate(names)}
    letters = factor_letters(names)
    text = text.strip()
    parts = [p for p in _SPLIT.split(text) if p]
    if len(parts) == 1 and parts[0] not in index:
        token = parts[0]
        if not (token.isalpha() and token.isupper()):
            raise ConfigError(
                f"{what}: unknown factor {token!r}. Valid factors: {_valid_factors(names)}. "
                + suggest(token, [*names, *letters], what="Names")
            )
        parts = list(token)
    mask = 0
    for part in parts:
        name = part if part in index else letters.get(part)
        if name is None:
            raise ConfigError(
                f"{what}: unknown factor letter or name {part!r}. Valid factors: {_valid_factors(names)}."
            )
        if mask >> index[name] & 1:
            raise ConfigError(f"{what}: factor {part!r} appears twice (A·A = I); write each factor once.")
        mask |= 1 << index[name]
    return mask


def parse_generators(generators: str | Sequence[str], names: Sequence[str]) -> list[Generator]:
    """``[(generated factor, right-hand-side mask, sign)]`` from ``["D=ABC", "E=-ABD"]`` or factor names.

    Raises
    ------
    ConfigError
        Unknown letters or names (listing the valid ones), a factor generated twice or used on the
        right of a generator while being generated itself, a right-hand side naming the generated
        factor, or a generator that aliases two main effects (resolution below III).
    """
    if isinstance(generators, str):
        generators = [g for g in re.split(r"[,;]", generators) if g.strip()]
    if not generators:
        raise ConfigError("generators: give at least one, like ['D=ABC'] (letters) or ['feed=temp:ph'] (names).")
    index = {n: j for j, n in enumerate(names)}
    letters = factor_letters(names)
    out: list[Generator] = []
    for raw in generators:
        if not isinstance(raw, str) or raw.count("=") != 1:
            raise ConfigError(
                f"generator {raw!r}: write it as 'D=ABC' (the generated factor, '=', the product of base factors)."
            )
        left, right = (s.strip() for s in raw.split("="))
        lhs = left if left in index else letters.get(left)
        if lhs is None:
            raise ConfigError(
                f"generator {raw!r}: unknown factor {left!r} on the left. Valid factors: {_valid_factors(names)}."
            )
        sign = 1
        if right[:1] in "+-" and right:
            sign = -1 if right[0] == "-" else 1
            right = right[1:].strip()
        rhs = parse_effect(right, names, what=f"generator {raw!r}")
        g = index[lhs]
        if rhs >> g & 1:
            raise ConfigError(
                f"generator {raw!r}: {left} appears on both sides; its right-hand side needs other factors."
            )
        if rhs.bit_count() == 1:
            raise ConfigError(
                f"generator {raw!r} aliases main effect {_letters(1 << g)} with main effect {_letters(rhs)} "
                f"(defining word {_letters(rhs | 1 << g)}, resolution II): the right-hand side needs at least two "
                "factors."
            )
        out.append((g, rhs, sign))
    gens = [g for g, _, _ in out]
    dup = sorted({g for g in gens if gens.count(g) > 1})
    if dup:
        raise ConfigError(f"generators: factor {_letters(1 << dup[0])} ({names[dup[0]]}) is generated twice.")
    for g, rhs, _ in out:
        used = [h for h in gens if rhs >> h & 1]
        if used:
            raise ConfigError(
                f"generator {_letters(1 << g)}={_letters(rhs)} uses {_letters(1 << used[0])}, which is itself "
                "generated; write every generator in the base (not generated) factors only."
            )
    out.sort()
    group = _group(out)
    short = [(w, s) for w, s in group if w.bit_count() <= 2]
    if short:
        word = short[0][0]
        raise ConfigError(
            f"generators {', '.join(_gen_text(x) for x in out)} alias main effect {_letters(1 << _bits(word)[0])} "
            f"with main effect {_letters(1 << _bits(word)[1])} (defining word {_letters(word)}, resolution II). "
            "Choose generators whose products all have three or more letters."
        )
    return out


def _gen_text(gen: Generator) -> str:
    g, rhs, sign = gen
    return f"{_letters(1 << g)}={_letters(rhs, sign)}"


def _group(gens: Sequence[Generator]) -> list[tuple[int, int]]:
    """Every word of the defining relation with its sign, shortest first."""
    words = [(rhs | 1 << g, sign) for g, rhs, sign in gens]
    out = []
    for r in range(1, len(words) + 1):
        for combo in itertools.combinations(words, r):
            mask, sign = 0, 1
            for w, s in combo:
                mask ^= w
                sign *= s
            out.append((mask, sign))
    return sorted(out, key=lambda ws: (ws[0].bit_count(), _letters(ws[0])))


def defining_relation(generators: str | Sequence[str], factors: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """Words of the defining relation and the resolution of the fraction with these generators.

    Parameters
    ----------
    generators
        ``["D=ABC"]`` in letters or factor names.
    factors
        Factor names in order (letters ``A, B, …`` follow it).

    Returns
    -------
    words, resolution
        ``(("ABCD",), 4)`` for ``D=ABC``: ``I = ABCD``. Words are the generator words ``D·ABC`` and all
        their products (``2^p − 1`` words for ``p`` generators), a leading ``-`` for a negative word.

    Notes
    -----
    The resolution is the length of the shortest word (Box & Hunter 1961; Montgomery 9th ed. §8.2.2).
    """
    group = _group(parse_generators(generators, list(factors)))
    return tuple(_letters(w, s) for w, s in group), min(w.bit_count() for w, _ in group)


def alias_frame(generators: str | Sequence[str], factors: Sequence[str]) -> pl.DataFrame:
    """Aliases of every main effect and two-factor interaction of a regular 2-level fraction.

    Returns
    -------
    pl.DataFrame
        ``effect, aliased_with, sign, alias_order, effect_term, aliased_term``: one row per word ``W`` of
        the defining relation ``I = ±W`` and effect ``E``; the alias is ``E·W`` and, on the factorial
        runs, the column of ``E`` equals ``sign`` times the column of ``E·W``.
    """
    names = list(factors)
    group = _group(parse_generators(generators, names))
    k = len(names)
    effects = [1 << i for i in range(k)] + [1 << i | 1 << j for i in range(k) for j in range(i + 1, k)]
    rows = []
    for e in effects:
        for w, s in sorted(group, key=lambda ws: ((e ^ ws[0]).bit_count(), _letters(e ^ ws[0]))):
            a = e ^ w
            rows.append((_letters(e), _letters(a), s, a.bit_count(), _term(e, names), _term(a, names)))
    return pl.DataFrame(
        rows,
        schema={
            "effect": pl.String,
            "aliased_with": pl.String,
            "sign": pl.Int64,
            "alias_order": pl.Int64,
            "effect_term": pl.String,
            "aliased_term": pl.String,
        },
        orient="row",
    )


def standard_generators(k: int, resolution: int) -> tuple[tuple[str, ...], str]:
    """Generators of the smallest standard 2-level fraction of ``k`` factors with at least ``resolution``.

    Returns
    -------
    generators, source
        Generators in letters (``A`` = first factor) and a sentence naming where they come from.

    Raises
    ------
    ConfigError
        When no fraction reaches the resolution (the full factorial is then the answer) or the request
        is below resolution III.

    Notes
    -----
    For 3 ≤ k ≤ 11: Montgomery (2017) Table 8.14, the minimum-aberration designs (Chen, Sun & Wu 1993),
    plus the half fraction ``I = AB…K`` of resolution ``k``. For more factors: pyDOE3
    ``fracfact_by_res``, whose resolution is verified here (it is not minimum aberration).
    """
    if resolution < 3:
        raise ConfigError(f"resolution {resolution} is below III: main effects would be aliased with each other.")
    if k < 3:
        raise ConfigError(f"a 2-level fraction needs at least 3 factors; with {k} use full_factorial ({2**k} runs).")
    if k <= 11:
        table = {key: _montgomery(v) for key, v in _TABLE_8_14.items()}
        table[(k, 1)] = (f"{chr(64 + k)}={''.join(chr(65 + j) for j in range(k - 1))}",)
        best = None
        for p in range(1, k):
            gens = table.get((k, p))
            if gens is None:
                continue
            res = min(w.bit_count() for w, _ in _group(parse_generators(gens, [chr(65 + j) for j in range(k)])))
            if res >= resolution:
                best = gens
        if best is None:
            raise ConfigError(
                f"no fraction of the 2^{k} factorial reaches resolution {roman(resolution)}; the full factorial "
                f"({2**k} runs) does: use full_factorial."
            )
        return best, "generators from Montgomery (2017), Table 8.14 (minimum aberration)"
    from pyDOE3 import fracfact_by_res

    try:
        h = fracfact_by_res(k, resolution)
    except ValueError as exc:
        raise ConfigError(
            f"pyDOE3 cannot build a 2-level fraction of {k} factors at resolution {resolution}: {exc}"
        ) from exc
    gens = _identify_generators(h)
    res = min(w.bit_count() for w, _ in _group(parse_generators(gens, [chr(65 + j) for j in range(k)])))
    if res < resolution:
        raise ConfigError(
            f"pyDOE3's fraction of {k} factors reaches only resolution {roman(res)}, not {roman(resolution)}; "
            "give generators=[...] yourself."
        )
    return gens, "generators from pyDOE3 fracfact_by_res (resolution verified; not minimum aberration)"


def _montgomery(gens: Sequence[str]) -> tuple[str, ...]:
    conv = {m: chr(65 + j) for j, m in enumerate(_MONTGOMERY_LETTERS)}
    return tuple("".join(conv.get(c, c) for c in g) for g in gens)


def _identify_generators(h: np.ndarray) -> tuple[str, ...]:
    """Generators of a regular 2-level fraction from its ±1 matrix (columns that are products of others)."""
    k = h.shape[1]
    base: list[int] = []
    gens = []
    for j in range(k):
        found = None
        for r in range(2, len(base) + 1):
            for combo in itertools.combinations(base, r):
                prod = np.prod(h[:, combo], axis=1)
                if np.array_equal(prod, h[:, j]) or np.array_equal(-prod, h[:, j]):
                    sign = "" if np.array_equal(prod, h[:, j]) else "-"
                    found = f"{chr(65 + j)}={sign}{''.join(chr(65 + b) for b in combo)}"
                    break
            if found:
                break
        if found:
            gens.append(found)
        else:
            base.append(j)
    return tuple(gens)


# ---------------------------------------------------------------------------------------------
# run tables
# ---------------------------------------------------------------------------------------------
def two_level_full(k: int) -> np.ndarray:
    """2^k in Yates standard order (first factor fastest), via pyDOE3 ``fullfact``."""
    from pyDOE3 import fullfact

    return fullfact([2] * k) * 2.0 - 1.0


def fraction_matrix(gens: Sequence[Generator], k: int) -> np.ndarray:
    """The ±1 fraction in Yates order of the base factors, via pyDOE3 ``fracfact`` (checked here)."""
    from pyDOE3 import fracfact

    generated = {g: (rhs, sign) for g, rhs, sign in gens}
    base = [j for j in range(k) if j not in generated]
    py = {j: chr(97 + i) for i, j in enumerate(base)}  # pyDOE3 wants the base factors as a, b, c, ...
    tokens = []
    for j in range(k):
        if j in generated:
            rhs, sign = generated[j]
            tokens.append(("-" if sign < 0 else "") + "".join(py[b] for b in _bits(rhs)))
        else:
            tokens.append(py[j])
    h = fracfact(" ".join(tokens))
    h = h[np.lexsort([h[:, b] for b in base])]  # last key primary: the first base factor changes fastest
    for g, (rhs, sign) in generated.items():
        if not np.array_equal(h[:, g], sign * np.prod(h[:, _bits(rhs)], axis=1)):  # pragma: no cover
            raise RuntimeError(f"pyDOE3 fracfact returned a column {_letters(1 << g)} that is not its generator")
    return h


# ---------------------------------------------------------------------------------------------
# blocking by confounding
# ---------------------------------------------------------------------------------------------
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

    Exhaustive over all choices; the cost is the number of confounded effects of order 1, 2, 3, …
    compared in that order (minimum aberration blocking in the sense of Sun, Wu & Chen 1997,
    restricted to the treatment word-length pattern).
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

    Returns
    -------
    block, generators, confounded
        1-based block of each run (numbered in order of first appearance in standard order), the
        generating words, and every alias chain confounded with blocks (``"ABC"`` or ``"AB=CD"``).
    """
    k = len(names)
    if n_blocks & (n_blocks - 1):
        raise ConfigError(
            f"blocks={n_blocks}: a 2-level design is split by confounding into 2, 4, 8, … blocks (per replicate)."
        )
    q = n_blocks.bit_length() - 1
    generated = {g: rhs for g, rhs, _ in gens}
    base = [j for j in range(k) if j not in generated]
    group = _group(gens) if gens else []
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
            for g in _bits(mask):  # a generated factor stands for its generator's base word
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
        _span(vectors), key=lambda v: (_lowest(masks[v], group).bit_count(), _letters(_lowest(masks[v], group)))
    )
    keys = np.stack([np.prod(coded[:, _bits(masks[v])], axis=1) > 0 for v in vectors], axis=1)
    labels = keys @ (1 << np.arange(q))
    _, first = np.unique(labels, return_index=True)
    number = {labels[i]: n + 1 for n, i in enumerate(sorted(first))}
    block = np.array([number[lab] for lab in labels], dtype=np.int64)
    gen_words = tuple(_letters(_lowest(masks[v], group)) for v in vectors)
    return block, gen_words, tuple(_chain(masks[v], group) for v in span)


def _lowest(mask: int, group: Sequence[tuple[int, int]]) -> int:
    return min([mask, *[mask ^ w for w, _ in group]], key=lambda m: (m.bit_count(), _letters(m)))


def _chain(mask: int, group: Sequence[tuple[int, int]]) -> str:
    members = sorted({mask, *[mask ^ w for w, _ in group]}, key=lambda m: (m.bit_count(), _letters(m)))
    return "=".join(_letters(m) for m in members)


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
    lv = _levels(levels, names)
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


def _levels(levels: int | Mapping[str, int] | Sequence[int], names: Sequence[str]) -> list[int]:
    if isinstance(levels, Mapping):
        unknown = [n for n in levels if n not in names]
        if unknown:
            raise ConfigError(
                f"levels given for unknown factor {unknown[0]!r}. " + suggest(unknown[0], names, what="Factors")
            )
        lv = [levels.get(n, 2) for n in names]
    elif isinstance(levels, int | np.integer) and not isinstance(levels, bool):
        lv = [int(levels)] * len(names)
    else:
        lv = list(levels)
        if len(lv) != len(names):
            raise ConfigError(f"levels: expected one number per factor ({len(names)}); got {len(lv)}.")
    for name, n in zip(names, lv, strict=True):
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
            raise ConfigError(
                f"factor {name!r} has {n!r} level(s): a factor needs at least 2 levels to have an effect "
                "that can be estimated."
            )
    return [int(n) for n in lv]


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
        res = _resolution_number(resolution)
        generators, source = standard_generators(k, res)
        notes.append(source)
    gens = parse_generators(generators, names)
    center_points = check_int("center_points", center_points, minimum=0)
    replicates = check_int("replicates", replicates, minimum=1)
    blocks = check_int("blocks", blocks, minimum=1)
    units = check_units(units, names)
    seed, order_rng, _ = seed_streams(random_seed)
    points = fraction_matrix(gens, k)
    group = _group(gens)
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
        generators=tuple(_gen_text(g) for g in gens),
        defining_relation=tuple(_letters(w, s) for w, s in group),
        resolution=min(w.bit_count() for w, _ in group),
        block_generators=gen_words,
        blocks_confounded=confounded,
        notes=tuple(notes),
    )


_ROMAN = {"III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}


def _resolution_number(resolution: int | str) -> int:
    if isinstance(resolution, str) and resolution.strip().upper() in _ROMAN:
        return _ROMAN[resolution.strip().upper()]
    if isinstance(resolution, int | np.integer) and not isinstance(resolution, bool) and resolution >= 3:
        return int(resolution)
    raise ConfigError(
        f"resolution {resolution!r}: expected 3 or more (or III, IV, V, …); below III main effects are aliased "
        "with each other."
    )
