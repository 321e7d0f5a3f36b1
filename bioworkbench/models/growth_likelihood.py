"""Numerics of the growth model's likelihood and sampling coordinates.

Used by :class:`bioworkbench.models.growth.GrowthModel` (see its module docstring for the model):

* :func:`pilot_fit`: per-batch MAP estimates of ``(log K, log μ, t_m, t_d, log δ)`` by a batched
  Levenberg–Marquardt (Marquardt 1963) with Student-t weights (iteratively reweighted least squares);
* :func:`_centring`: which parameters to sample centred, from the pilot fit's between-batch spread
  against each batch's conditional standard error (Papaspiliopoulos, Roberts & Sköld 2007);
* :func:`_reference_times`: the days ``t_c`` and ``t_L`` of the decorrelating coordinates, and which
  batches are seen only in part;
* :func:`_student_t_sum`: the Student-t log-likelihood's data term and its gradient in one compiled
  loop, and :func:`_student_t_op_class`, the PyTensor Op around it (built on first use, so that
  ``import bioworkbench`` loads neither PyTensor nor numba).

Marquardt, D. W. (1963). An algorithm for least-squares estimation of nonlinear parameters.
*Journal of the Society for Industrial and Applied Mathematics* 11(2), 431–441.

Papaspiliopoulos, O., Roberts, G. O. & Sköld, M. (2007). A general framework for the
parametrization of hierarchical models. *Statistical Science* 22(1), 59–73.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

__all__ = ["pilot_fit"]

#: fewest samples for a batch to be sampled in the centred coordinates (more than its 5 parameters)
_MIN_POINTS_CENTRED = 6


def _reference_times(obs: pl.DataFrame, ids: list[str], running: set[str]) -> tuple[float, float, list[bool]]:
    """``t_c`` and ``t_L`` (days) of the sampling coordinates, and which batches are seen only in part.

    ``t_c`` is half the median time at which the batches first reach half their highest VCD (the
    middle of the exponential phase), ``t_L`` one day before the median last sample (on the
    decline line). Running batches are left out of both medians unless every batch is running. A
    batch is *seen in part* (``True``) when it is running, has fewer than 6 samples, starts after
    ``t_c`` or ends before ``t_L``.
    """
    per = (
        obs.sort("batch_id", "time_h")
        .group_by("batch_id", maintain_order=True)
        .agg(
            first=pl.col("time_h").first() / 24,
            last=pl.col("time_h").last() / 24,
            half=pl.col("time_h").filter(pl.col("value") >= pl.col("value").max() / 2).first() / 24,
            n=pl.len(),
        )
    )
    whole = per.filter(~pl.col("batch_id").is_in(list(running)))
    ref = whole if whole.height else per
    t_l = float(ref["last"].median()) - 1.0
    t_c = min(0.5 * float(ref["half"].median()), t_l / 2)
    seen = {r["batch_id"]: r for r in per.iter_rows(named=True)}
    sparse = [
        b in running or seen[b]["n"] < _MIN_POINTS_CENTRED or seen[b]["first"] > t_c or seen[b]["last"] < t_l
        for b in ids
    ]
    return t_c, t_l, sparse


#: centred coordinates need this many batches seen whole: with fewer, the population SDs are too
#: uncertain and reach values where the centred form has a funnel (centred, the demo campaign's 23
#: batches and the 25 whole NISTCHO cultures had divergences; non-centred, none)
_CENTRED_MIN_BATCHES = 30
#: ... and a between-batch spread at least this many times the data's conditional standard error
_CENTRED_RATIO = 2.0
#: from this many batches seen whole, ``log μ`` and ``t_m`` (the early asymptote) are centred together
#: when both spreads are at least :data:`_EARLY_RATIO` times the conditional standard error. The demo
#: forecast (22 whole batches + B14): non-centred, each batch's t_m moved in lockstep with the campaign
#: centre and the covariate effects (condition number 252 in the mass matrix's coordinates, 84 leapfrog
#: steps per draw); these two centred, 31 steps, no divergences, the same endpoints (within 1.3 MC SE).
#: NISTCHO's 25 whole cultures in 10 groups (ratios 5.1 and 5.3) stay non-centred: centred, 50
#: divergences; ``t_d`` centred as well on the demo: 15-108 divergences
_EARLY_MIN_BATCHES = 15
_EARLY_RATIO = 6.0
#: the pilot fit's weak prior: the default priors' centres and scales (log K, log μ, t_m, t_d, log δ)
_PILOT_MEAN = np.array([np.log(15.0), np.log(0.6), 4.0, 9.0, np.log(0.2)])
_PILOT_SD = np.array([1.0, 0.5, 2.0, 3.0, 1.0])


def _dense_arrays(t: Any, log_y: Any, b: Any, nb: int, npt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observations as (batch, point) arrays ``t, log_y`` and a mask ``w`` (1: a sample, 0: padding)."""
    b = np.asarray(b, "int64")
    counts = np.bincount(b, minlength=nb)
    order = np.argsort(b, kind="stable")
    pos = np.empty_like(b)
    pos[order] = np.arange(b.size) - np.repeat(np.cumsum(counts) - counts, counts)
    tt, yy, w = np.zeros((nb, npt)), np.zeros((nb, npt)), np.zeros((nb, npt))
    tt[b, pos] = t
    yy[b, pos] = log_y
    w[b, pos] = 1.0
    return tt, yy, w


def _curve_and_jacobian(th: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's log VCD at ``t`` (batch, point) for ``th`` (batch, 5) and its derivatives (batch, point, 5)."""
    log_k, log_mu, tm, td, log_dl = (th[:, i, None] for i in range(5))
    mu, dl = np.exp(log_mu), np.exp(log_dl)
    s1, s2 = -mu * (t - tm), t - td
    sp2 = np.logaddexp(0.0, s2)
    f = log_k - np.logaddexp(0.0, s1) - dl * sp2
    g1, g2 = 0.5 * (1 + np.tanh(s1 / 2)), 0.5 * (1 + np.tanh(s2 / 2))  # logistic sigmoids
    jac = np.stack([np.ones_like(t), g1 * mu * (t - tm), -g1 * mu, dl * g2, -dl * sp2], axis=-1)
    return f, jac


def pilot_fit(t: np.ndarray, log_y: np.ndarray, w: np.ndarray, *, n_iter: int = 40, nu: float = 4.0) -> dict[str, Any]:
    """Per-batch MAP estimates of ``(log K, log μ, t_m, t_d, log δ)`` with a weak prior, all batches at once.

    Levenberg–Marquardt (Marquardt 1963) on every batch's 5 parameters in parallel (NumPy batched
    5 × 5 solves), with Student-t (ν = 4) weights by iteratively reweighted least squares. It is
    hand-written because scipy's ``least_squares`` solves one problem at a time (a Python loop over
    batches) and only serves to choose the sampling coordinates.

    Parameters
    ----------
    t
        Culture times in days, (batch, point).
    log_y
        Natural log of the VCD (log 1e6 cells/mL), (batch, point).
    w
        Mask, (batch, point): 1 for a sample, 0 for padding.
    n_iter
        Levenberg–Marquardt iterations.
    nu
        Degrees of freedom of the Student-t weights.

    Returns
    -------
    dict
        ``theta`` (batch, 5), ``se`` (marginal standard errors), ``cond_se`` (standard error of
        each parameter with the other four held: ``1/sqrt(H_jj)`` of the Hessian ``H``) and
        ``sigma``.

    Notes
    -----
    Minimises, per batch, ``½ Σ_j w_j ω_j (log y_j − f(t_j; θ))² / σ² + ½ Σ_i (θ_i − m_i)² / s_i²``
    with ``f`` the model's log VCD, ``m, s`` the weak prior's centres and scales, the robust weights
    ``ω_j = (ν + 1) / (ν + (r_j/σ)²)`` (from the fourth iteration on) and ``σ`` the root mean square
    residual (log scale). Standard errors are on the scales of ``θ`` (log, or days for ``t_m, t_d``).
    """
    nb = t.shape[0]
    prec = 1.0 / _PILOT_SD**2
    th = np.tile(_PILOT_MEAN, (nb, 1))
    y_max = np.where(w > 0, log_y, -np.inf).max(axis=1)
    t_half = np.where((w > 0) & (log_y >= y_max[:, None] - np.log(2.0)), t, np.inf).min(axis=1)
    th[:, 0] = y_max
    th[:, 2] = np.where(np.isfinite(t_half), t_half, _PILOT_MEAN[2])
    sigma, wt, lam = 0.1, np.ones_like(t), np.full(nb, 1e-2)

    def objective(theta: np.ndarray) -> np.ndarray:
        f, _ = _curve_and_jacobian(theta, t)
        fit_term = 0.5 * (wt * w * (log_y - f) ** 2).sum(axis=1) / sigma**2
        return fit_term + 0.5 * ((theta - _PILOT_MEAN) ** 2 * prec).sum(axis=1)

    def hessian(jac: np.ndarray) -> np.ndarray:
        return np.einsum("bpi,bpj->bij", jac * (w * wt)[..., None], jac) / sigma**2 + np.diag(prec)[None]

    for it in range(n_iter):
        f, jac = _curve_and_jacobian(th, t)
        r = w * (log_y - f)
        if it >= 3:  # robust weights once the fit is roughly in place
            sigma = float(np.sqrt((r**2).sum() / w.sum()))
            wt = (nu + 1) / (nu + (r / sigma) ** 2)
        h = hessian(jac)
        grad = np.einsum("bpi,bp->bi", jac * (w * wt)[..., None], r) / sigma**2 - (th - _PILOT_MEAN) * prec
        damped = h + lam[:, None, None] * np.einsum("bii->bi", h)[:, :, None] * np.eye(5)[None]
        new = th + np.linalg.solve(damped, grad[..., None])[..., 0]
        better = objective(new) < objective(th)
        th = np.where(better[:, None], new, th)
        lam = np.where(better, lam / 3, lam * 4)
    h = hessian(_curve_and_jacobian(th, t)[1])
    return {
        "theta": th,
        "se": np.sqrt(np.einsum("bii->bi", np.linalg.inv(h))),
        "cond_se": 1.0 / np.sqrt(np.einsum("bii->bi", h)),
        "sigma": sigma,
    }


def _centring(t: np.ndarray, log_y: np.ndarray, w: np.ndarray, design: np.ndarray | None = None) -> list[bool]:
    """Which of ``(log K, log μ, t_m, t_d, log δ)`` to sample centred for the batches seen whole.

    Centred wins when the data pin each batch's parameter well inside the population spread,
    non-centred when the population spread is small against what the data say (Papaspiliopoulos,
    Roberts & Sköld 2007). From :func:`pilot_fit` of those batches: a parameter is centred when there
    are at least 30 of them and the between-batch spread of the estimates (their residual SD after
    the campaign mean, the group means and the covariates in ``design``, with the mean squared
    standard error taken out) is more than twice the conditional standard error; ``log K`` only
    when ``t_m`` and ``t_d`` are centred too, ``log δ`` never. With 15-29 of them, ``log μ`` and
    ``t_m`` together when both spreads exceed six conditional standard errors, nothing else.
    """
    n = t.shape[0]
    if n < _EARLY_MIN_BATCHES:
        return [False] * 5
    fit = pilot_fit(t, log_y, w)
    x = np.ones((n, 1)) if design is None else np.column_stack([np.ones(n), design])
    coef, *_ = np.linalg.lstsq(x, fit["theta"], rcond=None)
    dof = n - np.linalg.matrix_rank(x)
    if dof < _CENTRED_MIN_BATCHES // 2:  # many groups or covariates: too few batches per spread
        return [False] * 5
    resid_var = ((fit["theta"] - x @ coef) ** 2).sum(axis=0) / dof
    spread = np.sqrt(np.maximum(resid_var - (fit["se"] ** 2).mean(axis=0), 0.0))
    cond = np.sqrt((fit["cond_se"] ** 2).mean(axis=0))
    if n < _CENTRED_MIN_BATCHES:
        early = bool(spread[1] > _EARLY_RATIO * cond[1] and spread[2] > _EARLY_RATIO * cond[2])
        return [False, early, early, False, False]
    centred = [bool(x) for x in spread > _CENTRED_RATIO * cond]
    # log delta stays non-centred: a few late points per batch, and its between-batch spread is
    # often near zero (its pilot spread overstates it: centred, the demo campaign had divergences)
    centred[4] = False
    # log K is pinned only together with both asymptotes (it correlates with t_m and t_d at ±0.8)
    centred[0] = centred[0] and centred[2] and centred[3]
    return centred


def _student_t_sum(theta, sigma, nu, t, log_y, w):  # compiled by numba
    """``S = Σ w log1p(r²/(ν σ²))`` of the growth curve's residuals ``r`` and its derivatives.

    ``theta`` (batch, 5) holds ``log K, log μ, t_m, t_d, log δ``; ``t, log_y, w`` are (batch, point).
    Returns ``S, dS/dθ, dS/dσ, dS/dν``. One loop computes the value and the gradient, sharing the
    exponentials of the two softplus terms and their sigmoids (5 transcendental calls per point).
    """
    n_b, n_p = t.shape
    total, d_sigma = 0.0, 0.0
    d_theta = np.zeros((n_b, 5))
    inv = 1.0 / (nu * sigma * sigma)
    for b in range(n_b):
        log_k, mu, tm, td, dl = theta[b, 0], math.exp(theta[b, 1]), theta[b, 2], theta[b, 3], math.exp(theta[b, 4])
        g0 = g1 = g2 = g3 = g4 = 0.0
        for j in range(n_p):
            wt = w[b, j]
            if wt == 0.0:
                continue
            tt = t[b, j]
            s1 = -mu * (tt - tm)
            e1 = math.exp(-abs(s1))
            sp1 = max(s1, 0.0) + math.log1p(e1)
            sg1 = 1.0 / (1.0 + e1) if s1 >= 0.0 else e1 / (1.0 + e1)
            s2 = tt - td
            e2 = math.exp(-abs(s2))
            sp2 = max(s2, 0.0) + math.log1p(e2)
            sg2 = 1.0 / (1.0 + e2) if s2 >= 0.0 else e2 / (1.0 + e2)
            r = log_y[b, j] - (log_k - sp1 - dl * sp2)
            q = r * r * inv
            total += wt * math.log1p(q)
            c = wt / (1.0 + q)
            ds_df = -2.0 * c * r * inv  # dS/d(mean)
            g0 += ds_df
            g1 += ds_df * sg1 * mu * (tt - tm)
            g2 -= ds_df * sg1 * mu
            g3 += ds_df * dl * sg2
            g4 -= ds_df * dl * sp2
            d_sigma += c * q
        d_theta[b, 0], d_theta[b, 1], d_theta[b, 2], d_theta[b, 3], d_theta[b, 4] = g0, g1, g2, g3, g4
    return total, d_theta, -2.0 * d_sigma / sigma, -d_sigma / nu


_OP_CLASS: list[type] = []
#: bump when _student_t_sum changes: PyTensor caches compiled Ops on disk by type and this number
_OP_VERSION = 1


def _student_t_op_class() -> type:
    """The PyTensor Op of :func:`_student_t_sum`, built on first use (PyTensor and numba load then).

    Hand-written because PyTensor's automatic gradient of the same expression evaluates about
    twice as many exponentials and logarithms per point (the softplus terms and their sigmoids
    separately) and costs about twice the time per gradient; the gradient is checked against
    PyTensor's in the tests. Numba compiles it for nutpie and for PyTensor's default (numba) mode;
    other modes run ``perform``.
    """
    if _OP_CLASS:
        return _OP_CLASS[0]
    import numba
    import pytensor.tensor as pt
    from pytensor.gradient import DisconnectedType, disconnected_type
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op
    from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

    kernel = numba.njit(_student_t_sum)

    class GrowthStudentTSum(Op):
        """``S, dS/dθ, dS/dσ, dS/dν`` of :func:`_student_t_sum`; differentiable in its first output."""

        __props__ = ()

        def make_node(self, theta, sigma, nu, t, log_y, w):
            ins = [pt.as_tensor_variable(x, dtype="float64") for x in (theta, sigma, nu, t, log_y, w)]
            return Apply(self, ins, [pt.dscalar(), pt.dmatrix(), pt.dscalar(), pt.dscalar()])

        def perform(self, node, inputs, outputs):
            for out, value in zip(outputs, kernel(*inputs), strict=True):
                out[0] = np.asarray(value, dtype="float64")

        def pullback(self, inputs, outputs, cotangents):
            if not all(isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
                raise NotImplementedError("second derivatives of the growth likelihood are not implemented")
            _, d_theta, d_sigma, d_nu = outputs
            g = cotangents[0]
            return [g * d_theta, g * d_sigma, g * d_nu] + [disconnected_type() for _ in range(3)]

        def connection_pattern(self, node):
            return [[True, False, False, False]] * 3 + [[False] * 4] * 3

    # named as a member of the growth module, where it always lived: PyMC pickles the compiled model
    # (the class is found by that name, through bioworkbench.models.growth.__getattr__), and
    # PyTensor's numba cache key is str(type(op)), so the name keeps cached compilations valid
    GrowthStudentTSum.__module__ = "bioworkbench.models.growth"
    GrowthStudentTSum.__qualname__ = "GrowthStudentTSum"

    @register_funcify_default_op_cache_key(GrowthStudentTSum)
    def _numba_growth_student_t(op, node=None, **kwargs):
        inner = numba_njit(_student_t_sum)

        @numba_njit
        def growth_student_t_sum(theta, sigma, nu, t, log_y, w):
            total, d_theta, d_sigma, d_nu = inner(theta, sigma[()], nu[()], t, log_y, w)
            return np.asarray(total), d_theta, np.asarray(d_sigma), np.asarray(d_nu)  # scalars as 0-d arrays

        return growth_student_t_sum, _OP_VERSION

    _OP_CLASS.append(GrowthStudentTSum)
    return GrowthStudentTSum


def _prepared_arrays(
    data: Any,
    obs: pl.DataFrame,
    ids: list[str],
    known: Mapping[str, float],
    *,
    group: str | None,
    covariates: str | Sequence[str] | None,
    function: str,
) -> dict[str, Any]:
    """The prepared data of the batches ``ids`` from their samples ``obs`` (sorted by batch and
    time): points, groups, covariates, and the sampling coordinates (:func:`_centring`)."""
    from bioworkbench.models.base import covariate_matrix
    from bioworkbench.models.inputs import resolve_covariates, resolve_group

    idx = {b: i for i, b in enumerate(ids)}
    grouping = resolve_group(group, data, ids, function=function)
    groups: list[str] = sorted(set(grouping["labels"]))
    g_of_batch = [groups.index(lab) for lab in grouping["labels"]] if groups else [0] * len(ids)
    running = set(known)
    t_c, t_l, sparse = _reference_times(obs, ids, running)
    b_idx = [idx[b] for b in obs["batch_id"].to_list()]
    t_d, log_y = (obs["time_h"] / 24).to_list(), obs["value"].log().to_list()
    whole = [i for i, sp in enumerate(sparse) if not sp]
    keep = np.isin(b_idx, whole)
    remap = np.full(len(ids), -1)
    remap[whole] = np.arange(len(whole))
    # what the batch-level spread is measured against: group means and covariate effects
    cov = covariate_matrix(data, list(ids), resolve_covariates(covariates, data, ids, function=function))
    design = np.column_stack(
        [np.asarray(cov["x"], float).reshape(len(ids), -1)]
        + [(np.asarray(g_of_batch) == k).astype(float) for k in range(1, len(groups))]
    )
    dense_whole = _dense_arrays(
        np.asarray(t_d)[keep],
        np.asarray(log_y)[keep],
        remap[np.asarray(b_idx, "int64")[keep]],
        len(whole),
        int(np.bincount(np.asarray(b_idx)[keep], minlength=1).max()) if keep.any() else 1,
    )
    return {
        "batch_ids": list(ids),
        # True: non-centred in every parameter (seen in part); False: the decorrelating coordinates
        "sparse": sparse,
        # sampled centred (in the coordinates log K, log mu, a, L) for the batches seen whole?
        "centred": _centring(*dense_whole, design=design[whole] if design.shape[1] else None),
        "t_ref": [t_c, t_l],
        "t": t_d,
        "log_y": log_y,
        "b": b_idx,
        "groups": groups,
        "g": g_of_batch,
        "grouping": {"columns": grouping["columns"], "how": grouping["how"], "levels": len(groups)},
        "t_max": float(obs["time_h"].max() / 24),
        "covariates": cov,
        "known_until_h": known,
    }
