"""Evaluation of a design before it is run: VIF, condition number, D/A/G-efficiency, power, FDS.

:func:`evaluate` (also :meth:`bioworkbench.doe.Design.evaluate`) answers "is this design good enough
for this model?" from the coded settings alone: how correlated the terms' columns are, how precisely
each coefficient will be estimated and the power to detect an effect of a stated size, the classical
optimality efficiencies, and how the prediction variance is spread over the region (the
fraction-of-design-space curve; draw it with :func:`bioworkbench.plots.plot_fraction_of_design_space`).

Layer: this module takes the design as an argument (anything with ``coded`` and ``factor_names``)
and imports nothing of :mod:`bioworkbench.doe`, so that :class:`~bioworkbench.doe.Design` can delegate
to it without an import cycle. statsmodels and scipy are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ArgumentError, ConfigError
from bioworkbench.terms import model_matrix, parse_terms

__all__ = ["DesignEvaluation", "aliased_terms", "evaluate"]

_GRID_MAX_FACTORS = 7  # the 3^k grid searched for the largest prediction variance (3^7 = 2187 points)


@dataclass(frozen=True, eq=False)
class DesignEvaluation:
    """How well a design supports a model, before any response is measured.

    Attributes
    ----------
    terms
        One row per model term: ``term``, ``vif``, ``variance`` (the coefficient's variance in units
        of σ², ``[(XᵀX)⁻¹]_jj``), ``se`` (its standard error, ``sigma · √variance``) and ``power``
        (null when the model leaves no residual degrees of freedom).
    criteria
        One row: ``n_runs``, ``n_parameters``, ``df_residual``, ``condition_number``, ``d_efficiency``,
        ``a_efficiency``, ``g_efficiency`` (%), ``max_relative_variance`` and
        ``average_relative_variance`` (over the coded cube).
    fds
        The fraction-of-design-space curve: ``fraction`` (0 to 1 by 0.01) and ``relative_variance``.
    model
        The model terms (intercept implied).
    effect, sigma, alpha
        The effect size, noise standard deviation and significance level of the power calculation.
    n_points
        Uniform random points of the coded cube behind ``fds`` and the average variance.
    notes
        Sentences a reader should see.
    """

    terms: pl.DataFrame
    criteria: pl.DataFrame
    fds: pl.DataFrame
    model: tuple[str, ...]
    effect: float
    sigma: float
    alpha: float
    n_points: int
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """The evaluation in Markdown: the criteria in a sentence and the per-term table.

        Returns
        -------
        str
            Markdown: runs, parameters, efficiencies and condition number, then term, VIF, SE and power.
        """
        c = self.criteria.row(0, named=True)
        head = (
            f"{c['n_runs']} runs for {c['n_parameters']} parameters ({c['df_residual']} residual df); "
            f"D-efficiency {c['d_efficiency']:.1f} %, A-efficiency {c['a_efficiency']:.1f} %, "
            f"G-efficiency {c['g_efficiency']:.1f} %, condition number {c['condition_number']:.3g}. "
            f"Power for an effect of {self.effect:g} (noise SD {self.sigma:g}, alpha {self.alpha:g}):"
        )
        rows = ["| term | vif | se | power |", "|---|---|---|---|"]
        for r in self.terms.iter_rows(named=True):
            power = "" if r["power"] is None else f"{r['power']:.3f}"
            rows.append(f"| {r['term']} | {r['vif']:.3g} | {r['se']:.3g} | {power} |")
        return "\n\n".join([head, "\n".join(rows), *(f"*Note:* {n}" for n in self.notes)])

    def _repr_markdown_(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"DesignEvaluation of {', '.join(self.model)}\n{self.criteria}\n{self.terms}"


def evaluate(
    design: Any,
    terms: str | Sequence[str] = "quadratic",
    *,
    effect: float = 2.0,
    sigma: float = 1.0,
    alpha: float = 0.05,
    n_points: int = 5000,
    random_seed: int = 0,
) -> DesignEvaluation:
    """Evaluate a design for a model: VIF, condition number, D/A/G-efficiency, power and FDS.

    Parameters
    ----------
    design
        A :class:`~bioworkbench.doe.Design` (its coded settings are used; blocks are not in the model).
    terms
        The model (``"linear"``, ``"interactions"``, ``"quadratic"`` or a list of terms).
    effect
        The effect to detect: the change in the response from a term's low to its high setting
        (twice the coded coefficient), in the response's unit.
    sigma
        The run-to-run noise standard deviation, in the response's unit.
    alpha
        Significance level of the two-sided test of each coefficient.
    n_points
        Uniform random points of the coded cube for the FDS curve and the average variance.
    random_seed
        Seed of those points.

    Returns
    -------
    DesignEvaluation
        ``terms`` (per term), ``criteria`` (one row) and ``fds`` frames.

    Raises
    ------
    ArgumentError
        ``design`` has no coded settings.
    ConfigError
        An unknown term; fewer runs than parameters; aliased terms (named); ``effect``, ``sigma``,
        ``alpha`` or ``n_points`` out of range.

    Notes
    -----
    ``X`` is the model matrix (intercept + terms) at the coded settings, ``n`` runs × ``p`` parameters,
    ``M = XᵀX`` and ``d(x) = f(x)ᵀ M⁻¹ f(x)`` the relative prediction variance ``Var(ŷ(x))/σ²``.

    * ``VIF_j = 1 / (1 - R_j²)`` (statsmodels ``variance_inflation_factor``), 1 when the term's column is
      orthogonal to the others; ``condition_number = s_max / s_min``, the ratio of the largest to the
      smallest singular value of ``X`` (1 for an orthogonal ±1 design; MODDE's definition).
    * ``D-efficiency = 100 · |M|^{1/p} / n``, ``A-efficiency = 100 · p / (n · tr M⁻¹)`` and
      ``G-efficiency = 100 · p / (n · max_x d(x))``, the maximum over the coded cube ``[-1, 1]^k``
      (searched on the ``3^k`` grid for ``k ≤ 7``, the random points, then refined by L-BFGS-B from the
      best five). All three are 100 % for a 2-level orthogonal design and a first-order or interaction
      model (Montgomery, *Design and Analysis of Experiments*, 9th ed., §11.4.2; Atkinson, Donev &
      Tobias 2007, *Optimum Experimental Designs, with SAS*, ch. 10–11; the efficiencies JMP and SAS
      OPTEX report, G in Montgomery's scaled-prediction-variance form ``p / max SPV``).
    * Power of the two-sided t-test of term ``j`` on ``ν = n - p`` residual df, for a coefficient
      ``β_j = effect / 2`` (every term, squares included): noncentrality ``λ = β_j / (σ √M⁻¹_jj)``,
      ``power = P(F'(1, ν, λ²) > F_{1-α}(1, ν))`` with ``F'`` the noncentral F (scipy.stats ``ncf``).
    * FDS: ``d(x)`` at ``n_points`` uniform random points of the coded cube; ``relative_variance`` at
      ``fraction`` ``f`` is the ``f``-quantile (Zahran, Anderson-Cook & Myers 2003, Fraction of
      design space to assess prediction capability of response surface designs, J. Qual. Technol.
      35, 377–386). ``average_relative_variance`` is their mean (the I-criterion).
    """
    from scipy import stats
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    if not hasattr(design, "coded") or not hasattr(design, "factor_names"):
        raise ArgumentError(f"evaluate: design must be a bw.doe.Design; got {type(design).__name__}.")
    for name, value, low in (("effect", effect, 0.0), ("sigma", sigma, 0.0)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= low:
            raise ConfigError(f"evaluate: {name} must be a positive number; got {value!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise ConfigError(f"evaluate: alpha must be between 0 and 1 (exclusive); got {alpha!r}.")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 100:
        raise ConfigError(f"evaluate: n_points must be an integer >= 100; got {n_points!r}.")
    names = list(design.factor_names)
    model = parse_terms(terms, names)
    x = model_matrix(np.asarray(design.coded, dtype=float), names, model)
    n, p = x.shape
    labels = ["intercept", *model]
    if n < p:
        raise ConfigError(
            f"evaluate: {n} runs cannot estimate {p} parameters ({', '.join(labels)}); at least {p} runs are needed."
        )
    problems = aliased_terms(x, labels)
    if problems:
        raise ConfigError(
            f"evaluate: the design cannot separate every term of the model. Aliased: {'; '.join(problems)}. "
            "Remove one term of each alias chain, or augment the design (bw.doe.augment, bw.doe.fold_over)."
        )
    m_inv = np.linalg.inv(x.T @ x)
    variance = np.diag(m_inv)[1:]
    df = n - p
    notes = []
    if df > 0:
        lam2 = (effect / 2.0) ** 2 / (sigma**2 * variance)
        power = stats.ncf.sf(stats.f.ppf(1 - alpha, 1, df), 1, df, lam2)
    else:
        power = np.full(p - 1, np.nan)
        notes.append(f"the model uses every run ({n} runs, {p} parameters): no residual df, no test, no power.")
    vif = [float(variance_inflation_factor(x, j)) for j in range(1, p)] if p > 2 else [1.0] * (p - 1)
    term_frame = pl.DataFrame(
        {
            "term": model,
            "vif": vif,
            "variance": variance,
            "se": sigma * np.sqrt(variance),
            "power": pl.Series(power, dtype=pl.Float64, nan_to_null=True),
        }
    )

    rng = np.random.default_rng(random_seed)
    k = len(names)
    points = rng.uniform(-1.0, 1.0, size=(n_points, k))
    d_random = _relative_variance(points, names, model, m_inv)
    d_max = _max_variance(points, d_random, names, model, m_inv)
    fraction = np.linspace(0.0, 1.0, 101)
    fds = pl.DataFrame({"fraction": fraction, "relative_variance": np.quantile(d_random, fraction)})
    _, logdet = np.linalg.slogdet(x.T @ x)
    criteria = pl.DataFrame(
        {
            "n_runs": [n],
            "n_parameters": [p],
            "df_residual": [df],
            "condition_number": [float(np.linalg.cond(x))],
            "d_efficiency": [float(100.0 * np.exp(logdet / p) / n)],
            "a_efficiency": [float(100.0 * p / (n * np.trace(m_inv)))],
            "g_efficiency": [float(100.0 * p / (n * d_max))],
            "max_relative_variance": [float(d_max)],
            "average_relative_variance": [float(d_random.mean())],
        }
    )
    if getattr(design, "n_blocks", 1) > 1:
        notes.append("blocks are not in the evaluated model (each would add a parameter).")
    return DesignEvaluation(
        terms=term_frame,
        criteria=criteria,
        fds=fds,
        model=tuple(model),
        effect=float(effect),
        sigma=float(sigma),
        alpha=float(alpha),
        n_points=n_points,
        notes=tuple(notes),
    )


def aliased_terms(x: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The columns of a model matrix that are linear combinations of earlier ones, written out.

    Parameters
    ----------
    x
        Model matrix, runs × columns.
    labels
        One label per column.

    Returns
    -------
    list of str
        ``"C:D = +1·A:B"`` for each column (in order) that the columns kept before it reproduce;
        empty when ``x`` has full column rank.
    """
    p = x.shape[1]
    if np.linalg.matrix_rank(x) == p:
        return []
    problems, kept = [], []
    for j in range(p):
        if kept and np.linalg.matrix_rank(x[:, [*kept, j]]) == len(kept):
            coef = np.linalg.lstsq(x[:, kept], x[:, j], rcond=None)[0]
            with_ = [f"{c:+.3g}·{labels[k]}" for c, k in zip(coef, kept, strict=True) if abs(c) > 1e-8]
            problems.append(f"{labels[j]} = {' '.join(with_) or '0'}")
        else:
            kept.append(j)
    return problems


def _relative_variance(points: np.ndarray, names: list[str], model: list[str], m_inv: np.ndarray) -> np.ndarray:
    f = model_matrix(points, names, model)
    return np.einsum("ij,jk,ik->i", f, m_inv, f)


def _max_variance(
    points: np.ndarray, d_points: np.ndarray, names: list[str], model: list[str], m_inv: np.ndarray
) -> float:
    """Largest ``d(x)`` over the coded cube: grid and random points, then L-BFGS-B from the best five."""
    from scipy.optimize import minimize

    k = len(names)
    if k <= _GRID_MAX_FACTORS:
        grid = np.array(np.meshgrid(*[[-1.0, 0.0, 1.0]] * k, indexing="ij")).reshape(k, -1).T
        points = np.vstack([grid, points])
        d_points = np.concatenate([_relative_variance(grid, names, model, m_inv), d_points])
    best = float(d_points.max())
    for start in points[np.argsort(d_points)[-5:]]:
        res = minimize(
            lambda z: -_relative_variance(z[None, :], names, model, m_inv)[0],
            start,
            method="L-BFGS-B",
            bounds=[(-1.0, 1.0)] * k,
        )
        best = max(best, float(-res.fun))
    return best
