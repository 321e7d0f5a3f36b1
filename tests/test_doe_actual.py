"""Planned versus actual settings read back from the lab's files (issue 14, point 3).

The issue's example: a 16-run D-optimal design whose pH is shared by pairs of bioreactors, sent to the
lab in Excel, read back with a measured pH of 6.95 where 6.9 was planned.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from bioworkbench.doe import d_optimal, full_factorial, read_design
from bioworkbench.doe.files import deviations
from bioworkbench.errors import SchemaError

F3 = {"temp": (33.0, 37.0), "ph": (6.7, 7.1), "feed": (2.0, 4.0)}


@pytest.fixture(scope="module")
def plan():
    """16 runs in 8 pairs of bioreactors sharing one pH (6.7, 6.9 or 7.1)."""
    return d_optimal(F3, n_runs=16, terms="quadratic", shared=["ph"], block_size=2, n_starts=3, random_seed=3)


def _edit_cells(path, edits: dict[tuple[int, str], object], *, drop: tuple[str, ...] = (), add: dict | None = None):
    """Change cells of the 'design' sheet: ``{(run_order, column): value}``, delete columns, add columns."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb["design"]
    header = [c.value for c in ws[1]]
    run_col = header.index("run_order") + 1
    rows = {ws.cell(row=r, column=run_col).value: r for r in range(2, ws.max_row + 1)}
    for (run, col), value in edits.items():
        ws.cell(row=rows[run], column=header.index(col) + 1, value=value)
    for name, values in (add or {}).items():
        c = ws.max_column + 1
        ws.cell(row=1, column=c, value=name)
        for run, v in values.items():
            ws.cell(row=rows[run], column=c, value=v)
    for name in drop:
        ws.delete_cols(header.index(name) + 1)
        header.remove(name)
    wb.save(path)


def _run_with(plan, ph: float) -> int:
    runs = plan.frame.filter(pl.col("ph") == ph)["run_order"]
    assert len(runs), f"the plan has no run at pH {ph}"
    return int(runs[0])


def test_a_measured_ph_is_refused_as_a_typo_by_default_and_read_with_allow_actual(tmp_path, plan):
    path = tmp_path / "plan.xlsx"
    plan.to_excel(path)
    run = _run_with(plan, 6.9)
    _edit_cells(path, {(run, "ph"): 6.95})
    with pytest.raises(SchemaError, match=rf'column "ph": run {run} .*ph = 6.95.*ph_actual.*allow_actual=True'):
        read_design(path)
    d = read_design(path, allow_actual=True)
    row = d.frame.filter(pl.col("run_order") == run)
    assert row["ph"][0] == 6.95 and row["ph_planned"][0] == 6.9
    assert row["ph_coded"][0] == pytest.approx(0.25)  # recomputed from the actual setting
    dev = deviations(d)
    assert dev.select("run_order", "factor", "planned", "actual").rows() == [(run, "ph", 6.9, 6.95)]
    assert dev["deviation"][0] == pytest.approx(0.05) and dev["relative"][0] == pytest.approx(0.125)
    assert not dev["outside_range"][0]
    # every other run and factor is as planned
    others = d.frame.filter(pl.col("run_order") != run)
    assert_frame_equal(others.select(plan.frame.columns), plan.frame.filter(pl.col("run_order") != run))


def test_actual_columns_are_the_settings_as_run_and_the_plan_is_kept(tmp_path, plan):
    path = tmp_path / "plan.xlsx"
    plan.to_excel(path)
    r1, r2 = _run_with(plan, 6.9), _run_with(plan, 7.1)
    _edit_cells(path, {}, add={"ph_actual": {r1: 6.95, r2: 7.15}, "titer": dict.fromkeys(range(1, 17), 3.0)})
    d = read_design(path)
    assert d.frame.columns[-4:] == ["temp_planned", "ph_planned", "feed_planned", "titer"]
    assert "ph_actual" not in d.frame.columns
    assert d.frame.filter(pl.col("run_order") == r1)["ph"][0] == 6.95
    dev = deviations(d)
    assert dev["run_order"].to_list() == sorted([r1, r2])
    assert dev.filter(pl.col("run_order") == r2)["outside_range"][0]
    assert any("ph was run outside its studied range 6.7–7.1 in 1 run(s)" in n and "7.15" in n for n in d.notes)
    # the coded columns agree with the settings as run, so a model or analysis of the frame uses them
    coded = (d.frame["ph"] - 6.9) / 0.2
    np.testing.assert_allclose(d.frame["ph_coded"].to_numpy(), coded.to_numpy(), atol=1e-12)
    # written again and read back: the same design (the plan travels in the _planned columns)
    again = tmp_path / "again.csv"
    d.to_csv(again)
    back = read_design(again)
    assert_frame_equal(back.frame, d.frame)
    assert_frame_equal(deviations(back), dev)


def test_an_actual_cell_that_is_not_a_number_is_located(tmp_path, plan):
    path = tmp_path / "plan.csv"
    plan.to_csv(path)
    actual = [None] * plan.n_runs
    actual[4] = "6,95"
    plan.frame.with_columns(ph_actual=pl.Series(actual, dtype=pl.String)).write_csv(path)
    run = plan.frame["run_order"][4]
    with pytest.raises(SchemaError, match=rf'line 6, column "ph_actual": run {run}: expected a number, found \'6,95\''):
        read_design(path)


def test_deleted_coded_columns_are_recomputed(tmp_path):
    d = full_factorial(F3, levels=[2, 3, 2], random_seed=1)
    path = tmp_path / "plan.csv"
    d.to_csv(path)
    d.frame.drop("ph_coded", "temp_coded").write_csv(path)
    back = read_design(path)
    assert_frame_equal(back.frame, d.frame)
    assert (
        back.notes[-1]
        == "coded column(s) temp_coded, ph_coded were not in plan.csv; recomputed from the natural settings."
    )
    assert deviations(back).height == 0 and deviations(d).height == 0
