"""The shared argument checks: every wrong argument is a located BioWorkbenchError."""

from __future__ import annotations

import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import checks


def test_require_campaign_names_function_argument_and_what_was_given():
    with pytest.raises(bw.ArgumentError, match=r"golden_batch: campaign must be a Campaign; got a polars DataFrame"):
        checks.require_campaign(pl.DataFrame({"a": [1]}), function="golden_batch")
    # both built-in bases, so callers catching either keep working
    assert issubclass(bw.ArgumentError, TypeError) and issubclass(bw.ArgumentError, ValueError)


def test_require_frame_refuses_a_campaign_and_names_missing_columns():
    camp = bw.simulate_campaign(n_batches=2, random_seed=1)
    with pytest.raises(bw.ArgumentError, match=r"f: aligned must be a polars DataFrame; got a Campaign"):
        checks.require_frame(camp, function="f", argument="aligned")
    with pytest.raises(bw.SchemaError, match=r"missing required columns 'x', 'y'; found: a"):
        checks.require_frame(pl.DataFrame({"a": [1]}), argument="data", columns=["a", "x", "y"])
    lazy = pl.DataFrame({"a": [1]}).lazy()
    assert checks.require_frame(lazy, columns=["a"]).height == 1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("95%", "must be a finite number; got the str '95%'. Give the number itself"),
        (float("nan"), "got the float nan"),
        (True, "got the bool True"),
    ],
)
def test_require_number_refuses_text_nan_and_bool(value, text):
    with pytest.raises(bw.ArgumentError, match=text.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        checks.require_number(value, argument="lower", function="shelf_life")


def test_require_number_bounds_and_prob():
    assert checks.require_number(3, argument="n", minimum=0) == 3
    with pytest.raises(bw.ArgumentError, match=r"n must be a finite number >= 0; got -1"):
        checks.require_number(-1, argument="n", minimum=0)
    with pytest.raises(bw.ArgumentError, match=r"Did you mean 0\.9\?"):
        checks.require_prob(90)
    with pytest.raises(bw.ArgumentError, match=r"prob must be a finite number > 0 and < 1; got 1"):
        checks.require_prob(1)
    assert checks.require_prob(0.9) == 0.9
