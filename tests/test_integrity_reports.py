"""Run records that prove what was used, and parameters checked before the kernel (issue 20).

Each test names the defect it guards against. Runs here use a fake papermill (the notebook is
copied, then the test's ``behaviour`` runs) so they take a second; the signal tests run the runner
in a subprocess, because SIGTERM and SIGKILL end the process that receives them.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.errors import ConfigError, ReportError
from bioworkbench.reports import (
    load_parameter_file,
    notebook_parameters,
    recover_interrupted,
    run_report,
    write_index,
)

ROOT = Path(__file__).resolve().parents[1]
KERNEL = os.environ.get("BW_KERNEL", "bioworkbench")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def campaign_dir(tmp_path_factory) -> Path:
    camp = bw.simulate_campaign(n_batches=3, random_seed=3, days=7, online_interval_min=120)
    return camp.write(tmp_path_factory.mktemp("campaign") / "small")


def _notebook(folder: Path, name: str, parameters: str) -> Path:
    """A report notebook ``name`` with the given parameters cell and one harmless cell."""
    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("1 + 1")])
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path) -> Path:
    folder = tmp_path / "notebooks"
    _notebook(
        folder, "tiny", 'campaign: str = ""  # path of the campaign folder\nrandom_seed: int = 7  # seed [0, inf)'
    )
    return folder


def _fake_papermill(monkeypatch, behaviour=lambda out: None):
    """papermill copies the notebook, then ``behaviour(output_path)`` runs (no kernel)."""
    import papermill

    def fake(input_path, output_path, **kwargs):
        shutil.copy(input_path, output_path)
        behaviour(Path(output_path))

    monkeypatch.setattr(papermill, "execute_notebook", fake)


@pytest.fixture
def no_kernel(monkeypatch):
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started although the input should have been refused")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def _copy(campaign_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "campaign"
    shutil.copytree(campaign_dir, dest)
    return dest


# ---------------------------------------------------------------------------------------------
# inputs hashed before the kernel and checked after; outputs hashed
# ---------------------------------------------------------------------------------------------
def test_an_input_changed_mid_run_fails_the_run(monkeypatch, campaign_dir, notebooks, tmp_path):
    """Defect: inputs were hashed after the run, so a file swapped mid-run was recorded with its new
    hash while the report showed the old data."""
    camp = _copy(campaign_dir, tmp_path)
    obs = camp / "observations.parquet"
    before = _sha256(obs)

    def swap(out):
        obs.write_bytes(obs.read_bytes() + b"swapped")

    _fake_papermill(monkeypatch, swap)
    with pytest.raises(ReportError) as info:
        run_report("tiny", parameters={"campaign": str(camp)}, output_dir=tmp_path / "out", notebooks=notebooks,
                   kernel=KERNEL)  # fmt: skip
    msg = str(info.value)
    assert msg.startswith("report tiny failed: 1 input file changed while the report ran: ")
    assert f"{obs} (sha256 {before[:12]}… before, {_sha256(obs)[:12]}… after)" in msg
    (run,) = (tmp_path / "out" / "tiny").iterdir()
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"]["ename"] == "InputsChanged"
    assert m["inputs_sha256"][str(obs)] == before  # what the run read, not what lies there now
    assert m["inputs_changed"] == [{"file": str(obs), "sha256_before": before, "sha256_after": _sha256(obs)}]


def test_files_added_or_removed_mid_run_are_changes(monkeypatch, campaign_dir, notebooks, tmp_path):
    camp = _copy(campaign_dir, tmp_path)

    def edit(out):
        (camp / "events.parquet").unlink()
        (camp / "extra.csv").write_text("a\n1\n")

    _fake_papermill(monkeypatch, edit)
    res = run_report("tiny", parameters={"campaign": str(camp)}, output_dir=tmp_path / "out", notebooks=notebooks,
                     kernel=KERNEL, raise_on_failure=False)  # fmt: skip
    assert res.status == "failed"
    changed = {
        c["file"]: (c["sha256_before"] is None, c["sha256_after"] is None) for c in res.manifest["inputs_changed"]
    }
    assert changed == {str(camp / "events.parquet"): (False, True), str(camp / "extra.csv"): (True, False)}
    assert "2 input files changed while the report ran" in res.manifest["error"]["evalue"]
    assert "(removed)" in res.manifest["error"]["evalue"] and "(added)" in res.manifest["error"]["evalue"]


def test_unchanged_inputs_complete_and_outputs_are_hashed(monkeypatch, campaign_dir, notebooks, tmp_path):
    """Defect: outputs were not hashed. Also: an output folder inside the campaign folder is not an input."""
    _fake_papermill(monkeypatch)
    camp = _copy(campaign_dir, tmp_path)
    res = run_report("tiny", parameters={"campaign": str(camp)}, output_dir=camp / "reports", notebooks=notebooks,
                     kernel=KERNEL)  # fmt: skip
    assert res.status == "completed" and res.manifest["inputs_changed"] == []
    assert not any("/reports/" in f for f in res.manifest["inputs_sha256"])
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["outputs_sha256"] == {
        "tiny.ipynb": _sha256(res.run_dir / "tiny.ipynb"),
        "report.html": _sha256(res.run_dir / "report.html"),
    }


def test_parameter_file_hash_is_of_the_bytes_read(monkeypatch, campaign_dir, notebooks, tmp_path):
    pf = tmp_path / "p.yaml"
    pf.write_text(f"campaign: {campaign_dir}\n")
    sha = _sha256(pf)

    def edit(out):  # read once before the kernel: editing it later changes nothing the run used
        pf.write_text(f"campaign: {campaign_dir}\nrandom_seed: 3\n")

    _fake_papermill(monkeypatch, edit)
    res = run_report("tiny", parameter_file=pf, output_dir=tmp_path / "out", notebooks=notebooks, kernel=KERNEL)
    assert res.status == "completed"
    assert res.manifest["inputs_sha256"][str(pf.resolve())] == sha
    assert res.manifest["parameters"]["random_seed"] == 7


def test_manifest_records_what_changes_numbers(monkeypatch, campaign_dir, notebooks, tmp_path):
    """Reproducible forecasts: seeds, the versions of the sampling stack, the sampler backend,
    the environment variables that change numbers, the platform."""
    monkeypatch.setenv("PYTENSOR_FLAGS", "floatX=float64")
    monkeypatch.setenv("BW_TEST_MARK", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    _fake_papermill(monkeypatch)
    res = run_report("tiny", parameters={"campaign": str(campaign_dir), "random_seed": 11},
                     output_dir=tmp_path / "out", notebooks=notebooks, kernel=KERNEL)  # fmt: skip
    m = json.loads((res.run_dir / "manifest.json").read_text())
    assert m["random_seeds"] == {"random_seed": 11}
    from importlib import metadata

    for pkg in ("pymc", "pytensor", "nutpie", "numpy", "polars", "numba"):
        assert m["versions"][pkg] == metadata.version(pkg), pkg
    assert m["sampler"] == {"auto_backend": "nutpie"}
    assert m["environment"]["PYTENSOR_FLAGS"] == "floatX=float64"
    assert m["environment"]["OMP_NUM_THREADS"] is None and m["environment"]["BW_TEST_MARK"] == "1"
    assert m["platform"]["machine"] == platform.machine() and m["platform"]["cpu_count"] == os.cpu_count()
    assert m["kernel_python"]


# ---------------------------------------------------------------------------------------------
# interrupted runs: SIGTERM handled, SIGKILL found by the next index
# ---------------------------------------------------------------------------------------------
_SLOW_RUN = """
import sys, time
from pathlib import Path
import papermill

def fake(input_path, output_path, **kwargs):
    Path(output_path).write_bytes(b"x" * 70000)  # a half-written executed notebook
    Path(sys.argv[3]).write_text("started")
    time.sleep(120)

papermill.execute_notebook = fake
from bioworkbench.reports import run_report
run_report("tiny", parameters={"campaign": sys.argv[4]}, output_dir=sys.argv[1], notebooks=sys.argv[2],
           kernel=sys.argv[5])
"""


def _start_slow_run(tmp_path: Path, notebooks: Path, campaign_dir: Path) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "out"
    flag = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_RUN, str(out), str(notebooks), str(flag), str(campaign_dir), KERNEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    end = time.monotonic() + 60
    while not flag.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the run did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.05)
    return proc, out


def test_sigterm_records_an_interrupted_run(campaign_dir, notebooks, tmp_path):
    """Defect: SIGTERM left a hidden temporary folder (with a half-run notebook) and no record."""
    proc, out = _start_slow_run(tmp_path, notebooks, campaign_dir)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    (run,) = (out / "tiny").iterdir()
    assert not run.name.startswith(".") and {p.name for p in run.iterdir()} == {"manifest.json"}
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["error"]["ename"] == "SIGTERM"
    assert m["error"]["evalue"].startswith("the run was stopped by SIGTERM after ")
    assert m["debris_removed"] == [{"file": "tiny.ipynb", "bytes": 70000}]
    assert m["inputs_sha256"][str(campaign_dir / "batches.parquet")] == _sha256(campaign_dir / "batches.parquet")
    page = (out / "index.html").read_text()
    assert '<tr class="interrupted"><td>tiny</td>' in page and "SIGTERM: the run was stopped by SIGTERM" in page


def test_sigkill_debris_is_recorded_by_the_next_index(campaign_dir, notebooks, tmp_path):
    """Defect: SIGKILL left a hidden temporary folder and no record in the index; it is found by the
    next index write (the marker's process is gone), recorded as interrupted and cleaned."""
    proc, out = _start_slow_run(tmp_path, notebooks, campaign_dir)
    (hidden,) = (out / "tiny").iterdir()
    assert hidden.name.startswith(".") and (hidden / ".run.json").is_file()
    pid = proc.pid
    proc.kill()
    proc.communicate(timeout=30)
    write_index(out)
    (run,) = (out / "tiny").iterdir()
    assert not run.name.startswith(".") and {p.name for p in run.iterdir()} == {"manifest.json"}
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["error"]["ename"] == "ProcessDied"
    assert f"(pid {pid} on {platform.node()})" in m["error"]["evalue"]
    assert m["debris_removed"] == [{"file": "tiny.ipynb", "bytes": 70000}]
    assert m["parameters"]["campaign"] == str(campaign_dir) and m["report"] == "tiny"
    assert '<tr class="interrupted"><td>tiny</td>' in (out / "index.html").read_text()
    assert recover_interrupted(out) == []  # nothing left to recover


def _marked_folder(out: Path, **marker) -> Path:
    folder = out / "tiny" / ".20260101T000000000Z-run-abc"
    folder.mkdir(parents=True)
    (folder / "tiny.ipynb").write_text("{}")
    if marker:
        (folder / ".run.json").write_text(json.dumps({"report": "tiny", "run": "20260101T000000000Z-run"} | marker))
    return folder


@pytest.mark.parametrize(
    "marker",
    [
        {"pid": os.getpid(), "host": platform.node()},  # this very process: alive
        {"pid": 1234567, "host": "another-host"},  # cannot tell: another machine
    ],
    ids=["live", "other-host"],
)
def test_a_running_run_is_listed_and_left_alone(tmp_path, marker):
    folder = _marked_folder(tmp_path / "out", **marker)
    write_index(tmp_path / "out")
    assert (folder / "tiny.ipynb").is_file() and (folder / ".run.json").is_file()
    page = (tmp_path / "out" / "index.html").read_text()
    assert '<tr class="running"><td>tiny</td>' in page
    assert f"pid {marker['pid']} on {marker['host']}" in page


def test_a_folder_without_marker_is_named_not_deleted(tmp_path):
    folder = _marked_folder(tmp_path / "out")
    (tmp_path / "out" / "tiny" / ".ipynb_checkpoints").mkdir()  # not a run's: neither listed nor touched
    write_index(tmp_path / "out")
    assert (folder / "tiny.ipynb").is_file() and (tmp_path / "out" / "tiny" / ".ipynb_checkpoints").is_dir()
    page = (tmp_path / "out" / "index.html").read_text()
    assert "1 run(s)" in page and "ipynb_checkpoints" not in page
    assert '<tr class="unknown"><td>tiny</td>' in page
    assert "tiny/.20260101T000000000Z-run-abc without a readable run marker" in page


def test_a_reused_pid_is_a_dead_run(tmp_path):
    """The marker's pid runs, but it is another process (started at another time): the run is dead."""
    folder = _marked_folder(tmp_path / "out", pid=os.getpid(), host=platform.node(), process_started=1.0)
    (run,) = recover_interrupted(tmp_path / "out")
    assert not folder.exists() and run.name == "20260101T000000000Z-run"
    assert json.loads((run / "manifest.json").read_text())["status"] == "interrupted"


# ---------------------------------------------------------------------------------------------
# the index: corrupt manifests listed, tampered ones escaped
# ---------------------------------------------------------------------------------------------
def _run_folder(out: Path, run: str, manifest: str | bytes) -> Path:
    folder = out / "batch_report" / run
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(manifest if isinstance(manifest, bytes) else manifest.encode())
    return folder


def test_a_corrupt_manifest_is_listed_not_dropped(tmp_path):
    """Defect: a corrupt manifest silently dropped its run from the index."""
    out = tmp_path / "out"
    _run_folder(out, "20260101T000000000Z-B01", '{"report": "batch_report",\n "status": "completed" "x": 1}')
    _run_folder(out, "20260101T000000001Z-B02", "[1, 2]")
    _run_folder(out, "20260101T000000002Z-B03", b"\xff\xfe{\x00}\x00")
    (out / "batch_report" / "20260101T000000003Z-B04").mkdir()
    page = write_index(out).read_text()
    assert page.count('<tr class="corrupt">') == 3 and page.count('<tr class="incomplete">') == 1
    assert "4 run(s)" in page
    assert (
        "batch_report/20260101T000000000Z-B01/manifest.json cannot be read: not valid JSON: line 2, column 24: "
        "Expecting &#x27;,&#x27; delimiter"
    ) in page
    assert "20260101T000000001Z-B02/manifest.json cannot be read: a manifest is a JSON object; found list" in page
    assert "20260101T000000002Z-B03/manifest.json cannot be read: not UTF-8 text (byte 0)" in page
    assert "batch_report/20260101T000000003Z-B04 holds no manifest.json" in page


def test_a_tampered_manifest_cannot_inject_into_the_index(tmp_path):
    """Defect: a tampered manifest injected into index.html through an unescaped duration_s."""
    out = tmp_path / "out"
    payload = '<img src=x onerror="window.__pwned=1">'
    manifest = {
        "report": "<script>window.__pwned=2</script>",
        "status": 'completed"><script>window.__pwned=3</script>',
        "parameters": {"batch_id": payload},
        "started": {"nested": payload},
        "duration_s": payload,
        "error": {"ename": "<b>E</b>", "evalue": payload},
    }
    _run_folder(out, "20260101T000000000Z-B01", json.dumps(manifest))
    page = write_index(out).read_text()
    body = page.split("<tbody>")[1]
    assert "<script" not in body and "<img" not in body and "<b>" not in body
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in body  # shown, literally
    assert '<tr class="other">' in body  # an unknown status is shown, escaped, but not used as a class


# ---------------------------------------------------------------------------------------------
# parameters checked before the kernel
# ---------------------------------------------------------------------------------------------
def test_duplicate_yaml_keys_are_refused_with_file_and_line(no_kernel, campaign_dir, tmp_path):
    """Defect: duplicate YAML keys in parameter files were taken silently (the last one won)."""
    pf = tmp_path / "B02.yaml"
    pf.write_text(f"campaign: {campaign_dir}\nbatch_id: B02\nprob: 0.9\nbatch_id: B03\n")
    with pytest.raises(ConfigError) as info:
        run_report("batch_report", parameter_file=pf, output_dir=tmp_path / "out", kernel=KERNEL)
    assert str(info.value) == (
        f"{pf}, line 4: key 'batch_id' is given twice (first on line 2); give each parameter once."
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("campaign: x\nbatch_id: [B01\n", r", line 3, column 1: not valid YAML: expected ',' or ']'"),
        (b"\xff\xfec\x00a\x00", r": a parameter file must be UTF-8 text; it is UTF-16 \(byte-order mark FF FE\)"),
        (b"batch_id: B\xe901\n", r", line 1, column 12: byte 0xE9 is not UTF-8"),
        ("- a\n- b\n", r": a parameter file is a YAML mapping of name: value; found list"),
    ],
    ids=["yaml", "utf16", "latin1", "list"],
)
def test_unreadable_parameter_files_are_located(tmp_path, content, expected):
    pf = tmp_path / "p.yaml"
    pf.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=re.escape(str(pf)) + expected):
        load_parameter_file(pf)


_DECLARED = """\
batch_id: str = "B01"  # the batch to report on
note: str = ""  # free text (empty: none)
prob: float = 0.9  # central share (0, 1)
known_days: float = 0.0  # forecast from the first days (0: no forecast) [0, inf)
draws: int = 500  # draws per chain [1, inf)
storage: str = "room"  # ICH Q1E rules {room, refrigerated, frozen}
lower: float | None = 95.0  # lower limit (None: none) [0, 100]
"""


@pytest.fixture
def declared(tmp_path):
    return notebook_parameters(_notebook(tmp_path / "nb", "declared", _DECLARED))


def test_constraints_are_read_from_the_parameters_cell(declared):
    p = declared
    assert p["prob"].interval == (0.0, 1.0, False, False) and p["prob"].help == "central share"
    assert p["known_days"].constraint == "[0, inf)"
    assert p["known_days"].help == "forecast from the first days (0: no forecast)"
    assert p["draws"].interval == (1.0, float("inf"), True, False)
    assert p["storage"].choices == ("room", "refrigerated", "frozen")
    assert p["lower"].optional and p["lower"].constraint == "[0, 100]"
    assert p["batch_id"].required and not p["note"].required and p["note"].help == "free text (empty: none)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"known_days": -3}, "known_days must lie in [0, inf); got -3."),
        ({"prob": 1.5}, "prob must lie in (0, 1); got 1.5."),
        ({"prob": 0}, "prob must lie in (0, 1); got 0."),
        ({"prob": float("nan")}, "prob must lie in (0, 1); got nan."),
        ({"draws": 0}, "draws must lie in [1, inf); got 0."),
        ({"lower": 101.0}, "lower must lie in [0, 100]; got 101.0."),
        ({"storage": "rom"}, "storage must be one of room, refrigerated, frozen; got 'rom'. Did you mean 'room'?"),
        ({"batch_id": ""}, "batch_id must not be empty (the notebook's default is 'B01')"),
        ({"batch_id": "  "}, "batch_id must not be empty"),
        ({"prob": True}, "prob must be a float; got the bool True."),
    ],
)
def test_values_outside_their_constraint_are_refused(declared, value, message):
    """Defect: ``known_days: -3`` became 0, an empty batch_id and an out-of-range prob reached the kernel."""
    from bioworkbench.reports import check_parameters

    with pytest.raises(ConfigError) as info:
        check_parameters("declared", value, declared, source="p.yaml")
    assert str(info.value).startswith("p.yaml: ") and message in str(info.value)


def test_values_inside_their_constraint_pass(declared):
    from bioworkbench.reports import check_parameters

    ok = {"known_days": 0, "prob": 0.5, "draws": 1, "lower": None, "storage": "frozen", "note": ""}
    assert check_parameters("declared", ok, declared)["known_days"] == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('name: str = "a"  # a name [0, 1]', "parameter 'name' is a str; an interval [0, 1] fits numbers only."),
        ("prob: float = 1.5  # share (0, 1)", "the default does not fit its declaration: prob must lie in (0, 1)"),
        ("x: float = 1.0  # x [2, 1]", "parameter 'x' has the empty interval [2, 1] (low above high)."),
        ("n: int = 1  # n {1, 2}", "parameter 'n' is an int; choices {1, 2} fit str only."),
    ],
)
def test_bad_declarations_are_refused(tmp_path, line, message):
    nb = _notebook(tmp_path / "nb", "bad", line)
    with pytest.raises(ConfigError) as info:
        notebook_parameters(nb)
    assert str(info.value).startswith(f"{nb}, parameters cell line 1: ") and message in str(info.value)


def test_empty_batch_id_is_refused_before_the_kernel(no_kernel, campaign_dir, tmp_path):
    """batch_report declares batch_id with a non-empty default: an empty one never reaches the kernel."""
    with pytest.raises(ConfigError, match=r"batch_id must not be empty \(the notebook's default is 'B01'\)"):
        run_report("batch_report", parameters={"campaign": str(campaign_dir), "batch_id": ""},
                   output_dir=tmp_path / "out", kernel=KERNEL)  # fmt: skip


@pytest.mark.parametrize(
    ("parameters", "message"),
    [({"known_days": -3.0}, "known_days must lie in"), ({"prob": 1.5}, "prob must lie in")],
    ids=["known_days", "prob"],
)
def test_batch_report_declares_its_ranges(no_kernel, campaign_dir, tmp_path, parameters, message):
    """The real batch report refuses a negative known_days and a prob outside (0, 1) before the
    kernel (needs the notebook's parameters cell to declare the intervals)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_report("batch_report", parameters={"campaign": str(campaign_dir), "batch_id": "B02", **parameters},
                   output_dir=tmp_path / "out", kernel=KERNEL)  # fmt: skip


def _broken_batches(campaign_dir: Path, tmp_path: Path, kind: str) -> Path:
    camp = _copy(campaign_dir, tmp_path)
    batches = pl.read_parquet(camp / "batches.parquet")
    (camp / "batches.parquet").unlink()
    csv = camp / "batches.csv"
    if kind == "semicolon":
        batches.select("batch_id", "product").write_csv(csv, separator=";")
    elif kind == "utf16":
        csv.write_bytes(batches.select("batch_id", "product").write_csv().encode("utf-16"))
    elif kind == "no-column":
        batches.select(pl.col("batch_id").alias("batch"), "product").write_csv(csv)
    elif kind == "truncated":
        batches.write_parquet(camp / "batches.parquet")
        full = (camp / "batches.parquet").read_bytes()
        (camp / "batches.parquet").write_bytes(full[: len(full) // 2])
    return camp


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("semicolon", "batches.csv: line 1: the file looks semicolon-separated"),
        ("utf16", "batches.csv cannot be read: it is UTF-16 (byte-order mark FF FE). A campaign's CSV files are UTF-8"),
        ("no-column", "batches.csv, line 1: missing required column 'batch_id'; found: batch, product."),
        ("truncated", "batches.parquet: cannot be read as parquet ("),
    ],
)
def test_unreadable_batches_file_is_a_located_error(no_kernel, campaign_dir, tmp_path, kind, expected):
    """Defect: the report pre-check on a ``;``/UTF-16/truncated batches file raised raw tracebacks."""
    camp = _broken_batches(campaign_dir, tmp_path, kind)
    with pytest.raises(ConfigError) as info:
        run_report("batch_report", parameters={"campaign": str(camp), "batch_id": "B01"},
                   output_dir=tmp_path / "out", kernel=KERNEL)  # fmt: skip
    msg = str(info.value)
    assert msg.startswith("report 'batch_report': ") and expected in msg, msg
    assert str(camp) in msg


@pytest.mark.parametrize(
    ("export", "expected"),
    [
        (
            ("beckman_vi_cell_blu", "testdata", "Beckman_Vi-Cell-BLU_example01_utf16.csv"),
            "batches.csv cannot be read: it is UTF-16 (byte-order mark FE FF)",
        ),
        (
            ("chemometec_nucleoview", "testdata", "chemometec_nucleoview_example02.csv"),
            "batches.csv: line 1: the file looks semicolon-separated",
        ),
    ],
    ids=["vi-cell-utf16", "nucleoview-semicolon"],
)
def test_real_instrument_exports_as_batches_file_are_located_errors(
    no_kernel, campaign_dir, tmp_path, export, expected
):
    """Real exports (a UTF-16 Vi-CELL BLU file, a ';'-separated NucleoView file) put where a
    campaign's batches belong are refused before the kernel with the file and the reason."""
    from conftest import shared_data

    camp = _copy(campaign_dir, tmp_path)
    (camp / "batches.parquet").unlink()
    shutil.copy(shared_data("instruments", *export), camp / "batches.csv")
    with pytest.raises(ConfigError) as info:
        run_report("batch_report", parameters={"campaign": str(camp), "batch_id": "B01"},
                   output_dir=tmp_path / "out", kernel=KERNEL)  # fmt: skip
    assert expected in str(info.value) and str(camp / "batches.csv") in str(info.value)


# ---------------------------------------------------------------------------------------------
# the campaign report on a campaign it cannot analyse in full
# ---------------------------------------------------------------------------------------------
def test_campaign_report_of_a_one_batch_campaign_completes_and_says_what_it_cannot_do(campaign_dir, tmp_path):
    """Defect 10: the campaign report on a one-batch campaign ended in a raw traceback. It runs in a
    real kernel and states, in sentences, the sections one batch cannot support."""
    one = bw.read_campaign(campaign_dir).filter_batches(["B02"])
    folder = one.write(tmp_path / "one")
    res = run_report("campaign_report", parameters={"campaign": str(folder)}, output_dir=tmp_path / "out",
                     kernel=KERNEL, raise_on_failure=False)  # fmt: skip
    assert res.status == "completed", res.manifest.get("error")
    assert res.manifest["rendering"]["withheld"] == 0
    body = re.sub(r"<script.*?</script>", " ", res.html.read_text(), flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
    assert "The campaign holds 1 batch (1 completed)." in text
    assert "multivariate monitoring needs at least 3 to learn the normal variation" in text
