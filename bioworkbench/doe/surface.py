"""Second-order (response-surface) designs: central composite and Box–Behnken.

Size: :func:`central_composite` is about 135 lines of code besides its docstring (over the 120 of
issue 15): the choice of the cube (full or fractional), alpha, centre points and blocks, each
depending on the previous; splitting it is left to a later change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from bioworkbench.doe.blocking import block_plan
from bioworkbench.doe.design import (
    Design,
    assemble,
    blocks_orthogonal,
    check_factors,
    check_int,
    check_units,
    is_rotatable,
    seed_streams,
    sig15,
    warn_outside,
)
from bioworkbench.doe.factorial import fraction_matrix, two_level_full
from bioworkbench.doe.words import (
    defining_group,
    generator_text,
    parse_generators,
    resolution_number,
    roman,
    standard_generators,
    word_letters,
)
from bioworkbench.errors import ConfigError
from bioworkbench.schema import suggest

__all__ = ["CCD_KINDS", "box_behnken", "central_composite"]

CCD_KINDS = ("circumscribed", "face_centred", "inscribed")
_CCD_SYNONYMS = {
    "ccc": "circumscribed",
    "ccf": "face_centred",
    "face_centered": "face_centred",
    "faced": "face_centred",
    "cci": "inscribed",
}
ALPHA_CHOICES = ("rotatable", "orthogonal")

# Box & Behnken (1960), Technometrics 2, 455–475, table of designs: for 6 and 7 factors the 2^3
# factorial is run on each of these sets of three factors (7 factors: the Fano plane, a balanced
# incomplete block design with every pair of factors together once). 1-based factor numbers.
_BB_SETS = {
    6: ((1, 2, 4), (2, 3, 5), (3, 4, 6), (1, 4, 5), (2, 5, 6), (1, 3, 6)),
    7: ((4, 5, 6), (1, 6, 7), (2, 5, 7), (1, 2, 4), (3, 4, 7), (1, 3, 5), (2, 3, 6)),
}


def central_composite(
    factors: Mapping[str, Sequence[float]],
    *,
    kind: str = "circumscribed",
    alpha: str | float | None = None,
    center_points: int | tuple[int, int] = (4, 4),
    blocks: int = 1,
    fraction: int | str | Sequence[str] | None = None,
    block_generators: Sequence[str] | None = None,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """Central composite design: a 2-level cube, axial (star) points and centre points.

    Parameters
    ----------
    factors
        ``{name: (low, high)}``; the range is the ±1 cube (circumscribed, face-centred) or the span of
        the axial points (inscribed).
    kind
        ``"circumscribed"``: axial points at ±alpha, *outside* the ranges for alpha > 1 (a warning gives
        their natural values); ``"face_centred"``: alpha = 1, three levels, all inside the ranges;
        ``"inscribed"``: axial points at ±1 (the range limits) and the cube scaled to ±1/alpha.
    alpha
        ``"rotatable"`` (default for circumscribed and inscribed): ``alpha = n_F^{1/4}``;
        ``"orthogonal"``: the alpha that blocks the design orthogonally into the cube block(s) and the
        axial block; a number: that axial distance. Face-centred designs have alpha = 1.
    center_points
        ``(n_cube, n_axial)``: centre runs with (each block of) the cube and with the axial points; an
        int ``c`` puts ``c`` centre runs in each block (with ``blocks=1``: ``c`` in all).
    blocks
        1; 2 (cube and its centre runs, then axial points and theirs); or ``1 + 2^q`` (the cube split
        into ``2^q`` blocks by confounding high-order interactions, as in :func:`full_factorial`, plus
        the axial block). ``Design.orthogonal_blocking`` says whether the blocks are orthogonal.
    fraction
        ``None``: the full ``2^k`` cube. A resolution (5, ``"V"`` or more) for the standard fraction, or
        generators such as ``["E=ABCD"]``; the cube must be of resolution V or more so that all
        two-factor interactions stay estimable.
    block_generators, randomize, random_seed, units
        As in :func:`full_factorial`.

    Returns
    -------
    Design
        ``kind="central_composite"`` with ``ccd_kind``, ``alpha`` (the axial distance relative to the
        cube half-width, also for the inscribed design), ``alpha_kind``, ``rotatable``,
        ``orthogonal_blocking``; with a fraction also ``generators``, ``defining_relation`` and
        ``resolution`` of the cube.

    Raises
    ------
    ConfigError
        Fewer than 2 factors; an unknown kind or alpha (valid ones listed); alpha other than 1 for a
        face-centred design; ``alpha="orthogonal"`` with one block and an int ``center_points`` (the
        split between cube and axial centre runs decides alpha); a cube fraction below resolution V; a
        block count other than 1, 2, 1 + 2^q.

    Notes
    -----
    ``n_F`` cube runs, ``2k`` axial runs. Rotatable: ``alpha = n_F^{1/4}`` (Box & Hunter 1957).
    Orthogonal blocking with ``b`` cube blocks holding ``n_c`` centre runs each and an axial block
    holding ``n_a``: ``alpha = sqrt(n_F (2k + n_a) / (2 (n_F + b n_c)))`` (Montgomery, *Design and
    Analysis of Experiments*, 9th ed., §11.4.3; the pyDOE3 ``star(alpha="orthogonal")`` formula for
    one cube block). The table is built here from pyDOE3 ``fullfact``/``fracfact`` and ``star`` rather
    than ``ccdesign``, which has no fractional cube, no blocks and takes ``n_F = 2^k`` in its alpha.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    k = len(names)
    if k < 2:
        raise ConfigError(f"a central composite design needs at least 2 factors; got {k} ({', '.join(names)}).")
    kind = _CCD_SYNONYMS.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in CCD_KINDS:
        raise ConfigError(f"unknown CCD kind {kind!r}. " + suggest(str(kind), CCD_KINDS, what="Kinds"))
    blocks = check_int("blocks", blocks, minimum=1)
    if blocks > 2 and (blocks - 1) & (blocks - 2):
        raise ConfigError(
            f"blocks={blocks}: a CCD has 1 block, 2 (cube, axial) or 1 + 2^q (2^q cube blocks + axial): 1, 2, 3, 5, …"
        )
    units = check_units(units, names)
    seed, order_rng, _ = seed_streams(random_seed)
    notes: list[str] = []

    # the cube
    gens = []
    if fraction is None:
        cube = two_level_full(k)
    else:
        if isinstance(fraction, int | str) and not (isinstance(fraction, str) and "=" in fraction):
            res = resolution_number(fraction)
            if res < 5:
                raise ConfigError(_res_v_message(res))
            gen_text, source = standard_generators(k, res)
            notes.append(f"cube: {source}")
        else:
            gen_text = fraction
        gens = parse_generators(gen_text, names)
        res = min(w.bit_count() for w, _ in defining_group(gens))
        if res < 5:
            raise ConfigError(_res_v_message(res))
        cube = fraction_matrix(gens, k)
    n_f = len(cube)

    # centre points
    if isinstance(center_points, int | np.integer) and not isinstance(center_points, bool):
        c = check_int("center_points", center_points, minimum=0)
        n_c, n_a = (c, c) if blocks > 1 else (c, None)
    elif isinstance(center_points, Sequence) and len(center_points) == 2:
        n_c = check_int("center_points[0] (cube)", center_points[0], minimum=0)
        n_a = check_int("center_points[1] (axial)", center_points[1], minimum=0)
    else:
        raise ConfigError(f"center_points must be an int or (cube, axial) like (4, 4); got {center_points!r}.")
    b_f = max(blocks - 1, 1)

    # alpha
    if kind == "face_centred":
        if alpha not in (None, 1, 1.0, "face_centred"):
            raise ConfigError(f"a face-centred CCD has alpha = 1; got alpha={alpha!r}. Use kind='circumscribed'.")
        a, alpha_kind = 1.0, "face_centred"
    elif alpha is None or alpha == "rotatable":
        a, alpha_kind = n_f**0.25, "rotatable"
    elif alpha == "orthogonal":
        if n_a is None:
            raise ConfigError(
                "alpha='orthogonal' is the alpha that makes the axial block orthogonal to the cube block; it depends "
                "on how the centre runs are split: give center_points=(cube, axial), e.g. (4, 4), or blocks=2."
            )
        a, alpha_kind = math.sqrt(n_f * (2 * k + n_a) / (2 * (n_f + b_f * n_c))), "orthogonal"
    elif isinstance(alpha, int | float) and not isinstance(alpha, bool) and math.isfinite(alpha) and alpha > 0:
        a, alpha_kind = float(alpha), "given"
    else:
        raise ConfigError(
            f"unknown alpha {alpha!r}: use 'rotatable', 'orthogonal' or a positive number. "
            + suggest(str(alpha), ALPHA_CHOICES, what="Choices")
        )

    a = sig15(a)
    # the table in standard order: cube, cube centres, axial, axial centres
    from pyDOE3.doe_star import star

    axial = star(k)[0]  # ±1 on each axis in turn: −A, +A, −B, +B, …
    cube_pts = cube / a if kind == "inscribed" else cube
    axial_pts = axial if kind == "inscribed" else axial * a
    gen_words: tuple[str, ...] = ()
    confounded: tuple[str, ...] = ()
    cube_block = np.ones(n_f, dtype=np.int64)
    if blocks > 2:
        cube_block, gen_words, confounded = block_plan(cube, names, gens, b_f, block_generators)
    elif block_generators is not None:
        raise ConfigError("block_generators split the cube: use blocks=3, 5, 9 (cube blocks + the axial block).")
    n_a = n_a or 0
    axial_block = b_f + 1 if blocks > 1 else 1
    coded = [cube_pts]
    types = ["factorial"] * n_f
    block = [cube_block]
    for b in range(1, b_f + 1):
        coded.append(np.zeros((n_c, k)))
        types += ["center"] * n_c
        block.append(np.full(n_c, b, dtype=np.int64))
    coded += [axial_pts, np.zeros((n_a, k))]
    types += ["axial"] * (2 * k) + ["center"] * n_a
    block += [np.full(2 * k + n_a, axial_block, dtype=np.int64)]
    coded_all = np.vstack(coded)
    block_all = np.concatenate(block)
    if kind == "circumscribed":
        note = warn_outside(coded_all, ranges, f"the axial points of this circumscribed CCD (alpha = {a:.4g})")
        if note:
            notes.append(note)
    frame = assemble(coded_all, types, block_all, ranges, randomize=randomize, rng=order_rng)
    group = defining_group(gens) if gens else []
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="central_composite",
        random_seed=seed,
        randomized=randomize,
        generators=tuple(generator_text(g) for g in gens),
        defining_relation=tuple(word_letters(w, s) for w, s in group),
        resolution=min(w.bit_count() for w, _ in group) if group else None,
        block_generators=gen_words,
        blocks_confounded=confounded,
        ccd_kind=kind,
        alpha=a,
        alpha_kind=alpha_kind,
        rotatable=is_rotatable(coded_all),
        orthogonal_blocking=blocks_orthogonal(coded_all, block_all),
        notes=tuple(notes),
    )


def _res_v_message(res: int) -> str:
    return (
        f"the cube of a CCD must be of resolution V or more so that every two-factor interaction can be "
        f"estimated; this fraction has resolution {roman(res)}. Use fraction=5 ('V') or the full cube."
    )


def box_behnken(
    factors: Mapping[str, Sequence[float]],
    *,
    center_points: int = 3,
    blocks: int = 1,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """Box–Behnken design: 2^2 (or 2^3) factorials on sets of factors, the others at their centre.

    Parameters
    ----------
    factors
        ``{name: (low, high)}``, at least 3 factors. Every run lies inside the ranges (no corners).
    center_points
        Centre runs in each block (default 3).
    blocks
        1, or 3 for 4 factors (Box & Behnken's orthogonal blocking: the pairs AB+CD, AC+BD, AD+BC).
    randomize, random_seed, units
        As in :func:`full_factorial`.

    Returns
    -------
    Design
        ``kind="box_behnken"``, ``point_type`` ``"edge"`` and ``"center"``, with ``rotatable`` and
        ``orthogonal_blocking`` checked on the design.

    Raises
    ------
    ConfigError
        Fewer than 3 factors; a block count other than those above.

    Notes
    -----
    Box G.E.P., Behnken D.W. (1960), Some new three level designs for the study of quantitative
    variables, Technometrics 2, 455–475. 3–5 factors: pyDOE3 ``bbdesign`` (all pairs of factors: 12,
    24, 40 edge runs). 6 and 7 factors: Box & Behnken's designs on sets of three factors (48 and 56
    edge runs), written out here because pyDOE3 builds 60 and 84 runs from all pairs instead. 8 or
    more: pyDOE3's all-pairs design (stated in ``notes``). The 4- and 7-factor designs are rotatable.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    k = len(names)
    if k < 3:
        raise ConfigError(
            f"a Box–Behnken design needs at least 3 factors; got {k} ({', '.join(names)}). For 2 factors use "
            "central_composite(kind='face_centred') (also 3 levels)."
        )
    center_points = check_int("center_points", center_points, minimum=0)
    blocks = check_int("blocks", blocks, minimum=1)
    if blocks != 1 and not (k == 4 and blocks == 3):
        raise ConfigError(f"blocks={blocks}: Box–Behnken designs here have blocks=1, or blocks=3 with 4 factors.")
    units = check_units(units, names)
    seed, order_rng, _ = seed_streams(random_seed)
    notes = []
    if k in _BB_SETS:
        edges = []
        for s in _BB_SETS[k]:
            part = np.zeros((8, k))
            part[:, [j - 1 for j in s]] = two_level_full(3)
            edges.append(part)
        edge = np.vstack(edges)
    else:
        from pyDOE3 import bbdesign

        edge = bbdesign(k, center=0)
        if k >= 8:
            notes.append(
                f"{k} factors: pyDOE3's all-pairs design ({len(edge)} edge runs), not one from Box & Behnken's table."
            )
    edge_block = np.ones(len(edge), dtype=np.int64)
    if blocks == 3:  # Box & Behnken (1960): the pairs (AB, CD), (AC, BD), (AD, BC) form orthogonal blocks
        pair_block = {(0, 1): 1, (2, 3): 1, (0, 2): 2, (1, 3): 2, (0, 3): 3, (1, 2): 3}
        edge_block = np.array([pair_block[tuple(np.flatnonzero(row))] for row in edge], dtype=np.int64)
    coded = np.vstack([edge, np.zeros((center_points * blocks, k))])
    types = ["edge"] * len(edge) + ["center"] * (center_points * blocks)
    block = np.concatenate([edge_block, np.repeat(np.arange(1, blocks + 1), center_points)])
    frame = assemble(coded, types, block, ranges, randomize=randomize, rng=order_rng)
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="box_behnken",
        random_seed=seed,
        randomized=randomize,
        rotatable=is_rotatable(coded),
        orthogonal_blocking=blocks_orthogonal(coded, block),
        notes=tuple(notes),
    )
