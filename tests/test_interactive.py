"""The explorer's Python objects, the dashboard's computations and the ``serve`` command (no browser).

The browser tests are in tests/test_interactive_browser.py.
"""

from __future__ import annotations

import re

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import plots


@pytest.fixture(scope="module")
def camp():
    return bw.simulate_campaign(n_batches=8, random_seed=3)


@pytest.fixture(scope="module")
def live(camp):
    """Two batches cut mid-culture: status running."""
    return camp.as_of({"B07": 5 * 24.0, "B08": 8 * 24.0})


# -- trajectories: title, legend and colour bar ---------------------------------------------------
def test_trajectories_coloured_by_a_number_have_a_colour_bar(camp):
    import holoviews as hv

    fig = hv.render(
        plots.plot_trajectories(camp.observations, variable="vcd", color_by="cpp_feed_rate_pct", batches=camp.batches)
    )
    assert fig.title.text.startswith("Viable cell density (1e6 cells/mL): 8 batches")
    assert "colour: feed rate pct" in fig.title.text
    bars = [r for r in fig.right if type(r).__name__ == "ColorBar"]
    assert len(bars) == 1 and bars[0].title == "feed rate pct"
    lo, hi = camp.batches["cpp_feed_rate_pct"].min(), camp.batches["cpp_feed_rate_pct"].max()
    assert (bars[0].color_mapper.low, bars[0].color_mapper.high) == (lo, hi)


def test_trajectories_coloured_by_status_have_a_legend_and_grey_others(live):
    import holoviews as hv

    fig = hv.render(
        plots.plot_trajectories(
            live.observations, variable="titer", color_by="status", batches=live.batches, selected=["B07", "B01"]
        )
    )
    assert "2 selected" in fig.title.text and "Product titer (mg/L)" in fig.title.text
    labels = [i.label["value"] for i in fig.legend[0].items]
    assert labels == ["other batches", "status: completed", "status: running"]


def test_trajectories_color_by_needs_batches_and_a_known_column(camp):
    with pytest.raises(bw.ArgumentError, match="color_by='status' needs the batches table"):
        plots.plot_trajectories(camp.observations, variable="vcd", color_by="status")
    with pytest.raises(bw.SchemaError, match="missing required column 'cpp_nope'"):
        plots.plot_trajectories(camp.observations, variable="vcd", color_by="cpp_nope", batches=camp.batches)


# -- explorer ------------------------------------------------------------------------------------
@pytest.fixture
def explorer(live):
    return bw.explore(live, color_by="cpp_ph_setpoint")


def test_explorer_selection_from_the_table_reaches_every_view(explorer):
    rows = explorer._rows()
    explorer.summary.selection = [rows.index("B02"), rows.index("B05")]
    assert explorer.selected == ["B02", "B05"]
    for fig in explorer.figures():
        assert ", 2 selected" in _title(fig)
    assert "2 selected" in _title(explorer.scatter.object)
    assert explorer.scatter.object.Points.Selected.data["batch_id"].tolist() == ["B02", "B05"]
    assert "B02, B05" in explorer.message.object


def test_explorer_selection_from_the_scatter_ticks_the_table(explorer):
    ids = (
        explorer.table.filter(pl.col("batch_id").is_in(explorer.shown))
        .drop_nulls([explorer.pick_x.value, explorer.pick_y.value])["batch_id"]
        .to_list()
    )
    explorer.scatter_stream.event(index=[0, 2])
    assert explorer.selected == sorted([ids[0], ids[2]])
    rows = explorer._rows()
    assert sorted(rows[i] for i in explorer.summary.selection) == explorer.selected


def test_explorer_pickers_filter_and_keep_the_selection_consistent(explorer, live):
    explorer.select(["B07", "B01"])
    explorer.pick_status.value = ["running"]
    assert explorer.shown == ["B07", "B08"]
    assert explorer.summary.value["batch_id"].tolist() == ["B07", "B08"]
    assert explorer.summary.selection == [0]  # B01 is hidden; B07 stays ticked
    explorer.pick_status.value = list(explorer.pick_status.options)
    level = str(live.batches.filter(pl.col("batch_id") == "B03")["cpp_ph_setpoint"][0])
    explorer.pick_levels["cpp_ph_setpoint"].value = [level]
    expected = live.batches.filter(pl.col("cpp_ph_setpoint").cast(pl.String) == level)["batch_id"].to_list()
    assert explorer.shown == expected
    explorer.pick_ids.value = ["B03"]
    assert explorer.shown == ["B03"]


def test_explorer_variables_get_their_own_plots_and_axes(explorer):
    explorer.pick_variables.value = ["vcd", "titer", "glucose"]
    figs = explorer.figures()
    titles = [_title(f) for f in figs]
    assert [t.split(":")[0] for t in titles] == [
        "Viable cell density (1e6 cells/mL)",
        "Product titer (mg/L)",
        "D-glucose (mmol/L)",
    ]
    assert len(explorer.trajectories.objects) == 3
    explorer.pick_colour.value = "status"
    assert all("colour: status" in _title(f) for f in explorer.figures())


def test_explorer_refuses_unknown_names(live):
    with pytest.raises(bw.SchemaError, match=r"explore: variables: unknown variables 'vcdd'.*vcd"):
        bw.explore(live, variables=["vcdd"])
    with pytest.raises(bw.SchemaError, match=r"explore: batch_ids: unknown batches 'B99'"):
        bw.explore(live).select(["B99"])
    with pytest.raises(bw.ArgumentError, match=r"must end in \.html"):
        bw.explore(live).save("view.png")


def test_explorer_save_writes_one_offline_file(explorer, tmp_path):
    explorer.select(["B02"])
    path = explorer.save(tmp_path / "view.html")
    text = path.read_text()
    # no script, style or icon loaded from the internet (the browser test opens it offline too)
    assert re.findall(r'<(?:script|link)[^>]+(?:src|href)="(?:https?:)?//[^"]*"', text) == []
    assert "selected: B02" in text


def _title(fig) -> str:
    import holoviews as hv

    return hv.render(fig).title.text.replace("\n", " ")


# -- dashboard computations ------------------------------------------------------------------------
def test_snapshot_of_running_batches(live):
    from bioworkbench.interactive.live import snapshot

    snap = snapshot(live)
    assert snap.running == ["B07", "B08"] and snap.completed == ["B01", "B03", "B04", "B05", "B06"]  # B02 aborted
    assert snap.known_h == {"B07": 120.0, "B08": 192.0}
    b7 = snap.batches["B07"]
    assert b7.day == pytest.approx(5.0) and b7.level in ("ok", "watch", "alarm")
    assert b7.latest["variable"].to_list()[:2] == ["vcd", "viability"]
    last_vcd = (
        live.observations.filter(
            (pl.col("batch_id") == "B07") & (pl.col("variable") == "vcd") & (pl.col("source") == "offline")
        )
        .filter(pl.col("flag").is_null())
        .sort("time_h")["value"][-1]
    )
    assert b7.latest["value"][0] == last_vcd
    assert b7.open_exceptions == snap.exceptions.filter(pl.col("batch_id") == "B07").height
    assert set(snap.monitor["batch_id"].unique().to_list()) == {"B07", "B08"}
    assert snap.golden.height and snap.envelope.height


def test_batch_page_data_and_update_in_place(live):
    """Every running batch has the same figures; a batch change replaces data and titles, not figures."""
    from bioworkbench.interactive.batch_page import BatchPage, page_data
    from bioworkbench.interactive.live import snapshot

    snap = snapshot(live)
    b7, b8 = page_data(snap, "B07"), page_data(snap, "B08")
    keys = {tab: [f.key for f in figs] for tab, figs in b7.items()}
    assert keys == {tab: [f.key for f in figs] for tab, figs in b8.items()}
    assert [k[1] for k in keys["mspc"]] == ["t2", "spe"] and keys["online"] and keys["offline"][0] == ("offline", "vcd")
    ph = next(f for f in b7["online"] if f.key == ("online", "ph"))
    # the aligned pH of B07 up to day 5 (none past its latest time), in days
    aligned = snap.aligned.filter(
        (pl.col("batch_id") == "B07") & (pl.col("variable") == "ph") & pl.col("value").is_not_null()
    ).sort("maturity")
    assert ph.batch["value"] == aligned["value"].to_list() and max(ph.batch["day"]) == pytest.approx(5.0)
    assert "B07 vs golden batch" in ph.title.replace("\n", " ")
    lo = dict(zip(ph.band["day"], ph.band["lower"], strict=True))
    hi = dict(zip(ph.band["day"], ph.band["upper"], strict=True))
    expected_out = [d for d, v in zip(ph.batch["day"], ph.batch["value"], strict=True) if v > hi[d] or v < lo[d]]
    assert ph.out["day"] == expected_out

    page = BatchPage(b7, notes=snap.notes)
    figure = page._figures[("online", "ph")].figure
    page.show(b8, exceptions="<p>No open exceptions.</p>", n_exceptions=3)
    assert page._figures[("online", "ph")].figure is figure  # the same Bokeh figure, new data
    assert (
        "B08" in figure.title.text
        and page._figures[("online", "ph")].batch.data
        == next(f for f in b8["online"] if f.key == ("online", "ph")).batch
    )
    assert page.tabs._names[-1] == "Exceptions (3)"


def test_snapshot_status_follows_an_excursion(live):
    """A pH far outside the golden batch at the latest point makes the batch 'Act now'."""
    from bioworkbench.interactive.live import snapshot

    obs = live.observations
    last = obs.filter((pl.col("batch_id") == "B08") & (pl.col("variable") == "ph") & (pl.col("source") == "online"))
    t_max = last["time_h"].max()
    bent = obs.with_columns(
        value=pl.when(
            (pl.col("batch_id") == "B08")
            & (pl.col("variable") == "ph")
            & (pl.col("source") == "online")
            & (pl.col("time_h") >= t_max - 10)
        )
        .then(pl.col("value") + 1.5)
        .otherwise(pl.col("value"))
    )
    camp = bw.Campaign(**{**live.frames(), "observations": bent}, name="bent")
    now = [r for r in snapshot(live).batches["B08"].reasons if r.endswith("outside the golden batch now")]
    assert not any("pH" in r for r in now)
    s = snapshot(camp).batches["B08"]
    now = [r for r in s.reasons if r.endswith("outside the golden batch now")]
    assert s.level == "alarm" and s.status.startswith("Act now: ") and "pH" in now[0]


def test_folder_watch_rereads_only_when_files_change(live, tmp_path):
    from bioworkbench.interactive.live import FolderWatch

    folder = live.write(tmp_path / "live")
    w = FolderWatch(folder)
    assert w.refresh() is True and w.refresh() is False
    first = w.snapshot
    _append_vcd(folder, "B07", 121.0, 12.345)
    assert w.refresh() is True and w.snapshot is not first
    assert w.snapshot.batches["B07"].latest.filter(pl.col("variable") == "vcd")["value"][0] == 12.345
    with pytest.raises(bw.DataReadError, match="does not exist"):
        FolderWatch(tmp_path / "nowhere")


def _append_vcd(folder, batch_id: str, time_h: float, value: float) -> None:
    """A new offline VCD sample, written the way the project writes a campaign folder."""
    c = bw.read_campaign(folder)
    obs = c.observations
    row = obs.filter((pl.col("batch_id") == batch_id) & (pl.col("variable") == "vcd") & (pl.col("source") == "offline"))
    new = row.tail(1).with_columns(time_h=pl.lit(time_h), value=pl.lit(value))
    bw.Campaign(**{**c.frames(), "observations": pl.concat([obs, new])}, name=c.name, description=c.description).write(
        folder, overwrite=True
    )


def test_serve_command_help_and_refusals(capsys, tmp_path):
    from bioworkbench.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    for flag in ("--campaign", "--port", "--refresh", "--address", "--no-forecast"):
        assert flag in out
    assert "127.0.0.1" in out
    assert main(["serve", "--campaign", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_import_bioworkbench_does_not_load_panel():
    import subprocess
    import sys

    code = "import sys, bioworkbench as bw; bw.explore; print('panel' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- the dashboard watching a store --------------------------------------------------------------
@pytest.fixture
def store_url(tmp_path):
    """A DuckDB store holding a small demo campaign with B02 running (known up to day 5)."""
    url = f"duckdb:///{tmp_path / 'plant.duckdb'}"
    with bw.open_store(url) as store:
        store.add(bw.simulate_campaign(n_batches=6, random_seed=1).as_of({"B02": 120.0}), source="demo")
    return url


def _new_vcd(store, batch_id: str, time_h: float, value: float) -> None:
    """A new offline VCD sample of ``batch_id``, added to the store as one ingest."""
    last = store.campaign([batch_id], variables=["vcd"]).observations.filter(pl.col("source") == "offline")
    store.add({"observations": last.tail(1).with_columns(time_h=pl.lit(time_h), value=pl.lit(value))}, source="lims")


def test_store_watch_rereads_only_after_an_ingest(store_url, monkeypatch):
    from bioworkbench.database import Store
    from bioworkbench.interactive.store_watch import StoreWatch

    reads = []
    campaign = Store.campaign
    monkeypatch.setattr(Store, "campaign", lambda self, *a, **k: reads.append(k) or campaign(self, *a, **k))
    w = StoreWatch(store_url)
    assert w.snapshot is None and w.name == "plant"
    assert w.refresh() is True and len(reads) == 1
    first = w.snapshot
    assert first.running == ["B02"] and first.known_h == {"B02": 120.0}
    assert first.campaign.batch_ids == ["B01", "B02", "B03", "B04", "B05", "B06"]
    assert w.label == f"store {store_url}"
    # nothing new: the ingest log is asked, the campaign is not read again
    assert w.refresh() is False and w.refresh() is False
    assert len(reads) == 1 and w.reads == 1 and w.snapshot is first
    with bw.open_store(store_url) as store:
        _new_vcd(store, "B02", 121.0, 12.345)
    reads.clear()  # _new_vcd read the store too
    assert w.refresh() is True and len(reads) == 1 and w.reads == 2 and w.snapshot is not first
    b02 = w.snapshot.batches["B02"]
    assert b02.latest.filter(pl.col("variable") == "vcd")["value"][0] == 12.345
    assert w.snapshot.known_h == {"B02": 121.0} and w.error is None
    assert w.refresh() is False and len(reads) == 1


def test_store_watch_keeps_the_last_snapshot_when_the_store_cannot_be_read(store_url, monkeypatch):
    from bioworkbench.database import Store
    from bioworkbench.interactive.store_watch import StoreWatch

    w = StoreWatch(store_url)
    w.refresh()
    first = w.snapshot
    with bw.open_store(store_url) as store:
        _new_vcd(store, "B02", 121.0, 12.345)

    def broken(self, *args, **kwargs):
        raise bw.DataReadError("the database went away")

    monkeypatch.setattr(Store, "campaign", broken)
    assert w.refresh() is True and w.snapshot is first
    assert w.error == "DataReadError: the database went away"
    assert w.refresh() is False and w.snapshot is first  # the same error again: nothing new to show
    monkeypatch.undo()
    assert w.refresh() is True and w.error is None and w.snapshot.known_h == {"B02": 121.0}


def test_store_watch_sends_its_campaign_to_the_forecast(store_url):
    """The forecast worker gets the snapshot's campaign (it does not open the store a second time)."""
    from bioworkbench.interactive.store_watch import StoreWatch

    class Service:
        def get(self, where, known_h, *, campaign=None):
            self.asked = (where, known_h, campaign)
            return None

    w, service = StoreWatch(store_url), Service()
    assert w.forecast(service) is None and not hasattr(service, "asked")  # nothing read yet
    w.refresh()
    w.forecast(service)
    assert service.asked == (store_url, {"B02": 120.0}, w.snapshot.campaign)


def test_store_watch_refuses_what_it_cannot_watch(tmp_path):
    from bioworkbench.interactive.store_watch import StoreWatch

    with pytest.raises(bw.DataReadError, match=r"store file .*nowhere\.duckdb .*does not exist"):
        StoreWatch(f"duckdb:///{tmp_path / 'nowhere.duckdb'}")
    assert not (tmp_path / "nowhere.duckdb").exists()  # a watch does not create a store
    with pytest.raises(bw.ArgumentError, match="in-memory store"):
        StoreWatch("duckdb:///:memory:")
    with pytest.raises(bw.ArgumentError, match="must be a store URL"):
        StoreWatch(None)


def test_serve_store_command_refusals(capsys, tmp_path, store_url):
    from bioworkbench.cli import main
    from bioworkbench.interactive.dashboard import DashboardServer

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--store" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: not allowed with argument --campaign
        main(["serve", "--campaign", str(tmp_path), "--store", store_url])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["serve", "--store", f"duckdb:///{tmp_path / 'typo.duckdb'}"]) == 1
    err = capsys.readouterr().err
    assert "typo.duckdb" in err and "does not exist" in err
    with pytest.raises(bw.ArgumentError, match="not both"):
        DashboardServer(tmp_path, store=store_url)
    with pytest.raises(bw.ArgumentError, match="not neither"):
        DashboardServer()


def test_store_watch_reads_the_duckdb_file_of_a_url_as_the_store_does():
    from bioworkbench.interactive.store_watch import _duckdb_file

    assert _duckdb_file("duckdb:///data/plant.duckdb?batch_ids=B01") == "data/plant.duckdb"
    assert _duckdb_file("duckdb:////tmp/plant.duckdb") == "/tmp/plant.duckdb"
    assert _duckdb_file("postgresql://lab/plant") is None
