"""The stability report's words and tables (the Bayesian fit itself is exercised by the report run): the
sentences are in bioworkbench.review.stability, the tables of a study in bioworkbench.stability.overview."""

from __future__ import annotations

import math

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench.errors import ConfigError
from bioworkbench.review import stability as report
from bioworkbench.stability import overview
from tests.conftest import shared_data


@pytest.fixture(scope="module")
def exp1():
    return bw.read_study(shared_data("stability-ich-q1e", "exp1.csv"), temperature_c=25)


def test_bayesian_shelf_life_is_where_the_probability_first_drops_below_target():
    curve = pl.DataFrame({"time": [0.0, 6, 12, 18, 24], "prob": [1.0, 0.99, 0.97, 0.93, 0.5]})
    assert report._shelf_life_from_prob(curve, 0.95) == pytest.approx(12 + 6 * (0.97 - 0.95) / (0.97 - 0.93))
    assert math.isinf(report._shelf_life_from_prob(curve, 0.4))
    assert report._shelf_life_from_prob(curve, 1.01) == 0.0


def test_shelf_life_states_its_monte_carlo_error_where_the_curve_is_flat():
    # slope between 12 and 18 months: (0.97 - 0.93) / 6 per month; SE of a fraction of 2000 draws at 0.95
    curve = pl.DataFrame({"time": [0.0, 6, 12, 18, 24], "prob": [1.0, 0.99, 0.97, 0.93, 0.5]})
    se = math.sqrt(0.95 * 0.05 / 2000)
    assert report._shelf_life_mc_error(curve, 0.95, 2000) == pytest.approx(se / (0.04 / 6))
    # four times the draws halve it; a flatter curve widens it
    assert report._shelf_life_mc_error(curve, 0.95, 8000) == pytest.approx(se / 2 / (0.04 / 6))
    flat = curve.with_columns(prob=pl.Series([1.0, 0.99, 0.955, 0.945, 0.5]))
    assert report._shelf_life_mc_error(flat, 0.95, 2000) > 3 * report._shelf_life_mc_error(curve, 0.95, 2000)
    # no crossing, or below from the start: nothing to state
    assert math.isnan(report._shelf_life_mc_error(curve, 0.4, 2000))
    assert math.isnan(report._shelf_life_mc_error(curve, 1.01, 2000))


def test_condition_at_picks_the_storage_condition_or_lists_the_temperatures():
    s = pl.DataFrame(
        {
            "batch_id": ["A"] * 4,
            "temperature_c": [5.0, 5.0, 25.0, 25.0],
            "time": [0.0, 3, 0, 3],
            "attribute": ["potency"] * 4,
            "value": [100.0, 99, 100, 97],
        }
    )
    s = bw.stability.validate_study(s)
    assert overview.condition_at(s, 25.0).startswith("25")
    with pytest.raises(ConfigError, match=r"no single condition at 40 °C; conditions at: 5 °C, 25 °C"):
        overview.condition_at(s, 40.0)


def test_study_in_words_and_overview(exp1):
    text = report.describe_study(exp1, source="LeBlond 2011")
    assert "6 lots" in text and "53 results" in text and "24 months" in text
    ov = overview.study_overview(exp1)
    assert ov.select("lots", "results").row(0) == (6, 53)


def test_one_temperature_cannot_be_predicted_elsewhere(exp1):
    b = report.bayesian_analysis(exp1, attribute="potency", lower=95, storage_c=5.0)
    assert b.prediction is None and "one storage temperature (25 °C)" in b.text
    q = bw.stability.shelf_life(exp1, attribute="potency", lower=95)
    assert "Only the ICH Q1E shelf life" in report.comparison_sentence(q, b)
    t = report.compare_shelf_lives(q, b)
    assert t["shelf_life"][0] == pytest.approx(q.shelf_life) and t["shelf_life"][1] is None


def test_comparison_sentence_says_which_is_shorter_and_why(exp1):
    q = bw.stability.shelf_life(exp1, attribute="potency", lower=95)
    b = report.BayesianStability(text="", diagnostics="", shelf_life=q.shelf_life / 2, temperatures=3)
    s = report.comparison_sentence(q, b)
    assert s.startswith("The Bayesian shelf life is the shorter") and "every temperature" in s
    same = report.BayesianStability(text="", diagnostics="", shelf_life=q.shelf_life * 1.05, temperatures=1)
    s = report.comparison_sentence(q, same)
    assert s.startswith("The two answers agree") and "every temperature" not in s


def test_a_seed_gives_one_shelf_life(exp1):
    """The new lot's predictive draws are seeded with the fit's seed: two analyses with one seed say the
    same (unseeded, the Bayesian shelf life moved by its Monte-Carlo error from run to run)."""
    kw = {"attribute": "potency", "lower": 95, "storage_c": 25.0, "draws": 200, "tune": 200, "chains": 2}
    a, b = (report.bayesian_analysis(exp1, random_seed=3, **kw) for _ in range(2))
    assert a.text == b.text and a.prob_in_spec.equals(b.prob_in_spec) and a.prediction.equals(b.prediction)
    assert a.time_to_limit.equals(b.time_to_limit)
