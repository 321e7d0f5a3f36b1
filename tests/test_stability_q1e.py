"""Stability study frame (read_study, validate_study) and ICH Q1E shelf life (shelf_life).

Published numbers: LeBlond, Griffith & Aubuchon, J. Valid. Technol. 17(3) 2011 (Tables IV-XIV) and the JMP 12
manual (Stability.jmp), as transcribed in the tests of the R package expirest (tests/testthat/test-expirest_osle.R).
expirest finds crossings with uniroot (default tolerance ~1e-4 relative), so its POIs agree with our exact roots
to about 1e-5; JMP 12.0.1 reports 15.844877978 for exp1 b4/b5/b8, which our exact root reproduces to 1e-9.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, DataReadError, SchemaError
from bioworkbench.stability import STUDY_COLUMNS, read_study, shelf_life, validate_study
from bioworkbench.stability.study import to_time_unit
from bioworkbench.text import Safe
from tests.conftest import shared_data


def q1e(name: str):
    return shared_data("stability-ich-q1e", f"{name}.csv")


@pytest.fixture(autouse=True)
def _quiet():
    # fewer than three lots and excluded rows are warned about; tests that care check the warning themselves
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        yield


def lots(study: pl.DataFrame, *ids: str) -> pl.DataFrame:
    return study.filter(pl.col("batch_id").is_in(list(ids)))


# =====================================================================================================================
# the study frame
# =====================================================================================================================
@pytest.mark.parametrize(
    ("name", "attribute", "rows", "batches"),
    [
        ("exp1", "potency", 53, ["b2", "b3", "b4", "b5", "b7", "b8"]),
        ("exp2", "related", 24, ["b4", "b5", "b8"]),
        ("exp3", "moisture", 33, ["b1", "b2", "b3"]),
        ("exp4", "conc", 36, ["1_11", "2_12", "3_13", "4_14"]),
    ],
)
def test_read_real_tables(name, attribute, rows, batches):
    path = q1e(name)
    study = read_study(path, temperature_c=25)
    assert study.columns == list(STUDY_COLUMNS)
    assert study.schema == pl.Schema(STUDY_COLUMNS)
    assert study.height == rows
    assert study["attribute"].unique().to_list() == [attribute]
    assert sorted(study["batch_id"].unique()) == batches
    assert study["time_unit"].unique().to_list() == ["month"]
    assert study["condition"].unique().to_list() == ["25 °C"]
    assert study["source_line"].to_list() == list(range(2, rows + 2))  # header = line 1
    assert study["source_file"].unique().to_list() == [str(path)]
    assert study["flag"].null_count() == rows


def test_read_with_explicit_columns_keeps_replicates():
    study = read_study(q1e("exp1"), columns={"Batch": "batch_id", "Month": "time"}, temperature_c=25, rh=60, unit="%")
    assert study.row(0, named=True) | {"source_file": None} == {
        "batch_id": "b2",
        "condition": "25 °C/60 % RH",
        "temperature_c": 25.0,
        "rh": 60.0,
        "time": 0.0,
        "time_unit": "month",
        "attribute": "potency",
        "value": 101.0,
        "unit": "%",
        "flag": None,
        "flag_reason": None,
        "source_file": None,
        "source_line": 2,
    }
    # b2 has two results at month 3 (lines 4 and 5): replicates are kept
    rep = study.filter((pl.col("batch_id") == "b2") & (pl.col("time") == 3))
    assert rep["value"].to_list() == [99.8, 99.2]
    assert rep["source_line"].to_list() == [4, 5]


def test_read_wide_with_header_units(tmp_path):
    p = tmp_path / "wide.csv"
    p.write_text(
        "Lot,Time [months],Potency (% LC),Aggregates (%),Storage\n"
        "L1,0,100.2,0.8,5 °C\nL1,3,99.6,,5 °C\nL1,6,99.1,1.1,5 °C\nL2,0,101.0,0.7,25 °C/60 % RH\n"
    )
    study = read_study(p)
    assert study.height == 7  # the empty aggregates cell is a result not measured, not a row
    pot = study.filter(pl.col("attribute") == "potency")
    assert pot["unit"].unique().to_list() == ["% LC"]
    agg = study.filter(pl.col("attribute") == "aggregates")
    assert agg["source_line"].to_list() == [2, 4, 5]
    assert agg["unit"].unique().to_list() == ["%"]
    l2 = study.filter(pl.col("batch_id") == "L2").row(0, named=True)
    assert (l2["temperature_c"], l2["rh"], l2["condition"]) == (25.0, 60.0, "25 °C/60 % RH")


def test_read_tidy_table_with_flags_and_extra_columns(tmp_path):
    p = tmp_path / "tidy.csv"
    p.write_text(
        "batch,condition,temperature,time,attribute,result,unit,flag,flag reason,analyst\n"
        "A,25C,25,0,purity,99.1,%,,,jd\n"
        "A,25C,25,3,purity,,%,<LOQ,below quantitation,jd\n"
        "A,25C,25,6,purity,98.5,%,,,kp\n"
    )
    study = read_study(p)
    assert study.columns == [*STUDY_COLUMNS, "analyst"]
    assert study["flag"].to_list() == [None, "<LOQ", None]
    assert study["flag_reason"].to_list() == [None, "below quantitation", None]
    assert study["value"].to_list()[0] == 99.1 and study["value"][1] is None
    assert study["analyst"].to_list() == ["jd", "jd", "kp"]


def test_read_decimal_comma_semicolon(tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text("Batch;Month;Potency\nA;0;100,5\nA;3;99,1\n")
    with pytest.raises(SchemaError) as err:
        read_study(p)
    text = str(err.value)
    assert "line 2, column \"Potency\" (batch A): expected a number, found '100,5'" in text
    assert "decimal_comma=True" in text
    study = read_study(p, decimal_comma=True)
    assert study["value"].to_list() == [100.5, 99.1]


def test_read_bad_cells_are_located(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("Lot,Day,Potency (% LC),Purity (%)\nA,0,100,99\nA,30,9x,98\nB,0,101,\nB,-3,99,-1\n")
    with pytest.raises(SchemaError) as err:
        read_study(p, time_unit="day")
    text = str(err.value)
    assert text.startswith(f"3 problems in {p}")
    assert "line 3, column \"Potency (% LC)\" (batch A): expected a number, found '9x'" in text
    assert 'line 5, column "Day" (batch B): time -3 is negative' in text
    assert 'line 5, column "Purity (%)" (batch B): purity = -1 % is impossible' in text
    # a wide table makes two rows of line 5: its time problem is reported once
    assert text.count("time -3 is negative") == 1


def test_read_time_header_must_match_time_unit(tmp_path):
    p = tmp_path / "days.csv"
    p.write_text("Lot,Day,Potency\nA,0,100\nA,30,99\n")
    with pytest.raises(SchemaError) as err:
        read_study(p)
    assert "line 1, column \"Day\": the time header 'Day' says days, but time_unit='month'" in str(err.value)
    assert "pass time_unit='day'" in str(err.value)
    assert read_study(p, time_unit="day")["time_unit"].unique().to_list() == ["day"]


def test_read_unrecognised_layout_lists_columns(tmp_path):
    p = tmp_path / "nolot.csv"
    p.write_text("Sample,Month,Potency\nA,0,100\n")
    with pytest.raises(SchemaError) as err:
        read_study(p)
    text = str(err.value)
    assert f"1 problem in {p}" in text
    assert 'line 1, column "batch_id": no batch_id column recognised' in text
    assert "found columns: Sample, Month, Potency" in text
    assert read_study(p, columns={"Sample": "batch_id"})["batch_id"].to_list() == ["A"]
    with pytest.raises(ConfigError, match=r"columns maps to 'lot', not a study column\. Valid: attribute, batch_id"):
        read_study(p, columns={"Sample": "lot"})
    with pytest.raises(SchemaError, match="column 'Batch' named in columns= is not in the file"):
        read_study(p, columns={"Batch": "batch_id"})
    with pytest.raises(DataReadError, match="file not found"):
        read_study(tmp_path / "missing.csv")


def test_read_arguments_that_contradict_the_file(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("Lot,Month,Temperature,Potency (%)\nA,0,25,100\nA,3,25,99\n")
    with pytest.raises(ConfigError, match=r"temperature_c=5 given, but the file has a temperature_c column"):
        read_study(p, temperature_c=5)
    with pytest.raises(ConfigError, match=r"states unit '%' in its header, but 'mg' given"):
        read_study(p, unit="mg")


def test_excel_round_trip(tmp_path):
    from openpyxl import Workbook

    csv_study = read_study(q1e("exp1"), temperature_c=25)
    raw = pl.read_csv(q1e("exp1"))
    wb = Workbook()
    ws = wb.active
    ws.append(raw.columns)
    for row in raw.iter_rows():
        ws.append(list(row))
    path = tmp_path / "exp1.xlsx"
    wb.save(path)
    xl = read_study(path, temperature_c=25)
    assert_frame_equal(xl.drop("source_file"), csv_study.drop("source_file"))
    assert xl["source_line"][0] == 2  # spreadsheet row, header = row 1


def test_validate_study_collects_every_problem():
    frame = pl.DataFrame(
        {
            "batch_id": ["A", "A", None, "B", "B"],
            "time": [0.0, -1.0, 3.0, 0.0, 3.0],
            "time_unit": ["months", "month", "month", "weeks", "month"],
            "attribute": ["purity"] * 5,
            "value": [99.0, 98.0, 97.0, -0.5, 96.0],
            "unit": ["%", "%", "%", "%", "mg/mL"],
        }
    )
    with pytest.raises(SchemaError) as err:
        validate_study(frame, source="lims.csv")
    text = str(err.value)
    assert text.startswith("5 problems in lims.csv")
    assert 'line 3, column "time" (batch A): time -1 is negative' in text
    assert 'line 4, column "batch_id": no lot (batch_id) on this row.' in text
    assert "line 5, column \"time_unit\" (batch B): time unit 'week' differs from the study's 'month'" in text
    assert "line 6, column \"unit\" (batch B): unit 'mg/mL' for 'purity' differs from '%'" in text
    assert 'line 5, column "value" (batch B): purity = -0.5 % is impossible' in text


def test_validate_study_rejects_non_finite_numbers():
    frame = pl.DataFrame(
        {"batch_id": ["A"] * 3, "time": [0.0, float("nan"), 6.0], "attribute": "p", "value": [1.0, 2.0, float("inf")]}
    )
    with pytest.raises(SchemaError) as err:
        validate_study(frame, source="s.csv")
    text = str(err.value)
    assert 'line 3, column "time" (batch A): time is nan; expected a finite time ≥ 0.' in text
    assert 'line 4, column "value" (batch A): value is inf on a row without a flag' in text


def test_read_wide_attribute_and_units_arguments(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("Batch,Month,Conc\nA,0,102\nA,3,101\n")
    study = read_study(p, attribute="concentration", unit="mg/kg")
    assert study["attribute"].unique().to_list() == ["concentration"]
    assert study["unit"].unique().to_list() == ["mg/kg"]
    assert read_study(p, units={"conc": "mg/kg"})["unit"].unique().to_list() == ["mg/kg"]
    with pytest.raises(ConfigError, match=r"units= names potency, not attributes of this table. Attributes: conc"):
        read_study(p, units={"potency": "%"})
    two = tmp_path / "two.csv"
    two.write_text("Batch,Month,Potency,Purity\nA,0,100,99\n")
    with pytest.raises(ConfigError, match=r"attribute='potency' names a single measured column, but the table has 2"):
        read_study(two, attribute="potency")


def test_validate_study_flags_impossible_values_on_request():
    frame = pl.DataFrame(
        {"batch_id": ["A", "A"], "time": [0, 3], "attribute": ["aggregates"] * 2, "value": [0.4, -0.1], "unit": "%"}
    )
    with pytest.raises(SchemaError, match=r"column \"value\" \(batch A\): row 1: aggregates = -0.1 % is impossible"):
        validate_study(frame)
    out = validate_study(frame, on_invalid="flag")
    assert out["value"].to_list() == [0.4, -0.1]  # never changed
    assert out["flag"].to_list() == [None, "invalid"]
    assert out["flag_reason"][1] == "impossible value: negative %"
    # a value flagged in the data is accepted as it is
    flagged = frame.with_columns(flag=pl.Series([None, "excluded"]), flag_reason=pl.Series([None, "blank"]))
    assert validate_study(flagged)["flag"].to_list() == [None, "excluded"]


def test_validate_study_defaults_conditions_and_lineage():
    frame = pl.DataFrame(
        {
            "batch_id": [1, 1, 2],
            "time": ["0", "3", "0"],
            "attribute": "potency",
            "value": [100, 99, 101],
            "condition": ["40 °C/75 % RH", "40 °C/75 % RH", "5 °C"],
        }
    )
    out = validate_study(frame)
    assert out["batch_id"].to_list() == ["1", "1", "2"]
    assert out["temperature_c"].to_list() == [40.0, 40.0, 5.0]
    assert out["rh"].to_list() == [75.0, 75.0, None]
    assert out["time_unit"].unique().to_list() == ["month"]
    assert out["source_line"].null_count() == 3 and out["source_file"].null_count() == 3
    bad = frame.with_columns(temperature_c=pl.Series([40.0, 30.0, 5.0]))
    with pytest.raises(SchemaError, match=r"row 1: temperature 30 °C contradicts the condition label '40 °C/75 % RH'"):
        validate_study(bad)
    two = pl.DataFrame({"batch_id": ["A", "A"], "time": [0, 3], "attribute": "p", "value": [1.0, 2.0]})
    assert validate_study(two)["condition"].unique().to_list() == ["unspecified"]
    unnamed = two.with_columns(condition=pl.Series(["shelf A", "shelf B"]))
    with pytest.raises(SchemaError, match=r"no storage temperature for condition 'shelf A'"):
        validate_study(unnamed)


def test_validate_study_missing_columns_and_repeated_reads():
    with pytest.raises(SchemaError) as err:
        validate_study(pl.DataFrame({"lot": ["A"], "time": [0.0]}), source="x.csv")
    text = str(err.value)
    assert "line 1, column \"batch_id\": missing column 'batch_id'" in text
    assert "column \"value\": missing column 'value'" in text and "found: lot, time" in text
    study = read_study(q1e("exp1"), temperature_c=25)
    with pytest.raises(
        SchemaError, match=r"line 2, column \"source_line\" \(batch b2\): potency from this line appears"
    ):
        validate_study(pl.concat([study, study]))


def test_to_time_unit_uses_pint_calendar():
    study = read_study(q1e("exp1"), temperature_c=25)
    days = to_time_unit(study, "day")
    assert days["time_unit"].unique().to_list() == ["day"]
    assert days.filter(pl.col("time") > 0)["time"].min() == pytest.approx(30.4375)
    assert to_time_unit(days, "years")["time"].max() == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="time unit 'fortnight' is not known"):
        to_time_unit(study, "fortnight")


# =====================================================================================================================
# ICH Q1E: independent check with statsmodels
# =====================================================================================================================
def _random_study(seed: int, slopes=(-0.2, -0.25, -0.18, -0.22), icpts=(100.0, 101.0, 99.5, 100.5), sd=0.6):
    rng = np.random.default_rng(seed)
    rows = []
    for j, (a, b) in enumerate(zip(icpts, slopes, strict=True)):
        times = [0, 3, 6, 9, 12, 18, 24][: 5 + j % 3]  # unbalanced: 5, 6, 7, 5 times
        for t in times:
            for _ in range(1 + (t == 6)):  # duplicates at month 6
                rows.append((f"L{j}", float(t), a + b * t + rng.normal(0, sd)))
    frame = pl.DataFrame(rows, schema=["batch_id", "time", "value"], orient="row")
    return validate_study(frame.with_columns(attribute=pl.lit("potency"), unit=pl.lit("%")))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ancova_matches_statsmodels(seed):
    sm = pytest.importorskip("statsmodels.formula.api")
    from statsmodels.stats.anova import anova_lm

    study = _random_study(seed)
    res = shelf_life(study, attribute="potency", lower=90)
    df = study.select("batch_id", "time", "value").to_pandas()
    cics = sm.ols("value ~ time", df).fit()
    dics = sm.ols("value ~ C(batch_id) + time", df).fit()
    dids = sm.ols("value ~ C(batch_id) * time", df).fit()
    nested = anova_lm(cics, dics, dids)  # F over the full model's scale (the last, biggest model)
    joint = anova_lm(cics, dids)
    # the ANCOVA table of the full model (type II: lot adjusted for time, lot x time for both; full-model MSE and
    # df, as LeBlond's sequential table time + lot + lot x time)
    ancova = anova_lm(dids, typ=2)
    tests = {r["test"]: r for r in res.tests.iter_rows(named=True)}
    icpt, slope = tests["equal intercepts"], tests["equal slopes"]
    assert icpt["F"] == pytest.approx(nested["F"][1], rel=1e-9)
    assert icpt["F"] == pytest.approx(ancova.loc["C(batch_id)", "F"], rel=1e-9)
    assert icpt["p_value"] == pytest.approx(ancova.loc["C(batch_id)", "PR(>F)"], rel=1e-7)
    assert slope["F"] == pytest.approx(nested["F"][2], rel=1e-9)
    assert slope["p_value"] == pytest.approx(nested["Pr(>F)"][2], rel=1e-7)
    assert slope["F"] == pytest.approx(ancova.loc["C(batch_id):time", "F"], rel=1e-9)
    assert slope["p_value"] == pytest.approx(ancova.loc["C(batch_id):time", "PR(>F)"], rel=1e-7)
    assert tests["equal lines"]["F"] == pytest.approx(joint["F"][1], rel=1e-9)
    assert tests["equal lines"]["p_value"] == pytest.approx(joint["Pr(>F)"][1], rel=1e-7)
    assert (slope["df_num"], slope["df_den"]) == (ancova.loc["C(batch_id):time", "df"], int(dids.df_resid))
    # the chosen model's coefficients and its residual SD
    fit = {"common": cics, "common_slope": dics, "separate": dids}[res.model]
    if res.model != "separate":
        assert res.residual_sd == pytest.approx(math.sqrt(fit.scale), rel=1e-9)
        assert res.df == int(fit.df_resid)
    if res.model == "separate":  # each lot's own regression (separate_mse="individual")
        per_lot = [(lot, sm.ols("value ~ time", g).fit()) for lot, g in df.groupby("batch_id")]
        rows = [(lot, f.params["Intercept"], f.bse["Intercept"], f.params["time"], f.bse["time"]) for lot, f in per_lot]
    else:
        at0 = fit.get_prediction(df.assign(time=0.0)).summary_frame()
        first = ~df["batch_id"].duplicated()
        slope = fit.params["time"]
        rows = list(zip(df["batch_id"][first], at0["mean"][first], at0["mean_se"][first], [slope] * 4,
                        [fit.bse["time"]] * 4, strict=True))  # fmt: skip
    exp = pl.DataFrame(rows, schema=["batch_id", "a", "a_se", "b", "b_se"], orient="row").sort("batch_id")
    got = res.table.sort("batch_id")
    np.testing.assert_allclose(got["intercept"], exp["a"], rtol=1e-9)
    np.testing.assert_allclose(got["intercept_se"], exp["a_se"], rtol=1e-7)
    np.testing.assert_allclose(got["slope"], exp["b"], rtol=1e-9)
    np.testing.assert_allclose(got["slope_se"], exp["b_se"], rtol=1e-7)


@pytest.mark.parametrize(
    ("icpts", "slopes", "model", "formula"),
    [
        ((99.0, 99.0, 99.0), (-0.1, -0.1, -0.1), "common", "value ~ time"),
        ((99.0, 100.5, 98.0), (-0.1, -0.1, -0.1), "common_slope", "value ~ C(batch_id) + time"),
        ((99.0, 99.0, 99.0), (-0.05, -0.1, -0.2), "separate", "value ~ C(batch_id) * time"),
    ],
)
def test_confidence_bounds_match_statsmodels(icpts, slopes, model, formula):
    sm = pytest.importorskip("statsmodels.formula.api")
    study = _constructed(icpts, slopes)
    res = shelf_life(study, attribute="purity", lower=95, separate_mse="pooled")
    assert res.model == model
    fit = sm.ols(formula, study.select("batch_id", "time", "value").to_pandas()).fit()
    times = np.array([0.0, 7.5, 30.0])
    got = res.bounds(times)
    new = pl.DataFrame({"batch_id": ["L1", "L2", "L3"]}).join(pl.DataFrame({"time": times}), how="cross")
    sf = fit.get_prediction(new.to_pandas()).summary_frame(alpha=0.10)  # one-sided 95 % on each side
    exp = pl.from_pandas(sf[["mean", "mean_ci_lower", "mean_ci_upper"]]).with_columns(new)
    joined = got.join(exp, on=["batch_id", "time"])
    assert joined.height == 9
    np.testing.assert_allclose(joined["fit"], joined["mean"], rtol=1e-10)
    np.testing.assert_allclose(joined["lower"], joined["mean_ci_lower"], rtol=1e-10)
    np.testing.assert_allclose(joined["upper"], joined["mean_ci_upper"], rtol=1e-10)
    assert joined["prob"].unique().to_list() == [pytest.approx(0.90)]
    assert res.residual_sd == pytest.approx(math.sqrt(fit.scale), rel=1e-10) and res.df == int(fit.df_resid)


def test_bounds_of_individual_lines_match_statsmodels_per_lot():
    sm = pytest.importorskip("statsmodels.formula.api")
    study = read_study(q1e("exp1"), temperature_c=25)
    res = shelf_life(lots(study, "b4", "b5", "b8"), attribute="potency", lower=95)
    assert res.model == "separate"
    got = res.bounds([0.0, 12.0, res.shelf_life])
    for lot in ("b4", "b5", "b8"):
        d = study.filter(pl.col("batch_id") == lot).to_pandas()
        fit = sm.ols("value ~ time", d).fit()
        new = pl.DataFrame({"time": [0.0, 12.0, res.shelf_life]}).to_pandas()
        sf = fit.get_prediction(new).summary_frame(alpha=0.10)
        mine = got.filter(pl.col("batch_id") == lot)
        np.testing.assert_allclose(mine["lower"], sf["mean_ci_lower"], rtol=1e-10)
        np.testing.assert_allclose(mine["upper"], sf["mean_ci_upper"], rtol=1e-10)
    # at the shelf life the limiting lot's lower bound sits on the limit
    at = got.filter((pl.col("batch_id") == "b8") & (pl.col("time") == res.shelf_life))
    assert at["lower"][0] == pytest.approx(95.0, abs=1e-9)


# =====================================================================================================================
# ICH Q1E: published numbers (LeBlond 2011; JMP 12 manual; expirest tests)
# =====================================================================================================================
def _tests(res):
    return {r["test"]: r for r in res.tests.iter_rows(named=True)}


def test_leblond_table_v_common_line():
    res = shelf_life(lots(read_study(q1e("exp1")), "b2", "b5", "b7"), attribute="potency", lower=95)
    assert res.model == "common"
    assert res.shelf_life == pytest.approx(25.9957631369, abs=1e-5)  # LeBlond: 26
    assert res.limiting_batch is None
    assert res.table["intercept"].to_list() == pytest.approx([100.566878981] * 3, rel=1e-10)
    assert res.table["slope"].to_list() == pytest.approx([-0.192993630573] * 3, rel=1e-10)
    t = _tests(res)
    assert t["equal intercepts"]["F"] == pytest.approx(0.435993484727, rel=1e-10)
    assert t["equal slopes"]["F"] == pytest.approx(0.228684731019, rel=1e-10)
    assert t["equal slopes"]["decisive"] and t["equal intercepts"]["decisive"]


def test_leblond_table_vii_common_slope():
    res = shelf_life(lots(read_study(q1e("exp1")), "b3", "b4", "b5"), attribute="potency", lower=95)
    assert res.model == "common_slope"
    assert res.shelf_life == pytest.approx(23.3972651235, abs=1e-5)  # LeBlond: 23.4
    assert res.limiting_batch == "b5"
    assert res.table["intercept"].to_list() == pytest.approx([102.175653109, 104.255189423, 100.820021871], rel=1e-10)
    assert res.table["slope"].unique().to_list() == pytest.approx([-0.213120866465], rel=1e-10)
    t = _tests(res)
    assert t["equal intercepts"]["F"] == pytest.approx(21.7380213596, rel=1e-10)
    assert t["equal slopes"]["F"] == pytest.approx(0.183108926252, rel=1e-10)
    assert t["equal intercepts"]["p_value"] < 0.25 <= t["equal slopes"]["p_value"]


def test_leblond_table_ix_separate_lines():
    study = lots(read_study(q1e("exp1")), "b4", "b5", "b8")
    res = shelf_life(study, attribute="potency", lower=95)
    assert res.model == "separate"
    # each lot's own regression: JMP 12.0.1 gives 15.844877978 (expirest's uniroot 15.8448655130)
    assert res.shelf_life == pytest.approx(15.844877978, abs=1e-8)
    assert res.limiting_batch == "b8"
    assert res.table["intercept"].to_list() == pytest.approx([104.070645793, 100.781872268, 101.259375], rel=1e-10)
    assert res.table["slope"].to_list() == pytest.approx([-0.196151337247, -0.208608547839, -0.330208333333], rel=1e-10)
    t = _tests(res)
    assert t["equal intercepts"]["F"] == pytest.approx(72.1242158003, rel=1e-10)
    assert t["equal slopes"]["F"] == pytest.approx(1.95541944320, rel=1e-10)
    assert t["equal slopes"]["decisive"] and not t["equal intercepts"]["decisive"]
    assert t["equal intercepts"]["decision"].startswith("not used")
    # LeBlond's Table IX uses the full model's pooled MSE: 15.6
    pooled = shelf_life(study, attribute="potency", lower=95, separate_mse="pooled")
    assert round(pooled.shelf_life, 1) == 15.6
    assert pooled.df == 18 and res.df == 3


def test_leblond_table_xii_increasing_attribute_upper_limit():
    res = shelf_life(read_study(q1e("exp2")), attribute="related", upper=0.3)
    assert res.model == "separate"
    assert res.shelf_life == pytest.approx(15.8448655130, abs=2e-5)
    assert res.limiting_batch == "b8"
    assert res.table["crossing"].to_list()[2] == "upper"
    assert res.table["intercept"].to_list() == pytest.approx([0.027880626223, 0.126543831957, 0.11221875], rel=1e-9)
    assert res.table["slope"].to_list() == pytest.approx([0.005884540117, 0.006258256435, 0.00990625], rel=1e-9)
    t = _tests(res)
    assert (t["equal intercepts"]["F"], t["equal slopes"]["F"]) == pytest.approx((72.1242158003, 1.95541944320))


def test_leblond_table_xiv_two_sided_limits():
    res = shelf_life(read_study(q1e("exp3")), attribute="moisture", lower=1.5, upper=3.5)
    assert res.model == "common"
    assert res.shelf_life == pytest.approx(45.3460440833, abs=1e-5)  # the upper bound crosses first
    assert res.table["crossing"].unique().to_list() == ["upper"]
    assert res.table["intercept"][0] == pytest.approx(2.45678204711, rel=1e-10)
    assert res.table["slope"][0] == pytest.approx(0.002272338514, rel=1e-9)
    t = _tests(res)
    assert t["equal intercepts"]["F"] == pytest.approx(0.353853883257, rel=1e-10)
    assert t["equal slopes"]["F"] == pytest.approx(0.748152729736, rel=1e-10)
    # two-sided 95 %: each bound at 97.5 %; the lower bound reaches 1.5 at expirest's 50.7665191694
    b = res.bounds([50.7665191694, res.shelf_life])
    assert b["prob"].unique().to_list() == [0.95]
    assert b["lower"][0] == pytest.approx(1.5, abs=1e-6)
    assert b["upper"][1] == pytest.approx(3.5, abs=1e-9)


def test_jmp_stability_example_all_models():
    res = shelf_life(read_study(q1e("exp4")), attribute="conc", lower=95)
    assert res.model == "common_slope"
    assert res.limiting_batch == "2_12"  # expirest wc.batch = 2
    assert res.shelf_life == pytest.approx(23.47505, abs=1e-5)  # JMP: "expiration time of 23.47505"
    cand = {(r["model"], r["mse"]): r for r in res.candidates.iter_rows(named=True)}
    assert cand[("common", None)]["shelf_life"] == pytest.approx(29.9856687174, abs=1e-5)
    assert cand[("common_slope", None)]["shelf_life"] == pytest.approx(23.4750503440, abs=1e-5)
    assert cand[("separate", "pooled")]["shelf_life"] == pytest.approx(23.244185941565, abs=1e-6)
    assert cand[("separate", "individual")]["shelf_life"] == pytest.approx(23.1159717387, abs=2e-5)  # JMP 23.11596
    assert res.candidates["chosen"].to_list() == [False, True, False, False]
    t = _tests(res)
    assert t["equal lines"]["F"] == pytest.approx(10.1083606518, rel=1e-10)
    assert t["equal intercepts"]["F"] == pytest.approx(19.8876404032, rel=1e-10)
    assert t["equal slopes"]["F"] == pytest.approx(0.329080900382, rel=1e-10)
    assert res.table["intercept"].to_list() == pytest.approx(
        [101.833246643, 100.450143334, 102.066579977, 104.136572391], rel=1e-10
    )
    assert res.table["slope"][0] == pytest.approx(-0.202213553211, rel=1e-10)


# =====================================================================================================================
# ICH Q1E: constructed data, extrapolation, results for plots and reports
# =====================================================================================================================
_E = np.array([0.3, -0.2, 0.1, -0.4, 0.25, 0.05, -0.1])
_T = np.array([0.0, 3, 6, 9, 12, 18, 24])


def _constructed(icpts, slopes) -> pl.DataFrame:
    rows = []
    for j, (a, b) in enumerate(zip(icpts, slopes, strict=True)):
        e = np.roll(_E, 2 * j)  # the same scatter, shifted per lot
        rows += [(f"L{j + 1}", t, a + b * t + ej) for t, ej in zip(_T, e, strict=True)]
    frame = pl.DataFrame(rows, schema=["batch_id", "time", "value"], orient="row")
    return validate_study(frame.with_columns(attribute=pl.lit("purity"), unit=pl.lit("%")))


@pytest.mark.parametrize(
    ("icpts", "slopes", "model"),
    [
        ((99.0, 99.0, 99.0), (-0.1, -0.1, -0.1), "common"),
        ((99.0, 100.5, 98.0), (-0.1, -0.1, -0.1), "common_slope"),
        ((99.0, 99.0, 99.0), (-0.05, -0.1, -0.2), "separate"),
    ],
)
def test_three_pooling_outcomes(icpts, slopes, model):
    res = shelf_life(_constructed(icpts, slopes), attribute="purity", lower=95)
    assert res.model == model
    t = _tests(res)
    assert (t["equal slopes"]["p_value"] < 0.25) == (model == "separate")
    if model != "separate":
        assert (t["equal intercepts"]["p_value"] < 0.25) == (model == "common_slope")
    sl = res.table["shelf_life"].to_numpy()
    assert res.shelf_life == pytest.approx(sl.min())
    if model == "common":
        assert res.limiting_batch is None and np.ptp(sl) == 0
    else:
        # the worst lot: the lowest start (common slope) or the steepest decline (separate)
        assert res.limiting_batch == "L3"
    # the bound reaches the limit exactly at each lot's shelf life
    for lot, when in res.table.select("batch_id", "shelf_life").iter_rows():
        at = res.bounds([when]).filter(pl.col("batch_id") == lot)
        assert at["lower"][0] == pytest.approx(95.0, abs=1e-9)


def test_alpha_pool_changes_the_decision():
    study = lots(read_study(q1e("exp1")), "b4", "b5", "b8")
    assert shelf_life(study, attribute="potency", lower=95).model == "separate"  # p(slopes) = 0.17
    strict = shelf_life(study, attribute="potency", lower=95, alpha_pool=0.05)
    assert strict.model == "common_slope"
    assert _tests(strict)["equal slopes"]["alpha"] == 0.05


def test_extrapolation_limits_per_storage():
    study = lots(read_study(q1e("exp1")), "b2", "b5", "b7")
    got = {s: shelf_life(study, attribute="potency", lower=90, storage=s) for s in ("room", "refrigerated", "frozen")}
    life = got["room"].shelf_life
    assert life == pytest.approx(48.67, abs=0.01) and got["room"].extrapolated
    assert got["room"].last_time == 24.0
    assert (got["room"].max_allowed, got["refrigerated"].max_allowed, got["frozen"].max_allowed) == (36.0, 30.0, 24.0)
    assert all(r.capped for r in got.values())
    assert got["refrigerated"].proposed_shelf_life == 30.0
    assert "capped at 30 months" in got["refrigerated"].narrative()
    within = shelf_life(study, attribute="potency", lower=96)
    assert not within.extrapolated and not within.capped and within.proposed_shelf_life == within.shelf_life
    assert "no extrapolation" in within.narrative()
    # 12 months beyond, in a study kept in days: 730.5 d + 365.25 d
    days = shelf_life(to_time_unit(study, "day"), attribute="potency", lower=90)
    assert days.max_allowed == pytest.approx(730.5 + 365.25)
    assert days.shelf_life == pytest.approx(life * 30.4375, rel=1e-9)


def test_bound_that_never_crosses_gives_inf():
    res = shelf_life(read_study(q1e("exp2")), attribute="related", lower=0.0)
    assert res.shelf_life == math.inf
    assert res.table["crossing"].null_count() == 3
    assert res.capped and res.proposed_shelf_life == res.max_allowed == 36.0
    assert "never crosses" in res.narrative()
    assert res.bounds()["time"].max() == pytest.approx(1.1 * 36.0)


def test_flagged_rows_are_excluded_and_counted():
    study = read_study(q1e("exp1"))
    flagged = study.with_columns(
        flag=pl.when(pl.col("source_line") == 11).then(pl.lit("excluded")).otherwise(pl.col("flag")),
        flag_reason=pl.when(pl.col("source_line") == 11).then(pl.lit("OOS, lab error")).otherwise(None),
    )
    sub = lots(flagged, "b2", "b5", "b7")
    with pytest.warns(BioWorkbenchWarning, match="1 flagged potency at unspecified row excluded"):
        res = shelf_life(sub, attribute="potency", lower=95)
    assert res.excluded == 1
    assert res.data.height == 30 and 11 not in res.data["source_line"].to_list()
    assert "1 flagged row excluded" in res.narrative()


def test_result_for_plots_and_reports():
    res = shelf_life(read_study(q1e("exp4")), attribute="conc", lower=95)
    b = res.bounds()
    assert b.columns == ["batch_id", "time", "fit", "lower", "upper", "prob"]
    assert b["prob"].unique().to_list() == [pytest.approx(0.90)]
    assert b["time"].max() > res.shelf_life  # reaches past the shelf life
    assert b.filter(pl.col("time") == res.shelf_life).height == 4  # the crossing itself is on the grid
    assert (b["lower"] <= b["fit"]).all() and (b["fit"] <= b["upper"]).all()
    assert set(res.table.columns) >= {
        "batch_id",
        "intercept",
        "intercept_se",
        "slope",
        "slope_se",
        "n",
        "last_time",
        "shelf_life",
        "crossing",
    }
    assert res.tests.columns == ["test", "F", "df_num", "df_den", "p_value", "alpha", "decisive", "decision"]
    text = res.narrative()
    # words for a report page: Safe Markdown, the lot ids escaped ("_" would start emphasis)
    assert isinstance(text, Safe)
    for piece in ("F(3, 28) = 0.3291, p = 0.8043", "F(3, 28) = 19.89, p < 0.0001", "23.48 months", "lot 2&#95;12"):
        assert piece in text
    md = res.to_markdown()
    assert isinstance(md, Safe) and md.startswith("### ICH Q1E shelf life: conc")
    assert "| equal slopes" in md and "| 2&#95;12" in md and "2_12" not in md
    assert (res.attribute, res.unit, res.time_unit, res.confidence) == ("conc", None, "month", 0.95)


def test_one_lot_and_few_lots_warn():
    study = lots(read_study(q1e("exp1")), "b2")
    with pytest.warns(BioWorkbenchWarning, match="at least three"):
        res = shelf_life(study, attribute="potency", lower=95)
    assert res.model == "common" and res.limiting_batch == "b2"
    assert res.tests["F"].null_count() == 3
    assert "one lot" in res.narrative()


# =====================================================================================================================
# ICH Q1E: clear errors
# =====================================================================================================================
def test_error_lot_with_one_time_point():
    study = read_study(q1e("exp1"), temperature_c=25)
    extra = study.head(1).with_columns(batch_id=pl.lit("b9"), source_line=pl.lit(54, dtype=pl.Int64))
    with pytest.raises(SchemaError) as err:
        shelf_life(pl.concat([study, extra]), attribute="potency", lower=95)
    text = str(err.value)
    assert f"1 problem in {q1e('exp1')}" in text
    assert 'line 54, column "time" (batch b9)' in text
    assert "found 1 time point, needed at least 2" in text


def test_error_no_time_variation():
    study = read_study(q1e("exp1")).filter(pl.col("time") == 3)
    with pytest.raises(SchemaError, match=r'column "time": potency at unspecified: all 10 results are at time 3'):
        shelf_life(study, attribute="potency", lower=95)


def test_error_limits():
    study = read_study(q1e("exp1"), temperature_c=25)
    with pytest.raises(ConfigError, match="no acceptance limit given"):
        shelf_life(study, attribute="potency")
    with pytest.raises(ConfigError, match="lower=100 must be below upper=90"):
        shelf_life(study, attribute="potency", lower=100, upper=90)
    with pytest.raises(ConfigError) as err:
        shelf_life(study, attribute="potency", lower=105)
    assert "lower=105 is on the wrong side of the fitted value at time 0, 100.4 for lot b8" in str(err.value)
    with pytest.raises(ConfigError, match=r"upper=0.02 is on the wrong side .* 0.1265 for lot b5"):
        shelf_life(read_study(q1e("exp2")), attribute="related", upper=0.02)
    with pytest.raises(
        ConfigError, match=r"bound of the mean at time 0 is already below lower=100.3 \(99.7 for lot b8"
    ):
        shelf_life(study, attribute="potency", lower=100.3)
    with pytest.raises(ConfigError, match=r"lower=105 .* for the common line of all lots"):
        shelf_life(lots(study, "b2", "b5", "b7"), attribute="potency", lower=105)


def test_error_arguments():
    study = read_study(q1e("exp1"), temperature_c=25)
    with pytest.raises(ConfigError, match=r"attribute 'Potency' is not in the study. Did you mean 'potency'\?"):
        shelf_life(study, attribute="Potency", lower=95)
    with pytest.raises(ConfigError, match=r"condition '5 °C' has no 'potency' results.*Conditions: 25 °C"):
        shelf_life(study, attribute="potency", lower=95, condition="5 °C")
    with pytest.raises(ConfigError, match="storage='fridge' is not known; valid: room, refrigerated, frozen"):
        shelf_life(study, attribute="potency", lower=95, storage="fridge")
    with pytest.raises(
        ArgumentError, match=r"shelf_life: confidence must be a probability .*got 95\. Did you mean 0\.95\?"
    ):
        shelf_life(study, attribute="potency", lower=95, confidence=95)
    both = pl.concat([study, read_study(q1e("exp1"), temperature_c=40)])
    with pytest.raises(ConfigError, match=r"measured at 2 conditions.*Conditions: '25 °C', '40 °C'"):
        shelf_life(both, attribute="potency", lower=95)
    assert shelf_life(both, attribute="potency", lower=95, condition="40 °C").condition == "40 °C"


def test_error_separate_lot_without_residual_df():
    study = lots(read_study(q1e("exp1")), "b4", "b5", "b8")
    two = study.filter((pl.col("batch_id") != "b8") | pl.col("time").is_in([0.0, 3.0]))
    assert two.filter(pl.col("batch_id") == "b8").height == 2
    res = shelf_life(two, attribute="potency", lower=95, separate_mse="pooled", alpha_pool=0.99)
    assert res.model == "separate"
    with pytest.raises(SchemaError) as err:
        shelf_life(two, attribute="potency", lower=95, alpha_pool=0.99)
    text = str(err.value)
    assert "(batch b8): potency at unspecified: lot b8 has 2 results" in text
    assert "found 2, needed 3" in text and "separate_mse='pooled'" in text


# =====================================================================================================================
# speed
# =====================================================================================================================
def test_fifty_lots_by_ten_times_is_fast():
    rng = np.random.default_rng(7)
    times = np.array([0, 1, 2, 3, 6, 9, 12, 18, 24, 36], dtype=float)
    k = 50
    frame = pl.DataFrame(
        {
            "batch_id": np.repeat([f"L{i:02d}" for i in range(k)], times.size),
            "time": np.tile(times, k),
            "attribute": "potency",
            "value": np.repeat(100 + rng.normal(0, 0.8, k), times.size)
            - 0.15 * np.tile(times, k)
            + rng.normal(0, 0.4, k * times.size),
            "unit": "%",
        }
    )
    study = validate_study(frame)
    shelf_life(study, attribute="potency", lower=90)  # warm-up (scipy import)
    t0 = time.perf_counter()
    res = shelf_life(study, attribute="potency", lower=90)
    elapsed = time.perf_counter() - t0
    print(f"ICH Q1E analysis of 50 lots x 10 times: {elapsed * 1000:.1f} ms")
    assert res.table.height == 50
    assert elapsed < 1.0
