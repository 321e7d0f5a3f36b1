"""Gaussian linear algebra behind :class:`~bioworkbench.models.response.ResponseSurface`'s likelihood.

What it holds:

* :func:`_residual_chol`: the residual Cholesky factors from posterior (or prior) draws (numpy);
* an unrolled Cholesky factorisation, sub-covariance factor, triangular solves and triangular inverse
  (:func:`_cholesky`, :func:`_sub_cholesky`, :func:`_forward`, :func:`_backward`, :func:`_inverse_lower`)
  that build PyTensor graphs entry by entry;
* :func:`_mvnormal_logp`: the multivariate normal log-density of each row's observed responses (any
  pattern of missing responses, integrated out exactly);
* :func:`_block_marginal`: the random block effects, centred over the observed blocks, integrated out of
  the likelihood exactly; :func:`_block_posterior`: their conditional posterior given a draw (numpy).

Why hand-written: the number of responses ``k`` is small (1–5), so the factors, solves and inverses are
written out entry by entry (nested lists of scalars, or of vectors over runs or blocks). The compiled
model then needs no LAPACK call (nutpie's numba compile of PyTensor's batched Cholesky/solve ops is
slower), the same code serves every pattern of observed responses, and the block effects can be
marginalised analytically, which ``pm.MvNormal`` with a missing-value mask cannot do. PyTensor is
imported inside the functions so that importing this module stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _residual_chol(draws: Mapping[str, Any], k: int) -> np.ndarray:
    """Residual Cholesky factors ``(..., k, k)`` from posterior (or prior) draws of ``sigma`` or ``resid_chol``."""
    if k == 1:
        s = np.asarray(draws["sigma"].values if hasattr(draws["sigma"], "values") else draws["sigma"])
        return s[..., None]  # (..., 1) -> (..., 1, 1)
    packed = np.asarray(draws["resid_chol"].values if hasattr(draws["resid_chol"], "values") else draws["resid_chol"])
    L = np.zeros((*packed.shape[:-1], k, k))
    rows, cols = np.tril_indices(k)
    L[..., rows, cols] = packed  # PyMC packs the lower triangle row by row
    return L


# -- unrolled linear algebra for the PyMC graph ----------------------------------------------------
# The number of responses k is small, so the Cholesky factors, triangular solves and inverses below are
# written out entry by entry (nested lists of scalars, or of vectors over blocks): the compiled model
# needs no LAPACK call (nutpie's numba compile of batched Cholesky/solve ops is slower), and the same
# code serves every pattern of observed responses.
def _cholesky(A: list[list[Any]]) -> list[list[Any]]:
    """Lower Cholesky factor of the symmetric positive-definite ``A`` (entries: scalars or vectors)."""
    import pytensor.tensor as pt

    d = len(A)
    C: list[list[Any]] = [[0.0] * d for _ in range(d)]
    for i in range(d):
        for j in range(i + 1):
            s = A[i][j] - sum(C[i][t] * C[j][t] for t in range(j))
            C[i][j] = pt.sqrt(s) if i == j else s / C[j][j]
    return C


def _sub_cholesky(L: list[list[Any]], pattern: Sequence[int]) -> list[list[Any]]:
    """Cholesky factor of the sub-covariance ``Σ[pattern, pattern]`` with ``Σ = L Lᵀ`` (for a leading
    block of responses simply ``L[:d, :d]``)."""
    d = len(pattern)
    if list(pattern) == list(range(d)):
        return [[L[i][j] for j in range(d)] for i in range(d)]
    cov = [[sum(L[a][t] * L[b][t] for t in range(min(a, b) + 1)) for b in pattern] for a in pattern]
    return _cholesky(cov)


def _forward(C: list[list[Any]], r: list[Any]) -> list[Any]:
    """``e = C⁻¹ r`` for lower-triangular ``C``."""
    e: list[Any] = []
    for i in range(len(r)):
        e.append((r[i] - sum(C[i][j] * e[j] for j in range(i))) / C[i][i])
    return e


def _backward(C: list[list[Any]], e: list[Any]) -> list[Any]:
    """``v = C⁻ᵀ e`` for lower-triangular ``C`` (so ``v = Σ⁻¹ r`` when ``e = C⁻¹ r``, ``Σ = C Cᵀ``)."""
    d = len(e)
    v: list[Any] = [0.0] * d
    for i in reversed(range(d)):
        v[i] = (e[i] - sum(C[t][i] * v[t] for t in range(i + 1, d))) / C[i][i]
    return v


def _inverse_lower(C: list[list[Any]]) -> list[list[Any]]:
    """``C⁻¹`` (lower-triangular) of a lower-triangular ``C``."""
    d = len(C)
    Ci: list[list[Any]] = [[0.0] * d for _ in range(d)]
    for j in range(d):
        Ci[j][j] = 1.0 / C[j][j]
        for i in range(j + 1, d):
            Ci[i][j] = -sum(C[i][t] * Ci[t][j] for t in range(j, i)) / C[i][i]
    return Ci


def _block_marginal(tau: list[Any], M: list[list[Any]], h: list[Any], nb: int) -> Any:
    """log ∫ Π_i N(r_i − c_b[i] | 0, Σ_i) p(c) dc − Σ_i log N(r_i | 0, Σ_i): the block effects, centred
    over the observed blocks, integrated out.

    The block effects ``u_b ~ Normal(0, diag τ²)`` (iid over blocks) are split into their mean over the
    ``nb`` observed blocks, ``ū ~ Normal(0, τ²/nb)``, and the contrasts ``c_b = u_b − ū`` (independent of
    ``ū``); the intercept is the mean level of the observed blocks (it absorbs ``ū``), which removes
    the funnel between the intercept and ``τ`` that iid effects have when blocks are few. With
    ``r_i`` the residuals from that intercept, ``∫ … p(c) dc = p(y | ū = 0) = p(y) p(ū = 0 | y) / p(ū = 0)``
    where, per block and with ``D = diag τ``, ``M = Σ_i Σ_i⁻¹``, ``h = Σ_i Σ_i⁻¹ r_i`` (each row's observed
    responses, embedded in the full response space) and ``A = I + D M D``:

    * ``log p(y) − Σ_i log N(r_i | 0, Σ_i) = Σ_b (−½ log|A_b| + ½ h'_bᵀ A_b⁻¹ h'_b)``, ``h' = D h``;
    * ``u_b | y ~ Normal(D A_b⁻¹ h'_b, D A_b⁻¹ D)`` independently, so ``ū | y`` is Normal with the mean
      of the means and the sum of the covariances over ``nb²``;
    * ``p(ū = 0) = Normal(0 | 0, τ²/nb)``.

    Every term stays finite as τ → 0 (then ``A → I``).
    """
    import pytensor.tensor as pt

    k = len(tau)
    A = [[(1.0 if j == c else 0.0) + tau[j] * tau[c] * M[j][c] for c in range(k)] for j in range(k)]
    R = _cholesky(A)
    z = _forward(R, [tau[j] * h[j] for j in range(k)])
    full = (-sum(pt.log(R[j][j]) for j in range(k)) + 0.5 * sum(zj**2 for zj in z)).sum()
    mt = _backward(R, z)  # A⁻¹ h'
    Ri = _inverse_lower(R)
    m_bar = [tau[j] * mt[j].sum() / nb for j in range(k)]
    v_bar = [
        [tau[j] * tau[c] * sum(Ri[t][j] * Ri[t][c] for t in range(max(j, c), k)).sum() / nb**2 for c in range(k)]
        for j in range(k)
    ]
    Cv = _cholesky(v_bar)
    e = _forward(Cv, m_bar)
    log_post0 = -0.5 * sum(ej**2 for ej in e) - sum(pt.log(Cv[j][j]) for j in range(k))
    log_prior0 = -sum(pt.log(tau[j]) for j in range(k)) + 0.5 * k * np.log(nb)
    return full + log_post0 - log_prior0


def _mvnormal_logp(
    L: list[list[Any]], r: Any, W: Any, patterns: Sequence[Sequence[int]], *, precision: bool
) -> tuple[Any, list[Any], list[list[list[Any]]]]:
    """Log-density of each row's observed responses, ``log N(r_S | 0, Σ_SS)`` for the row's pattern ``S``.

    Parameters
    ----------
    L
        Residual Cholesky factor (``k × k`` nested list of scalars), ``Σ = L Lᵀ``.
    r
        Residuals ``(n, k)`` (zero where a response is missing).
    W
        ``(n, n_patterns)`` one-hot: which pattern of observed responses each row has (all-zero rows
        are padding and contribute nothing).
    patterns
        The patterns: indices of the observed responses, one list per column of ``W``.
    precision
        Also return what the block marginal needs (:func:`_block_marginal`).

    Returns
    -------
    ll
        ``(n,)`` log-density per row (the missing responses integrated out: the marginal of a Gaussian).
    w
        ``Σ_S⁻¹ r_S`` of each row embedded in the full response space (``k`` vectors ``(n,)``), if ``precision``.
    Q
        ``Σ_S⁻¹`` of each pattern embedded in the full response space (``k × k`` nested lists), if ``precision``.
    """
    import pytensor.tensor as pt

    k = len(L)
    ll: Any = 0.0
    w: list[Any] = [0.0] * k  # Σ_S⁻¹ r of each row, in the full response space (block effects)
    Q: list[list[list[Any]]] = []  # Σ_S⁻¹ of each pattern, in the full response space
    for i, pat in enumerate(patterns):
        C = _sub_cholesky(L, pat)
        e = _forward(C, [r[:, j] for j in pat])
        d_ = len(pat)
        logdet = sum(pt.log(C[a][a]) for a in range(d_))
        ll = ll + W[:, i] * (-0.5 * sum(ea**2 for ea in e) - logdet - 0.5 * d_ * np.log(2 * np.pi))
        if precision:
            v = _backward(C, e)
            Ci = _inverse_lower(C)
            Qp = [[0.0] * k for _ in range(k)]
            for a, ja in enumerate(pat):
                w[ja] = w[ja] + W[:, i] * v[a]
                for b, jb in enumerate(pat):
                    Qp[ja][jb] = sum(Ci[t][a] * Ci[t][b] for t in range(max(a, b), d_))
            Q.append(Qp)
    return ll, w, Q


def _block_posterior(
    r: np.ndarray,
    Sigma: np.ndarray,
    tau: np.ndarray,
    W: np.ndarray,
    G: np.ndarray,
    patterns: Sequence[Sequence[int]],
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(S, nb, k)`` and covariance ``(S, nb, k, k)`` of the iid block effects given each draw.

    ``r`` are the residuals ``(S, n, k)`` from the intercept and terms, ``Sigma`` the residual covariances
    ``(S, k, k)``, ``tau`` the block SDs ``(S, k)``, ``W`` ``(n, n_patterns)`` and ``G`` ``(n, nb)`` one-hot
    patterns and blocks of the rows. Notation and formulas as in :func:`_block_marginal`:
    ``u_b | data ~ Normal(D A_b⁻¹ h'_b, D A_b⁻¹ D)`` (numpy, batched over draws).
    """
    S, n, k = r.shape
    w = np.zeros((S, n, k))
    M = np.zeros((S, G.shape[1], k, k))
    NP = G.T @ W
    for i, pat in enumerate(patterns):
        pat = np.asarray(pat)
        rows = np.flatnonzero(W[:, i])
        inv = np.linalg.inv(Sigma[:, pat[:, None], pat[None, :]])
        w[:, rows[:, None], pat[None, :]] = np.einsum("sab,snb->sna", inv, r[:, rows[:, None], pat[None, :]])
        M[:, :, pat[:, None], pat[None, :]] += NP[None, :, i, None, None] * inv[:, None]
    h = np.einsum("snk,nb->sbk", w, G)
    tau = tau[:, None, :]  # (S, 1, k)
    A = np.eye(k) + tau[..., :, None] * M * tau[..., None, :]
    Ainv = np.linalg.inv(A)
    mean = tau * np.einsum("sbkl,sbl->sbk", Ainv, tau * h)
    V = tau[..., :, None] * Ainv * tau[..., None, :]
    return mean, V
