"""The batch forecast: honest about time (nothing from a batch's future), planned changes named and
overridable, time arguments in hours or days, predictive end points, and a forecast without titer.

Fast: tiny draws (the numbers are not read for accuracy, only for their definitions and for being
identical when they must be); nutpie compiles each model structure once per process. Calibration is measured in tests/test_forecast_slow.py
and benchmarks/bench_forecast.py.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.models import diagnostics_markdown, forecast

TINY = {"draws": 40, "tune": 40, "chains": 1, "random_seed": 5}
# tiny draws do not converge; the forecasts' warnings about it are not what these tests look at
pytestmark = pytest.mark.filterwarnings("ignore::bioworkbench.errors.BioWorkbenchWarning")
RUNNING = "B07"  # shift planned on day 6 (cpp_temp_shift_day), made at 144 h
SHIFTED = "B08"  # shift made on day 4 (96 h)


@pytest.fixture(scope="module")
def camp():
    # 8 batches: B01 aborted, B02-B08 completed; shift days 4 or 6
    return bw.simulate_campaign(n_batches=8, random_seed=21, online_interval_min=240)


@pytest.fixture(scope="module")
def fc4(camp):
    return forecast(camp, RUNNING, known_days=4, **TINY)


def _ends(fc) -> pl.DataFrame:
    return fc.endpoints.sort("batch_id", "quantity")


def test_known_days_is_known_h_in_days(camp, fc4):
    again = forecast(camp, RUNNING, known_h=96.0, **TINY)
    assert fc4.known_h == again.known_h == {RUNNING: 96.0}
    assert_frame_equal(_ends(fc4), _ends(again))
    with pytest.raises(
        bw.ArgumentError, match=r"give exactly one of known_h \(hours\) and known_days \(days\); got both"
    ):
        forecast(camp, RUNNING, known_h=96.0, known_days=4, **TINY)
    with pytest.raises(bw.ArgumentError, match="got neither"):
        forecast(camp, RUNNING, **TINY)


def test_small_known_h_says_how_many_points_and_hints_days(camp):
    with pytest.raises(bw.SchemaError) as e:
        forecast(camp, RUNNING, known_h=5, **TINY)
    msg = str(e.value)
    assert f"batch {RUNNING} has 1 VCD sample up to 5 h (day 0.2); a forecast needs at least 2" in msg
    assert "Hint: known_h is in hours; did you mean known_h=120 (5 days)? (or known_days=5)" in msg
    # a value of a day or more is taken as hours without a hint
    with pytest.raises(bw.SchemaError, match="has 1 VCD sample up to 24 h") as e:
        forecast(camp, RUNNING, known_h=24, **TINY)
    assert "did you mean" not in str(e.value)


def test_forecast_reads_nothing_from_the_batch_future(camp, fc4):
    # the same forecast from a campaign that holds only what was known on day 4 ...
    cut = forecast(camp.as_of(96.0, batch_ids=[RUNNING]), RUNNING, known_days=4, **TINY)
    assert_frame_equal(_ends(fc4), _ends(cut))
    # ... and from one whose future shift event says something else: the event is not read
    moved = camp.events.with_columns(
        time_h=pl.when((pl.col("batch_id") == RUNNING) & (pl.col("event") == "shift"))
        .then(pl.lit(200.0))
        .otherwise("time_h")
    )
    other = forecast(bw.Campaign(**{**camp.frames(), "events": moved}), RUNNING, known_days=4, **TINY)
    assert_frame_equal(_ends(fc4), _ends(other))


def test_planned_shift_comes_from_the_setpoint_and_is_said(fc4):
    plan = fc4.plan.row(0, named=True)
    assert plan == {
        "batch_id": RUNNING,
        "change": "temperature shift",
        "time_h": 144.0,
        "day": 6.0,
        "status": "planned",
        "source": "cpp_temp_shift_day",
    }
    assert "assuming the planned temperature shift on day 6 (cpp_temp_shift_day)" in fc4.sentence(RUNNING)


def test_shift_already_made_is_used_as_recorded(camp):
    fc = forecast(camp, SHIFTED, known_days=5, **TINY)
    assert fc.plan.select("time_h", "status", "source").row(0) == (96.0, "done", "shift event")
    assert "with the temperature shift made on day 4" in fc.sentence()
    with pytest.raises(bw.ConfigError, match=r"plan for batch B08: its temperature shift was already made at 96 h"):
        forecast(camp, SHIFTED, known_days=5, plan={SHIFTED: {"temp_shift_day": 7}}, **TINY)


def test_plan_overrides_the_setpoint(camp, fc4):
    fc = forecast(camp, RUNNING, known_days=4, plan={RUNNING: {"temp_shift_day": 9}}, **TINY)
    assert fc.plan.select("time_h", "status", "source").row(0) == (216.0, "planned", "plan (temp_shift_day=9)")
    assert "assuming the planned temperature shift on day 9 (plan (temp_shift_day=9))" in fc.sentence()
    # the shift splits the IVCD into the parts before and after it: a later shift changes the titer
    ft = [f.endpoints.filter(pl.col("quantity") == "final_titer")["mean"][0] for f in (fc4, fc)]
    assert ft[0] != pytest.approx(ft[1], rel=1e-3)
    hours = forecast(camp, RUNNING, known_days=4, plan={RUNNING: {"temp_shift_h": 216.0}}, **TINY)
    assert_frame_equal(_ends(fc), _ends(hours))
    none = forecast(camp, RUNNING, known_days=4, plan={RUNNING: {"temp_shift_day": None}}, **TINY)
    assert none.plan["status"][0] == "none" and "assuming no temperature shift" in none.sentence()


@pytest.mark.parametrize(
    ("plan", "error", "text"),
    [
        ({"B05": {"temp_shift_day": 6}}, bw.ConfigError, r"plan names batch\(es\) 'B05' that are not forecast"),
        ({RUNNING: {"temp_shift_days": 6}}, bw.ConfigError, r"Did you mean 'temp_shift_day'\?"),
        ({RUNNING: {"temp_shift_day": 6, "temp_shift_h": 150}}, bw.ConfigError, "must have exactly one of"),
        ({RUNNING: {"temp_shift_day": "6 d"}}, bw.ArgumentError, r"plan\['B07'\]\['temp_shift_day'\] must be"),
        ({RUNNING: 6}, bw.ArgumentError, r"plan\['B07'\] must be a mapping"),
        ([6], bw.ArgumentError, "plan must map batch ids to their planned changes"),
    ],
)
def test_plan_is_validated(camp, plan, error, text):
    with pytest.raises(error, match=text):
        forecast(camp, RUNNING, known_days=4, plan=plan, **TINY)


def test_end_points_are_predictive_measured_quantities(camp, fc4):
    e = fc4.endpoints
    assert set(e["quantity"]) == {"final_titer", "peak_vcd", "time_of_peak", "final_ivcd", "p_below_spec"}
    assert e["definition"].null_count() == 0
    # the highest of samples with log-Student-t errors has no mean: the point forecast is the median
    pk = e.filter(pl.col("quantity") == "peak_vcd").row(0, named=True)
    assert pk["mean"] is None and pk["lower"] <= pk["median"] <= pk["upper"]
    assert f"a peak VCD of {pk['median']:.1f}" in fc4.sentence()
    # day of peak: a culture day of the sampling schedule, with whole-day bounds
    tp = e.filter(pl.col("quantity") == "time_of_peak").row(0, named=True)
    assert tp["lower"] == int(tp["lower"]) and tp["upper"] == int(tp["upper"])
    assert set(range(int(tp["lower"]), int(tp["upper"]) + 1)) <= set(fc4.sample_days)
    assert fc4.sample_days == list(range(15))  # the demo samples daily, day 0 to 14
    # the highest sample can only be at least the highest sample already measured
    known_max = camp.observations.filter(
        (pl.col("batch_id") == RUNNING)
        & (pl.col("variable") == "vcd")
        & (pl.col("source") != "online")
        & (pl.col("time_h") <= 96.0)
    )["value"].max()
    assert e.filter(pl.col("quantity") == "peak_vcd")["lower"][0] >= known_max
    assert set(fc4.trajectory["variable"]) == {"vcd", "titer"}


def test_several_batches_cut_at_once(camp):
    fc = forecast(camp, ["B06", RUNNING], known_h={"B06": 120.0, RUNNING: 96.0}, **TINY)
    assert fc.known_h == {"B06": 120.0, RUNNING: 96.0}
    assert set(fc.history) == {"B02", "B03", "B04", "B05", "B08"}  # completed, not running; B01 aborted
    assert fc.endpoints.filter(pl.col("quantity") == "peak_vcd")["batch_id"].to_list() == ["B06", RUNNING]
    with pytest.raises(bw.ArgumentError, match=r"known_h must give a time for each running batch.*missing: B07"):
        forecast(camp, ["B06", RUNNING], known_h={"B06": 120.0}, **TINY)


def test_forecast_without_titer_is_growth_only(camp):
    no_titer = bw.Campaign(**{**camp.frames(), "observations": camp.observations.filter(pl.col("variable") != "titer")})
    fc = forecast(no_titer, RUNNING, known_days=4, **TINY)
    assert set(fc.endpoints["quantity"]) == {"peak_vcd", "time_of_peak", "final_ivcd"}
    assert set(fc.trajectory["variable"]) == {"vcd"}
    assert fc.titer is None and fc.diagnostics["titer"] is None and fc.spec_lower is None
    assert "no titer forecast: no titer data" in fc.sentence()
    assert diagnostics_markdown(fc.diagnostics["titer"], name="Titer model") == "**Titer model**: not fitted."


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"prob": 90}, bw.ArgumentError, r"forecast: prob must be a probability .* Did you mean 0.9\?"),
        ({"known_days": "5 d"}, bw.ArgumentError, "forecast: known_days must be a finite number >= 0"),
        ({"known_h": -1.0}, bw.ArgumentError, "forecast: known_h must be a finite number >= 0"),
        ({"known_days": 4, "history": [RUNNING]}, bw.SchemaError, r"B07 are both running and in the history"),
        ({"known_days": 4, "history": ["B99"]}, bw.SchemaError, r"batch 'B99' is not in campaign"),
        ({"known_days": 4, "draws": 0}, bw.ArgumentError, "forecast: draws must be an integer >= 1"),
    ],
)
def test_arguments_are_checked(camp, kwargs, error, text):
    base = {k: v for k, v in TINY.items() if k not in kwargs}
    if "known_days" not in kwargs and "known_h" not in kwargs:
        base["known_days"] = 4
    with pytest.raises(error, match=text):
        forecast(camp, RUNNING, **base, **kwargs)


def test_not_a_campaign_or_unknown_batch(camp):
    with pytest.raises(bw.ArgumentError, match="forecast: campaign must be a Campaign; got a polars DataFrame"):
        forecast(camp.observations, RUNNING, known_days=4)
    with pytest.raises(bw.SchemaError, match=r"forecast: batch 'B7' is not in campaign.*Did you mean 'B07'"):
        forecast(camp, "B7", known_days=4)


def test_same_seed_same_forecast(camp, fc4):
    again = forecast(camp, RUNNING, known_days=4, **TINY)
    assert_frame_equal(_ends(fc4), _ends(again))
    np.testing.assert_array_equal(fc4.trajectory["mean"].to_numpy(), again.trajectory["mean"].to_numpy())


def test_forecast_samples_both_models_at_its_own_step_size_unless_told(camp, fc4):
    from bioworkbench.models.sampling import sampler_defaults

    own = sampler_defaults("forecast").nutpie_target_accept
    for model in (fc4.growth, fc4.titer):
        if model.sampling["backend"] == "nutpie":
            assert model.sampling["target_accept"] == own
    told = forecast(camp, RUNNING, known_days=4, sampler={"nutpie_target_accept": 0.7}, **TINY)
    assert told.growth.sampler["nutpie_target_accept"] == 0.7
    with pytest.raises(bw.ConfigError, match=r"nutpie_target_accept must be a number between 0 and 1; got 1\.5"):
        forecast(camp, RUNNING, known_days=4, sampler={"nutpie_target_accept": 1.5}, **TINY)
