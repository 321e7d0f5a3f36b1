"""Temperature histories of stability lots: storage with excursions, and the equivalent time they give.

A lot stored at a constant temperature ages at the rate ``k(T)``; a lot whose temperature changes
(storage, a shipment, a cold-chain excursion) ages by the integral of that rate. Every kinetic model
of :mod:`bioworkbench.stability.degradation` is autonomous with a separable rate
``dα/dt = k(T) · f(α)``, so a lot with a temperature history ``T(s)`` has, at time ``t``, exactly the
extent of degradation of a lot held at the reference temperature for the *equivalent time*

.. math::

    t_{eq}(t) = \\int_0^t \\exp\\!\\Big(-\\frac{E_a}{R}\\Big(\\frac{1}{T(s)} - \\frac{1}{T_{ref}}\\Big)\\Big)\\,ds
             = \\sum_i \\Delta t_i \\exp\\Big(-\\frac{E_a}{R}\\Big(\\frac{1}{T_i} - \\frac{1}{T_{ref}}\\Big)\\Big)

(substitute ``dτ = k(T(s))/k(T_ref) ds`` in the rate equation: ``dα/dτ = k(T_ref) f(α)``, the
constant-temperature equation). The sum is the exact value for a piecewise-constant history, which
is what :class:`TemperatureHistory` holds. Units as in :mod:`bioworkbench.stability.temperature`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError
from bioworkbench.stability.temperature import (
    MKT_ACTIVATION_ENERGY_KJ,
    _kelvin,
    arrhenius_factor,
    mean_kinetic_temperature,
)

__all__ = ["TemperatureHistory"]


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
        """A lot kept at one temperature throughout.

        Parameters
        ----------
        temperature_c
            The storage temperature, °C.
        label
            A name for tables and plots.

        Returns
        -------
        TemperatureHistory
            A history without segments.

        Raises
        ------
        ArgumentError, ConfigError
            ``temperature_c`` is not a number, or not above absolute zero.
        """
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
        """This history with one more period at ``temperature_c``.

        Parameters
        ----------
        start
            When the period starts (study time unit, from the start of storage).
        temperature_c
            The period's temperature, °C.
        duration, end
            Its length, or when it ends (exactly one).
        label
            A name for the new history (default: this one's).

        Returns
        -------
        TemperatureHistory
            A new history (this one is unchanged).

        Raises
        ------
        ConfigError
            Both or neither of ``duration`` and ``end``; an end before the start; a period that
            overlaps one already there; a temperature not above absolute zero.
        """
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
        """A history from a list of periods.

        Parameters
        ----------
        segments
            Periods ``(start, duration, temperature_c)``, or mappings with ``start``, ``temperature_c``
            and ``duration`` or ``end`` (times in the study's unit, temperatures in °C).
        base_temperature_c
            The temperature outside the periods and after the last one (default: the temperature of
            the last period), °C.
        label
            A name for tables and plots.

        Returns
        -------
        TemperatureHistory
            The history.

        Raises
        ------
        ConfigError
            A mapping without the keys it needs; no periods and no ``base_temperature_c``; periods
            that overlap; a time or temperature that is not valid.
        """
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

        Parameters
        ----------
        times
            Reading times in the study's time unit, strictly increasing from 0 (the start of storage).
        temperatures_c
            The readings, °C, one per time.
        label
            A name for tables and plots.

        Returns
        -------
        TemperatureHistory
            The history (readings of zero length dropped).

        Raises
        ------
        ConfigError
            No readings, a different number of times and temperatures, times that do not start at 0
            or do not increase, or a temperature not above absolute zero.
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
        """The consecutive periods that partition ``[0, ∞)`` (neighbours at one temperature merged).

        Returns
        -------
        tuple of numpy.ndarray
            Start times (study time unit) and temperatures (°C); the last period runs to infinity.
        """
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
        """The temperature at each time (a period's temperature holds from its start, inclusive).

        Parameters
        ----------
        times
            Times since the start of storage (study time unit), ≥ 0.

        Returns
        -------
        numpy.ndarray
            Temperatures, °C, the shape of ``times``.
        """
        starts, temps = self.pieces()
        t = np.asarray(times, dtype=float)
        return temps[np.searchsorted(starts, t, side="right") - 1]

    def exposure(self, times: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Time spent at each distinct temperature up to each of ``times``.

        Parameters
        ----------
        times
            Times since the start of storage (study time unit).

        Returns
        -------
        tuple of numpy.ndarray
            ``(temperatures_c, durations)``: the ``n`` distinct temperatures (°C, sorted) and
            ``durations`` of shape ``times.shape + (n,)`` (study time unit), the design that turns an
            activation energy into equivalent time (``durations @ factors``).
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
        """The time at which this history reaches each equivalent time: the inverse of
        :meth:`equivalent_time` (strictly increasing, so unique).

        Parameters
        ----------
        equivalent_time
            Equivalent times at ``reference_temperature_c`` (study time unit); ``inf`` stays ``inf``.
        activation_energy_kj
            ``E_a``, kJ/mol; broadcast against ``equivalent_time`` (e.g. one target per posterior draw).
        reference_temperature_c
            ``T_ref``, °C.

        Returns
        -------
        numpy.ndarray
            Times since the start of storage (study time unit), the broadcast shape.

        Raises
        ------
        ArgumentError, ConfigError
            A temperature that is not a number or not above absolute zero.

        Notes
        -----
        With the periods' Arrhenius factors ``f_i`` and cumulative equivalent times ``c_i`` at their
        starts ``s_i``, the target ``q`` falls in the period with ``c_i ≤ q < c_{i+1}``, reached at
        ``t = s_i + (q − c_i)/f_i``.
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
        """Mean kinetic temperature of this history over ``[0, until]``.

        Parameters
        ----------
        until
            The end of the period (study time unit), > 0.
        activation_energy_kj
            ``ΔH``, kJ/mol (USP's 83.144 by default).

        Returns
        -------
        float
            The mean kinetic temperature, °C (:func:`mean_kinetic_temperature` of the periods'
            temperatures weighted by their time within ``[0, until]``).

        Raises
        ------
        ConfigError
            ``until`` is not a positive time; a non-positive activation energy.
        """
        if not (np.isfinite(until) and until > 0):
            raise ConfigError(f"until must be a positive time; got {until!r}.")
        ov, temps = self._overlap(np.asarray([until], dtype=float))
        return mean_kinetic_temperature(temps, ov[0], activation_energy_kj=activation_energy_kj)

    # -- presentation and persistence -------------------------------------------------------
    def describe(self) -> str:
        """A short text for tables and plots.

        Returns
        -------
        str
            The label, or ``"5 °C"``, ``"5 °C; 25 °C from 6 for 0.25"`` (plain text: escape it before
            putting it in Markdown, as a label may come from data).
        """
        if self.label:
            return self.label
        text = f"{self.base_temperature_c:g} °C"
        parts = [f"{temp:g} °C from {s:g} for {d:g}" for s, d, temp in self.segments if d > 0]
        return "; ".join([text, *parts])

    def to_frame(self, until: float | None = None) -> pl.DataFrame:
        """The periods as a frame.

        Parameters
        ----------
        until
            Where the last period ends (study time unit; default: infinity).

        Returns
        -------
        polars.DataFrame
            ``start, end, duration, temperature_c`` (times in the study's unit, °C).
        """
        starts, temps = self.pieces()
        ends = np.append(starts[1:], np.inf if until is None else max(float(until), starts[-1]))
        return pl.DataFrame({"start": starts, "end": ends, "duration": ends - starts, "temperature_c": temps})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (round trip with :meth:`from_dict`).

        Returns
        -------
        dict
            ``base_temperature_c``, ``segments`` (lists ``[start, duration, temperature_c]``), ``label``.
        """
        return {
            "base_temperature_c": self.base_temperature_c,
            "segments": [list(s) for s in self.segments],
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TemperatureHistory:
        """The history saved by :meth:`to_dict`.

        Parameters
        ----------
        d
            The mapping of :meth:`to_dict`.

        Returns
        -------
        TemperatureHistory
            The history.

        Raises
        ------
        KeyError
            No ``base_temperature_c``.
        ConfigError
            Invalid periods or temperatures.
        """
        return cls(float(d["base_temperature_c"]), tuple(tuple(s) for s in d.get("segments", ())), d.get("label"))
