"""Classical DoE analysis (bw.doe.analyze): Montgomery's textbook analyses to their printed precision,
Q² against an independent leave-one-out refit, model reduction and the errors a user can cause."""

import dataclasses
import math
import warnings

import numpy as np
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.doe import Analysis, analyze, central_composite, full_factorial
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError, SchemaError

# ---------------------------------------------------------------------------------------------
# data typed from Montgomery, Design and Analysis of Experiments, 8th ed. (Wiley 2013)
# ---------------------------------------------------------------------------------------------
# Example 6.2, Table 6.10: filtration rate (gal/h) of a 2^4 single replicate in standard (Yates)
# order (1), a, b, ab, c, ..., abcd; A temperature, B pressure, C formaldehyde concentration,
# D stirring rate (coded ±1).
FILTRATION = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]
ABCD = {name: (-1.0, 1.0) for name in "ABCD"}


def yates(k):
    """Coded 2^k runs in standard order: the first factor changes fastest."""
    return np.array([[1.0 if (i >> j) & 1 else -1.0 for j in range(k)] for i in range(2**k)])


def filtration_frame():
    x = yates(4)
    return pl.DataFrame({**{n: x[:, j] for j, n in enumerate("ABCD")}, "rate": [float(v) for v in FILTRATION]})


# Example 11.2, Table 11.6: the chemical process CCD, time 80-90 min (x1) and temperature 170-180 °F
# (x2), yield y1 (%), viscosity y2, molecular weight y3. Four factorial runs, five centre points, four
# axial points; the book prints the axial distance as 1.414 (92.07, 77.93 min; 182.07, 167.93 °F) and
# its Design-Expert analysis uses alpha = sqrt(2) exactly, so the axial settings are typed as 85 ± 5·√2.
A2 = math.sqrt(2)
CCD_X1 = [-1, -1, 1, 1, 0, 0, 0, 0, 0, A2, -A2, 0, 0]
CCD_X2 = [-1, 1, -1, 1, 0, 0, 0, 0, 0, 0, 0, A2, -A2]
CCD_YIELD = [76.5, 77.0, 78.0, 79.5, 79.9, 80.3, 80.0, 79.7, 79.8, 78.4, 75.6, 78.5, 77.0]
CCD_VISCOSITY = [62, 60, 66, 59, 72, 69, 68, 70, 71, 68, 71, 58, 57]
TIME_TEMP = {"time": (80.0, 90.0), "temp": (170.0, 180.0)}


def ccd_frame():
    return pl.DataFrame(
        {
            "time": [85.0 + 5 * v for v in CCD_X1],
            "temp": [175.0 + 5 * v for v in CCD_X2],
            "yield": CCD_YIELD,
            "viscosity": [float(v) for v in CCD_VISCOSITY],
        }
    )


def rows(analysis, response):
    table = analysis.anova.filter(pl.col("response") == response)
    return {r["source"]: r for r in table.iter_rows(named=True)}


# ---------------------------------------------------------------------------------------------
# Example 6.2: reduced model A, C, D, AC, AD
# ---------------------------------------------------------------------------------------------
def test_montgomery_example_6_2_reduced_model_anova_and_statistics():
    # Table 6.14 (Design-Expert output for the reduced model): SS, F, R², adj R², pred R², PRESS
    a = analyze(filtration_frame(), "rate", terms=["A", "C", "D", "A:C", "A:D"], factors=ABCD)
    t = rows(a, "rate")
    printed = {"A": 1870.56, "C": 390.06, "D": 855.56, "A:C": 1314.06, "A:D": 1105.56, "model": 5535.81}
    for source, ss in printed.items():
        assert round(t[source]["ss"], 2) == ss, source
    assert round(t["residual"]["ss"], 2) == pytest.approx(195.12, abs=0.011)  # printed 195.12 (195.125)
    assert t["residual"]["df"] == 10 and t["model"]["df"] == 5 and t["total"]["df"] == 15
    assert round(t["total"]["ss"], 2) == 5730.94
    assert round(t["residual"]["ms"], 2) == 19.51
    assert round(t["model"]["f"], 2) == 56.74
    for source, f in {"A": 95.86, "C": 19.99, "D": 43.85, "A:C": 67.34, "A:D": 56.66}.items():
        assert round(t[source]["f"], 2) == f, source
    assert round(t["C"]["p"], 4) == 0.0012
    assert "lack_of_fit" not in t and "block" not in t  # no replicated settings: no pure error
    st = a.statistics.row(0, named=True)
    assert st["n"] == 16
    assert round(st["r2"], 4) == 0.9660 and round(st["r2_adj"], 4) == 0.9489
    assert round(st["q2"], 4) == 0.9128 and round(st["press"], 2) == 499.52
    assert round(st["rmse"], 2) == 4.42 and st["lack_of_fit_p"] is None
    # regression model (Eq. 6.x): y = 70.06 + 10.81 x1 + 4.94 x3 + 7.31 x4 - 9.06 x1x3 + 8.31 x1x4
    est = dict(a.coefficients.select("term", "estimate").iter_rows())
    printed_coef = {"intercept": 70.06, "A": 10.81, "C": 4.94, "D": 7.31, "A:C": -9.06, "A:D": 8.31}
    for term, b in printed_coef.items():
        assert est[term] == pytest.approx(b, abs=0.005 + 1e-9), term
    # an orthogonal design: every VIF is 1
    assert a.coefficients.filter(pl.col("term") != "intercept")["vif"].to_list() == pytest.approx([1.0] * 5)


def test_terms_by_letters_and_by_names_give_the_same_analysis():
    frame = filtration_frame().rename({"A": "temp", "B": "pressure", "C": "conc", "D": "stir"})
    f = dict(zip(["temp", "pressure", "conc", "stir"], ABCD.values(), strict=True))
    by_letter = analyze(frame, "rate", terms=["A", "C", "D", "A:C", "A:D"], factors=f)
    by_name = analyze(frame, "rate", terms=["temp", "conc", "stir", "conc:temp", "temp:stir"], factors=f)
    assert by_letter.coefficients["term"].to_list() == ["intercept", "temp", "conc", "stir", "temp:conc", "temp:stir"]
    assert by_letter.anova.equals(by_name.anova)


# ---------------------------------------------------------------------------------------------
# Example 7.2: the filtration experiment in two blocks, ABCD confounded
# ---------------------------------------------------------------------------------------------
def test_montgomery_example_7_2_blocks_are_a_source():
    # Table 7.5: runs with ABCD = +1 in block 1, whose rates are 20 gal/h lower ((1) = 25, ab = 45, ...);
    # ANOVA: blocks 1387.56 (1 df), A 1870.56 (F 89.76), C 390.06, D 855.56, AC 1314.06, AD 1105.56,
    # error 187.56 on 9 df
    frame = filtration_frame()
    x = frame.select(list("ABCD")).to_numpy()
    block = np.where(np.prod(x, axis=1) > 0, 1, 2)
    frame = frame.with_columns(pl.Series("block", block), pl.Series("rate", np.array(FILTRATION) - 20.0 * (block == 1)))
    assert frame["rate"].to_list()[:4] == [25, 71, 48, 45]
    a = analyze(frame, "rate", terms=["A", "C", "D", "A:C", "A:D"], factors=ABCD, block="block")
    t = rows(a, "rate")
    assert list(t)[:2] == ["block", "model"]
    assert round(t["block"]["ss"], 2) == 1387.56 and t["block"]["df"] == 1 and t["block"]["f"] is None
    assert round(t["residual"]["ss"], 2) == 187.56 and t["residual"]["df"] == 9
    assert round(t["residual"]["ms"], 2) == 20.84
    assert round(t["A"]["f"], 2) == 89.76
    for source, ss in {"A": 1870.56, "C": 390.06, "D": 855.56, "A:C": 1314.06, "A:D": 1105.56}.items():
        assert round(t[source]["ss"], 2) == ss
    # block + model + residual = corrected total (the decomposition adds up with blocks entered first)
    assert t["block"]["ss"] + t["model"]["ss"] + t["residual"]["ss"] == pytest.approx(t["total"]["ss"])
    # without the block the block's SS falls into the residual
    plain = rows(analyze(frame, "rate", terms=["A", "C", "D", "A:C", "A:D"], factors=ABCD), "rate")
    assert plain["residual"]["ss"] == pytest.approx(187.5625 + 1387.5625)


# ---------------------------------------------------------------------------------------------
# Example 11.2: second-order model with lack of fit against 5 centre points
# ---------------------------------------------------------------------------------------------
def test_montgomery_example_11_2_second_order_model_and_lack_of_fit():
    # Table 11.7 (Design-Expert output, yield): model 28.25 (5 df, F 79.85), A 7.92, B 2.12, A² 13.18,
    # B² 6.97, AB 0.25 (F 3.53, p 0.1022), residual 0.50 (7 df), lack of fit 0.28 (3 df, F 1.78,
    # p 0.2897), pure error 0.21 (4 df), total 28.74 (12 df); std dev 0.27, R² 0.9828, adj R² 0.9705,
    # pred R² 0.9184, PRESS 2.35; coefficients 79.94, 0.99, 0.52, 0.25, -1.38, -1.00 with SE
    # 0.12, 0.094, 0.094, 0.13, 0.10, 0.10
    a = analyze(ccd_frame(), ["yield", "viscosity"], terms="quadratic", factors=TIME_TEMP)
    t = rows(a, "yield")
    assert list(t) == ["model", "time", "temp", "time:temp", "time^2", "temp^2", "residual", "lack_of_fit",
                       "pure_error", "total"]  # fmt: skip
    printed = {
        "model": 28.25,
        "time": 7.92,
        "temp": 2.12,
        "time^2": 13.18,
        "temp^2": 6.97,
        "time:temp": 0.25,
        "residual": 0.50,
        "lack_of_fit": 0.28,
        "pure_error": 0.21,
        "total": 28.74,
    }
    for source, ss in printed.items():
        assert round(t[source]["ss"], 2) == ss, source
    dfs = {"model": 5, "residual": 7, "lack_of_fit": 3, "pure_error": 4, "total": 12}
    assert {s: t[s]["df"] for s in dfs} == dfs
    assert round(t["model"]["f"], 2) == 79.85
    assert round(t["time:temp"]["f"], 2) == 3.53 and round(t["time:temp"]["p"], 4) == 0.1022
    assert round(t["lack_of_fit"]["f"], 2) == 1.78 and round(t["lack_of_fit"]["p"], 4) == 0.2897
    st = a.statistics.filter(pl.col("response") == "yield").row(0, named=True)
    assert round(st["rmse"], 2) == 0.27
    assert round(st["r2"], 4) == 0.9828 and round(st["r2_adj"], 4) == 0.9705
    assert round(st["q2"], 4) == 0.9184 and round(st["press"], 2) == 2.35
    assert st["lack_of_fit_p"] == t["lack_of_fit"]["p"]
    coef = {r["term"]: r for r in a.coefficients.filter(pl.col("response") == "yield").iter_rows(named=True)}
    printed_coef = {
        "intercept": (79.94, 0.12),
        "time": (0.99, 0.094),
        "temp": (0.52, 0.094),
        "time:temp": (0.25, 0.13),
        "time^2": (-1.38, 0.10),
        "temp^2": (-1.00, 0.10),
    }
    for term, (b, se) in printed_coef.items():
        assert round(coef[term]["estimate"], 2) == b, term
        assert float(f"{coef[term]['se']:.2g}") == se, term
    # the pure quadratics are correlated in a CCD: VIF above 1, the linear terms and AB orthogonal
    assert coef["time"]["vif"] == pytest.approx(1.0) and coef["time:temp"]["vif"] == pytest.approx(1.0)
    assert coef["time^2"]["vif"] > 1.0
    assert set(a.statistics["response"]) == {"yield", "viscosity"}


def test_montgomery_table_11_11_ccd_in_two_blocks():
    # Table 11.11: the CCD run in two blocks (block 1: factorial runs and 3 centre points, yields 4 %
    # higher; block 2: axial runs and 3 centre points); Table 11.12 prints blocks SS 69.53 on 1 df.
    # Pure error comes from the centre points within each block: 2 + 2 df; lack of fit 3 df.
    frame = pl.DataFrame(
        {
            "time": [85.0 + 5 * v for v in [-1, -1, 1, 1, 0, 0, 0, 0, 0, 0, A2, -A2, 0, 0]],
            "temp": [175.0 + 5 * v for v in [-1, 1, -1, 1, 0, 0, 0, 0, 0, 0, 0, 0, A2, -A2]],
            "block": [1] * 7 + [2] * 7,
            "yield": [80.5, 81.5, 82.0, 83.5, 83.9, 84.3, 84.0, 79.7, 79.8, 79.5, 78.4, 75.6, 78.5, 77.0],
        }
    )
    a = analyze(frame, "yield", terms="quadratic", factors=TIME_TEMP, block="block")
    t = rows(a, "yield")
    assert round(t["block"]["ss"], 2) == 69.53 and t["block"]["df"] == 1
    assert (t["residual"]["df"], t["lack_of_fit"]["df"], t["pure_error"]["df"]) == (7, 3, 4)
    within = [[83.9, 84.3, 84.0], [79.7, 79.8, 79.5]]
    assert t["pure_error"]["ss"] == pytest.approx(sum(np.sum((np.array(b) - np.mean(b)) ** 2) for b in within))
    # the CCD blocks orthogonally (alpha = sqrt(2), 3 centre points per block): x1's column is orthogonal
    # to the intercept, the block contrast and every other term, so its estimate is Σ x1·y / Σ x1²
    coef = dict(a.coefficients.select("term", "estimate").iter_rows())
    x1 = frame["time"].to_numpy() - 85
    assert coef["time"] == pytest.approx(np.sum(x1 / 5 * frame["yield"].to_numpy()) / np.sum((x1 / 5) ** 2))


def test_design_input_uses_its_ranges_blocks_and_run_order():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)  # axial points outside the ranges
        d = central_composite(TIME_TEMP, alpha="orthogonal", center_points=(3, 3), blocks=2, random_seed=3)
    rng = np.random.default_rng(0)
    coded = d.coded
    y = (
        80
        + coded[:, 0]
        - 1.3 * coded[:, 0] ** 2
        + 2.0 * (d.frame["block"].to_numpy() == 2)
        + rng.normal(0, 0.2, len(coded))
    )
    d = dataclasses.replace(d, frame=d.frame.with_columns(pl.Series("y", y)))
    a = analyze(d, "y", terms="quadratic")
    t = rows(a, "y")
    assert "block" in t and t["block"]["df"] == 1
    assert a.residuals["run"].to_list() == d.frame["run_order"].to_list()
    no_blocks = analyze(d, "y", terms="quadratic", block=False)
    assert "block" not in rows(no_blocks, "y")
    with pytest.raises(ConfigError, match="a Design codes its factors with its own ranges"):
        analyze(d, "y", terms="linear", factors=TIME_TEMP)


def test_actual_settings_replace_the_planned_ones():
    frame = ccd_frame().with_columns(pl.col("time").alias("time_actual"))
    shifted = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(79.0).otherwise(pl.col("time")).alias("time_actual")
    )
    a = analyze(frame, "yield", terms="quadratic", factors=TIME_TEMP)
    b = analyze(shifted, "yield", terms="quadratic", factors=TIME_TEMP)
    assert a.statistics["r2"][0] != b.statistics["r2"][0]


# ---------------------------------------------------------------------------------------------
# Q² and residuals, independently
# ---------------------------------------------------------------------------------------------
def test_q2_matches_an_independent_leave_one_out_refit():
    frame = ccd_frame()
    a = analyze(frame, "viscosity", terms="quadratic", factors=TIME_TEMP)
    x1, x2 = (frame["time"].to_numpy() - 85) / 5, (frame["temp"].to_numpy() - 175) / 5
    X = np.column_stack([np.ones_like(x1), x1, x2, x1 * x2, x1**2, x2**2])
    y = frame["viscosity"].to_numpy()
    errors = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        beta = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
        errors.append(y[i] - X[i] @ beta)
    press = float(np.sum(np.square(errors)))
    q2 = 1 - press / np.sum((y - y.mean()) ** 2)
    st = a.statistics.row(0, named=True)
    assert st["press"] == pytest.approx(press, rel=1e-10) and st["q2"] == pytest.approx(q2, rel=1e-10)


def test_residual_frame():
    a = analyze(ccd_frame(), "yield", terms="quadratic", factors=TIME_TEMP)
    r = a.residuals
    assert r.columns == ["run", "response", "observed", "predicted", "residual", "studentized", "leverage"]
    assert r["run"].to_list() == list(range(1, 14))
    assert (r["observed"] - r["predicted"] - r["residual"]).abs().max() < 1e-12
    assert r["leverage"].sum() == pytest.approx(6.0)  # trace of the hat matrix = parameters
    mse = rows(a, "yield")["residual"]["ms"]
    expected = r["residual"] / (mse * (1 - r["leverage"])).sqrt()
    assert np.allclose(r["studentized"].to_numpy(), expected.to_numpy())


def test_leverage_one_makes_q2_undefined_with_a_note():
    # a quadratic in x through x = -1 (twice), 0 and 1: the single runs at 0 and 1 have leverage 1
    frame = pl.DataFrame({"x": [-1.0, -1.0, 0.0, 1.0], "y": [1.0, 1.2, 2.0, 1.5]})
    a = analyze(frame, "y", terms=["x", "x^2"], factors={"x": (-1, 1)})
    st = a.statistics.row(0, named=True)
    assert st["q2"] is None and st["press"] is None
    assert any("leverage 1" in n for n in a.notes)
    assert "undefined" in a.summary()


# ---------------------------------------------------------------------------------------------
# reduction
# ---------------------------------------------------------------------------------------------
def test_reduce_on_example_6_2_finds_the_books_model():
    # Montgomery's Example 6.2: from all main effects and two-factor interactions, the significant ones
    # are A, C, D, AC, AD (B is inert)
    a = analyze(filtration_frame(), "rate", terms="interactions", factors=ABCD)
    reduced = a.reduce(alpha=0.05)
    assert isinstance(reduced, Analysis)
    assert set(reduced.terms["rate"]) == {"A", "C", "D", "A:C", "A:D"}
    assert any("removed" in n for n in reduced.notes)
    # the reduced model's table is the book's (Table 6.14)
    assert round(rows(reduced, "rate")["model"]["ss"], 2) == 5535.81


def test_reduce_keeps_hierarchy():
    # y depends on A:B only; A and B have no effect of their own but must stay with A:B
    x = yates(3)
    rng = np.random.default_rng(1)
    y = np.concatenate([5 + 3 * x[:, 0] * x[:, 1] + rng.normal(0, 0.1, 8) for _ in range(2)])
    frame = pl.DataFrame({"A": np.tile(x[:, 0], 2), "B": np.tile(x[:, 1], 2), "C": np.tile(x[:, 2], 2), "y": y})
    a = analyze(frame, "y", terms="interactions", factors={n: (-1, 1) for n in "ABC"})
    reduced = a.reduce()
    assert set(reduced.terms["y"]) == {"A", "B", "A:B"}
    p = dict(reduced.coefficients.select("term", "p").iter_rows())
    assert p["A"] > 0.05 and p["B"] > 0.05  # kept for hierarchy, not for significance
    with pytest.raises(ConfigError, match="alpha"):
        a.reduce(alpha=5)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_missing_response_and_factor_columns_are_named():
    with pytest.raises(SchemaError, match='column "titer"') as err:
        analyze(filtration_frame(), ["rate", "titer"], terms="linear", factors=ABCD)
    with pytest.raises(SchemaError, match='column "E"'):
        analyze(filtration_frame(), "rate", terms="linear", factors={**ABCD, "E": (0, 1)})
    assert "columns found" in str(err.value)


def test_non_numeric_values_are_located():
    frame = filtration_frame().with_columns(pl.col("rate").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("6,5")).otherwise(pl.col("rate")).alias("rate")
    )
    with pytest.raises(SchemaError, match=r"row 4: expected a number, found '6,5'"):
        analyze(frame, "rate", terms="linear", factors=ABCD)
    # numbers written as text are read
    ok = filtration_frame().with_columns(pl.col("rate").cast(pl.String))
    assert analyze(ok, "rate", terms="linear", factors=ABCD).statistics["n"][0] == 16


def test_too_few_runs_says_how_many_are_needed():
    small = filtration_frame().head(10)
    with pytest.raises(ConfigError, match="at least 12 runs are needed"):
        analyze(small, "rate", terms="interactions", factors=ABCD)


def test_aliased_terms_are_named():
    # the half fraction D = ABC: A:B is aliased with C:D
    x = yates(3)
    frame = pl.DataFrame(
        {"A": x[:, 0], "B": x[:, 1], "C": x[:, 2], "D": x[:, 0] * x[:, 1] * x[:, 2], "y": np.arange(8.0)}
    )
    with pytest.raises(ConfigError, match=r"Aliased: C:D = \+1·A:B"):
        analyze(frame, "y", terms=["A", "B", "C", "D", "A:B", "C:D"], factors=ABCD)


def test_missing_response_values_are_left_out_with_a_warning():
    frame = ccd_frame().with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("yield")).alias("yield")
    )
    with pytest.warns(BioWorkbenchWarning, match="1 run"):
        a = analyze(frame, ["yield", "viscosity"], terms="quadratic", factors=TIME_TEMP)
    assert dict(a.statistics.select("response", "n").iter_rows()) == {"yield": 12, "viscosity": 13}


def test_bad_arguments():
    with pytest.raises(ArgumentError, match=r"must be a bw\.doe\.Design or a polars DataFrame"):
        analyze([1, 2, 3], "y", terms="linear", factors=ABCD)
    with pytest.raises(ConfigError, match="needs factors"):
        analyze(filtration_frame(), "rate", terms="linear")
    with pytest.raises(ConfigError, match="unknown factor"):
        analyze(filtration_frame(), "rate", terms=["A", "Q"], factors=ABCD)


def test_summary_is_markdown_with_the_tables():
    a = analyze(ccd_frame(), "yield", terms="quadratic", factors=TIME_TEMP)
    text = a._repr_markdown_()
    assert "### yield" in text and "| source | ss | df | ms | f | p |" in text
    assert "coded units" in text and "R² = 0.9828" in text and "lack of fit p = 0.2897" in text
    assert "Analysis of yield" in repr(a)


def test_exported_from_bw_doe():
    assert bw.doe.analyze is analyze
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        d = full_factorial({"a": (0, 1), "b": (0, 1)}, center_points=3, random_seed=1)
    y = d.frame["a"].to_numpy() * 2 + np.linspace(0, 0.1, d.n_runs)
    d2 = dataclasses.replace(d, frame=d.frame.with_columns(pl.Series("y", y)))
    assert analyze(d2, "y", terms="linear").statistics["lack_of_fit_p"][0] is not None


# ---------------------------------------------------------------------------------------------
# diagnostic plots
# ---------------------------------------------------------------------------------------------
def test_diagnostic_plots_draw_the_residual_frame():
    import holoviews as hv

    a = analyze(ccd_frame(), ["yield", "viscosity"], terms="quadratic", factors=TIME_TEMP)
    fig = bw.plots.plot_residuals(a)
    hv.render(fig, backend="bokeh")
    scatters = fig.traverse(lambda x: x, [hv.Scatter])
    assert len(scatters) == 2
    got = scatters[0].dimension_values("studentized")
    expected = a.residuals.filter(pl.col("response") == "yield")["studentized"].to_numpy()
    assert np.allclose(got, expected)
    only = bw.plots.plot_residuals(a, response="viscosity", residual="residual")
    assert len(only.traverse(lambda x: x, [hv.Scatter])) == 1

    normal = bw.plots.plot_normal_probability(a, response="yield")
    hv.render(normal, backend="bokeh")
    (pts,) = normal.traverse(lambda x: x, [hv.Scatter])
    e = pts.dimension_values("residual_value")
    z = pts.dimension_values("normal_quantile")
    assert np.all(np.diff(e) >= 0) and np.all(np.diff(z) > 0)
    assert z[0] == pytest.approx(-z[-1]) and z[0] == pytest.approx(-1.7688, abs=1e-4)  # Φ⁻¹(0.5/13)

    ovp = bw.plots.plot_observed_predicted(a)
    hv.render(ovp, backend="bokeh")
    assert "R² = 0.983" in ovp.traverse(lambda x: x, [hv.Overlay])[0].opts.get().kwargs["title"]

    with pytest.raises(SchemaError, match="was not analysed"):
        bw.plots.plot_residuals(a, response="titer")
    with pytest.raises(ArgumentError, match=r"bw\.doe\.Analysis"):
        bw.plots.plot_observed_predicted(ccd_frame())
    with pytest.raises(ArgumentError, match="residual"):
        bw.plots.plot_residuals(a, residual="raw")
