"""Factor coding and model terms shared by designs and response-surface models."""

import numpy as np
import pytest

from bioworkbench.errors import ConfigError
from bioworkbench.terms import code, decode, factor_ranges, model_matrix, parse_terms

F = ["temp", "ph", "feed"]


def test_kinds_give_the_textbook_models():
    assert parse_terms("linear", F) == F
    assert parse_terms("interactions", F) == [*F, "temp:ph", "temp:feed", "ph:feed"]
    q = parse_terms("quadratic", F)
    assert len(q) == 3 + 3 + 3 and q[-3:] == ["temp^2", "ph^2", "feed^2"]


def test_letters_and_names_mix_and_become_canonical():
    assert parse_terms(["A", "C", "C:A", "A^2", "ph"], F) == ["temp", "feed", "temp:feed", "temp^2", "ph"]
    assert parse_terms(["temp**2", "B:A:C"], F) == ["temp^2", "temp:ph:feed"]


@pytest.mark.parametrize(
    ("terms", "match"),
    [
        ("cubic", "unknown model kind 'cubic'"),
        (["A", "D"], "unknown factor 'D'.*A \\(temp\\)"),
        (["A:A"], "repeats a factor"),
        (["A^3"], "powers 1 and 2"),
        (["A", "temp"], "given twice"),
        ([], "no terms"),
    ],
)
def test_bad_terms_are_refused_with_the_valid_choices(terms, match):
    with pytest.raises(ConfigError, match=match):
        parse_terms(terms, F)


def test_coding_maps_low_high_to_minus_plus_one_and_back():
    r = factor_ranges({"temp": (33, 37), "ph": (6.8, 7.2)})
    x = np.array([[33, 6.8], [37, 7.2], [35, 7.0]])
    c = code(x, r)
    np.testing.assert_allclose(c, [[-1, -1], [1, 1], [0, 0]], atol=1e-12)
    np.testing.assert_allclose(decode(c, r), x)


def test_one_level_and_reversed_ranges_are_errors():
    with pytest.raises(ConfigError, match="'temp' has one level"):
        factor_ranges({"temp": (37, 37)})
    with pytest.raises(ConfigError, match=r"low 8\.0 > high 7\.0"):
        factor_ranges({"ph": (8, 7)})


def test_model_matrix_columns_are_products_of_coded_factors():
    x = np.array([[1.0, -1.0, 0.5], [-1.0, 0.5, 2.0]])
    terms = parse_terms(["A", "A:B", "C^2"], F)
    m = model_matrix(x, F, terms)
    np.testing.assert_allclose(m, [[1, 1, -1, 0.25], [1, -1, -0.5, 4.0]])
    assert model_matrix(x, F, terms, intercept=False).shape == (2, 3)


def test_letters_skip_i_which_is_the_identity_of_defining_relations():
    from bioworkbench.terms import factor_letters

    names = [f"f{i}" for i in range(10)]
    letters = factor_letters(names)
    assert "I" not in letters and letters["J"] == "f8" and letters["K"] == "f9"
    assert parse_terms(["J:K"], names) == ["f8:f9"]
