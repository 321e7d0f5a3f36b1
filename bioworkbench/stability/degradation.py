"""Degradation kinetics of a stability attribute: the extent of degradation at a reduced time, its
inverse, and the attribute that follows from it (NumPy; the numbers behind the simulator and the
Bayesian model).

*Kinetics* of the extent of degradation ``α(t) ∈ [0, 1)`` at constant temperature ``T``:

============================  =========================================  =================================
``kinetics``                  rate law                                   extent at reduced time ``θ = k t``
============================  =========================================  =================================
``"zero_order"``              ``dα/dt = k``                              ``α = min(θ, 1)``
``"first_order"``             ``dα/dt = k (1 − α)``                      ``α = 1 − exp(−θ)``
``"sestak_berggren"``         ``dα/dt = k α^m (1 − α)^n``, 0 ≤ m < 1,    ``g(α) = θ`` with
                              n > 0                                      ``g(α) = ∫₀^α x^−m (1 − x)^−n dx``
============================  =========================================  =================================

The Šesták–Berggren form (Šesták & Berggren 1971, Thermochim Acta 3:1) is solved through its
integral form ``g(α) = k t`` (the ICTAC kinetics committee's convention, Vyazovkin et al. 2011,
Thermochim Acta 520:1): for ``m > 0`` the rate vanishes at ``α = 0`` and the solution taken is the
one that leaves 0 (``α ≈ ((1 − m) θ)^{1/(1 − m)}`` early on, a lag phase). ``g`` has no closed
form in general, so it is computed numerically: a fixed 128-point grid in ``α`` (uniform to 0.5,
then geometric towards 1), 4-point Gauss–Legendre quadrature in the variable ``σ = α^{1−m}`` that
removes the singularity at 0, and Newton steps for the inverse; accurate to ~1e-8 against
``scipy.special.betaincinv`` and ``scipy.integrate.solve_ivp``; the extent is capped at
``1 − 1e-6``. With ``m = 0`` it is the n-th order model of AccelStab (Francq et al.; Clénet 2018,
Eur J Pharm Biopharm 125:76), ``α = 1 − [1 − (1 − n) θ]^{1/(1 − n)}``.

*Reduced time.* Every rate law is autonomous and separable, ``dα/dt = k(T) f(α)``, so a lot whose
temperature follows a history reaches, at time ``t``, the extent of a lot held at ``T_ref`` for the
equivalent time ``t_eq`` (:meth:`~bioworkbench.stability.TemperatureHistory.equivalent_time`); the
reduced time is ``θ = k_ref · t_eq``.

*Attribute* (``y``, in the study's unit) from the extent (:func:`attribute_at`)::

    y = y_∞ + (y0 − y_∞) · (1 − α)

``y_∞`` (the *asymptote*) is the value at complete degradation: 0 for a decreasing attribute
(``α`` is then the fraction of the initial potency or purity lost) and, for an increasing attribute
on a percent scale (aggregates, fragments, acidic variants), 100 %: the attribute grows as the
remaining fraction ``100 − y`` decays.

The PyTensor version of the extent, used inside the sampler, is in
:mod:`bioworkbench.models.stability`; it shares this module's grid and quadrature.
"""

from __future__ import annotations

import numpy as np

from bioworkbench.errors import ConfigError

__all__ = ["KINETICS", "attribute_at", "degradation_extent", "extent_to_reduced_time", "require_kinetics"]

KINETICS = ("zero_order", "first_order", "sestak_berggren")
"""The rate laws (see the module docstring)."""

#: extent grid of the Šesták–Berggren integral: uniform to 0.5, then geometric towards 1
_SB_ALPHA = np.concatenate([np.linspace(0.0, 0.5, 65), 1.0 - np.geomspace(0.5, 1e-6, 64)[1:]])
#: 4-point Gauss–Legendre nodes and weights on [-1, 1]
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)
#: Newton steps of the inverse ``g(α) = θ`` after the linear start on the grid
_NEWTON_STEPS = 3


def require_kinetics(kinetics: object, *, function: str) -> str:
    """``kinetics`` if it is one of :data:`KINETICS`, else an error that lists them.

    Parameters
    ----------
    kinetics
        The rate law's name.
    function
        The calling function, named in the message.

    Returns
    -------
    str
        ``kinetics``.

    Raises
    ------
    ConfigError
        An unknown name (the closest valid one is suggested).
    """
    if kinetics not in KINETICS:
        from bioworkbench.schema import suggest

        raise ConfigError(f"{function}: unknown kinetics {kinetics!r}. " + suggest(str(kinetics), KINETICS))
    return str(kinetics)


def _gl_np(a: np.ndarray, b: np.ndarray, p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``p ∫_a^b (1 − s^p)^(−n) ds`` by 4-point Gauss–Legendre (elementwise)."""
    mid, half = (a + b) / 2, (b - a) / 2
    s = np.minimum(mid[..., None] + half[..., None] * _GL_X, 1.0)
    f = np.exp(-n[..., None] * np.log1p(-(s ** p[..., None])))
    return p * half * (f * _GL_W).sum(-1)


def _sb_grid_np(m: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``σ`` grid, ``θ = g(α)`` grid (rows per draw) and ``p = 1/(1 − m)``."""
    one = 1.0 - m
    p = 1.0 / one
    sig = np.zeros((m.size, _SB_ALPHA.size))
    sig[:, 1:] = _SB_ALPHA[1:] ** one[:, None]
    seg = _gl_np(sig[:, :-1], sig[:, 1:], np.broadcast_to(p[:, None], sig[:, 1:].shape), n[:, None])
    th = np.concatenate([np.zeros((m.size, 1)), np.cumsum(seg, axis=1)], axis=1)
    return sig, th, p


def _sb_extent_np(theta: np.ndarray, m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Šesták–Berggren extent for ``theta`` of shape ``(S, T)`` and exponents of shape ``(S,)``."""
    sig, th, p = _sb_grid_np(m, n)
    thc = np.minimum(theta, th[:, -1:])
    top = th.shape[1] - 2
    # one search per draw: the θ grid depends on the draw's exponents
    j = np.stack([np.clip(np.searchsorted(th[i], thc[i], side="right") - 1, 0, top) for i in range(m.size)])
    s0, s1 = np.take_along_axis(sig, j, 1), np.take_along_axis(sig, j + 1, 1)
    t0, t1 = np.take_along_axis(th, j, 1), np.take_along_axis(th, j + 1, 1)
    s = s0 + (thc - t0) / (t1 - t0) * (s1 - s0)
    pp, nn = np.broadcast_to(p[:, None], s.shape), np.broadcast_to(n[:, None], s.shape)
    for _ in range(_NEWTON_STEPS):
        resid = t0 + _gl_np(s0, s, pp, nn) - thc
        slope = pp * np.exp(-nn * np.log1p(-(np.minimum(s, 1.0) ** pp)))
        s = np.clip(s - resid / slope, s0, s1)
    return s**pp


def degradation_extent(
    theta: np.ndarray, kinetics: str, m: float | np.ndarray = 0.0, n: float | np.ndarray = 1.0
) -> np.ndarray:
    """Extent of degradation ``α`` at reduced time ``θ = k_ref · t_eq``.

    Parameters
    ----------
    theta
        Reduced time(s), ≥ 0 (dimensionless). For ``"sestak_berggren"`` with exponents given per
        draw, shape ``(S, ...)`` with ``m`` and ``n`` of shape ``(S,)``.
    kinetics
        ``"zero_order"``, ``"first_order"`` or ``"sestak_berggren"``.
    m, n
        Šesták–Berggren exponents (``0 ≤ m < 1``, ``n > 0``); ignored by the other forms.

    Returns
    -------
    numpy.ndarray
        ``α`` in ``[0, 1]`` (dimensionless), the shape of ``theta``.

    Raises
    ------
    ConfigError
        An unknown ``kinetics``.

    Notes
    -----
    zero order ``α = min(θ, 1)``; first order ``α = 1 − e^{−θ}``; Šesták–Berggren: the inverse of
    ``g(α) = ∫₀^α x^{−m}(1 − x)^{−n} dx = θ`` (see the module docstring for the numerical method).
    """
    theta = np.asarray(theta, dtype=float)
    if kinetics == "zero_order":
        return np.minimum(theta, 1.0)
    if kinetics == "first_order":
        return -np.expm1(-theta)
    require_kinetics(kinetics, function="degradation_extent")
    m_arr, n_arr = np.atleast_1d(np.asarray(m, float)), np.atleast_1d(np.asarray(n, float))
    if m_arr.size == 1 and n_arr.size == 1:
        return _sb_extent_np(theta.reshape(1, -1), m_arr, n_arr).reshape(theta.shape)
    s = max(m_arr.size, n_arr.size)
    m_arr, n_arr = np.broadcast_to(m_arr, (s,)), np.broadcast_to(n_arr, (s,))
    return _sb_extent_np(theta.reshape(s, -1), m_arr, n_arr).reshape(theta.shape)


def extent_to_reduced_time(
    alpha: np.ndarray, kinetics: str, m: float | np.ndarray = 0.0, n: float | np.ndarray = 1.0
) -> np.ndarray:
    """The reduced time ``θ = g(α)`` at which the extent reaches ``alpha`` (the inverse of
    :func:`degradation_extent`).

    Parameters
    ----------
    alpha
        Extent(s) of degradation in ``[0, 1]``.
    kinetics
        ``"zero_order"``, ``"first_order"`` or ``"sestak_berggren"``.
    m, n
        Šesták–Berggren exponents, broadcast against ``alpha``; ignored by the other forms.

    Returns
    -------
    numpy.ndarray
        ``θ ≥ 0`` (dimensionless), the broadcast shape; ``inf`` for ``α ≥ 1`` (never reached for
        first order and for Šesták–Berggren with ``n ≥ 1``; the capped extent of the numerical
        form otherwise).

    Raises
    ------
    ConfigError
        An unknown ``kinetics``.

    Notes
    -----
    zero order ``θ = α``; first order ``θ = −ln(1 − α)``; Šesták–Berggren ``θ = g(α)`` on the
    grid of the module docstring, with one Gauss–Legendre segment from the grid point below ``α``.
    """
    a = np.asarray(alpha, dtype=float)
    if kinetics == "zero_order":
        return np.where(a >= 1, np.inf, a)
    if kinetics == "first_order":
        with np.errstate(divide="ignore"):
            return np.where(a >= 1, np.inf, -np.log1p(-np.minimum(a, 1.0)))
    require_kinetics(kinetics, function="extent_to_reduced_time")
    a, m_arr, n_arr = np.broadcast_arrays(a, np.asarray(m, float), np.asarray(n, float))
    shape = a.shape
    a, m_arr, n_arr = a.ravel(), m_arr.ravel(), n_arr.ravel()
    sig, th, p = _sb_grid_np(m_arr, n_arr)  # one grid per element (its own exponents)
    ac = np.clip(a, 0.0, _SB_ALPHA[-1])
    j = np.clip(np.searchsorted(_SB_ALPHA, ac, side="right") - 1, 0, _SB_ALPHA.size - 2)
    rows = np.arange(a.size)
    out = th[rows, j] + _gl_np(sig[rows, j], ac ** (1.0 - m_arr), p, n_arr)
    return np.where(a >= 1, np.inf, out).reshape(shape)


def attribute_at(
    theta: np.ndarray,
    *,
    y0: float | np.ndarray,
    asymptote: float,
    kinetics: str,
    m: float | np.ndarray = 0.0,
    n: float | np.ndarray = 1.0,
) -> np.ndarray:
    """The attribute at reduced time ``theta``: ``y = y_∞ + (y0 − y_∞)(1 − α(θ))``.

    Parameters
    ----------
    theta
        Reduced time(s) ``θ = k_ref · t_eq`` (see :func:`degradation_extent` for the shapes).
    y0
        Initial value(s) in the attribute's unit, broadcast against ``theta`` (e.g. shape
        ``(S, 1)`` for one initial value per draw).
    asymptote
        ``y_∞``, the value at complete degradation (attribute unit).
    kinetics, m, n
        The rate law and its Šesták–Berggren exponents (see :func:`degradation_extent`).

    Returns
    -------
    numpy.ndarray
        The attribute, in the unit of ``y0``.

    Raises
    ------
    ConfigError
        An unknown ``kinetics``.
    """
    alpha = degradation_extent(theta, kinetics, m, n)
    return asymptote + (np.asarray(y0, dtype=float) - asymptote) * (1.0 - alpha)
