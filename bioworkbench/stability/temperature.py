"""Temperature histories of stability lots: Arrhenius factors, equivalent time and mean kinetic temperature.

A lot stored at a constant temperature ages at the rate ``k(T)``; a lot whose temperature changes
(storage, a shipment, a cold-chain excursion) ages by the integral of that rate. Every kinetic model
of :class:`bioworkbench.models.StabilityModel` is autonomous with a separable rate
``dα/dt = k(T) · f(α)``, so a lot with a temperature history ``T(s)`` has, at time ``t``, exactly the
extent of degradation of a lot held at the reference temperature for the *equivalent time*

.. math::

    t_{eq}(t) = \\int_0^t \\exp\\!\\Big(-\\frac{E_a}{R}\\Big(\\frac{1}{T(s)} - \\frac{1}{T_{ref}}\\Big)\\Big)\\,ds
             = \\sum_i \\Delta t_i \\exp\\Big(-\\frac{E_a}{R}\\Big(\\frac{1}{T_i} - \\frac{1}{T_{ref}}\\Big)\\Big)

(substitute ``dτ = k(T(s))/k(T_ref) ds`` in the rate equation: ``dα/dτ = k(T_ref) f(α)``, the
constant-temperature equation). The sum is the exact value for a piecewise-constant history, which
is what :class:`TemperatureHistory` holds.

Conventions: temperatures in °C at the interface and in kelvin inside (``T = T_°C + 273.15``);
activation energies in kJ/mol; ``R = 8.314462618e-3`` kJ/(mol·K) (CODATA 2018, exact since the 2019
SI). Times are in the time unit of the stability study (months by default); nothing here converts
them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError

__all__ = [
    "KELVIN",
    "MKT_ACTIVATION_ENERGY_KJ",
    "R_KJ",
    "TemperatureHistory",
    "arrhenius_factor",
    "mean_kinetic_temperature",
]

#: gas constant, kJ/(mol·K) (CODATA 2018; exact since the 2019 SI redefinition)
R_KJ = 8.314462618e-3
#: 0 °C in kelvin
KELVIN = 273.15
#: the customary activation energy of the mean kinetic temperature (USP <1160>, <1079.2>), kJ/mol
MKT_ACTIVATION_ENERGY_KJ = 83.144


def _kelvin(temperature_c: Any, *, what: str = "temperature_c") -> np.ndarray:
    from bioworkbench.checks import describe_type
    from bioworkbench.errors import ArgumentError

    if isinstance(temperature_c, str | bytes) or (
        isinstance(temperature_c, Sequence) and any(isinstance(x, str | bytes) for x in temperature_c)
    ):
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers (e.g. 25 or [25, 30]); got "
            f"{describe_type(temperature_c)}. Give the number itself, without the unit."
        )
    if isinstance(temperature_c, np.ndarray) and temperature_c.dtype.kind in "USO":
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers; got an array of {temperature_c.dtype} (text)."
        )
    try:
        t = np.asarray(temperature_c, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(
            f"{what}: expected temperatures in °C as numbers; got {describe_type(temperature_c)}."
        ) from None
    bad = ~np.isfinite(t) | (t <= -KELVIN)
    if np.any(bad):
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ConfigError(
            f"{what}: entry {i} is {float(t.ravel()[i])!r}; expected a finite temperature in °C above absolute "
            "zero (-273.15)."
        )
    return t + KELVIN


def arrhenius_factor(
    temperature_c: float | np.ndarray,
    activation_energy_kj: float | np.ndarray,
    reference_temperature_c: float,
) -> np.ndarray:
    """Rate at ``temperature_c`` relative to the rate at ``reference_temperature_c`` (Arrhenius).

    Parameters
    ----------
    temperature_c
        Temperature(s), °C.
    activation_energy_kj
        Activation energy ``E_a``, kJ/mol (broadcast against ``temperature_c``).
    reference_temperature_c
        Reference temperature ``T_ref``, °C.

    Returns
    -------
    numpy.ndarray
        ``k(T) / k(T_ref) = exp(-E_a/R · (1/T - 1/T_ref))`` (dimensionless, > 1 above ``T_ref``).

    Notes
    -----
    Arrhenius (1889) in the reference-temperature form used by accelerated stability modelling
    (e.g. Waterman & Adami 2005, Int J Pharm 293:101); temperatures in kelvin inside,
    ``R = 8.314462618e-3`` kJ/(mol·K).
    """
    t = _kelvin(temperature_c)
    tr = float(_kelvin(reference_temperature_c, what="reference_temperature_c"))
    ea = np.asarray(activation_energy_kj, dtype=float)
    return np.exp(-ea / R_KJ * (1.0 / t - 1.0 / tr))


def mean_kinetic_temperature(
    temperatures_c: Sequence[float] | np.ndarray,
    durations: Sequence[float] | np.ndarray | None = None,
    *,
    activation_energy_kj: float = MKT_ACTIVATION_ENERGY_KJ,
) -> float:
    """Mean kinetic temperature (Haynes 1971; USP <1160>, <1079.2>) of a temperature record, in °C.

    Parameters
    ----------
    temperatures_c
        Temperatures ``T_i``, °C: readings at equal intervals, or the temperatures of periods whose
        lengths are given in ``durations``.
    durations
        Length ``t_i`` of each period (any time unit, ≥ 0, not all 0). ``None``: equal intervals.
    activation_energy_kj
        ``ΔH``, kJ/mol; 83.144 kJ/mol by convention (USP), which makes ``ΔH/R`` ≈ 10,000 K.

    Returns
    -------
    float
        The mean kinetic temperature, °C.

    Raises
    ------
    ConfigError
        No temperatures, a temperature that is not finite or not above absolute zero, durations of a
        different length, negative or all zero, or a non-positive activation energy.

    Notes
    -----
    Haynes, J. D. (1971) "Worldwide virtual temperatures for product stability testing",
    J Pharm Sci 60:927–929; USP general chapters <1160> and <1079.2>:

    .. math::

        T_{mk} = \\frac{\\Delta H / R}{-\\ln\\left(\\sum_i t_i e^{-\\Delta H/(R T_i)} \\big/ \\sum_i t_i\\right)}

    with ``T_i`` in kelvin (``°C + 273.15``) and the result converted back to °C. It is the constant
    temperature at which a reaction of activation energy ``ΔH`` proceeds as far as it does over the
    record: ``arrhenius_factor(T_mk, ΔH, T_ref) · Σ t_i = Σ t_i · arrhenius_factor(T_i, ΔH, T_ref)``
    for any ``T_ref``. The sum is evaluated as a log-sum-exp (no underflow whatever ``ΔH``).
    ``R = 8.314462618e-3`` kJ/(mol·K); USP's rounded ``8.3144e-3`` moves the result by < 0.001 K.
    """
    t_k = _kelvin(temperatures_c, what="temperatures_c").ravel()
    if t_k.size == 0:
        raise ConfigError("mean_kinetic_temperature: no temperatures given.")
    if durations is None:
        w = np.ones_like(t_k)
    else:
        w = np.asarray(durations, dtype=float).ravel()
        if w.shape != t_k.shape:
            raise ConfigError(
                f"mean_kinetic_temperature: {t_k.size} temperatures but {w.size} durations; "
                "give one duration per temperature."
            )
        bad = ~np.isfinite(w) | (w < 0)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"durations: entry {i} is {float(w[i])!r}; expected a finite duration ≥ 0.")
        if not w.sum() > 0:
            raise ConfigError("durations: all are zero; expected at least one period of positive length.")
    if not (np.isfinite(activation_energy_kj) and activation_energy_kj > 0):
        raise ConfigError(f"activation_energy_kj must be a positive number (kJ/mol); got {activation_energy_kj!r}.")
    h = activation_energy_kj / R_KJ  # ΔH/R, K
    x = -h / t_k
    keep = w > 0
    xm = x[keep].max()
    log_mean = xm + np.log(np.sum(w[keep] * np.exp(x[keep] - xm))) - np.log(w.sum())
    return float(h / -log_mean - KELVIN)


@dataclass(frozen=True)
class TemperatureHistory:
    """A piecewise-constant temperature history: a base temperature and segments that override it.

    Times are in the stability study's time unit (months by default) from the start of the lot's
    storage (``t = 0``). Outside its segments the lot is at ``base_temperature_c``, also after the
    last segment. Build one with :meth:`constant`, :meth:`with_excursion`, :meth:`from_segments` or
    :meth:`from_log`, e.g. a refrigerated lot that spent a week at 25 °C in month 6::

        TemperatureHistory.constant(5.0).with_excursion(start=6, duration=0.25, temperature_c=25)

    Attributes
    ----------
    base_temperature_c
        Temperature outside the segments, °C.
    segments
        ``(start, duration, temperature_c)`` triples, sorted by start, not overlapping.
    label
        A name for tables and plots (``None``: :meth:`describe` builds one).
    """

    base_temperature_c: float
    segments: tuple[tuple[float, float, float], ...] = field(default=())
    label: str | None = None

    def __post_init__(self) -> None:
        _kelvin(self.base_temperature_c, what="base_temperature_c")
        segs = []
        for i, seg in enumerate(self.segments):
            if len(seg) != 3:
                raise ConfigError(
                    f"segment {i} of the temperature history: expected (start, duration, temperature_c); got {seg!r}."
                )
            start, dur, temp = (float(v) for v in seg)
            if not (np.isfinite(start) and start >= 0):
                raise ConfigError(f"segment {i} of the temperature history: start {start!r} must be a finite time ≥ 0.")
            if not (np.isfinite(dur) and dur >= 0):
                raise ConfigError(
                    f"segment {i} of the temperature history: duration {dur!r} must be a finite time ≥ 0."
                )
            _kelvin(temp, what=f"segment {i} temperature_c")
            segs.append((start, dur, temp))
        segs.sort(key=lambda s: s[0])
        for (s0, d0, _), (s1, _, _) in itertools.pairwise(segs):
            if s0 + d0 > s1 + 1e-12:
                raise ConfigError(
                    f"temperature history: the segment starting at {s0:g} (duration {d0:g}) overlaps the one "
                    f"starting at {s1:g}; segments must not overlap."
                )
        object.__setattr__(self, "segments", tuple(segs))
        object.__setattr__(self, "base_temperature_c", float(self.base_temperature_c))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def constant(cls, temperature_c: float, *, label: str | None = None) -> TemperatureHistory:
        """A lot kept at one temperature (°C) throughout."""
        return cls(float(temperature_c), (), label)

    def with_excursion(
        self,
        *,
        start: float,
        temperature_c: float,
        duration: float | None = None,
        end: float | None = None,
        label: str | None = None,
    ) -> TemperatureHistory:
        """This history with one more period at ``temperature_c`` from ``start`` for ``duration``
        (or until ``end``); it must not overlap the periods already there."""
        if (duration is None) == (end is None):
            raise ConfigError("with_excursion: give exactly one of duration= or end=.")
        dur = float(duration) if duration is not None else float(end) - float(start)
        if dur < 0:
            raise ConfigError(f"with_excursion: end {end!r} is before start {start!r}.")
        return TemperatureHistory(
            self.base_temperature_c, (*self.segments, (float(start), dur, float(temperature_c))), label or self.label
        )

    @classmethod
    def from_segments(
        cls,
        segments: Iterable[Mapping[str, float] | Sequence[float]],
        *,
        base_temperature_c: float | None = None,
        label: str | None = None,
    ) -> TemperatureHistory:
        """A history from periods ``(start, duration, temperature_c)`` or mappings with ``start``,
        ``temperature_c`` and ``duration`` or ``end``. ``base_temperature_c`` (default: the
        temperature of the last period) holds outside the periods and after the last one."""
        segs = []
        for i, s in enumerate(segments):
            if isinstance(s, Mapping):
                if "start" not in s or "temperature_c" not in s or (("duration" in s) == ("end" in s)):
                    raise ConfigError(
                        f"segment {i}: expected keys start, temperature_c and one of duration or end; got {sorted(s)}."
                    )
                dur = float(s["duration"]) if "duration" in s else float(s["end"]) - float(s["start"])
                segs.append((float(s["start"]), dur, float(s["temperature_c"])))
            else:
                segs.append(tuple(float(v) for v in s))
        if not segs and base_temperature_c is None:
            raise ConfigError("from_segments: no segments and no base_temperature_c.")
        base = float(base_temperature_c) if base_temperature_c is not None else max(segs, key=lambda s: s[0])[2]
        return cls(base, tuple(segs), label)

    @classmethod
    def from_log(
        cls,
        times: Sequence[float] | np.ndarray,
        temperatures_c: Sequence[float] | np.ndarray,
        *,
        label: str | None = None,
    ) -> TemperatureHistory:
        """A history from a data-logger record: each reading holds until the next one (a step
        function, "previous value"); the last reading holds from then on.

        ``times`` must be increasing and start at 0 (the start of storage), in the study's time unit.
        """
        t = np.asarray(times, dtype=float).ravel()
        temp = np.asarray(temperatures_c, dtype=float).ravel()
        if t.size == 0 or t.size != temp.size:
            raise ConfigError(f"from_log: {t.size} times and {temp.size} temperatures; give one temperature per time.")
        if not np.all(np.isfinite(t)) or t[0] != 0 or np.any(np.diff(t) <= 0):
            raise ConfigError("from_log: times must be finite, start at 0 and increase strictly.")
        segs = tuple((float(a), float(b - a), float(c)) for a, b, c in zip(t[:-1], t[1:], temp[:-1], strict=True))
        return cls(float(temp[-1]), tuple(s for s in segs if s[1] > 0), label)

    # -- the piecewise-constant partition ------------------------------------------------------
    def pieces(self) -> tuple[np.ndarray, np.ndarray]:
        """Start times and temperatures (°C) of consecutive periods partitioning ``[0, ∞)``; the
        last period runs to infinity."""
        starts, temps = [0.0], [self.base_temperature_c]
        for s, d, temp in self.segments:  # sorted, not overlapping: the current last period is at base
            if d <= 0:
                continue
            if s == starts[-1]:
                temps[-1] = temp
            else:
                starts.append(s)
                temps.append(temp)
            starts.append(s + d)
            temps.append(self.base_temperature_c)
        # merge neighbours at the same temperature
        out_s, out_t = [starts[0]], [temps[0]]
        for s, temp in zip(starts[1:], temps[1:], strict=True):
            if s == out_s[-1]:
                out_t[-1] = temp
            elif temp != out_t[-1]:
                out_s.append(s)
                out_t.append(temp)
        return np.asarray(out_s), np.asarray(out_t)

    def _overlap(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Time spent in each period up to each of ``times``: ``(len(times), n_periods)``; and the temperatures."""
        starts, temps = self.pieces()
        ends = np.append(starts[1:], np.inf)
        t = np.asarray(times, dtype=float)[..., None]
        return np.clip(np.minimum(t, ends) - starts, 0.0, None), temps

    def temperature_at(self, times: float | np.ndarray) -> np.ndarray:
        """Temperature (°C) at each time (a period's temperature holds from its start, inclusive)."""
        starts, temps = self.pieces()
        t = np.asarray(times, dtype=float)
        return temps[np.searchsorted(starts, t, side="right") - 1]

    def exposure(self, times: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Time spent at each distinct temperature up to each of ``times``.

        Returns ``(temperatures_c, durations)`` with ``durations`` of shape ``times.shape + (n,)``:
        the design that turns an activation energy into equivalent time (``durations @ factors``).
        """
        ov, temps = self._overlap(times)
        uniq, inv = np.unique(temps, return_inverse=True)
        out = np.zeros((*ov.shape[:-1], uniq.size))
        for j in range(uniq.size):
            out[..., j] = ov[..., inv == j].sum(axis=-1)
        return uniq, out

    def equivalent_time(
        self,
        times: float | np.ndarray,
        *,
        activation_energy_kj: float | np.ndarray,
        reference_temperature_c: float,
    ) -> np.ndarray:
        """Equivalent time at the reference temperature of each of ``times`` (exact for this history).

        Parameters
        ----------
        times
            Times since the start of storage (study time unit), shape ``(T,)`` or scalar.
        activation_energy_kj
            ``E_a``, kJ/mol: a number or an array of draws of shape ``(S,)``.
        reference_temperature_c
            ``T_ref``, °C.

        Returns
        -------
        numpy.ndarray
            ``t_eq`` of shape ``E_a.shape + times.shape`` (study time unit).

        Notes
        -----
        ``t_eq(t) = Σ_i |[0, t] ∩ period_i| · exp(-E_a/R · (1/T_i - 1/T_ref))`` — see the module
        docstring for why it is exact for every kinetic model of the form ``dα/dt = k(T) f(α)``.
        """
        ov, temps = self._overlap(np.asarray(times, dtype=float))
        f = arrhenius_factor(temps, np.asarray(activation_energy_kj, dtype=float)[..., None], reference_temperature_c)
        # ov: times.shape + (n,), f: ea.shape + (n,)
        return np.tensordot(f, ov, axes=([-1], [-1])) if f.ndim > 1 else ov @ f

    def time_at_equivalent(
        self,
        equivalent_time: float | np.ndarray,
        *,
        activation_energy_kj: float | np.ndarray,
        reference_temperature_c: float,
    ) -> np.ndarray:
        """The time (study unit) at which this history reaches each equivalent time — the inverse
        of :meth:`equivalent_time` (strictly increasing, so unique); ``inf`` stays ``inf``.

        ``equivalent_time`` and ``activation_energy_kj`` broadcast against each other (e.g. one
        target per posterior draw).
        """
        starts, temps = self.pieces()
        q, ea = np.broadcast_arrays(np.asarray(equivalent_time, float), np.asarray(activation_energy_kj, float))
        f = arrhenius_factor(temps, ea[..., None], reference_temperature_c)  # (..., n)
        lengths = np.diff(starts)
        cum = np.concatenate([np.zeros((*q.shape, 1)), np.cumsum(f[..., :-1] * lengths, axis=-1)], axis=-1)
        i = np.clip((cum <= q[..., None]).sum(axis=-1) - 1, 0, starts.size - 1)
        c_i = np.take_along_axis(cum, i[..., None], axis=-1)[..., 0]
        f_i = np.take_along_axis(f, i[..., None], axis=-1)[..., 0]
        with np.errstate(invalid="ignore"):
            return np.where(np.isinf(q), np.inf, starts[i] + (q - c_i) / f_i)

    def mean_kinetic_temperature(
        self, until: float, *, activation_energy_kj: float = MKT_ACTIVATION_ENERGY_KJ
    ) -> float:
        """Mean kinetic temperature (°C) of this history over ``[0, until]`` (see :func:`mean_kinetic_temperature`)."""
        if not (np.isfinite(until) and until > 0):
            raise ConfigError(f"until must be a positive time; got {until!r}.")
        ov, temps = self._overlap(np.asarray([until], dtype=float))
        return mean_kinetic_temperature(temps, ov[0], activation_energy_kj=activation_energy_kj)

    # -- presentation and persistence -------------------------------------------------------
    def describe(self) -> str:
        """A short text: ``"5 °C"`` or ``"5 °C; 25 °C from 6 for 0.25"``."""
        if self.label:
            return self.label
        text = f"{self.base_temperature_c:g} °C"
        parts = [f"{temp:g} °C from {s:g} for {d:g}" for s, d, temp in self.segments if d > 0]
        return "; ".join([text, *parts])

    def to_frame(self, until: float | None = None) -> pl.DataFrame:
        """The periods as a frame ``start, end, duration, temperature_c`` (the last period ends at
        ``until``, or at infinity)."""
        starts, temps = self.pieces()
        ends = np.append(starts[1:], np.inf if until is None else max(float(until), starts[-1]))
        return pl.DataFrame({"start": starts, "end": ends, "duration": ends - starts, "temperature_c": temps})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (round trip with :meth:`from_dict`)."""
        return {
            "base_temperature_c": self.base_temperature_c,
            "segments": [list(s) for s in self.segments],
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TemperatureHistory:
        return cls(float(d["base_temperature_c"]), tuple(tuple(s) for s in d.get("segments", ())), d.get("label"))
