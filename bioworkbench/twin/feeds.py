"""Feed plans: a batch's events (feeds, boluses, base, samples, temperature shifts) and continuous feeds.

A :class:`FeedPlan` is what the twin integrates over and what a what-if changes: it holds one
batch's rows of the events frame (the project's events schema) and, separately, continuous feeds
(which the events schema, holding instantaneous volumes only, cannot express). It turns into the
solver's arrays with :meth:`FeedPlan.to_solver`, taking each medium's concentrations from the
campaign's ``media`` frame.

Notes
-----
**Volume events** (rows of the events frame): ``sample`` and ``harvest`` remove ``volume_ml``
(a harvest ends the batch and is not applied); ``feed``, ``bolus`` and ``base`` add ``volume_ml`` of
``medium`` (a ``base`` without a medium only dilutes). An addition of :math:`v` mL of a medium of
concentration :math:`c` mixes as :math:`C \\leftarrow (CV + cv)/(V+v)`.

**Temperature**: a ``shift`` event whose note reads ``temperature A -> B degC`` sets the set point to
B from its time on; the set point before the first shift is A (or ``initial_temperature_c``).
Other shift notes (pH, DO) do not change the model's inputs. The culture does not jump to a new set
point: the jacket's control brings it there in hours. The model's temperature follows each set point
change as a first-order approach, :math:`T(t) = T_{sp} + (T_0 - T_{sp})e^{-(t-t_s)/\tau}` with
:data:`TEMPERATURE_TAU_H` (2 h, the order of a bench-scale reactor's cooling; ``temperature_tau_h=``
of :meth:`FeedPlan.to_solver` changes it, 0 makes steps), as the solver's piecewise-constant inputs:
steps of :data:`TEMPERATURE_STEP_H` for four time constants, each holding the exact mean of
:math:`T(t)` over its step (so the temperature's integral is kept), then the set point.

**Continuous feeds**: ``ml_per_h`` of ``medium`` from ``start_h`` to ``stop_h``; overlapping feeds add
up, their inflow concentration being the flow-weighted mean of their media.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, suggest
from bioworkbench.schema.frames import ADDITIONS, MEDIUM_EVENTS, REMOVALS, schema_of
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.solver import SolverEvents
from bioworkbench.variables import get_variable

__all__ = ["TEMPERATURE_STEP_H", "TEMPERATURE_TAU_H", "FeedPlan"]

#: h, time constant of the culture's approach to a new temperature set point
TEMPERATURE_TAU_H = 2.0
#: h, the steps in which the solver's temperature input follows that approach
TEMPERATURE_STEP_H = 0.5

_SHIFT = re.compile(r"temperature\s+(-?\d+(?:\.\d+)?)\s*->\s*(-?\d+(?:\.\d+)?)\s*degC", re.IGNORECASE)
_CONTINUOUS_SCHEMA = {"start_h": pl.Float64, "stop_h": pl.Float64, "ml_per_h": pl.Float64, "medium": pl.String}
#: the input columns of the continuous feed's concentrations, by state index
_INPUT_OF_STATE = {
    s: K.INPUT_NAMES.index(f"{K.STATE_NAMES[s]}_in")
    for s in (*K.MEDIUM_STATE_INDEX.values(), *(dst for dst, _ in K.MEDIUM_COPIES))
}


def _empty_continuous() -> pl.DataFrame:
    return pl.DataFrame(schema=_CONTINUOUS_SCHEMA)


@dataclass(frozen=True)
class FeedPlan:
    """One batch's events and continuous feeds; every method returns a new plan.

    Parameters
    ----------
    events
        The batch's rows of the events frame (events schema), sorted by time (stable).
    continuous_feeds
        Columns ``start_h, stop_h, ml_per_h, medium``; ``stop_h`` null means until the end.
    batch_id
        The batch the plan belongs to (new rows get it).
    """

    events: pl.DataFrame
    continuous_feeds: pl.DataFrame = field(default_factory=_empty_continuous)
    batch_id: str | None = None

    @classmethod
    def from_events(cls, events: pl.DataFrame, *, batch_id: str | None = None) -> FeedPlan:
        """The plan of one batch from an events frame.

        Parameters
        ----------
        events
            A frame in the events schema.
        batch_id
            The batch to take; may be left out when the frame holds one batch.

        Returns
        -------
        FeedPlan

        Raises
        ------
        ConfigError
            Missing columns, several batches without ``batch_id``, or an unknown ``batch_id``.
        """
        schema = schema_of("events")
        missing = [c for c in schema if c not in events.columns]
        if missing:
            raise ConfigError(
                f"FeedPlan.from_events: the events frame lacks column(s) {missing}; expected {list(schema)}."
            )
        ids = events["batch_id"].unique(maintain_order=True).to_list()
        if batch_id is None:
            if len(ids) > 1:
                raise ConfigError(
                    f"FeedPlan.from_events: the events frame holds {len(ids)} batches; pass batch_id=. "
                    + suggest(None, ids, what="Batches")
                )
            batch_id = ids[0] if ids else None
        elif batch_id not in ids:
            raise ConfigError(
                f"FeedPlan.from_events: no events for batch {batch_id!r}. " + suggest(batch_id, ids, what="Batches")
            )
        rows = events.filter(pl.col("batch_id") == batch_id) if batch_id is not None else events
        rows = rows.select(list(schema)).cast(schema).with_row_index("_order").sort("time_h", "_order").drop("_order")
        return cls(rows, _empty_continuous(), batch_id)

    def to_events(self) -> pl.DataFrame:
        """The plan as rows of the events schema.

        Returns
        -------
        polars.DataFrame

        Raises
        ------
        ConfigError
            If the plan holds continuous feeds, which the events schema cannot express.
        """
        if self.continuous_feeds.height:
            raise ConfigError(
                f"FeedPlan.to_events: the plan holds {self.continuous_feeds.height} continuous feed(s), which the "
                "events schema (instantaneous volumes) cannot express; read them from plan.continuous_feeds."
            )
        return self.events

    def scaled(self, factor: float, *, from_h: float = 0.0, kinds: Sequence[str] = ("feed",)) -> FeedPlan:
        """Scale the feeds from a time on: "feed 10 % more from day 6" is ``plan.scaled(1.1, from_h=144)``.

        Parameters
        ----------
        factor
            Multiplier of the volumes (and continuous rates); non-negative.
        from_h
            Events at or after this time are scaled; a continuous feed running across it is split.
        kinds
            Event kinds scaled (``"feed"`` by default; add ``"bolus"`` to scale boluses too).

        Returns
        -------
        FeedPlan

        Raises
        ------
        ConfigError
            A negative factor, or a kind that is not an addition.
        """
        if not factor >= 0:
            raise ConfigError(f"FeedPlan.scaled: factor must be >= 0, got {factor!r}.")
        bad = [k for k in kinds if k not in ADDITIONS]
        if bad:
            raise ConfigError(f"FeedPlan.scaled: kinds {bad} are not additions; valid kinds: {', '.join(ADDITIONS)}.")
        hit = pl.col("event").is_in(list(kinds)) & (pl.col("time_h") >= from_h)
        events = self.events.with_columns(
            pl.when(hit).then(pl.col("volume_ml") * factor).otherwise(pl.col("volume_ml")).alias("volume_ml")
        )
        c = self.continuous_feeds
        stop = pl.col("stop_h").fill_null(np.inf)
        before = c.filter(pl.col("start_h") < from_h).with_columns(
            pl.when(stop > from_h).then(pl.lit(from_h)).otherwise(pl.col("stop_h")).alias("stop_h")
        )
        after = c.filter(stop > from_h).with_columns(
            pl.max_horizontal(pl.col("start_h"), pl.lit(from_h)).alias("start_h"),
            (pl.col("ml_per_h") * factor).alias("ml_per_h"),
        )
        cont = pl.concat([before, after]).sort("start_h", maintain_order=True)
        return FeedPlan(events, cont, self.batch_id)

    def bolus(
        self, times_h: float | Iterable[float], volume_ml: float, medium: str, *, event: str = "feed"
    ) -> FeedPlan:
        """Add instantaneous additions of ``volume_ml`` of ``medium`` at each of ``times_h``.

        Parameters
        ----------
        times_h
            One time or several (h).
        volume_ml
            Volume of each addition (mL), positive.
        medium
            A medium of the media frame.
        event
            The event kind written: ``"feed"`` (default), ``"bolus"`` or ``"base"``.

        Returns
        -------
        FeedPlan

        Raises
        ------
        ConfigError
            A non-positive volume or an event kind that is not an addition.
        """
        times = [float(t) for t in np.atleast_1d(np.asarray(times_h, dtype=np.float64))]
        if not volume_ml > 0:
            raise ConfigError(f"FeedPlan.bolus: volume_ml must be positive, got {volume_ml!r}.")
        if event not in ADDITIONS:
            raise ConfigError(f"FeedPlan.bolus: event {event!r} is not an addition; valid: {', '.join(ADDITIONS)}.")
        new = pl.DataFrame(
            {
                "batch_id": [self.batch_id] * len(times),
                "time_h": times,
                "event": [event] * len(times),
                "volume_ml": [float(volume_ml)] * len(times),
                "medium": [medium] * len(times),
                "note": [None] * len(times),
            },
            schema=schema_of("events"),
        )
        rows = pl.concat([self.events, new]).with_row_index("_order").sort("time_h", "_order").drop("_order")
        return FeedPlan(rows, self.continuous_feeds, self.batch_id)

    def continuous(self, start_h: float, ml_per_h: float, medium: str, *, stop_h: float | None = None) -> FeedPlan:
        """Add a continuous feed of ``ml_per_h`` of ``medium`` from ``start_h`` (to ``stop_h``, or the end).

        Parameters
        ----------
        start_h
            Start (h).
        ml_per_h
            Flow (mL/h), non-negative.
        medium
            A medium of the media frame.
        stop_h
            End (h), after ``start_h``; None runs to the end of the batch.

        Returns
        -------
        FeedPlan

        Raises
        ------
        ConfigError
            A negative flow or ``stop_h <= start_h``.
        """
        if not ml_per_h >= 0:
            raise ConfigError(f"FeedPlan.continuous: ml_per_h must be >= 0, got {ml_per_h!r}.")
        if stop_h is not None and not stop_h > start_h:
            raise ConfigError(f"FeedPlan.continuous: stop_h ({stop_h!r}) must be after start_h ({start_h!r}).")
        row = pl.DataFrame(
            {"start_h": [float(start_h)], "stop_h": [stop_h], "ml_per_h": [float(ml_per_h)], "medium": [medium]},
            schema=_CONTINUOUS_SCHEMA,
        )
        cont = pl.concat([self.continuous_feeds, row]).sort("start_h", maintain_order=True)
        return FeedPlan(self.events, cont, self.batch_id)

    def temperature_profile(self, *, initial_temperature_c: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The temperature set point as steps: times (h) from which each value (degC) holds.

        Parameters
        ----------
        initial_temperature_c
            Set point before the first shift; by default the "from" value of the first temperature
            shift, or 36.5 degC without one.

        Returns
        -------
        tuple of numpy.ndarray
            ``(times_h, temperature_c)``, the first time ``-inf``.
        """
        shifts = self.events.filter(pl.col("event") == "shift")
        times, temps = [-np.inf], [initial_temperature_c]
        for t, note in zip(shifts["time_h"].to_list(), shifts["note"].to_list(), strict=True):
            m = _SHIFT.search(note or "")
            if m is None:
                continue
            if temps[0] is None:
                temps[0] = float(m.group(1))
            times.append(float(t))
            temps.append(float(m.group(2)))
        if temps[0] is None:
            temps[0] = 36.5
        return np.array(times), np.array(temps, dtype=np.float64)

    def temperature_course(
        self, *, initial_temperature_c: float | None = None, tau_h: float = TEMPERATURE_TAU_H
    ) -> tuple[np.ndarray, np.ndarray]:
        """The culture's temperature as steps: the set points approached first-order (see the module's Notes).

        Parameters
        ----------
        initial_temperature_c
            See :meth:`temperature_profile`.
        tau_h
            Time constant of the approach (h); 0 gives the set points' steps.

        Returns
        -------
        tuple of numpy.ndarray
            ``(times_h, temperature_c)``, the first time ``-inf``: each value holds from its time on.

        Raises
        ------
        ConfigError
            A negative or non-finite ``tau_h``.
        """
        if not (np.isfinite(tau_h) and tau_h >= 0):
            raise ConfigError(f"FeedPlan.temperature_course: tau_h must be a time >= 0 (h), got {tau_h!r}.")
        t_sp, sp = self.temperature_profile(initial_temperature_c=initial_temperature_c)
        if tau_h == 0 or t_sp.size == 1:
            return t_sp, sp
        n = int(np.ceil(4.0 * tau_h / TEMPERATURE_STEP_H))  # steps until the set point is taken as reached
        times, temps = [-np.inf], [float(sp[0])]
        current = float(sp[0])  # the culture's temperature when the next set point is given
        for i in range(1, t_sp.size):
            start, target = float(t_sp[i]), float(sp[i])
            end = float(t_sp[i + 1]) if i + 1 < t_sp.size else np.inf
            for k in range(n):
                a = start + k * TEMPERATURE_STEP_H
                if a >= end:
                    break
                b = min(a + TEMPERATURE_STEP_H, end)
                decay_a, decay_b = np.exp(-(a - start) / tau_h), np.exp(-(b - start) / tau_h)
                times.append(a)  # the exact mean of T over [a, b]
                temps.append(target + (current - target) * tau_h * (decay_a - decay_b) / (b - a))
            reached = start + n * TEMPERATURE_STEP_H
            if reached < end:
                times.append(reached)
                temps.append(target)
                current = target
            else:  # the next set point comes before this one is reached
                current = target + (current - target) * np.exp(-(end - start) / tau_h)
        return np.array(times), np.array(temps, dtype=np.float64)

    def media_concentrations(self, media: pl.DataFrame) -> dict[str, np.ndarray]:
        """Each medium the plan uses as a concentration vector over the model's states.

        Parameters
        ----------
        media
            The media frame (``medium, variable, concentration, unit``).

        Returns
        -------
        dict[str, numpy.ndarray]
            Medium -> shape ``(NY,)`` concentrations (0 for states the medium does not list; variables
            the model does not track, such as glutamate, are left out). A hidden state declared on a
            listed variable (``_kernels.MEDIUM_COPIES``: the lumped amino acids, in glutamine
            equivalents) takes that variable's concentration.

        Raises
        ------
        ConfigError
            A medium the plan uses is not in ``media``, or a concentration is not in the variable's
            canonical unit.
        """
        used = set(self.events.filter(pl.col("medium").is_not_null())["medium"].to_list())
        used |= set(self.continuous_feeds["medium"].to_list())
        known = set(media["medium"].to_list())
        problems = [
            f"medium {m!r} is not in the media frame. " + suggest(m, sorted(known), what="Known media")
            for m in sorted(used - known)
        ]
        out: dict[str, np.ndarray] = {}
        for m in sorted(used & known):
            conc = np.zeros(K.NY)
            for var, value, unit in (
                media.filter(pl.col("medium") == m).select("variable", "concentration", "unit").rows()
            ):
                if var not in K.MEDIUM_STATE_INDEX:
                    continue
                canonical = get_variable(var).unit
                if unit != canonical:
                    problems.append(
                        f"medium {m!r}, {var}: concentration in {unit!r}; expected the canonical {canonical!r}"
                    )
                    continue
                conc[K.MEDIUM_STATE_INDEX[var]] = value
            for dst, src in K.MEDIUM_COPIES:  # a hidden state carried in proportion to a listed variable
                conc[dst] = conc[src]
            out[m] = conc
        if problems:
            raise ConfigError("FeedPlan: " + "; ".join(problems) + ".")
        return out

    def to_solver(
        self,
        media: pl.DataFrame,
        *,
        initial_temperature_c: float | None = None,
        temperature_tau_h: float = TEMPERATURE_TAU_H,
    ) -> SolverEvents:
        """The solver's arrays: jumps for the volume events, steps of the inputs (temperature, continuous feeds).

        Parameters
        ----------
        media
            The media frame, for each medium's concentrations.
        initial_temperature_c
            See :meth:`temperature_profile`.
        temperature_tau_h
            Time constant of the culture's approach to a new set point (h; see :meth:`temperature_course`).

        Returns
        -------
        SolverEvents

        Raises
        ------
        ConfigError
            A removal or addition without a volume, a feed or bolus without a medium, or an unknown
            medium (all problems in one message, with the rows' times).
        """
        conc = self.media_concentrations(media)
        ev = self.events.filter(pl.col("event").is_in([*ADDITIONS, "sample"]))
        problems = []
        for t, kind, vol, med in ev.select("time_h", "event", "volume_ml", "medium").rows():
            if vol is None or not vol >= 0:
                problems.append(f"{kind} at {t:g} h has volume_ml {vol!r}; expected a volume >= 0")
            if kind in MEDIUM_EVENTS and med is None:
                problems.append(f"{kind} at {t:g} h names no medium")
        if problems:
            raise ConfigError(f"FeedPlan.to_solver (batch {self.batch_id}): " + "; ".join(problems) + ".")
        n = ev.height
        jt = ev["time_h"].to_numpy().astype(np.float64)
        vol = ev["volume_ml"].to_numpy().astype(np.float64)
        removal = ev["event"].is_in(list(REMOVALS)).to_numpy()
        jc = np.zeros((n, K.NY))
        for i, med in enumerate(ev["medium"].to_list()):
            if not removal[i] and med is not None:
                jc[i] = conc[med]
        v_out = np.where(removal, vol, 0.0)
        v_in = np.where(removal, 0.0, vol)

        t_temp, temps = self.temperature_course(initial_temperature_c=initial_temperature_c, tau_h=temperature_tau_h)
        cont = self.continuous_feeds
        starts = cont["start_h"].to_numpy().astype(np.float64)
        stops = cont["stop_h"].fill_null(np.inf).to_numpy().astype(np.float64)
        rates = cont["ml_per_h"].to_numpy().astype(np.float64)
        media_rows = np.array([conc[m] for m in cont["medium"].to_list()]).reshape(cont.height, K.NY)
        change = np.unique(np.concatenate([t_temp, starts, stops[np.isfinite(stops)]]))
        inputs = np.zeros((change.shape[0], K.NU))
        for r, t in enumerate(change):
            inputs[r, 0] = temps[np.searchsorted(t_temp, t, side="right") - 1]
            active = (starts <= t) & (stops > t)
            flow = rates[active].sum()
            inputs[r, 1] = flow
            if flow > 0:
                mix = (rates[active, None] * media_rows[active]).sum(axis=0) / flow
                for s, col in _INPUT_OF_STATE.items():
                    inputs[r, col] = mix[s]
        return SolverEvents(jt, v_out, v_in, jc, change, inputs)
