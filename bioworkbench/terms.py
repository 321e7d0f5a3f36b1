"""Factors, their coding and the terms of polynomial (response-surface) models.

Shared by the designs of :mod:`bioworkbench.doe` (a D-optimal design is optimal *for a model*) and by
:class:`bioworkbench.models.ResponseSurface`, so that a design and the model fitted to its results
speak the same term language.

Conventions
-----------
* A factor is named (``"temp"``) and has a range ``(low, high)`` in natural units. Its **coded** value is
  ``x_c = (x - m) / h`` with ``m = (low + high) / 2`` and ``h = (high - low) / 2``, so ``low -> -1`` and
  ``high -> +1`` (Montgomery, *Design and Analysis of Experiments*, 9th ed., §6.2 and §11.2).
* Factors also have letters in the order given: ``A, B, C, …`` (the textbook notation, skipping ``I``);
  terms may use either the letters or the names.
* Terms: a main effect ``"temp"`` (or ``"A"``); an interaction ``"temp:ph"`` (or ``"A:B"``, any number of
  distinct factors); a pure quadratic ``"temp^2"`` (or ``"A^2"``). The intercept is not a term; model
  matrices add it as their first column. Kinds: ``"linear"`` (main effects), ``"interactions"`` (main
  effects and all two-factor interactions) and ``"quadratic"`` (interactions plus pure quadratics: the
  full second-order model).
* Canonical labels use factor names, the factors of an interaction in the order the factors were given:
  ``parse_terms(["C:A", "A^2"], ["temp", "ph", "feed"]) == ["temp:feed", "temp^2"]``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence

import numpy as np

from bioworkbench.errors import ConfigError, suggest

__all__ = [
    "KINDS",
    "code",
    "decode",
    "factor_letters",
    "factor_ranges",
    "model_matrix",
    "parse_terms",
    "term_powers",
]

KINDS = ("linear", "interactions", "quadratic")
_TOKEN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?:\^\s*(\d+)|\*\*\s*(\d+))?\s*$")


def factor_ranges(factors: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Validate ``{name: (low, high)}``: numeric, finite and ``low < high``.

    Parameters
    ----------
    factors
        ``{name: (low, high)}`` in natural units.

    Returns
    -------
    dict
        ``{name: (low, high)}`` with both limits as floats, in the given order.

    Raises
    ------
    ConfigError
        A factor without two numbers, with ``low >= high`` (a factor with one level cannot be coded) or
        with a name that is not an identifier.
    """
    if not isinstance(factors, Mapping) or not factors:
        raise ConfigError(f"factors must be a mapping {{name: (low, high)}} with at least one factor; got {factors!r}.")
    out: dict[str, tuple[float, float]] = {}
    problems = []
    for name, rng in factors.items():
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name):
            problems.append(f"factor name {name!r} must start with a letter and hold letters, digits, '_' or '.'")
            continue
        try:
            low, high = (float(v) for v in rng)
        except (TypeError, ValueError):
            problems.append(f"factor {name!r}: expected (low, high) numbers, got {rng!r}")
            continue
        if not (np.isfinite(low) and np.isfinite(high)):
            problems.append(f"factor {name!r}: range ({low}, {high}) is not finite")
        elif low == high:
            problems.append(
                f"factor {name!r} has one level ({low}): a factor needs two distinct levels to be coded and estimated"
            )
        elif low > high:
            problems.append(f"factor {name!r}: low {low} > high {high}; give (low, high)")
        else:
            out[name] = (low, high)
    if problems:
        raise ConfigError("; ".join(problems) + ".")
    return out


#: factor letters: the alphabet without ``I``, which stands for the identity in defining relations
#: (``I = ABCD``), as in Montgomery's tables (the 9th factor is ``J``)
LETTERS = string.ascii_uppercase.replace("I", "")


def factor_letters(factors: Sequence[str]) -> dict[str, str]:
    """``{letter: name}`` in the textbook notation ``A, B, …, H, J, K, …`` (``I`` skipped; at most 25 factors).

    Parameters
    ----------
    factors
        Factor names in order.

    Returns
    -------
    dict
        ``{letter: name}``, ``A`` for the first factor.

    Raises
    ------
    ConfigError
        More than 25 factors.
    """
    names = list(factors)
    if len(names) > len(LETTERS):
        raise ConfigError(f"at most {len(LETTERS)} factors can be lettered; got {len(names)}.")
    return dict(zip(LETTERS, names, strict=False))


def term_powers(term: str, factors: Sequence[str]) -> dict[str, int]:
    """``{factor: power}`` of a canonical term: ``"temp:ph" -> {"temp": 1, "ph": 1}``, ``"temp^2" -> {"temp": 2}``.

    Parameters
    ----------
    term
        A canonical term label (:func:`parse_terms`).
    factors
        The factor names the term may use.

    Returns
    -------
    dict
        ``{factor: power}`` of each factor in the term.

    Raises
    ------
    ConfigError
        The term names a factor that is not in ``factors``.
    """
    out: dict[str, int] = {}
    for part in term.split(":"):
        name, _, power = part.partition("^")
        out[name] = int(power or 1)
    unknown = [n for n in out if n not in factors]
    if unknown:
        raise ConfigError(f"term {term!r} names unknown factor {unknown[0]!r}; factors: {', '.join(factors)}.")
    return out


def parse_terms(terms: str | Sequence[str], factors: Sequence[str]) -> list[str]:
    """Canonical term labels for a model kind or an explicit list of terms.

    Parameters
    ----------
    terms
        ``"linear"``, ``"interactions"``, ``"quadratic"``, or a list such as ``["A", "C", "A:C", "A^2"]``
        or ``["temp", "feed", "temp:feed", "temp^2"]`` (letters and names may be mixed).
    factors
        Factor names in order (their letters follow that order).

    Returns
    -------
    list of str
        Terms in canonical form, in the order main effects, interactions, quadratics when built from a
        kind, and in the given order for an explicit list.

    Raises
    ------
    ConfigError
        Unknown kind or factor (with the valid choices), a repeated factor in an interaction (write the
        square as ``A^2``), powers other than 1 and 2, duplicate terms, or an empty model.
    """
    factors = list(factors)
    if isinstance(terms, str):
        if terms not in KINDS:
            raise ConfigError(
                f"unknown model kind {terms!r}: use one of {', '.join(KINDS)} or a list of terms like "
                f"['A', 'B', 'A:B', 'A^2']. " + suggest(terms, KINDS, what="Kinds")
            )
        out = list(factors)
        if terms in ("interactions", "quadratic"):
            out += [f"{a}:{b}" for i, a in enumerate(factors) for b in factors[i + 1 :]]
        if terms == "quadratic":
            out += [f"{a}^2" for a in factors]
        return out
    letters = factor_letters(factors)
    order = {n: i for i, n in enumerate(factors)}
    out = []
    for raw in terms:
        if not isinstance(raw, str) or not raw.strip():
            raise ConfigError(f"model term {raw!r} must be a non-empty string like 'A', 'A:B' or 'A^2'.")
        parts = []
        for piece in raw.split(":"):
            m = _TOKEN.match(piece)
            if not m:
                raise ConfigError(f"cannot read model term {raw!r}: write 'A', 'A:B' or 'A^2' (or factor names).")
            name = letters.get(m.group(1), m.group(1)) if m.group(1) not in order else m.group(1)
            if name not in order:
                valid = ", ".join(f"{k} ({v})" for k, v in letters.items())
                raise ConfigError(
                    f"model term {raw!r} names unknown factor {m.group(1)!r}. Valid factors: {valid}. "
                    + suggest(m.group(1), [*factors, *letters], what="Names")
                )
            power = int(m.group(2) or m.group(3) or 1)
            parts.append((name, power))
        names = [n for n, _ in parts]
        if len(set(names)) != len(names):
            raise ConfigError(f"model term {raw!r} repeats a factor; write a square as 'A^2'.")
        if len(parts) == 1:
            name, power = parts[0]
            if power not in (1, 2):
                raise ConfigError(f"model term {raw!r}: only powers 1 and 2 are supported.")
            label = name if power == 1 else f"{name}^2"
        else:
            if any(p != 1 for _, p in parts):
                raise ConfigError(f"model term {raw!r}: interactions of squared factors are not supported.")
            label = ":".join(sorted(names, key=order.__getitem__))
        if label in out:
            raise ConfigError(f"model term {raw!r} is given twice (as {label!r}).")
        out.append(label)
    if not out:
        raise ConfigError("the model has no terms; give a kind ('linear', ...) or at least one term.")
    return out


def code(values: np.ndarray, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Natural units -> coded units, column ``j`` of ``values`` being factor ``j`` of ``ranges``.

    Parameters
    ----------
    values
        Natural settings, runs × factors.
    ranges
        ``{name: (low, high)}``, one per column of ``values``, in column order.

    Returns
    -------
    numpy.ndarray
        ``x_c = (x - m) / h``, with ``m`` the middle and ``h`` the half-width of each range
        (``low -> -1``, ``high -> +1``).
    """
    lo, hi = (np.array([r[i] for r in ranges.values()], dtype=float) for i in (0, 1))
    return (np.asarray(values, dtype=float) - (lo + hi) / 2) / ((hi - lo) / 2)


def decode(coded: np.ndarray, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Coded units -> natural units (inverse of :func:`code`).

    Parameters
    ----------
    coded
        Coded settings, runs × factors.
    ranges
        ``{name: (low, high)}``, one per column of ``coded``, in column order.

    Returns
    -------
    numpy.ndarray
        ``x = m + h · x_c`` in natural units.
    """
    lo, hi = (np.array([r[i] for r in ranges.values()], dtype=float) for i in (0, 1))
    return np.asarray(coded, dtype=float) * (hi - lo) / 2 + (lo + hi) / 2


def model_matrix(
    coded: np.ndarray, factors: Sequence[str], terms: Sequence[str], *, intercept: bool = True
) -> np.ndarray:
    """The model matrix of canonical ``terms`` at coded settings ``coded`` (runs × factors).

    Columns: the intercept (a column of ones, when ``intercept``) then one column per term, the product
    of its factors' coded values raised to their powers.

    Parameters
    ----------
    coded
        Coded settings, runs × factors (leading dimensions, e.g. draws, are kept).
    factors
        Factor names, one per column of ``coded``.
    terms
        Canonical term labels (:func:`parse_terms`).
    intercept
        Start with a column of ones.

    Returns
    -------
    numpy.ndarray
        ``coded``'s leading shape × (intercept +) one column per term.

    Raises
    ------
    ConfigError
        ``coded`` has not one column per factor, or a term names an unknown factor.
    """
    x = np.atleast_2d(np.asarray(coded, dtype=float))
    factors = list(factors)
    if x.shape[-1] != len(factors):
        raise ConfigError(f"coded settings have {x.shape[-1]} columns; expected one per factor ({len(factors)}).")
    cols = [np.ones(x.shape[:-1])] if intercept else []
    for term in terms:
        col = np.ones(x.shape[:-1])
        for name, power in term_powers(term, factors).items():
            col = col * x[..., factors.index(name)] ** power
        cols.append(col)
    return np.stack(cols, axis=-1)
