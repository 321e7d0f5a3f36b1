"""Wide bioreactor exports through column maps: real campaigns and every kind of broken input."""

from __future__ import annotations

import textwrap

import polars as pl
import pytest
from conftest import shared_data

import bioworkbench as bw
from bioworkbench.io import column_map, read_wide
from bioworkbench.units import split_header

MAP = {
    "name": "test-map",
    "batch": {"column": "Reactor"},
    "time": {"column": "Time (d)", "unit": "d"},
    "columns": {
        "VCD (1e6 cells/mL)": "vcd",
        "Viability [%]": "viability",
        "Glucose [g/L]": "glucose",
        "Lactate [mmol/L]": "lactate",
        "Titer (g/L)": "titer",
    },
    "events": [
        {"column": "Sample [mL]", "event": "sample"},
        {"column": "Feed total [mL]", "event": "feed", "medium": "F1", "cumulative": True},
    ],
    "ignore": ["Comment"],
    "media": [{"medium": "F1", "variable": "glucose", "concentration": 80, "unit": "g/L"}],
}

GOOD = textwrap.dedent(
    """\
    Reactor,Time (d),VCD (1e6 cells/mL),Viability [%],Glucose [g/L],Lactate [mmol/L],Titer (g/L),Sample [mL],Feed total [mL],Comment
    R1,0,0.5,98.5,6.0,1.0,,4,0,
    R1,1,1.1,98.0,5.2,5.0,0.05,4,0,
    R1,2,2.3,97.5,4.1,9.0,0.12,4,20,fed day 1
    R2,0,0.4,97.9,6.1,1.1,,4,0,
    R2,1,0.9,98.2,5.5,4.0,0.04,4,10,
    """
)


def write(tmp_path, text, name="export.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_split_header():
    assert split_header("Glucose [g/L]") == ("Glucose", "g/L")
    assert split_header("VCD (1e6 cells/mL)") == ("VCD", "1e6 cells/mL")
    assert split_header("OD") == ("OD", None)


def test_wide_csv_reads_converts_and_books_events(tmp_path):
    c = read_wide(write(tmp_path, GOOD), MAP)
    assert sorted(c.batch_ids) == ["R1", "R2"]
    obs = c.observations
    glc = obs.filter((pl.col("variable") == "glucose") & (pl.col("batch_id") == "R1")).sort("time_h")
    assert glc["unit"].unique().to_list() == ["mmol/L"]
    assert glc["value"][0] == pytest.approx(6.0 / 180.16 * 1000)
    assert glc["time_h"].to_list() == [0.0, 24.0, 48.0]
    assert glc["source_line"].to_list() == [2, 3, 4]
    titer = obs.filter(pl.col("variable") == "titer")
    assert titer.height == 3  # empty cells are absent measurements, not zeros
    assert titer["value"].max() == pytest.approx(120.0)
    ev = c.events.sort("batch_id", "time_h")
    feeds = ev.filter(pl.col("event") == "feed")
    # cumulative 0 -> 20 mL between day 1 and 2 of R1: one event at the interval midpoint
    assert feeds.filter(pl.col("batch_id") == "R1").select("time_h", "volume_ml").rows() == [(36.0, 20.0)]
    assert ev.filter(pl.col("event") == "sample").height == 5
    assert c.media["concentration"][0] == pytest.approx(80 / 180.16 * 1000)
    assert len(c.sources) == 1


def test_wide_semicolon_decimal_comma(tmp_path):
    text = GOOD.replace(",", ";").replace("98.5", "98,5").replace("0.05", "0,05")
    cmap = {**MAP, "read": {"separator": ";", "decimal_comma": True}}
    c = read_wide(write(tmp_path, text), cmap)
    assert 98.5 in c.observations["value"].to_list()


def test_wide_timestamps_with_inoculation_first_row(tmp_path):
    text = textwrap.dedent(
        """\
        Reactor,Timestamp,VCD (1e6 cells/mL)
        R1,2026-03-01 08:00,0.5
        R1,2026-03-02 10:00,1.0
        """
    )
    cmap = {
        "batch": {"column": "Reactor"},
        "time": {"column": "Timestamp", "unit": "timestamp", "format": "%Y-%m-%d %H:%M", "timezone": "UTC"},
        "columns": {"VCD (1e6 cells/mL)": "vcd"},
    }
    c = read_wide(write(tmp_path, text), cmap)
    assert sorted(c.observations["time_h"].to_list()) == [0.0, 26.0]


def test_one_file_per_batch_from_filename(tmp_path):
    text = "Time (h),VCD (1e6 cells/mL)\n0,0.5\n24,1.0\n"
    p1, p2 = write(tmp_path, text, "run_B07.csv"), write(tmp_path, text, "run_B08.csv")
    cmap = {
        "batch": {"from_filename": r"run_(?P<batch>B\d+)"},
        "time": {"column": "Time (h)", "unit": "h"},
        "columns": {"VCD (1e6 cells/mL)": "vcd"},
    }
    c = read_wide([p1, p2], cmap)
    assert sorted(c.batch_ids) == ["B07", "B08"]
    assert set(c.observations["source_file"]) == {str(p1), str(p2)}


@pytest.mark.parametrize(
    ("edit", "line", "column", "batch", "expected"),
    [
        (
            lambda t: t.replace("R1,1,1.1,", "R1,1,1.1x,"),
            3,
            "VCD (1e6 cells/mL)",
            "R1",
            "expected a number for vcd, found '1.1x'",
        ),
        (
            lambda t: t.replace("R2,1,0.9,98.2", "R2,1,0.9,104.0"),
            6,
            "value",
            "R2",
            "viability = 104 % is impossible",
        ),
        (
            lambda t: t.replace("R1,2,2.3,97.5,4.1", "R1,2,2.3,97.5,-4.1"),
            4,
            "value",
            "R1",
            "is impossible",
        ),
        (
            lambda t: t.replace("R1,2,2.3", "R1,0.5,2.3"),
            4,
            "Time (d)",
            "R1",
            "time goes backwards: 12 h after 24 h",
        ),
        (
            lambda t: t.replace("R2,1,0.9", "R2,0,0.9"),
            6,
            "time_h",
            "R2",
            "duplicate vcd at time_h=0.0",
        ),
        (
            lambda t: t.replace("R1,2,2.3,97.5,4.1,9.0,0.12,4,20", "R1,2,2.3,97.5,4.1,9.0,0.12,4,-1"),
            4,
            "Feed total [mL]",
            "R1",
            "cumulative feed volume decreases",
        ),
    ],
)
def test_broken_wide_inputs_are_located(tmp_path, edit, line, column, batch, expected):
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(bw.SchemaError) as err:
        read_wide(path, MAP)
    text = str(err.value)
    assert expected in text
    assert str(path) in text or "export.csv" in text
    hits = [i for i in err.value.issues if expected.split(" ")[0] in i.message or expected in i.message]
    assert any((i.line, i.column, i.batch) == (line, column, batch) for i in err.value.issues), [
        (i.line, i.column, i.batch, i.message) for i in err.value.issues
    ]
    assert hits


def test_unknown_and_missing_columns(tmp_path):
    text = GOOD.replace("Comment", "Osmo [mOsm/kg]").replace("Lactate [mmol/L]", "Lactat [mmol/L]")
    with pytest.raises(bw.SchemaError) as err:
        read_wide(write(tmp_path, text), MAP)
    msg = str(err.value)
    assert "column 'Osmo [mOsm/kg]' is not in the column map" in msg
    assert "column 'Lactate [mmol/L]' named in the column map 'test-map' is not in the file" in msg
    assert "Did you mean 'Lactat [mmol/L]'" in msg


def test_unit_in_header_not_convertible(tmp_path):
    text = GOOD.replace("Glucose [g/L]", "Glucose [cells]")
    cmap = {
        **MAP,
        "columns": {
            **{k: v for k, v in MAP["columns"].items() if k != "Glucose [g/L]"},
            "Glucose [cells]": "glucose",
        },
    }
    with pytest.raises(bw.SchemaError) as err:
        read_wide(write(tmp_path, text), cmap)
    issue = next(i for i in err.value.issues if i.column == "unit")
    # one issue for the column: located at its first row, counting the rows of both batches
    assert issue.batch is None and issue.line == 2
    assert "(5 rows; lines 2, 3, 4, 5, 6; batches R1, R2)" in issue.message
    assert "found 'cells' for glucose; expected a unit convertible to mmol/L" in str(err.value)


def test_event_referring_to_unknown_medium(tmp_path):
    cmap = {
        **MAP,
        "media": [{"medium": "F2", "variable": "glucose", "concentration": 80, "unit": "g/L"}],
    }
    with pytest.raises(bw.SchemaError, match="medium 'F1' is not in the media table"):
        read_wide(write(tmp_path, GOOD), cmap)


def test_bad_column_maps():
    with pytest.raises(bw.ConfigError) as err:
        column_map(
            {
                "batch": {},
                "time": {"column": "t", "unit": "weeks"},
                "columns": {"x": "glucos"},
                "colums": 1,
            }
        )
    msg = str(err.value)
    assert "unknown key 'colums'" in msg and "Did you mean 'columns'" in msg
    assert "unknown variable 'glucos'" in msg
    assert "time unit 'weeks' is not supported" in msg
    with pytest.raises(bw.ConfigError, match="has no unit in its header"):
        column_map({"batch": {"column": "b"}, "time": {"column": "t"}, "columns": {"VCD": "vcd"}})
    with pytest.raises(bw.ConfigError, match="Bundled maps: ambr250, nistcho"):
        column_map("ambr")


# ---------------------------------------------------------------------------------------------
# real campaigns
# ---------------------------------------------------------------------------------------------
def test_nistcho_real_campaign():
    path = shared_data("nistcho-vcd", "vicell_growth_fb2_fb4_combined.csv")
    c = read_wide(path, "nistcho")
    assert len(c) == 34
    assert c.observations.height == 309 * 3
    b = c.batches.filter(pl.col("batch_id") == "FB2-A-R1")
    assert b["cpp_feeding"].item() == "A"
    assert str(b["start"].item().date()) == "2024-02-12"
    first = c.observations.filter(
        (pl.col("batch_id") == "FB2-A-R1") & (pl.col("variable") == "vcd") & (pl.col("time_h") == 0)
    )
    assert first["value"].item() == pytest.approx(0.4413)
    assert first["source_line"].item() == 2
    assert c.observations["time_h"].max() == pytest.approx(265, abs=1)


def test_ambr250_real_campaign():
    path = shared_data("ecoli-ambr250", "exponential_fed-batch_scale-down_offline_data.xlsx")
    c = read_wide(path, "ambr250")
    assert len(c) == 12
    assert set(c.batches["condition"]) == {"control", "scale-down"}
    assert c.batches["initial_volume_ml"].unique().to_list() == [100.0]
    obs = c.observations
    r05 = obs.filter(pl.col("batch_id") == "R05")
    glc0 = r05.filter(pl.col("variable") == "glucose").sort("time_h")["value"][0]
    assert glc0 == pytest.approx(11.143792852902099 / 180.16 * 1000)
    assert r05.filter(pl.col("variable") == "od600")["value"].max() == pytest.approx(280.8)
    # cumulative feed booked as interval events that add up to the final total
    feed = c.events.filter((pl.col("batch_id") == "R05") & (pl.col("event") == "feed"))
    assert feed["volume_ml"].sum() == pytest.approx(63.484335, rel=1e-6)
    assert {"sample", "feed", "base"} <= set(c.events["event"])
    # lineage points at the spreadsheet row
    assert set(obs["source_file"]) == {str(path)}
    assert obs["source_line"].min() == 2 and obs["source_line"].max() == 61
    assert c.media.filter(pl.col("variable") == "glucose")["concentration"].item() == pytest.approx(500 / 180.16 * 1000)
    # high ammonium of the late samples is plausible here, not flagged
    assert c.flagged().height == 0


def test_nistcho_per_experiment_files_agree_with_combined():
    fb2 = shared_data("nistcho-vcd", "vicell_growth_fb2.csv")
    fb4 = shared_data("nistcho-vcd", "vicell_growth_fb4.csv")
    c = read_wide([fb2, fb4], "nistcho")
    # the per-experiment tables hold 192 + 152 rows; the combined table 309 (a few rows differ)
    assert c.observations.filter(pl.col("variable") == "vcd").height == 192 + 152
    assert {b.split("-")[0] for b in c.batch_ids} == {"FB2", "FB4"}


def test_read_table_names_its_frame_and_first_line(tmp_path):
    from bioworkbench.io import read_table

    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n")
    table = read_table(tmp_path / "t.csv")
    assert table.first_line == 2 and table.frame["a"].to_list() == ["1", "2"]
    frame, first_line = table
    assert frame is table.frame and first_line == 2


# ---------------------------------------------------------------------------------------------
# what instrument-like exports need: sorting, replicates, batch/day by pattern, junk, frames
# ---------------------------------------------------------------------------------------------
UNSORTED = textwrap.dedent(
    """\
    Reactor,Time (d),VCD (1e6 cells/mL),Viability [%],Glucose [g/L],Lactate [mmol/L],Titer (g/L),Sample [mL],Feed total [mL],Comment
    R1,2,2.3,97.5,4.1,9.0,0.12,4,20,
    R1,0,0.5,98.5,6.0,1.0,,4,0,
    R1,1,1.1,98.0,5.2,5.0,0.05,4,0,
    """
)


def test_rows_out_of_time_order_sorted_with_their_lines(tmp_path):
    path = write(tmp_path, UNSORTED)
    with pytest.raises(bw.SchemaError, match=r"time goes backwards.*sort=True"):
        read_wide(path, MAP)
    c = read_wide(path, MAP, sort=True)
    vcd = c.observations.filter(pl.col("variable") == "vcd").sort("time_h")
    assert vcd["time_h"].to_list() == [0.0, 24.0, 48.0]
    assert vcd["source_line"].to_list() == [3, 4, 2]  # each value keeps its own line
    # the cumulative feed is differenced in time order: 20 mL between day 1 and day 2
    feed = c.events.filter(pl.col("event") == "feed")
    assert feed["volume_ml"].to_list() == [20.0] and feed["time_h"].to_list() == [36.0]
    assert read_wide(path, {**MAP, "time": {**MAP["time"], "sort": True}}).observations.equals(c.observations)


REPLICATED = "Reactor,Time (d),VCD (1e6 cells/mL)\nR1,0,0.5\nR1,1,1.0\nR1,1,1.2\nR1,1,1.4\nR1,2,2.0\n"
REP_MAP = {
    "batch": {"column": "Reactor"},
    "time": {"column": "Time (d)", "unit": "d"},
    "columns": {"VCD (1e6 cells/mL)": "vcd"},
}


def test_replicates_error_keep_and_mean(tmp_path):
    path = write(tmp_path, REPLICATED)
    with pytest.raises(bw.SchemaError, match=r"duplicate vcd at time_h=24\.0"):
        read_wide(path, REP_MAP)
    kept = read_wide(path, REP_MAP, replicates="keep").observations.sort("source_line")
    assert kept["replicate"].to_list() == [1, 1, 2, 3, 1]
    assert kept["source_line"].to_list() == [2, 3, 4, 5, 6]
    mean = read_wide(path, {**REP_MAP, "replicates": "mean"}).observations.sort("time_h")
    day1 = mean.filter(pl.col("time_h") == 24.0).row(0, named=True)
    assert day1["value"] == pytest.approx(1.2) and day1["n_replicates"] == 3
    assert day1["replicate_sd"] == pytest.approx(0.2) and day1["source_line"] == 3
    assert mean.height == 3 and mean.filter(pl.col("time_h") == 0.0)["replicate_sd"].to_list() == [None]
    with pytest.raises(bw.ArgumentError, match="replicates must be one of error, keep, mean"):
        read_wide(path, REP_MAP, replicates="median")


def test_mean_leaves_flagged_replicates_out(tmp_path):
    path = write(tmp_path, REPLICATED.replace("R1,1,1.4", "R1,1,n/a"))
    with pytest.warns(bw.BioWorkbenchWarning, match="1 cell in number columns hold text"):
        c = read_wide(path, REP_MAP, replicates="mean", max_junk=0.25)
    day1 = c.observations.filter(pl.col("time_h") == 24.0).row(0, named=True)
    assert day1["value"] == pytest.approx(1.1) and day1["n_replicates"] == 2 and day1["flag"] is None


SAMPLES = "Sample ID,VCD (1e6 cells/mL)\nB02-D1,1.0\nB01-D0,0.5\nB01-D1,1.1\nB02-D0,0.4\nB01-D2,2.2\n"


def test_batch_and_day_from_a_sample_id_pattern(tmp_path):
    path = write(tmp_path, SAMPLES)
    cmap = {
        "batch": {"column": "Sample ID", "pattern": r"(?P<batch_id>B\d+)-D(?P<day>\d+)"},
        "time": {"sort": True},
        "columns": {"VCD (1e6 cells/mL)": "vcd"},
    }
    with pytest.raises(bw.ConfigError, match="'time' needs a 'column'"):
        read_wide(path, {**cmap, "time": None, "batch": {"column": "Sample ID"}})
    c = read_wide(path, {k: v for k, v in cmap.items() if k != "time"}, sort=True)
    obs = c.observations.sort("batch_id", "time_h")
    assert obs.select("batch_id", "time_h", "source_line").rows() == [
        ("B01", 0.0, 3),
        ("B01", 24.0, 4),
        ("B01", 48.0, 6),
        ("B02", 0.0, 5),
        ("B02", 24.0, 2),
    ]
    # the same as a keyword over a map that names the batch otherwise
    plain = {"batch": {"value": "X"}, "time": {"column": "Sample ID"}, "columns": {"VCD (1e6 cells/mL)": "vcd"}}
    kw = read_wide(path, plain, batch_from=cmap["batch"], sort=True)
    assert (
        kw.observations.sort("batch_id", "time_h").select("batch_id", "time_h").equals(obs.select("batch_id", "time_h"))
    )


def test_sample_id_not_matching_the_pattern_is_located(tmp_path):
    path = write(tmp_path, SAMPLES.replace("B01-D1,", "QC-7,"))
    cmap = {
        "batch": {"column": "Sample ID", "pattern": r"(?P<batch_id>B\d+)-D(?P<day>\d+)"},
        "columns": {"VCD (1e6 cells/mL)": "vcd"},
    }
    with pytest.raises(bw.SchemaError) as err:
        read_wide(path, cmap, sort=True)
    issue = err.value.issues[0]
    assert (issue.line, issue.column) == (4, "Sample ID") and "'QC-7' does not match the batch pattern" in issue.message
    with pytest.raises(bw.ConfigError, match="no group named 'batch_id'"):
        read_wide(path, {**cmap, "batch": {"column": "Sample ID", "pattern": r"B\d+"}})
    with pytest.raises(bw.ConfigError, match="batch_from needs a 'pattern'"):
        read_wide(path, cmap, batch_from={"column": "Sample ID"})


def test_junk_cells_flagged_up_to_max_junk(tmp_path):
    path = write(tmp_path, GOOD.replace("R1,1,1.1,98.0", "R1,1,1.1,10.00%"))
    with pytest.raises(bw.SchemaError) as err:
        read_wide(path, MAP)
    assert "expected a number for viability, found '10.00%'" in str(err.value) and "max_junk" in str(err.value)
    with pytest.warns(bw.BioWorkbenchWarning, match=r"1 cell in number columns hold text.*line 3"):
        c = read_wide(path, MAP, max_junk=0.05)
    row = c.observations.filter(pl.col("flag") == "unreadable").row(0, named=True)
    assert row["value"] is None and row["variable"] == "viability"
    assert (row["source_line"], row["batch_id"]) == (3, "R1")
    assert "column 'Viability [%]': expected a number for viability, found '10.00%'" in row["flag_reason"]
    assert c.observations.height == read_wide(write(tmp_path, GOOD, "good.csv"), MAP).observations.height
    # above the tolerance every such cell is an error again (1 of 23 cells > 1 %)
    with pytest.raises(bw.SchemaError, match="1 of 23 measurement cells"):
        read_wide(path, {**MAP, "read": {"max_junk": 0.01}})
    with pytest.raises(bw.ArgumentError, match="max_junk must be a fraction"):
        read_wide(path, MAP, max_junk=5)


def test_read_from_a_polars_frame_with_lineage(tmp_path):
    frame = pl.read_csv(write(tmp_path, GOOD), infer_schema_length=0)
    c = read_wide(frame, MAP, source_name="lims:query-17")
    from_file = read_wide(write(tmp_path, GOOD, "same.csv"), MAP)
    assert c.observations.drop("source_file", "source_line").equals(
        from_file.observations.drop("source_file", "source_line")
    )
    assert set(c.observations["source_file"]) == {"lims:query-17"}
    # row index of the frame (from 0) = CSV line - 2
    assert (c.observations["source_line"] == from_file.observations["source_line"] - 2).all()
    assert "lims:query-17" in c.sources and len(c.sources["lims:query-17"]) == 64
    with pytest.raises(bw.ArgumentError, match="source_name"):
        read_wide(frame, MAP)
    bad = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("x")).otherwise(pl.col("Time (d)")).alias("Time (d)")
    )
    with pytest.raises(bw.SchemaError) as err:
        read_wide(bad, MAP, source_name="lims:query-17")
    assert any((i.file, i.line, i.column) == ("lims:query-17", 1, "Time (d)") for i in err.value.issues)
