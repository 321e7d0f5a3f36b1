"""Instrument readers against the Allotrope ASM JSON that allotropy produces for each example file.

Every value a reader returns is matched with a value of the ASM beside its file (read here from
the JSON, no allotropy at run time), and every ASM value of a quantity the reader maps is found
in the reader's output. Values the ASM leaves out are allowed only flagged, and are listed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, DataReadError, SchemaError
from bioworkbench.instruments import (
    EXTRA_VARIABLES,
    OUTPUT_COLUMNS,
    detect_instrument,
    read_instrument,
    register_instrument_variables,
    replicate_means,
)
from bioworkbench.variables import registry

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "instruments"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"instrument examples not found at {DATA}")

# ASM key -> our variable, per instrument family; keys not listed are metadata (settings, images)
CELL_COUNTER = {
    "viability (cell counter)": "viability",
    "viable cell density (cell counter)": "vcd",
    "total cell density (cell counter)": "tcd",
    "dead cell density (cell counter)": "dcd",
    "average total cell diameter": "diameter",
    "average live cell diameter (cell counter)": "viable_diameter",
    "total cell count": "total_cell_count",
    "viable cell count": "viable_cell_count",
    "dead cell count": "dead_cell_count",
    "average total cell circularity": "circularity",
    "average viable cell circularity": "viable_circularity",
    # Cedex HiRes (custom information)
    "average compactness": "compactness",
    "average area": "cell_area",
    "average perimeter": "perimeter",
    "average segment area": "segment_area",
    "total object count": "total_object_count",
    "standard deviation": "vcd_sd",
    "aggregate rate": "aggregates",
    # ChemoMetec
    "cell aggregation percentage": "aggregates",
    "debris index": "debris_index",
    "Debris Index": "debris_index",
    "Diameter (um)": "diameter",
    "Aggregates (%)": "aggregates",
    "Cell diameter standard deviation (um)": "diameter_sd",
    "Percentage of cells with five or more": "aggregates",
}
# Cedex HiRes reports one diameter, which the ASM files as the live cells' diameter
HIRES = {**CELL_COUNTER, "average live cell diameter (cell counter)": "diameter"}
ANALYSER = {
    "glucose": "glucose",
    "lactate": "lactate",
    "glutamine": "glutamine",
    "glutamate": "glutamate",
    "ammonium": "ammonium",
    "ammonia": "ammonium",
    "sodium": "sodium",
    "potassium": "potassium",
    "calcium": "calcium",
    "bicarbonate": "bicarbonate",
    "magnesium": "magnesium",
    "iron": "iron",
    "phosphate": "phosphate",
    "acetate": "acetate",
    "ethanol": "ethanol",
    "formate": "formate",
    "pyruvate": "pyruvate",
    "galactose": "galactose",
    "glycerol": "glycerol",
    "asparagine": "asparagine",
    "aspartate": "aspartate",
    "IgG human": "titer",
    "ldh": "ldh",
    "total protein": "total_protein",
    "absorbance": "optical_density",
    "pO2": "po2",
    "pCO2": "pco2",
    "oxygen saturation": "o2_saturation",
    "carbon dioxide saturation": "co2_saturation",
    "osmolality": "osmolality",
    "pH": "ph",
    "temperature": "temperature",
    **{k: v for k, v in CELL_COUNTER.items() if "cell counter" in k},
}
#: molar masses (g/mol) to bring the ASM's mass concentrations to our molar units, written out
#: here rather than taken from the package (ammonia as NH3, as Cedex reports it)
MOLAR_MASS = {
    "glucose": 180.16,
    "lactate": 90.08,
    "ammonium": 17.031,
    "acetate": 60.05,
    "asparagine": 132.12,
    "aspartate": 133.10,
    "calcium": 40.08,
    "glycerol": 92.09,
    "iron": 55.845,
    "magnesium": 24.305,
    "phosphate": 136.09,
    "pyruvate": 88.06,
}
#: the ASM unit -> our canonical unit, as a factor (LDH: allotropy files U/L as µkat/L = U/L x 0.0167)
FACTORS = {
    ("10^6 cells/mL", "1e6 cells/mL"): 1.0,
    ("%", "%"): 1.0,
    ("µm", "um"): 1.0,
    ("cell", "cells"): 1.0,
    ("(unitless)", "1"): 1.0,
    ("mmol/L", "mmol/L"): 1.0,
    ("g/L", "mg/L"): 1000.0,
    ("g/L", "g/L"): 1.0,
    ("mmHg", "mmHg"): 1.0,
    ("mosm/kg", "mOsm/kg"): 1.0,
    ("pH", "pH"): 1.0,
    ("degC", "degC"): 1.0,
    ("mAU", "AU"): 1.0,
    ("mmol/L", "U/L"): 1 / 0.0167,
    # Cedex HiRes 'Std Dev.' is of the concentration (cells/mL); the ASM labels it 'cell'
    ("cell", "1e6 cells/mL"): 1e-6,
}
#: ASM values that are not in the file: allotropy writes -0.0 for a line the file does not have
ASM_ONLY = {("chemometec_nucleoview_example07.csv", "cellsABCD", "vcd")}


def _walk_quantities(node, key=None):
    """(key, value, unit) of every {value, unit} and every bare number under custom information."""
    if isinstance(node, dict):
        if "value" in node and "unit" in node and not isinstance(node["value"], (dict, list)):
            yield key, node["value"], node["unit"]
            return
        name = node.get("analyte name")
        for k, v in node.items():
            if k in ("device control aggregate document", "sample document", "data processing document"):
                continue
            if k in ("image aggregate document", "error aggregate document"):
                continue
            if name is not None and isinstance(v, dict) and "value" in v:
                yield name, v["value"], v["unit"]
            elif k == "custom information document":
                for ck, cv in v.items():
                    if isinstance(cv, (int, float)) and not isinstance(cv, bool):
                        yield ck, cv, None
                    elif isinstance(cv, dict) and "value" in cv:
                        yield ck, cv["value"], cv["unit"]
            else:
                yield from _walk_quantities(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_quantities(v, key)


def asm_values(path: Path) -> tuple[list[dict], dict[str, set[str]]]:
    """Every quantity of every measurement in an ASM file, and each sample's measurement times."""
    doc = json.loads(path.read_text())
    out, times = [], defaultdict(set)
    for agg in _find(doc, "measurement aggregate document"):
        samples = set()
        for m in agg.get("measurement document", []):
            sid = m["sample document"]["sample identifier"]
            samples.add(sid)
            times[sid].add(m.get("measurement time"))
            errors = defaultdict(list)
            for e in m.get("error aggregate document", {}).get("error document", []):
                errors[e["error feature"].split(" - ")[0]].append(e["error"])
            for key, value, unit in _walk_quantities(m):
                out.append({"sample": sid, "key": key, "value": value, "unit": unit, "errors": errors.get(key, [])})
        for c in agg.get("calculated data aggregate document", {}).get("calculated data document", []):
            (sid,) = samples
            r = c["calculated result"]
            out.append(
                {"sample": sid, "key": c["calculated data name"], "value": r["value"], "unit": r["unit"], "errors": []}
            )
    return out, times


def _find(node, key):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                yield v
            else:
                yield from _find(v, key)
    elif isinstance(node, list):
        for v in node:
            yield from _find(v, key)


def _expected(entry: dict, variable: str, our_unit: str) -> float | None:
    value, unit = entry["value"], entry["unit"]
    if unit is None:
        return float(value)
    unit = unit.replace("μ", "µ")
    if (unit, our_unit) in FACTORS:
        return float(value) * FACTORS[(unit, our_unit)]
    if unit == "g/L" and our_unit == "mmol/L":
        return float(value) / MOLAR_MASS[variable] * 1000.0
    raise AssertionError(f"no factor for {variable}: ASM {unit!r} -> ours {our_unit!r}")


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _files(folder: str, *patterns: str) -> list[Path]:
    return sorted(p for pat in patterns for p in (DATA / folder / "testdata").glob(pat))


CASES = [
    *[(p, "vicell_blu", CELL_COUNTER) for p in _files("beckman_vi_cell_blu", "*.csv")],
    *[
        (p, "vicell_xr", CELL_COUNTER)
        for p in _files("beckman_vi_cell_xr", "*/*.xls", "*/*.xlsx", "*/*.txt")
        if not p.stem.endswith("_error")
    ],
    *[(p, "cedex_hires", HIRES) for p in _files("roche_cedex_hires", "*.csv", "*.xlsx")],
    *[(p, "flex2", ANALYSER) for p in _files("novabio_flex2", "*.csv")],
    *[(p, "nucleoview", CELL_COUNTER) for p in _files("chemometec_nucleoview", "*.csv")],
    *[(p, "nc_view", CELL_COUNTER) for p in _files("chemometec_nc_view", "*.csv")],
    *[(p, "cedex_bioht", ANALYSER) for p in _files("roche_cedex_bioht", "*.txt")],
]

#: values in the file that the ASM leaves out: (sample, variable, flag) -- each must be flagged
LEFT_OUT_OF_ASM = {
    "Beckman_Vi-Cell-BLU_example01.csv": {
        ("CLB008", "total_cell_count", "unreadable"),
        ("CLB008", "viable_cell_count", "unreadable"),
    },
    "chemometec_nucleoview_example04.csv": {("cellsABCD", "tcd", "suspect"), ("cellsABCD", "diameter", "unreadable")},
    "chemometec_nucleoview_example06.csv": {("cellsABCD", "diameter", "suspect")},
    "chemometec_nucleoview_example07.csv": {("cellsABCD", "diameter", "suspect")},
}


def _read(path: Path, **kw) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        return read_instrument(path, **kw)


@pytest.mark.parametrize(("path", "instrument", "keys"), CASES, ids=[c[0].name for c in CASES])
def test_every_value_equals_the_asm(path: Path, instrument: str, keys: dict[str, str]) -> None:
    assert detect_instrument(path) == instrument
    obs = _read(path)
    assert tuple(obs.columns) == OUTPUT_COLUMNS
    assert (obs["instrument"] == instrument).all()
    assert obs["source_line"].null_count() == 0
    entries, _ = asm_values(path.with_suffix(".json"))
    ours: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in obs.iter_rows(named=True):
        ours[(row["sample_id"], row["variable"])].append(row)
    mapped = 0
    for e in entries:
        variable = keys.get(e["key"])
        if variable is None:
            continue
        mapped += 1
        if (path.name, e["sample"], variable) in ASM_ONLY:
            assert (e["sample"], variable) not in ours
            continue
        candidates = ours.get((e["sample"], variable), [])
        assert candidates, f"{path.name}: no {variable} for sample {e['sample']} (ASM {e['key']} = {e['value']})"
        if isinstance(e["value"], float) and e["value"] == 0 and math.copysign(1, e["value"]) < 0:
            # outside the test range: the ASM writes -0.0 (and the limit as an error, '< 2.50', or
            # 'unknown' for '>'); we keep the limit, flagged
            limits = {x.strip() for x in e["errors"]}
            hit = next(
                (
                    r
                    for r in candidates
                    if r["flag"] in ("<LOD", ">ULOQ")
                    and (
                        r["raw_value"].strip() in limits or (r["flag"] == ">ULOQ" and "unknown" in limits) or not limits
                    )
                ),
                None,
            )
            assert hit is not None, f"{path.name}: {e['sample']} {variable}: expected a flagged {e['errors']}"
        else:
            want = _expected(e, variable, candidates[0]["unit"])
            hit = next((r for r in candidates if r["value"] is not None and _close(r["value"], want)), None)
            assert hit is not None, (
                f"{path.name}: {e['sample']} {variable}: ASM {e['value']} {e['unit']} -> {want}; "
                f"ours {[r['value'] for r in candidates]}"
            )
        candidates.remove(hit)
    assert mapped > 0
    left = {(sid, var, r["flag"]) for (sid, var), rows in ours.items() for r in rows}
    assert left == LEFT_OUT_OF_ASM.get(path.name, set()), f"{path.name}: values not in the ASM: {sorted(left)}"


@pytest.mark.parametrize(
    ("path", "instrument"),
    [(c[0], c[1]) for c in CASES if c[1] != "cedex_bioht"],
    ids=[c[0].name for c in CASES if c[1] != "cedex_bioht"],
)
def test_measurement_times_equal_the_asm(path: Path, instrument: str) -> None:
    obs = _read(path)
    _, times = asm_values(path.with_suffix(".json"))
    for sid, measured in obs.select("sample_id", "measured_at").unique().iter_rows():
        expected = {datetime.fromisoformat(t).astimezone(UTC) for t in times[sid]}
        if expected == {datetime(1970, 1, 1, tzinfo=UTC)}:
            assert measured is None  # the file's date is not a date (1999-09-99); allotropy writes 1970
        else:
            assert measured in expected, f"{path.name}: {sid} measured {measured}, ASM {expected}"


def test_units_are_canonical_and_registered_or_listed() -> None:
    reg = registry()
    for path, _, _ in CASES:
        obs = _read(path)
        for var, unit in obs.select("variable", "unit").unique().iter_rows():
            canon = reg[var].unit if var in reg else EXTRA_VARIABLES[var].unit
            assert unit == canon, f"{path.name}: {var} in {unit}, expected {canon}"


def test_vicell_blu_utf16_reads_as_utf8() -> None:
    folder = DATA / "beckman_vi_cell_blu" / "testdata"
    a = _read(folder / "Beckman_Vi-Cell-BLU_example01.csv").drop("source_file")
    b = _read(folder / "Beckman_Vi-Cell-BLU_example01_utf16.csv").drop("source_file")
    # the two exports differ in one sample: CLB008's counts are 'ERROR' in the UTF-8 file
    differs = (pl.col("sample_id") == "CLB008") & pl.col("variable").str.ends_with("cell_count")
    assert a.filter(~differs).equals(b.filter(~differs))
    assert a.filter(differs)["raw_value"].to_list() == ["ERROR", "ERROR"]
    assert b.filter(differs)["raw_value"].to_list() == ["7001", "6896"]


def test_text_in_a_numeric_field_is_flagged_and_counted(tmp_path: Path) -> None:
    src = DATA / "novabio_flex2" / "testdata" / "SampleResults2022-06-28_142558.csv"
    lines = src.read_text().splitlines()
    cells = lines[1].split(",")
    cells[6] = "10.00%"  # Lac
    (tmp_path / "flex2.csv").write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    with pytest.warns(BioWorkbenchWarning, match=r"1 of 15 values flagged \(1 unreadable\)"):
        obs = read_instrument(tmp_path / "flex2.csv")
    lac = obs.filter(pl.col("variable") == "lactate").row(0, named=True)
    assert lac["value"] is None and lac["flag"] == "unreadable"
    assert lac["raw_value"] == "10.00%" and lac["source_line"] == 2
    assert "expected a number, found '10.00%'" in lac["flag_reason"]
    assert obs.height == 15  # nothing dropped


def test_limits_are_kept_and_flagged() -> None:
    obs = _read(DATA / "roche_cedex_bioht" / "testdata" / "roche_cedex_bioht_v7_example_01.txt")
    below = obs.filter(pl.col("flag") == "<LOD")
    above = obs.filter(pl.col("flag") == ">ULOQ")
    assert below.height == 3 and above.height == 1
    assert below["value"].null_count() == 0 and above["value"].null_count() == 0
    assert above["raw_value"].str.strip_chars().str.starts_with(">").all()


def test_replicates_numbered_and_averaged() -> None:
    path = DATA / "roche_cedex_hires" / "testdata" / "roche_cedex_hires_example_1.csv"
    obs = _read(path)
    vcd = obs.filter(pl.col("variable") == "vcd").sort("replicate")
    # eight counts of one draw (reactor TechDev_CD_N-1, 2019-06-17 08:34:01) are replicates 1..8
    assert vcd["replicate"].to_list() == list(range(1, 9))
    assert vcd["sampled_at"].n_unique() == 1
    means = replicate_means(obs)
    m = means.filter(pl.col("variable") == "vcd").row(0, named=True)
    assert m["n_replicates"] == 8
    assert m["value"] == pytest.approx(vcd["value"].mean())
    assert m["sd"] == pytest.approx(vcd["value"].std())
    assert means.height == obs["variable"].n_unique()
    assert "replicate" not in means.columns
    same = _read(path, replicates="mean")
    assert same.equals(means)


def test_bioht_replicates_within_a_sample() -> None:
    obs = _read(DATA / "roche_cedex_bioht" / "testdata" / "roche_cedex_bioht_v7_dilution_and_replicates.txt")
    igg = obs.filter((pl.col("sample_id") == "10AMB26002BR01") & (pl.col("variable") == "titer")).sort("replicate")
    assert igg["replicate"].to_list() == [1, 2]
    assert igg["dilution"].to_list() == [None, 5.0]  # '1/5': the analyser's pre-dilution, already applied
    assert igg["value"].to_list() == pytest.approx([3933.0, 6174.0])  # g/L -> mg/L


def test_batch_and_day_from_a_pattern(tmp_path: Path) -> None:
    src = DATA / "beckman_vi_cell_blu" / "testdata" / "Beckman_Vi-Cell-BLU_example01.csv"
    lines = src.read_text().splitlines()
    ids = ["B01-D0", "B01-D1", "B02-D0", "B01-D2", "B02-D1", "QC-7", "B01-D3", "B02-D2", "B02-D3", "B01-D1"]
    body = [",".join([sid, *line.split(",")[1:]]) for sid, line in zip(ids, lines[1:], strict=True)]
    (tmp_path / "blu.csv").write_text("\n".join([lines[0], *body]) + "\n")
    with pytest.warns(BioWorkbenchWarning, match=r"1 sample ID.*do not match.*QC-7"):
        obs = read_instrument(tmp_path / "blu.csv", batch_from=r"(?P<batch_id>B\d+)-D(?P<day>\d+)")
    vcd = obs.filter(pl.col("variable") == "vcd")
    row = vcd.filter(pl.col("sample_id") == "B02-D2").row(0, named=True)
    assert (row["batch_id"], row["time_h"]) == ("B02", 48.0)
    qc = vcd.filter(pl.col("sample_id") == "QC-7").row(0, named=True)
    assert qc["batch_id"] is None and qc["time_h"] is None  # kept, without a batch
    # two samples named B01-D1 on different days are two replicates of B01 day 1
    twice = vcd.filter(pl.col("sample_id") == "B01-D1").sort("replicate")
    assert twice["replicate"].to_list() == [1, 2]


def test_time_from_batch_starts() -> None:
    path = DATA / "roche_cedex_hires" / "testdata" / "roche_cedex_hires_example_1.csv"
    starts = {"TechDev_CD_N-1": datetime(2019, 6, 14, 8, 34, 1)}
    obs = _read(path, time_from=starts)
    assert (obs["batch_id"] == "TechDev_CD_N-1").all()
    assert obs["time_h"].unique().to_list() == [72.0]  # draw time - start, not the analysis time
    frame = pl.DataFrame({"batch_id": ["TechDev_CD_N-1"], "start": [datetime(2019, 6, 14, 6, 34, 1, tzinfo=UTC)]})
    local = _read(path, time_from=frame, timezone="Europe/Berlin")  # 08:34 CEST = 06:34 UTC
    assert local["time_h"].unique().to_list() == [72.0]


def test_time_from_without_a_start_warns() -> None:
    path = DATA / "roche_cedex_hires" / "testdata" / "roche_cedex_hires_example_1.csv"
    with pytest.warns(BioWorkbenchWarning, match="no start in time_from for batch TechDev_CD_N-1"):
        obs = read_instrument(path, time_from={"OTHER": datetime(2019, 6, 14)})
    assert obs["time_h"].null_count() == obs.height


def test_bad_pattern_and_arguments() -> None:
    path = DATA / "beckman_vi_cell_blu" / "testdata" / "Beckman_Vi-Cell-BLU_example01.csv"
    with pytest.raises(ArgumentError, match="named group batch_id"):
        read_instrument(path, batch_from=r"(B\d+)")
    with pytest.raises(ArgumentError, match="instrument"):
        read_instrument(path, instrument="vicell_blue")
    with pytest.raises(ArgumentError, match="positive number"):
        read_instrument(path, dilution=0)


def test_dilution_by_hand_multiplies_concentrations_only() -> None:
    path = DATA / "beckman_vi_cell_blu" / "testdata" / "Beckman_Vi-Cell-BLU_example01.csv"
    plain = _read(path)
    diluted = _read(path, dilution={"CLB001": 2.0})
    key = ["sample_id", "variable"]
    both = plain.join(diluted, on=key, suffix="_d").filter(pl.col("value").is_not_null())
    doubled = both.filter((pl.col("sample_id") == "CLB001") & pl.col("variable").is_in(["vcd", "tcd"]))
    assert (doubled["value_d"] == doubled["value"] * 2).all() and (doubled["dilution_d"] == 2.0).all()
    rest = both.filter(~((pl.col("sample_id") == "CLB001") & pl.col("variable").is_in(["vcd", "tcd"])))
    assert (rest["value_d"] == rest["value"]).all()


def test_register_instrument_variables_is_idempotent() -> None:
    import importlib

    variables = importlib.import_module("bioworkbench.variables")  # the module, not bw.variables()
    saved = dict(registry())
    try:
        added = register_instrument_variables()
        assert set(added) == set(EXTRA_VARIABLES) - set(saved)
        assert register_instrument_variables() == []
        assert set(EXTRA_VARIABLES) <= set(registry())
    finally:  # leave the registry as the other tests expect it
        variables._REGISTRY.clear()
        variables._REGISTRY.update(saved)


# ---------------------------------------------------------------------------------------------
# broken files
# ---------------------------------------------------------------------------------------------
def test_flex2_without_date_column_names_file_line_and_column() -> None:
    path = DATA / "novabio_flex2" / "testdata" / "exclude" / "missing_date_time.csv"
    with pytest.raises(SchemaError) as err:
        read_instrument(path, instrument="flex2")
    text = str(err.value)
    assert str(path) in text and "line 1" in text and 'column "Date & Time"' in text and "missing column" in text


def test_unreadable_date_names_the_line(tmp_path: Path) -> None:
    src = DATA / "novabio_flex2" / "testdata" / "SampleResults2022-06-28_142558.csv"
    lines = src.read_text().splitlines()
    (tmp_path / "f.csv").write_text("\n".join([lines[0], lines[1].replace("6-24-2022  14:34:52", "24.13.2022")]) + "\n")
    with pytest.raises(SchemaError) as err:
        read_instrument(tmp_path / "f.csv")
    text = str(err.value)
    assert "line 2" in text and 'column "Date & Time"' in text and "'24.13.2022'" in text and "month first" in text


def test_bioht_bad_row_and_unknown_test(tmp_path: Path) -> None:
    src = DATA / "roche_cedex_bioht" / "testdata" / "roche_cedex_bioht_v7_example_01.txt"
    lines = src.read_text().splitlines()
    head, rest = lines[2].split("\t", 1)
    lines[2] = f"{head}\t{rest.replace(chr(9), ' ')}"  # a result row whose fields lost their tabs
    fields = lines[3].split("\t")
    fields[6] = "XYZ9B"
    lines[3] = "\t".join(fields)
    (tmp_path / "b.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        read_instrument(tmp_path / "b.txt")
    text = str(err.value)
    assert "2 problems" in text and "line 3: expected at least 11 tab-separated fields" in text
    assert "line 4" in text and "'XYZ9B'" in text and 'column "test code"' in text


def test_unknown_file_is_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataReadError, match=r"not recognised as an instrument export.*instrument="):
        read_instrument(tmp_path / "x.csv")
    with pytest.raises(DataReadError, match="no such file"):
        read_instrument(tmp_path / "missing.csv", instrument="flex2")


XR = DATA / "beckman_vi_cell_xr" / "testdata"


def test_vicell_xr_kinds_and_lineage() -> None:
    table = _read(XR / "v2.04" / "Beckman_Vi-Cell-XR_example03_instrumentOutput.xls")
    first = table.filter((pl.col("sample_id") == "CLB001") & (pl.col("variable") == "viability")).row(0, named=True)
    # a number cell keeps every digit (calamine's own text of it rounds to 98.344749451)
    assert first["value"] == 98.3447494506836 and first["raw_value"] == "98.3447494506836"
    assert (first["source_line"], first["source_cell"]) == (6, "O6")
    report = _read(XR / "v2.04" / "Beckman_Vi-Cell-XR_report_format.xlsx")
    vcd = report.filter(pl.col("variable") == "vcd").row(0, named=True)
    assert (vcd["sample_id"], vcd["source_cell"], vcd["dilution"]) == ("7B", "D14", 1.0)
    text = _read(XR / "v2.06" / "Beckman_Vi-Cell-XR_example07_instrumentOutput.txt")
    dead = text.filter(pl.col("variable") == "dead_cell_count").row(0, named=True)
    assert (dead["value"], dead["source_line"], dead["source_cell"]) == (130.0, 18, None)
    assert text["dilution"].unique().to_list() == [20.0]
    assert text["measured_at"].unique().to_list() == [datetime(2023, 9, 29, 5, 21, 32, tzinfo=UTC)]  # RunDate


def test_vicell_xr_hidden_row_of_column_numbers_is_not_a_sample() -> None:
    obs = _read(XR / "v2.06" / "Beckman_Vi-Cell-XR_hiddenRow.xlsx")
    assert obs["sample_id"].n_unique() == 24 and obs["source_line"].min() == 8
    assert "0" not in obs["sample_id"].to_list()


def test_vicell_xr_missing_column_names_file_row_and_column() -> None:
    path = XR / "v2.04" / "Beckman_Vi-Cell-XR_example02_instrumentOutput_error.xls"
    with pytest.raises(SchemaError) as err:
        read_instrument(path)
    text = str(err.value)
    assert str(path) in text and "line 4" in text and 'column "Viability (%)"' in text
    assert "missing column 'Viability (%)'" in text and "E4 'Sample date'" in text


def test_vicell_xr_invalid_date_header() -> None:
    path = XR / "v2.06" / "Beckman_Vi-Cell-XR_example01_instrumentOutput_invalid_date_header_error.xlsx"
    with pytest.raises(SchemaError) as err:
        read_instrument(path, instrument="vicell_xr")
    text = str(err.value)
    assert str(path) in text and "line 5" in text and 'column "Sample date/time"' in text
    assert "E5 'Sample date/timexxx'" in text


def test_vicell_xr_unreadable_date_names_the_cell(tmp_path: Path) -> None:
    src = XR / "v2.06" / "Beckman_Vi-Cell-XR_example07_instrumentOutput.txt"
    (tmp_path / "xr.txt").write_text(src.read_text().replace("29 Sep 2023  5:21:32 AM", "2023-29-09"))
    with pytest.raises(SchemaError) as err:
        read_instrument(tmp_path / "xr.txt")
    text = str(err.value)
    assert "line 7" in text and 'column "Sample date/time"' in text and "'2023-29-09'" in text and "day first" in text


def test_vicell_xr_text_in_a_number_cell_is_flagged(tmp_path: Path) -> None:
    src = XR / "v2.06" / "Beckman_Vi-Cell-XR_example08_instrumentOutput.txt"
    (tmp_path / "xr.txt").write_text(src.read_text().replace("Viability (%) : 85.1", "Viability (%) : n/a"))
    with pytest.warns(BioWorkbenchWarning, match=r"1 of 8 values flagged \(1 unreadable\)"):
        obs = read_instrument(tmp_path / "xr.txt")
    row = obs.filter(pl.col("variable") == "viability").row(0, named=True)
    assert row["value"] is None and row["raw_value"] == "n/a" and row["source_line"] == 19


def test_broken_workbook_is_a_located_read_error(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_bytes(b"not a zip")
    with pytest.raises(DataReadError, match=r"x\.xlsx: not a readable \.xls/\.xlsx workbook"):
        read_instrument(tmp_path / "x.xlsx", instrument="vicell_xr")
