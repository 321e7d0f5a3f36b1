"""Unit parsing and conversion (pint), including mass <-> molar through the registry's molar masses."""

from __future__ import annotations

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.units import conversion, parse_unit
from bioworkbench.variables import get_variable, registry, to_canonical


@pytest.mark.parametrize(
    ("unit", "target", "molar_mass", "expected"),
    [
        ("g/L", "mmol/L", 180.16, 1000 / 180.16),
        ("mg/dL", "mmol/L", 180.16, 10 / 180.16),
        ("mM", "mmol/L", None, 1.0),
        ("mmol/L", "g/L", 90.08, 0.09008),
        ("10^6 cells/mL", "1e6 cells/mL", None, 1.0),
        ("E6 cells/mL", "1e6 cells/mL", None, 1.0),
        ("x10^6/mL", "1e6 cells/mL", None, 1.0),
        ("cells/mL", "1e6 cells/mL", None, 1e-6),
        ("1e5 cells/mL", "1e6 cells/mL", None, 0.1),
        ("g/L", "mg/L", None, 1000.0),
        ("ug/mL", "mg/L", None, 1.0),
        ("L", "mL", None, 1000.0),
        ("kPa", "mmHg", None, 7.500616),
        ("fraction", "%", None, 100.0),
        ("% air sat", "%", None, 1.0),
        ("mOsm/kg H2O", "mOsm/kg", None, 1.0),
        ("µm", "um", None, 1.0),
        ("pH", "pH", None, 1.0),
    ],
)
def test_scales(unit, target, molar_mass, expected):
    scale, offset = conversion(unit, target, molar_mass)
    assert scale == pytest.approx(expected, rel=1e-6)
    assert offset == 0.0


def test_temperature_offsets():
    scale, offset = conversion("degF", "degC")
    assert 98.6 * scale + offset == pytest.approx(37.0)
    scale, offset = conversion("K", "degC")
    assert 310.15 * scale + offset == pytest.approx(37.0)
    assert conversion("°C", "degC") == (1.0, 0.0)


@pytest.mark.parametrize(
    ("unit", "target", "mm"),
    [("cells", "mmol/L", 180.16), ("g/L", "mmol/L", None), ("AU", "pH", None), ("mmHg", "%", None)],
)
def test_impossible_conversions_raise(unit, target, mm):
    with pytest.raises(bw.ConfigError, match="cannot convert"):
        conversion(unit, target, mm)


def test_unparseable_unit():
    with pytest.raises(bw.ConfigError, match="not understood"):
        parse_unit("furlongs per fortnight squared!")


def test_registry_is_data_and_extendable():
    assert get_variable("glucose").molar_mass == 180.16
    assert {
        "vcd",
        "tcd",
        "viability",
        "glucose",
        "lactate",
        "glutamine",
        "glutamate",
        "ammonium",
        "titer",
        "volume",
        "ph",
        "do",
        "temperature",
        "osmolality",
        "pco2",
    } <= set(registry())
    table = bw.variables()
    assert table.filter(pl.col("variable") == "lactate")["molar_mass"].item() == 90.08
    with pytest.raises(bw.ConfigError, match="already registered"):
        bw.register_variable("glucose", "mmol/L")
    try:
        bw.register_variable("pyroglutamate", "mmol/L", min=0, molar_mass=129.11, kind="concentration")
        df = pl.DataFrame({"batch_id": ["A"], "variable": ["pyroglutamate"], "value": [1.2911], "unit": ["g/L"]})
        out, issues = to_canonical(df)
        assert not issues and out["value"][0] == pytest.approx(10.0)
    finally:
        registry().pop("pyroglutamate", None)
    with pytest.raises(bw.SchemaError, match="Did you mean 'glucose'"):
        get_variable("glucse")


def test_to_canonical_groups_and_reports():
    df = pl.DataFrame(
        {
            "batch_id": ["A", "A", "B", "B"],
            "variable": ["glucose", "vcd", "glucose", "temperature"],
            "value": [1.8016, 2e6, 3.0, 98.6],
            "unit": ["g/L", "cells/mL", "cells", "degF"],
            "line": [2, 3, 4, 5],
        }
    )
    out, issues = to_canonical(df, file="x.csv", line_col="line")
    assert out["value"][0] == pytest.approx(10.0) and out["unit"][0] == "mmol/L"
    assert out["value"][1] == pytest.approx(2.0) and out["unit"][1] == "1e6 cells/mL"
    assert out["value"][3] == pytest.approx(37.0) and out["unit"][3] == "degC"
    assert out["value"][2] == 3.0  # not converted: reported
    [issue] = issues
    assert (issue.file, issue.line, issue.column, issue.batch) == ("x.csv", 4, "unit", "B")


def test_to_canonical_keeps_raw_values_of_converted_rows_only():
    df = pl.DataFrame(
        {
            "variable": ["glucose", "glucose", "vcd"],
            "value": [1.8016, 5.0, 2.0],
            "unit": ["g/L", "mmol/L", "1e6 cells/mL"],
            "raw_value": [None, 0.9008, None],
            "raw_unit": [None, "g/L", None],
        }
    )
    out, issues = to_canonical(df, keep_raw=True)
    assert not issues
    assert out["value"].to_list() == pytest.approx([10.0, 5.0, 2.0])
    # a row converted before keeps its recorded original; rows left as they were stay null
    assert out["raw_value"].to_list() == [1.8016, 0.9008, None]
    assert out["raw_unit"].to_list() == ["g/L", "g/L", None]
    canonical = out.drop("raw_value", "raw_unit")
    same, _ = to_canonical(canonical)
    assert same is canonical  # nothing to convert: the frame itself, no join


def test_conversions_lists_what_to_canonical_would_convert():
    from bioworkbench.variables import conversions

    df = pl.DataFrame(
        {
            "variable": ["glucose", "glucose", "glucose", "vcd"],
            "unit": ["g/L", "g/L", "mmol/L", "cells"],
        }
    )
    table = conversions(df)
    assert table.select("variable", "unit", "rows", "canonical").rows() == [("glucose", "g/L", 2, "mmol/L")]
    assert table["scale"][0] == pytest.approx(1000 / 180.16)


def test_registering_a_variable_first_keeps_the_shipped_registry():
    # before the registry moved to bioworkbench.variables, registering a variable before anything
    # had read the registry left the registry holding that variable only
    import subprocess
    import sys

    code = (
        "import bioworkbench as bw; bw.register_variable('pyroglutamate', 'mmol/L', molar_mass=129.11); "
        "from bioworkbench.variables import registry; print(len(registry()), 'glucose' in registry())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the shipped registry counted in a fresh interpreter too: this test process's registry may hold
    # variables other tests registered (e.g. the instrument readers' extra quantities)
    count = "import bioworkbench as bw; print(len(bw.variables()))"
    shipped = int(subprocess.run([sys.executable, "-c", count], capture_output=True, text=True, check=True).stdout)
    assert out.stdout.split() == [str(shipped + 1), "True"]


def test_results_are_named():
    df = pl.DataFrame({"variable": ["glucose"], "value": [1.8016], "unit": ["g/L"]})
    result = to_canonical(df)
    assert result.frame["value"][0] == pytest.approx(10.0) and result.issues == []
    assert conversion("degF", "degC") == pytest.approx((5 / 9, -160 / 9))
    assert conversion("degF", "degC").offset == pytest.approx(-160 / 9)
