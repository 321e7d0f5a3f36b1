"""The integrity catalogue: every way found to get bad data in, or good data refused, held as a test.

Each test gives an input, and the error it must raise (type and text: file, line, column, batch)
or the flag and count it must produce. Add a case here whenever a new way is found (issues 13
and 20 started the list). Groups: A the constructor forgives natural mistakes, B campaign folders
are verified on read, C every frame is validated, D spreadsheets and readers, E errors in the right
place.
"""

from __future__ import annotations

import polars as pl
import pytest
import yaml
from conftest import small_frames
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.io import read_wide
from bioworkbench.store import sha256_file


@pytest.fixture(autouse=True)
def _own_key(tmp_path, monkeypatch):
    """Sign campaign folders with a key of this test's own (never the user's)."""
    monkeypatch.setenv("BIOWORKBENCH_KEY_FILE", str(tmp_path / "keys" / "campaign.key"))


def _obs(**columns) -> pl.DataFrame:
    frames = small_frames()
    return frames["observations"].with_columns(**columns)


def _campaign(**frames) -> bw.Campaign:
    return bw.Campaign(**{**small_frames(), **frames})


def _error(exc_type, fn, *args, **kwargs):
    with pytest.raises(exc_type) as err:
        fn(*args, **kwargs)
    return err.value


# =============================================================================================
# A. The constructor forgives natural mistakes, says so, and never changes a raw value silently
# =============================================================================================
def test_a1_missing_source_column_is_filled_offline_once():
    obs = small_frames()["observations"].drop("source")
    with pytest.warns(bw.BioWorkbenchWarning, match="observations have no 'source' column: all 18 taken as 'offline'"):
        c = _campaign(observations=obs)
    assert c.observations["source"].unique().to_list() == ["offline"]
    assert c.adjustments == ("observations have no 'source' column: all 18 taken as 'offline'",)


def test_a1_empty_sources_are_one_issue_with_a_count():
    obs = _obs(source=pl.when(pl.col("variable") == "glucose").then(None).otherwise(pl.col("source")))
    err = _error(bw.SchemaError, _campaign, observations=obs)
    [issue] = err.issues
    assert issue.column == "source" and issue.batch is None
    assert (
        issue.message
        == "source is empty; a value is required (6 rows; rows 2, 5, 8, 11, 14 …, counted from 0; batches B1, B2)."
    )


def test_a2_categories_match_case_insensitively():
    frames = small_frames()
    obs = frames["observations"].with_columns(
        source=pl.lit("Offline"), variable=pl.col("variable").replace({"glucose": "Glucose"})
    )
    events = frames["events"].with_columns(event=pl.col("event").replace({"feed": "Feed "}))
    batches = frames["batches"].with_columns(status=pl.lit("Completed"))
    specs = frames["specs"].with_columns(kind=pl.lit("SPEC"))
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        c = bw.Campaign(**{**frames, "observations": obs, "events": events, "batches": batches, "specs": specs})
    text = str(record[0].message)
    assert "observations.source: 18 values matched case-insensitively ('Offline' -> 'offline')" in text
    assert "observations.variable: 6 values matched case-insensitively ('Glucose' -> 'glucose')" in text
    assert "events.event: 2 values matched case-insensitively ('Feed ' -> 'feed')" in text
    assert "batches.status: 2 values matched case-insensitively ('Completed' -> 'completed')" in text
    assert "specs.kind: 1 value matched case-insensitively ('SPEC' -> 'spec')" in text
    assert set(c.observations["source"]) == {"offline"} and "glucose" in set(c.observations["variable"])
    assert c.events.filter(pl.col("event") == "feed").height == 2


def test_a2_a_category_matching_nothing_lists_the_valid_ones():
    err = _error(bw.SchemaError, _campaign, observations=_obs(source=pl.lit("lab")))
    [issue] = err.issues
    assert issue.message == (
        "unknown source 'lab'; expected one of online, offline, atline (18 rows; rows 0, 1, 2, 3, 4 …, "
        "counted from 0; batches B1, B2)."
    )


def test_a3_units_the_readers_convert_are_converted_with_the_raw_values_kept():
    obs = _obs(
        value=pl.when(pl.col("variable") == "glucose").then(pl.col("value") * 0.18016).otherwise(pl.col("value")),
        unit=pl.when(pl.col("variable") == "glucose")
        .then(pl.lit("g/L"))
        .when(pl.col("variable") == "vcd")
        .then(pl.lit("10^6 cells/mL"))
        .otherwise(pl.col("unit")),
    )
    with pytest.warns(bw.BioWorkbenchWarning) as record:
        c = _campaign(observations=obs)
    text = str(record[0].message)
    assert "observations: 6 glucose values converted from 'g/L' to 'mmol/L' (x5.55062)" in text
    assert "observations: 6 vcd values converted from '10^6 cells/mL' to '1e6 cells/mL' (x1)" in text
    assert "the originals are kept in raw_value/raw_unit" in text
    glc = c.observations.filter(pl.col("variable") == "glucose").sort("batch_id", "time_h")
    assert glc["unit"].unique().to_list() == ["mmol/L"]
    assert glc["value"].to_list() == pytest.approx([40.0, 35.0, 30.0] * 2)
    assert glc["raw_unit"].unique().to_list() == ["g/L"]
    assert glc["raw_value"].to_list() == pytest.approx([40.0 * 0.18016, 35.0 * 0.18016, 30.0 * 0.18016] * 2)
    # rows left as they were carry no raw value
    assert c.observations.filter(pl.col("variable") == "viability")["raw_value"].null_count() == 6


def test_a3_a_unit_that_cannot_be_converted_is_one_issue_per_unit():
    obs = _obs(unit=pl.when(pl.col("variable") == "glucose").then(pl.lit("cells")).otherwise(pl.col("unit")))
    err = _error(bw.SchemaError, _campaign, observations=obs)
    [issue] = err.issues
    assert issue.column == "unit" and issue.batch is None
    assert issue.message.startswith("found 'cells' for glucose; expected a unit convertible to mmol/L")
    assert issue.message.endswith("(6 rows; rows 2, 5, 8, 11, 14 …, counted from 0; batches B1, B2)")


def test_a4_viability_entered_as_a_fraction_is_flagged_suspect():
    obs = _obs(value=pl.when(pl.col("variable") == "viability").then(0.95).otherwise(pl.col("value")))
    with pytest.warns(bw.BioWorkbenchWarning, match="6 percentage values that look like a fraction"):
        c = _campaign(observations=obs)
    flagged = c.flagged()
    assert flagged.height == 6 and set(flagged["flag"]) == {"suspect"}
    assert set(flagged["flag_reason"]) == {"viability 0.95 % looks like a fraction; expected 0–100 %"}
    assert flagged["value"].to_list() == [0.95] * 6  # the raw value is kept


def test_a4_a_series_of_fractions_in_any_percentage_is_flagged_but_a_low_value_in_a_series_is_not():
    do = pl.DataFrame(
        {
            "batch_id": ["B1"] * 3 + ["B2"] * 3,
            "time_h": [0.0, 24.0, 48.0] * 2,
            "variable": ["do"] * 6,
            "value": [0.9, 0.6, 0.4, 90.0, 60.0, 0.5],
            "unit": ["%"] * 6,
            "source": ["online"] * 6,
        }
    )
    with pytest.warns(bw.BioWorkbenchWarning, match="3 percentage values"):
        c = _campaign(observations=pl.concat([small_frames()["observations"], do], how="diagonal_relaxed"))
    flagged = c.flagged()
    assert flagged["batch_id"].to_list() == ["B1"] * 3  # B2's 0.5 % after 60 % is a real low DO
    assert flagged["flag_reason"][0] == "do 0.9 % looks like a fraction; expected 0–100 %"


def test_a5_each_problem_once_per_column_with_a_count_and_the_first_rows():
    obs = _obs(variable=pl.when(pl.col("variable") == "vcd").then(pl.lit("vcdd")).otherwise(pl.col("variable")))
    err = _error(bw.SchemaError, _campaign, observations=obs)
    [issue] = err.issues
    assert issue.column == "variable"
    assert issue.message == "unknown variable 'vcdd' (6 rows; rows 0, 3, 6, 9, 12 …, counted from 0; batches B1, B2)."
    assert issue.hint.startswith("Did you mean 'vcd'?")


# =============================================================================================
# B. Campaign folders are verified on read
# =============================================================================================
@pytest.fixture
def folder(tmp_path):
    return _campaign(name="folder").write(tmp_path / "camp")


def _rewrite_meta(folder, edit):
    meta = yaml.safe_load((folder / "campaign.yaml").read_text())
    edit(meta)
    (folder / "campaign.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def test_b1_a_recomputed_hash_does_not_let_unvalidated_data_in(folder):
    obs = pl.read_parquet(folder / "observations.parquet")
    obs = obs.with_columns(
        value=pl.when(pl.int_range(pl.len()) == 1).then(-999.0).otherwise(pl.col("value")),
        batch_id=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("B99")).otherwise(pl.col("batch_id")),
    )
    obs.write_parquet(folder / "observations.parquet")

    def rehash(meta):
        meta["frames"]["observations"]["sha256"] = sha256_file(folder / "observations.parquet")

    _rewrite_meta(folder, rehash)
    err = _error(bw.SchemaError, bw.read_campaign, folder)
    text = str(err)
    assert f"2 problems in {folder / 'observations.parquet'}" in text
    assert "line 6, column \"batch_id\" (batch B99): batch 'B99' is not in the batches table (1 row)." in text
    assert 'line 3, column "value" (batch B1): viability = -999.0 % is impossible; expected between 0 and 100.' in text


def test_b1_a_validated_signed_folder_is_trusted_and_one_signed_with_another_key_is_validated(
    folder, monkeypatch, tmp_path
):
    from bioworkbench.campaign import model

    calls = []
    real = model.validate_frame
    monkeypatch.setattr(model, "validate_frame", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    assert bw.read_campaign(folder)._validated and calls == []
    monkeypatch.setenv("BIOWORKBENCH_KEY_FILE", str(tmp_path / "another.key"))
    bw.Campaign(name="other").write(tmp_path / "other")  # makes the other key
    calls.clear()
    c = bw.read_campaign(folder)
    assert c._validated and sorted(calls) == sorted(bw.campaign.FRAME_NAMES)


def test_b1_a_folder_written_without_validation_is_validated_on_read(tmp_path):
    obs = _obs(value=pl.when(pl.int_range(pl.len()) == 1).then(-999.0).otherwise(pl.col("value")))
    unchecked = bw.Campaign(**{**small_frames(), "observations": obs}, validate=False)
    path = unchecked.write(tmp_path / "unchecked")
    assert yaml.safe_load((path / "campaign.yaml").read_text())["validated"] is False
    err = _error(bw.SchemaError, bw.read_campaign, path)
    assert "viability = -999.0 % is impossible" in str(err)


def test_b2_a_listed_frame_that_was_deleted_is_an_error(folder):
    (folder / "events.parquet").unlink()
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    assert type(err).__name__ == "IntegrityError"
    [issue] = err.issues
    assert issue.file == str(folder / "events.parquet")
    assert issue.message == "campaign.yaml lists events (events.parquet, 4 rows) but the file is missing."


def test_b2_a_frame_not_listed_is_an_error(folder):
    _rewrite_meta(folder, lambda meta: meta["frames"].pop("quality"))
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    assert type(err).__name__ == "IntegrityError"
    assert err.issues[0].message.startswith("quality.parquet is not listed in campaign.yaml")


def test_b3_a_frame_cut_short_is_an_error_naming_the_counts(tmp_path):
    big = bw.simulate_campaign(n_batches=3, random_seed=1)
    path = big.write(tmp_path / "sim")
    n = big.events.height
    pl.read_parquet(path / "events.parquet").head(40).write_parquet(path / "events.parquet")
    err = _error(bw.DataReadError, bw.read_campaign, path)
    [issue] = err.issues
    assert issue.file == str(path / "events.parquet")
    assert issue.message.startswith(
        f"events changed: it has 40 rows where campaign.yaml records {n:,} and its sha256 is"
    )


def test_b4_an_edited_frame_is_reported_never_reread(folder):
    q = pl.read_parquet(folder / "quality.parquet").with_columns(value=pl.lit(2.2))
    q.write_parquet(folder / "quality.parquet")
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    [issue] = err.issues
    assert issue.message.startswith("quality changed: its sha256 is ")
    assert "where campaign.yaml records" in issue.message and "verify=False" in issue.hint
    assert bw.read_campaign(folder, verify=False).quality["value"].to_list() == [2.2]


def test_b5_overwrite_keeps_the_old_campaign_until_the_new_one_is_in_place(folder, monkeypatch):
    from pathlib import Path

    real_rename = Path.rename

    def failing_rename(self, target):
        if self.name.startswith(".camp-") and "-old-" not in self.name:
            raise OSError("disk full")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    new = bw.Campaign(**small_frames(), name="new")
    with pytest.raises(OSError, match="disk full"):
        new.write(folder, overwrite=True)
    monkeypatch.undo()
    assert bw.read_campaign(folder).name == "folder"
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".camp")) == []


@pytest.mark.parametrize("command", [["demo", "--n-batches", "2"], ["dataset", "ambr250"]])
def test_b5_cli_out_refuses_a_non_empty_folder_without_overwrite(tmp_path, capsys, command):
    """Defect 5: ``bioworkbench demo --out DIR`` emptied DIR without asking."""
    from bioworkbench.cli import main

    out = tmp_path / "results"
    out.mkdir()
    (out / "analysis.xlsx").write_text("someone's work")
    assert main([*command, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"FileExistsError: {out} is not empty (it holds analysis.xlsx); nothing was written." in err
    assert "Pass --overwrite to replace its contents" in err
    assert [p.name for p in out.iterdir()] == ["analysis.xlsx"]
    assert (out / "analysis.xlsx").read_text() == "someone's work"


def test_b6_campaign_yaml_that_is_a_list_is_a_located_error(folder):
    (folder / "campaign.yaml").write_text("- name: x\n- frames: {}\n")
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    assert str(err).startswith(
        f"{folder / 'campaign.yaml'}: line 1: campaign.yaml must be a mapping of keys (name, description, "
    )
    assert "found a list" in str(err)


def test_b6_campaign_yaml_with_unknown_keys_is_a_located_error(folder):
    text = (folder / "campaign.yaml").read_text()
    line = text.count("\n") + 1
    (folder / "campaign.yaml").write_text(text + "nmae: typo\nframes_extra: 1\n")
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    text = str(err)
    assert text.startswith(f"2 problems in {folder / 'campaign.yaml'}\n")
    assert f"line {line}, column \"nmae\": unknown key 'nmae'. Hint: Did you mean 'name'?" in text
    assert f"line {line + 1}, column \"frames_extra\": unknown key 'frames_extra'. Hint: Did you mean 'frames'?" in text


def test_b6_a_key_given_twice_in_campaign_yaml_is_a_located_error(folder):
    """Where the issue is silent: PyYAML keeps the last of two equal keys, so a second ``name:``
    (or a second ``frames:`` block) would have replaced the first without a word."""
    text = (folder / "campaign.yaml").read_text()
    first = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("name:"))
    line = text.count("\n") + 1
    (folder / "campaign.yaml").write_text(text + "name: another\n")
    err = _error(bw.DataReadError, bw.read_campaign, folder)
    assert str(err) == (
        f"{folder / 'campaign.yaml'}, line {line}: key 'name' is given twice (first on line {first}); "
        "YAML keeps only the last, so give it once."
    )


# =============================================================================================
# C. Every frame is validated
# =============================================================================================
def _events_with(**row) -> pl.DataFrame:
    base = {"batch_id": "B1", "time_h": 48.0, "event": "feed", "volume_ml": 30.0, "medium": "FeedA", "note": None}
    return pl.concat([small_frames()["events"], pl.DataFrame([{**base, **row}])], how="diagonal_relaxed")


@pytest.mark.parametrize(
    ("volume", "found"),
    [(float("inf"), "inf"), (float("nan"), "nan"), (-5.0, "-5.0")],
)
def test_c1_feed_volume_must_be_finite_and_not_negative(volume, found):
    err = _error(bw.SchemaError, _campaign, events=_events_with(volume_ml=volume))
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("volume_ml", "B1")
    assert issue.message == (
        f"volume_ml must be a finite number >= 0 (the event kind gives the direction); found {found} "
        "(row 4, counted from 0)."
    )


def test_c1_event_problems_in_a_csv_folder_name_file_and_line(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    for name, df in small_frames().items():
        df.write_csv(folder / f"{name}.csv")
    (folder / "events.csv").write_text(
        "batch_id,time_h,event,volume_ml,medium\nB1,0,inoculation,,\nB1,24,feed,inf,FeedA\nB2,24,feed,30,\n"
    )
    err = _error(bw.SchemaError, bw.read_campaign, folder)
    text = str(err)
    assert f"2 problems in {folder / 'events.csv'}" in text
    assert 'line 3, column "volume_ml" (batch B1): volume_ml must be a finite number >= 0' in text
    assert 'line 4, column "medium" (batch B2): feed at time_h=24.0 has no medium.' in text


def test_c2_a_duplicated_feed_row_is_an_error():
    events = small_frames()["events"]
    err = _error(bw.SchemaError, _campaign, events=pl.concat([events, events.slice(2, 1)]))
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("event", "B1")
    assert (
        issue.message
        == "feed at time_h=24.0 appears twice (the same row repeated) (first at row 2) (row 4, counted from 0)."
    )


def test_c2_a_feed_without_a_medium_is_an_error():
    err = _error(bw.SchemaError, _campaign, events=_events_with(medium=None, event="bolus"))
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("medium", "B1")
    assert issue.message == "bolus at time_h=48.0 has no medium (row 4, counted from 0)."


@pytest.mark.parametrize(
    ("value", "unit", "message"),
    [
        (float("nan"), "%", "value must be a finite number; found nan"),
        (float("inf"), "%", "value must be a finite number; found inf"),
        (-50.0, "%", "aggregates = -50.0 % is impossible; a percentage lies between 0 and 100"),
        (130.0, "percent", "aggregates = 130.0 percent is impossible; a percentage lies between 0 and 100"),
    ],
)
def test_c3_quality_values_finite_and_percentages_within_0_100(value, unit, message):
    quality = small_frames()["quality"].with_columns(value=pl.lit(value), unit=pl.lit(unit))
    err = _error(bw.SchemaError, _campaign, quality=quality)
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("value", "B1")
    assert issue.message == f"{message} (row 0, counted from 0)."


def test_c3_a_quality_attribute_that_is_a_variable_has_its_limits():
    quality = pl.DataFrame({"batch_id": ["B2"], "attribute": ["titer"], "value": [-3.0], "unit": ["mg/L"]})
    err = _error(bw.SchemaError, _campaign, quality=quality)
    assert (
        err.issues[0].message
        == "titer = -3.0 mg/L is impossible; expected between 0 and 100000 (row 0, counted from 0)."
    )


@pytest.mark.parametrize("limit", ["lower", "upper"])
def test_c4_spec_limits_must_be_finite(limit):
    specs = small_frames()["specs"].with_columns(pl.lit(float("nan")).alias(limit))
    err = _error(bw.SchemaError, _campaign, specs=specs)
    [issue] = err.issues
    assert issue.column == limit
    assert issue.message == f"spec 'aggregates': {limit} must be a finite number; found nan (row 0, counted from 0)."


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("scale_l", float("inf"), "scale_l must be a finite number > 0; found inf"),
        ("initial_volume_ml", float("nan"), "initial_volume_ml must be a finite number > 0; found nan"),
        ("cpp_ph", float("inf"), "cpp_ph must be a finite number (a set point); found inf"),
    ],
)
def test_c5_batch_numbers_must_be_finite(column, value, message):
    batches = small_frames()["batches"].with_columns(
        pl.when(pl.col("batch_id") == "B2").then(value).otherwise(pl.col(column)).alias(column)
    )
    err = _error(bw.SchemaError, _campaign, batches=batches)
    [issue] = err.issues
    assert (issue.column, issue.batch) == (column, "B2")
    assert issue.message == f"{message} (row 1, counted from 0)."


def test_c6_media_concentration_must_be_finite():
    media = small_frames()["media"].with_columns(concentration=pl.lit(float("inf")))
    err = _error(bw.SchemaError, _campaign, media=media)
    assert err.issues[0].message == "concentration must be a finite number >= 0; found inf (row 0, counted from 0)."


def test_c7_an_infinite_observation_is_an_error():
    obs = _obs(value=pl.when(pl.int_range(pl.len()) == 3).then(float("inf")).otherwise(pl.col("value")))
    err = _error(bw.SchemaError, _campaign, observations=obs)
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("value", "B1")
    assert issue.message == "vcd = inf is not a finite number (row 3, counted from 0)."


def _renamed(new_id: str) -> dict[str, pl.DataFrame]:
    """The small campaign with batch B2 renamed ``new_id`` in every frame."""
    return {
        k: v.with_columns(pl.col("batch_id").replace({"B2": new_id})) if "batch_id" in v.columns else v
        for k, v in small_frames().items()
    }


@pytest.mark.parametrize(
    ("batch_id", "problem"),
    [
        ("B2</script><script>alert(1)</script>", "holds '<', '>'"),
        ('B2" onmouseover="x', "holds '\"', '='"),
        ("B2 | x", "holds '|'"),
        ("B2\tx", "holds '\\t'"),
        ("B2 ", "starts or ends with a space"),
        ("B2  rerun", "has two spaces in a row"),
        ("B" * 65, "has 65 characters (at most 64)"),
    ],
)
def test_c8_batch_ids_outside_the_safe_set_are_refused_by_the_constructor(batch_id, problem):
    """Defect 1: a batch id holding ``</script>`` broke out of the embedded plot JSON; ids are now
    letters, digits, single inner spaces and ``_-.:+#/()`` (reported once, from the batches frame)."""
    err = _error(bw.SchemaError, bw.Campaign, **_renamed(batch_id))
    [issue] = err.issues
    assert (issue.column, issue.batch) == ("batch_id", batch_id)
    assert issue.message == (
        f"batch_id {batch_id!r} {problem}; a batch id is letters, digits, single inner spaces and "
        "_ - . : + # / ( ), at most 64 characters (row 1, counted from 0)."
    )
    assert issue.hint.startswith("rename the batch in the source")


@pytest.mark.parametrize(
    "batch_id", ["FB2-A-R1", "Lot 2023/041", "Run #3 (rerun)", "Réacteur_1.2", "反应器+1", "B" * 64]
)
def test_c8_batch_ids_labs_use_are_accepted(batch_id):
    c = bw.Campaign(**_renamed(batch_id))
    assert c.batches["batch_id"].to_list() == ["B1", batch_id]


def test_c8_batch_ids_of_a_frame_read_on_its_own_are_checked_with_file_and_line(tmp_path):
    path = tmp_path / "observations.csv"
    _obs().with_columns(
        batch_id=pl.when(pl.int_range(pl.len()) >= 9).then(pl.lit("B<2>")).otherwise("batch_id")
    ).write_csv(path)
    frame, first_line = bw.io.read_table(path)
    coerced, problems = bw.schema.coerce_frame("observations", frame, file=str(path), first_line=first_line)
    assert problems == []
    issues = bw.schema.validate_frame("observations", coerced, file=str(path), first_line=first_line)
    [issue] = issues
    assert (issue.file, issue.line, issue.column, issue.batch) == (str(path), 11, "batch_id", "B<2>")
    assert issue.message.startswith("batch_id 'B<2>' holds '<', '>'; a batch id is letters")
    assert issue.message.endswith("(9 rows; lines 11, 12, 13, 14, 15 …).")


# =============================================================================================
# D. Spreadsheets and readers
# =============================================================================================
XMAP = {
    "name": "xlsx-map",
    "batch": {"column": "Reactor"},
    "time": {"column": "Time (h)", "unit": "h"},
    "columns": {"VCD [1e6 cells/mL]": "vcd", "Glucose [g/L]": "glucose"},
}


def _xlsx(path, rows, *, first_row=1, errors=()):
    """A workbook written by openpyxl (which saves formulas without results) from ``rows``."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is not None:
                ws.cell(row=first_row + i, column=j + 1, value=value)
    for ref, text in errors:
        ws[ref].value = text
        ws[ref].data_type = "e"
    wb.save(path)
    return path


def test_d1_spreadsheet_junk_cells_are_errors_as_in_csv(tmp_path):
    path = _xlsx(
        tmp_path / "junk.xlsx",
        [
            ["Reactor", "Time (h)", "VCD [1e6 cells/mL]", "Glucose [g/L]"],
            ["R1", 0, 0.5, 6.0],
            ["R1", 24, "n/a", 5.0],
            ["R1", 48, "NA", 4.0],
            ["R1", 72, 2.0, "=C2*2"],
            ["R1", 96, 2.5, None],
        ],
        errors=[("D6", "#DIV/0!")],
    )
    err = _error(bw.SchemaError, read_wide, path, XMAP)
    found = {(i.line, i.column, i.batch, i.message) for i in err.issues}
    assert found == {
        (3, "VCD [1e6 cells/mL]", "R1", "expected a number for vcd, found 'n/a'."),
        (4, "VCD [1e6 cells/mL]", "R1", "expected a number for vcd, found 'NA'."),
        (5, "Glucose [g/L]", "R1", "expected a number for glucose, found '=C2*2'."),
        (6, "Glucose [g/L]", "R1", "expected a number for glucose, found '#DIV/0!'."),
    }
    hints = {i.line: i.hint for i in err.issues}
    assert "formula without a saved result" in hints[5] and "shows an error" in hints[6]
    assert all(i.file == str(path) for i in err.issues)


def test_d1_unreadable_event_volumes_are_errors_not_skipped(tmp_path):
    path = tmp_path / "ev.csv"
    path.write_text("Reactor,Time (h),VCD [1e6 cells/mL],Sample [mL]\nR1,0,0.5,4\nR1,24,1.0,n/a\n")
    cmap = {**XMAP, "columns": {"VCD [1e6 cells/mL]": "vcd"}, "events": [{"column": "Sample [mL]", "event": "sample"}]}
    err = _error(bw.SchemaError, read_wide, path, cmap)
    [issue] = err.issues
    assert (issue.line, issue.column, issue.batch) == (3, "Sample [mL]", "R1")
    assert issue.message == "expected a number for the sample volume, found 'n/a'."


def test_d1_unreadable_batch_metadata_is_an_error_not_a_traceback(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_text("Reactor,Time (h),VCD [1e6 cells/mL],Volume\nR1,0,0.5,about 1 L\nR1,24,1.0,\n")
    cmap = {
        **XMAP,
        "columns": {"VCD [1e6 cells/mL]": "vcd"},
        "ignore": ["Volume"],
        "batches": {"columns": {"initial_volume_ml": {"column": "Volume", "unit": "L"}}},
    }
    err = _error(bw.SchemaError, read_wide, path, cmap)
    [issue] = err.issues
    assert issue.file == str(path)
    assert issue.message.startswith("the batches metadata cannot be read as the map says (InvalidOperationError")


def test_d2_source_line_is_the_spreadsheet_row_with_blank_rows_and_a_late_header(tmp_path):
    path = _xlsx(
        tmp_path / "rows.xlsx",
        [
            ["Reactor", "Time (h)", "VCD [1e6 cells/mL]", "Glucose [g/L]"],
            ["R1", 0, 0.5, 6.0],
            [None, None, None, None],
            ["R1", 24, 1.0, 5.0],
            [None, None, None, None],
            ["R1", 48, 2.0, 4.0],
        ],
        first_row=3,
    )
    c = read_wide(path, XMAP)
    vcd = c.observations.filter(pl.col("variable") == "vcd").sort("time_h")
    assert vcd["source_line"].to_list() == [4, 6, 8]
    assert vcd["value"].to_list() == [0.5, 1.0, 2.0]


def test_d2_blank_csv_lines_keep_their_line_numbers(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("Reactor,Time (h),VCD [1e6 cells/mL],Glucose [g/L]\nR1,0,0.5,6\n,,,\nR1,24,1.0,5\n")
    c = read_wide(path, XMAP)
    assert c.observations.filter(pl.col("variable") == "vcd")["source_line"].to_list() == [2, 4]


def test_d3_a_header_unit_that_contradicts_the_map_is_an_error():
    cmap = {
        **XMAP,
        "columns": {"VCD [1e6 cells/mL]": "vcd", "Glucose [g/L]": {"variable": "glucose", "unit": "mmol/L"}},
    }
    err = _error(bw.ConfigError, bw.io.column_map, cmap)
    assert (
        "column 'Glucose [g/L]' (glucose): the header says 'g/L' but the map says unit: 'mmol/L' "
        "(1 g/L = 5.55062 mmol/L); the values would be read in the wrong unit." in str(err)
    )
    # the same unit spelled differently, and a label in brackets, agree
    ok = {
        **XMAP,
        "columns": {
            "VCD [10^6 cells/mL]": {"variable": "vcd", "unit": "1e6 cells/mL"},
            "Glc (YSI)": {"variable": "glucose", "unit": "g/L"},
        },
    }
    assert len(bw.io.column_map(ok).columns) == 2


WIDE_TEXT = "Reactor,Time (h),VCD [1e6 cells/mL],Glucose [g/L]\nR1,0,0.5,6\nR1,24,1.0,5\nR2,0,0.6,6.1\n"


@pytest.mark.parametrize(
    ("encoding", "expected", "option"),
    [
        ("utf-16", "line 1: the file cannot be read as UTF-8: it is UTF-16 (byte-order mark FF FE). ", "utf-16"),
        ("utf-32", "line 1: the file cannot be read as UTF-8: it is UTF-32 (byte-order mark FF FE 00 00). ", "utf-32"),
        ("utf-16-le", "line 1: the file cannot be read as UTF-8: it holds a NUL byte at byte 1 ", "utf-16-le"),
        ("utf-16-be", "line 1: the file cannot be read as UTF-8: it holds a NUL byte at byte 0 ", "utf-16-be"),
    ],
)
def test_d5_utf16_and_utf32_text_files_are_located_errors_or_read_when_named(tmp_path, encoding, expected, option):
    """Defect 10: a UTF-16 file read as UTF-8 was 'line 3: 1 fields where the header has 5' (ragged lines);
    now the encoding is named with the option to pass, and read exactly when it is passed."""
    path = tmp_path / "wide.csv"
    path.write_bytes(WIDE_TEXT.encode(encoding))
    for call in (lambda: bw.io.read_table(path), lambda: read_wide(path, XMAP)):
        err = _error(bw.DataReadError, call)
        assert str(err).startswith(f"{path}: {expected}"), str(err)
        assert f"encoding={option!r} (in a column map: read: {{encoding: {option}}})" in str(err)
    (tmp_path / "utf8.csv").write_text(WIDE_TEXT, encoding="utf-8")
    want = read_wide(tmp_path / "utf8.csv", XMAP).observations.drop("source_file")
    got = read_wide(path, {**XMAP, "read": {"encoding": option}}).observations.drop("source_file")
    assert_frame_equal(got, want)
    assert_frame_equal(bw.io.read_table(path, encoding=option).frame, bw.io.read_table(tmp_path / "utf8.csv").frame)


def test_d5_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(WIDE_TEXT.encode("utf-8-sig"))
    table = bw.io.read_table(path)
    assert table.frame.columns[0] == "Reactor" and table.frame.height == 3
    assert read_wide(path, XMAP).observations.height == 6


def test_d5_a_byte_that_is_not_utf8_is_located_and_never_replaced(tmp_path):
    """A Windows-1252 export ('µ' is 0xB5) was 'cannot be read as csv (invalid utf-8 sequence)'."""
    path = tmp_path / "cp1252.csv"
    path.write_bytes("Reactor,Time (h),VCD [1e6 cells/mL],Note\nR1,0,0.5,ok\nR1,24,1.0,5 µm clump\n".encode("cp1252"))
    err = _error(bw.DataReadError, bw.io.read_table, path)
    assert str(err).startswith(f"{path}: line 3, column 13: byte 0xB5 is not UTF-8; the file was saved in another")
    assert "encoding='cp1252'" in str(err) and "no byte is replaced or dropped" in str(err)
    assert bw.io.read_table(path, encoding="cp1252").frame["Note"].to_list() == ["ok", "5 µm clump"]


TS_MAP = {
    "batch": {"column": "Reactor"},
    "time": {"column": "Timestamp", "unit": "timestamp"},
    "columns": {"VCD [1e6 cells/mL]": "vcd"},
}


def test_d4_naive_timestamps_need_a_time_zone(tmp_path):
    path = tmp_path / "ts.csv"
    path.write_text("Reactor,Timestamp,VCD [1e6 cells/mL]\nR1,2026-03-28 12:00,0.5\nR1,2026-03-29 12:00,1.0\n")
    err = _error(bw.SchemaError, read_wide, path, TS_MAP)
    [issue] = err.issues
    assert (issue.line, issue.column, issue.batch) == (2, "Timestamp", "R1")
    assert issue.message == (
        "timestamps without a time zone (2 rows, e.g. '2026-03-28 12:00'); their UTC time is not known."
    )
    assert "timezone='Europe/Berlin'" in issue.hint
    # across the spring change in Berlin, a day of clock time is 23 hours
    c = read_wide(path, TS_MAP, timezone="Europe/Berlin")
    assert sorted(c.observations["time_h"].to_list()) == [0.0, 23.0]
    assert sorted(read_wide(path, TS_MAP, timezone="UTC").observations["time_h"].to_list()) == [0.0, 24.0]
    # timestamps that carry their UTC offset (any ISO spelling) need no time zone
    path.write_text(
        "Reactor,Timestamp,VCD [1e6 cells/mL]\nR1,2026-03-28T12:00+01:00,0.5\nR1,2026-03-29 12:00+02:00,1.0\n"
    )
    assert sorted(read_wide(path, TS_MAP).observations["time_h"].to_list()) == [0.0, 23.0]


def test_d4_ambiguous_local_times_are_errors_at_their_line(tmp_path):
    path = tmp_path / "ts.csv"
    path.write_text(
        "Reactor,Timestamp,VCD [1e6 cells/mL]\nR1,2026-10-24 12:00,0.5\nR1,2026-10-25 02:30,0.7\nR1,2026-10-25 12:00,1.0\n"
    )
    err = _error(bw.SchemaError, read_wide, path, {**TS_MAP, "time": {**TS_MAP["time"], "timezone": "Europe/Berlin"}})
    [issue] = err.issues
    assert (issue.line, issue.column, issue.batch) == (3, "Timestamp", "R1")
    assert "local time '2026-10-25 02:30' is ambiguous or does not exist in Europe/Berlin" in issue.message


# =============================================================================================
# E. Errors in the right place
# =============================================================================================
def test_e1_csv_with_lineage_columns_is_located_in_the_file_read(tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    for name, df in small_frames().items():
        df.write_csv(folder / f"{name}.csv")
    (folder / "observations.csv").write_text(
        "batch_id,time_h,variable,value,unit,source_file,source_line\n"
        "B1,0,vcd,0.5,1e6 cells/mL,run7.xlsx,14\n"
        "B1,24,viability,140,%,run7.xlsx,15\n"
    )
    err = _error(bw.SchemaError, bw.read_campaign, folder)
    [issue] = err.issues
    assert issue.file == str(folder / "observations.csv")
    assert (issue.line, issue.column, issue.batch) == (3, "value", "B1")
    assert issue.message == (
        "viability = 140.0 % is impossible; expected between 0 and 100 (first recorded from run7.xlsx line 15)."
    )


def test_e2_a_semicolon_file_with_decimal_commas_gets_the_options_to_pass(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Reactor;Time (h);VCD [1e6 cells/mL];Glucose [g/L]\nR1;0;0,5;6,1\nR1;24;1,2;5,0\n")
    err = _error(bw.DataReadError, read_wide, path, XMAP)
    text = str(err)
    assert text.startswith(f"{path}: line 1: the file looks semicolon-separated (';'-separated with decimal commas")
    assert (
        "Pass separator=';', decimal_comma=True (in a column map: read: {separator: ';', decimal_comma: true})." in text
    )
    assert "truncate_ragged_lines" not in text


def test_e2_a_ragged_line_is_named_without_advice_to_drop_fields(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("Reactor,Time (h),VCD [1e6 cells/mL],Glucose [g/L]\nR1,0,0.5,6\nR1,24,1,2,5\n")
    err = _error(bw.DataReadError, read_wide, path, XMAP)
    assert str(err).startswith(f"{path}: line 3: 5 fields where the header (line 1) has 4.")
    assert "truncate_ragged_lines" not in str(err)


def test_e3_iso_dates_in_different_spellings_are_all_read():
    batches = small_frames()["batches"].with_columns(start=pl.Series(["2026-01-05 08:00", "2026-01-06T09:30:00+01:00"]))
    c = _campaign(batches=batches)
    assert [str(t) for t in c.batches["start"]] == ["2026-01-05 08:00:00+00:00", "2026-01-06 08:30:00+00:00"]


def test_e4_a_bad_ignore_regex_is_a_located_config_error():
    err = _error(bw.ConfigError, bw.io.column_map, {**XMAP, "ignore": ["CDW_[123] [g/L"]})
    assert (
        "ignore: 'CDW_[123] [g/L' is not a valid regular expression (unterminated character set at position 10)"
        in str(err)
    )


def test_e4_a_column_listed_twice_in_a_map_file_is_a_located_error(tmp_path):
    """Where the issue is silent: a header listed twice under ``columns:`` was read as the second
    variable (VCD values stored as viability, in the VCD's unit) without a word."""
    path = tmp_path / "map.yaml"
    path.write_text(
        "name: m\nbatch: {column: Reactor}\ntime: {column: Time (h), unit: h}\ncolumns:\n"
        "  VCD [1e6 cells/mL]: vcd\n  Glucose [g/L]: glucose\n  VCD [1e6 cells/mL]: viability\n"
    )
    err = _error(bw.ConfigError, bw.io.column_map, path)
    assert str(err) == (
        f"{path}, line 7: key 'VCD [1e6 cells/mL]' is given twice (first on line 5); "
        "YAML keeps only the last, so give it once."
    )
    path.write_text("name: m\ncolumns: {a: vcd\n")
    err = _error(bw.ConfigError, bw.io.column_map, path)
    assert str(err).startswith(f"{path}, line 3, column 1: not valid YAML: ")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"columns": ["VCD [1e6 cells/mL]"]}, "'columns' must be a mapping of header -> variable; found list"),
        ({"time": {"column": "Time (h)", "unit": "h", "zone": "UTC"}}, "time: unknown key 'zone'. Hint: Did you mean"),
        (
            {"batch": {"from_filename": "run_(B\\d+)"}},
            "batch: from_filename 'run_(B\\\\d+)' has no group named 'batch'",
        ),
        (
            {"time": {"column": "Time (h)", "unit": "timestamp", "timezone": "Europe/Berlinn"}},
            "time zone 'Europe/Berlinn' is not known",
        ),
    ],
)
def test_e4_malformed_column_maps_are_config_errors_not_tracebacks(edit, expected):
    err = _error(bw.ConfigError, bw.io.column_map, {**XMAP, **edit})
    assert expected in str(err)
