"""Classical analysis of a designed experiment: ANOVA, fit statistics, coefficients, residuals, reduction.

:func:`analyze` fits each response by ordinary least squares (statsmodels ``OLS`` on the model matrix
of :mod:`bioworkbench.terms`, coded units) and returns an :class:`Analysis` of tidy polars frames, the
tables a reviewer or a MODDE / JMP / Design-Expert user expects next to a design space:

* ``anova`` — ``response, source, ss, df, ms, f, p``; sources ``block`` (when blocks are in the
  model), ``model``, one row per term, ``residual``, ``lack_of_fit`` and ``pure_error`` (when runs are
  replicated), ``total``;
* ``statistics`` — ``response, n, r2, r2_adj, q2, press, rmse, lack_of_fit_p``;
* ``coefficients`` — ``response, term, estimate, se, t, p, vif`` in coded units;
* ``residuals`` — ``run, response, observed, predicted, residual, studentized, leverage``.

:meth:`Analysis.reduce` removes terms backwards, respecting model hierarchy. The textbook analyses of
Montgomery, *Design and Analysis of Experiments* (8th ed., Examples 6.2, 7.2 and 11.2) are reproduced
to their printed precision in ``tests/test_doe_analysis.py``.

statsmodels (and its pandas) is imported inside the functions that fit, so ``import bioworkbench.doe``
stays light.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.checks import describe_type, require_frame
from bioworkbench.doe.design import Design
from bioworkbench.doe.evaluation import aliased_terms
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, Issue, SchemaError
from bioworkbench.terms import code, factor_ranges, model_matrix, parse_terms, term_powers
from bioworkbench.text import escape

__all__ = ["ANOVA_SOURCES", "Analysis", "analyze"]

#: the fixed sources of an ANOVA table, in the order printed (terms come between model and residual)
ANOVA_SOURCES = ("block", "model", "residual", "lack_of_fit", "pure_error", "total")
_LEVERAGE_ONE = 1.0 - 1e-9  # a run with leverage above this is fitted exactly: PRESS is undefined
_DIGITS = 9  # coded settings are rounded to this many decimals when runs are compared (replicates)


@dataclass(frozen=True)
class AnalysisInputs:
    """What :func:`analyze` read from the design or frame, kept so that :meth:`Analysis.reduce` can refit.

    Attributes
    ----------
    factors
        ``{name: (low, high)}``: the coding ranges.
    coded
        Coded settings of every run, runs × factors (``x_c = (x - m) / h``).
    responses
        ``{response: observed values}`` (NaN where a run has no value).
    run
        The run label of each row: ``run_order`` when the frame has it, else the 1-based row number.
    block
        Block label of each row (as text), or ``None`` when blocks are not in the model.
    block_column
        The column the blocks came from, or ``None``.
    """

    factors: dict[str, tuple[float, float]]
    coded: np.ndarray
    responses: dict[str, np.ndarray]
    run: np.ndarray
    block: np.ndarray | None
    block_column: str | None


@dataclass(frozen=True, eq=False)
class Analysis:
    """The classical least-squares analysis of one or more responses of a designed experiment.

    Made by :func:`analyze` (and :meth:`reduce`); every table is a tidy polars frame with a
    ``response`` column. Coefficients are in coded units: the change in the response per coded unit
    of the term (``-1 -> +1`` is two coded units, so a main effect is twice its coefficient).

    Attributes
    ----------
    anova
        ``response, source, ss, df, ms, f, p``: per response the rows ``block`` (blocks in the model;
        no F or p), ``model``, one row per term, ``residual``, ``lack_of_fit`` and ``pure_error``
        (when some runs are replicated), ``total``.
    statistics
        ``response, n, r2, r2_adj, q2, press, rmse, lack_of_fit_p``.
    coefficients
        ``response, term, estimate, se, t, p, vif``; ``term`` is ``"intercept"`` then the model terms
        as :mod:`bioworkbench.terms` names them (``"temp"``, ``"temp:ph"``, ``"temp^2"``).
    residuals
        ``run, response, observed, predicted, residual, studentized, leverage``.
    terms
        ``{response: terms}``: the model of each response (they differ after :meth:`reduce`).
    inputs
        The data the models were fitted to (:class:`AnalysisInputs`).
    results
        ``{response: statsmodels RegressionResults}`` (the exog columns: intercept, block contrasts,
        then the terms).
    notes
        Sentences a reader should see (runs left out, undefined statistics, removed terms).
    """

    anova: pl.DataFrame
    statistics: pl.DataFrame
    coefficients: pl.DataFrame
    residuals: pl.DataFrame
    terms: dict[str, tuple[str, ...]]
    inputs: AnalysisInputs
    results: dict[str, Any] = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def responses(self) -> list[str]:
        """The analysed responses, in the order given."""
        return list(self.terms)

    @property
    def factors(self) -> dict[str, tuple[float, float]]:
        """``{name: (low, high)}``: the factor ranges used for coding."""
        return dict(self.inputs.factors)

    def reduce(self, alpha: float = 0.05) -> Analysis:
        """Backward elimination of terms, respecting hierarchy: the reduced model of every response.

        Parameters
        ----------
        alpha
            Terms with a partial-F p-value above ``alpha`` are candidates for removal.

        Returns
        -------
        Analysis
            A new analysis of the same data with each response's reduced model (its ``notes`` name
            the removed terms).

        Raises
        ------
        ConfigError
            ``alpha`` is not a number in (0, 1).

        Notes
        -----
        Repeatedly, for each response: refit, and among the terms that no other remaining term
        contains (``A`` is contained in ``A:B`` and in ``A^2``; ``A:B`` in ``A:B:C``) remove the one
        with the largest p-value if it exceeds ``alpha``. A main effect is therefore never dropped while
        an interaction or square containing it stays (the hierarchy principle; Montgomery, *Design and
        Analysis of Experiments*, 9th ed., §6.5 and §10.3). At least one term is kept.
        """
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise ConfigError(f"alpha must be a number between 0 and 1 (exclusive); got {alpha!r}.")
        names = list(self.inputs.factors)
        new_terms, notes = {}, []
        for response, terms in self.terms.items():
            current = list(terms)
            removed = []
            while len(current) > 1:
                fit = _fit_response(self.inputs, response, current)
                pvals = dict(zip(current, fit.pvalues, strict=True))
                free = [t for t in current if not any(_contains(o, t, names) for o in current if o != t)]
                worst = max(free, key=lambda t: pvals[t] if np.isfinite(pvals[t]) else -1.0)
                if not pvals[worst] > alpha:
                    break
                current.remove(worst)
                removed.append(f"{worst} (p = {_p_text(pvals[worst])})")
            new_terms[response] = current
            if removed:
                notes.append(f"{response}: removed {', '.join(removed)} (alpha = {alpha:g}, hierarchy kept).")
            else:
                notes.append(f"{response}: no term removed (alpha = {alpha:g}).")
        return _analysis(self.inputs, new_terms, notes=list(self.notes) + notes)

    def summary(self) -> str:
        """The analysis in Markdown: per response a sentence of fit statistics, the ANOVA and coefficients.

        Returns
        -------
        str
            Markdown with one section per response; coefficients are stated in coded units.
        """
        parts = []
        for response in self.responses:
            st = self.statistics.filter(pl.col("response") == response).row(0, named=True)
            lof = st["lack_of_fit_p"]
            q2 = "undefined (a run has leverage 1)" if st["q2"] is None else f"{st['q2']:.4f}"
            parts.append(
                f"### {escape(response)}\n\n"
                f"{st['n']} runs; R² = {st['r2']:.4f}, adjusted R² = {st['r2_adj']:.4f}, Q² = {q2}, "
                f"RMSE = {st['rmse']:.4g}"
                + (f", lack of fit p = {_p_text(lof)}." if lof is not None else "; no replicates, no lack-of-fit test.")
                + "\n\n"
                + _markdown_table(self.anova.filter(pl.col("response") == response).drop("response"))
                + "\n\nCoefficients in coded units (−1 = low, +1 = high):\n\n"
                + _markdown_table(self.coefficients.filter(pl.col("response") == response).drop("response"))
            )
        parts += [f"*Note:* {escape(n)}" for n in self.notes]
        return "\n\n".join(parts)

    def _repr_markdown_(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"Analysis of {', '.join(self.responses)}\n{self.statistics}"


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------
def analyze(
    design_or_frame: Design | pl.DataFrame,
    responses: str | Sequence[str],
    *,
    terms: str | Sequence[str],
    factors: Mapping[str, Sequence[float]] | None = None,
    block: str | bool | None = None,
) -> Analysis:
    """Least-squares analysis of designed-experiment responses: ANOVA, R², Q², lack of fit, coefficients.

    Parameters
    ----------
    design_or_frame
        A :class:`~bioworkbench.doe.Design` whose frame holds the response columns (e.g. read back
        with :func:`~bioworkbench.doe.read_design`), or a polars frame with one natural-unit column per
        factor and the responses. A column ``<factor>_actual`` (the setting measured in the lab) is
        used in place of the planned ``<factor>`` where it is not null.
    responses
        The response column(s).
    terms
        The model: ``"linear"``, ``"interactions"``, ``"quadratic"`` or a list such as
        ``["A", "C", "A:C", "A^2"]`` (letters or factor names; :func:`bioworkbench.terms.parse_terms`).
    factors
        ``{name: (low, high)}`` for coding a plain frame (``low -> -1``, ``high -> +1``); a Design
        brings its own ranges, so give ``factors`` only with a frame.
    block
        The block column as a source of the ANOVA. ``None``: a Design's ``block`` column when the
        design has several blocks, no blocks for a frame; ``False``: no blocks.

    Returns
    -------
    Analysis
        Tidy ``anova``, ``statistics``, ``coefficients`` and ``residuals`` frames; :meth:`Analysis.reduce`
        for the reduced model, :meth:`Analysis.summary` for Markdown.

    Raises
    ------
    ArgumentError
        ``design_or_frame`` is neither a Design nor a frame.
    ConfigError
        ``factors`` missing for a frame or given with a Design; an unknown term; fewer runs than the
        model needs (the number needed is stated); aliased terms (named, with what they are aliased
        with); a constant block column.
    SchemaError
        A factor, response or block column is missing, or a factor or response holds something other
        than numbers (rows named).

    Warns
    -----
    BioWorkbenchWarning
        Runs without a value of a response are left out of that response's analysis (counted).

    Notes
    -----
    Model: ``y = Xβ + ε`` with ``X`` = intercept, block contrasts (sum-to-zero coding), then one
    column per term evaluated at the coded settings ``x_c = (x - m)/h``; fitted by ordinary least
    squares (statsmodels ``OLS``).

    ANOVA (Montgomery, *Design and Analysis of Experiments*, 9th ed., §3.3, §6.7, §10.3, §11.2):

    * ``total``: ``SS_T = Σ (y - ȳ)²`` on ``n - 1`` df;
    * ``block``: ``SS_block = SS_T - SSE(intercept + blocks)``, entered first (``b - 1`` df; no F,
      as Montgomery §4.1 advises for a restriction on randomisation);
    * ``model``: ``SS_model = SSE(intercept + blocks) - SSE``, with ``F = MS_model / MSE``;
    * each term: its partial (type III) sum of squares, ``SS_j = t_j² · MSE`` with ``t_j = β̂_j / se_j``
      (the extra sum of squares of adding term ``j`` last; Design-Expert's "partial" table);
    * ``residual``: ``SSE = Σ e²`` on ``n - p`` df, ``MSE = SSE / (n - p)``;
    * ``pure_error``: the within-group SS of runs at identical settings of all factors (and in the
      same block), on ``n - g`` df for ``g`` distinct groups; ``lack_of_fit = SSE - SS_PE`` on
      ``g - p`` df, ``F = MS_LOF / MS_PE`` (statsmodels ``compare_f_test`` against the group-means
      model). Both rows are left out when no run is replicated or the model fits every group exactly.

    Statistics, with ``SS_adj = SS_T - SS_block`` (``= SS_T`` without blocks; blocks are not credited
    to the model, as Design-Expert reports): ``R² = 1 - SSE / SS_adj``; ``R²_adj = 1 - MSE /
    (SS_adj / (n - 1 - (b - 1)))``; ``PRESS = Σ (e_i / (1 - h_ii))²`` (statsmodels ``OLSInfluence``;
    the leave-one-out prediction errors) and ``Q² = 1 - PRESS / SS_adj`` (predicted R²), undefined
    when a run has leverage ``h_ii = 1``; ``RMSE = √MSE`` in the response's unit.

    Coefficients: estimate, standard error, ``t`` and two-sided ``p`` on ``n - p`` df, and
    ``VIF_j = 1 / (1 - R_j²)`` (statsmodels ``variance_inflation_factor``), ``R_j²`` from regressing
    column ``j`` of ``X`` on the others; 1 for an orthogonal design. Residuals: ``studentized`` is the
    internally studentized residual ``e_i / √(MSE (1 - h_ii))``, ``leverage`` is ``h_ii``.
    """
    inputs, terms_list, notes = _read_inputs(design_or_frame, responses, terms=terms, factors=factors, block=block)
    return _analysis(inputs, dict.fromkeys(inputs.responses, terms_list), notes=notes)


# ---------------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------------
def _read_inputs(
    obj: Any,
    responses: str | Sequence[str],
    *,
    terms: str | Sequence[str],
    factors: Mapping[str, Sequence[float]] | None,
    block: str | bool | None,
) -> tuple[AnalysisInputs, list[str], list[str]]:
    if isinstance(obj, Design):
        if factors is not None:
            raise ConfigError(
                "analyze: factors is for a plain frame; a Design codes its factors with its own ranges "
                f"({', '.join(f'{n} {lo:g} to {hi:g}' for n, (lo, hi) in obj.factors.items())})."
            )
        ranges, frame = dict(obj.factors), obj.frame
        if block is None:
            block = "block" if obj.n_blocks > 1 else False
    else:
        if not isinstance(obj, pl.DataFrame | pl.LazyFrame) and not type(obj).__module__.startswith("pandas"):
            raise ArgumentError(
                "analyze: design_or_frame must be a bw.doe.Design or a polars DataFrame with one column per factor "
                f"and the responses; got {describe_type(obj)}."
            )
        frame = require_frame(obj, function="analyze", argument="design_or_frame")
        if factors is None:
            raise ConfigError(
                "analyze: a plain frame needs factors={name: (low, high)} to code its factor columns "
                "(low -> -1, high -> +1); or pass the bw.doe.Design."
            )
        ranges = factor_ranges(factors)
    names = list(ranges)
    terms_list = parse_terms(terms, names)
    if isinstance(responses, str):
        responses = [responses]
    responses = list(responses)
    if not responses or any(not isinstance(r, str) for r in responses):
        raise ConfigError(f"analyze: responses must be a column name or a list of names; got {responses!r}.")
    if block is True:
        block = "block"
    block_column = block if isinstance(block, str) else None
    if block is not None and not isinstance(block, str | bool):
        raise ConfigError(f"analyze: block must be a column name, None or False; got {describe_type(block)}.")

    issues = []
    natural = np.empty((frame.height, len(names)))
    for j, name in enumerate(names):
        if name not in frame.columns:
            issues.append(Issue("missing: one natural-unit column per factor is needed.", column=name))
            continue
        col = frame[name]
        if f"{name}_actual" in frame.columns:
            col = frame.select(pl.coalesce(pl.col(f"{name}_actual"), pl.col(name))).to_series()
        values, bad = _numbers(col, name, allow_missing=False)
        issues += bad
        natural[:, j] = values
    y = {}
    for response in responses:
        if response not in frame.columns:
            issues.append(Issue("missing: no such response column.", column=response))
            continue
        y[response], bad = _numbers(frame[response], response, allow_missing=True)
        issues += bad
    if block_column is not None and block_column not in frame.columns:
        issues.append(Issue("missing: the block column is not in the frame.", column=block_column))
    if issues:
        shown = ", ".join(c for c in frame.columns[:30])
        issues[-1] = Issue(issues[-1].message, column=issues[-1].column, hint=f"columns found: {shown}.")
        raise SchemaError(issues, context="analyze: the design's run table")

    blocks = None
    if block_column is not None:
        blocks = frame[block_column].cast(pl.String).fill_null("(none)").to_numpy()
        if len(np.unique(blocks)) < 2:
            raise ConfigError(
                f"analyze: the block column {block_column!r} holds one block only; pass block=False to leave it out."
            )
    run = frame["run_order"].to_numpy() if "run_order" in frame.columns else np.arange(1, frame.height + 1)
    inputs = AnalysisInputs(
        factors=ranges,
        coded=code(natural, ranges),
        responses=y,
        run=np.asarray(run),
        block=blocks,
        block_column=block_column,
    )
    notes = []
    for response, values in y.items():
        missing = int(np.isnan(values).sum())
        if missing:
            rows = ", ".join(str(r) for r in inputs.run[np.isnan(values)][:10])
            msg = f"{response}: {missing} run(s) without a value left out (run {rows})."
            warnings.warn(f"analyze: {msg}", BioWorkbenchWarning, stacklevel=3)
            notes.append(msg)
    return inputs, terms_list, notes


def _numbers(col: pl.Series, name: str, *, allow_missing: bool) -> tuple[np.ndarray, list[Issue]]:
    """A column as floats (NaN for missing) and the issues of values that are not numbers."""
    issues = []
    if col.dtype.is_numeric():
        values = col.cast(pl.Float64).to_numpy().astype(float)
    elif col.dtype in (pl.String, pl.Null):
        cast = col.cast(pl.Float64, strict=False)
        bad = np.flatnonzero((cast.is_null() & col.is_not_null()).to_numpy())
        for i in bad[:5]:
            issues.append(Issue(f"row {i + 1}: expected a number, found {col[int(i)]!r}.", column=name))
        if len(bad) > 5:
            issues.append(Issue(f"{len(bad) - 5} more rows are not numbers.", column=name))
        values = cast.to_numpy().astype(float)
    else:
        return np.full(col.len(), np.nan), [Issue(f"expected numbers, found type {col.dtype}.", column=name)]
    if not allow_missing:
        missing = np.flatnonzero(~np.isfinite(values))
        for i in missing[:5]:
            if not any(f"row {i + 1}:" in x.message for x in issues):
                issues.append(Issue(f"row {i + 1}: a factor setting is missing or not finite.", column=name))
    else:
        values = np.where(np.isfinite(values), values, np.nan)
    return values, issues


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------
def _exog(inputs: AnalysisInputs, rows: np.ndarray, terms: Sequence[str]) -> tuple[np.ndarray, list[str], int]:
    """Model matrix (intercept, block contrasts, terms) of ``rows``, its labels and the number of block columns."""
    names = list(inputs.factors)
    x = model_matrix(inputs.coded[rows], names, terms)
    labels = ["intercept", *terms]
    if inputs.block is None:
        return x, labels, 0
    levels = np.unique(inputs.block[rows])
    b = inputs.block[rows]
    contrasts = np.stack([(b == lev).astype(float) - (b == levels[-1]) for lev in levels[:-1]], axis=1)
    block_labels = [f"block[{lev}]" for lev in levels[:-1]]
    return np.hstack([x[:, :1], contrasts, x[:, 1:]]), ["intercept", *block_labels, *terms], contrasts.shape[1]


def _check_estimable(x: np.ndarray, labels: list[str], response: str, n_blocks_cols: int) -> None:
    n, p = x.shape
    if n < p + 1:
        parts = f"intercept, {n_blocks_cols} block column(s) and {p - 1 - n_blocks_cols} terms"
        raise ConfigError(
            f"analyze: response {response!r} has {n} runs with a value, but the model ({parts}) has {p} parameters: "
            f"at least {p + 1} runs are needed (one more than the parameters, for a residual). Use fewer terms "
            "(e.g. terms='linear') or more runs."
        )
    problems = aliased_terms(x, labels)
    if not problems:
        return
    raise ConfigError(
        f"analyze: response {response!r}: the runs cannot separate every term (the model matrix has rank "
        f"{np.linalg.matrix_rank(x)} < {p} parameters). Aliased: {'; '.join(problems)}. Remove one term of each "
        "alias chain, or augment the design (bw.doe.augment, bw.doe.fold_over)."
    )


@dataclass
class _ResponseFit:
    """One response's fitted model and the rows of its tables (plain data; frames are built once)."""

    result: Any
    pvalues: np.ndarray  # of the terms
    anova: list[tuple]
    statistics: tuple
    coefficients: list[tuple]
    residuals: dict[str, np.ndarray]
    note: str | None


def _fit_response(inputs: AnalysisInputs, response: str, terms: Sequence[str]) -> _ResponseFit:
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import OLSInfluence, variance_inflation_factor

    y_all = inputs.responses[response]
    rows = np.flatnonzero(~np.isnan(y_all))
    y = y_all[rows]
    x, labels, nb = _exog(inputs, rows, terms)
    _check_estimable(x, labels, response, nb)
    n, p = x.shape
    fit = sm.OLS(y, x).fit()
    restricted = sm.OLS(y, x[:, : 1 + nb]).fit()
    ss_total = float(np.sum((y - y.mean()) ** 2))
    ss_block = ss_total - float(restricted.ssr) if nb else 0.0
    sse, df_resid, mse = float(fit.ssr), int(fit.df_resid), float(fit.mse_resid)
    model_f, model_p, _ = fit.compare_f_test(restricted)
    ss_model = float(restricted.ssr) - sse
    tvalues, pvalues = np.asarray(fit.tvalues), np.asarray(fit.pvalues)
    anova = []
    if nb:
        anova.append(("block", ss_block, nb, ss_block / nb, None, None))
    anova.append(("model", ss_model, len(terms), ss_model / len(terms), float(model_f), float(model_p)))
    for j, term in enumerate(terms, start=1 + nb):
        ss_j = float(tvalues[j] ** 2 * mse)
        anova.append((term, ss_j, 1, ss_j, float(tvalues[j] ** 2), float(pvalues[j])))
    anova.append(("residual", sse, df_resid, mse, None, None))

    # lack of fit against pure error: groups of runs at the same settings (and block)
    keys = np.round(inputs.coded[rows], _DIGITS)
    if inputs.block is not None:
        _, bcode = np.unique(inputs.block[rows], return_inverse=True)
        keys = np.column_stack([keys, bcode])
    _, group = np.unique(keys, axis=0, return_inverse=True)
    n_groups = int(group.max()) + 1
    df_pe, df_lof = n - n_groups, n_groups - p
    lof_p = None
    if df_pe > 0 and df_lof > 0:
        full = sm.OLS(y, np.eye(n_groups)[group.ravel()]).fit()
        lof_f, lof_p, _ = full.compare_f_test(fit)
        ss_pe = float(full.ssr)
        ss_lof = sse - ss_pe
        lof_p = float(lof_p)
        anova.append(("lack_of_fit", ss_lof, df_lof, ss_lof / df_lof, float(lof_f), lof_p))
        anova.append(("pure_error", ss_pe, df_pe, ss_pe / df_pe, None, None))
    anova.append(("total", ss_total, n - 1, None, None, None))

    infl = OLSInfluence(fit)
    leverage = np.asarray(infl.hat_matrix_diag)
    ss_adj = ss_total - ss_block
    note = None
    if np.any(leverage > _LEVERAGE_ONE):
        press = q2 = None
        runs = ", ".join(str(r) for r in inputs.run[rows][leverage > _LEVERAGE_ONE][:10])
        note = f"{response}: run {runs} has leverage 1 (the model passes through it): PRESS and Q² are undefined."
        studentized = np.where(leverage > _LEVERAGE_ONE, np.nan, _safe_studentized(infl))
    else:
        press = float(np.sum(np.asarray(infl.resid_press) ** 2))
        q2 = 1.0 - press / ss_adj
        studentized = np.asarray(infl.resid_studentized_internal)
    r2 = 1.0 - sse / ss_adj
    r2_adj = 1.0 - mse / (ss_adj / (n - 1 - nb))
    statistics = (response, n, r2, r2_adj, q2, press, float(np.sqrt(mse)), lof_p)

    vif = [None] + [float(variance_inflation_factor(x, j)) for j in range(1 + nb, p)]
    coefficients = [
        (response, label, float(fit.params[j]), float(fit.bse[j]), float(tvalues[j]), float(pvalues[j]), v)
        for label, j, v in zip(["intercept", *terms], [0, *range(1 + nb, p)], vif, strict=True)
    ]
    residuals = {
        "run": inputs.run[rows],
        "observed": y,
        "predicted": np.asarray(fit.fittedvalues),
        "residual": np.asarray(fit.resid),
        "studentized": studentized,
        "leverage": leverage,
    }
    return _ResponseFit(fit, pvalues[1 + nb :], anova, statistics, coefficients, residuals, note)


def _safe_studentized(infl: Any) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(infl.resid_studentized_internal)


def _analysis(inputs: AnalysisInputs, terms: dict[str, Sequence[str]], *, notes: list[str]) -> Analysis:
    fits = {r: _fit_response(inputs, r, t) for r, t in terms.items()}
    notes = notes + [f.note for f in fits.values() if f.note]
    anova = pl.DataFrame(
        [(r, *row) for r, f in fits.items() for row in f.anova],
        schema={
            "response": pl.String,
            "source": pl.String,
            "ss": pl.Float64,
            "df": pl.Int64,
            "ms": pl.Float64,
            "f": pl.Float64,
            "p": pl.Float64,
        },
        orient="row",
    )
    statistics = pl.DataFrame(
        [f.statistics for f in fits.values()],
        schema={
            "response": pl.String,
            "n": pl.Int64,
            "r2": pl.Float64,
            "r2_adj": pl.Float64,
            "q2": pl.Float64,
            "press": pl.Float64,
            "rmse": pl.Float64,
            "lack_of_fit_p": pl.Float64,
        },
        orient="row",
    )
    coefficients = pl.DataFrame(
        [row for f in fits.values() for row in f.coefficients],
        schema={
            "response": pl.String,
            "term": pl.String,
            "estimate": pl.Float64,
            "se": pl.Float64,
            "t": pl.Float64,
            "p": pl.Float64,
            "vif": pl.Float64,
        },
        orient="row",
    )
    run_dtype = pl.Int64 if np.issubdtype(inputs.run.dtype, np.integer) else pl.String
    residuals = pl.concat(
        [
            pl.DataFrame(
                {
                    "run": pl.Series(f.residuals["run"]).cast(run_dtype),
                    "response": [r] * len(f.residuals["observed"]),
                    **{k: pl.Series(f.residuals[k], dtype=pl.Float64, nan_to_null=True) for k in list(f.residuals)[1:]},
                }
            )
            for r, f in fits.items()
        ]
    )
    return Analysis(
        anova=anova,
        statistics=statistics,
        coefficients=coefficients,
        residuals=residuals,
        terms={r: tuple(t) for r, t in terms.items()},
        inputs=inputs,
        results={r: f.result for r, f in fits.items()},
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _contains(big: str, small: str, names: Sequence[str]) -> bool:
    """Whether term ``big`` contains term ``small`` (``A:B`` and ``A^2`` contain ``A``)."""
    pb, ps = term_powers(big, names), term_powers(small, names)
    return all(f in pb and pb[f] >= k for f, k in ps.items())


def _p_text(p: float | None) -> str:
    if p is None or not np.isfinite(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _markdown_table(frame: pl.DataFrame) -> str:
    def cell(name: str, v: Any) -> str:
        if v is None:
            return ""
        if name == "p":
            return _p_text(v)
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(escape(v))

    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(cell(c, v) for c, v in zip(frame.columns, row, strict=True)) + " |" for row in frame.rows()
    ]
    return "\n".join([head, rule, *body])
