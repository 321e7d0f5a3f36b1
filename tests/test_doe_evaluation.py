"""Design evaluation (VIF, condition number, efficiencies, power, FDS), augmentation, fold-over and
centre runs in D-optimal designs."""

import dataclasses
import itertools
import warnings

import numpy as np
import polars as pl
import pytest
from scipy import stats

import bioworkbench as bw
from bioworkbench.doe import (
    DesignEvaluation,
    analyze,
    augment,
    central_composite,
    d_optimal,
    fold_over,
    fractional_factorial,
    full_factorial,
)
from bioworkbench.errors import ArgumentError, BioWorkbenchWarning, ConfigError
from bioworkbench.terms import model_matrix, parse_terms

F3 = {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (2.0, 4.0)}


def logdet(design, terms):
    x = model_matrix(design.coded, design.factor_names, parse_terms(terms, design.factor_names))
    sign, ld = np.linalg.slogdet(x.T @ x)
    return ld if sign > 0 else -np.inf


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("terms", ["linear", "interactions"])
def test_full_factorial_is_100_percent_efficient(terms):
    d = full_factorial(F3, random_seed=1)
    ev = d.evaluate(terms, n_points=2000)
    assert isinstance(ev, DesignEvaluation)
    c = ev.criteria.row(0, named=True)
    assert c["d_efficiency"] == pytest.approx(100.0)
    assert c["a_efficiency"] == pytest.approx(100.0)
    assert c["g_efficiency"] == pytest.approx(100.0)
    assert c["condition_number"] == pytest.approx(1.0)
    assert ev.terms["vif"].to_list() == pytest.approx([1.0] * ev.terms.height)
    assert ev.terms["variance"].to_list() == pytest.approx([1 / 8] * ev.terms.height)


def test_d_efficiency_agrees_with_d_optimal():
    d = d_optimal(F3, n_runs=12, terms="quadratic", random_seed=2, n_starts=3)
    c = d.evaluate("quadratic", n_points=1000).criteria.row(0, named=True)
    assert c["d_efficiency"] == pytest.approx(d.d_efficiency, rel=1e-9)


def test_power_matches_an_independent_noncentral_t_calculation():
    d = full_factorial(F3, replicates=2, random_seed=1)  # 16 runs, linear model: 12 residual df
    ev = d.evaluate("linear", effect=1.5, sigma=1.2, alpha=0.05, n_points=1000)
    nu = 16 - 4
    lam = (1.5 / 2) / (1.2 / np.sqrt(16))  # coefficient / its standard error (Var = σ²/16)
    t = stats.t.ppf(0.975, nu)
    expected = stats.nct.sf(t, nu, lam) + stats.nct.cdf(-t, nu, lam)
    assert ev.terms["power"].to_list() == pytest.approx([expected] * 3, rel=1e-6)
    assert ev.terms["se"].to_list() == pytest.approx([1.2 / 4] * 3)
    # bigger effects are easier to find
    assert d.evaluate("linear", effect=3.0, sigma=1.2, n_points=1000).terms["power"][0] > expected


def test_no_residual_df_means_no_power():
    d = full_factorial(F3, random_seed=1)
    ev = d.evaluate(["A", "B", "C", "A:B", "A:C", "B:C", "A:B:C"], n_points=1000)
    assert ev.terms["power"].null_count() == ev.terms.height
    assert any("no residual df" in n for n in ev.notes)


def test_fds_of_a_factorial_for_the_linear_model():
    # d(x) = (1 + Σ x_j²) / 8 on the cube: minimum 1/8 at the centre, maximum 4/8 at the corners,
    # mean (1 + 3/3) / 8 = 0.25 for uniform x
    d = full_factorial(F3, random_seed=1)
    ev = d.evaluate("linear", n_points=20000, random_seed=4)
    fds = ev.fds
    assert fds.columns == ["fraction", "relative_variance"] and fds.height == 101
    v = fds["relative_variance"].to_numpy()
    assert np.all(np.diff(v) >= 0)
    assert 1 / 8 <= v[0] < 1 / 8 + 0.01 and 0.47 < v[-1] <= 0.5
    assert ev.criteria["average_relative_variance"][0] == pytest.approx(0.25, abs=0.005)
    assert ev.criteria["max_relative_variance"][0] == pytest.approx(0.5)


def test_ccd_quadratic_evaluation():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        d = central_composite(F3, kind="face_centred", center_points=(3, 0), random_seed=1)
    ev = d.evaluate("quadratic", n_points=2000)
    vif = dict(ev.terms.select("term", "vif").iter_rows())
    assert vif["temp"] == pytest.approx(1.0) and vif["temp:ph"] == pytest.approx(1.0)
    assert vif["temp^2"] > 1.0
    c = ev.criteria.row(0, named=True)
    assert 0 < c["g_efficiency"] < 100 and 0 < c["d_efficiency"] < 100 and c["condition_number"] > 1
    # G-efficiency: p / (n · max d(x)); max d(x) is at least the largest d on a fine grid
    x = model_matrix(d.coded, d.factor_names, parse_terms("quadratic", d.factor_names))
    m_inv = np.linalg.inv(x.T @ x)
    grid = np.array(list(itertools.product(np.linspace(-1, 1, 21), repeat=3)))
    f = model_matrix(grid, d.factor_names, parse_terms("quadratic", d.factor_names))
    d_grid = np.einsum("ij,jk,ik->i", f, m_inv, f).max()
    assert c["max_relative_variance"] >= d_grid - 1e-9
    assert c["g_efficiency"] == pytest.approx(100 * 10 / (d.n_runs * c["max_relative_variance"]))
    assert "G-efficiency" in ev.summary() and "temp^2" in repr(ev)


def test_evaluation_errors():
    half = fractional_factorial({**F3, "do": (30.0, 50.0)}, generators=["D=ABC"], random_seed=1)
    with pytest.raises(ConfigError, match=r"Aliased: feed:do = \+1·temp:ph"):
        half.evaluate(["A", "B", "C", "D", "A:B", "C:D"])
    with pytest.raises(ConfigError, match="at least 15 runs"):
        half.evaluate("quadratic")
    d = full_factorial(F3, random_seed=1)
    for bad in ({"effect": 0}, {"sigma": -1}, {"alpha": 1.0}, {"n_points": 5}):
        with pytest.raises(ConfigError):
            d.evaluate("linear", **bad)
    with pytest.raises(ArgumentError):
        bw.doe.evaluate(pl.DataFrame({"a": [1]}), "linear")


def test_fds_plot():
    import holoviews as hv

    d = full_factorial(F3, random_seed=1)
    ev1 = d.evaluate("linear", n_points=1000)
    ev2 = d_optimal(F3, n_runs=10, terms="quadratic", random_seed=1, n_starts=2).evaluate("linear", n_points=1000)
    fig = bw.plots.plot_fraction_of_design_space({"factorial": ev1, "d-optimal": ev2})
    hv.render(fig, backend="bokeh")
    curves = fig.traverse(lambda x: x, [hv.Curve])
    assert len(curves) == 2
    assert np.allclose(curves[0].dimension_values("relative_variance"), ev1.fds["relative_variance"].to_numpy())
    single = bw.plots.plot_fraction_of_design_space(ev1)
    assert len(single.traverse(lambda x: x, [hv.Curve])) == 1


# ---------------------------------------------------------------------------------------------
# fold-over
# ---------------------------------------------------------------------------------------------
def main_and_2fi_columns(design):
    x = design.coded
    k = x.shape[1]
    main = {design.factor_names[j]: x[:, j] for j in range(k)}
    pairs = {
        f"{design.factor_names[a]}:{design.factor_names[b]}": x[:, a] * x[:, b]
        for a, b in itertools.combinations(range(k), 2)
    }
    return main, pairs


def test_full_fold_over_of_a_resolution_iii_design_gives_resolution_iv():
    factors = {f"x{j}": (-1.0, 1.0) for j in range(7)}
    d = fractional_factorial(factors, generators=["D=AB", "E=AC", "F=BC", "G=ABC"], random_seed=1)
    assert d.resolution == 3
    main, pairs = main_and_2fi_columns(d)
    assert any(abs(m @ p) == 8 for m in main.values() for p in pairs.values())  # aliased before
    f = fold_over(d, random_seed=2)
    assert f.n_runs == 16 and f.resolution == 4 and f.n_blocks == 2
    assert all(len(w.lstrip("-")) >= 4 for w in f.defining_relation)
    main, pairs = main_and_2fi_columns(f)
    # main effects clear of every two-factor interaction (orthogonal columns), computed from the runs
    assert all(abs(m @ p) < 1e-9 for m in main.values() for p in pairs.values())
    # the original runs are kept unchanged, first
    assert f.frame.head(8).equals(d.frame)
    assert f.frame.filter(pl.col("block") == 2)["run_order"].min() == 9
    # and the design's own alias table agrees
    aliases = f.aliases
    mains = aliases.filter(pl.col("effect").str.len_chars() == 1)
    assert mains.filter(pl.col("alias_order") <= 2).is_empty()
    assert all(len(w.lstrip("-")) % 2 == 1 for w in f.blocks_confounded)


def test_single_factor_fold_over_frees_that_factor():
    factors = {f"x{j}": (-1.0, 1.0) for j in range(7)}
    d = fractional_factorial(factors, generators=["D=AB", "E=AC", "F=BC", "G=ABC"], random_seed=1)
    f = fold_over(d, ["A"], random_seed=2)
    main, pairs = main_and_2fi_columns(f)
    a = main["x0"]
    assert all(abs(a @ p) < 1e-9 for p in pairs.values())  # A clear of all 2FIs
    a_pairs = {k: v for k, v in pairs.items() if "x0" in k.split(":")}
    others = {k: v for k, v in pairs.items() if "x0" not in k.split(":")}
    assert all(abs(v @ w) < 1e-9 for v in a_pairs.values() for w in others.values())  # A's 2FIs clear
    assert f.resolution == 3  # other main effects are still aliased with 2FIs


def test_fold_over_keeps_centre_runs_once_and_refuses_three_levels():
    d = fractional_factorial(F3, generators=["C=AB"], center_points=2, random_seed=1)
    f = fold_over(d)
    assert f.n_runs == 4 + 2 + 4 and (f.frame["point_type"] == "center").sum() == 2
    assert f.kind == "full_factorial" and f.generators == () and f.levels == (2, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        ccd = central_composite(F3, random_seed=1)
    with pytest.raises(ConfigError, match="two-level"):
        fold_over(ccd)
    with pytest.raises(ConfigError, match="not a factor"):
        fold_over(d, ["Q"])


# ---------------------------------------------------------------------------------------------
# augmentation
# ---------------------------------------------------------------------------------------------
def test_augment_keeps_the_runs_and_raises_log_det():
    d = full_factorial(F3, center_points=2, random_seed=1)
    frame = d.frame.with_columns(titer=pl.Series(np.arange(d.n_runs, dtype=float)))
    d = dataclasses.replace(d, frame=frame)
    a = augment(d, 6, "quadratic", random_seed=3)
    assert a.n_runs == d.n_runs + 6
    assert a.frame.head(d.n_runs).equals(a.frame.filter(pl.col("std_order") <= d.n_runs))
    kept = a.frame.filter(pl.col("std_order") <= d.n_runs).select(d.frame.columns)
    assert kept.equals(d.frame)  # the runs, their order, blocks and responses are unchanged
    new = a.frame.filter(pl.col("std_order") > d.n_runs)
    assert new["block"].unique().to_list() == [2] and new["titer"].null_count() == 6
    assert sorted(new["run_order"].to_list()) == list(range(d.n_runs + 1, d.n_runs + 7))
    # the quadratic model was not estimable; now it is, and log det grows for the old model too
    assert logdet(d, "quadratic") == -np.inf and np.isfinite(logdet(a, "quadratic"))
    assert logdet(a, "interactions") > logdet(d, "interactions")
    assert a.log_det == pytest.approx(logdet(a, "quadratic"))
    # better than adding random grid points
    rng = np.random.default_rng(0)
    grid = np.array(list(itertools.product([-1.0, 0.0, 1.0], repeat=3)))
    x_old = model_matrix(d.coded, d.factor_names, parse_terms("quadratic", d.factor_names))
    random_ld = []
    for _ in range(30):
        x_new = model_matrix(
            grid[rng.integers(len(grid), size=6)], d.factor_names, parse_terms("quadratic", d.factor_names)
        )
        x = np.vstack([x_old, x_new])
        s, ld = np.linalg.slogdet(x.T @ x)
        random_ld.append(ld if s > 0 else -np.inf)
    assert a.log_det > max(random_ld)
    assert "augmented" in a.describe()


def test_augment_without_new_block_and_with_exclusions():
    d = full_factorial(F3, random_seed=1)
    a = augment(d, 4, "interactions", new_block=False, exclude=pl.col("temp") > 36, random_seed=1, n_starts=2)
    new = a.frame.filter(pl.col("std_order") > 8)
    assert new["block"].unique().to_list() == [1] and new["temp"].max() <= 36
    with pytest.raises(ConfigError, match="removes all"):
        augment(d, 2, "linear", exclude=pl.col("temp") > 0)
    with pytest.raises(ArgumentError):
        augment(d.frame, 2)


# ---------------------------------------------------------------------------------------------
# centre runs in D-optimal designs
# ---------------------------------------------------------------------------------------------
def test_d_optimal_center_points_give_pure_error():
    d = d_optimal(F3, n_runs=12, terms="quadratic", center_points=3, random_seed=5, n_starts=3)
    assert d.n_runs == 15
    centre = d.frame.filter(pl.col("point_type") == "center")
    assert centre.height == 3
    assert centre.select(d.coded_columns).to_numpy().tolist() == [[0.0, 0.0, 0.0]] * 3
    assert centre["temp"].to_list() == [35.0] * 3
    assert d.d_efficiency == pytest.approx(100 * np.exp(logdet(d, "quadratic") / 10) / 15)
    rng = np.random.default_rng(1)
    x = d.coded
    y = 10 + x[:, 0] - x[:, 1] ** 2 + rng.normal(0, 0.1, d.n_runs)
    frame = d.frame.with_columns(pl.Series("y", y))
    a = analyze(dataclasses.replace(d, frame=frame), "y", terms="quadratic")
    pe = a.anova.filter(pl.col("source") == "pure_error")
    assert pe["df"].to_list() == [2] and a.statistics["lack_of_fit_p"][0] is not None


def test_d_optimal_center_points_with_shared_factors_fill_blocks():
    d = d_optimal(
        F3, n_runs=12, terms="quadratic", shared=["ph"], block_size=2, center_points=2, random_seed=1, n_starts=2
    )
    centre = d.frame.filter(pl.col("point_type") == "center")
    assert centre["block"].n_unique() == 1 and centre["block"][0] == d.frame["block"].max()
    with pytest.raises(ConfigError, match="whole blocks"):
        d_optimal(F3, n_runs=12, terms="quadratic", shared=["ph"], block_size=2, center_points=3, n_starts=1)
    with pytest.raises(ConfigError, match="centre of the ranges is excluded"):
        d_optimal(F3, n_runs=6, terms="linear", center_points=1, exclude=pl.col("temp") == 35.0, n_starts=1)
