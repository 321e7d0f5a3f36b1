"""The titer model through the disk compile cache (issue 19).

nutpie bakes the value of every ``pm.Data`` at compile time into its C callbacks as a placeholder,
and numba refers to an array of over 1e6 bytes by its process address ("dynamic globals"), which
the compile cache cannot keep when LLVM leaves it in the code. The titer model held its post-shift
IVCD segments as a dense (samples x segments) matrix: on the 24-batch demo 512 x 256 float64,
1,048,576 bytes, whose address stayed in the log density's code, so every process compiled the
model again. It now holds the matrix's possibly non-zero entries. What is checked: the
entries give the matrix's product; the model's log density is the one of the dense formulation;
no ``pm.Data`` of the demo's titer model reaches the limit; a demo titer fit is written to the
cache and a fit with a fresh in-memory state loads it and gives the same draws for the same seed;
a model with a ``pm.Data`` over the limit is not kept, and the log line names the array.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

pm = pytest.importorskip("pymc")
pt = pytest.importorskip("pytensor.tensor")
pytest.importorskip("nutpie")

import bioworkbench as bw  # noqa: E402
from bioworkbench.models import TiterModel  # noqa: E402
from bioworkbench.models import base as model_base  # noqa: E402
from bioworkbench.models import compile_cache as cc  # noqa: E402
from bioworkbench.models.titer import _segment_matrix, _segment_pairs  # noqa: E402

#: numba's size limit for an array it writes into the compiled code (numba.core.base.make_constant_array)
NUMBA_FREEZE_LIMIT = 10**6


@pytest.fixture(scope="module")
def demo_data():
    """The titer model's data of the 24-batch demo campaign (every batch, default options)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TiterModel()._prepare(bw.datasets.demo())


@pytest.fixture
def cache(compile_cache_folder):
    """An empty cache folder and a fresh in-memory state (tests/conftest.py)."""
    return compile_cache_folder


def test_segment_pairs_give_the_segment_matrix_product(demo_data):
    S, tau = _segment_matrix(demo_data)
    obs, seg, ivcd, tau2 = _segment_pairs(demo_data)
    np.testing.assert_array_equal(tau, tau2)
    assert obs.size == np.count_nonzero(S) and obs.size < S.size / 20  # sparse: ~2 % of the matrix
    np.testing.assert_array_equal(S[obs, seg], ivcd)
    for gamma in (0.0, 0.05, 0.3):
        weights = np.exp(-gamma * tau)
        by_pairs = np.bincount(obs, weights=ivcd * weights[seg], minlength=S.shape[0])
        np.testing.assert_allclose(by_pairs, S @ weights, rtol=1e-13, atol=1e-10)


def test_log_density_is_that_of_the_dense_segment_matrix(demo_data):
    """The model's likelihood term at random points equals the module docstring's formula with
    the dense ``S @ exp(-γ·τ)`` computed in numpy."""
    import pytensor
    from scipy import stats

    d = demo_data
    model = TiterModel()._build(d)
    names = ["intercept_b", "qp_b", "qp_after_shift_b", "cv", "floor", "qp_decline"]
    outs = model.replace_rvs_by_values([model[n] for n in names] + list(model.potentials))
    f = pytensor.function(model.value_vars, outs, on_unused_input="ignore")
    S, tau = _segment_matrix(d)
    b = np.asarray(d["b"])
    x1 = np.asarray(d["ivcd_pre"])
    y = np.asarray(d["titer"])
    rng = np.random.default_rng(1)
    ip = model.initial_point()
    for _ in range(3):
        point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
        a, qp, qp2, cv, s0, gamma, loglik = f(**point)
        mean = a[b] + qp[b] * x1 + qp2[b] * (S @ np.exp(-gamma * tau))
        expected = stats.norm.logpdf(y, mean, np.sqrt((cv * mean) ** 2 + s0**2)).sum()
        np.testing.assert_allclose(loglik, expected, rtol=1e-12)


def test_demo_titer_model_data_stay_below_numba_s_limit(demo_data):
    model = TiterModel()._build(demo_data)
    sizes = {v.name: v.get_value(borrow=True).nbytes for v in model.data_vars}
    assert max(sizes.values()) < NUMBA_FREEZE_LIMIT / 10, sizes


def test_titer_fit_is_written_to_and_loaded_from_the_disk_cache(demo_data, cache, caplog):
    settings = {"draws": 150, "tune": 150, "chains": 2, "random_seed": 4}
    with caplog.at_level(logging.INFO, logger=cc.__name__):
        fresh = TiterModel().fit(demo_data, **settings)
    assert cc.STATS == dict(cc.STATS, miss=1, hit=0, uncacheable=0)
    assert not any("not kept" in r.getMessage() for r in caplog.records)
    (entry,) = cache.glob("*.nutpie")
    assert not fresh.sampling["compiled_from_cache"]

    # a new process: nothing compiled or loaded in memory, only the entry on disk
    model_base._COMPILED.clear()
    cc._LOADED.clear()
    loaded = TiterModel().fit(demo_data, **settings)
    assert cc.STATS == dict(cc.STATS, miss=1, hit=1, uncacheable=0)
    (compiled,) = model_base._COMPILED.values()
    assert type(compiled.compiled_logp_func).__name__ == "_StoredCFunc"  # the object code from the entry
    assert list(cache.glob("*.nutpie")) == [entry]

    a = fresh.idata["posterior"]
    b = loaded.idata["posterior"]
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_a_pm_data_over_numba_s_limit_is_not_kept_and_named(cache, caplog):
    """The old titer model's pattern: a dense 2-D matrix over the limit beside another pm.Data."""
    matrix = np.zeros((512, 256))  # 1,048,576 bytes
    matrix[::7, ::3] = 1.0
    with pm.Model() as model:
        big = pm.Data("big_matrix", matrix)
        y = pm.Data("y", np.ones(512))
        mu = pm.Normal("mu", 0.0, 1.0, shape=256)
        pm.Potential("loglik", -0.5 * ((pt.dot(big, mu) - y) ** 2).sum())
    with caplog.at_level(logging.INFO, logger=cc.__name__):
        cc.compile_nutpie(model)
    assert cc.STATS == dict(cc.STATS, uncacheable=1, miss=0)
    assert not list(cache.glob("*.nutpie"))
    assert any(
        "dynamic globals" in r.getMessage() and f"big_matrix ({matrix.nbytes:,} bytes)" in r.getMessage()
        for r in caplog.records
    )
