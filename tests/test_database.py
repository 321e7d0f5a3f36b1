"""The campaign store (bioworkbench.database): the same tests against DuckDB and a real PostgreSQL.

PostgreSQL runs for the test session in a temporary folder, on a Unix socket only
(tests/database_server.py); without its programs the PostgreSQL cases skip with the reason
(scripts/ensure-postgres.sh installs them for ``make test``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_data
from database_server import PostgresServer, find_pg_bin
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.cli import main
from bioworkbench.database import ingest_files, open_store, read_batch_records, read_quality
from bioworkbench.errors import ArgumentError, DataReadError, SchemaError

pytest.importorskip("duckdb")


@pytest.fixture(scope="session")
def pg_server():
    pytest.importorskip("psycopg")
    bin_dir, why = find_pg_bin()
    if bin_dir is None:
        pytest.skip(why)
    server = PostgresServer(bin_dir)
    yield server
    server.stop()


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path}/plant.duckdb"
    return request.getfixturevalue("pg_server").new_database()


@pytest.fixture
def store(store_url):
    with open_store(store_url) as s:
        yield s


@pytest.fixture(scope="module")
def sim():
    return bw.simulate_campaign(n_batches=3, random_seed=7)


def _sorted(frame: pl.DataFrame, keys) -> pl.DataFrame:
    return frame.sort(keys)


def test_round_trip_keeps_every_frame(store, sim):
    result = store.add(sim, source="sim")
    assert result.rows_added == sum(f.height for f in sim.frames().values() if f.height)
    assert result.rows_superseded == 0
    back = store.campaign()
    assert back.batch_ids == sim.batch_ids
    assert_frame_equal(back.batches, sim.batches.sort("batch_id"), check_column_order=False)
    keys = ["batch_id", "variable", "time_h", "source"]
    assert_frame_equal(_sorted(back.observations, keys), _sorted(sim.observations, keys))
    for name, keys in {"events": ["batch_id", "time_h", "event"], "quality": ["batch_id", "attribute"]}.items():
        assert_frame_equal(_sorted(back.frames()[name], keys), _sorted(sim.frames()[name], keys))
    assert_frame_equal(back.media.sort("medium", "variable"), sim.media.sort("medium", "variable"))
    assert back.sources == {"sim": ""}


def test_adding_the_same_again_adds_nothing(store, sim):
    store.add(sim, source="first")
    again = store.add(sim, source="again")
    assert (again.rows_added, again.rows_superseded) == (0, 0)
    assert again.rows_unchanged == sum(f.height for f in sim.frames().values() if f.height)
    log = store.ingest_log()
    assert log["source"].to_list() == ["first", "again"]
    assert log["rows_added"].to_list() == [again.rows_unchanged, 0]
    assert log["who"].null_count() == 0


def test_a_correction_supersedes_and_keeps_history(store, sim):
    store.add(sim, source="lims v1")
    row = (
        sim.offline()
        .filter(pl.col("batch_id") == "B02", pl.col("variable") == "glucose")
        .sort("time_h")
        .row(3, named=True)
    )
    fixed = pl.DataFrame([{**row, "value": row["value"] + 1.5}]).select(sim.observations.columns)
    result = store.add({"observations": fixed}, source="lims v2")
    assert (result.rows_added, result.rows_superseded, result.rows_unchanged) == (1, 1, 0)
    hist = store.history("B02", "glucose").filter(pl.col("time_h") == row["time_h"], pl.col("source") == "offline")
    assert hist.height == 2
    old, new = hist.sort("row_id").iter_rows(named=True)
    assert old["value"] == row["value"] and new["value"] == pytest.approx(row["value"] + 1.5)
    assert old["superseded_by"] == new["row_id"] and old["superseded_at"] is not None
    assert new["superseded_at"] is None
    assert (old["ingest_source"], new["ingest_source"]) == ("lims v1", "lims v2")
    current = store.campaign(["B02"], variables=["glucose"]).observations
    at = current.filter(pl.col("time_h") == row["time_h"], pl.col("source") == "offline")
    assert at["value"].to_list() == [pytest.approx(row["value"] + 1.5)]
    assert "lims v2" in store.campaign(["B02"], variables=["glucose"]).sources


def test_query_reads_only_what_is_asked(store, sim):
    store.add(sim, source="sim")
    part = store.campaign(["B03", "B01"], variables=["glucose", "vcd"])
    assert part.batch_ids == ["B01", "B03"]
    assert set(part.observations["variable"].unique()) == {"glucose", "vcd"}
    expected = sim.observations.filter(
        pl.col("batch_id").is_in(["B01", "B03"]), pl.col("variable").is_in(["glucose", "vcd"])
    ).height
    assert part.observations.height == expected
    assert set(part.events["batch_id"].unique()) == {"B01", "B03"}
    with pytest.raises(ArgumentError, match="B99"):
        store.campaign(["B01", "B99"])


def test_since_selects_batches_by_start(store, sim):
    store.add(sim, source="sim")
    starts = sim.batches.sort("start")
    cut = starts["start"][1]
    later = store.campaign(since=cut)
    assert later.batch_ids == sorted(starts.filter(pl.col("start") >= cut)["batch_id"].to_list())
    with pytest.raises(ArgumentError, match="ISO date"):
        store.campaign(since="last tuesday")


def test_rows_for_unknown_batches_create_them_by_id(store, sim):
    store.add(sim, source="sim")
    quality = pl.DataFrame({"batch_id": ["B01", "B77"], "attribute": ["titer", "titer"], "value": [3.1, 2.2]})
    result = store.add({"quality": quality}, source="lims.csv", kind="quality")
    assert result.batches_created == ("B77",)
    assert "B77" in store.batch_ids()
    assert store.history("B77", "titer", frame="quality")["value"].to_list() == [2.2]


def test_duplicate_keys_in_one_add_are_refused(store, sim):
    obs = sim.observations.head(1)
    with pytest.raises(SchemaError, match="share a key"):
        store.add({"batches": sim.batches, "observations": pl.concat([obs, obs])}, source="dup")
    assert store.ingest_log().height == 0


def test_a_failed_add_leaves_the_store_as_it_was(store, sim, monkeypatch):
    store.add(sim, source="sim")
    before = store.campaign().observations.height
    original = type(store)._append

    def failing(self, name, frame, ingest_id, now):
        if name == "quality":
            raise RuntimeError("disk full")
        return original(self, name, frame, ingest_id, now)

    monkeypatch.setattr(type(store), "_append", failing)
    more = sim.observations.with_columns(pl.col("time_h") + 1000.0)
    with pytest.raises(RuntimeError):
        store.add({"observations": more, "quality": sim.quality.with_columns(pl.col("value") * 2)}, source="x")
    monkeypatch.undo()
    assert store.campaign().observations.height == before
    assert store.ingest_log()["source"].to_list() == ["sim"]


def test_store_persists_across_connections(store_url, sim):
    with open_store(store_url) as s:
        s.add(sim, source="sim")
    with open_store(store_url) as s:
        assert s.batch_ids() == sim.batch_ids
        assert s.ingest_log().height == 1


def test_open_store_refuses_unknown_urls(tmp_path):
    with pytest.raises(ArgumentError, match="duckdb:///"):
        open_store("mysql://lab/bw")
    with pytest.raises(DataReadError, match="cannot connect"):
        open_store(f"postgresql:///bw?host={tmp_path}&connect_timeout=2")


def test_read_quality_long_and_wide(tmp_path):
    long = tmp_path / "lims_long.csv"
    long.write_text("Batch,attribute,value,unit\nB01,titer,3.2,g/L\nB02,titer,2.9,g/L\n")
    wide = tmp_path / "lims_wide.csv"
    wide.write_text("lot,titer (g/L),aggregates [%]\nB01,3.2,1.1\nB02,,0.9\n")
    q1, q2 = read_quality(long), read_quality(wide)
    assert q1["value"].to_list() == [3.2, 2.9] and q1["unit"].to_list() == ["g/L", "g/L"]
    assert q2.select("batch_id", "attribute", "value", "unit").rows() == [
        ("B01", "titer", 3.2, "g/L"),
        ("B01", "aggregates", 1.1, "%"),
        ("B02", "aggregates", 0.9, "%"),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("batch_id,titer (g/L)\nB01,3.2\nB02,n/a\n")
    with pytest.raises(SchemaError, match=r'line 3, column "titer \(g/L\)" \(batch B02\)'):
        read_quality(bad)


def test_ingest_skips_a_file_seen_before(store, sim, tmp_path):
    store.add(sim, source="sim")
    lims = tmp_path / "lims.csv"
    lims.write_text("batch_id,titer (g/L)\nB01,3.3\nB02,2.7\n")
    (first,) = ingest_files(store, [lims])
    assert (first.rows_added, first.skipped) == (2, False)
    (second,) = ingest_files(store, [lims])
    assert second.skipped and second.reason.startswith(f"already ingested: ingest {first.ingest_id} on ")
    copy = tmp_path / "lims copy.csv"
    copy.write_bytes(lims.read_bytes())
    (third,) = ingest_files(store, [copy])
    assert third.skipped and f"already ingested: same sha256 as {lims}, ingest {first.ingest_id}" in third.reason
    log = store.ingest_log()
    assert log.filter(pl.col("source") == str(lims))["kind"].to_list() == ["quality"]


def test_ingest_instrument_file_times_from_the_store(store):
    path = shared_data("instruments", "novabio_flex2", "testdata", "SampleResults2022-06-28_142558.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obs = bw.read_instrument(path)
    first_seen = obs["measured_at"].min()
    batches = pl.DataFrame({"batch_id": obs["batch_id"].unique().to_list()}).with_columns(
        start=pl.lit(first_seen).dt.offset_by("-2d")
    )
    store.add({"batches": batches}, source="mes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (result,) = ingest_files(store, [path])
    assert result.rows_added == obs.height
    c = store.campaign(validate=False)
    assert c.observations["time_h"].min() == pytest.approx(48.0, abs=24.0)
    assert c.observations["instrument"].unique().to_list() == ["flex2"]


def test_cli_ingest(store_url, tmp_path, capsys):
    lims = tmp_path / "lims.csv"
    lims.write_text("batch_id,attribute,value\nB01,titer,3.3\n")
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b\n1,2\n")
    assert main(["ingest", str(lims), "--store", store_url]) == 0
    assert "2 rows added" in (out := capsys.readouterr().out) and "new batch(es) known by id only: B01" in out
    assert main(["ingest", str(lims), str(junk), "--store", store_url]) == 1
    out, err = capsys.readouterr()
    assert "skipped (already ingested: ingest " in out
    assert "junk.csv" in err and "--map" in err


def test_read_only_duckdb_store_reads_and_refuses_writes(tmp_path, sim):
    url = f"duckdb:///{tmp_path}/plant.duckdb"
    with bw.open_store(url) as rw:
        rw.add(sim, source="sim")
        stamp = rw.latest_ingest()
    assert stamp == (1, 1)
    with bw.open_store(url, read_only=True) as ro:
        assert ro.latest_ingest() == stamp
        assert sorted(ro.campaign().batch_ids) == sorted(sim.batch_ids)
        with pytest.raises(bw.ArgumentError, match="opened read-only"):
            ro.add(sim, source="again")
    empty = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(empty)).close()  # a DuckDB file that is not a store
    with pytest.raises(bw.DataReadError, match="not a bioworkbench store"):
        bw.open_store(f"duckdb:///{empty}", read_only=True)


def test_batch_records_give_instrument_readings_their_culture_time(store, tmp_path):
    examples = Path(bw.__file__).parent / "instruments" / "examples"
    records, flex2 = examples / "batch_records.csv", examples / "SampleResults2022-06-28_142558.csv"
    results = ingest_files(store, [records, flex2])
    assert [r.rows_added for r in results] == [2, 15]
    assert store.ingest_log()["kind"].to_list() == ["batches", "instrument:flex2"]
    c = store.campaign(["BATCH_123"], validate=False)
    assert c.batches["start"].to_list() == [dt.datetime(2022, 6, 20, 9, tzinfo=dt.UTC)]
    assert c.batches["process"].to_list() == ["fed-batch"]
    # 2022-06-24 14:34:52 is 4 days, 5 h 34 min 52 s after the start
    assert c.observations["time_h"].unique().to_list() == [pytest.approx(101.58111, abs=1e-4)]
    assert "measured_at" not in c.observations.columns


def test_batch_records_with_a_bad_start_are_refused_located(tmp_path):
    bad = tmp_path / "mes.csv"
    bad.write_text("Batch,start,scale_l\nB01,2024-03-01T08:00:00Z,2\nB02,yesterday,2\n")
    with pytest.raises(SchemaError) as info:
        read_batch_records(bad)
    msg = str(info.value)
    assert str(bad) in msg and "line 3" in msg and "start" in msg and "yesterday" in msg
