r"""Control limits of Hotelling's T² and of the squared prediction error (SPE), and the numerical
core the statistics come from.

The public functions are the limits: pure functions of the reference set (its size, the number
of components, the SPE values or the residual eigenvalues) and a probability; tests check them
against independently computed values. The private functions below them compute what the limits
apply to (scaling, PCA by SVD or NIPALS with missing data, scores of incomplete batches, on-line
T² and SPE, cross-validated residuals, chart frames) for the models of
:mod:`bioworkbench.monitoring.mspc`. scipy is imported inside the
functions, so importing this module stays light.

References
----------
- Tracy, N. D., Young, J. C. & Mason, R. L. (1992). Multivariate control charts for individual
  observations. *Journal of Quality Technology* 24(2), 88–95.
- Nomikos, P. & MacGregor, J. F. (1995). Multivariate SPC charts for monitoring batch processes.
  *Technometrics* 37(1), 41–59.
- Box, G. E. P. (1954). Some theorems on quadratic forms applied in the study of analysis of
  variance problems. *Annals of Mathematical Statistics* 25(2), 290–302.
- Jackson, J. E. & Mudholkar, G. S. (1979). Control procedures for residuals associated with
  principal component analysis. *Technometrics* 21(3), 341–349.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError

_EPS = np.finfo(np.float64).eps

__all__ = [
    "check_prob",
    "residual_theta",
    "spe_limit_box",
    "spe_limit_jackson_mudholkar",
    "t2_limit_new",
    "t2_limit_training",
]


def check_prob(prob: float) -> float:
    """``prob`` as a float in (0, 1), or a :class:`ConfigError` that says so."""
    try:
        p = float(prob)
    except (TypeError, ValueError):
        raise ConfigError(f"prob must be a number between 0 and 1 (e.g. 0.99); found {prob!r}") from None
    if not 0.0 < p < 1.0:
        raise ConfigError(f"prob must lie strictly between 0 and 1 (e.g. 0.95 or 0.99); found {prob!r}")
    return p


def _check_sizes(n_batches: int, n_components: int, *, extra: int) -> None:
    if n_components < 1:
        raise ConfigError(f"n_components must be at least 1; found {n_components}")
    if n_batches < n_components + extra:
        raise ConfigError(
            f"{n_batches} reference batches are too few for {n_components} components: the T² limit needs "
            f"at least {n_components + extra} (n ≥ A + {extra}). Use fewer components or more reference batches."
        )


def t2_limit_training(n_batches: int | np.ndarray, n_components: int, prob: float = 0.99) -> float | np.ndarray:
    r"""Upper control limit of Hotelling's T² for a batch *of the reference set*.

    Parameters
    ----------
    n_batches
        Number of reference batches :math:`n` the model was fitted to (an array gives one limit
        per element, NaN where :math:`n < A + 2`).
    n_components
        Number of principal components :math:`A`.
    prob
        Confidence level (e.g. 0.99: 1 % of in-control reference batches exceed the limit).

    Returns
    -------
    float
        :math:`T^2_{lim} = \frac{(n-1)^2}{n}\,B_{prob}\!\left(\frac{A}{2}, \frac{n-A-1}{2}\right)`.

    Raises
    ------
    ConfigError
        If a scalar ``n_batches < n_components + 2``, or ``prob`` is not in (0, 1).

    Notes
    -----
    A reference batch contributed to the mean and to the score variances it is compared with, so
    its :math:`T^2 = \sum_a t_a^2/s_a^2` (with :math:`s_a^2` the score variance, divisor
    :math:`n-1`) follows a scaled Beta distribution, not an F distribution (Tracy, Young & Mason
    1992; Nomikos & MacGregor 1995 use it for the reference batches).
    """
    from scipy import stats

    p = check_prob(prob)
    if np.ndim(n_batches) == 0:
        _check_sizes(int(n_batches), n_components, extra=2)
    n, a = np.asarray(n_batches, dtype=np.float64), float(n_components)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= a + 2, (n - 1.0) ** 2 / n * stats.beta.ppf(p, a / 2.0, (n - a - 1.0) / 2.0), np.nan)
    return float(out) if out.ndim == 0 else out


def t2_limit_new(n_batches: int | np.ndarray, n_components: int, prob: float = 0.99) -> float | np.ndarray:
    r"""Upper control limit of Hotelling's T² for a *new* batch (not in the reference set).

    Parameters
    ----------
    n_batches
        Number of reference batches :math:`n` (an array gives one limit per element, NaN where
        :math:`n < A + 1`).
    n_components
        Number of principal components :math:`A`.
    prob
        Confidence level.

    Returns
    -------
    float
        :math:`T^2_{lim} = \frac{A(n^2-1)}{n(n-A)}\,F_{prob}(A, n-A)`.

    Raises
    ------
    ConfigError
        If a scalar ``n_batches < n_components + 1``, or ``prob`` is not in (0, 1).

    Notes
    -----
    A new batch is independent of the estimated mean and score variances; its T² (same
    definition as for the reference batches) follows this scaled F distribution (Tracy, Young &
    Mason 1992; Nomikos & MacGregor 1995, also for the on-line T² of a running batch).
    """
    from scipy import stats

    p = check_prob(prob)
    if np.ndim(n_batches) == 0:
        _check_sizes(int(n_batches), n_components, extra=1)
    n, a = np.asarray(n_batches, dtype=np.float64), float(n_components)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= a + 1, a * (n * n - 1.0) / (n * (n - a)) * stats.f.ppf(p, a, n - a), np.nan)
    return float(out) if out.ndim == 0 else out


def spe_limit_box(spe: np.ndarray, prob: float = 0.99) -> np.ndarray | float:
    r"""SPE limit from the reference SPE values by Box's moment-matched :math:`g\chi^2_h`.

    Parameters
    ----------
    spe
        Reference SPE values, shape ``(n,)`` or ``(n, m)``: one limit per column (e.g. per
        maturity for the instantaneous SPE). NaN values (batches not observed there) are ignored.
    prob
        Confidence level.

    Returns
    -------
    float or numpy.ndarray
        :math:`g\,\chi^2_{h}(prob)` with :math:`g = v/(2m)` and :math:`h = 2m^2/v`, where
        :math:`m` and :math:`v` are the mean and variance (divisor :math:`n-1`) of the reference
        SPE values; a scalar for 1-D input, shape ``(m,)`` otherwise. Where :math:`m = 0` the
        limit is 0; where :math:`v = 0` it is :math:`m`.

    Notes
    -----
    Box (1954) showed that a quadratic form in normal variables is well approximated by
    :math:`g\chi^2_h` with matched first two moments; Nomikos & MacGregor (1995) estimate the
    moments from the reference SPE values, which needs no eigenvalues and works per maturity.
    """
    from scipy import stats

    p = check_prob(prob)
    x = np.asarray(spe, dtype=np.float64)
    scalar = x.ndim == 1
    x = x.reshape(x.shape[0], -1)
    count = np.sum(~np.isnan(x), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with fewer than two values
        m = np.nanmean(x, axis=0)
        v = np.nanvar(x, axis=0, ddof=1)
        limit = v / (2.0 * m) * stats.chi2.ppf(p, 2.0 * m * m / v)
    limit = np.where(m <= 0.0, 0.0, np.where(v <= 0.0, m, limit))
    limit = np.where(count < 2, np.nan, limit)
    return float(limit[0]) if scalar else limit


def residual_theta(residuals: np.ndarray, *, ddof: int = 1) -> tuple[float, float, float]:
    r"""The sums :math:`\theta_i = \sum_{a>A} \lambda_a^i` (i = 1, 2, 3) of the residual eigenvalues.

    Parameters
    ----------
    residuals
        Residual matrix :math:`E` (reference batches × columns) of the scaled data after the
        :math:`A` retained components (missing cells as 0).
    ddof
        The eigenvalues are those of :math:`E^\top E/(n-\mathrm{ddof})`.

    Returns
    -------
    tuple of float
        :math:`(\theta_1, \theta_2, \theta_3)`.

    Notes
    -----
    :math:`\theta_i = \operatorname{tr}\big((E^\top E/(n-\mathrm{ddof}))^i\big)` is computed as a
    trace of powers of the smaller Gram matrix, without an eigen-decomposition.
    """
    e = np.asarray(residuals, dtype=np.float64)
    n = e.shape[0]
    gram = (e @ e.T) if e.shape[0] <= e.shape[1] else (e.T @ e)
    gram = gram / float(n - ddof)
    g2 = gram @ gram
    return float(np.trace(gram)), float(np.trace(g2)), float(np.sum(g2 * gram.T))


def spe_limit_jackson_mudholkar(theta: tuple[float, float, float], prob: float = 0.99) -> float:
    r"""SPE limit of Jackson & Mudholkar (1979) from the residual eigenvalues.

    Parameters
    ----------
    theta
        :math:`(\theta_1, \theta_2, \theta_3)`, the sums of the first three powers of the
        eigenvalues of the residual covariance matrix (see :func:`residual_theta`).
    prob
        Confidence level.

    Returns
    -------
    float
        :math:`Q_{lim} = \theta_1\left[\frac{z\sqrt{2\theta_2 h_0^2}}{\theta_1} + 1
        + \frac{\theta_2 h_0 (h_0-1)}{\theta_1^2}\right]^{1/h_0}` with
        :math:`h_0 = 1 - \frac{2\theta_1\theta_3}{3\theta_2^2}` and :math:`z` the standard normal
        quantile at ``prob``.

    Notes
    -----
    The normal approximation of :math:`(Q/\theta_1)^{h_0}`; it assumes the residuals are
    multivariate normal with the covariance whose eigenvalues are summed in ``theta``. It is
    undefined when :math:`h_0 \le 0` (a few residual eigenvalues dominate, common in batch data
    with fewer batches than unfolded columns): then the result is NaN with a
    :class:`~bioworkbench.errors.BioWorkbenchWarning`, and the Box limit should be used.
    """
    from scipy import stats

    p = check_prob(prob)
    t1, t2, t3 = (float(x) for x in theta)
    if t1 <= 0.0 or t2 <= 0.0:
        return 0.0
    h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2)
    z = float(stats.norm.ppf(p))
    base = z * math.sqrt(2.0 * t2 * h0 * h0) / t1 + 1.0 + t2 * h0 * (h0 - 1.0) / (t1 * t1)
    if h0 <= 0.0 or base <= 0.0:
        warnings.warn(
            f"the Jackson–Mudholkar SPE limit is undefined here (h0 = {h0:.3g} ≤ 0: a few residual eigenvalues "
            "dominate, as often when there are fewer batches than columns); it is NaN. Use the Box limit.",
            BioWorkbenchWarning,
            stacklevel=2,
        )
        return math.nan
    return t1 * base ** (1.0 / h0)


# ---------------------------------------------------------------------------------------------
# scores and statistics: scaling, PCA (SVD or NIPALS with missing data), projection of
# incomplete batches (projection to the model plane, trimmed score regression), on-line T²/SPE
# ---------------------------------------------------------------------------------------------
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


ROUND_OFF = 1e-9
"""A column whose SD is at most this multiple of its mean's magnitude has no variation: the spread is
floating-point round-off of a constant (values that went through unit conversion or interpolation
carry about 1e-12 relative noise), and scaling it to unit variance would only amplify that noise."""

CV_SCALE_FLOOR = 0.5
"""In a cross-validation fold a column's SD is not taken below this fraction of the full model's SD
(see :class:`~bioworkbench.monitoring.BatchPCA`, Notes: a column that varies only through the
left-out batches would otherwise divide them by the others' near-zero SD)."""

SCREEN_ALPHA = 1e-3
"""Family-wise probability that the single-batch screen of :func:`_screen_columns` excludes a column of
normal (Gaussian) reference data by chance."""

SCREEN_REASONS = {
    "too few values": "fewer than 3 reference batches have a value, so no normal variation can be estimated",
    "no variation": "no variation among the reference batches (SD ≤ 1e-9 × |mean|, round-off of a constant)",
    "one batch": "one reference batch lies more than max(√p, chance level) SDs of the others from their mean",
}
"""Why :class:`~bioworkbench.monitoring.BatchPCA` leaves a (variable, maturity) column out of the model."""


def _screen_columns(x: np.ndarray) -> dict[str, np.ndarray | float]:
    r"""Which columns of the unfolded reference data ``x`` (batches × columns, NaN = missing) a batch
    PCA can scale and model, and why the others cannot (see :class:`BatchPCA`, Notes, *screening*).

    Returns a dict of per-column arrays ``reason`` ("" when kept, else a key of
    :data:`SCREEN_REASONS`), ``batch`` (row index of the dominating batch, −1 when none), ``r`` (its
    leave-one-out deviation in SDs of the others), ``sd``, ``sd_others`` (SD without that batch),
    ``mean``, ``count`` (values per column), ``cutoff`` (per column) and ``active`` (the columns
    :func:`_scaling` can scale; single-batch columns are marked, not removed, here).

    For column :math:`c` with :math:`n_c` values, centred values :math:`d_i = x_i - \bar x` and
    :math:`SS = \sum d^2`, batch :math:`i` lies :math:`|x_i - \bar x_{-i}| = |d_i|\,n_c/(n_c-1)` from
    the mean of the others, whose sum of squares is :math:`SS_{-i} = SS - d_i^2 n_c/(n_c-1)`; so
    :math:`r_{ic} = |d_i|\frac{n_c}{n_c-1}\big/\sqrt{SS_{-i}/(n_c-2)}` (closed form, no loop).
    """
    from scipy import stats

    p = x.shape[1]
    obs = ~np.isnan(x)
    count = obs.sum(axis=0)
    _, _, basic = _scaling(x)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=0)
        sd = np.nanstd(x, axis=0, ddof=1)
        d = np.where(obs, x - mean, 0.0)
        ss = np.sum(d * d, axis=0)
        c = count.astype(np.float64)
        ss_out = np.maximum(ss - d * d * c / (c - 1.0), 0.0)
        dev = np.abs(d) * c / (c - 1.0)
        r_all = np.where(obs, dev / np.sqrt(ss_out / (c - 2.0)), 0.0)
        r_all = np.where(obs & (ss_out <= 1e-24 * ss), np.inf, r_all)  # all other batches equal
    r_all = np.where(basic, r_all, 0.0)
    batch = np.argmax(r_all, axis=0)
    r = r_all[batch, np.arange(p)]
    n_active = max(int(basic.sum()), 1)
    with np.errstate(invalid="ignore"):
        # chance level: the largest of n·p leave-one-out t statistics of normal data (Bonferroni)
        chance = np.sqrt(1.0 + 1.0 / (c - 1.0)) * stats.t.ppf(1.0 - SCREEN_ALPHA / (2.0 * c * n_active), c - 2.0)
    cutoff = np.fmax(math.sqrt(n_active), np.nan_to_num(chance, nan=0.0))
    one = basic & (r > cutoff)
    reason = np.full(p, "", dtype=object)
    reason[count < 3] = "too few values"
    reason[(count >= 3) & ~basic] = "no variation"
    reason[one] = "one batch"
    idx = np.flatnonzero(one)
    sd_others = np.full(p, np.nan)
    sd_others[idx] = np.sqrt(ss_out[batch[idx], idx] / (c[idx] - 2.0))
    return {
        "reason": reason,
        "batch": np.where(one, batch, -1),
        "r": np.where(one, r, np.nan),
        "sd": sd,
        "sd_others": sd_others,
        "mean": mean,
        "count": count,
        "cutoff": cutoff,
        "active": basic,
    }


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


def _exceeds(value: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
    """``value > limit`` beyond round-off (a zero limit is not exceeded by a zero-ish value)."""
    return value > np.asarray(limit) * (1.0 + 1e-9) + 1e-12


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


def _chart(ids: list[str], maturities: np.ndarray, keep: np.ndarray, t: np.ndarray, prob: float, **stats: Any):
    """Tidy rows of the (batch, maturity) cells in ``keep``; statistics broadcast to batches × maturities."""
    n_b, n_j = keep.shape
    cols = {k: np.broadcast_to(v, (n_b, n_j))[keep] for k, v in stats.items()}
    return pl.DataFrame(
        {
            "batch_id": np.repeat(np.asarray(ids, dtype=object), n_j)[keep.ravel()].astype(str),
            "maturity": np.tile(maturities, n_b)[keep.ravel()],
            **{f"t_{a + 1}": t[:, :, a][keep] for a in range(t.shape[2])},
            **cols,
            "t2_flag": _exceeds(cols["t2"], cols["t2_limit"]),
            "spe_flag": _exceeds(cols["spe"], cols["spe_limit"]),
            "prob": np.full(int(keep.sum()), float(prob)),
        }
    )


def _check_components(n_components: Any) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer) or n_components < 1:
        raise ConfigError(f"n_components must be a positive integer; found {n_components!r}")
    return int(n_components)
