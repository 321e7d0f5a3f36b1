"""Tests of the CHO fed-batch campaign simulator (bioworkbench.simulate)."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench import schema
from bioworkbench.errors import ConfigError
from bioworkbench.simulate import CPP_LEVELS, _simulate_frames, simulate_campaign

FRAME_NAMES = ("batches", "observations", "events", "media", "quality", "specs")
OFFLINE = {
    "vcd",
    "tcd",
    "viability",
    "glucose",
    "lactate",
    "glutamine",
    "glutamate",
    "ammonium",
    "titer",
    "osmolality",
    "volume",
    "ph",
}
ONLINE = {"ph", "do", "temperature", "pco2"}


@pytest.fixture(scope="module")
def demo() -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    """The default demo campaign (24 batches, seed 0) as frames, and its truth."""
    return _simulate_frames(24, 0)


@pytest.fixture(scope="module")
def frames(demo) -> dict[str, pl.DataFrame]:
    return demo[0]


@pytest.fixture(scope="module")
def truth(demo) -> pl.DataFrame:
    return demo[1]


@pytest.fixture(scope="module")
def offline_wide(frames) -> pl.DataFrame:
    """Offline observations, one row per sample, one column per variable."""
    return (
        frames["observations"]
        .filter(pl.col("source") == "offline")
        .pivot(on="variable", index=["batch_id", "time_h"], values="value")
        .sort("batch_id", "time_h")
    )


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_gives_identical_frames():
    a, truth_a = _simulate_frames(6, 3, online_interval_min=60)
    b, truth_b = _simulate_frames(6, 3, online_interval_min=60)
    for name in (*FRAME_NAMES, "_additions"):
        assert_frame_equal(a[name], b[name])
    assert_frame_equal(truth_a, truth_b)


def test_different_seed_gives_different_campaign():
    a, _ = _simulate_frames(6, 3, online_interval_min=60)
    b, _ = _simulate_frames(6, 4, online_interval_min=60)
    assert not a["observations"].equals(b["observations"])
    assert not a["quality"].equals(b["quality"])


# -- schema -----------------------------------------------------------------------------------
def test_frames_pass_coerce_and_validate(frames):
    ids = frames["batches"]["batch_id"]
    for name in FRAME_NAMES:
        coerced, issues = schema.coerce_frame(name, frames[name])
        issues += schema.validate_frame(name, coerced, batch_ids=ids, media=frames["media"])
        assert issues == [], f"{name}: {[i.format() for i in issues[:5]]}"
        # already in the frame's types: coercion changes nothing
        assert_frame_equal(coerced.select(frames[name].columns), frames[name])


def test_observation_columns_and_canonical_units(frames):
    obs = frames["observations"]
    assert obs.columns == [c.name for c in schema.FRAMES["observations"]]
    assert obs.schema == schema.schema_of("observations")
    units = obs.select("variable", "unit").unique()
    for variable, unit in units.iter_rows():
        assert unit == schema.get_variable(variable).unit, variable
    for variable, unit in frames["media"].select("variable", "unit").iter_rows():
        assert unit == schema.get_variable(variable).unit
    assert set(obs["source"].unique()) == {"offline", "online"}
    assert set(obs.filter(pl.col("source") == "offline")["variable"].unique()) == OFFLINE
    assert set(obs.filter(pl.col("source") == "online")["variable"].unique()) == ONLINE
    assert obs["source_file"].unique().to_list() == ["simulate_campaign(random_seed=0)"]
    assert obs["source_line"].null_count() == obs.height


def test_values_possible_and_unique(frames):
    obs = frames["observations"]
    assert obs["value"].null_count() == 0
    assert obs["value"].min() >= 0
    for variable, lo, hi in (
        obs.group_by("variable").agg(pl.col("value").min().alias("lo"), pl.col("value").max().alias("hi")).iter_rows()
    ):
        var = schema.get_variable(variable)
        assert var.min <= lo <= hi <= var.max, variable
    key = ["batch_id", "time_h", "variable", "source"]
    assert not obs.select(pl.struct(key).is_duplicated().any()).item()
    assert obs.equals(obs.sort(key, maintain_order=True))


def test_lod_flags_keep_the_value(frames):
    flagged = frames["observations"].filter(pl.col("flag").is_not_null())
    assert flagged.height > 0
    assert flagged["flag"].unique().to_list() == ["<LOD"]
    assert flagged["flag_reason"].null_count() == 0
    assert flagged["value"].null_count() == 0
    assert (flagged["value"] >= 0).all()
    assert set(flagged["source"].unique()) == {"offline"}
    unflagged = frames["observations"].filter(pl.col("flag").is_null())
    assert unflagged["flag_reason"].null_count() == unflagged.height


def test_batches_design_and_ids(frames):
    batches = frames["batches"]
    assert batches["batch_id"].to_list() == [f"B{i:02d}" for i in range(1, 25)]
    assert batches.schema["start"] == pl.Datetime("us", "UTC")
    assert batches["batch_id"].is_unique().all()
    assert set(batches["product"]) == {"mAb-A"}
    assert set(batches["scale_l"]) == {2.0}
    assert sorted(batches["status"].unique()) == ["aborted", "completed"]
    for cpp in CPP_LEVELS:
        assert batches.schema[cpp] == pl.Float64
    # 2^3 factorial + 4 centre points, twice
    runs = batches.group_by(list(CPP_LEVELS)).len()
    centre = tuple(levels[1] for levels in CPP_LEVELS.values())
    counts = {row[:3]: row[3] for row in runs.iter_rows()}
    assert counts.pop(centre) == 8
    assert len(counts) == 8 and set(counts.values()) == {2}


def test_batch_id_width_follows_n_batches():
    frames, _ = _simulate_frames(100, 1, online_interval_min=240, days=4)
    ids = frames["batches"]["batch_id"].to_list()
    assert ids[0] == "B001" and ids[-1] == "B100"


def test_events_media_quality_specs(frames):
    events, media = frames["events"], frames["media"]
    assert set(events["event"].unique()) <= set(schema.EVENT_KINDS)
    assert set(events.filter(pl.col("medium").is_not_null())["medium"]) <= set(media["medium"])
    assert {"FeedA", "Glc", "Base"} <= set(media["medium"])
    moved = events.filter(pl.col("event").is_in(["sample", "harvest", "feed", "bolus", "base"]))
    assert moved["volume_ml"].null_count() == 0 and (moved["volume_ml"] >= 0).all()
    for kind in ("inoculation", "shift", "harvest"):
        assert events.filter(pl.col("event") == kind).height == 24, kind
    assert (events.filter(pl.col("event") == "inoculation")["time_h"] == 0).all()
    # samples come before the additions made at the same time
    first = events.group_by("batch_id", "time_h", maintain_order=True).first()
    at_sample = first.join(
        events.filter(pl.col("event") == "sample").select("batch_id", "time_h"),
        on=["batch_id", "time_h"],
    )
    assert set(at_sample["event"]) == {"sample"}
    quality = frames["quality"]
    assert set(quality["attribute"]) == {
        "titer",
        "aggregates",
        "acidic_variants",
        "galactosylation",
    }
    specs = frames["specs"]
    assert set(specs["kind"]) == {"spec", "PAR", "alarm"}
    assert set(CPP_LEVELS) <= set(specs.filter(pl.col("kind") == "PAR")["name"])


# -- mass balance -----------------------------------------------------------------------------
def test_feed_amounts_equal_volume_times_media_concentration(frames):
    """Every addition brought exactly volume x concentration of the media table."""
    added = frames["_additions"]
    events = frames["events"].filter(pl.col("event").is_in(["feed", "bolus", "base"]))
    assert added.height == events.height
    glucose = frames["media"].filter(pl.col("variable") == "glucose")
    check = events.join(added, on=["batch_id", "time_h", "medium"], how="inner", suffix="_sim").join(
        glucose.select("medium", "concentration"), on="medium", how="left"
    )
    assert check.height == events.height
    assert check["concentration"].null_count() == 0
    assert_frame_equal(check.select(pl.col("volume_ml")), check.select(pl.col("volume_ml_sim").alias("volume_ml")))
    expected = check["volume_ml"] * check["concentration"] / 1000.0  # mL * mmol/L -> mmol
    np.testing.assert_allclose(check["glucose_mmol"], expected, rtol=1e-9, atol=1e-9)
    feeds = check.filter(pl.col("medium") == "FeedA")
    assert (feeds["glucose_mmol"] > 0).all() and (feeds["glutamine_mmol"] > 0).all()
    base = check.filter(pl.col("medium") == "Base")
    np.testing.assert_allclose(base["glucose_mmol"], 0.0, atol=1e-9)


def test_observed_volume_follows_the_events(frames):
    """Volume before each sample = initial volume + additions - removals before it."""
    signed = frames["events"].select(
        "batch_id",
        pl.col("time_h").alias("t_event"),
        pl.when(pl.col("event").is_in(["sample", "harvest"]))
        .then(-pl.col("volume_ml"))
        .otherwise(pl.col("volume_ml"))
        .fill_null(0.0)
        .alias("dv"),
    )
    volume = frames["observations"].filter(pl.col("variable") == "volume")
    balance = (
        volume.join(signed, on="batch_id")
        .filter(pl.col("t_event") < pl.col("time_h"))
        .group_by("batch_id", "time_h")
        .agg(pl.col("value").first(), pl.col("dv").sum())
        .join(frames["batches"].select("batch_id", "initial_volume_ml"), on="batch_id")
        .with_columns(err=pl.col("initial_volume_ml") + pl.col("dv") - pl.col("value"))
    )
    assert balance.height == volume.height  # the inoculation precedes every sample
    assert balance["err"].abs().max() <= 0.05 + 1e-9


def test_glucose_bolus_follows_measured_glucose(frames, offline_wide):
    boluses = frames["events"].filter(pl.col("event") == "bolus")
    assert boluses.height > 0
    assert set(boluses["medium"]) == {"Glc"}
    measured = boluses.join(offline_wide, on=["batch_id", "time_h"], how="left")
    assert (measured["glucose"] < 15.0).all()


# -- special batches --------------------------------------------------------------------------
def test_probe_drift_batch_has_online_ph_away_from_offline(frames, truth):
    obs = frames["observations"].filter(pl.col("variable") == "ph")
    offline = obs.filter(pl.col("source") == "offline").select("batch_id", "time_h", pl.col("value").alias("offline"))
    online = obs.filter(pl.col("source") == "online").select("batch_id", "time_h", pl.col("value").alias("online"))
    paired = offline.sort("time_h").join_asof(
        online.sort("time_h"),
        on="time_h",
        by="batch_id",
        strategy="nearest",
        check_sortedness=False,
    )
    late = (
        paired.filter(pl.col("time_h") > 0.8 * 336)
        .group_by("batch_id")
        .agg((pl.col("online") - pl.col("offline")).mean().alias("bias"))
    )
    drift = truth.filter(pl.col("probe_drift"))["batch_id"].to_list()
    assert len(drift) == 1
    bias = dict(late.iter_rows())
    assert bias.pop(drift[0]) > 0.15
    assert max(abs(b) for b in bias.values()) < 0.05
    # the offline pH of the drifting batch stays at its set point
    sp = frames["batches"].filter(pl.col("batch_id") == drift[0])["cpp_ph_setpoint"].item()
    off = paired.filter(pl.col("batch_id") == drift[0])["offline"]
    assert abs(off.mean() - sp) < 0.05


def test_aborted_batch_is_shorter_and_has_only_a_titer(frames, truth, offline_wide):
    aborted = truth.filter(pl.col("aborted"))["batch_id"].to_list()
    assert len(aborted) == 1
    b = aborted[0]
    status = frames["batches"].filter(pl.col("batch_id") == b)["status"].item()
    assert status == "aborted"
    others = truth.filter(~pl.col("aborted"))
    harvest = truth.filter(pl.col("aborted"))["harvest_time_h"].item()
    assert harvest < others["harvest_time_h"].min() - 48
    assert frames["observations"].filter(pl.col("batch_id") == b)["time_h"].max() <= harvest
    events = frames["events"].filter(pl.col("batch_id") == b)
    assert events.filter(pl.col("event") == "harvest")["time_h"].item() == harvest
    assert events.filter(pl.col("event") == "note").height == 1
    last = offline_wide.filter(pl.col("batch_id") == b).sort("time_h").tail(1)
    assert last["viability"].item() < 50.0
    assert frames["quality"].filter(pl.col("batch_id") == b)["attribute"].to_list() == ["titer"]


def test_missing_sample_day_has_no_sample(frames, truth):
    missing = truth.filter(pl.col("missing_sample_day").is_not_null())
    assert missing.height >= 1
    for b, day in missing.select("batch_id", "missing_sample_day").iter_rows():
        window = (pl.col("time_h") - 24 * day).abs() <= 1.0
        obs = frames["observations"].filter((pl.col("batch_id") == b) & (pl.col("source") == "offline") & window)
        assert obs.height == 0
        events = frames["events"].filter((pl.col("batch_id") == b) & window)
        assert "sample" not in events["event"].to_list()
        assert "note" in events["event"].to_list()


# -- realism ----------------------------------------------------------------------------------
def test_realistic_magnitudes(frames, truth, offline_wide):
    done = truth.filter(~pl.col("aborted"))
    assert 15.0 <= done["peak_vcd"].median() <= 30.0
    assert done["peak_vcd"].min() > 10.0 and done["peak_vcd"].max() < 35.0
    assert 6.5 * 24 <= done["peak_vcd_time_h"].median() <= 9.5 * 24
    quality = frames["quality"].pivot(on="attribute", index="batch_id", values="value")
    titer = quality.join(done.select("batch_id"), on="batch_id")["titer"]
    assert 2000.0 <= titer.min() and titer.max() <= 6500.0
    assert 3000.0 <= titer.median() <= 5000.0
    wide = offline_wide.join(done.select("batch_id"), on="batch_id")
    per_batch = wide.group_by("batch_id").agg(
        pl.col("lactate").max().alias("lac_peak"),
        pl.col("lactate").last().alias("lac_end"),
        pl.col("ammonium").max().alias("nh4_max"),
        pl.col("osmolality").max().alias("osm_max"),
        pl.col("viability").filter(pl.col("time_h") < 6 * 24).min().alias("early_viability"),
        pl.col("glucose").median().alias("glc_median"),
    )
    assert per_batch["lac_peak"].median() > 15.0 and per_batch["lac_peak"].max() < 45.0
    assert (per_batch["lac_end"] < 0.5 * per_batch["lac_peak"]).all()  # lactate consumed
    assert 4.0 <= per_batch["nh4_max"].median() <= 11.0
    assert per_batch["osm_max"].min() >= 300.0 and per_batch["osm_max"].max() <= 450.0
    assert per_batch["early_viability"].min() > 90.0
    assert per_batch["glc_median"].is_between(10.0, 50.0).all()


def test_cqas_follow_the_cpps_in_the_designed_direction(frames, truth):
    quality = (
        frames["quality"]
        .pivot(on="attribute", index="batch_id", values="value")
        .join(frames["batches"], on="batch_id")
        .join(truth.filter(~pl.col("aborted")).select("batch_id"), on="batch_id")
    )
    # coded (-1, 0, +1) factors; least-squares main effects
    coded = np.column_stack(
        [np.ones(quality.height)]
        + [(quality[name].to_numpy() - levels[1]) / (levels[2] - levels[1]) for name, levels in CPP_LEVELS.items()]
    )

    def effects(attribute: str) -> dict[str, float]:
        beta = np.linalg.lstsq(coded, quality[attribute].to_numpy(), rcond=None)[0]
        return dict(zip(CPP_LEVELS, beta[1:], strict=True))

    assert effects("aggregates")["cpp_temp_shift_day"] > 0.2
    assert effects("aggregates")["cpp_ph_setpoint"] > 0.15
    assert effects("acidic_variants")["cpp_temp_shift_day"] > 1.0
    assert effects("acidic_variants")["cpp_ph_setpoint"] > 0.5
    assert effects("galactosylation")["cpp_ph_setpoint"] < -1.0
    assert effects("titer")["cpp_feed_rate_pct"] > 300.0
    # the specifications make a few batches fail, most pass
    specs = frames["specs"].filter(pl.col("kind") == "spec")
    long = frames["quality"].join(specs, left_on="attribute", right_on="name")
    fails = long.filter(
        (pl.col("value") < pl.col("lower").fill_null(-np.inf)) | (pl.col("value") > pl.col("upper").fill_null(np.inf))
    )["batch_id"].unique()
    assert 1 <= fails.len() <= 8


# -- options, errors, speed -------------------------------------------------------------------
def test_days_and_online_interval():
    frames, truth = _simulate_frames(4, 2, days=10.5, online_interval_min=30)
    obs = frames["observations"]
    assert obs["time_h"].max() <= 10.5 * 24
    assert truth["harvest_time_h"].max() > 10 * 24
    online = obs.filter((pl.col("source") == "online") & (pl.col("variable") == "do"))
    steps = online.group_by("batch_id").agg(pl.col("time_h").diff().drop_nulls().unique())
    for diffs in steps["time_h"].to_list():
        np.testing.assert_allclose(diffs, 0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_batches": 0}, "n_batches must be a positive integer"),
        ({"days": 2}, "days must be a number >= 4"),
        ({"online_interval_min": 0}, "online_interval_min must be"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        simulate_campaign(**kwargs)


def test_many_batches_run_quickly():
    start = time.perf_counter()
    frames, truth = _simulate_frames(200, 5)
    elapsed = time.perf_counter() - start
    assert frames["batches"].height == 200
    assert truth["aborted"].sum() == 1
    assert frames["observations"].height > 200 * 4 * 4000
    assert elapsed < 30.0  # a few seconds on a laptop; generous for loaded CI machines


def test_simulate_campaign_returns_a_campaign():
    from bioworkbench.campaign import Campaign

    campaign = simulate_campaign(6, random_seed=1, online_interval_min=60)
    assert isinstance(campaign, Campaign)
    assert campaign.name == "demo (seed=1)"
    assert len(campaign) == 6
    again, truth = simulate_campaign(6, random_seed=1, online_interval_min=60, return_truth=True)
    assert_frame_equal(campaign.observations, again.observations)
    assert truth["batch_id"].to_list() == campaign.batches["batch_id"].to_list()


def test_return_truth_gives_a_named_result_and_seed_is_a_deprecated_name_of_random_seed():
    result = simulate_campaign(3, random_seed=2, days=5, online_interval_min=240, return_truth=True)
    assert result.campaign is result[0] and result.truth is result[1]
    assert result.truth.height == 3
    assert result.campaign.description.endswith("Generated by simulate_campaign(random_seed=2).")
    with pytest.warns(DeprecationWarning, match=r"simulate_campaign\(seed=\.\.\.\) is deprecated; use random_seed"):
        old = simulate_campaign(3, seed=2, days=5, online_interval_min=240)
    assert_frame_equal(old.observations, result.campaign.observations)
    with (
        pytest.warns(DeprecationWarning),
        pytest.raises(bw.ArgumentError, match="seed=2 and random_seed=3 both given; pass random_seed only"),
    ):
        simulate_campaign(3, random_seed=3, seed=2, days=5, online_interval_min=240)


# -- the continuously fed batch ---------------------------------------------------------------
def test_one_plain_centre_point_batch_is_fed_by_a_continuous_pump(frames, truth):
    """Its FeedA comes as hourly pump volumes (the daily bolus volume / 24) between the day-3 sample and
    the harvest, never as a bolus at a sample; the volume it is observed at balances the events."""
    from bioworkbench.simulate import CONTINUOUS_FEED_MIN_BATCHES

    assert CONTINUOUS_FEED_MIN_BATCHES <= 24
    pumped = truth.filter(pl.col("continuous_feed"))
    assert pumped.height == 1
    assert not (pumped["probe_drift"].any() or pumped["aborted"].any()) and pumped["missing_sample_day"].is_null().all()
    bid = pumped["batch_id"][0]
    batch = frames["batches"].filter(pl.col("batch_id") == bid)
    assert batch["cpp_feed_rate_pct"][0] == CPP_LEVELS["cpp_feed_rate_pct"][1]
    ev = frames["events"].filter(pl.col("batch_id") == bid)
    samples = ev.filter(pl.col("event") == "sample")["time_h"].to_numpy()
    feeds = ev.filter(pl.col("event") == "feed")
    t = feeds["time_h"].to_numpy()
    day3 = samples[np.argmin(np.abs(samples - 72.0))]
    harvest = ev.filter(pl.col("event") == "harvest")["time_h"][0]
    np.testing.assert_array_equal(t, np.arange(np.floor(day3) + 1.0, np.ceil(harvest)))
    assert (feeds["medium"] == "FeedA").all()
    hourly = batch["cpp_feed_rate_pct"][0] * batch["initial_volume_ml"][0] / 100.0 / 24.0
    np.testing.assert_allclose(feeds["volume_ml"].to_numpy(), hourly, rtol=1e-12)
    note = ev.filter(pl.col("event") == "note")
    assert note.height == 1 and note["time_h"][0] == day3 and "continuous pump" in note["note"][0]
    # the bolus-fed batches of the same design point get the same daily volume at their samples
    same = frames["batches"].filter(
        (pl.col("cpp_feed_rate_pct") == batch["cpp_feed_rate_pct"][0]) & (pl.col("batch_id") != bid)
    )
    other = frames["events"].filter((pl.col("batch_id") == same["batch_id"][0]) & (pl.col("event") == "feed"))
    assert other.height == 11 and not np.isin(t, other["time_h"].to_numpy()).all()
    # volume balance: each observed volume (before its sample) = initial + additions - removals before it
    vol = frames["observations"].filter((pl.col("batch_id") == bid) & (pl.col("variable") == "volume"))
    sign = pl.when(pl.col("event").is_in(["sample", "harvest"])).then(-1.0).otherwise(1.0)
    moves = ev.filter(pl.col("volume_ml").is_not_null() & (pl.col("event") != "inoculation"))
    for row in vol.iter_rows(named=True):
        before = moves.filter(pl.col("time_h") < row["time_h"]).select((sign * pl.col("volume_ml")).sum()).item()
        assert row["value"] == pytest.approx(batch["initial_volume_ml"][0] + before, abs=0.05 + 1e-9), row  # 0.1 mL


def test_the_pump_leaves_every_other_batch_as_it_was(monkeypatch):
    """The pumped batch is chosen without a random draw and whole hours are integration steps anyway: the
    other batches' frames are identical to a simulation without a pump."""
    import bioworkbench.simulate as sim

    with_pump, truth = _simulate_frames(12, 4, online_interval_min=60)
    monkeypatch.setattr(sim, "CONTINUOUS_FEED_MIN_BATCHES", 10**6)
    without, truth0 = _simulate_frames(12, 4, online_interval_min=60)
    assert truth["continuous_feed"].sum() == 1 and not truth0["continuous_feed"].any()
    bid = truth.filter(pl.col("continuous_feed"))["batch_id"][0]
    for name in ("observations", "events", "batches"):
        assert_frame_equal(
            with_pump[name].filter(pl.col("batch_id") != bid), without[name].filter(pl.col("batch_id") != bid)
        )
    changed = with_pump["events"].filter((pl.col("batch_id") == bid) & (pl.col("event") == "feed")).height
    assert changed > 100
