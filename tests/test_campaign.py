"""The Campaign data model: construction, validation with located errors, folders on disk."""

from __future__ import annotations

import re

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.errors import IntegrityError
from bioworkbench.schema import FRAMES


def test_valid_campaign_builds_and_reports(frames):
    c = bw.Campaign(**frames, name="small")
    assert len(c) == 2
    assert c.cpps == ["cpp_ph"]
    assert c.batches.schema["start"] == pl.Datetime("us", "UTC")
    assert c.observations.schema["source_line"] == pl.Int64
    s = c.summary()
    assert s.filter(pl.col("batch_id") == "B1")["peak_vcd"].item() == pytest.approx(2.8)
    assert "2 batches" in repr(c)
    assert "cpp_ph" in c.describe()


def test_missing_frames_are_empty_with_schema(frames):
    c = bw.Campaign(batches=frames["batches"], observations=frames["observations"])
    for name in FRAMES:
        assert set(c.frames()[name].columns) >= {col.name for col in FRAMES[name] if col.required}
    assert c.events.is_empty()


def test_validation_collects_every_problem(frames):
    obs = frames["observations"].with_columns(
        variable=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("glucos")).otherwise("variable"),
        batch_id=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("B9")).otherwise("batch_id"),
    )
    events = frames["events"].with_columns(
        medium=pl.when(pl.col("medium") == "FeedA").then(pl.lit("FeedB")).otherwise("medium")
    )
    with pytest.raises(bw.SchemaError) as err:
        bw.Campaign(**{**frames, "observations": obs, "events": events})
    text = str(err.value)
    assert "unknown variable 'glucos'" in text and "Did you mean 'glucose'" in text
    assert "batch 'B9' is not in the batches table" in text
    assert "medium 'FeedB' is not in the media table" in text
    assert len(err.value.issues) >= 3
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("variable", "value", "unit", "expected"),
    [
        ("glucose", -1.0, "mmol/L", "is impossible"),
        ("viability", 104.0, "%", "between 0 and 100"),
        ("glucose", 5.0, "cells", "found 'cells' for glucose; expected a unit convertible to mmol/L"),
    ],
)
def test_impossible_values_and_units_are_errors(frames, variable, value, unit, expected):
    extra = pl.DataFrame(
        {
            "batch_id": ["B1"],
            "time_h": [72.0],
            "variable": [variable],
            "value": [value],
            "unit": [unit],
            "source": ["offline"],
        }
    )
    obs = pl.concat([frames["observations"], extra], how="diagonal_relaxed")
    with pytest.raises(bw.SchemaError, match=expected) as err:
        bw.Campaign(**{**frames, "observations": obs})
    assert any(i.batch == "B1" for i in err.value.issues)


def test_flagged_impossible_value_is_kept(frames):
    extra = pl.DataFrame(
        {
            "batch_id": ["B1"],
            "time_h": [72.0],
            "variable": ["glucose"],
            "value": [-1.0],
            "unit": ["mmol/L"],
            "source": ["offline"],
            "flag": ["invalid"],
            "flag_reason": ["analyser error"],
        }
    )
    c = bw.Campaign(
        **{
            **frames,
            "observations": pl.concat([frames["observations"], extra], how="diagonal_relaxed"),
        }
    )
    assert c.flagged().height == 1
    assert c.summary().filter(pl.col("batch_id") == "B1")["n_flagged"].item() == 1


def test_duplicates_are_errors(frames):
    obs = pl.concat([frames["observations"], frames["observations"].head(1)])
    with pytest.raises(bw.SchemaError, match=r"duplicate vcd at time_h=0.0"):
        bw.Campaign(**{**frames, "observations": obs})


def test_batches_rules(frames):
    b = pl.concat([frames["batches"], frames["batches"].head(1)]).with_columns(
        status=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("done")).otherwise("status")
    )
    with pytest.raises(bw.SchemaError) as err:
        bw.Campaign(**{**frames, "batches": b})
    text = str(err.value)
    assert "appears more than once" in text
    assert "unknown status 'done'" in text


def test_specs_rules(frames):
    specs = pl.DataFrame(
        {
            "name": ["titer", "ph"],
            "lower": [5.0, None],
            "upper": [1.0, None],
            "kind": ["spec", "limit"],
        }
    )
    with pytest.raises(bw.SchemaError) as err:
        bw.Campaign(**{**frames, "specs": specs})
    text = str(err.value)
    assert "lower 5.0 is above upper 1.0" in text
    assert "unknown spec kind 'limit'" in text
    assert "neither a lower nor an upper" in text


def test_events_rules(frames):
    ev = pl.concat(
        [
            frames["events"],
            pl.DataFrame({"batch_id": ["B1"], "time_h": [-1.0], "event": ["feeding"], "volume_ml": [-3.0]}),
        ],
        how="diagonal_relaxed",
    )
    with pytest.raises(bw.SchemaError) as err:
        bw.Campaign(**{**frames, "events": ev})
    text = str(err.value)
    assert "unknown event 'feeding'" in text and "Did you mean 'feed'" in text
    assert "volume_ml must be a finite number >= 0" in text
    assert "time_h must be a finite number" in text


def test_write_read_roundtrip(tmp_path, frames):
    c = bw.Campaign(**frames, name="rt", description="round trip", sources={"x.csv": "abc"})
    path = c.write(tmp_path / "camp")
    meta = yaml.safe_load((path / "campaign.yaml").read_text())
    assert meta["schema_version"] == 1 and meta["name"] == "rt"
    assert set(meta["frames"]) == set(FRAMES)
    assert len(meta["frames"]["observations"]["sha256"]) == 64
    back = bw.read_campaign(path)
    assert back.name == "rt" and back.sources == {"x.csv": "abc"}
    for name in FRAMES:
        assert_frame_equal(back.frames()[name], c.frames()[name])
    with pytest.raises(FileExistsError):
        c.write(path)
    c.write(path, overwrite=True)


def test_modified_parquet_is_revalidated(tmp_path, frames):
    path = bw.Campaign(**frames).write(tmp_path / "camp")
    obs = pl.read_parquet(path / "observations.parquet")
    obs.with_columns(value=pl.when(pl.col("variable") == "viability").then(150.0).otherwise("value")).write_parquet(
        path / "observations.parquet"
    )
    with pytest.raises(bw.DataReadError, match="observations changed: its sha256 is") as err:
        bw.read_campaign(path)
    assert isinstance(err.value, IntegrityError) and err.value.issues[0].file == str(path / "observations.parquet")
    # read as it is on request: then it is validated
    with pytest.raises(bw.SchemaError, match="viability = 150"):
        bw.read_campaign(path, verify=False)


def _write_csv_campaign(folder, frames, *, observations_text=None, sep=","):
    folder.mkdir()
    for name, df in frames.items():
        df.write_csv(folder / f"{name}.csv", separator=sep)
    if observations_text is not None:
        (folder / "observations.csv").write_text(observations_text)


def test_read_csv_campaign_converts_units_and_keeps_lineage(tmp_path, frames):
    text = (
        "batch_id,time_h,variable,value,unit\n"
        "B1,0,vcd,0.5,10^6 cells/mL\n"
        "B1,0,glucose,7.2,g/L\n"
        "B1,24,glucose,650,mg/dL\n"
        "B1,24,vcd,1200000,cells/mL\n"
        "B1,24,viability,0.97,fraction\n"
    )
    _write_csv_campaign(tmp_path / "c", frames, observations_text=text)
    c = bw.read_campaign(tmp_path / "c")
    obs = c.observations.sort("source_line")
    assert obs["unit"].to_list() == ["1e6 cells/mL", "mmol/L", "mmol/L", "1e6 cells/mL", "%"]
    assert obs["value"].to_list() == pytest.approx([0.5, 7.2 / 180.16 * 1000, 6500 / 180.16, 1.2, 97.0])
    assert obs["source_line"].to_list() == [2, 3, 4, 5, 6]
    assert obs["source_file"].str.ends_with("observations.csv").all()
    assert obs["source"].unique().to_list() == ["offline"]


def test_csv_errors_name_file_line_column_batch(tmp_path, frames):
    text = (
        "batch_id,time_h,variable,value,unit\n"
        "B1,0,vcd,0.5,1e6 cells/mL\n"
        'B1,24,glucose,"12,5",mmol/L\n'
        "B2,24,glucose,3,cells\n"
    )
    _write_csv_campaign(tmp_path / "c", frames, observations_text=text)
    with pytest.raises(bw.SchemaError) as err:
        bw.read_campaign(tmp_path / "c")
    text = str(err.value)
    assert "observations.csv" in text
    assert "line 3, column \"value\" (batch B1): expected a number, found '12,5'" in text
    assert "decimal_comma=True" in text


def test_unit_that_cannot_be_converted(tmp_path, frames):
    text = "batch_id,time_h,variable,value,unit\nB1,0,vcd,0.5,1e6 cells/mL\nB2,24,glucose,3,cells\n"
    _write_csv_campaign(tmp_path / "c", frames, observations_text=text)
    with pytest.raises(bw.SchemaError) as err:
        bw.read_campaign(tmp_path / "c")
    issue = err.value.issues[0]
    assert (issue.line, issue.column, issue.batch) == (3, "unit", "B2")
    assert "found 'cells' for glucose; expected a unit convertible to mmol/L" in str(err.value)


def test_semicolon_decimal_comma_csv(tmp_path, frames):
    text = "batch_id;time_h;variable;value;unit\nB1;0;vcd;0,5;1e6 cells/mL\nB1;24;glucose;12,5;mmol/L\n"
    _write_csv_campaign(tmp_path / "c", frames, observations_text=text, sep=";")
    with pytest.raises(bw.DataReadError, match="semicolon-separated"):
        bw.read_campaign(tmp_path / "c")
    c = bw.read_campaign(tmp_path / "c", separator=";", decimal_comma=True)
    assert sorted(c.observations["value"].to_list()) == [0.5, 12.5]


def test_on_invalid_flag_keeps_and_counts(tmp_path, frames):
    text = (
        "batch_id,time_h,variable,value,unit\n"
        "B1,0,vcd,0.5,1e6 cells/mL\n"
        "B1,24,glucose,-0.2,mmol/L\n"
        "B1,24,viability,101,%\n"
        "B1,48,vcd,450,1e6 cells/mL\n"
    )
    _write_csv_campaign(tmp_path / "c", frames, observations_text=text)
    with pytest.raises(bw.SchemaError) as err:
        bw.read_campaign(tmp_path / "c")
    assert {(i.line, i.column) for i in err.value.issues} == {(3, "value"), (4, "value")}
    c = bw.read_campaign(tmp_path / "c", on_invalid="flag")
    flags = c.flagged().sort("source_line")
    assert flags["flag"].to_list() == ["invalid", "invalid", "suspect"]
    assert flags["value"].to_list() == [-0.2, 101.0, 450.0]  # raw values untouched
    assert "outside the typical range" in flags["flag_reason"][2]


def test_missing_folder_and_frames(tmp_path):
    with pytest.raises(bw.DataReadError, match="does not exist"):
        bw.read_campaign(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(bw.DataReadError, match=r"no batches\.parquet or batches\.csv"):
        bw.read_campaign(tmp_path / "empty")


def test_missing_column_named(tmp_path, frames):
    _write_csv_campaign(tmp_path / "c", frames, observations_text="batch_id,time_h,variable,value\nB1,0,vcd,1\n")
    with pytest.raises(bw.SchemaError, match="missing column 'unit' in the observations table"):
        bw.read_campaign(tmp_path / "c")


def test_filter_batches_and_to_wide(frames):
    c = bw.Campaign(**frames)
    one = c.filter_batches("B1")
    assert one.batch_ids == ["B1"] and set(one.observations["batch_id"]) == {"B1"}
    assert one.media.height == c.media.height and one.specs.height == c.specs.height
    assert one._validated
    with pytest.raises(
        bw.SchemaError, match=re.escape("batch 'B3' is not in campaign 'campaign'. Hint: Batches: B1, B2")
    ):
        c.filter_batches(["B3"])
    with pytest.warns(
        DeprecationWarning, match=r"Campaign.select\(batch_ids\) is deprecated; use Campaign.filter_batches"
    ):
        old = c.select(["B2"])
    assert old.batch_ids == ["B2"]
    wide = c.to_wide()
    assert wide.columns[:2] == ["batch_id", "time_h"] and {"vcd", "glucose"} <= set(wide.columns)
    assert wide.height == 6


def test_as_of_cuts_a_batch_to_what_was_known():
    camp = bw.simulate_campaign(n_batches=4, random_seed=3)
    b = camp.batch_ids[1]
    cut = camp.as_of(100.0, batch_ids=b)
    obs = cut.observations.filter(pl.col("batch_id") == b)
    assert obs["time_h"].max() <= 100.0
    assert cut.events.filter(pl.col("batch_id") == b)["time_h"].max() <= 100.0
    assert cut.quality.filter(pl.col("batch_id") == b).is_empty()
    assert cut.batches.filter(pl.col("batch_id") == b)["status"][0] == "running"
    # other batches and the original are untouched
    other = camp.batch_ids[0]
    assert (
        cut.observations.filter(pl.col("batch_id") == other).height
        == camp.observations.filter(pl.col("batch_id") == other).height
    )
    assert camp.observations.filter(pl.col("batch_id") == b)["time_h"].max() > 100.0
    with pytest.raises(bw.SchemaError, match="known_h must be a finite number of hours"):
        camp.as_of(-3, batch_ids=b)
    with pytest.raises(bw.SchemaError, match="not in campaign"):
        camp.as_of(10, batch_ids="nope")


def test_offline_online_and_measurements_leave_flagged_rows_and_empty_values_out(frames):
    obs = pl.concat(
        [
            frames["observations"],
            pl.DataFrame(
                {
                    "batch_id": ["B1", "B1", "B2", "B2"],
                    "time_h": [1.0, 2.0, 3.0, 30.0],
                    "variable": ["ph", "ph", "ph", "glucose"],
                    "value": [7.0, 7.1, None, 33.0],
                    "unit": ["pH", "pH", "pH", "mmol/L"],
                    "source": ["online", "online", "online", "atline"],
                    "flag": [None, "suspect", None, None],
                    "flag_reason": [None, "probe drift", None, None],
                }
            ),
        ],
        how="diagonal_relaxed",
    )
    c = bw.Campaign(**{**frames, "observations": obs})
    # 18 offline rows plus one at-line row are sampled; online: 2 with a value, one of them flagged
    assert c.offline().height == 19
    assert set(c.offline()["source"]) == {"offline", "atline"}
    assert c.online().height == 1 and c.online()["value"].to_list() == [7.0]
    assert c.online(include_flagged=True).height == 2
    assert c.measurements().height == 20
    assert c.offline(variables="vcd", batch_ids="B2")["value"].to_list() == [0.5, 1.2, 2.8]
    assert c.offline(variables=["vcd", "glucose"]).height == 13
    assert c.flagged().height == 1 and c.flagged(online=False).is_empty()
    assert c.measurements().columns == c.observations.columns
    with pytest.raises(
        bw.SchemaError, match=re.escape("batch 'B7' is not in campaign 'campaign'. Hint: Batches: B1, B2")
    ):
        c.offline(batch_ids=["B7"])
    with pytest.raises(bw.SchemaError, match=re.escape("unknown variable 'glucos'. Hint: Did you mean 'glucose'")):
        c.offline(variables="glucos")
    with pytest.raises(bw.ArgumentError, match="batch_ids must be a name or a list of names; got the int 3"):
        c.online(batch_ids=3)
    with pytest.raises(bw.ArgumentError, match="online must be True, False or None; got the str 'yes'"):
        c.measurements(online="yes")
