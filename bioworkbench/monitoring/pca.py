r"""The numerical core of batch PCA: scaling, PCA by SVD or NIPALS with missing data, scores of
incomplete batches (projection to the model plane, trimmed score regression), on-line T² and SPE, and
the cross-validated residuals behind the limits of new batches.

Private functions on NumPy arrays (batches × unfolded columns, NaN = missing) for the models of
:mod:`bioworkbench.monitoring.mspc` and :mod:`bioworkbench.monitoring.evolution`; the methods are
described, with their references, in the Notes of :class:`~bioworkbench.monitoring.BatchPCA`. scipy is
imported inside the functions.

References
----------
- Nelson, P. R. C., Taylor, P. A. & MacGregor, J. F. (1996). Missing data methods in PCA and PLS:
  score calculations with incomplete observations. *Chemometrics Intell. Lab. Syst.* 35, 45–65.
- Arteaga, F. & Ferrer, A. (2002). Dealing with missing data in MSPC: several methods, different
  interpretations, some examples. *J. Chemometrics* 16, 408–418.
- van Sprang, E. N. M., Ramaker, H.-J., Westerhuis, J. A., Gurden, S. P. & Smilde, A. K. (2002).
  Critical evaluation of approaches for on-line batch process monitoring. *Chem. Eng. Sci.* 57,
  3979–3991.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from bioworkbench.errors import BioWorkbenchWarning, ConfigError

__all__ = ["CV_SCALE_FLOOR", "ROUND_OFF"]

_EPS = np.finfo(np.float64).eps

ROUND_OFF = 1e-9
"""A column whose SD is at most this multiple of its mean's magnitude has no variation: the spread is
floating-point round-off of a constant (values that went through unit conversion or interpolation
carry about 1e-12 relative noise), and scaling it to unit variance would only amplify that noise."""

CV_SCALE_FLOOR = 0.5
"""In a cross-validation fold a column's SD is not taken below this fraction of the full model's SD
(see :class:`~bioworkbench.monitoring.BatchPCA`, Notes: a column that varies only through the
left-out batches would otherwise divide them by the others' near-zero SD)."""


def _scaling(x: np.ndarray, keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column means, standard deviations (divisor n−1) and the active columns: at least 3 values and
    SD above round-off (:data:`ROUND_OFF` × |mean|), and within ``keep`` when given (the columns a
    screened model keeps; a cross-validation fold uses the full model's)."""
    count = np.sum(~np.isnan(x), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
    active = (count >= 3) & (sd > ROUND_OFF * np.abs(mean)) & (sd > 0)
    if keep is not None:
        active &= keep
    return np.where(np.isnan(mean), 0.0, mean), np.where(active, sd, 1.0), active


def _orient(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sign convention: the largest loading (in absolute value) of each component is positive."""
    sign = np.sign(p[np.argmax(np.abs(p), axis=0), np.arange(p.shape[1])])
    sign[sign == 0] = 1.0
    return t * sign, p * sign


def _svd(z: np.ndarray, n_comp: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Leading components of a complete matrix from the eigenvectors of its smaller Gram matrix."""
    wide = z.shape[0] <= z.shape[1]
    gram = z @ z.T if wide else z.T @ z
    if gram.shape[0] <= 400 or n_comp >= gram.shape[0] - 1:
        vec = np.linalg.eigh(gram)[1][:, ::-1][:, :n_comp]
    else:  # Lanczos to machine precision, deterministic start vector
        from scipy.sparse.linalg import eigsh

        val, vec = eigsh(gram, k=n_comp, v0=np.ones(gram.shape[0]), tol=0.0, ncv=min(gram.shape[0], 2 * n_comp + 20))
        vec = vec[:, np.argsort(val)[::-1]]
    p = z.T @ vec if wide else vec
    p /= np.linalg.norm(p, axis=0)
    return z @ p, p, 0


def _nipals(
    z: np.ndarray,
    m: np.ndarray,
    n_comp: int,
    tol: float,
    max_iter: int,
    start: np.ndarray | None = None,
    warn: bool = True,
) -> tuple[np.ndarray, np.ndarray, int]:
    """NIPALS with missing data (``m`` = observed; missing cells of ``z`` are 0).

    Each component alternates p = E'ᵀt / Σ_observed t², t = E p / Σ_observed p² until the relative
    change of t is below ``tol``; it starts from ``start`` (default: the SVD scores of the
    zero-filled matrix), which changes only the number of iterations, not the fixed point.
    """
    from scipy import sparse

    e = z.copy()
    missing = sparse.csr_matrix(~m, dtype=np.float64) if not m.all() else None
    missing_t = missing.T.tocsr() if missing is not None else None
    if start is None:
        start = _svd(z, n_comp)[0]
    t_all, p_all, worst = np.zeros((z.shape[0], n_comp)), np.zeros((z.shape[1], n_comp)), 0
    for a in range(n_comp):
        t = start[:, a].copy() if np.any(start[:, a]) else e[:, np.argmax(np.sum(e * e, axis=0))].copy()
        it = 0
        for it in range(1, max_iter + 1):  # noqa: B007
            tt = t * t
            p = (e.T @ t) / np.maximum(tt.sum() - (missing_t @ tt if missing_t is not None else 0.0), _EPS)
            p /= np.linalg.norm(p)
            pp = p * p
            t_new = (e @ p) / np.maximum(pp.sum() - (missing @ pp if missing is not None else 0.0), _EPS)
            done = np.linalg.norm(t_new - t) <= tol * np.linalg.norm(t_new)
            t = t_new
            if done:
                break
        else:
            if not warn:  # the caller reads the iteration count (= max_iter) instead
                worst = max_iter
                t_all[:, a], p_all[:, a] = t, p
                e -= np.outer(t, p)
                e *= m
                continue
            warnings.warn(
                f"NIPALS did not converge for component {a + 1} in {max_iter} iterations "
                f"(tolerance {tol:g}); raise max_iter",
                BioWorkbenchWarning,
                stacklevel=3,
            )
        worst = max(worst, it)
        t_all[:, a], p_all[:, a] = t, p
        e -= np.outer(t, p)
        e *= m
    return t_all, p_all, worst


def _pca_fit(
    x: np.ndarray,
    n_comp: int,
    *,
    algorithm: str,
    tol: float,
    max_iter: int,
    start: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    warn: bool = True,
) -> dict[str, np.ndarray | str | int]:
    """Scale the unfolded data ``x`` (NaN = missing) and fit the PCA (see :class:`BatchPCA`); only the
    columns in ``keep`` (default all) can be active. With ``scale`` (a cross-validation fold: the full
    model's SDs) the columns are centred on their own means but divided by ``scale``, and every column
    of ``keep`` with at least 3 values stays active."""
    mean, own_scale, active = _scaling(x, keep)
    if scale is None:
        scale = own_scale
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nan_to_num(np.nanstd(x, axis=0, ddof=1))
        active = keep & (np.sum(~np.isnan(x), axis=0) >= 3)
        scale = np.where(active, np.maximum(sd, CV_SCALE_FLOOR * scale), 1.0)
    if n_comp > active.sum():
        raise ConfigError(f"n_components={n_comp} exceeds the {int(active.sum())} informative columns of the data")
    m = ~np.isnan(x) & active
    z = np.where(m, (x - mean) / scale, 0.0)
    complete = bool(m[:, active].all())
    if algorithm == "svd" and not complete:
        raise ConfigError(
            f"algorithm='svd' needs complete data; {int((~m[:, active]).sum())} values are missing. "
            "Use algorithm='auto' or 'nipals'."
        )
    use_svd = algorithm == "svd" or (algorithm == "auto" and complete)
    zc = z[:, active]
    t, pa, n_iter = _svd(zc, n_comp) if use_svd else _nipals(zc, m[:, active], n_comp, tol, max_iter, start, warn)
    t, pa = _orient(t, pa)
    p = np.zeros((x.shape[1], n_comp))
    p[active] = pa
    return {
        "mean": mean,
        "scale": scale,
        "active": active,
        "m": m,
        "z": z,
        "t": t,
        "p": p,
        "n_iter": n_iter,
        "algorithm": "svd" if use_svd else "nipals",
    }


def _pinv_psd(g: np.ndarray) -> np.ndarray:
    """Batched pseudo-inverse of symmetric positive semi-definite matrices (cut-off like lstsq)."""
    w, v = np.linalg.eigh(g)
    keep = w > (g.shape[-1] * _EPS) * np.max(w, axis=-1, keepdims=True)
    inv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
    return np.einsum("...ia,...a,...ja->...ij", v, inv, v)


def _project(z: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Scores of rows with missing values by projection to the model plane: t = (P*'P*)⁺ P*'x*."""
    mf = m.astype(np.float64)
    a = p.shape[1]
    g = (mf @ (p[:, :, None] * p[:, None, :]).reshape(p.shape[0], a * a)).reshape(-1, a, a)
    return np.einsum("iab,ib->ia", _pinv_psd(g), (z * mf) @ p)


def _trimmed(z: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Trimmed scores t*_k = P*'z* of the known part (maturities ≤ k), batches × maturities × A."""
    zt = (z * m).transpose(1, 0, 2)  # maturities × batches × variables: one matmul per maturity
    return np.cumsum(np.matmul(zt, p), axis=0).transpose(1, 0, 2)


def _online(
    z: np.ndarray, m: np.ndarray, p: np.ndarray, regression: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores, instantaneous SPE and SPE of the known part at every maturity.

    ``z``, ``m``: batches × maturities × variables (scaled data, missing = 0; observed mask);
    ``p``: maturities × variables × components. At maturity k the known part is maturities ≤ k.
    Scores by projection to the model plane, or with ``regression`` (maturities × A × A) by
    trimmed score regression t = t*·B_k of the trimmed scores t* = P*'z*.
    """
    n_j, n_k, a = p.shape
    mf = m.astype(np.float64)
    b = _trimmed(z, mf, p)
    pp = (p[:, :, :, None] * p[:, :, None, :]).reshape(n_j, n_k, a * a)
    if m.all():
        g = np.cumsum(pp.sum(axis=1), axis=0).reshape(1, n_j, a, a)
    else:
        g = np.cumsum(np.matmul(mf.transpose(1, 0, 2), pp), axis=0).transpose(1, 0, 2).reshape(-1, n_j, a, a)
    if regression is None:
        t = np.einsum("ijab,ijb->ija", _pinv_psd(g), b)
    else:
        t = np.matmul(b.transpose(1, 0, 2), regression).transpose(1, 0, 2)
    fitted = np.matmul(t.transpose(1, 0, 2), p.transpose(0, 2, 1)).transpose(1, 0, 2)
    e = (z - fitted) * mf
    spe_inst = np.sum(e * e, axis=2)
    known = np.cumsum(np.sum((z * mf) ** 2, axis=2), axis=1)
    spe_known = known - 2.0 * np.sum(t * b, axis=2) + np.einsum("ija,ijab,ijb->ij", t, g, t)
    return t, spe_inst, np.maximum(spe_known, 0.0)


def _tsr_regression(trimmed: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per maturity, the least-squares B_k of the full scores on the trimmed scores (T ≈ T*_k B_k)."""
    gram = np.einsum("ija,ijb->jab", trimmed, trimmed)
    return np.einsum("jab,jbc->jac", _pinv_psd(gram), np.einsum("ija,ib->jab", trimmed, scores))


def _online_reference(
    z: np.ndarray, m: np.ndarray, t: np.ndarray, p3: np.ndarray, online: str
) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """The TSR regression of a fitted model (None for PMP) and the on-line SPE of its reference batches."""
    zo, mo = z.reshape(z.shape[0], *p3.shape[:2]), m.reshape(m.shape[0], *p3.shape[:2])
    regression = _tsr_regression(_trimmed(zo, mo, p3), t) if online == "tsr" else None
    return regression, _online(zo, mo, p3, regression)[1:3]


def _cross_validated(
    x: np.ndarray,
    t: np.ndarray,
    shape: tuple[int, ...],
    folds: int,
    *,
    algorithm: str,
    tol: float,
    max_iter: int,
    online: str,
    keep: np.ndarray,
    scale: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], list[int]]:
    """Residuals and on-line SPE of every reference batch from a model fitted without its fold
    (batch ``i`` in fold ``i mod folds``; scaling and PCA refitted on the columns in ``keep``, the
    full model's; NIPALS starts from ``t``), and the NIPALS iterations of each fold (``max_iter``:
    not converged to ``tol``; no warning, the fold's loadings are still used)."""
    n, n_j = x.shape[0], shape[0]
    n_iter: list[int] = []
    fold_of = np.arange(n) % folds
    e_new, inst, known = np.zeros_like(x), np.zeros((n, n_j)), np.zeros((n, n_j))
    for fold in range(folds):
        train, out = fold_of != fold, fold_of == fold
        fit = _pca_fit(
            x[train],
            t.shape[1],
            algorithm=algorithm,
            tol=tol,
            max_iter=max_iter,
            start=t[train],
            keep=keep,
            scale=scale,
            warn=False,
        )
        n_iter.append(int(fit["n_iter"]))
        p3 = fit["p"].reshape(*shape, t.shape[1])
        regression, _ = _online_reference(fit["z"], fit["m"], fit["t"], p3, online)
        m = ~np.isnan(x[out]) & fit["active"]
        z = np.where(m, (x[out] - fit["mean"]) / fit["scale"], 0.0)
        e_new[out] = (z - _project(z, m, fit["p"]) @ fit["p"].T) * m
        inst[out], known[out] = _online(z.reshape(-1, *shape), m.reshape(-1, *shape), p3, regression)[1:3]
    return e_new, (inst, known), n_iter


def _check_components(n_components: Any) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer) or n_components < 1:
        raise ConfigError(f"n_components must be a positive integer; found {n_components!r}")
    return int(n_components)
