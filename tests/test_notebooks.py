"""The report notebooks are their own source: linted, stripped, and with a declared parameters cell.

There is no generator: the committed ``notebooks/*.ipynb`` are what JupyterLab edits and what the
reports run. These tests hold them to the checks ``make lint`` makes (so that a notebook saved with
outputs, or with code ruff refuses, fails the test run as well), and check the parameters cell that
``bioworkbench report`` and ``bioworkbench run`` read: the first code cell, tagged ``parameters``,
one ``name: type = default  # help [constraint]`` line per parameter, each with its help.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bioworkbench.reports import notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BIN = Path(sys.executable).parent


def test_there_are_notebooks_and_no_generator():
    names = {p.stem for p in NOTEBOOKS}
    assert {"batch_report", "campaign_report", "growth_report", "doe_report", "stability_report"} <= names
    assert not (ROOT / "scripts" / "make_notebooks.py").exists()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_first_typed_and_documented(notebook: Path):
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0].get("metadata", {}).get("tags", []), "the first code cell is the parameters cell"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    params = notebook_parameters(notebook)  # raises ConfigError on a line that is not `name: type = default`
    assert params
    undocumented = [name for name, p in params.items() if not p.help]
    assert undocumented == [], f"{notebook.name}: parameters without a '# help' comment: {undocumented}"
    known = {"str", "int", "float", "bool", "list", "dict"}
    assert {p.type for p in params.values()} <= known


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped(notebook: Path):
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{notebook.name} cell {i} holds outputs"
            assert cell.get("execution_count") is None, f"{notebook.name} cell {i} has an execution count"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "bioworkbench"


def test_nbstripout_verify_passes_and_can_fail(tmp_path: Path):
    """The check `make lint` runs: it passes on the committed notebooks and fails on one with an output."""
    ok = subprocess.run([BIN / "nbstripout", "--verify", *NOTEBOOKS], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    cell["execution_count"] = 1
    dirty = tmp_path / "dirty.ipynb"
    dirty.write_text(json.dumps(nb), encoding="utf-8")
    bad = subprocess.run([BIN / "nbstripout", "--verify", dirty], capture_output=True, text=True)
    assert bad.returncode != 0


def test_ruff_checks_the_notebooks(tmp_path: Path):
    """Notebooks are not excluded from ruff: the committed ones pass, and an unused import in one fails."""
    ok = subprocess.run(
        [BIN / "ruff", "check", "--no-cache", ROOT / "notebooks"], capture_output=True, text=True, cwd=ROOT
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    nb = json.loads(NOTEBOOKS[0].read_text(encoding="utf-8"))
    cell = next(
        c for c in nb["cells"] if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])
    )
    cell["source"] = ["import os\n", *cell["source"]]
    (tmp_path / "notebooks").mkdir()
    bad_nb = tmp_path / "notebooks" / "bad.ipynb"
    bad_nb.write_text(json.dumps(nb), encoding="utf-8")
    bad = subprocess.run(
        [BIN / "ruff", "check", "--no-cache", "--config", ROOT / "pyproject.toml", bad_nb],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode != 0 and "F401" in bad.stdout


def test_batch_report_sampler_defaults_are_the_forecasts():
    """The batch report's forecast runs with the forecast's own defaults (they pass the diagnostics)."""
    fc = importlib.import_module("bioworkbench.models.forecast")  # the module (bw.models.forecast is the function)

    params = notebook_parameters(ROOT / "notebooks" / "batch_report.ipynb")
    assert params["draws"].default == fc.DEFAULT_DRAWS
    assert params["tune"].default == fc.DEFAULT_TUNE
