"""The model contract (issue 15 item 3): an abstract base, declared and saved configuration, the package
version checked on load, one place for sampler defaults, options keyword-only, the right exception types.

Fast: the round trips use a mock posterior (a few zeros), not sampling; tests/test_models.py,
test_response_surface.py and test_stability_model.py round-trip real (tiny) fits.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

import bioworkbench as bw
import bioworkbench.twin  # registers FedBatchTwin, which sits above bioworkbench.models
from bioworkbench.models import BayesModel, GrowthModel, Prior, ResponseSurface, StabilityModel, TiterModel, load
from bioworkbench.models import base as model_base
from bioworkbench.models.base import CONFIG_SCHEMA, MODEL_TYPES
from bioworkbench.models.sampling import SAMPLER_DEFAULTS, TUNE_BY_BACKEND, padded_size, sampler_defaults

#: the models of the package (collected before any test defines a model class of its own)
MODELS = sorted(MODEL_TYPES)
#: for each model, constructor options that differ from every default, so that an option that is not
#: saved and restored changes the loaded model; a new model must add its entry here
EXAMPLES = {
    "GrowthModel": {
        "priors": {"peak_vcd": Prior("LogNormal", {"mu": 3.0, "sigma": 0.4}, "1e6 cells/mL", "test")},
        "sampler": {"draws": 77, "backend": "pymc"},
    },
    "TiterModel": {
        "priors": {"qp": Prior("LogNormal", {"mu": 2.0, "sigma": 0.3}, "pg/cell/d", "test")},
        "sampler": {"tune": 33, "chains": 3},
    },
    "ResponseSurface": {
        "factors": {"temp": (30.0, 37.0), "ph": (6.8, 7.2)},
        "responses": ["titer", "agg"],
        "terms": "interactions",
        "block": "day",
        "priors": {"sigma": Prior("HalfNormal", {"sigma": 0.5}, "SD of the response", "test")},
        "sampler": {"target_accept": 0.95},
    },
    "FedBatchTwin": {
        "priors": {"q_p": Prior("LogNormal", {"mu": 0.0, "sigma": 0.4}, "pg/cell/h", "test")},
        "sampler": {"draws": 55, "adaptation": "diag"},
        "fixed": ["k_glc", "ki_amm"],
    },
    "StabilityModel": {
        "kinetics": "zero_order",
        "reference_temperature": 25.0,
        "direction": "increase",
        "asymptote": 100.0,
        "likelihood": "student_t",
        "ea_by_lot": True,
        "priors": {"sd_activation_energy": Prior("HalfNormal", {"sigma": 5.0}, "kJ/mol", "test")},
        "sampler": {"adaptation": "low_rank"},
    },
}


def _init_parameters(cls: type) -> set[str]:
    return {n for n in inspect.signature(cls.__init__).parameters if n != "self"}


def _undeclared(cls: type[BayesModel]) -> set[str]:
    """``__init__`` parameters that the model does not declare as configuration (so save would not write them)."""
    return _init_parameters(cls) - {*cls.config_fields, "priors", "sampler"}


def _mock_fitted(model: BayesModel) -> BayesModel:
    """``model`` with a tiny posterior, data and sampler record, as after a fit (no sampling)."""
    zeros = np.zeros((1, 4))
    model.idata = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"x": (("chain", "draw"), zeros)}),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), zeros.astype(bool))}),
        }
    )
    model.data = {"y": [1.0, 2.5], "batch_ids": ["B01", "B02"], "note": None}
    model.sampling = {"backend": "pymc", "draws": 4, "tune": 0, "chains": 1, "random_seed": 1}
    return model


def _rewrite(path, out, **attrs):
    """A copy of the saved model ``path`` at ``out`` with root attributes replaced (``None``: removed)."""
    with xr.open_datatree(path, engine="h5netcdf") as dt:
        dt = dt.load()
    for k, v in attrs.items():
        if v is None:
            dt.attrs.pop(k, None)
        else:
            dt.attrs[k] = v
    dt.to_netcdf(out, engine="h5netcdf")
    return out


@pytest.fixture
def saved(tmp_path):
    m = _mock_fitted(GrowthModel(**EXAMPLES["GrowthModel"]))
    return m, m.save(tmp_path / "growth.nc")


# -- the abstract base ------------------------------------------------------------------------------
def test_the_base_is_abstract_and_names_what_a_model_implements():
    assert inspect.isabstract(BayesModel)
    assert BayesModel.__abstractmethods__ == {"fit", "predict", "summary", "_prepare", "_build"}
    with pytest.raises(TypeError, match="abstract"):
        BayesModel()
    for name in MODELS:
        cls = MODEL_TYPES[name]
        assert not inspect.isabstract(cls), f"{name} leaves {sorted(cls.__abstractmethods__)} unimplemented"
        for method in ("build", "fit", "predict", "summary", "diagnostics", "save", "load", "get_config"):
            assert callable(getattr(cls, method)), f"{name}.{method}"


def test_a_model_without_predict_cannot_be_made():
    class Incomplete(BayesModel):
        model_type = "_TestIncomplete"

        def _prepare(self, data, **kwargs):
            return {}

        def _build(self, d):
            return None

        def fit(self, data, **kwargs):
            return self

        def summary(self, prob=0.9):
            return None

    try:
        with pytest.raises(TypeError, match="predict"):
            Incomplete()
    finally:
        MODEL_TYPES.pop("_TestIncomplete", None)


# -- declared and saved configuration --------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_every_init_parameter_is_declared_configuration(name):
    cls = MODEL_TYPES[name]
    assert not _undeclared(cls), f"{name}.__init__ takes {sorted(_undeclared(cls))} but config_fields lacks them"
    assert set(cls.config_fields) <= _init_parameters(cls), f"{name} declares fields its __init__ does not take"
    assert name in EXAMPLES, f"add constructor options of {name} to EXAMPLES (one that differs from each default)"
    assert set(EXAMPLES[name]) == _init_parameters(cls), f"EXAMPLES[{name!r}] must give every __init__ parameter"
    defaults = {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}
    same = [n for n, v in EXAMPLES[name].items() if v == defaults[n]]
    assert not same, f"EXAMPLES[{name!r}] gives the defaults of {same}: the round trip could not tell them apart"


@pytest.mark.parametrize("name", MODELS)
def test_save_and_load_restore_every_constructor_option(name, tmp_path):
    cls = MODEL_TYPES[name]
    m = _mock_fitted(cls(**EXAMPLES[name]))
    config = m.get_config()
    assert set(config) == _init_parameters(cls)
    # the configuration makes the same model again
    again = cls(**config)
    assert again.get_config() == config
    back = load(m.save(tmp_path / f"{name}.nc"))
    assert type(back) is cls
    assert back.get_config() == config
    for field in cls.config_fields:
        assert getattr(back, field) == getattr(m, field), field
    assert back.priors == m.priors and back.sampler == m.sampler
    assert back.data == m.data and back.sampling == m.sampling
    # a model saved again after loading loads the same
    assert load(back.save(tmp_path / f"{name}-again.nc")).get_config() == config


def test_the_check_fails_for_an_option_that_is_not_saved(tmp_path):
    class Forgetful(BayesModel):
        """Takes ``alpha`` but does not declare it: save would not write it."""

        model_type = "_TestForgetful"

        def __init__(self, alpha=1.0, priors=None, sampler=None):
            super().__init__(priors, sampler)
            self.alpha = alpha

        def _prepare(self, data, **kwargs):
            return dict(data)

        def _build(self, d):
            return None

        def fit(self, data, **kwargs):
            return self

        def predict(self, *args, **kwargs):
            return None

        def summary(self, prob=0.9):
            return None

    try:
        assert _undeclared(Forgetful) == {"alpha"}
        back = load(_mock_fitted(Forgetful(alpha=2.0)).save(tmp_path / "f.nc"))
        assert back.alpha == 1.0  # what the round trip test would catch: the option is lost
        Forgetful.config_fields = ("alpha",)
        assert not _undeclared(Forgetful)
        assert load(_mock_fitted(Forgetful(alpha=2.0)).save(tmp_path / "g.nc")).alpha == 2.0
    finally:
        MODEL_TYPES.pop("_TestForgetful", None)


# -- the package version on load, and the error types ----------------------------------------------------
def test_a_file_of_this_version_loads_without_a_warning(saved):
    _, path = saved
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(load(path), GrowthModel)
    with xr.open_datatree(path, engine="h5netcdf") as dt:
        assert dt.attrs["bw_version"] == bw.__version__
        assert dt.attrs["bw_model_type"] == "GrowthModel"
        assert dt.attrs["bw_config_schema"] == str(CONFIG_SCHEMA)


def test_another_version_of_the_same_schema_loads_with_a_warning(saved, tmp_path):
    m, path = saved
    with xr.open_datatree(path, engine="h5netcdf") as dt:
        record = dict(dt.attrs)
    record["bw_version"] = "0.0.9"
    out = _rewrite(path, tmp_path / "old.nc", bw_version="0.0.9", bw_checksum=model_base._checksum(record))
    with pytest.warns(bw.BioWorkbenchWarning, match=rf"written by bioworkbench 0\.0\.9, loaded by {bw.__version__}"):
        back = load(out)
    assert back.get_config() == m.get_config()


@pytest.mark.parametrize(
    ("schema", "said"),
    [(str(CONFIG_SCHEMA + 1), f"model file schema {CONFIG_SCHEMA + 1}"), (None, "no recorded model configuration")],
)
def test_another_schema_is_a_config_error_naming_both_versions(saved, tmp_path, schema, said):
    _, path = saved
    out = _rewrite(path, tmp_path / "other.nc", bw_version="9.9.0", bw_config_schema=schema)
    with pytest.raises(bw.ConfigError, match=rf"GrowthModel written by bioworkbench 9\.9\.0 with {said}") as err:
        load(out)
    assert f"this bioworkbench ({bw.__version__}) reads model file schema {CONFIG_SCHEMA}" in str(err.value)
    assert "fit the model again" in str(err.value)


@pytest.mark.parametrize(
    "edit",
    [
        {"bw_data": '{"y": [1.0, 9.9], "batch_ids": ["B01", "B02"], "note": null}'},
        {"bw_config": '{"priors": {}, "sampler": {}}'},
        {"bw_sampling": "{not json"},
        {"bw_checksum": None},
    ],
)
def test_a_damaged_file_is_an_integrity_error_not_a_config_error(saved, tmp_path, edit):
    _, path = saved
    out = _rewrite(path, tmp_path / "damaged.nc", **edit)
    with pytest.raises(bw.IntegrityError, match=r"(?s)damaged\.nc\n  - .*the file was damaged or edited") as err:
        load(out)
    assert isinstance(err.value, bw.DataReadError) and not isinstance(err.value, bw.ConfigError)


def test_load_on_a_class_checks_the_class(saved):
    _, path = saved
    assert isinstance(GrowthModel.load(path), GrowthModel)
    assert isinstance(BayesModel.load(path), GrowthModel)
    with pytest.raises(bw.ArgumentError, match=r"TiterModel.load: .*growth.nc holds a GrowthModel; load it with"):
        TiterModel.load(path)


def test_missing_data_is_an_argument_error_not_model_not_fitted():
    with pytest.raises(bw.ArgumentError, match=r"GrowthModel.sample_prior_predictive needs data") as err:
        GrowthModel().sample_prior_predictive()
    assert not isinstance(err.value, bw.ModelNotFittedError)
    with pytest.raises(bw.ModelNotFittedError, match="StabilityModel has no posterior yet"):
        StabilityModel().summary()


# -- one place for sampler defaults ---------------------------------------------------------------
def test_sampler_defaults_are_the_ones_the_code_had():
    assert sampler_defaults("GrowthModel") == SAMPLER_DEFAULTS["GrowthModel"]
    expected = {  # (draws, tune, chains, nutpie target acceptance) before the table existed
        "GrowthModel": (2000, None, 4, 0.8),
        "TiterModel": (2000, 1000, 4, 0.9),  # tune 1000, low-rank: issue 12; 2000 draws: issue 19
        "ResponseSurface": (2000, 1000, 4, 0.95),  # issue 14: blocked small designs (see sampling.py)
        "StabilityModel": (1000, 1000, 4, 0.9),
        "forecast": (2500, 1000, 2, 0.95),  # nutpie 0.95 since issue 12; 2500 draws since issue 16 (see sampling.py)
        "forecast_section": (1000, 1000, 2, 0.8),
        "stability_section": (1000, 1000, 2, 0.8),
    }
    for name, (draws, tune, chains, nutpie_accept) in expected.items():
        d = sampler_defaults(name)
        assert (d.draws, d.tune, d.chains, d.nutpie_target_accept, d.target_accept) == (
            draws,
            tune,
            chains,
            nutpie_accept,
            0.9,
        ), name
    assert TUNE_BY_BACKEND == {"nutpie": 500, "pymc": 1000}
    assert SAMPLER_DEFAULTS["GrowthModel"].tune_for("nutpie") == 500
    assert SAMPLER_DEFAULTS["StabilityModel"].tune_for("nutpie") == 1000
    with pytest.raises(bw.ArgumentError, match=r"no defaults for 'GrowModel'. Did you mean 'GrowthModel'"):
        sampler_defaults("GrowModel")


def test_models_forecast_and_sections_read_the_table():
    from bioworkbench.models import forecast
    from bioworkbench.models.growth import DEFAULT_DRAWS, DEFAULT_TUNE

    for name in MODELS:
        d = sampler_defaults(name) if name in SAMPLER_DEFAULTS else SAMPLER_DEFAULTS["BayesModel"]
        s = MODEL_TYPES[name]().sampler if name != "ResponseSurface" else ResponseSurface().sampler
        assert (s["draws"], s["tune"], s["chains"]) == (d.draws, d.tune, d.chains), name
    assert DEFAULT_DRAWS == 2000 and DEFAULT_TUNE is TUNE_BY_BACKEND
    p = inspect.signature(forecast).parameters
    f = sampler_defaults("forecast")
    assert (p["draws"].default, p["tune"].default, p["chains"].default) == (f.draws, f.tune, f.chains)
    # the report sections take None and read their entry when they run
    for section in (bw.review.forecast_section, bw.review.bayesian_analysis):
        q = inspect.signature(section).parameters
        assert q["draws"].default is q["tune"].default is q["chains"].default is None, section.__name__


def test_padded_size_is_defined_once():
    from bioworkbench.models import growth, response, stability, titer

    assert [padded_size(n, 16) for n in (1, 16, 17, 40, 64, 65)] == [16, 16, 32, 64, 64, 128]
    assert padded_size(3, 4) == 4 and padded_size(5, 4) == 8
    for module in (growth, response, stability, titer):
        assert not hasattr(module, "_bucket"), module.__name__


# -- options keyword-only after the data ----------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("method", ["fit", "predict", "build", "sample_prior_predictive"])
def test_options_are_keyword_only_after_the_data(name, method):
    params = list(inspect.signature(getattr(MODEL_TYPES[name], method)).parameters.values())[1:]
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) <= 1, f"{name}.{method}: only the data may be positional; got {positional}"
    if method == "fit":
        for opt in ("draws", "tune", "chains", "random_seed"):
            assert next(p for p in params if p.name == opt).kind is inspect.Parameter.KEYWORD_ONLY


# -- warnings and the page -------------------------------------------------------------------------------
def test_importing_the_models_sets_no_global_warning_filter():
    code = (
        "import warnings, numpy.polynomial, polars, bioworkbench; before = list(warnings.filters); "
        "import bioworkbench.models, bioworkbench.models.base; "
        "assert warnings.filters == before, [f for f in warnings.filters if f not in before]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_diagnostics_notes_are_escaped_on_the_page():
    diag = {
        "divergences": 0,
        "max_rhat": 1.001,
        "min_ess_bulk": 900.0,
        "min_ess_tail": 900.0,
        "chains": 2,
        "draws": 1000,
        "ok": True,
        "issues": [],
        "notes": ["1 batch(es) left out: <b>B_07</b> (data/run*1.csv)."],
    }
    md = bw.models.diagnostics_markdown(diag, name="Growth model")
    assert "<b>" not in md and "*1" not in md and "B_07" not in md
    assert "&lt;b&gt;B&#95;07&lt;/b&gt;" in md and "run&#42;1.csv" in md
