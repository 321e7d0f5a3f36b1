r"""Control limits of Hotelling's T² and of the squared prediction error (SPE), and where a statistic
exceeds its limit.

Pure functions of the reference set (its size, the number of components, the SPE values or the residual
eigenvalues) and a probability; tests check them against independently computed values. The PCA the
statistics come from (scaling, SVD or NIPALS with missing data, scores of incomplete batches, on-line T²
and SPE, cross-validated residuals) is :mod:`bioworkbench.monitoring.pca`; the screening of columns before
a fit is :mod:`bioworkbench.monitoring.screening`. scipy is imported inside the functions, so importing
this module stays light, and the quantiles come from :mod:`scipy.special`, the functions
:mod:`scipy.stats` evaluates them with (``beta.ppf(q, a, b) = betaincinv(a, b, q)``, ``f.ppf(q, m, n) =
fdtri(m, n, q)``, ``chi2.ppf(q, k) = 2 gammaincinv(k/2, q)``, ``norm.ppf(q) = ndtri(q)``, ``t.ppf(q, k) =
stdtrit(k, q)``; equal to them, tests/test_monitoring_quantiles.py): importing scipy.stats takes 0.4 s of
every batch report, which needs nothing else of it.

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

__all__ = [
    "check_prob",
    "residual_theta",
    "spe_limit_box",
    "spe_limit_jackson_mudholkar",
    "t2_limit_new",
    "t2_limit_training",
]


def check_prob(prob: float) -> float:
    """``prob`` as a float in (0, 1), or a :class:`ConfigError` that says so.

    Parameters
    ----------
    prob
        A confidence level.

    Returns
    -------
    float
        ``prob``.

    Raises
    ------
    ConfigError
        Not a number, or not strictly between 0 and 1.
    """
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
    from scipy.special import betaincinv

    p = check_prob(prob)
    if np.ndim(n_batches) == 0:
        _check_sizes(int(n_batches), n_components, extra=2)
    n, a = np.asarray(n_batches, dtype=np.float64), float(n_components)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= a + 2, (n - 1.0) ** 2 / n * betaincinv(a / 2.0, (n - a - 1.0) / 2.0, p), np.nan)
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
    from scipy.special import fdtri

    p = check_prob(prob)
    if np.ndim(n_batches) == 0:
        _check_sizes(int(n_batches), n_components, extra=1)
    n, a = np.asarray(n_batches, dtype=np.float64), float(n_components)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n >= a + 1, a * (n * n - 1.0) / (n * (n - a)) * fdtri(a, n - a, p), np.nan)
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
    from scipy.special import gammaincinv

    p = check_prob(prob)
    x = np.asarray(spe, dtype=np.float64)
    scalar = x.ndim == 1
    x = x.reshape(x.shape[0], -1)
    count = np.sum(~np.isnan(x), axis=0)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # columns with fewer than two values
        m = np.nanmean(x, axis=0)
        v = np.nanvar(x, axis=0, ddof=1)
        limit = v / (2.0 * m) * (2.0 * gammaincinv(m * m / v, p))
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
    from scipy.special import ndtri

    p = check_prob(prob)
    t1, t2, t3 = (float(x) for x in theta)
    if t1 <= 0.0 or t2 <= 0.0:
        return 0.0
    h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2)
    z = float(ndtri(p))
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
# a statistic against its limit, and the tidy chart frame both batch models return
# ---------------------------------------------------------------------------------------------
def _exceeds(value: np.ndarray, limit: np.ndarray | float) -> np.ndarray:
    """``value > limit`` beyond round-off (a zero limit is not exceeded by a zero-ish value)."""
    return value > np.asarray(limit) * (1.0 + 1e-9) + 1e-12


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
