"""Every shipped parameter set passes the checks made before a kernel starts.

``make demo`` runs ``parameters/`` as a whole: one set naming a batch the campaign does not hold
(as ``ambr250_R01.yaml`` once did: the Ambr 250 data start at reactor R05) fails the demo only after
the other reports have run. Here the campaigns ``make demo`` writes (``data/demo``, ``data/nistcho``,
``data/ambr250``, and the store ``data/plant.duckdb``) are written into a temporary project root and
every file under ``parameters/`` is checked against its notebook's declared parameters, its campaign
folder or store and its batch, exactly as ``bioworkbench run`` checks it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import bioworkbench as bw
from bioworkbench.reports import check_parameters, notebook_parameters, read_parameter_file

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "parameters").glob("*/*.yaml"))


@pytest.fixture(scope="module")
def project_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project root holding what ``make demo`` writes under data/, and the package's shipped files."""
    root = tmp_path_factory.mktemp("project")
    for name in ("demo", "nistcho", "ambr250"):
        bw.datasets.write(name, root / "data" / name)
    (root / "bioworkbench").symlink_to(ROOT / "bioworkbench")  # shipped study files are named from the root
    # the store make demo fills: the demo campaign, batch records and instrument exports
    examples = ROOT / "bioworkbench" / "instruments" / "examples"
    files = ["batch_records.csv", "SampleResults2022-06-28_142558.csv", "roche_cedex_hires_example_1.csv"]
    with bw.open_store(f"duckdb:///{root}/data/plant.duckdb") as store:
        bw.database.ingest_files(store, [root / "data" / "demo", *(examples / f for f in files)])
    return root


def test_every_report_has_a_parameter_set():
    reports = {p.parent.name for p in FILES}
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert reports == notebooks


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_parameter_file_passes_the_checks_before_the_kernel(path: Path, project_root: Path, monkeypatch):
    monkeypatch.chdir(project_root)
    report = path.parent.name
    declared = notebook_parameters(ROOT / "notebooks" / f"{report}.ipynb")
    values = read_parameter_file(path).values
    full = check_parameters(report, values, declared, source=str(path))
    if "campaign" in declared and full["campaign"].startswith("duckdb:"):  # a store: its file, and the batches
        assert bw.database.parse_store_url(full["campaign"]).path.is_file()
    elif "campaign" in declared:
        assert Path(full["campaign"]).is_dir()
