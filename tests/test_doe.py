"""Experimental designs (bw.doe): the properties each design claims, constraints, files and errors."""

import itertools
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.doe import (
    alias_frame,
    box_behnken,
    central_composite,
    d_optimal,
    defining_relation,
    fractional_factorial,
    full_factorial,
    latin_hypercube,
    read_design,
    sidecar_path,
)
from bioworkbench.errors import BioWorkbenchWarning, ConfigError, DataReadError, SchemaError
from bioworkbench.terms import model_matrix, parse_terms

F3 = {"temp": (33.0, 37.0), "ph": (6.8, 7.2), "feed": (2.0, 4.0)}
F4 = {**F3, "do": (30.0, 50.0)}


def unit_factors(k):
    return {f"x{i}": (-1.0, 1.0) for i in range(k)}


def ccd(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BioWorkbenchWarning)
        return central_composite(*args, **kwargs)


def word_product(design, word):
    """Product of the coded columns of the factors whose letters make up ``word``."""
    x = design.coded
    return np.prod(x[:, [ord(c) - 65 for c in word.lstrip("-")]], axis=1)


# ---------------------------------------------------------------------------------------------
# frame layout, seeds
# ---------------------------------------------------------------------------------------------
def test_frame_has_the_documented_columns_sorted_by_run_order():
    d = full_factorial(F3, center_points=2, random_seed=7, units={"temp": "degC"})
    assert d.frame.columns == [
        "std_order",
        "run_order",
        "block",
        "point_type",
        "temp",
        "ph",
        "feed",
        "temp_coded",
        "ph_coded",
        "feed_coded",
    ]
    assert d.frame["run_order"].to_list() == list(range(1, 11))
    assert sorted(d.frame["std_order"].to_list()) == list(range(1, 11))
    assert d.frame["point_type"].value_counts().sort("point_type").rows() == [("center", 2), ("factorial", 8)]
    # natural values are exactly the given lows, middles and highs
    assert set(d.frame["ph"].to_list()) == {6.8, 7.0, 7.2}
    assert d.units == {"temp": "degC", "ph": None, "feed": None}
    # standard order is Yates order: the first factor changes fastest
    std = d.frame.sort("std_order")
    assert std["temp_coded"].to_list()[:4] == [-1.0, 1.0, -1.0, 1.0]
    assert std["ph_coded"].to_list()[:4] == [-1.0, -1.0, 1.0, 1.0]
    # the natural-unit columns are what a response surface takes
    assert d.natural.columns == list(F3)


def test_same_seed_same_design_other_seed_other_run_order_and_no_randomisation():
    a = fractional_factorial(F4, generators=["D=ABC"], center_points=2, random_seed=11)
    b = fractional_factorial(F4, generators=["D=ABC"], center_points=2, random_seed=11)
    c = fractional_factorial(F4, generators=["D=ABC"], center_points=2, random_seed=12)
    assert a == b
    assert a.frame.sort("std_order")["run_order"].to_list() != c.frame.sort("std_order")["run_order"].to_list()
    fixed = fractional_factorial(F4, generators=["D=ABC"], randomize=False, random_seed=1)
    assert fixed.frame["run_order"].to_list() == fixed.frame["std_order"].to_list()
    assert not fixed.randomized


def test_no_seed_draws_and_records_one_that_regenerates_the_design():
    d = box_behnken(F3)
    assert isinstance(d.random_seed, int)
    assert box_behnken(F3, random_seed=d.random_seed) == d


def test_run_order_is_randomised_within_blocks():
    d = full_factorial(F4, blocks=4, center_points=1, random_seed=3)
    for b, runs in d.frame.group_by("block", maintain_order=True).agg(pl.col("run_order")).sort("block").iter_rows():
        n = len(runs)
        assert sorted(runs) == list(range((b - 1) * n + 1, b * n + 1))


@pytest.mark.parametrize(
    "make",
    [
        lambda s: full_factorial(F3, center_points=3, random_seed=s),
        lambda s: ccd(F3, random_seed=s),
        lambda s: box_behnken(F3, random_seed=s),
        lambda s: latin_hypercube(F3, n_runs=8, random_seed=s),
        lambda s: d_optimal(F3, n_runs=12, n_starts=2, random_seed=s),
    ],
)
def test_every_generator_is_reproducible_with_a_seed(make):
    assert make(5) == make(5)
    assert not make(5).frame.equals(make(6).frame)


# ---------------------------------------------------------------------------------------------
# factorials
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 4])
def test_two_level_full_factorial_is_orthogonal(k):
    d = full_factorial(unit_factors(k), random_seed=1)
    names = list(unit_factors(k))
    all_interactions = [":".join(c) for r in range(1, k + 1) for c in itertools.combinations(names, r)]
    for terms in ("interactions", all_interactions):
        x = model_matrix(d.coded, names, parse_terms(terms, names))
        np.testing.assert_array_equal(x.T @ x, 2**k * np.eye(x.shape[1]))


def test_multilevel_full_factorial_has_equally_spaced_levels():
    d = full_factorial(F3, levels={"temp": 3, "ph": 2, "feed": 4}, random_seed=1)
    assert d.n_runs == 3 * 2 * 4 and d.levels == (3, 2, 4)
    assert sorted(set(d.frame["temp"].to_list())) == [33.0, 35.0, 37.0]
    np.testing.assert_allclose(sorted(set(d.frame["feed_coded"].to_list())), [-1, -1 / 3, 1 / 3, 1])
    assert d.frame.select(list(F3)).unique().height == 24


def test_replicates_and_each_replicate_a_block():
    d = full_factorial(F3, replicates=2, blocks=2, random_seed=1)
    assert d.n_runs == 16 and d.block_generators == ()
    one, two = (d.frame.filter(pl.col("block") == b).select(list(F3)).sort(list(F3)) for b in (1, 2))
    assert_frame_equal(one, two)


@pytest.mark.parametrize(
    ("k", "blocks", "lengths"),
    [
        (3, 2, [3]),  # Montgomery Table 7.8: ABC
        (4, 4, [2, 3, 3]),  # ABC, ACD (and BD)
        (5, 4, [3, 3, 4]),  # ABC, CDE (and ABDE)
        (5, 8, [2, 2, 3, 3, 3, 3, 4]),  # ABE, BCE, CDE (AC, ABCD, BD, ADE)
        (6, 4, [4, 4, 4]),  # ABCF, CDEF (ABDE)
    ],
)
def test_blocking_confounds_the_highest_order_interactions(k, blocks, lengths):
    d = full_factorial(unit_factors(k), blocks=blocks, random_seed=1)
    assert sorted(len(w) for w in d.blocks_confounded) == lengths
    block = d.frame["block"].to_numpy()
    assert sorted(np.bincount(block)[1:].tolist()) == [2**k // blocks] * blocks
    for word in d.blocks_confounded:  # constant within each block
        prod = word_product(d, word)
        for b in range(1, blocks + 1):
            assert len(set(prod[block == b])) == 1
    # main effects (and unconfounded interactions) are orthogonal to blocks
    for j in range(k):
        for b in range(1, blocks + 1):
            assert d.coded[block == b, j].sum() == 0


def test_given_block_generators_are_used_and_a_main_effect_is_refused():
    d = full_factorial(F4, blocks=4, block_generators=["ABC", "ACD"], random_seed=1)
    assert d.block_generators == ("ABC", "ACD") and set(d.blocks_confounded) == {"ABC", "ACD", "BD"}
    with pytest.raises(ConfigError, match=r"confound a main effect with blocks \(C\)"):
        full_factorial(F4, blocks=4, block_generators=["ABC", "AB"], random_seed=1)


@pytest.mark.parametrize(
    ("factors", "generators", "words", "resolution"),
    [
        # Montgomery, Design and Analysis of Experiments, 9th ed., Table 8.14 and examples 8.1-8.6
        (4, ["D=ABC"], ("ABCD",), 4),
        (5, ["E=ABCD"], ("ABCDE",), 5),
        (5, ["D=AB", "E=AC"], ("ABD", "ACE", "BCDE"), 3),
        (6, ["E=ABC", "F=BCD"], ("ABCE", "ADEF", "BCDF"), 4),
        (7, ["D=AB", "E=AC", "F=BC", "G=ABC"], None, 3),
    ],
)
def test_standard_fractions_have_the_textbook_defining_relation_and_resolution(factors, generators, words, resolution):
    d = fractional_factorial(unit_factors(factors), generators=generators, random_seed=1)
    p = len(generators)
    assert d.n_runs == 2 ** (factors - p)
    assert d.resolution == resolution
    assert len(d.defining_relation) == 2**p - 1
    if words is not None:
        assert d.defining_relation == words
    assert min(len(w) for w in d.defining_relation) == resolution
    for word in d.defining_relation:  # every word is the identity column on the fraction
        assert set(word_product(d, word)) == {1.0}


def test_a_negative_generator_gives_the_other_half_fraction():
    d = fractional_factorial(F4, generators="D=-ABC", random_seed=1)
    assert d.defining_relation == ("-ABCD",)
    assert set(word_product(d, "ABCD")) == {-1.0}
    both = pl.concat([d.natural, fractional_factorial(F4, generators="D=ABC", random_seed=1).natural])
    assert both.unique().height == 16  # the two halves make the full 2^4


def test_generators_may_use_factor_names():
    d = fractional_factorial(F4, generators=["do=temp:ph:feed"], random_seed=1)
    assert d.generators == ("D=ABC",) and d.defining_relation == ("ABCD",)


@pytest.mark.parametrize(
    ("k", "res", "runs", "resolution"),
    [(4, 4, 8, 4), (5, 3, 8, 3), (7, 3, 8, 3), (7, 4, 16, 4), (8, 5, 64, 5), (6, "IV", 16, 4), (12, 4, 32, 4)],
)
def test_a_requested_resolution_gives_the_smallest_standard_fraction(k, res, runs, resolution):
    d = fractional_factorial(unit_factors(k), resolution=res, random_seed=1)
    assert d.n_runs == runs and d.resolution >= resolution
    assert d.notes  # where the generators came from


def test_alias_frame_agrees_with_the_column_products_of_the_design():
    d = fractional_factorial(unit_factors(6), generators=["E=ABC", "F=BCD"], center_points=2, random_seed=3)
    aliases = d.aliases
    assert aliases.columns == ["effect", "aliased_with", "sign", "alias_order", "effect_term", "aliased_term"]
    assert aliases.height == (6 + 15) * 3  # every main effect and 2FI times the 3 words
    cube = d.frame["point_type"].to_numpy() == "factorial"
    for effect, alias, sign, order, _, term in aliases.iter_rows():
        np.testing.assert_array_equal(word_product(d, effect)[cube], sign * word_product(d, alias)[cube])
        assert order == len(alias) == len(term.split(":"))
    # resolution IV: main effects are clear of two-factor interactions
    mains = aliases.filter(pl.col("effect").str.len_chars() == 1)
    assert mains["alias_order"].min() == 3
    assert set(aliases.filter(pl.col("effect") == "AB")["aliased_with"]) == {"CE", "ACDF", "BDEF"}


def test_alias_helpers_work_without_a_design():
    assert defining_relation(["D=AB", "E=AC"], ["a", "b", "c", "d", "e"]) == (("ABD", "ACE", "BCDE"), 3)
    frame = alias_frame(["C=AB"], ["a", "b", "c"])
    assert frame.filter(pl.col("effect") == "A").row(0)[:3] == ("A", "BC", 1)


def test_a_blocked_fraction_never_confounds_a_main_effect():
    d = fractional_factorial(unit_factors(6), resolution=4, blocks=4, random_seed=1)
    for chain in d.blocks_confounded:
        assert min(len(w) for w in chain.split("=")) >= 2
    with pytest.raises(ConfigError, match="without confounding a main effect"):
        fractional_factorial(unit_factors(3), generators=["C=AB"], blocks=2, random_seed=1)


# ---------------------------------------------------------------------------------------------
# central composite and Box-Behnken
# ---------------------------------------------------------------------------------------------
def prediction_variance(design, points):
    names = design.factor_names
    x = design.model_matrix("quadratic")
    f = model_matrix(points, names, parse_terms("quadratic", names))
    return np.einsum("ij,jk,ik->i", f, np.linalg.inv(x.T @ x), f)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_rotatable_ccd_has_prediction_variance_that_depends_only_on_the_radius(k):
    d = ccd(unit_factors(k), random_seed=1)
    assert d.alpha == pytest.approx((2**k) ** 0.25, rel=1e-14) and d.alpha_kind == "rotatable"
    assert d.rotatable
    directions = np.random.default_rng(0).normal(size=(40, k))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for r in (0.5, 1.0, 1.5):
        v = prediction_variance(d, r * directions)
        assert v.std() / v.mean() < 1e-9
    # the face-centred design is not rotatable: the variance changes with direction
    fc = ccd(unit_factors(k), kind="face_centred", random_seed=1)
    assert not fc.rotatable
    v = prediction_variance(fc, 1.0 * directions)
    assert v.std() / v.mean() > 1e-3


def test_ccd_points_match_pyDOE3_ccdesign():
    from pyDOE3 import ccdesign

    d = ccd(unit_factors(3), center_points=(4, 4), random_seed=1)
    ours = np.round(d.coded, 12)
    theirs = np.round(ccdesign(3, center=(4, 4), alpha="r", face="ccc"), 12)
    assert sorted(map(tuple, ours)) == sorted(map(tuple, theirs))


def orthogonally_blocked(design):
    """Every second-order model column is orthogonal to every centred block indicator."""
    x = design.model_matrix("quadratic")[:, 1:]
    block = design.frame["block"].to_numpy()
    for b in np.unique(block):
        z = (block == b) - np.mean(block == b)
        if not np.allclose(z @ x, 0, atol=1e-9):
            return False
    return True


def test_orthogonal_alpha_blocks_the_ccd_orthogonally():
    d = ccd(F3, alpha="orthogonal", blocks=2, center_points=(4, 4), random_seed=1)
    # Montgomery (9th ed.) §11.4.3: alpha = sqrt(n_F (2k + n_a) / (2 (n_F + n_c)))
    assert d.alpha == pytest.approx(np.sqrt(8 * (6 + 4) / (2 * (8 + 4))))
    assert d.orthogonal_blocking is True and orthogonally_blocked(d)
    assert d.frame.filter(pl.col("block") == 2)["point_type"].unique().sort().to_list() == ["axial", "center"]
    rot = ccd(F3, alpha="rotatable", blocks=2, center_points=(4, 4), random_seed=1)
    assert rot.orthogonal_blocking is False and not orthogonally_blocked(rot)
    assert ccd(F3, random_seed=1).orthogonal_blocking is None


def test_ccd_of_four_factors_in_three_blocks_is_rotatable_and_orthogonally_blocked():
    # Box & Hunter (1957): the 2^4 cube in two blocks (ABCD confounded) + an axial block, alpha = 2,
    # is both rotatable and orthogonally blocked
    d = ccd(unit_factors(4), alpha="orthogonal", blocks=3, center_points=(2, 2), random_seed=1)
    assert d.alpha == pytest.approx(2.0) and d.rotatable and d.orthogonal_blocking
    assert d.block_generators == ("ABCD",) and orthogonally_blocked(d)
    assert d.n_runs == 16 + 8 + 3 * 2


def test_face_centred_ccd_has_alpha_one_and_three_levels_inside_the_ranges():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BioWorkbenchWarning)
        d = central_composite(F3, kind="face_centred", center_points=3, random_seed=1)
    assert d.alpha == 1.0 and d.alpha_kind == "face_centred"
    assert sorted(set(d.frame["temp"].to_list())) == [33.0, 35.0, 37.0]
    assert d.n_runs == 8 + 6 + 3


def test_inscribed_ccd_stays_within_the_ranges_with_axial_points_at_the_limits():
    d = central_composite(F3, kind="inscribed", random_seed=1)
    for name, (lo, hi) in F3.items():
        assert d.frame[name].min() == lo and d.frame[name].max() == hi
    cube = d.frame.filter(pl.col("point_type") == "factorial")["temp_coded"].abs().unique().to_list()
    assert cube == [pytest.approx(1 / 8**0.25)]
    assert d.rotatable


def test_circumscribed_ccd_warns_with_the_natural_axial_values():
    with pytest.warns(
        BioWorkbenchWarning, match=r"outside the given ranges: temp 31\.6364 and 38\.3636 \(range 33 to 37\)"
    ):
        d = central_composite(F3, random_seed=1)
    axial = d.frame.filter(pl.col("point_type") == "axial")
    assert axial["temp"].min() == pytest.approx(35 - 2 * 8**0.25)
    assert any("outside the given ranges" in n for n in d.notes)


def test_ccd_with_a_resolution_v_fractional_cube_estimates_the_full_quadratic_model():
    d = ccd(unit_factors(5), fraction=5, center_points=(3, 3), random_seed=1)
    assert d.n_runs == 16 + 10 + 6 and d.resolution == 5 and d.generators == ("E=ABCD",)
    assert d.alpha == pytest.approx(2.0) and d.rotatable
    assert np.linalg.matrix_rank(d.model_matrix("quadratic")) == 21
    with pytest.raises(ConfigError, match=r"resolution V or more.*resolution IV"):
        ccd(unit_factors(6), fraction=["E=ABC", "F=BCD"], random_seed=1)


@pytest.mark.parametrize(("k", "edges"), [(3, 12), (4, 24), (5, 40), (6, 48), (7, 56)])
def test_box_behnken_run_counts_levels_and_estimability(k, edges):
    d = box_behnken(unit_factors(k), center_points=3, random_seed=1)
    assert d.n_runs == edges + 3
    assert (d.frame["point_type"] == "edge").sum() == edges
    assert set(np.unique(d.coded)) == {-1.0, 0.0, 1.0}
    assert not np.any(np.all(np.abs(d.coded) == 1, axis=1))  # never a corner of the cube
    assert np.linalg.matrix_rank(d.model_matrix("quadratic")) == 1 + 2 * k + k * (k - 1) // 2
    assert d.rotatable is (k in (4, 7))  # Box & Behnken (1960): the 4- and 7-factor designs are rotatable


def test_box_behnken_of_four_factors_blocks_orthogonally_in_three():
    d = box_behnken(unit_factors(4), blocks=3, center_points=1, random_seed=1)
    assert d.n_blocks == 3 and d.orthogonal_blocking and orthogonally_blocked(d)


# ---------------------------------------------------------------------------------------------
# Latin hypercube
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", [None, "maximin", "center", "correlation"])
def test_latin_hypercube_puts_one_run_in_every_stratum_of_every_factor(criterion):
    n = 9
    d = latin_hypercube(F3, n_runs=n, criterion=criterion, random_seed=4)
    for name, (lo, hi) in F3.items():
        u = (d.frame[name].to_numpy() - lo) / (hi - lo)
        assert sorted(np.floor(u * n).astype(int)) == list(range(n))
        np.testing.assert_allclose(d.frame[f"{name}_coded"].to_numpy(), 2 * u - 1, atol=1e-12)
    assert set(d.frame["point_type"]) == {"lhs"}


# ---------------------------------------------------------------------------------------------
# D-optimal
# ---------------------------------------------------------------------------------------------
def test_d_optimal_for_a_first_order_model_finds_the_orthogonal_corners():
    d = d_optimal(F3, n_runs=8, terms="interactions", levels=3, random_seed=1)
    assert d.d_efficiency == pytest.approx(100.0)
    assert set(map(tuple, np.abs(d.coded))) == {(1.0, 1.0, 1.0)}
    assert d.frame.select(list(F3)).unique().height == 8


def test_d_optimal_quadratic_design_is_estimable_and_reports_its_efficiency():
    d = d_optimal(F3, n_runs=12, random_seed=2)
    x = d.model_matrix("quadratic")
    p = x.shape[1]
    assert d.n_runs >= p and np.linalg.matrix_rank(x) == p
    assert d.terms == tuple(parse_terms("quadratic", list(F3)))
    sign, logdet = np.linalg.slogdet(x.T @ x)
    assert sign == 1 and d.log_det == pytest.approx(logdet, rel=1e-12)
    assert d.d_efficiency == pytest.approx(100 * np.exp(logdet / p) / 12)
    assert d.n_candidates == 27 and d.n_excluded == 0
    assert set(d.frame["point_type"]) == {"optimal"}


def test_d_optimal_never_chooses_an_excluded_candidate():
    rule = (pl.col("temp") > 36.5) & (pl.col("ph") < 6.9)
    d = d_optimal(F3, n_runs=12, exclude=rule, random_seed=1)
    assert d.n_excluded == 3
    assert d.frame.filter(rule).height == 0
    assert np.linalg.matrix_rank(d.model_matrix("quadratic")) == 10
    # the same exclusion as a function returning a mask
    e = d_optimal(F3, n_runs=12, exclude=lambda c: (c["temp"] > 36.5) & (c["ph"] < 6.9), random_seed=1)
    assert e.n_excluded == 3 and e.frame.filter(rule).height == 0


def test_d_optimal_uses_only_the_given_candidates():
    cand = pl.DataFrame({"temp": [33.0, 34.5, 37.0, 33.0, 37.0, 35.0], "ph": [6.8, 7.2, 6.8, 7.0, 7.2, 7.0]})
    d = d_optimal({"temp": (33, 37), "ph": (6.8, 7.2)}, n_runs=5, terms="interactions", candidates=cand, random_seed=1)
    chosen = set(d.frame.select("temp", "ph").iter_rows())
    assert chosen <= set(cand.iter_rows())
    assert np.linalg.matrix_rank(d.model_matrix("interactions")) == 4


def test_shared_factor_has_one_level_in_each_block_of_runs():
    rule = (pl.col("feed") > 3.5) & (pl.col("ph") < 6.9)
    d = d_optimal(F3, n_runs=16, shared=["temp"], block_size=4, exclude=rule, random_seed=5)
    per_block = d.frame.group_by("block").agg(pl.col("temp").n_unique().alias("levels"), pl.len())
    assert per_block.height == 4
    assert per_block["levels"].to_list() == [1] * 4 and per_block["len"].to_list() == [4] * 4
    assert d.frame["temp"].n_unique() == 3  # temp^2 needs three temperatures among the arrays
    assert d.frame.filter(rule).height == 0
    assert np.linalg.matrix_rank(d.model_matrix("quadratic")) == 10
    assert d.shared == ("temp",) and d.block_size == 4
    for b, runs in d.frame.group_by("block").agg(pl.col("run_order")).iter_rows():
        assert sorted(runs) == list(range(4 * (b - 1) + 1, 4 * b + 1))


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
DESIGNS = {
    "ccd": lambda: ccd(F3, alpha="orthogonal", blocks=2, random_seed=1, units={"temp": "degC"}),
    "fraction": lambda: fractional_factorial(F4, generators="D=-ABC", blocks=2, center_points=1, random_seed=2),
    "lhs": lambda: latin_hypercube(F3, n_runs=7, random_seed=3),
    "d_optimal": lambda: d_optimal(F3, n_runs=12, shared=["temp"], block_size=4, n_starts=2, random_seed=4),
    "multilevel": lambda: full_factorial(F3, levels=[2, 3, 2], replicates=2, blocks=2, randomize=False, random_seed=5),
    "bbd": lambda: box_behnken(F3, random_seed=6),
}


@pytest.mark.parametrize("name", list(DESIGNS))
@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_designs_round_trip_exactly_through_csv_and_excel(tmp_path, name, suffix):
    d = DESIGNS[name]()
    path = tmp_path / f"plan{suffix}"
    d.to_csv(path) if suffix == ".csv" else d.to_excel(path)
    back = read_design(path)
    assert back == d
    assert_frame_equal(back.frame, d.frame)
    if suffix == ".csv":
        assert sidecar_path(path).name == "plan.design.yaml" and sidecar_path(path).exists()


def test_response_columns_added_by_the_lab_are_kept(tmp_path):
    d = fractional_factorial(F4, generators=["D=ABC"], random_seed=1)
    path = tmp_path / "plan.csv"
    d.to_csv(path)
    titer = [1.5, 2.25, None, 3.0, 0.5, 1.0, 2.0, 4.5]
    d.frame.with_columns(titer=pl.Series(titer), operator=pl.lit("JS")).write_csv(path, include_bom=True)
    back = read_design(path)
    assert back.frame.columns[-2:] == ["titer", "operator"]
    assert back.frame["titer"].to_list() == titer
    assert_frame_equal(back.frame.drop("titer", "operator"), d.frame)
    xlsx = tmp_path / "plan.xlsx"
    back.to_excel(xlsx)
    assert read_design(xlsx).frame["titer"].to_list() == titer


def test_a_changed_cell_is_reported_with_file_line_column_and_run(tmp_path):
    d = full_factorial(F3, random_seed=1)
    path = tmp_path / "plan.csv"
    d.to_csv(path)
    d.frame.with_columns(
        pl.when(pl.col("run_order") == 3).then(36.0).otherwise(pl.col("temp")).alias("temp")
    ).write_csv(path)
    with pytest.raises(SchemaError, match=r'plan\.csv.*\n  - line 4, column "temp": run 3 \(std_order \d\): temp = 36'):
        read_design(path)


def test_a_changed_excel_cell_and_text_in_a_number_column_are_reported(tmp_path):
    from openpyxl import load_workbook

    d = full_factorial(F3, random_seed=1)
    path = tmp_path / "plan.xlsx"
    d.to_excel(path)
    wb = load_workbook(path)
    ws = wb["design"]
    header = [c.value for c in ws[1]]
    ws.cell(row=5, column=header.index("ph_coded") + 1, value=0.5)
    ws.cell(row=7, column=header.index("feed") + 1, value="3,5")
    wb.save(path)
    with pytest.raises(SchemaError) as err:
        read_design(path)
    text = str(err.value)
    assert "2 problems in" in text and "plan.xlsx" in text
    assert 'line 5, column "ph": run 4' in text and "ph_coded = 0.5" in text
    assert "line 7, column \"feed\": run 6: expected a number, found '3,5'" in text


def test_deleted_rows_missing_columns_and_missing_sidecar_are_errors(tmp_path):
    d = full_factorial(F3, random_seed=1)
    path = tmp_path / "plan.csv"
    d.to_csv(path)
    d.frame.filter(pl.col("run_order") != 5).write_csv(path)
    with pytest.raises(SchemaError, match=r'column "run_order": run_order 5 missing: the design has 8 runs'):
        read_design(path)
    d.frame.drop("ph").write_csv(path)  # a deleted coded column is recomputed (tests/test_doe_actual.py)
    with pytest.raises(SchemaError, match=r'plan\.csv\n  - column "ph": missing design column'):
        read_design(path)
    sidecar_path(path).unlink()
    with pytest.raises(DataReadError, match=r"plan\.design\.yaml are missing"):
        read_design(path)
    with pytest.raises(DataReadError, match=r"unsupported file type '\.txt'"):
        (tmp_path / "plan.txt").write_text("x")
        read_design(tmp_path / "plan.txt")


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: full_factorial({"temp": (37, 37), "ph": (6.8, 7.2)}), "factor 'temp' has one level"),
        (lambda: full_factorial(F3, levels={"ph": 1}), "factor 'ph' has 1 level"),
        (lambda: d_optimal(F3, n_runs=12, levels=1), "factor 'temp' has 1 level"),
        (lambda: fractional_factorial(F4, generators=["D=ABX"]), r"unknown factor letter or name 'X'.*A \(temp\)"),
        (lambda: fractional_factorial(F4, generators=["Q=ABC"]), "unknown factor 'Q' on the left"),
        (
            lambda: fractional_factorial(F4, generators=["D=A"]),
            "aliases main effect D with main effect A.*resolution II",
        ),
        (
            lambda: fractional_factorial({**F4, "x": (0, 1)}, generators=["D=ABC", "E=ABC"]),
            "alias main effect D with main effect E \\(defining word DE, resolution II\\)",
        ),
        (lambda: fractional_factorial(F4, generators=["D=ABD"]), "D appears on both sides"),
        (lambda: fractional_factorial(F4), "exactly one of generators"),
        (lambda: fractional_factorial(F4, resolution=5), "no fraction of the 2\\^4 factorial reaches resolution V"),
        (lambda: fractional_factorial(F4, resolution=2), "resolution 2"),
        (lambda: full_factorial(F3, blocks=3), "blocks=3: a 2-level design is split"),
        (lambda: full_factorial(F3, blocks=8), "fewer than 2 runs per block"),
        (lambda: full_factorial(F3, levels=3, blocks=2), "only 2-level designs are blocked"),
        (lambda: box_behnken({"temp": (33, 37), "ph": (6.8, 7.2)}), "at least 3 factors; got 2 \\(temp, ph\\)"),
        (lambda: box_behnken(F3, blocks=2), "blocks=2"),
        (lambda: ccd({"temp": (33, 37)}), "at least 2 factors"),
        (lambda: ccd(F3, kind="rotated"), "unknown CCD kind 'rotated'.*circumscribed, face_centred, inscribed"),
        (lambda: ccd(F3, kind="face_centred", alpha=1.5), "face-centred CCD has alpha = 1"),
        (lambda: ccd(F3, alpha="rotateable"), "Did you mean 'rotatable'"),
        (lambda: ccd(F3, alpha="orthogonal", center_points=4), "center_points=\\(cube, axial\\)"),
        (lambda: ccd(F3, blocks=4), "blocks=4"),
        (lambda: latin_hypercube(F3, n_runs=1), "n_runs must be an integer >= 2"),
        (lambda: latin_hypercube(F3, n_runs=5, criterion="maxmin"), "Did you mean 'maximin'"),
        (lambda: full_factorial(F3, units={"tmp": "degC"}), "unknown factor 'tmp'.*Did you mean 'temp'"),
        (lambda: full_factorial(F3, center_points=-1), "center_points must be an integer >= 0; got -1"),
    ],
)
def test_bad_requests_are_refused_with_a_clear_message(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_runs": 9}, r"n_runs=9 is fewer than the 10 parameters of the model \(intercept, temp"),
        ({"n_runs": 12, "levels": 2}, r"cannot estimate the model: temp\^2, ph\^2, feed\^2 cannot be separated"),
        ({"n_runs": 12, "exclude": pl.col("temp") > 0}, "exclude removes all 27 candidates"),
        (
            {"n_runs": 12, "exclude": pl.col("temp") + 1},
            "one boolean per candidate \\(27\\); got 27 values of type Float64",
        ),
        ({"n_runs": 12, "exclude": pl.col("tmp") > 1}, "could not be evaluated.*Candidate columns: temp, ph, feed"),
        ({"n_runs": 12, "exclude": "temp > 36"}, "exclude must be a polars expression"),
        ({"n_runs": 12, "exclude": pl.col("temp") == 35, "levels": {"temp": 3, "ph": 3, "feed": 3}}, "temp\\^2"),
        ({"n_runs": 12, "shared": ["temp"]}, "shared and block_size go together"),
        ({"n_runs": 14, "shared": ["temp"], "block_size": 4}, "n_runs=14 is not a multiple of block_size=4"),
        ({"n_runs": 12, "shared": ["temp"], "block_size": 6}, "make 2 blocks, but the model has 3 parameters"),
        (
            {"n_runs": 12, "shared": ["tmp"], "block_size": 4},
            "shared factor 'tmp' is not a factor.*Did you mean 'temp'",
        ),
    ],
)
def test_d_optimal_refuses_impossible_requests(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        d_optimal(F3, random_seed=1, **kwargs)


def test_candidates_outside_the_ranges_are_reported_by_row_and_column():
    cand = pl.DataFrame({"temp": [33.0, 38.0, 35.0], "ph": [6.8, 7.0, None]})
    with pytest.raises(SchemaError) as err:
        d_optimal({"temp": (33, 37), "ph": (6.8, 7.2)}, n_runs=3, terms="linear", candidates=cand)
    text = str(err.value)
    assert "2 problems in candidates" in text
    assert 'column "temp": row 2: 38 lies outside the factor range 33 to 37' in text
    assert 'column "ph": row 3: expected a finite number, found None' in text
    with pytest.raises(SchemaError, match=r'column "ph": missing'):
        d_optimal({"temp": (33, 37), "ph": (6.8, 7.2)}, n_runs=3, candidates=cand.drop("ph"))


# ---------------------------------------------------------------------------------------------
# text and import cost
# ---------------------------------------------------------------------------------------------
def test_describe_and_repr_state_the_facts_of_the_design():
    d = fractional_factorial(F4, generators=["D=ABC"], random_seed=9, units={"temp": "°C"})
    text = d.describe()
    assert text.startswith("2^(4-1) fractional factorial, resolution IV")
    for part in ("8 runs", "A = temp: 33 to 37 °C", "generators: D=ABC", "defining relation: I = ABCD", "seed 9"):
        assert part in text
    assert repr(d).startswith(text) and "run_order" in repr(d)
    opt = d_optimal(F3, n_runs=10, n_starts=2, random_seed=1)
    assert "D-efficiency" in opt.describe() and "10 parameters" in opt.describe()
    assert "rotatable: yes" in ccd(F3, random_seed=1).describe()


def test_summary_is_a_frame_of_the_factors():
    d = fractional_factorial(F4, generators=["D=ABC"], random_seed=9, units={"temp": "°C"})
    s = d.summary()
    assert isinstance(s, pl.DataFrame)
    assert s.columns == ["letter", "factor", "low", "high", "unit", "n_levels"]
    assert s["letter"].to_list() == ["A", "B", "C", "D"] and s["factor"].to_list() == list(F4)
    assert s.row(0, named=True) == {
        "letter": "A",
        "factor": "temp",
        "low": 33.0,
        "high": 37.0,
        "unit": "°C",
        "n_levels": 2,
    }
    assert s["unit"].null_count() == 3
    centre = ccd(F3, random_seed=1).summary()
    assert centre["n_levels"].to_list() == [5, 5, 5]  # -alpha, -1, 0, +1, +alpha


def test_bw_doe_is_lazy_and_does_not_import_pydoe3():
    code = "import sys, bioworkbench as bw; bw.doe; assert 'pyDOE3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert bw.doe.full_factorial is full_factorial
