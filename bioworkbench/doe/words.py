"""Effects as words: generators, defining relations, resolution, aliases and the standard fractions.

Words (effects) are held as bit masks over the factors (bit ``j`` = factor ``j``, letter ``A + j``);
the product of two effects is the symmetric difference of their masks (``A·AB = B`` since ``A² = I``).
pyDOE3 does not return defining relations or resolutions (``fracfact_aliasing`` lists alias chains as
text for a finished matrix only), so they are computed here from the generators.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.schema import suggest
from bioworkbench.terms import LETTERS, factor_letters

__all__ = ["alias_frame", "defining_relation", "parse_effect", "parse_generators", "standard_generators"]

# Montgomery, Design and Analysis of Experiments, 9th ed. (2017), Table 8.14 "Selected 2^(k-p) fractional
# factorial designs" (after Box, Hunter & Hunter 2005): the minimum-aberration fraction for each size.
# Montgomery's letters skip I (…, H, J, K, L), as bioworkbench.terms.LETTERS do. Each entry was checked
# against an exhaustive search of all generator choices for its word-length pattern.
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
_SPLIT = re.compile(r"[:*\s]+")

Generator = tuple[int, int, int]  # (generated factor index, mask of its right-hand side, sign)


def roman(n: int) -> str:
    """Roman numeral of a design resolution (``4 -> "IV"``)."""
    out = ""
    for value, sym in ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out += sym
            n -= value
    return out


# ---------------------------------------------------------------------------------------------
# words
# ---------------------------------------------------------------------------------------------
def bits(mask: int) -> list[int]:
    return [j for j in range(mask.bit_length()) if mask >> j & 1]


def word_letters(mask: int, sign: int = 1) -> str:
    return ("-" if sign < 0 else "") + "".join(LETTERS[j] for j in bits(mask))


def word_term(mask: int, names: Sequence[str]) -> str:
    return ":".join(names[j] for j in bits(mask))


def _valid_factors(names: Sequence[str]) -> str:
    return ", ".join(f"{letter} ({name})" for letter, name in factor_letters(names).items())


def parse_effect(text: str, names: Sequence[str], *, what: str) -> int:
    """Mask of an effect written in letters (``"ABC"``) or factor names (``"temp:ph"``, ``"temp*ph"``).

    Parameters
    ----------
    text
        The effect: letters (``"ABC"``) or names joined by ``:`` or ``*``.
    names
        Factor names in order (their letters follow that order).
    what
        What the text is, for the error message (e.g. ``"block generator 'ABC'"``).

    Returns
    -------
    int
        Bit mask of the effect's factors (bit ``j`` for factor ``j``).

    Raises
    ------
    ConfigError
        Empty text, an unknown factor letter or name (the valid ones listed), or a factor named twice.
    """
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

    Parameters
    ----------
    generators
        ``"D=ABC"`` or a list of them, in letters or factor names; a ``-`` before the right-hand side
        makes the generator negative.
    names
        Factor names in order.

    Returns
    -------
    list of tuple
        ``(generated factor index, right-hand-side mask, sign)`` per generator.

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
                f"generator {raw!r} aliases main effect {word_letters(1 << g)} with main effect {word_letters(rhs)} "
                f"(defining word {word_letters(rhs | 1 << g)}, resolution II): the right-hand side needs at least two "
                "factors."
            )
        out.append((g, rhs, sign))
    gens = [g for g, _, _ in out]
    dup = sorted({g for g in gens if gens.count(g) > 1})
    if dup:
        raise ConfigError(f"generators: factor {word_letters(1 << dup[0])} ({names[dup[0]]}) is generated twice.")
    for g, rhs, _ in out:
        used = [h for h in gens if rhs >> h & 1]
        if used:
            raise ConfigError(
                f"generator {word_letters(1 << g)}={word_letters(rhs)} uses {word_letters(1 << used[0])}, which is "
                "itself generated; write every generator in the base (not generated) factors only."
            )
    out.sort()
    group = defining_group(out)
    short = [(w, s) for w, s in group if w.bit_count() <= 2]
    if short:
        word = short[0][0]
        raise ConfigError(
            f"generators {', '.join(generator_text(x) for x in out)} alias main effect "
            f"{word_letters(1 << bits(word)[0])} with main effect {word_letters(1 << bits(word)[1])} "
            f"(defining word {word_letters(word)}, resolution II). "
            "Choose generators whose products all have three or more letters."
        )
    return out


def generator_text(gen: Generator) -> str:
    g, rhs, sign = gen
    return f"{word_letters(1 << g)}={word_letters(rhs, sign)}"


def defining_group(gens: Sequence[Generator]) -> list[tuple[int, int]]:
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
    return sorted(out, key=lambda ws: (ws[0].bit_count(), word_letters(ws[0])))


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
    group = defining_group(parse_generators(generators, list(factors)))
    return tuple(word_letters(w, s) for w, s in group), min(w.bit_count() for w, _ in group)


def alias_frame(generators: str | Sequence[str], factors: Sequence[str]) -> pl.DataFrame:
    """Aliases of every main effect and two-factor interaction of a regular 2-level fraction.

    Parameters
    ----------
    generators
        The fraction's generators (as :func:`parse_generators` takes them).
    factors
        Factor names in order.

    Returns
    -------
    pl.DataFrame
        ``effect, aliased_with, sign, alias_order, effect_term, aliased_term``: one row per word ``W`` of
        the defining relation ``I = ±W`` and effect ``E``; the alias is ``E·W`` and, on the factorial
        runs, the column of ``E`` equals ``sign`` times the column of ``E·W``.
    """
    names = list(factors)
    group = defining_group(parse_generators(generators, names))
    k = len(names)
    effects = [1 << i for i in range(k)] + [1 << i | 1 << j for i in range(k) for j in range(i + 1, k)]
    rows = []
    for e in effects:
        for w, s in sorted(group, key=lambda ws: ((e ^ ws[0]).bit_count(), word_letters(e ^ ws[0]))):
            a = e ^ w
            rows.append((word_letters(e), word_letters(a), s, a.bit_count(), word_term(e, names), word_term(a, names)))
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

    Parameters
    ----------
    k
        Number of factors.
    resolution
        The smallest resolution accepted (3 or more).

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
        table = dict(_TABLE_8_14)
        table[(k, 1)] = (f"{LETTERS[k - 1]}={''.join(LETTERS[j] for j in range(k - 1))}",)
        best = None
        for p in range(1, k):
            gens = table.get((k, p))
            if gens is None:
                continue
            res = min(w.bit_count() for w, _ in defining_group(parse_generators(gens, [LETTERS[j] for j in range(k)])))
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
    res = min(w.bit_count() for w, _ in defining_group(parse_generators(gens, [LETTERS[j] for j in range(k)])))
    if res < resolution:
        raise ConfigError(
            f"pyDOE3's fraction of {k} factors reaches only resolution {roman(res)}, not {roman(resolution)}; "
            "give generators=[...] yourself."
        )
    return gens, "generators from pyDOE3 fracfact_by_res (resolution verified; not minimum aberration)"


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
                    found = f"{LETTERS[j]}={sign}{''.join(LETTERS[b] for b in combo)}"
                    break
            if found:
                break
        if found:
            gens.append(found)
        else:
            base.append(j)
    return tuple(gens)


_ROMAN = {"III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}


def resolution_number(resolution: int | str) -> int:
    if isinstance(resolution, str) and resolution.strip().upper() in _ROMAN:
        return _ROMAN[resolution.strip().upper()]
    if isinstance(resolution, int | np.integer) and not isinstance(resolution, bool) and resolution >= 3:
        return int(resolution)
    raise ConfigError(
        f"resolution {resolution!r}: expected 3 or more (or III, IV, V, …); below III main effects are aliased "
        "with each other."
    )
