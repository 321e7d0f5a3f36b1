"""Rank-normalised split-r̂ and bulk/tail effective sample sizes, vectorised over a posterior's scalars.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R̂ for assessing convergence of MCMC", *Bayesian Analysis* 16(2),
667-718, as ArviZ implements them (``arviz_stats.base.diagnostics``), and the values agree with
``arviz.rhat`` / ``arviz.ess`` to 1e-9 (tests/test_convergence.py):

* chains are split in halves (the first ``⌊n/2⌋`` and the last ``⌊n/2⌋`` draws);
* rank normalisation: ranks over all split draws (ties averaged), ``z = Φ⁻¹((r − 3/8) / (S − 3/4 + 1))``
  (Blom 1958), ``S`` the number of draws;
* r̂ = max(split-r̂ of ``z``, split-r̂ of the z-scores of the draws folded about their median), each
  ``√((B/W + n − 1) / n)`` with ``B = n·var(chain means)`` and ``W`` the mean within-chain variance
  (both with ``ddof=1``);
* ESS = ``M·n / τ`` with ``τ = −1 + 2 Σ ρ̂_t`` summed by Geyer's (1992) initial positive sequence, made
  monotone, with ArviZ's last-even-lag correction and its floor ``τ ≥ 1 / log10(M·n)``; the
  autocovariances by FFT; a constant scalar has ESS ``M·n``;
* bulk ESS is the ESS of the split, rank-normalised draws; tail ESS is the smaller of the ESS of the
  split indicators ``θ ≤ q`` at the quantiles ``q`` of probability ``(1 − p)`` and ``p``, with ``p``
  ArviZ's ``stats.ci_prob`` (type-7 quantiles of all draws).

Why hand-written: ArviZ evaluates these one scalar at a time in a Python loop (``arviz_stats``'
``make_ufunc``; its numba backend was slower still, measured): about 1.8 s for the 24-batch growth model
of the demo in every fit, and more for the forecast. Here the scalars of a variable are done together,
in chunks of at most ``_CHUNK`` values (memory stays near ten times a chunk): 3-5 times faster on
the growth model's posterior (0.9-1.2 s against 2.8-5.0 s for 192 scalars × 8,000 draws, measured).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["array_ess", "array_rhat", "ess", "rhat"]

_BLOM = 3 / 8


def rhat(posterior: Any) -> Any:
    """Rank-normalised split-r̂ of every variable of a posterior, as :func:`arviz.rhat` (``method="rank"``).

    Parameters
    ----------
    posterior
        An ``xarray.Dataset`` whose variables have the dimensions ``chain`` and ``draw``.

    Returns
    -------
    xarray.Dataset
        One r̂ per scalar of each variable (the variable's other dimensions); NaN where a scalar has a
        missing draw, or there are fewer than 2 chains or 4 draws.
    """
    return _per_variable(posterior, array_rhat)


def ess(posterior: Any, method: str = "bulk") -> Any:
    """Bulk or tail effective sample size of every variable of a posterior, as :func:`arviz.ess`.

    Parameters
    ----------
    posterior
        An ``xarray.Dataset`` whose variables have the dimensions ``chain`` and ``draw``.
    method
        ``"bulk"`` or ``"tail"`` (at ArviZ's default ``prob``, ``stats.ci_prob``).

    Returns
    -------
    xarray.Dataset
        One ESS per scalar of each variable; NaN where a scalar has a missing draw or fewer than 4 draws.
    """
    if method not in ("bulk", "tail"):
        raise ValueError(f"ess: method must be 'bulk' or 'tail', got {method!r}")
    return _per_variable(posterior, lambda x: array_ess(x, method))


def array_rhat(draws: np.ndarray) -> np.ndarray:
    """:func:`rhat` of an array of draws.

    Parameters
    ----------
    draws
        Draws shaped ``(chain, draw, *shape)``.

    Returns
    -------
    numpy.ndarray
        The r̂ of each scalar, shaped ``shape``.
    """
    return _chunked(draws, _rhat_rank)


def array_ess(draws: np.ndarray, method: str = "bulk") -> np.ndarray:
    """:func:`ess` of an array of draws.

    Parameters
    ----------
    draws
        Draws shaped ``(chain, draw, *shape)``.
    method
        ``"bulk"`` or ``"tail"``.

    Returns
    -------
    numpy.ndarray
        The ESS of each scalar, shaped ``shape``.
    """
    fn = {"bulk": _ess_bulk, "tail": _ess_tail}.get(method)
    if fn is None:
        raise ValueError(f"ess: method must be 'bulk' or 'tail', got {method!r}")
    return _chunked(draws, fn)


#: values (chains × draws × scalars) handled at once; the work arrays are about ten times this
_CHUNK = 4_000_000


def _chunked(draws: np.ndarray, fn: Any) -> np.ndarray:
    x = np.asarray(draws, dtype=np.float64)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    step = max(1, _CHUNK // max(1, flat.shape[0] * flat.shape[1]))
    parts = [fn(flat[:, :, i : i + step]) for i in range(0, flat.shape[2], step)]
    out = np.concatenate(parts) if parts else np.empty(0)
    return out.reshape(x.shape[2:])


def _per_variable(posterior: Any, fn: Any) -> Any:
    import xarray as xr

    out = {}
    for name, da in posterior.data_vars.items():
        da = da.transpose("chain", "draw", ...)
        val = fn(da.values)
        dims = da.dims[2:]
        out[name] = xr.DataArray(val, dims=dims, coords={d: da.coords[d] for d in dims if d in da.coords})
    return xr.Dataset(out)


def _valid(x: np.ndarray, min_chains: int) -> np.ndarray:
    """Per scalar: no NaN, at least 4 draws and ``min_chains`` chains (ArviZ's ``not_valid``)."""
    ok = ~np.isnan(x).any(axis=(0, 1))
    if x.shape[1] < 4 or x.shape[0] < min_chains:
        ok[:] = False
    return ok


def _split(x: np.ndarray) -> np.ndarray:
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks (1-based, ties averaged) of each column of ``x``: ``scipy.stats.rankdata(method="average",
    axis=0)`` in one sort (of the transposed, contiguous array: a sort along strided memory is slow).
    The sort need not be stable (ties get their group's mean rank whatever their order): NumPy's default
    sort took half the time of its stable one on a growth posterior (16,000 draws × 60 scalars)."""
    m, k = x.shape
    xt = np.ascontiguousarray(x.T)
    order = np.argsort(xt, axis=1)
    s = np.take_along_axis(xt, order, axis=1)
    new = np.ones((k, m), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    idx = np.broadcast_to(np.arange(m), (k, m))
    first = np.maximum.accumulate(np.where(new, idx, 0), axis=1)  # a tie group's first position
    end = np.ones((k, m), dtype=bool)
    end[:, :-1] = new[:, 1:]
    last = np.minimum.accumulate(np.where(end, idx, m - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty((k, m))
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    return ranks.T


def _z_scale(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri  # the standard normal quantile, Φ⁻¹

    c, n, k = x.shape
    return ndtri((_ranks(x.reshape(c * n, k)) - _BLOM) / (c * n - 2 * _BLOM + 1)).reshape(c, n, k)


def _split_rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), axis=0, ddof=1)
    within = np.var(x, axis=1, ddof=1).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def _rhat_rank(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[2], np.nan)
    ok = _valid(x, min_chains=2)
    if not ok.any():
        return out
    s = _split(x[..., ok])
    folded = np.abs(s - np.median(s.reshape(-1, s.shape[2]), axis=0))
    bulk, tail = _split_rhat(_z_scale(s)), _split_rhat(_z_scale(folded))
    # Python's max(bulk, tail), as ArviZ: a NaN tail (every draw equally far from the median, e.g. chains
    # stuck at different values) keeps the bulk r̂; np.maximum would turn it into NaN and hide it
    out[ok] = np.where(tail > bulk, tail, bulk)
    return out


def _ess_bulk(x: np.ndarray) -> np.ndarray:
    out = np.full(x.shape[2], np.nan)
    ok = _valid(x, min_chains=1)
    if ok.any():
        out[ok] = _ess(_z_scale(_split(x[..., ok])))
    return out


def _ess_tail(x: np.ndarray) -> np.ndarray:
    from arviz_base import rcParams

    out = np.full(x.shape[2], np.nan)
    ok = _valid(x, min_chains=1)
    if not ok.any():
        return out
    v = x[..., ok]
    p = float(rcParams["stats.ci_prob"])
    flat = v.reshape(-1, v.shape[2])
    per_prob = [
        _ess(_split((v <= np.quantile(flat, q, axis=0, method="linear")).astype(np.float64)))
        for q in sorted((p, 1 - p))
    ]
    out[ok] = np.minimum(*per_prob)
    return out


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain at every lag (divided by ``n``), along the draw axis, by FFT."""
    from scipy.fftpack import next_fast_len

    n = x.shape[1]
    m = next_fast_len(2 * n)
    f = np.fft.rfft(x - x.mean(axis=1, keepdims=True), n=m, axis=1)
    return np.fft.irfft(f * np.conjugate(f), n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """ESS of each scalar of ``x`` (chains, draws, scalars): ArviZ's ``_ess`` without the loops.

    Geyer's initial positive sequence stops at the first pair of lags ``(2k, 2k+1)`` whose sum ``P_k`` is
    not positive (or at the last pair ArviZ looks at, ``2k ≤ n − 3``); making it monotone replaces each
    ``P_k`` by the running minimum, and ArviZ adds the last even lag ``ρ̂_{2K}`` when positive (or when
    its pair was kept).
    """
    c, n, k = x.shape
    size = c * n
    out = np.full(k, float(size))
    const = (x.max(axis=(0, 1)) - x.min(axis=(0, 1))) < np.finfo(float).resolution
    if const.all():
        return out
    v = x[..., ~const]
    acov = _autocov(v).mean(axis=0)  # lags × scalars
    mean_var = acov[0] * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if c > 1:
        var_plus = var_plus + np.var(v.mean(axis=1), axis=0, ddof=1)
    rho = 1.0 - (mean_var - acov) / var_plus
    rho[0] = 1.0
    k_max = max((n - 3) // 2, 0)  # the last pair index ArviZ's loop reaches
    pairs = rho[0 : 2 * k_max + 1 : 2] + rho[1 : 2 * k_max + 2 : 2]  # P_0 .. P_kmax
    stop = pairs <= 0
    first = np.where(stop.any(axis=0), stop.argmax(axis=0), k_max)
    k_last = np.minimum(first, k_max)
    cols = np.arange(v.shape[2])
    running = np.minimum.accumulate(pairs, axis=0)
    summed = np.concatenate([np.zeros((1, v.shape[2])), np.cumsum(running, axis=0)])[k_last, cols]
    even = rho[2 * k_last, cols]
    kept = pairs[k_last, cols] >= 0
    last = np.where((k_last == 0) | (even > 0) | kept, even, 0.0)
    tau = np.maximum(-1.0 + 2.0 * summed + last, 1.0 / np.log10(size))
    res = size / tau
    res[np.isnan(rho).any(axis=0)] = np.nan
    out[~const] = res
    return out
