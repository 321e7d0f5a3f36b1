"""How the twin is sampled: nutpie from the posterior mode, with low-rank mass-matrix adaptation.

:meth:`FedBatchTwin.fit <bioworkbench.twin.model.FedBatchTwin.fit>` calls :func:`sample_from_mode`
when nutpie is the backend; it is the model contract's sampling (:mod:`bioworkbench.models.base`:
the compiled model is cached by structure, the posterior and the sampler record are kept, a
warning says when the chains did not converge) with a different start.

Notes
-----
**Why a start at the mode.** The twin's posterior is narrow in every direction the data inform (the
readings of 12 batches pin yields and rates to a few per cent of their prior width) and the ODE
solver fails far from it (stiff steps, states run out), so chains started from the prior, as
PyMC's and nutpie's default jittered initial points are, spend their tuning finding the mode, and a
chain that lands where the solver fails keeps a tiny step size (measured on the demo campaign: one
chain stuck at step size 0.001 with every draw divergent, the other at 500-1,000 leapfrog steps per
draw). The start here is the maximum of the log posterior in the sampler's own unconstrained
coordinates: L-BFGS (``scipy.optimize.minimize``, at most :data:`MAP_MAXITER` iterations) on the
compiled model's log density and gradient, from the prior centres; each chain starts there,
plus or minus :data:`START_OFFSET` in every coordinate (random signs per chain). Not at the mode
itself: nutpie's first mass matrix comes from the gradient at the start, which vanishes at the
mode (measured: a start 0.01 from the mode kept both chains at 1,023 leapfrog steps per draw for
the first dozens of tuning draws); an equal offset in every coordinate makes the first gradient
scale like the inverse posterior variance.
Starting at the mode costs the chains nothing in validity (the warm-up still adapts step size and
mass matrix before any draw is kept) and lets r̂ compare chains that explored, not chains that
travelled.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict
from typing import Any

import numpy as np

__all__ = ["MAP_MAXITER", "MAXDEPTH", "START_OFFSET", "log_density", "posterior_mode", "sample_from_mode"]

#: largest number of L-BFGS iterations of the search for the start
MAP_MAXITER = 400
#: largest NUTS tree depth (at most 2**MAXDEPTH - 1 leapfrog steps per draw). Before the mass matrix has
#: adapted, the first tuning draws would run to 1,023 steps each; capped at 31 they cost about 24 instead of
#: about 48 at depth 6, and tuning still adapts the mass matrix from their draws and gradients. After tuning
#: the twin takes about 10 steps per draw, well under the cap. Measured with 500 tuning steps on 12 demo
#: batches (seeds 1, 2) and on the benchmark's 12 simulated batches (seed 1): 8,400-9,000 leapfrog steps of
#: tuning per chain at depth 5 against about 14,300 with 600 steps at depth 6, no divergence. A shorter early
#: window of nutpie's (its mass matrix switched every 25 draws instead of 10) saved as much on these campaigns
#: but left 1-4 divergences on the recovery campaign of tests/test_twin.py, where depth 5 alone leaves none.
MAXDEPTH = 5
#: distance of each chain's start from the mode in every unconstrained coordinate (random sign)
START_OFFSET = 0.05


def log_density(compiled: Any) -> Any:
    """The log density and its gradient of a compiled nutpie model, through its C callback.

    The callback is what nutpie's sampler calls (``(dim, x, grad out, logp out, user data) -> status``),
    so this works as well for a model loaded from the compile cache
    (:mod:`bioworkbench.models.compile_cache`), which keeps no PyTensor functions.

    Parameters
    ----------
    compiled
        A compiled nutpie PyMC model (fresh or from the cache).

    Returns
    -------
    callable
        ``f(x) -> (logp, grad)`` in the unconstrained coordinates; ``logp`` is ``-inf`` (gradient
        zero) where the callback reports a failure or a non-finite value.
    """
    import ctypes

    fn = compiled.compiled_logp_func.ctypes
    n = int(compiled.n_dim)
    dp = ctypes.POINTER(ctypes.c_double)

    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        grad, logp = np.zeros(n), np.zeros(1)
        status = fn(
            ctypes.c_uint64(n),
            x.ctypes.data_as(dp),
            grad.ctypes.data_as(dp),
            logp.ctypes.data_as(dp),
            ctypes.c_void_p(compiled.user_data.ctypes.data),
        )
        if status != 0 or not np.isfinite(logp[0]):
            return -np.inf, np.zeros(n)
        return float(logp[0]), grad

    return f


def posterior_mode(compiled: Any, x0: np.ndarray, *, maxiter: int = MAP_MAXITER) -> tuple[np.ndarray, float]:
    """The maximum of a compiled nutpie model's log density, by L-BFGS from ``x0``.

    Parameters
    ----------
    compiled
        A compiled nutpie PyMC model (its C callback gives the log density and its gradient:
        :func:`log_density`).
    x0
        Start, in the unconstrained coordinates.
    maxiter
        Largest number of iterations.

    Returns
    -------
    tuple
        The mode (unconstrained coordinates) and the log density there.
    """
    from scipy.optimize import minimize

    logp_grad = log_density(compiled)

    def negative(x: np.ndarray) -> tuple[float, np.ndarray]:
        logp, grad = logp_grad(x)
        if not np.isfinite(logp):
            return 1e300, np.zeros_like(x)
        return -logp, -grad

    x0 = np.asarray(x0, dtype=np.float64)
    res = minimize(negative, x0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return res.x, -float(res.fun)


def sample_from_mode(
    twin,
    data: Any,
    *,
    draws: int | None,
    tune: int | None,
    chains: int | None,
    random_seed: int | None,
    progressbar: bool,
    **kwargs: Any,
):
    """Prepare, compile (or take the cached model), find the mode, sample with nutpie; the contract's bookkeeping.

    Parameters
    ----------
    twin
        The :class:`~bioworkbench.twin.model.FedBatchTwin` being fitted.
    data
        The campaign.
    draws, tune, chains, random_seed, progressbar
        As in :meth:`FedBatchTwin.fit <bioworkbench.twin.model.FedBatchTwin.fit>`.
    **kwargs
        The options of the twin's data preparation.

    Returns
    -------
    FedBatchTwin
        ``twin``, fitted.
    """
    import nutpie

    from bioworkbench.models import base, compile_cache

    base._resolve_blas_flags()
    d = twin._prepare(data, **kwargs)
    twin.data = d
    name = type(twin).__name__
    draws = base._positive_int(draws or twin.sampler["draws"], "draws", name)
    tune = base._positive_int(twin.sampler["tune"] if tune is None else tune, "tune", name, zero=True)
    chains = base._positive_int(chains or twin.sampler["chains"], "chains", name)
    if random_seed is not None:
        random_seed = base._positive_int(random_seed, "random_seed", name, zero=True)
    t0 = time.perf_counter()
    key = (
        name,
        twin._structure(d),
        json.dumps({k: asdict(v) for k, v in twin.priors.items()}, sort_keys=True),
        tuple(twin.fixed),
        "mode start",
    )
    compiled = base._COMPILED.get(key)
    cached = compiled is not None
    if compiled is None:
        # through the disk cache: a new process (a report kernel, a restarted notebook) loads the model
        # another one compiled (without nutpie's jitter: the search for the mode starts at the prior centres)
        before = compile_cache.STATS["hit"]
        compiled = compile_cache.compile_nutpie(twin._build(d), jitter=False)
        cached = compile_cache.STATS["hit"] > before
        base._COMPILED[key] = compiled
    t1 = time.perf_counter()
    centre = np.asarray(compiled.initial_point_func(0), dtype=np.float64)
    mode, logp_mode = posterior_mode(compiled, centre)

    def start(seed: Any) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return mode + START_OFFSET * rng.choice([-1.0, 1.0], size=mode.shape)

    t2 = time.perf_counter()
    idata = nutpie.sample(
        dataclasses.replace(compiled, initial_point_func=start),
        draws=draws,
        tune=tune,
        chains=chains,
        seed=random_seed,
        progress_bar=progressbar,
        cores=twin.sampler["cores"] or min(chains, 4),
        save_warmup=False,
        adaptation=twin.sampler["adaptation"],
        target_accept=twin.sampler["nutpie_target_accept"],
        maxdepth=MAXDEPTH,
    )
    t3 = time.perf_counter()
    twin.idata = idata
    twin.sampling = {
        "backend": "nutpie",
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": random_seed,
        "adaptation": twin.sampler["adaptation"],
        "target_accept": twin.sampler["nutpie_target_accept"],
        "start": "posterior mode (L-BFGS)",
        "maxdepth": MAXDEPTH,
        "log_density_at_start": round(logp_mode, 3),
        "compiled_from_cache": cached,
        "compile_s": round(t1 - t0, 3),
        "mode_s": round(t2 - t1, 3),
        "sample_s": round(t3 - t2, 3),
        "data_hash": twin.data_hash()[:16],
        "versions": base._versions("nutpie"),
    }
    twin._warn_if_not_converged()
    return twin
