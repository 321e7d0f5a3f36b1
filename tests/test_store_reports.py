"""Reports from a store, and ``bioworkbench run --changed``.

A report's ``campaign`` may be a store URL with a selection (``duckdb:///data/plant.duckdb?
batch_ids=B01,B02``): checked before the kernel (unknown keys, missing store, unknown batches),
read into a campaign folder the notebook reads, and recorded in the manifest with the
selection's stamp. ``run --changed`` re-runs only reports whose inputs changed since their last
completed run. The kernel runs use a two-cell notebook (read the campaign, print its batches),
so that a real run costs a kernel start and no analysis.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import polars as pl
import pytest
from database_server import PostgresServer, find_pg_bin

import bioworkbench as bw
from bioworkbench.cli import main
from bioworkbench.database import parse_store_url
from bioworkbench.errors import ArgumentError, ConfigError
from bioworkbench.reports import check_parameters, notebook_parameters, run_report
from bioworkbench.reports.changed import changed_reports
from bioworkbench.reports.run import read_store_selection

pytest.importorskip("duckdb")

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "bioworkbench"


def _tiny_notebook(folder: Path) -> Path:
    """notebooks/tiny.ipynb: a parameters cell, then read the campaign and print its batches and variables."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('campaign: str = "../data/demo"  # the campaign folder or store URL')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import bioworkbench as bw\n"
            "camp = bw.read_campaign(campaign)\n"
            "print('batches', ','.join(sorted(camp.batch_ids)))\n"
            "print('variables', ','.join(sorted(camp.observations['variable'].unique())))"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python (bioworkbench)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "tiny.ipynb")
    return folder


def _stdout(run_dir: Path) -> str:
    nb = nbformat.read(run_dir / "tiny.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


@pytest.fixture(scope="module")
def sim():
    return bw.simulate_campaign(n_batches=4, random_seed=3)


@pytest.fixture
def project(tmp_path, sim, monkeypatch):
    """A project folder: data/plant.duckdb holding 4 batches, notebooks/tiny.ipynb, cwd there."""
    with bw.open_store(f"duckdb:///{tmp_path}/data/plant.duckdb") as store:
        store.add(sim, source="sim")
    _tiny_notebook(tmp_path / "notebooks")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BW_NOTEBOOKS", str(tmp_path / "notebooks"))
    return tmp_path


def _yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- the URL ------------------------------------------------------------------------------------
def test_store_url_splits_store_and_selection(tmp_path):
    q = parse_store_url("duckdb:///data/plant.duckdb?batch_ids=B01,B02&since=2024-03-01&variables=vcd", base=tmp_path)
    assert q.url == f"duckdb:///{tmp_path}/data/plant.duckdb"
    assert q.selection == {"batch_ids": ["B01", "B02"], "since": "2024-03-01", "variables": ["vcd"]}
    assert str(q) == f"duckdb:///{tmp_path}/data/plant.duckdb?batch_ids=B01,B02&since=2024-03-01&variables=vcd"
    assert parse_store_url("duckdb:///data/plant.duckdb").url == "duckdb:///data/plant.duckdb"
    pytest.importorskip("psycopg")
    pg = parse_store_url("postgresql:///plant?host=/run/pg&user=bw&batch_ids=B07")
    assert pg.url == "postgresql:///plant?host=/run/pg&user=bw" and pg.batch_ids == ("B07",)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("duckdb:///p.duckdb?batch=B01", "unknown query key 'batch'. Did you mean 'batch_ids'?"),
        ("duckdb:///p.duckdb?batch_ids=B01&batch_ids=B02", "'batch_ids' is given twice"),
        ("duckdb:///p.duckdb?batch_ids=B01,,B02", "holds an empty item"),
        ("duckdb:///p.duckdb?since=last-week", "since='last-week' is not an ISO date"),
    ],
)
def test_store_url_mistakes_are_refused(url, message):
    with pytest.raises(ArgumentError) as info:
        parse_store_url(url)
    assert message in str(info.value)


# -- checked before the kernel --------------------------------------------------------------------
def test_unknown_query_key_is_refused_naming_the_file_and_key(project):
    pf = _yaml(project / "parameters" / "tiny" / "a.yaml", "campaign: duckdb:///data/plant.duckdb?batch_idz=B01\n")
    with pytest.raises(ConfigError) as info:
        run_report("tiny", parameter_file=pf, output_dir=project / "out", kernel=KERNEL)
    msg = str(info.value)
    assert msg.startswith(f"{pf}: campaign 'duckdb:///data/plant.duckdb?batch_idz=B01': unknown query key 'batch_idz'")
    assert "Did you mean 'batch_ids'?" in msg and "batch_ids, since, variables" in msg
    assert not (project / "out").exists()


def test_missing_store_and_unknown_batches_are_refused(project):
    declared = notebook_parameters(project / "notebooks" / "tiny.ipynb")
    with pytest.raises(ConfigError, match=r"a\.yaml: campaign .*store file .*other\.duckdb does not exist.*ingest"):
        check_parameters("tiny", {"campaign": "duckdb:///data/other.duckdb"}, declared, source="a.yaml")
    assert not (project / "data" / "other.duckdb").exists()  # the check does not create a store
    with pytest.raises(ConfigError) as info:
        check_parameters(
            "tiny", {"campaign": "duckdb:///data/plant.duckdb?batch_ids=B01,B5"}, declared, source="a.yaml"
        )
    assert "1 batch id(s) not in the store" in str(info.value) and "B5" in str(info.value)
    assert "Did you mean 'B05'?" not in str(info.value)  # the store holds B01..B04
    assert "B01, B02, B03, B04" in str(info.value)


def test_batch_report_batch_must_be_in_the_selection(project):
    declared = notebook_parameters(ROOT / "notebooks" / "batch_report.ipynb")
    ok = check_parameters(
        "batch_report", {"campaign": "duckdb:///data/plant.duckdb?batch_ids=B01,B02", "batch_id": "B02"}, declared
    )
    assert ok["campaign"] == f"duckdb:///{project}/data/plant.duckdb?batch_ids=B01,B02"
    with pytest.raises(
        ConfigError, match=r"batch 'B03' is not among the batches that campaign .* selects \(2: B01, B02\)"
    ):
        check_parameters(
            "batch_report", {"campaign": "duckdb:///data/plant.duckdb?batch_ids=B01,B02", "batch_id": "B03"}, declared
        )


# -- a real run from the store --------------------------------------------------------------------
def test_report_reads_only_the_selection_from_the_store(project, sim):
    res = run_report(
        "tiny",
        parameters={"campaign": "duckdb:///data/plant.duckdb?batch_ids=B04,B02&variables=vcd,glucose"},
        output_dir=project / "out",
        kernel=KERNEL,
    )
    assert res.status == "completed"
    out = _stdout(res.run_dir)
    assert "batches B02,B04\n" in out and "variables glucose,vcd\n" in out
    m = json.loads((res.run_dir / "manifest.json").read_text())
    url = f"duckdb:///{project}/data/plant.duckdb?batch_ids=B04,B02&variables=vcd,glucose"
    assert m["parameters"]["campaign"] == url
    s = m["store_input"]
    assert s["selection"] == {"batch_ids": ["B04", "B02"], "variables": ["vcd", "glucose"]}
    assert s["stamp"]["last_ingest"] == 1 and s["stamp"]["batches"] == 2 and s["batches"] == ["B02", "B04"]
    assert s["store"] == f"duckdb:///{project}/data/plant.duckdb"
    assert f"{url}#observations.parquet" in m["inputs_sha256"]
    assert not list(Path(project).glob("bw-store-campaign-*"))


# -- PostgreSQL ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg")
    bin_dir, why = find_pg_bin()
    if bin_dir is None:
        pytest.skip(why)
    server = PostgresServer(bin_dir)
    yield server.new_database()
    server.stop()


def test_selection_from_postgresql(pg_url, sim, tmp_path):
    with bw.open_store(pg_url) as store:
        store.add(sim, source="sim")
    declared = notebook_parameters(_tiny_notebook(tmp_path / "nb") / "tiny.ipynb")
    url = f"{pg_url}&batch_ids=B01,B03&variables=vcd"
    full = check_parameters("tiny", {"campaign": url}, declared, source="pg.yaml")
    assert full["campaign"] == url
    with pytest.raises(ConfigError, match=r"pg\.yaml: campaign .*unknown query key 'hots'. Did you mean 'host'\?"):
        check_parameters("tiny", {"campaign": url.replace("host=", "hots=")}, declared, source="pg.yaml")
    record = read_store_selection(url, tmp_path / "campaign")
    assert record["batches"] == ["B01", "B03"] and record["stamp"]["last_ingest"] == 1
    camp = bw.read_campaign(tmp_path / "campaign")
    assert sorted(camp.batch_ids) == ["B01", "B03"]
    assert camp.observations["variable"].unique().to_list() == ["vcd"]


# -- run --changed ------------------------------------------------------------------------------
def _fake_papermill(monkeypatch, fail: bool = False):
    """papermill's executor replaced: copy the notebook (or fail in cell 1), for decisions that need no kernel."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    def fake(input_path, output_path, **kwargs):
        shutil.copy(input_path, output_path)
        if fail:
            raise PapermillExecutionError(1, 1, "boom", "RuntimeError", "boom", [])

    monkeypatch.setattr(papermill, "execute_notebook", fake)


def _decisions(project) -> dict[str, tuple[bool, str]]:
    found = changed_reports([project / "parameters"], output_dir=project / "out", kernel=KERNEL)
    return {d.file.name: (d.run, d.reason) for d in found}


def test_changed_decides_from_the_manifests(project, monkeypatch):
    params = project / "parameters" / "tiny"
    _yaml(params / "a.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B01,B02\n")
    _yaml(params / "b.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B03\n")
    _yaml(params / "late.yaml", "campaign: duckdb:///data/plant.duckdb?since=2099-01-01T00:00:00\n")
    bw.simulate_campaign(n_batches=2, random_seed=1).write(project / "data" / "folder")
    _yaml(params / "folder.yaml", "campaign: data/folder\n")
    assert {k: v[0] for k, v in _decisions(project).items()} == dict.fromkeys(
        ("a.yaml", "b.yaml", "folder.yaml", "late.yaml"), True
    )
    assert "never run" in _decisions(project)["a.yaml"][1]
    _fake_papermill(monkeypatch)
    for f in sorted(params.glob("*.yaml")):
        run_report("tiny", parameter_file=f.resolve(), output_dir=project / "out", kernel=KERNEL)
    d = _decisions(project)
    assert not any(run for run, _ in d.values()), d
    assert d["a.yaml"][1].startswith("unchanged since its last completed run")

    # new data for B03 only: b re-runs, a does not
    with bw.open_store("duckdb:///data/plant.duckdb") as store:
        store.add({"quality": pl.DataFrame({"batch_id": ["B03"], "attribute": ["aggregates"], "value": [2.0]})})
    d = _decisions(project)
    assert not d["a.yaml"][0] and not d["late.yaml"][0]
    assert (
        d["b.yaml"] == (True, d["b.yaml"][1]) and "new data for its selection (newest ingest 2, was 1" in d["b.yaml"][1]
    )

    # a batch that starts later enters the 'since' selection
    start = pl.datetime(2099, 6, 1, time_zone="UTC")
    with bw.open_store("duckdb:///data/plant.duckdb") as store:
        store.add({"batches": pl.DataFrame({"batch_id": ["B99"]}).with_columns(start=start)})
    d = _decisions(project)
    assert d["late.yaml"][0] and "batches its selection names changed (0 -> 1 batches)" in d["late.yaml"][1]

    # a correction of a value of a selected batch
    run_report("tiny", parameter_file=(params / "a.yaml").resolve(), output_dir=project / "out", kernel=KERNEL)
    assert not _decisions(project)["a.yaml"][0]
    with bw.open_store("duckdb:///data/plant.duckdb") as store:
        row = store.campaign(["B01"]).observations.filter(pl.col("variable") == "vcd").head(1)
        store.add({"observations": row.with_columns(value=pl.col("value") * 1.1)}, source="correction")
    assert "new data" in _decisions(project)["a.yaml"][1]

    # the campaign folder's files, the parameter file and the notebook are compared by sha256
    (project / "data" / "folder" / "notes.txt").write_text("added later\n")
    assert "input files changed" in (r := _decisions(project)["folder.yaml"][1]) and "notes.txt (added)" in r
    _yaml(params / "b.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B03,B04\n")
    assert _decisions(project)["b.yaml"][1] == "the parameter file changed"
    nb = nbformat.read(project / "notebooks" / "tiny.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("One more sentence."))
    nbformat.write(nb, project / "notebooks" / "tiny.ipynb")
    assert "tiny.ipynb (changed)" in _decisions(project)["late.yaml"][1]


def test_changed_runs_a_report_whose_last_run_failed(project, monkeypatch):
    pf = _yaml(project / "parameters" / "tiny" / "a.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B01\n")
    _fake_papermill(monkeypatch, fail=True)
    res = run_report(
        "tiny", parameter_file=pf.resolve(), output_dir=project / "out", kernel=KERNEL, raise_on_failure=False
    )
    assert res.status == "failed"
    run, reason = _decisions(project)["a.yaml"]
    assert run and reason == f"its last run {res.run_dir.name} is failed"


def test_cli_run_changed_with_real_runs(project, capsys):
    params = project / "parameters" / "tiny"
    _yaml(params / "a.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B01,B02\n")
    _yaml(params / "b.yaml", "campaign: duckdb:///data/plant.duckdb?batch_ids=B03\n")
    argv = ["run", str(project / "parameters"), "-o", str(project / "out"), "--workers", "2", "--changed"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 of 2 reports to run" in out and "2 of 2 reports completed" in out
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped: tiny/a.yaml: unchanged since" in out and "skipped: tiny/b.yaml: unchanged since" in out
    assert "0 of 2 reports to run" in out and "completed" not in out.split("skipped.")[-1]
    with bw.open_store("duckdb:///data/plant.duckdb") as store:
        store.add({"quality": pl.DataFrame({"batch_id": ["B03"], "attribute": ["titer_final"], "value": [3.1]})})
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped: tiny/a.yaml" in out and "run: tiny/b.yaml: the store has new data" in out
    assert "1 of 1 reports completed" in out
    runs = sorted((project / "out" / "tiny").iterdir())
    assert len(runs) == 3 and "batches B03\n" in _stdout(runs[-1])


def test_a_password_in_the_store_url_is_refused(project):
    pytest.importorskip("psycopg")
    declared = notebook_parameters(project / "notebooks" / "tiny.ipynb")
    with pytest.raises(ConfigError, match=r"a\.yaml: campaign names a store URL with a password.*~/.pgpass"):
        check_parameters(
            "tiny", {"campaign": "postgresql://bw:secret@db.lab/plant?batch_ids=B01"}, declared, source="a.yaml"
        )
    with pytest.raises(ConfigError, match=r"with a password"):
        check_parameters(
            "tiny", {"campaign": "postgresql:///plant?host=/run/pg&password=secret"}, declared, source="a.yaml"
        )
