"""Stability functions: natural mistakes raise located BioWorkbenchErrors (issue 13 item 6), and ICH Q1E
shelf_life refuses to state a shelf life the data cannot estimate (issue 20 item 7).

The data are the published LeBlond et al. (2011) / JMP tables in shared/data/stability-ich-q1e, cut down
or overwritten so that each case has a known reason to fail.
"""

from __future__ import annotations

import warnings

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.review.stability import compare_shelf_lives, describe_study
from bioworkbench.stability import (
    condition_at,
    mean_kinetic_temperature,
    read_study,
    shelf_life,
    study_overview,
    validate_study,
)
from bioworkbench.stability.study import to_time_unit
from tests.conftest import shared_data

Q1E = "ICH Q1E (2003) Appendix B.1 bases the shelf life on the time the one-sided 95 % confidence limit"


@pytest.fixture(autouse=True)
def _quiet():
    # fewer than three lots is warned about (tested in test_stability_q1e.py)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bw.BioWorkbenchWarning)
        yield


def exp1_path() -> str:
    return str(shared_data("stability-ich-q1e", "exp1.csv"))


@pytest.fixture(scope="module")
def exp1() -> pl.DataFrame:
    return read_study(exp1_path())


def lots(study: pl.DataFrame, *ids: str) -> pl.DataFrame:
    return study.filter(pl.col("batch_id").is_in(list(ids)))


# =====================================================================================================================
# shelf_life: data that cannot estimate a shelf life
# =====================================================================================================================
def test_one_lot_two_time_points_has_no_residual_degrees_of_freedom(exp1):
    """Issue 20 item 7: this reported 'no statistical limit' and proposed 24 months."""
    two = exp1.filter(pl.col("source_line").is_in([2, 4]))  # lot b2: 101.0 at 0 months, 99.8 at 3 months
    assert two["batch_id"].to_list() == ["b2", "b2"] and two["time"].to_list() == [0.0, 3.0]
    with pytest.raises(bw.SchemaError) as err:
        shelf_life(two, attribute="potency", lower=95)
    text = str(err.value)
    assert f"1 problem in {exp1_path()}" in text
    assert "no statistical shelf life can be estimated: lot b2 has 2 results at 2 times" in text
    assert "no residual degrees of freedom (n − 2 = 0)" in text
    assert Q1E in text and "no shelf life is stated" in text
    assert "Results used: lines 2, 4." in text


def test_all_equal_values_make_the_poolability_tests_undefined(exp1):
    """Issue 20 item 7: all-equal values gave F = 0, p = 1 with no warning."""
    flat = lots(exp1, "b2", "b5", "b7").with_columns(value=pl.lit(100.0))
    with pytest.raises(bw.SchemaError) as err:
        shelf_life(flat, attribute="potency", lower=95)
    text = str(err.value)
    assert (
        "the poolability tests of ICH Q1E Appendix B.2.2 are undefined: the separate lines fit all 31 results " in text
    )
    assert "exactly (residual mean square 0 on 25 df), so there is no error variance to test against" in text
    tests = err.value.tests
    assert tests["test"].to_list() == ["equal slopes", "equal intercepts", "equal lines"]
    assert tests["F"].null_count() == 3 and tests["p_value"].null_count() == 3
    assert tests["df_num"].to_list() == [2, 2, 4] and tests["df_den"].to_list() == [25, 25, 25]
    assert tests["decision"].str.starts_with("undefined: ").all() and not tests["decisive"].any()


def test_lines_that_fit_exactly_are_refused_like_equal_values(exp1):
    exact = lots(exp1, "b2", "b5", "b7").with_columns(
        value=100 - pl.col("time") * pl.when(pl.col("batch_id") == "b2").then(0.2).otherwise(0.3)
    )
    with pytest.raises(bw.SchemaError, match=r"are undefined: the separate lines fit all 31 results exactly"):
        shelf_life(exact, attribute="potency", lower=95)


def test_one_lot_of_equal_values(exp1):
    flat = lots(exp1, "b2").with_columns(value=pl.lit(100.0))
    with pytest.raises(bw.SchemaError) as err:
        shelf_life(flat, attribute="potency", lower=95)
    text = str(err.value)
    assert "all 10 results lie exactly on the fitted one common line (residual variance 0, all values equal)" in text
    assert "its confidence bound of the mean would have zero width" in text and Q1E in text


def test_a_lot_on_an_exact_line_among_scattered_ones(exp1):
    study = lots(exp1, "b4", "b5", "b8")
    exact_b8 = study.with_columns(
        value=pl.when(pl.col("batch_id") == "b8").then(101 - 0.5 * pl.col("time")).otherwise("value")
    )
    with pytest.raises(bw.SchemaError) as err:
        shelf_life(exact_b8, attribute="potency", lower=95, alpha_pool=0.99)
    text = str(err.value)
    assert '- column "value" (batch b8): potency at unspecified: no statistical shelf life' in text
    assert "lot b8 lies exactly on its own regression line (residual variance 0)" in text
    assert "separate_mse='pooled'" in text and "Results used: lines 50, 51, 52, 53, 54." in text
    # with the full model's pooled variance there is a bound of the mean for b8 too
    pooled = shelf_life(exact_b8, attribute="potency", lower=95, alpha_pool=0.99, separate_mse="pooled")
    assert pooled.model == "separate" and pooled.limiting_batch == "b8"
    assert pooled.residual_sd > 0 and 0 < pooled.shelf_life < pooled.max_allowed


# =====================================================================================================================
# shelf_life and the other stability functions: natural mistakes
# =====================================================================================================================
def test_shelf_life_limit_as_text(exp1):
    with pytest.raises(bw.ArgumentError) as err:
        shelf_life(exp1, attribute="potency", lower="95%")
    assert str(err.value) == (
        "shelf_life: lower must be a finite number; got the str '95%'. Give the number itself, without text or "
        "units (e.g. 95, not '95%')."
    )
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)


def test_shelf_life_confidence_as_a_percentage(exp1):
    with pytest.raises(
        bw.ArgumentError, match=r"shelf_life: confidence must be a probability .* got 95\. Did you mean 0\.95\?"
    ):
        shelf_life(exp1, attribute="potency", lower=95, confidence=95)
    with pytest.raises(
        bw.ArgumentError, match=r"shelf_life: alpha_pool must be a probability .* got 25\. Did you mean 0\.25\?"
    ):
        shelf_life(exp1, attribute="potency", lower=95, alpha_pool=25)


def test_shelf_life_of_a_campaign():
    campaign = bw.simulate_campaign(2, random_seed=0)
    with pytest.raises(bw.ArgumentError) as err:
        shelf_life(campaign, attribute="potency", lower=95)
    text = str(err.value)
    assert text.startswith("shelf_life: study must be a polars DataFrame; got a Campaign")
    assert "bw.stability.read_study(path)" in text


def test_shelf_life_attribute_as_a_list(exp1):
    with pytest.raises(
        bw.ArgumentError, match=r"shelf_life: attribute must be the attribute's name \(a str\); got a list"
    ):
        shelf_life(exp1, attribute=["potency"], lower=95)


def test_read_study_of_a_frame(exp1):
    with pytest.raises(
        bw.ArgumentError, match=r"read_study: path must be a file path .*got a polars frame.*validate_study"
    ):
        read_study(exp1)


def test_validate_study_of_a_campaign():
    with pytest.raises(bw.ArgumentError, match=r"validate_study: frame must be a polars DataFrame; got a Campaign"):
        validate_study(bw.simulate_campaign(2, random_seed=0))


def test_to_time_unit_of_the_wrong_unit(exp1):
    with pytest.raises(bw.ConfigError, match=r"time unit 'mnth' is not known\. Did you mean 'month'"):
        to_time_unit(exp1, "mnth")
    with pytest.raises(bw.SchemaError, match=r"to_time_unit: study: missing required column 'time_unit'"):
        to_time_unit(exp1.drop("time_unit"), "day")


def test_report_helpers_need_a_study(exp1):
    campaign = bw.simulate_campaign(2, random_seed=0)
    with pytest.raises(
        bw.ArgumentError, match=r"study_overview: study must be a polars DataFrame; got a Campaign.*read_study"
    ):
        study_overview(campaign)
    with pytest.raises(bw.SchemaError, match=r"describe_study: study: missing required column 'condition'"):
        describe_study(exp1.drop("condition"))
    with pytest.raises(
        bw.ArgumentError, match=r"condition_at: temperature_c must be a finite number \(°C\); got the str '25 °C'"
    ):
        condition_at(exp1, "25 °C")


def test_compare_shelf_lives_needs_both_results(exp1):
    res = shelf_life(exp1, attribute="potency", lower=95)
    with pytest.raises(
        bw.ArgumentError, match=r"compare_shelf_lives: bayes must be the result of bw\.review\.bayesian_analysis"
    ):
        compare_shelf_lives(res, res)
    with pytest.raises(
        bw.ArgumentError, match=r"compare_shelf_lives: q1e must be the result of bw\.stability\.shelf_life"
    ):
        compare_shelf_lives(res.shelf_life, None)


def test_temperatures_as_text():
    with pytest.raises(
        bw.ArgumentError, match=r"temperatures_c: expected temperatures in °C as numbers .*got the str '25 °C'"
    ):
        mean_kinetic_temperature("25 °C")
    with pytest.raises(bw.ArgumentError, match=r"expected temperatures in °C as numbers .*got a list"):
        mean_kinetic_temperature(["25", 30])
