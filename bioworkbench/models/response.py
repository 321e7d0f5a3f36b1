"""Bayesian response surfaces: one or several CQAs regressed on coded CPPs (second-order models).

Model (run ``i``, response ``j``, block ``b[i]``; ``x_i`` the coded settings, ``f(x)`` the model terms)::

    z_ij  = (y_ij − ȳ_j) / s_j                                   responses standardised per response
    z_i   ~ MvNormal(β0 + B f(x_i) + c_b[i],  Σ)                 Σ = diag(σ) Ω diag(σ), Ω ~ LKJ(η)
    c_b   = u_b − ū,  u_bj ~ Normal(0, τ_j) iid over blocks       block effect, partially pooled

``ȳ_j`` and ``s_j`` are the mean and standard deviation of the observed values of response ``j``
(bambi's "scaled priors": the default priors below then mean the same thing for any response unit).
Factors are coded from their ranges, ``low → −1`` and ``high → +1`` (:mod:`bioworkbench.terms`), so a
coefficient is the change of the response for one coded unit, i.e. for half the factor's range. With
one response the residual is ``Normal(σ)``; with several, the residuals of a run are correlated
(LKJ-Cholesky prior on their correlation; Lewandowski, Kurowicka & Joe, J. Multivar. Anal. 100 (2009)
1989). Results are reported on the responses' natural scales (``β_nat = s_j · β``).

Block effects (e.g. day, campaign, bioreactor train) are random: iid ``Normal(0, τ_j)`` per block and
response, so a new block is a draw from the same population. They enter as contrasts ``c_b`` to their
mean ``ū`` over the ``nb`` observed blocks, the intercept being the mean level of the observed blocks
(as with a zero-sum parameterisation), and they are integrated out of the likelihood exactly (Gaussian
algebra, :func:`bioworkbench.models._gaussian._block_marginal`): NUTS then samples only ``β0, B, Σ, τ``,
with neither the funnel between ``τ`` and the effects nor the ridge between the intercept and their mean
that makes explicit effects of a few blocks diverge. Their posterior draws come back from the exact
conditional (:meth:`ResponseSurface.block_effects`). Predictions, :meth:`ResponseSurface.draws` and the
design space are for a **new** block unless a block is named: ``kind="mean"`` gives the population mean
surface (``β0 − ū`` with ``ū ~ Normal(0, τ²/nb)``) and ``kind="predictive"`` a new run in a new block
(residual plus ``Normal(0, τ²(1 + 1/nb))`` around ``β0``); a named block uses its own effect.

How it is sampled: NUTS (nutpie) samples the intercept and coefficients in QR coordinates, the
standard remedy for correlated regression coefficients (Stan User's Guide, "The QR reparameterization"):
with ``[1, F] = Q R`` the thin QR decomposition of the model matrix (``R`` scaled by ``1/√(n − 1)``),
the free parameters are ``θ_j = R (β0_j, B_j)`` per response, whose posterior is close to isotropic, with
their exact prior ``θ_j ~ MvNormal(R μ, R D Rᵀ)`` implied by the independent normal priors below, and
``(β0, B) = R⁻¹ θ`` is kept as deterministic ``intercept`` and ``beta``. On small designs the quadratic
columns correlate strongly with the intercept (a 16-run D-optimal design in 8 blocks of 2 gave ~100
divergences in the original coordinates, 0–4 in these); the remaining ones, at small residual SDs,
are why :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS` samples at target acceptance 0.95. With a
non-normal prior on the intercept or the coefficients the original coordinates are used.

Missing responses: with one response, rows with a missing value (null or NaN) are left out and
counted (a :class:`~bioworkbench.errors.BioWorkbenchWarning`, :meth:`ResponseSurface.diagnostics`).
With several, a row keeps the responses it has: its likelihood is the MvNormal of its observed
responses with the matching sub-covariance (the missing ones integrated out exactly, valid when they
are missing at random); only rows with every response missing are left out, and counted.

Why plain PyMC rather than a formula library (bambi): bambi is not installed, and a response surface
needs coded factors (ranges fixed by the design, not the data), textbook term labels (``A^2``),
correlated multi-response residuals and per-draw canonical analysis, none of which a formula
interface gives directly; the model is a short PyMC graph, compiles once per shape (the base class's
nutpie cache) and its posterior feeds the vectorised design-space computation without
``sample_posterior_predictive`` round trips.

References: Box & Wilson, J. R. Stat. Soc. B 13 (1951) 1; Myers, Montgomery & Anderson-Cook,
*Response Surface Methodology*, 4th ed. (2016), ch. 6 (canonical analysis); Peterson, J. Qual.
Technol. 36 (2004) 431 and J. Biopharm. Stat. 18 (2008) 959 (Bayesian design space).

Size: this module is over 600 lines (about 1,030, of them about 330 docstring lines). It holds one
model, :class:`ResponseSurface` (build, fit, predict, effects, summary, diagnostics, the block effects
drawn back), whose methods share its private state; the design space and the optimum are already in
:mod:`bioworkbench.models.design_space` and the Gaussian marginal in ``models/_gaussian.py``. A split
by subject is left to a later change (issue 15 item 2).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, Issue, ModelNotFittedError, SchemaError
from bioworkbench.models import convergence
from bioworkbench.models._gaussian import _block_marginal, _block_posterior, _mvnormal_logp, _residual_chol
from bioworkbench.models.base import BayesModel, Prior
from bioworkbench.models.inputs import _check_prob, _run_label, as_frame, numeric_columns
from bioworkbench.models.sampling import padded_size
from bioworkbench.schema import suggest
from bioworkbench.terms import KINDS, code, factor_ranges, model_matrix, parse_terms

__all__ = ["ResponseSurface"]

KIND_CHOICES = ("mean", "predictive")
#: seed of the block effects drawn back from their conditional posterior (:meth:`ResponseSurface.block_effects`)
_BLOCK_SEED = 20_040_431


def _qr_prior(X: np.ndarray, priors: Mapping[str, Prior]) -> dict[str, np.ndarray]:
    """The QR coordinates of the coefficients and their exact normal prior (see the module docstring).

    ``[1, X] = Q R`` (thin QR of the model matrix with the intercept, ``R`` scaled by ``1/√(n − 1)`` and
    its diagonal made positive); with ``(b0, β) ~ Normal(μ, D)`` independently,
    ``θ = R (b0, β) ~ MvNormal(R μ, R D Rᵀ)``. Returns ``R⁻¹``, ``R μ`` and the Cholesky factor of ``R D Rᵀ``.
    """
    n, m = X.shape
    _, R = np.linalg.qr(np.column_stack([np.ones(n), X]))
    R = R * np.sign(np.diag(R))[:, None] / np.sqrt(max(n - 1, 1))
    ic, cc = priors["intercept"].params, priors["coefficient"].params
    mu = np.array([ic.get("mu", 0.0)] + [cc.get("mu", 0.0)] * m, float)
    var = np.array([ic.get("sigma", 1.0)] + [cc.get("sigma", 1.0)] * m, float) ** 2
    return {
        "R_inv": np.linalg.inv(R),
        "theta_mu": R @ mu,
        "theta_chol": np.linalg.cholesky((R * var) @ R.T),
    }


class ResponseSurface(BayesModel):
    """Bayesian response surface of one or several responses (CQAs) on coded factors (CPPs).

    See the module docstring for the model. Default priors (standardised response scale, coded factors):

    =================  ======================  ============================  =========================================
    prior              distribution            unit                          why
    =================  ======================  ============================  =========================================
    ``intercept``      Normal(0, 2.5)          SD of the response            the response at the centre of the region
                                                                             lies within a few SDs of its mean
    ``coefficient``    Normal(0, 2.5)          SD of the response per coded  bambi's weakly informative slope scale
                                               unit                          (2.5 SD of y per SD of x): any effect
                                                                             the data can show is allowed
    ``sigma``          HalfNormal(1)           SD of the response            the residual SD cannot exceed the total
                                                                             SD by much
    ``residual_corr``  LKJCorr(eta=2)          –                             correlation of residuals of one run;
                                                                             mild shrinkage towards 0 (several
                                                                             responses only)
    ``sd_block``       HalfNormal(0.5)         SD of the response            blocks (days, trains) shift the response
                                                                             by less than its total spread
    =================  ======================  ============================  =========================================

    Parameters
    ----------
    factors
        ``{name: (low, high)}`` in natural units; the coding maps ``low → −1``, ``high → +1``.
    responses
        A response column name or a list of them.
    terms
        ``"linear"``, ``"interactions"``, ``"quadratic"`` (default) or a list such as
        ``["A", "C", "A:C", "A^2"]`` (letters follow the order of ``factors``; names work too).
    block
        Name of the block column of the data (random block effect), or ``None``.
    priors, sampler
        Overrides of :attr:`default_priors` and of the sampler settings (see :class:`BayesModel`).

    Raises
    ------
    ConfigError
        Invalid factor ranges (e.g. a factor with one level), unknown terms or kinds, a response or block
        name that is not a string, a response that is also a factor.
    """

    model_type = "ResponseSurface"
    config_fields = ("factors", "responses", "terms", "block")
    default_priors: ClassVar[dict[str, Prior]] = {
        "intercept": Prior("Normal", {"mu": 0.0, "sigma": 2.5}, "SD of the response", "response at the centre"),
        "coefficient": Prior(
            "Normal", {"mu": 0.0, "sigma": 2.5}, "SD of the response per coded unit", "bambi's weakly informative scale"
        ),
        "sigma": Prior("HalfNormal", {"sigma": 1.0}, "SD of the response", "residual SD below the total SD"),
        "residual_corr": Prior("LKJCorr", {"eta": 2.0}, "", "residual correlation, mild shrinkage towards 0"),
        "sd_block": Prior("HalfNormal", {"sigma": 0.5}, "SD of the response", "block shifts below the total spread"),
    }

    def __init__(
        self,
        factors: Mapping[str, Sequence[float]] | None = None,
        responses: str | Sequence[str] | None = None,
        terms: str | Sequence[str] = "quadratic",
        block: str | None = None,
        priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
        sampler: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(priors=priors, sampler=sampler)
        if self.priors["residual_corr"].dist != "LKJCorr":
            raise ConfigError(
                "prior 'residual_corr' must be an LKJCorr (its 'eta' is used); "
                f"got {self.priors['residual_corr'].dist}."
            )
        self._config: dict[str, Any] | None = None
        if factors is None and responses is None:
            return  # an empty shell (fit refuses it)
        if factors is None or responses is None:
            raise ConfigError("ResponseSurface needs factors={name: (low, high)} and responses=[...].")
        ranges = factor_ranges(factors)
        if isinstance(responses, str):
            responses = [responses]
        responses = list(responses)
        if not responses or not all(isinstance(r, str) and r for r in responses):
            raise ConfigError(f"responses must be a column name or a list of column names; got {responses!r}.")
        if len(set(responses)) != len(responses):
            raise ConfigError(f"responses {responses} name a column twice.")
        both = [r for r in responses if r in ranges]
        if both:
            raise ConfigError(f"{', '.join(both)} cannot be both a factor and a response.")
        if block is not None and (not isinstance(block, str) or block in ranges or block in responses):
            raise ConfigError(
                f"block must be the name of a column that is neither a factor nor a response; got {block!r}."
            )
        self._config = {
            "factors": {k: [lo, hi] for k, (lo, hi) in ranges.items()},
            "responses": responses,
            "terms": parse_terms(terms, list(ranges)),
            "block": block,
        }
        self._cache: dict[str, Any] = {}

    # -- configuration --------------------------------------------------------------------------
    def _require_fit(self) -> None:
        if self.idata is None:
            raise ModelNotFittedError("ResponseSurface has no posterior yet; call .fit(frame) first.")

    def _cfg(self) -> dict[str, Any]:
        if self._config is None and self.data is not None:
            self._config = self.data["config"]
        if self._config is None:
            raise ConfigError("ResponseSurface needs factors={name: (low, high)} and responses=[...].")
        return self._config

    @property
    def factors(self) -> dict[str, tuple[float, float]]:
        """``{name: (low, high)}`` in natural units."""
        return {k: (float(v[0]), float(v[1])) for k, v in self._cfg()["factors"].items()}

    @property
    def responses(self) -> list[str]:
        """The modelled responses, in the order of the last axis of :meth:`draws`."""
        return list(self._cfg()["responses"])

    @property
    def terms(self) -> list[str]:
        """Canonical term labels (the intercept is not a term)."""
        return list(self._cfg()["terms"])

    @property
    def block(self) -> str | None:
        """The block column of the fitted data (``None``: the model has no block effect)."""
        return self._cfg()["block"]

    def __repr__(self) -> str:
        if self._config is None and self.data is None:
            return "ResponseSurface(<empty>)"
        fitted = "fitted" if self.idata is not None else "not fitted"
        return (
            f"ResponseSurface(factors={self.factors}, responses={self.responses}, terms={self.terms}, "
            f"block={self.block!r}; {fitted})"
        )

    # -- fitting --------------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
    ) -> ResponseSurface:
        """Sample the posterior of the response surface on a table of runs.

        Parameters
        ----------
        data
            One row per run: the factor columns (natural units), the response columns and the block
            column if one was declared (polars or pandas frame, or a mapping of columns). Rows whose
            responses are all missing are left out and counted (see the module docstring).
        draws, tune, chains, random_seed, progressbar
            Sampler settings (defaults: the model's ``sampler`` settings, 2000 draws after 1000 tuning
            steps, 4 chains; :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`).

        Returns
        -------
        ResponseSurface
            ``self``, with ``idata``, ``data`` and ``sampling``.

        Raises
        ------
        ArgumentError
            A sampler setting that is not a positive integer.
        SchemaError
            Missing factor/response/block columns (each named, with close matches), no rows, values
            that are not numbers (row and column named), a design that cannot estimate the terms.
        ConfigError
            The model was made without ``factors`` and ``responses``.
        """
        return self._fit(data, draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar)

    # -- data -----------------------------------------------------------------------------------
    def _prepare(self, data: Any) -> dict[str, Any]:
        """Validate the data frame and turn it into JSON-serialisable arrays (see the module docstring)."""
        if isinstance(data, dict) and "config" in data and "y" in data:
            return data
        cfg = self._cfg()
        frame = as_frame(data, what="ResponseSurface.fit")
        factors, responses, block = list(cfg["factors"]), list(cfg["responses"]), cfg["block"]
        ranges = self.factors
        needed = [*factors, *responses, *([block] if block else [])]
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            role = {**dict.fromkeys(factors, "factor"), **dict.fromkeys(responses, "response"), block: "block"}
            raise SchemaError(
                [
                    Issue(
                        f"{role[c]} column not found. Expected columns: {', '.join(needed)}; "
                        f"found: {', '.join(frame.columns) or 'none'}.",
                        column=c,
                        hint=suggest(c, frame.columns, what="Columns") if frame.columns else None,
                    )
                    for c in absent
                ],
                context="the data of ResponseSurface.fit",
            )
        if frame.height == 0:
            raise SchemaError("the data have no rows.", context="the data of ResponseSurface.fit")
        x, issues = numeric_columns(frame, factors, what="a factor")
        y, more = numeric_columns(frame, responses, missing_ok=responses)
        issues += more
        runs = _run_label(frame)
        if block:
            bnull = frame[block].is_null().to_numpy()
            issues += [
                Issue(f"row {i}: missing block.", column=block, batch=runs[i] if runs else None)
                for i in np.flatnonzero(bnull)
            ]
        if issues:
            raise SchemaError(issues, context="the data of ResponseSurface.fit")
        X = np.column_stack([x[f] for f in factors])
        Y = np.column_stack([y[r] for r in responses])
        obs = ~np.isnan(Y)
        keep = obs.any(axis=1) if len(responses) > 1 else obs[:, 0]
        rows = np.flatnonzero(keep)
        dropped = np.flatnonzero(~keep).tolist()
        if rows.size == 0:
            raise SchemaError(
                f"none of the {frame.height} rows has a value of {', '.join(responses)}.",
                context="the data of ResponseSurface.fit",
            )
        if dropped:
            shown = ", ".join(map(str, dropped[:10])) + (" …" if len(dropped) > 10 else "")
            what = f"a missing {responses[0]!r}" if len(responses) == 1 else "every response missing"
            warnings.warn(
                f"ResponseSurface: {len(dropped)} of {frame.height} rows with {what} left out of the fit "
                f"(row {shown}).",
                BioWorkbenchWarning,
                stacklevel=3,
            )
        X, Y, obs = X[rows], Y[rows], obs[rows]
        problems = []
        for j, f in enumerate(factors):
            if np.ptp(X[:, j]) == 0:
                problems.append(
                    Issue(
                        f"factor has one value ({X[0, j]:g}) in all {rows.size} runs: its effect cannot be "
                        "estimated. Vary it in the design or leave it out of factors=.",
                        column=f,
                    )
                )
        g: list[int] = []
        levels: list[str] = []
        if block:
            bcol = frame[block].cast(pl.String).to_list()
            bk = [bcol[i] for i in rows]
            levels = sorted(set(bk))
            if len(levels) < 2:
                problems.append(
                    Issue(
                        f"block has one level ({levels[0] if levels else 'none'!r}) in the data: a block effect "
                        "needs at least two blocks. Pass block=None.",
                        column=block,
                    )
                )
            g = [levels.index(b) for b in bk]
        y_mean, y_sd = [], []
        for j, r in enumerate(responses):
            v = Y[obs[:, j], j]
            sd = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
            if v.size > 1 and not sd > 0:
                problems.append(Issue(f"response is constant ({v[0]:g}) over the runs: nothing to model.", column=r))
            if not v.size:
                problems.append(Issue("response has no value in any run.", column=r))
            y_mean.append(float(v.mean()) if v.size else 0.0)
            y_sd.append(sd if sd > 0 else 1.0)
        if problems:
            raise SchemaError(problems, context="the data of ResponseSurface.fit")
        self._check_estimable(code(X, ranges), obs)
        pats = sorted({tuple(np.flatnonzero(o).tolist()) for o in obs}, key=lambda p: (-len(p), p))
        return {
            "config": cfg,
            "x": X.tolist(),
            "y": [[None if np.isnan(v) else float(v) for v in row] for row in Y],
            "row": rows.tolist(),
            "n_rows": int(frame.height),
            "dropped": dropped,
            "block_levels": levels,
            "g": g,
            "y_mean": y_mean,
            "y_sd": y_sd,
            "patterns": [list(p) for p in pats],
            "pattern": [pats.index(tuple(np.flatnonzero(o).tolist())) for o in obs],
        }

    def _check_estimable(self, coded: np.ndarray, obs: np.ndarray) -> None:
        """More runs than coefficients, and no term aliased with the intercept or earlier terms."""
        factors, terms = list(self.factors), self.terms
        p = 1 + len(terms)
        names = ["intercept", *terms]
        for j, r in enumerate(self.responses):
            n = int(obs[:, j].sum())
            if n <= p:
                smaller = [f"terms={k!r} (p = {1 + len(parse_terms(k, factors))})" for k in KINDS]
                smaller = [s for s, k in zip(smaller, KINDS, strict=True) if 1 + len(parse_terms(k, factors)) < n]
                raise SchemaError(
                    f"the model of {r!r} has p = {p} coefficients (intercept + {len(terms)} terms) but the data have "
                    f"n = {n} runs with a {r!r} value; a model needs more runs than coefficients (n > p) to "
                    "estimate the residual error. Use a smaller model"
                    + (f": {' or '.join(smaller)}" if smaller else "")
                    + ", an explicit list of terms, or more runs.",
                    context="the data of ResponseSurface.fit",
                )
            M = model_matrix(coded[obs[:, j]], factors, terms)
            if np.linalg.matrix_rank(M) < p:
                aliased, kept = [], []
                for c in range(p):
                    if np.linalg.matrix_rank(M[:, [*kept, c]]) > len(kept):
                        kept.append(c)
                    else:
                        aliased.append(names[c])
                hint = (
                    " A two-level design cannot estimate pure quadratic terms: add centre and axial points, "
                    "or use terms='interactions'."
                    if any(a.endswith("^2") for a in aliased)
                    else ""
                )
                raise SchemaError(
                    f"term(s) {', '.join(aliased)} of the model of {r!r} cannot be estimated from these runs: "
                    "their columns are linear combinations of the other terms' (aliased)."
                    + hint
                    + " Drop them from terms=.",
                    context="the data of ResponseSurface.fit",
                )

    # -- model ----------------------------------------------------------------------------------
    def _structure(self, d: dict[str, Any]) -> tuple:
        return (
            padded_size(len(d["y"]), 16),
            len(d["config"]["responses"]),
            len(d["config"]["terms"]),
            len(d["block_levels"]),
            tuple(tuple(p) for p in d["patterns"]),
        )

    def _padded(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        nmax, k, _, _, pats = self._structure(d)
        n = len(d["y"])
        ranges = {f: tuple(v) for f, v in d["config"]["factors"].items()}
        X = np.zeros((nmax, len(d["config"]["terms"])))
        X[:n] = model_matrix(
            code(np.asarray(d["x"], float), ranges), list(ranges), d["config"]["terms"], intercept=False
        )
        Y = np.zeros((nmax, k))
        raw = np.array([[np.nan if v is None else v for v in row] for row in d["y"]], float)
        Y[:n] = np.nan_to_num((raw - np.asarray(d["y_mean"])) / np.asarray(d["y_sd"]))
        W = np.zeros((nmax, len(pats)))
        W[np.arange(n), d["pattern"]] = 1.0
        out = {"X": X, "Y": Y, "W": W}
        if self._qr():
            out.update(_qr_prior(X[:n], self.priors))
        nb = len(d["block_levels"])
        if nb:
            G = np.zeros((nmax, nb))
            G[np.arange(n), d["g"]] = 1.0
            out["G"] = G
            out["NP"] = G.T @ W  # rows of each block with each pattern of observed responses
        return out

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        return self._padded(d)

    def _build(self, d: dict[str, Any]) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        _, k, m, nb, pats = self._structure(d)
        arr = self._padded(d)
        p = self.priors
        with pm.Model() as model:
            X = pm.Data("X", arr["X"])
            Y = pm.Data("Y", arr["Y"])
            W = pm.Data("W", arr["W"])
            if self._qr():
                # QR parameterisation (see "How it is sampled" in the module docstring): θ = R (b0, β)
                R_inv = pm.Data("R_inv", arr["R_inv"])
                theta = pm.MvNormal(
                    "theta",
                    mu=pm.Data("theta_mu", arr["theta_mu"]),
                    chol=pm.Data("theta_chol", arr["theta_chol"]),
                    shape=(k, m + 1),
                )
                coef = pt.dot(theta, R_inv.T)
                b0 = pm.Deterministic("intercept", coef[:, 0])
                beta = pm.Deterministic("beta", coef[:, 1:])
            else:
                b0 = p["intercept"].create("intercept", shape=k)
                beta = p["coefficient"].create("beta", shape=(k, m))
            r = Y - (b0[None, :] + pt.dot(X, beta.T))
            if k == 1:
                sigma = p["sigma"].create("sigma", shape=1)
                L = [[sigma[0]]]
            else:
                sd_dist = getattr(pm, p["sigma"].dist).dist(**p["sigma"].params, shape=k)
                chol, _, _ = pm.LKJCholeskyCov(
                    "resid_chol",
                    n=k,
                    eta=float(p["residual_corr"].params.get("eta", 2.0)),
                    sd_dist=sd_dist,
                    compute_corr=True,
                    store_in_trace=False,
                )
                L = [[chol[i, j] for j in range(k)] for i in range(k)]
            ll, w, Q = _mvnormal_logp(L, r, W, pats, precision=bool(nb))
            total = ll.sum()
            if nb:
                # block effects integrated out exactly (see _block_marginal)
                G = pm.Data("G", arr["G"])
                NP = pm.Data("NP", arr["NP"])
                tau = p["sd_block"].create("sd_block", shape=k)
                h = [pt.dot(G.T, w[j]) for j in range(k)]
                M = [[sum(NP[:, i] * Q[i][j][c] for i in range(len(pats))) for c in range(k)] for j in range(k)]
                total = total + _block_marginal([tau[j] for j in range(k)], M, h, nb)
            pm.Potential("loglik", total)
        return model

    def _qr(self) -> bool:
        """Sample the coefficients in the QR coordinates: possible when both their priors are normal."""
        return self.priors["intercept"].dist == "Normal" and self.priors["coefficient"].dist == "Normal"

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        import xarray as xr

        d = self.data
        arr = self._padded(d)
        n = len(d["y"])
        b0 = prior["intercept"].values
        beta = prior["beta"].values
        mu = b0[..., None, :] + np.einsum("nm,cdkm->cdnk", arr["X"][:n], beta)
        if d["block_levels"]:
            tau = prior["sd_block"].values  # (chain, draw, k)
            u = tau[..., None, :] * rng.standard_normal((*tau.shape[:-1], len(d["block_levels"]), tau.shape[-1]))
            mu = mu + u[..., np.asarray(d["g"]), :]
        L = _residual_chol(prior, len(d["config"]["responses"]))
        y = mu + np.einsum("cdkl,cdnl->cdnk", L, rng.standard_normal(mu.shape))
        y = np.asarray(d["y_mean"]) + np.asarray(d["y_sd"]) * y
        return xr.Dataset(
            {"y": (("chain", "draw", "obs", "response"), y)},
            coords={"obs": np.arange(n), "response": d["config"]["responses"]},
        )

    # -- posterior --------------------------------------------------------------------------------
    def _post(self) -> dict[str, np.ndarray]:
        """Posterior draws on the standardised scale, stacked ``(sample, ...)`` (cached per posterior)."""
        self._require_fit()
        cache = getattr(self, "_cache", None)
        if cache is None:
            cache = self._cache = {}
        if cache.get("idata") is not self.idata:
            k = len(self.responses)
            post = self.idata["posterior"].to_dataset()
            stack = {v: post[v].stack(sample=("chain", "draw")).transpose("sample", ...).values for v in post.data_vars}
            L = _residual_chol(stack, k)
            out = {"b0": stack["intercept"], "B": stack["beta"], "L": L, "Sigma": L @ np.swapaxes(L, -1, -2)}
            if self.data["block_levels"]:
                out["tau"] = stack["sd_block"]
            cache.clear()
            cache.update({"idata": self.idata, "post": out})
        return cache["post"]

    def block_effects(self) -> np.ndarray:
        """Posterior draws of the block effects ``(sample, block, response)`` (standardised scale), centred

        over the observed blocks (they sum to zero; the intercept is the blocks' mean level).

        The effects are integrated out of the likelihood when sampling (see
        :func:`bioworkbench.models._gaussian._block_marginal`); here they are drawn back, one per posterior
        draw, from their exact conditional posterior: first
        ``u_b | β, Σ, τ, data ~ Normal(D A_b⁻¹ h'_b, D A_b⁻¹ D)`` independently per block, then conditioned
        on ``Σ_b u_b = 0`` (``c_b = u_b − V_b (Σ V)⁻¹ Σ u``, ``V_b`` their covariances).
        A fixed seed keeps the draws, and every prediction for a named block, reproducible.

        Returns
        -------
        numpy.ndarray
            ``(sample, block, response)``, blocks in the order of the fitted data.
        """
        post = self._post()
        if "u" not in post:
            mean, V = self._block_posterior()
            S, nb, k = mean.shape
            z = np.random.default_rng(_BLOCK_SEED).standard_normal((S, nb, k))
            u = mean + np.einsum("sbkl,sbl->sbk", np.linalg.cholesky(V), z)
            Vt = V.sum(axis=1)  # (S, k, k)
            gain = np.linalg.solve(Vt, u.sum(axis=1)[..., None])[..., 0]  # (Σ V)⁻¹ Σ u
            post["u"] = u - np.einsum("sbkl,sl->sbk", V, gain)
        return post["u"]

    def _block_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(S, nb, k)`` and covariance ``(S, nb, k, k)`` of the iid block effects given each draw
        (standardised scale; see :func:`bioworkbench.models._gaussian._block_marginal` for the notation)."""
        post = self._post()
        d = self.data
        arr = self._padded(d)
        n = len(d["y"])
        X, Y, W, G = arr["X"][:n], arr["Y"][:n], arr["W"][:n], arr["G"][:n]
        r = Y[None] - (post["b0"][:, None, :] + np.einsum("nm,skm->snk", X, post["B"]))
        return _block_posterior(r, post["Sigma"], post["tau"], W, G, d["patterns"])

    def _new_block_mean(self) -> np.ndarray:
        """Draws ``(S, k)`` of ``−ū``: the population mean level minus the observed blocks' mean level.

        ``ū ~ Normal(0, τ²/nb)`` independently of the data given ``τ`` (the likelihood sees only the
        contrasts), drawn with a fixed seed."""
        post = self._post()
        if "ubar" not in post:
            nb = len(self.data["block_levels"])
            z = np.random.default_rng(_BLOCK_SEED + 1).standard_normal(post["tau"].shape)
            post["ubar"] = -post["tau"] / np.sqrt(nb) * z
        return post["ubar"]

    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.data["y_mean"], float), np.asarray(self.data["y_sd"], float)

    def settings_matrix(self, settings: Any, *, what: str = "settings") -> tuple[pl.DataFrame, np.ndarray]:
        """The settings (natural units) as a frame of factor columns and their coded model matrix (no intercept).

        Parameters
        ----------
        settings
            A polars/pandas frame or mapping with one column per factor (natural units).
        what
            What the settings are, for the error message.

        Returns
        -------
        settings : polars.DataFrame
            The factor columns, natural units.
        matrix : numpy.ndarray
            Points × terms, coded.

        Raises
        ------
        SchemaError
            A factor column missing, or a setting that is not a finite number (each named by row and column).
        """
        factors = list(self.factors)
        frame = as_frame(settings, what=what)
        absent = [f for f in factors if f not in frame.columns]
        if absent:
            raise SchemaError(
                [
                    Issue(
                        f"factor column not found; {what} need one column per factor ({', '.join(factors)}); "
                        f"found: {', '.join(frame.columns) or 'none'}.",
                        column=f,
                    )
                    for f in absent
                ],
                context=what,
            )
        vals, issues = numeric_columns(frame, factors, what=what)
        if issues:
            raise SchemaError(issues, context=what)
        X = np.column_stack([vals[f] for f in factors]) if frame.height else np.zeros((0, len(factors)))
        nat = pl.DataFrame({f: X[:, j] for j, f in enumerate(factors)})
        return nat, model_matrix(code(X, self.factors), factors, self.terms, intercept=False)

    def _block_index(self, block: Any) -> int | None:
        if block is None:
            return None
        if not self.block:
            raise ConfigError("this model has no block effect; pass block=None.")
        levels = self.data["block_levels"]
        if str(block) not in levels:
            raise ConfigError(f"block {block!r} was not in the data. " + suggest(str(block), levels, what="Blocks"))
        return levels.index(str(block))

    def _std_draws(self, Xm: np.ndarray, *, kind: str, block: Any, random_seed: int | None) -> np.ndarray:
        """Draws ``(sample, point, response)`` on the standardised scale."""
        if kind not in KIND_CHOICES:
            raise ConfigError(f"kind must be one of {', '.join(map(repr, KIND_CHOICES))}; got {kind!r}.")
        post = self._post()
        bi = self._block_index(block)
        mu = post["b0"][:, None, :] + np.einsum("pm,skm->spk", Xm, post["B"])
        if bi is not None:
            mu = mu + self.block_effects()[:, bi, None, :]
        elif kind == "mean" and "tau" in post:
            mu = mu + self._new_block_mean()[:, None, :]
        if kind == "predictive":
            L = self.predictive_chol(new_block=bi is None)
            z = np.random.default_rng(random_seed).standard_normal(mu.shape)
            mu = mu + np.einsum("skl,spl->spk", L, z)
        return mu

    def predictive_chol(self, *, new_block: bool = True, responses: Sequence[int] | None = None) -> np.ndarray:
        """Cholesky factors ``(sample, k, k)`` of a new run's covariance around the intercept, standardised

        scale: the residual covariance, plus ``diag(τ² (1 + 1/nb))`` when ``new_block`` and the model has
        blocks (a new block's effect ``u_new − ū`` relative to the mean level of the ``nb`` observed
        blocks); restricted to the ``responses`` (indices) when given.

        Parameters
        ----------
        new_block
            Add a new block's effect (when the model has blocks).
        responses
            Indices of the responses to keep (default: all).

        Returns
        -------
        numpy.ndarray
            ``(sample, k, k)`` lower-triangular factors, ``k`` the number of responses kept.
        """
        post = self._post()
        key = ("chol", bool(new_block), None if responses is None else tuple(int(r) for r in responses))
        if key not in post:  # cached with the posterior: optimisers call this once per point
            post[key] = self._predictive_chol(post, new_block=new_block, responses=responses)
        return post[key]

    def _predictive_chol(
        self, post: dict[Any, np.ndarray], *, new_block: bool, responses: Sequence[int] | None
    ) -> np.ndarray:
        cov = post["Sigma"]
        if new_block and "tau" in post:
            nb = len(self.data["block_levels"])
            cov = cov + np.einsum("sk,kl->skl", post["tau"] ** 2 * (1 + 1 / nb), np.eye(cov.shape[-1]))
        if responses is not None:
            idx = np.asarray(responses)
            cov = cov[:, idx[:, None], idx[None, :]]
        return np.linalg.cholesky(cov)

    def draws(
        self, settings: Any, *, kind: str = "mean", block: Any = None, random_seed: int | None = None
    ) -> np.ndarray:
        """Posterior draws of the responses at ``settings``, shape ``(sample, point, response)``, natural units.

        Parameters
        ----------
        settings
            A polars/pandas frame or mapping with one column per factor (natural units); one point per row.
        kind
            ``"mean"``: the mean response surface (parameter uncertainty only). ``"predictive"``: a new run
            (plus the residual, correlated across responses, and a new block's effect).
        block
            A block of the data to predict for; ``None`` (default): a new block (see the module docstring).
        random_seed
            Seed of the residual draws (``kind="predictive"``).

        Returns
        -------
        numpy.ndarray
            ``(sample, point, response)``, responses in the order of :attr:`responses`.
        """
        _, Xm = self.settings_matrix(settings)
        y_mean, y_sd = self._scale()
        return y_mean + y_sd * self._std_draws(Xm, kind=kind, block=block, random_seed=random_seed)

    def predict(
        self,
        settings: Any,
        *,
        prob: float = 0.9,
        kind: str = "mean",
        block: Any = None,
        random_seed: int | None = None,
    ) -> pl.DataFrame:
        """Predicted responses at ``settings`` with equal-tailed ``prob`` intervals.

        Returns a tidy frame: the factor columns, ``response, mean, lower, upper, prob`` (one row per
        point and response, natural units). See :meth:`draws` for ``kind`` and ``block``.

        Parameters
        ----------
        settings
            A polars/pandas frame or mapping with one column per factor (natural units); one point per row.
        prob
            Mass of the equal-tailed intervals.
        kind
            ``"mean"`` (the mean surface) or ``"predictive"`` (a new run); see :meth:`draws`.
        block
            A block of the data to predict for; ``None``: a new block.
        random_seed
            Seed of the residual draws (``kind="predictive"``).

        Returns
        -------
        polars.DataFrame
            The factor columns, ``response, mean, lower, upper, prob``.
        """
        _check_prob(prob)
        nat, _ = self.settings_matrix(settings)
        d = self.draws(nat, kind=kind, block=block, random_seed=random_seed)
        lo, hi = np.quantile(d, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        k = len(self.responses)
        n = nat.height
        return (
            nat.select(pl.all().gather(np.repeat(np.arange(n), k)))
            .with_columns(
                response=pl.Series(self.responses * n),
                mean=pl.Series(d.mean(axis=0).ravel()),
                lower=pl.Series(lo.ravel()),
                upper=pl.Series(hi.ravel()),
            )
            .with_columns(prob=pl.lit(prob))
        )

    # -- results --------------------------------------------------------------------------------
    def effects(self, prob: float = 0.9) -> pl.DataFrame:
        """Posterior of every term's coefficient, per response, on the response's natural scale.

        Parameters
        ----------
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        pl.DataFrame
            ``response, term, mean, sd, lower, upper, prob, p_positive, p_sign``: a coefficient is the
            change of the response (its units) for one coded unit of the term, i.e. for a change of the
            factor by half its range (for ``A:B`` and ``A^2``, per unit of the product of coded values).
            ``lower, upper``: equal-tailed ``prob`` interval; ``p_positive`` = P(β > 0);
            ``p_sign`` = the probability of the sign of the posterior mean, ``max(p, 1 − p)``.
        """
        _check_prob(prob)
        post = self._post()
        _, y_sd = self._scale()
        coef = post["B"] * y_sd[None, :, None]  # (sample, response, term)
        rows = []
        for j, r in enumerate(self.responses):
            c = coef[:, j, :]
            lo, hi = np.quantile(c, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
            pp = (c > 0).mean(axis=0)
            mean = c.mean(axis=0)
            for t, term in enumerate(self.terms):
                rows.append(
                    {
                        "response": r,
                        "term": term,
                        "mean": float(mean[t]),
                        "sd": float(c[:, t].std()),
                        "lower": float(lo[t]),
                        "upper": float(hi[t]),
                        "prob": prob,
                        "p_positive": float(pp[t]),
                        "p_sign": float(pp[t] if mean[t] >= 0 else 1 - pp[t]),
                    }
                )
        return pl.DataFrame(rows)

    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """Every parameter on the natural scale with r̂ and bulk ESS.

        ``parameter`` is ``intercept`` (response at the centre of the region), ``coefficient`` (per term,
        as in :meth:`effects`), ``sigma`` (residual SD), ``correlation`` (residual correlation with the
        response named in ``term``), ``sd_block`` (block-to-block SD), ``block_effect`` (the shift of the
        block named in ``term``, see :meth:`block_effects`). Columns: ``parameter, response, term, mean, sd,
        lower, upper, prob, r_hat, ess_bulk``.

        Parameters
        ----------
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        polars.DataFrame
            ``parameter, response, term, mean, sd, lower, upper, prob, r_hat, ess_bulk``.
        """
        _check_prob(prob)
        post = self._post()
        y_mean, y_sd = self._scale()
        chains = self.idata["posterior"].sizes.get("chain", 1)
        sd = np.sqrt(np.diagonal(post["Sigma"], axis1=1, axis2=2))
        blocks: list[tuple[str, str | None, int, np.ndarray]] = []
        for j in range(len(self.responses)):
            blocks.append(("intercept", None, j, y_mean[j] + y_sd[j] * post["b0"][:, j]))
            blocks += [("coefficient", t, j, y_sd[j] * post["B"][:, j, i]) for i, t in enumerate(self.terms)]
            blocks.append(("sigma", None, j, y_sd[j] * sd[:, j]))
            for j2, r2 in enumerate(self.responses):
                if j2 != j:
                    blocks.append(("correlation", r2, j, post["Sigma"][:, j, j2] / (sd[:, j] * sd[:, j2])))
            if "tau" in post:
                blocks.append(("sd_block", None, j, y_sd[j] * post["tau"][:, j]))
                u = self.block_effects()
                blocks += [
                    ("block_effect", b, j, y_sd[j] * u[:, i, j]) for i, b in enumerate(self.data["block_levels"])
                ]
        rows = []
        for name, term, j, x in blocks:
            lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
            cd = x.reshape(chains, -1)
            rows.append(
                {
                    "parameter": name,
                    "response": self.responses[j],
                    "term": term,
                    "mean": float(x.mean()),
                    "sd": float(x.std()),
                    "lower": float(lo),
                    "upper": float(hi),
                    "prob": prob,
                    "r_hat": float(convergence.array_rhat(cd)) if chains > 1 else float("nan"),
                    "ess_bulk": float(convergence.array_ess(cd)),
                }
            )
        return pl.DataFrame(rows, schema_overrides={"term": pl.String})

    def diagnostics(self) -> dict[str, Any]:
        """The base diagnostics plus the runs used and the rows left out (see the module docstring).

        Returns
        -------
        dict
            :meth:`BayesModel.diagnostics` plus the runs used and the rows left out.
        """
        out = super().diagnostics()
        n_used = len(self.data["y"])
        dropped = list(self.data["dropped"])
        obs = np.array([[v is not None for v in row] for row in self.data["y"]])
        out.update(
            {
                "n_rows": self.data["n_rows"],
                "n_runs": n_used,
                "rows_dropped": len(dropped),
                "dropped_rows": dropped,
                "runs_per_response": dict(zip(self.responses, obs.sum(axis=0).tolist(), strict=True)),
            }
        )
        rows = ", ".join(map(str, dropped))
        out["notes"] = (
            [f"{len(dropped)} of {self.data['n_rows']} rows left out: no response value (row {rows})."]
            if dropped
            else []
        )
        return out

    def optimum(self, *, response: str | None = None, prob: float = 0.9) -> pl.DataFrame:
        """Stationary point of the fitted second-order surface and its kind (maximum, minimum, saddle).

        See :func:`bioworkbench.models.design_space.optimum` (this method calls it with ``self``).

        Parameters
        ----------
        response
            One response (default: every modelled response).
        prob
            Mass of the equal-tailed intervals.

        Returns
        -------
        polars.DataFrame
            As :func:`bioworkbench.models.design_space.optimum`.
        """
        from bioworkbench.models.design_space import optimum

        return optimum(self, response=response, prob=prob)

    def optimize(
        self,
        objective: Any,
        *,
        constraints: Any = None,
        prob: float = 0.9,
        region: str | Mapping[str, Sequence[float]] = "design",
        fixed: Mapping[str, float] | None = None,
        block: Any = None,
        n_candidates: int = 4096,
        n_refine: int = 4,
        random_seed: int | None = 0,
    ) -> Any:
        """Best settings of every factor for an objective, subject to P(constraints met) ≥ ``prob``.

        See :func:`bioworkbench.models.optimize.optimize` (this method calls it with ``self``), e.g.
        ``rs.optimize({"titer": "max"}, constraints={"aggregates": (None, 4.0)}, prob=0.9)``.

        Parameters
        ----------
        objective, constraints, prob, region, fixed, block, n_candidates, n_refine, random_seed
            As :func:`bioworkbench.models.optimize.optimize`.

        Returns
        -------
        Optimum
        """
        from bioworkbench.models.optimize import optimize

        return optimize(
            self,
            objective,
            constraints=constraints,
            prob=prob,
            region=region,
            fixed=fixed,
            block=block,
            n_candidates=n_candidates,
            n_refine=n_refine,
            random_seed=random_seed,
        )

    def design_space(
        self,
        specs: Any,
        *,
        grid: int | Mapping[str, int | Sequence[float]] = 50,
        prob: float = 0.9,
        fixed: Mapping[str, float | Sequence[float]] | None = None,
        block: Any = None,
        random_seed: int | None = None,
    ) -> Any:
        """Peterson's Bayesian design space: P(every response within its spec) over a grid of settings.

        See :func:`bioworkbench.models.design_space.design_space` (this method calls it with ``self``).

        Parameters
        ----------
        specs, grid, prob, fixed, block, random_seed
            As :func:`bioworkbench.models.design_space.design_space`.

        Returns
        -------
        DesignSpace
        """
        from bioworkbench.models.design_space import design_space

        return design_space(self, specs, grid=grid, prob=prob, fixed=fixed, block=block, random_seed=random_seed)
