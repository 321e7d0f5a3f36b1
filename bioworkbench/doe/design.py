"""The :class:`Design` record every generator returns, its frame layout and the checks of its properties.

Frame layout (one row per run, rows sorted by ``run_order``):

``std_order``
    1-based standard order (Yates order for 2-level factorials: the first factor changes fastest; then
    centre points; then axial points for a CCD).
``run_order``
    1-based run order, randomised *within* blocks with ``random_seed`` (blocks are run one after the
    other, block 1 first); with ``randomize=False`` the standard order inside each block.
``block``
    1-based block id.
``point_type``
    ``"factorial"``, ``"axial"``, ``"center"``, ``"edge"`` (Box–Behnken), ``"lhs"`` or ``"optimal"``.
``<factor>``
    one column per factor in natural units (named by the factor), the input of
    :class:`bioworkbench.models.ResponseSurface`.
``<factor>_coded``
    the same settings coded, ``x_c = (x - m) / h`` with ``m`` the middle and ``h`` the half-width of the
    factor's range (``low -> -1``, ``high -> +1``; :mod:`bioworkbench.terms`).

Generated numbers (coded and natural settings, alpha, efficiencies) are rounded to 15 significant
digits, the precision spreadsheets keep, so that a design written to CSV or Excel reads back exactly.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.doe.words import alias_frame, roman
from bioworkbench.doe.writing import write_csv, write_excel
from bioworkbench.errors import BioWorkbenchWarning, ConfigError
from bioworkbench.schema import suggest
from bioworkbench.terms import decode, factor_letters, factor_ranges, model_matrix, parse_terms

__all__ = [
    "DESIGN_KINDS",
    "ID_COLUMNS",
    "POINT_TYPES",
    "Design",
    "blocks_orthogonal",
    "is_rotatable",
]

DESIGN_KINDS = (
    "full_factorial",
    "fractional_factorial",
    "central_composite",
    "box_behnken",
    "latin_hypercube",
    "d_optimal",
)
POINT_TYPES = ("factorial", "axial", "center", "edge", "lhs", "optimal")
ID_COLUMNS = ("std_order", "run_order", "block", "point_type")
_SUMMARY_ORDER = ("factorial", "edge", "axial", "lhs", "optimal", "center")
_TITLES = {
    "full_factorial": "Full factorial",
    "fractional_factorial": "Fractional factorial",
    "central_composite": "Central composite design",
    "box_behnken": "Box–Behnken design",
    "latin_hypercube": "Latin hypercube",
    "d_optimal": "D-optimal design",
}


@dataclass(frozen=True, eq=False)
class Design:
    """An experimental design: the run table plus the facts a statistician expects of its kind.

    Build one with :func:`full_factorial`, :func:`fractional_factorial`, :func:`central_composite`,
    :func:`box_behnken`, :func:`latin_hypercube` or :func:`d_optimal`; read one back with
    :func:`read_design`. Fields that do not apply to a kind are ``None`` or empty.

    Attributes
    ----------
    frame
        The run table (layout in :mod:`bioworkbench.doe.design`), plus any response columns the lab added.
    factors
        ``{name: (low, high)}`` in natural units; ``low`` is coded −1 and ``high`` +1.
    units
        ``{name: unit or None}``.
    kind
        One of :data:`DESIGN_KINDS`.
    random_seed
        The seed of the run order and of any random search (drawn and recorded when none was given,
        so that every design can be regenerated).
    randomized
        Whether the run order is randomised (``False``: standard order within blocks).
    levels
        Full factorial: the number of levels of each factor.
    generators
        Fractional factorial (and a CCD with a fractional cube): ``("D=ABC", ...)`` in factor letters.
    defining_relation
        All words of the defining relation ``I = W1 = W2 = ...``, a leading ``-`` for a negative word.
    resolution
        Length of the shortest word of the defining relation.
    block_generators, blocks_confounded
        2-level designs blocked by confounding: the generating words and every effect (alias chain)
        confounded with blocks.
    ccd_kind, alpha, alpha_kind
        CCD: ``"circumscribed" | "face_centred" | "inscribed"``, the axial distance in coded units of the
        circumscribed design (the inscribed design is that design scaled by ``1/alpha``), and how it was
        chosen (``"rotatable"``, ``"orthogonal"``, ``"face_centred"``, ``"given"``).
    rotatable
        Second-order rotatability checked on the design's moments (:func:`is_rotatable`); CCD and BBD.
    orthogonal_blocking
        Blocks orthogonal to the second-order model (:func:`blocks_orthogonal`); ``None`` with one block.
    criterion
        Latin hypercube: the pyDOE3 criterion.
    terms, d_efficiency, log_det, n_candidates, n_excluded, shared, block_size
        D-optimal: the model terms (intercept implied), ``100 |XᵀX|^{1/p} / n``, ``log |XᵀX|``, the size of
        the candidate set, how many candidates ``exclude`` removed, factors shared within blocks of
        ``block_size`` runs.
    notes
        Sentences a reader should see (where a table came from, points outside the ranges, ...).
    """

    frame: pl.DataFrame
    factors: dict[str, tuple[float, float]]
    units: dict[str, str | None]
    kind: str
    random_seed: int
    randomized: bool = True
    levels: tuple[int, ...] | None = None
    generators: tuple[str, ...] = ()
    defining_relation: tuple[str, ...] = ()
    resolution: int | None = None
    block_generators: tuple[str, ...] = ()
    blocks_confounded: tuple[str, ...] = ()
    ccd_kind: str | None = None
    alpha: float | None = None
    alpha_kind: str | None = None
    rotatable: bool | None = None
    orthogonal_blocking: bool | None = None
    criterion: str | None = None
    terms: tuple[str, ...] = ()
    d_efficiency: float | None = None
    log_det: float | None = None
    n_candidates: int | None = None
    n_excluded: int | None = None
    shared: tuple[str, ...] = ()
    block_size: int | None = None
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------------ views
    @property
    def factor_names(self) -> list[str]:
        """The factor names in order (``A`` is the first)."""
        return list(self.factors)

    @property
    def letters(self) -> dict[str, str]:
        """``{letter: factor name}`` (``A`` is the first factor)."""
        return factor_letters(self.factor_names)

    @property
    def coded_columns(self) -> list[str]:
        """The names of the coded columns, ``<factor>_coded``, in factor order."""
        return [f"{name}_coded" for name in self.factors]

    @property
    def n_runs(self) -> int:
        """The number of runs (rows of the frame)."""
        return self.frame.height

    @property
    def n_blocks(self) -> int:
        """The number of blocks."""
        return self.frame["block"].n_unique()

    @property
    def coded(self) -> np.ndarray:
        """Coded settings, runs × factors, in the frame's row order."""
        return self.frame.select(self.coded_columns).to_numpy().astype(float)

    @property
    def natural(self) -> pl.DataFrame:
        """The natural-unit factor columns only (what a response-surface model takes)."""
        return self.frame.select(self.factor_names)

    @property
    def aliases(self) -> pl.DataFrame | None:
        """Alias structure of a fractional factorial (or a CCD's fractional cube); ``None`` otherwise.

        One row per (effect, alias) pair for every main effect and two-factor interaction, with
        ``effect`` and ``aliased_with`` in letters, ``sign`` (+1/−1: the effect's column equals ``sign``
        times the alias's column on the factorial runs), ``alias_order`` (number of factors in the alias)
        and both in the term language (``effect_term``, ``aliased_term``). See
        :func:`bioworkbench.doe.alias_frame`.
        """
        if not self.generators:
            return None
        return alias_frame(self.generators, self.factor_names)

    def model_matrix(self, terms: str | Sequence[str] = "quadratic") -> np.ndarray:
        """Model matrix (intercept first) of ``terms`` at the coded settings, in frame row order.

        Parameters
        ----------
        terms
            A model kind (``"linear"``, ``"interactions"``, ``"quadratic"``) or a list of terms
            (:func:`bioworkbench.terms.parse_terms`).

        Returns
        -------
        numpy.ndarray
            Runs × (1 + number of terms).
        """
        return model_matrix(self.coded, self.factor_names, parse_terms(terms, self.factor_names))

    def evaluate(
        self,
        terms: str | Sequence[str] = "quadratic",
        *,
        effect: float = 2.0,
        sigma: float = 1.0,
        alpha: float = 0.05,
        n_points: int = 5000,
        random_seed: int = 0,
    ) -> Any:
        """The design's support for a model: VIF, condition number, D/A/G-efficiency, power, FDS curve.

        See :func:`bioworkbench.doe.evaluation.evaluate` (definitions and references).

        Parameters
        ----------
        terms
            The model (``"linear"``, ``"interactions"``, ``"quadratic"`` or a list of terms).
        effect
            Effect to detect: the change in the response from a term's low to its high setting
            (twice the coded coefficient).
        sigma
            Noise standard deviation, in the response's unit.
        alpha
            Significance level of each coefficient's two-sided test.
        n_points
            Uniform random points of the coded cube for the fraction-of-design-space curve.
        random_seed
            Seed of those points.

        Returns
        -------
        DesignEvaluation
            ``terms``, ``criteria`` and ``fds`` frames.
        """
        from bioworkbench.doe.evaluation import evaluate

        return evaluate(
            self, terms, effect=effect, sigma=sigma, alpha=alpha, n_points=n_points, random_seed=random_seed
        )

    # ------------------------------------------------------------------ text
    def _title(self) -> str:
        k = len(self.factors)
        if self.kind == "full_factorial" and self.levels is not None:
            if len(set(self.levels)) == 1:
                return f"{self.levels[0]}^{k} full factorial"
            return "Full factorial " + " × ".join(str(n) for n in self.levels)
        if self.kind == "fractional_factorial":
            p = len(self.generators)
            return f"2^({k}-{p}) fractional factorial, resolution {roman(self.resolution or 0)}"
        if self.kind == "central_composite":
            return f"Central composite design ({self.ccd_kind}), alpha = {self.alpha:.6g} ({self.alpha_kind})"
        if self.kind == "latin_hypercube":
            return f"Latin hypercube (criterion: {self.criterion or 'none, plain random'})"
        return _TITLES.get(self.kind, self.kind)

    def summary(self) -> pl.DataFrame:
        """The factors of the design as a table: one row per factor.

        Returns
        -------
        polars.DataFrame
            ``letter`` (``A`` is the first factor), ``factor``, ``low`` and ``high`` (natural units,
            coded −1 and +1), ``unit`` (null when none was given) and ``n_levels``, the number of
            distinct settings of the factor in the run table. :meth:`describe` states the rest of the
            design's facts in words.
        """
        names = self.factor_names
        return pl.DataFrame(
            {
                "letter": list(self.letters),
                "factor": names,
                "low": [float(self.factors[n][0]) for n in names],
                "high": [float(self.factors[n][1]) for n in names],
                "unit": [self.units.get(n) for n in names],
                "n_levels": [self.frame[n].n_unique() for n in names],
            },
            schema={
                "letter": pl.String,
                "factor": pl.String,
                "low": pl.Float64,
                "high": pl.Float64,
                "unit": pl.String,
                "n_levels": pl.Int64,
            },
        )

    def describe(self) -> str:
        """The design in words: kind, runs, blocks, factors with ranges and units, and the kind's facts.

        Returns
        -------
        str
            Several lines: the title, the runs by point type and the run order, one line per factor,
            then what applies to the kind (generators and defining relation, blocking, rotatability,
            D-efficiency) and the notes.
        """
        counts = dict(self.frame.group_by("point_type").len().iter_rows())
        parts = ", ".join(f"{counts[t]} {t}" for t in _SUMMARY_ORDER if t in counts)
        order = f"randomised within blocks (seed {self.random_seed})" if self.randomized else "standard order"
        lines = [
            self._title(),
            f"  {self.n_runs} runs ({parts}) in {self.n_blocks} block{'s' if self.n_blocks != 1 else ''}; "
            f"run order {order}",
        ]
        for letter, name in self.letters.items():
            lo, hi = self.factors[name]
            unit = f" {self.units.get(name)}" if self.units.get(name) else ""
            lines.append(f"  {letter} = {name}: {lo:g} to {hi:g}{unit}")
        if self.generators:
            lines.append(f"  generators: {', '.join(self.generators)}")
            lines.append(f"  defining relation: I = {' = '.join(self.defining_relation)}")
        if self.block_generators:
            lines.append(
                f"  blocks by confounding {', '.join(self.block_generators)} "
                f"(confounded with blocks: {', '.join(self.blocks_confounded)})"
            )
        if self.rotatable is not None:
            lines.append(f"  rotatable: {'yes' if self.rotatable else 'no'}")
        if self.orthogonal_blocking is not None:
            lines.append(
                f"  blocks orthogonal to the second-order model: {'yes' if self.orthogonal_blocking else 'no'}"
            )
        if self.kind == "d_optimal":
            lines.append(f"  model: intercept + {', '.join(self.terms)} ({len(self.terms) + 1} parameters)")
            lines.append(f"  D-efficiency {self.d_efficiency:.1f} %, log|XᵀX| = {self.log_det:.4f}")
            lines.append(f"  candidates: {self.n_candidates} ({self.n_excluded} excluded)")
            if self.shared:
                lines.append(f"  {', '.join(self.shared)} shared within each block of {self.block_size} runs")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{self.describe()}\n{self.frame}"

    def _repr_html_(self) -> str:
        from html import escape

        return f"<pre>{escape(self.describe())}</pre>{self.frame._repr_html_()}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Design):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, pl.DataFrame):
                if not (a.schema == b.schema and a.equals(b, null_equal=True)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ files
    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write the run table as CSV and the design's facts to the sidecar ``<stem>.design.yaml``.

        See :func:`bioworkbench.doe.write_csv`.

        Parameters
        ----------
        path
            The CSV file to write.

        Returns
        -------
        Path
            The CSV path.
        """
        return write_csv(self, path)

    def to_excel(self, path: str | os.PathLike) -> Path:
        """Write an ``.xlsx`` workbook with a "design" sheet and an "about" sheet.

        See :func:`bioworkbench.doe.write_excel`.

        Parameters
        ----------
        path
            The ``.xlsx`` file to write.

        Returns
        -------
        Path
            The workbook path.
        """
        return write_excel(self, path)


# ---------------------------------------------------------------------------------------------
# argument checks shared by the generators
# ---------------------------------------------------------------------------------------------
def check_factors(factors: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Validated ranges (:func:`bioworkbench.terms.factor_ranges`), at most 26 factors (letters)."""
    ranges = factor_ranges(factors)
    factor_letters(list(ranges))
    return ranges


def check_units(units: Mapping[str, str | None] | None, names: Sequence[str]) -> dict[str, str | None]:
    units = dict(units or {})
    unknown = [u for u in units if u not in names]
    if unknown:
        raise ConfigError(
            f"units given for unknown factor {unknown[0]!r}. " + suggest(unknown[0], names, what="Factors")
        )
    bad = [n for n, u in units.items() if u is not None and not isinstance(u, str)]
    if bad:
        raise ConfigError(f"unit of factor {bad[0]!r} must be a string like 'degC' or None; got {units[bad[0]]!r}.")
    return {n: units.get(n) for n in names}


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """An integer option ``>= minimum`` (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_levels(levels: int | Mapping[str, int] | Sequence[int], names: Sequence[str]) -> list[int]:
    """Levels per factor from an int, ``{name: n}`` (others 2) or one number per factor; each >= 2."""
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


def seed_streams(random_seed: int | None) -> tuple[int, np.random.Generator, np.random.Generator]:
    """The recorded seed and two independent generators: run order, and the design's own search.

    ``None`` draws a seed from the operating system and records it, so the design can be regenerated.
    """
    if random_seed is None:
        random_seed = int(np.random.SeedSequence().entropy % 2**32)
    random_seed = check_int("random_seed", random_seed, minimum=0)
    order, search = np.random.SeedSequence(random_seed).spawn(2)
    return random_seed, np.random.default_rng(order), np.random.default_rng(search)


# ---------------------------------------------------------------------------------------------
# frame assembly
# ---------------------------------------------------------------------------------------------
def sig15(x: Any) -> Any:
    """``x`` rounded to 15 significant digits (a float or an array of floats)."""
    if isinstance(x, np.ndarray):
        return np.array([float(f"{v:.15g}") for v in x.ravel()], dtype=float).reshape(x.shape)
    return float(f"{x:.15g}")


def natural_values(coded: np.ndarray, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Natural units of coded settings; −1, 0 and +1 map to exactly ``low``, the middle and ``high``.

    (``decode`` alone can give ``7.200000000000001`` for ``high = 7.2``; the lab should read the
    numbers it typed.)
    """
    lo = np.array([r[0] for r in ranges.values()])
    hi = np.array([r[1] for r in ranges.values()])
    out = decode(coded, ranges)
    out = np.where(coded == -1.0, lo, out)
    return np.where(coded == 1.0, hi, out)


def run_orders(block: np.ndarray, *, randomize: bool, rng: np.random.Generator) -> np.ndarray:
    """1-based run order: blocks in ascending order, runs randomised (or in standard order) inside each."""
    n = len(block)
    run = np.empty(n, dtype=np.int64)
    start = 0
    for b in np.unique(block):
        idx = np.flatnonzero(block == b)
        if randomize:
            idx = rng.permutation(idx)
        run[idx] = np.arange(start + 1, start + len(idx) + 1)
        start += len(idx)
    return run


def assemble(
    coded: np.ndarray,
    point_type: Sequence[str],
    block: Sequence[int],
    ranges: Mapping[str, tuple[float, float]],
    *,
    randomize: bool,
    rng: np.random.Generator,
    natural: np.ndarray | None = None,
) -> pl.DataFrame:
    """The run table in the documented layout from coded settings given in standard order."""
    coded = sig15(np.asarray(coded, dtype=float))
    block = np.asarray(block, dtype=np.int64)
    natural = sig15(natural_values(coded, ranges) if natural is None else np.asarray(natural, dtype=float))
    n = coded.shape[0]
    cols: dict[str, Any] = {
        "std_order": pl.Series(np.arange(1, n + 1), dtype=pl.Int64),
        "run_order": pl.Series(run_orders(block, randomize=randomize, rng=rng), dtype=pl.Int64),
        "block": pl.Series(block, dtype=pl.Int64),
        "point_type": pl.Series(list(point_type), dtype=pl.String),
    }
    for j, name in enumerate(ranges):
        cols[name] = pl.Series(natural[:, j], dtype=pl.Float64)
    for j, name in enumerate(ranges):
        cols[f"{name}_coded"] = pl.Series(coded[:, j] + 0.0, dtype=pl.Float64)  # + 0.0: no negative zeros
    return pl.DataFrame(cols).sort("run_order")


def warn_outside(coded: np.ndarray, ranges: Mapping[str, tuple[float, float]], what: str) -> str | None:
    """Warn (and return the note) when design points lie outside the factor ranges."""
    nat = natural_values(coded, ranges)
    outside = []
    for j, (name, (lo, hi)) in enumerate(ranges.items()):
        col = nat[:, j]
        if col.min() < lo or col.max() > hi:
            outside.append(f"{name} {col.min():.6g} and {col.max():.6g} (range {lo:g} to {hi:g})")
    if not outside:
        return None
    note = f"{what} lie outside the given ranges: " + "; ".join(outside) + "."
    warnings.warn(note, BioWorkbenchWarning, stacklevel=3)
    return note


# ---------------------------------------------------------------------------------------------
# properties of second-order designs
# ---------------------------------------------------------------------------------------------
def is_rotatable(coded: np.ndarray, *, rtol: float = 1e-8) -> bool:
    """Second-order rotatability from the design moments (Box & Hunter 1957).

    Parameters
    ----------
    coded
        Runs × factors in coded units.
    rtol
        Relative tolerance of the moment equalities.

    Returns
    -------
    bool
        ``True`` when the moments up to order four equal those of a spherical distribution: every
        moment with an odd exponent is zero, the ``[ii]`` are all equal, the ``[iijj]`` (``i ≠ j``) are
        all equal to some ``λ4`` and ``[iiii] = 3 λ4``. Then the variance of the fitted second-order
        response depends only on the distance from the centre.

    Notes
    -----
    Moments are ``[i^a j^b ...] = (1/N) Σ_u x_iu^a x_ju^b ...``. Box G.E.P., Hunter J.S. (1957),
    Multi-factor experimental designs for exploring response surfaces, Ann. Math. Stat. 28, 195–241;
    Myers, Montgomery & Anderson-Cook, *Response Surface Methodology*, 4th ed., §8.3.
    """
    x = np.asarray(coded, dtype=float)
    k = x.shape[1]
    scale = max(1.0, float(np.mean(x**4, axis=0).max()))
    atol = rtol * scale
    for order in range(1, 5):
        for combo in itertools.combinations_with_replacement(range(k), order):
            powers = np.bincount(combo, minlength=k)
            if np.any(powers % 2 == 1) and abs(np.mean(np.prod(x**powers, axis=1))) > atol:
                return False
    m2 = np.mean(x**2, axis=0)
    m4 = np.mean(x**4, axis=0)
    m22 = [np.mean(x[:, i] ** 2 * x[:, j] ** 2) for i in range(k) for j in range(i + 1, k)]
    lam4 = m22[0] if m22 else m4[0] / 3
    return bool(
        np.allclose(m2, m2[0], rtol=0, atol=atol)
        and np.allclose(m22, lam4, rtol=0, atol=atol)
        and np.allclose(m4, 3 * lam4, rtol=0, atol=atol)
    )


def blocks_orthogonal(coded: np.ndarray, block: np.ndarray, *, atol: float = 1e-9) -> bool | None:
    """Whether blocks are orthogonal to the second-order model (``None`` with a single block).

    Parameters
    ----------
    coded
        Runs × factors in coded units.
    block
        The block of each run.
    atol
        Absolute tolerance of both conditions.

    Returns
    -------
    bool or None
        Whether both conditions below hold; ``None`` when there is a single block.

    Notes
    -----
    The two conditions of Box & Hunter (1957) (Montgomery, *Design and Analysis of Experiments*,
    9th ed., §11.4.3): (1) each block is a first-order orthogonal design, ``Σ_{u∈b} x_iu = 0`` and
    ``Σ_{u∈b} x_iu x_ju = 0`` for ``i ≠ j``; (2) each block holds the share of every factor's sum of
    squares that it holds of the runs, ``Σ_{u∈b} x_iu² / Σ_u x_iu² = n_b / N``.
    """
    x = np.asarray(coded, dtype=float)
    block = np.asarray(block)
    ids = np.unique(block)
    if len(ids) < 2:
        return None
    n = len(x)
    ss = np.sum(x**2, axis=0)
    for b in ids:
        xb = x[block == b]
        cross = xb.T @ xb
        if not np.allclose(xb.sum(axis=0), 0, atol=atol):
            return False
        if not np.allclose(cross - np.diag(np.diag(cross)), 0, atol=atol):
            return False
        if not np.allclose(np.diag(cross) / ss, len(xb) / n, atol=atol):
            return False
    return True
