"""Forward solution and exact log-likelihood gradient of the fed-batch model for one batch.

The numerics are the generated kernels of :mod:`bioworkbench.twin._kernels` (classic RK4 with a
fixed step per interval between events, and its discrete adjoint). This module turns a batch's
events and observations into the kernels' arrays (a :class:`Schedule`), checks arguments, and
turns the kernels' status codes into errors.

Notes
-----
**Intervals**: the time axis is cut at every jump, every change of input (temperature set point,
continuous feed) and every observation time; each interval of length :math:`\\Delta` is integrated
with :math:`n=\\lceil\\Delta/h_{max}\\rceil` RK4 steps of :math:`h=\\Delta/n`. At a cut the solver
first records the state (observations at a jump time see the state *before* the jump: a sample is
drawn before the feed of the same time), then applies the jumps in the order given.

**Stiffness**: the first step of every interval, and every step whose own stiffness estimate
(:math:`h\\lVert k_4-k_3\\rVert/\\lVert y_4-y_3\\rVert`) exceeds 1, is checked against the Jacobian's
eigenvalues (see :mod:`bioworkbench.twin.codegen`); a step that makes a state negative (the exact
solution cannot: a substrate running out faster than the step resolves) fails the check too. With
``on_stiff="substep"`` an interval with an unstable step is integrated again with twice the steps
(up to :data:`MAX_DOUBLINGS` times); with ``"raise"`` a :class:`StiffnessError` names the time and
:math:`h\\rho`; ``"ignore"`` skips the check (faster, for parameter sets known to be safe).
Sub-stepping changes the discrete map, so the log-likelihood is piecewise smooth in
:math:`\\theta`; the gradient is exact for the map actually used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from bioworkbench.errors import ArgumentError, BioWorkbenchError, ConfigError
from bioworkbench.twin import _kernels as K

__all__ = [
    "MAX_DOUBLINGS",
    "BatchLikelihood",
    "LoglikResult",
    "NonFiniteSolutionError",
    "Observations",
    "Schedule",
    "SolverEvents",
    "StiffnessError",
    "build_schedule",
    "loglik_and_grad",
    "observables",
    "simulate",
]

#: how many times an interval's step count may be doubled when a step is unstable
MAX_DOUBLINGS = 8

OnStiff = Literal["substep", "raise", "ignore"]


class StiffnessError(BioWorkbenchError, ArithmeticError):
    """An RK4 step lies outside the method's stability region (step size times spectral radius too large)."""


class NonFiniteSolutionError(BioWorkbenchError, ArithmeticError):
    """The solution became infinite or NaN."""


@dataclass(frozen=True, slots=True)
class SolverEvents:
    """Volume jumps and piecewise-constant inputs of one batch, as the solver's arrays.

    Attributes
    ----------
    jump_time_h
        Times of the jumps (h), non-decreasing; jumps at one time are applied in the given order.
    jump_v_out_ml, jump_v_in_ml
        Volume removed, then added, at each jump (mL).
    jump_conc
        Concentrations of the added medium in each state's canonical unit, shape ``(n_jumps, NY)``
        (0 for cells, product and volume).
    input_time_h
        Times from which each row of ``inputs`` holds (h), increasing; the first must be at or before
        the start of the batch.
    inputs
        Shape ``(n_inputs, NU)``: temperature set point (degC), continuous feed (mL/h) and the
        continuous feed's concentrations (see ``_kernels.INPUT_NAMES``).
    """

    jump_time_h: np.ndarray
    jump_v_out_ml: np.ndarray
    jump_v_in_ml: np.ndarray
    jump_conc: np.ndarray
    input_time_h: np.ndarray
    inputs: np.ndarray

    @classmethod
    def constant(cls, *, temperature_c: float = 36.5) -> SolverEvents:
        """No jumps, a constant temperature, no continuous feed.

        Parameters
        ----------
        temperature_c
            The temperature set point (degC).

        Returns
        -------
        SolverEvents
        """
        inputs = np.zeros((1, K.NU))
        inputs[0, 0] = temperature_c
        return cls(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros((0, K.NY)), np.array([-np.inf]), inputs)

    def __post_init__(self) -> None:
        nj = np.shape(self.jump_time_h)[0]
        problems = []
        for name in ("jump_v_out_ml", "jump_v_in_ml"):
            if np.shape(getattr(self, name)) != (nj,):
                problems.append(f"{name} has shape {np.shape(getattr(self, name))}, expected ({nj},)")
        if np.shape(self.jump_conc) != (nj, K.NY):
            problems.append(f"jump_conc has shape {np.shape(self.jump_conc)}, expected ({nj}, {K.NY})")
        ni = np.shape(self.input_time_h)[0]
        if ni < 1 or np.shape(self.inputs) != (ni, K.NU):
            problems.append(f"inputs has shape {np.shape(self.inputs)}, expected ({max(ni, 1)}, {K.NU})")
        if nj and np.any(np.diff(self.jump_time_h) < 0):
            problems.append("jump_time_h is not sorted")
        if ni > 1 and np.any(np.diff(self.input_time_h) <= 0):
            problems.append("input_time_h is not strictly increasing")
        if nj and (np.any(np.asarray(self.jump_v_out_ml) < 0) or np.any(np.asarray(self.jump_v_in_ml) < 0)):
            problems.append("a jump volume is negative")
        if problems:
            raise ConfigError("SolverEvents: " + "; ".join(problems) + ".")


@dataclass(frozen=True, slots=True)
class Observations:
    """Observations of one batch for the likelihood.

    Attributes
    ----------
    time_h
        Sample times (h).
    variable
        Observable index into ``_kernels.OBSERVABLE_NAMES`` (int).
    value
        Observed value, or the limit of detection where ``censored``.
    sigma
        SD of the observation error: absolute (normal) or of the log (lognormal).
    lognormal
        Per observation: lognormal (multiplicative) error, else normal.
    censored
        Per observation: the reading was below ``value`` (the limit of detection).
    """

    time_h: np.ndarray
    variable: np.ndarray
    value: np.ndarray
    sigma: np.ndarray
    lognormal: np.ndarray
    censored: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        time_h,
        variable,
        value,
        sigma,
        *,
        lognormal: bool | np.ndarray = True,
        censored: bool | np.ndarray = False,
    ) -> Observations:
        """Observations from arrays; ``variable`` may hold observable names (``"vcd"``, ``"titer"``, …).

        Parameters
        ----------
        time_h, value, sigma
            One entry per observation.
        variable
            Observable names or indices.
        lognormal, censored
            One flag for all, or one per observation.

        Returns
        -------
        Observations

        Raises
        ------
        ConfigError
            Unknown observable names, mismatched lengths, non-positive sigma, or a non-positive
            value with a lognormal error.
        """
        time_h = np.asarray(time_h, dtype=np.float64)
        n = time_h.shape[0]
        var = np.asarray(variable)
        if var.dtype.kind in "US" or (var.dtype.kind == "O" and all(isinstance(v, str) for v in var.ravel())):
            unknown = sorted({str(v) for v in var} - set(K.OBSERVABLE_NAMES))
            if unknown:
                raise ConfigError(
                    f"Observations: unknown variable(s) {unknown}; the twin observes {', '.join(K.OBSERVABLE_NAMES)}."
                )
            index = {name: i for i, name in enumerate(K.OBSERVABLE_NAMES)}
            var = np.array([index[str(v)] for v in var], dtype=np.int64)
        var = var.astype(np.int64)
        obs = cls(
            time_h,
            var,
            np.asarray(value, dtype=np.float64),
            np.asarray(sigma, dtype=np.float64) * np.ones(n),
            np.broadcast_to(np.asarray(lognormal, dtype=np.bool_), (n,)).copy(),
            np.broadcast_to(np.asarray(censored, dtype=np.bool_), (n,)).copy(),
        )
        obs._check()
        return obs

    def _check(self) -> None:
        n = self.time_h.shape[0]
        problems = [
            f"{name} has {getattr(self, name).shape[0]} entries, time_h has {n}"
            for name in ("variable", "value", "sigma", "lognormal", "censored")
            if getattr(self, name).shape != (n,)
        ]
        if not problems:
            if np.any((self.variable < 0) | (self.variable >= K.NOBS)):
                problems.append(f"variable indices must be in 0..{K.NOBS - 1}")
            if not np.all(np.isfinite(self.time_h)) or not np.all(np.isfinite(self.value)):
                problems.append("time_h and value must be finite")
            if not np.all(self.sigma > 0):
                problems.append("sigma must be positive")
            if np.any(self.lognormal & ~(self.value > 0)):
                problems.append(
                    f"{int(np.sum(self.lognormal & ~(self.value > 0)))} lognormal value(s) are not positive"
                )
        if problems:
            raise ConfigError("Observations: " + "; ".join(problems) + ".")


@dataclass(frozen=True, slots=True)
class Schedule:
    """The kernels' arrays for one batch: interval boundaries, steps, inputs, jumps and observations."""

    t_b: np.ndarray
    nsub: np.ndarray
    u_seg: np.ndarray
    jb_start: np.ndarray
    j_vout: np.ndarray
    j_vin: np.ndarray
    j_c: np.ndarray
    ob_start: np.ndarray
    ob_var: np.ndarray
    ob_order: np.ndarray  # observation o of the schedule is observation ob_order[o] of the caller

    @property
    def n_steps(self) -> int:
        """The number of RK4 steps (before any sub-stepping)."""
        return int(self.nsub.sum())


def build_schedule(
    events: SolverEvents,
    obs_time_h: np.ndarray,
    *,
    obs_var: np.ndarray | None = None,
    t0: float = 0.0,
    t_end: float | None = None,
    h_max: float = 0.5,
) -> Schedule:
    """Cut the time axis at jumps, input changes and observations, and lay out the kernels' arrays.

    Parameters
    ----------
    events
        The batch's jumps and inputs.
    obs_time_h
        Observation times (h), each in ``[t0, t_end]``.
    obs_var
        Observable index per observation (0 where only states are wanted).
    t0
        Start of the batch (h); ``y0`` is the state then.
    t_end
        End of the integration (h); the last observation time by default. Jumps at or after it
        are not applied.
    h_max
        Largest RK4 step (h).

    Returns
    -------
    Schedule

    Raises
    ------
    ConfigError
        ``h_max`` not positive, an observation or jump before ``t0``, an observation after
        ``t_end``, or inputs that start after ``t0``.
    """
    obs_time_h = np.asarray(obs_time_h, dtype=np.float64)
    if obs_var is None:
        obs_var = np.zeros(obs_time_h.shape[0], dtype=np.int64)
    if not h_max > 0:
        raise ConfigError(f"build_schedule: h_max must be positive, got {h_max!r}.")
    if t_end is None:
        t_end = float(obs_time_h.max()) if obs_time_h.size else float(t0)
    problems = []
    if obs_time_h.size and (obs_time_h.min() < t0 or obs_time_h.max() > t_end):
        problems.append(
            f"observation times must lie in [{t0:g}, {t_end:g}] h; found {obs_time_h.min():g}–{obs_time_h.max():g} h"
        )
    if events.jump_time_h.size and events.jump_time_h.min() < t0:
        problems.append(f"a jump at {events.jump_time_h.min():g} h is before the start t0 = {t0:g} h")
    if events.input_time_h[0] > t0:
        problems.append(f"the inputs start at {events.input_time_h[0]:g} h, after t0 = {t0:g} h")
    if problems:
        raise ConfigError("build_schedule: " + "; ".join(problems) + ".")

    keep = events.jump_time_h < t_end
    jt = events.jump_time_h[keep]
    inner_inputs = events.input_time_h[(events.input_time_h > t0) & (events.input_time_h < t_end)]
    t_b = np.unique(np.concatenate([[t0, t_end], jt, inner_inputs, obs_time_h]))
    nb = t_b.shape[0] - 1
    lengths = np.diff(t_b)
    nsub = np.maximum(1, np.ceil(lengths / h_max - 1e-9)).astype(np.int64)
    which = np.searchsorted(events.input_time_h, t_b[:-1], side="right") - 1
    u_seg = np.ascontiguousarray(events.inputs[which], dtype=np.float64)

    jb = np.searchsorted(t_b, jt)  # exact: every jump time is a boundary
    jb_start = np.searchsorted(jb, np.arange(nb + 2)).astype(np.int64)
    ob = np.searchsorted(t_b, obs_time_h)
    order = np.argsort(ob, kind="stable")
    ob_start = np.searchsorted(ob[order], np.arange(nb + 2)).astype(np.int64)
    return Schedule(
        t_b=t_b,
        nsub=nsub if nb else np.zeros(0, dtype=np.int64),
        u_seg=u_seg if nb else np.zeros((0, K.NU)),
        jb_start=jb_start,
        j_vout=np.ascontiguousarray(events.jump_v_out_ml[keep], dtype=np.float64),
        j_vin=np.ascontiguousarray(events.jump_v_in_ml[keep], dtype=np.float64),
        j_c=np.ascontiguousarray(events.jump_conc[keep], dtype=np.float64),
        ob_start=ob_start,
        ob_var=np.ascontiguousarray(np.asarray(obs_var, dtype=np.int64)[order]),
        ob_order=order,
    )


def _vector(x, n: int, name: str) -> np.ndarray:
    a = np.ascontiguousarray(x, dtype=np.float64)
    if a.shape != (n,):
        raise ArgumentError(f"{name} must have shape ({n},), got {a.shape}.")
    if not np.all(np.isfinite(a)):
        raise ArgumentError(f"{name} holds non-finite values at positions {np.flatnonzero(~np.isfinite(a)).tolist()}.")
    return a


def _on_stiff(on_stiff: str) -> tuple[bool, bool]:
    if on_stiff not in ("substep", "raise", "ignore"):
        raise ArgumentError(f"on_stiff={on_stiff!r}; expected 'substep', 'raise' or 'ignore'.")
    return on_stiff != "ignore", on_stiff == "substep"


def _raise_status(status: int, info: np.ndarray, sched: Schedule, where: str) -> None:
    if status == 1:
        b = int(info[2])
        h = (sched.t_b[b + 1] - sched.t_b[b]) / sched.nsub[b]
        raise StiffnessError(
            f"{where}: the RK4 step of {h:.4g} h at t = {info[0]:.4g} h is unstable: h × spectral radius of the "
            f"Jacobian = {info[1]:.3g} (RK4 is stable up to about 2.8 on the negative real axis). Pass a smaller "
            "h_max, or on_stiff='substep' to halve the step where needed; a rate constant this fast is often "
            "a sign of implausible parameters."
        )
    if status == 3:
        b = int(info[2])
        h = (sched.t_b[b + 1] - sched.t_b[b]) / sched.nsub[b]
        raise StiffnessError(
            f"{where}: the RK4 step of {h:.4g} h at t = {info[0]:.4g} h makes {K.STATE_NAMES[int(info[4])]} negative "
            f"({info[1]:.3g}): the step is too large for how fast it is consumed there. Pass a smaller h_max, or "
            "on_stiff='substep' to halve the step where needed."
        )
    if status == 2:
        raise NonFiniteSolutionError(f"{where}: the solution became infinite or NaN by t = {info[0]:.4g} h.")


def simulate(
    theta,
    y0,
    events: SolverEvents,
    t_obs,
    *,
    t0: float = 0.0,
    h_max: float = 0.5,
    on_stiff: OnStiff = "substep",
) -> np.ndarray:
    """The states at the given times (before any jump at that time).

    Parameters
    ----------
    theta
        Parameter vector in the order of :data:`bioworkbench.twin.parameters.PARAMETERS`.
    y0
        State at ``t0`` in the order of ``_kernels.STATE_NAMES`` and canonical units.
    events
        Jumps and inputs (e.g. from :meth:`bioworkbench.twin.feeds.FeedPlan.to_solver`).
    t_obs
        Times (h) at which to report the state, each at or after ``t0``.
    t0
        Start time (h).
    h_max
        Largest RK4 step (h).
    on_stiff
        ``"substep"``, ``"raise"`` or ``"ignore"`` (see the module's Notes).

    Returns
    -------
    numpy.ndarray
        Shape ``(len(t_obs), NY)``.

    Raises
    ------
    StiffnessError
        With ``on_stiff="raise"``, or when sub-stepping :data:`MAX_DOUBLINGS` times did not help.
    NonFiniteSolutionError
        If the solution blows up.
    """
    th = _vector(theta, K.NTH, "theta")
    y = _vector(y0, K.NY, "y0")
    t_obs = np.asarray(t_obs, dtype=np.float64)
    sched = build_schedule(events, t_obs, t0=t0, h_max=h_max)
    check, substep = _on_stiff(on_stiff)
    nb = sched.t_b.shape[0] - 1
    y_pre = np.empty((nb + 1, K.NY))
    info = np.zeros(5)
    status = K.forward(
        th, y, sched.t_b, sched.nsub.copy(), sched.u_seg, sched.jb_start, sched.j_vout, sched.j_vin, sched.j_c,
        sched.ob_start, sched.ob_var, check, substep, MAX_DOUBLINGS, y_pre, np.empty((max(nb, 1), K.NY)),
        np.empty((max(sched.j_vout.shape[0], 1), K.NY)), np.empty(sched.ob_var.shape[0]), np.empty((0, 4, K.NY)), info,
    )  # fmt: skip
    _raise_status(status, info, sched, "simulate")
    return y_pre[np.searchsorted(sched.t_b, t_obs)]


def observables(states: np.ndarray) -> np.ndarray:
    """The observables (``_kernels.OBSERVABLE_NAMES``) of an array of states.

    Parameters
    ----------
    states
        Shape ``(n, NY)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, NOBS)``.
    """
    states = np.atleast_2d(np.asarray(states, dtype=np.float64))
    return np.array([[K.observe(s, k) for k in range(K.NOBS)] for s in states]).reshape(states.shape[0], K.NOBS)


@dataclass(frozen=True, slots=True)
class LoglikResult:
    """Log-likelihood and its gradients (with respect to theta, y0 and each observation's sigma)."""

    loglik: float
    grad_theta: np.ndarray
    grad_y0: np.ndarray
    grad_sigma: np.ndarray


class BatchLikelihood:
    """The log-likelihood of one batch's observations as a function of ``(theta, y0)``, with its exact gradient.

    The schedule is built once; each call runs one forward sweep and one adjoint sweep in a single
    compiled kernel (:func:`_kernels.loglik_grad`).

    Parameters
    ----------
    events
        The batch's jumps and inputs.
    observations
        The batch's observations.
    t0
        Start time (h).
    h_max
        Largest RK4 step (h).
    on_stiff
        ``"substep"``, ``"raise"`` or ``"ignore"``.
    """

    def __init__(
        self,
        events: SolverEvents,
        observations: Observations,
        *,
        t0: float = 0.0,
        h_max: float = 0.5,
        on_stiff: OnStiff = "substep",
    ) -> None:
        self.observations = observations
        self.schedule = build_schedule(events, observations.time_h, obs_var=observations.variable, t0=t0, h_max=h_max)
        self._check, self._substep = _on_stiff(on_stiff)
        order = self.schedule.ob_order
        self._value = np.ascontiguousarray(observations.value[order])
        self._sigma = np.ascontiguousarray(observations.sigma[order])
        self._lognormal = np.ascontiguousarray(observations.lognormal[order])
        self._censored = np.ascontiguousarray(observations.censored[order])

    def __call__(self, theta, y0, sigma=None) -> LoglikResult:
        """Log-likelihood and gradients at ``theta``, ``y0`` (and ``sigma``, per observation, if given).

        Returns -inf (zero gradients) where a lognormal prediction is not positive or the solution
        is not finite; raises :class:`StiffnessError` as configured.
        """
        s = self.schedule
        th = _vector(theta, K.NTH, "theta")
        y = _vector(y0, K.NY, "y0")
        sig = self._sigma if sigma is None else np.ascontiguousarray(np.asarray(sigma, dtype=np.float64)[s.ob_order])
        g_th = np.zeros(K.NTH)
        g_y0 = np.zeros(K.NY)
        g_sig = np.zeros(s.ob_var.shape[0])
        info = np.zeros(5)
        status, ll = K.loglik_grad(
            th, y, s.t_b, s.nsub.copy(), s.u_seg, s.jb_start, s.j_vout, s.j_vin, s.j_c, s.ob_start, s.ob_var,
            self._value, sig, self._lognormal, self._censored, self._check, self._substep, MAX_DOUBLINGS,
            g_th, g_y0, g_sig, info,
        )  # fmt: skip
        if status in (1, 3):
            _raise_status(status, info, s, "loglik_and_grad")
        grad_sigma = np.empty_like(g_sig)
        grad_sigma[s.ob_order] = g_sig
        return LoglikResult(float(ll), g_th, g_y0, grad_sigma)


def loglik_and_grad(
    theta,
    y0,
    events: SolverEvents,
    observations: Observations,
    *,
    t0: float = 0.0,
    h_max: float = 0.5,
    on_stiff: OnStiff = "substep",
) -> LoglikResult:
    """Log-likelihood of one batch's observations and its exact gradient (discrete adjoint of RK4).

    Parameters
    ----------
    theta, y0, events, t0, h_max, on_stiff
        As in :func:`simulate`.
    observations
        The observations (normal or lognormal error, optionally left-censored).

    Returns
    -------
    LoglikResult
        ``loglik``, ``grad_theta`` (NTH), ``grad_y0`` (NY), ``grad_sigma`` (per observation).

    Notes
    -----
    :math:`\\ell = \\sum_o \\ell_o`, with :math:`\\ell_o = \\log\\mathcal N(x_o\\mid m_o, \\sigma_o)`
    (normal), :math:`\\log\\mathcal N(\\log x_o\\mid \\log m_o,\\sigma_o) - \\log x_o` (lognormal) or
    :math:`\\log\\Phi((x_o - m_o)/\\sigma_o)` (censored below :math:`x_o`, logs for lognormal), and
    :math:`m_o` the observable of the RK4 solution at :math:`t_o` (before the jumps at :math:`t_o`).
    The gradient is that of the computed (discrete) solution, exact to rounding. For repeated calls
    on one batch use :class:`BatchLikelihood`, which builds the schedule once.
    """
    return BatchLikelihood(events, observations, t0=t0, h_max=h_max, on_stiff=on_stiff)(theta, y0)
