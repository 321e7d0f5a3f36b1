"""The compile cache (bioworkbench.models.compile_cache): compiled nutpie models kept on disk.

Small PyMC models (a location and a scale, 8 observations) so that a compile takes seconds. What
is checked: the draws of a model loaded from the cache equal those of the fresh compile for the
same seed, bit for bit; data set with ``with_data`` move the posterior (nothing of the compiling
fit is kept), data baked into the graph as constants change the key; a truncated entry is rebuilt,
not used, with a log line and no warning; the key follows the graph, the shapes and the versions;
writers in parallel never leave a damaged entry; the folder can be set and the cache disabled.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import warnings

import numpy as np
import pytest

pm = pytest.importorskip("pymc")
nutpie = pytest.importorskip("nutpie")

from bioworkbench.models import compile_cache as cc  # noqa: E402

X = np.array([4.1, 5.3, 4.8, 5.9, 5.1, 4.4, 5.6, 5.0])


def data_model(x: np.ndarray, *, prior_sd: float = 2.0) -> pm.Model:
    """``x`` as ``pm.Data``; the location's prior is centred on the data's mean, so the chains' start
    (its support point) depends on the data too."""
    with pm.Model(coords={"obs": np.arange(len(x))}) as m:
        xd = pm.Data("x", x)
        mu = pm.Normal("mu", mu=xd.mean(), sigma=prior_sd)
        sd = pm.HalfNormal("sd", 1.0)
        pm.Normal("y", mu=mu, sigma=sd, observed=xd, dims="obs")
    return m


def constant_model(x: np.ndarray) -> pm.Model:
    """``x`` baked into the graph as a constant (no ``pm.Data``)."""
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, 10.0)
        sd = pm.HalfNormal("sd", 1.0)
        pm.Normal("y", mu=mu, sigma=sd, observed=x)
    return m


def draws(compiled, seed: int = 3) -> dict[str, np.ndarray]:
    idata = nutpie.sample(compiled, draws=150, tune=150, chains=2, seed=seed, cores=1, progress_bar=False)
    post = idata["posterior"].to_dataset()
    return {k: post[k].values for k in post.data_vars}


@pytest.fixture
def cache(compile_cache_folder):
    """An empty cache folder and a fresh in-memory state (tests/conftest.py)."""
    return compile_cache_folder


@pytest.fixture(scope="module")
def fresh_and_loaded(tmp_path_factory):
    """The data model compiled in this process (written to a new cache) and loaded back from it."""
    folder = tmp_path_factory.mktemp("compiled")
    old = dict(cc._settings)
    cc.configure(directory=folder, enabled=True)
    try:
        cc._LOADED.clear()
        fresh = cc.compile_nutpie(data_model(X))
        cc._LOADED.clear()
        loaded = cc.compile_nutpie(data_model(X))
        assert cc.STATS["hit"] >= 1
    finally:
        cc._settings.update(old)
        cc._LOADED.clear()
    return fresh, loaded, folder


def test_loaded_model_gives_the_same_draws(fresh_and_loaded):
    fresh, loaded, folder = fresh_and_loaded
    assert type(loaded.compiled_logp_func).__name__ == "_StoredCFunc"  # really the stored one
    assert len(list(folder.glob("*.nutpie"))) == 1
    a, b = draws(fresh), draws(loaded)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_with_data_moves_the_loaded_model(fresh_and_loaded):
    """New ``pm.Data`` values: the posterior (and the start) follow them, as with a fresh compile."""
    fresh, loaded, _ = fresh_and_loaded
    shifted = X + 20.0
    a = draws(fresh.with_data(x=shifted))
    b = draws(loaded.with_data(x=shifted))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert abs(float(b["mu"].mean()) - float(shifted.mean())) < 1.0
    # the initial point reads the shared variables: setting them moves the start of the loaded model
    for var in loaded.shared_var_keys:
        var.set_value(shifted)
    start = loaded.initial_point_func(1)
    for var in loaded.shared_var_keys:
        var.set_value(X)
    assert abs(start[0] - shifted.mean()) <= 1.0 + 1e-9


def test_constant_data_are_part_of_the_key(cache):
    a = cc.compile_nutpie(constant_model(X))
    b = cc.compile_nutpie(constant_model(X + 20.0))
    assert cc.STATS["miss"] == 2 and cc.STATS["hit"] == 0
    mu_a, mu_b = draws(a)["mu"].mean(), draws(b)["mu"].mean()
    assert abs(mu_a - X.mean()) < 1.0 and abs(mu_b - (X.mean() + 20.0)) < 1.0
    assert len(list(cache.glob("*.nutpie"))) == 2


def test_truncated_entry_is_rebuilt_not_used(fresh_and_loaded, cache, caplog):
    _, _, folder = fresh_and_loaded
    (entry,) = folder.glob("*.nutpie")
    cache.mkdir(parents=True)
    damaged = cache / entry.name
    damaged.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail the test
        with caplog.at_level(logging.INFO, logger=cc.__name__):
            compiled = cc.compile_nutpie(data_model(X))
    assert cc.STATS == dict(cc.STATS, rejected=1, miss=1, hit=0)
    assert any("not used, rebuilt" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)
    assert all(r.levelno < logging.WARNING for r in caplog.records if r.name == cc.__name__)
    assert cc._read(damaged, cc.model_key(data_model(X))) is not None  # rewritten whole
    assert type(compiled.compiled_logp_func).__name__ == "CFunc"  # compiled, not loaded


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"garbage" + raw,  # no header
        lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]),  # one bit of the payload
        lambda raw: raw.replace(b'"format": 1', b'"format": 9'),  # another layout
    ],
    ids=["header", "checksum", "format"],
)
def test_damaged_entry_is_refused(fresh_and_loaded, cache, damage, caplog):
    _, _, folder = fresh_and_loaded
    (entry,) = folder.glob("*.nutpie")
    key = cc.model_key(data_model(X))
    cache.mkdir(parents=True)
    bad = cache / entry.name
    bad.write_bytes(damage(entry.read_bytes()))
    with caplog.at_level(logging.INFO, logger=cc.__name__):
        assert cc._read(bad, key) is None
    assert cc.STATS["rejected"] == 1 and not bad.exists()
    assert cc._read(entry, key) is not None  # the intact one loads


def test_key_follows_structure_shapes_and_versions(monkeypatch):
    base = cc.model_key(data_model(X))
    assert cc.model_key(data_model(X)) == base  # a second build
    assert cc.model_key(data_model(X + 1.0)) == base  # pm.Data values are set per fit, not compiled
    assert cc.model_key(data_model(X, prior_sd=3.0)) != base  # a prior parameter
    assert cc.model_key(data_model(np.append(X, 5.0))) != base  # a shape (and a coord size)
    assert cc.model_key(constant_model(X)) != cc.model_key(constant_model(X + 1.0))  # constants' values
    versions = cc._versions()
    monkeypatch.setattr(cc, "_versions", lambda: versions | {"pytensor": "0.0.1"})
    assert cc.model_key(data_model(X)) != base


def test_cache_dir_settings(tmp_path, monkeypatch, cache):
    assert cc.cache_dir() == cache
    monkeypatch.delenv(cc.ENV_DIR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.cache_dir() == tmp_path / "xdg" / "bioworkbench" / "compiled"
    cc.configure(directory=tmp_path / "mine")
    assert cc.cache_dir() == tmp_path / "mine"  # the setting wins over the environment
    monkeypatch.setenv(cc.ENV_ENABLED, "0")
    assert cc.cache_dir() is None
    cc.configure(enabled=True)
    assert cc.cache_dir() == tmp_path / "mine"


def test_disabled_cache_writes_nothing(cache, monkeypatch):
    monkeypatch.setenv(cc.ENV_ENABLED, "0")
    compiled = cc.compile_nutpie(constant_model(X))
    assert compiled.n_dim == 2
    assert cc.STATS["disabled"] == 1 and not cache.exists()
    assert cc.clear(cache) == 0


WRITER = """
import sys
from pathlib import Path
import numpy as np
from bioworkbench.models import compile_cache as cc
payload = np.random.default_rng(int(sys.argv[2])).bytes(2_000_000)
for _ in range(40):
    cc._write(Path(sys.argv[1]) / "k.nutpie", "k" * 64, payload, {"v": "1"})
"""


def test_parallel_writers_never_leave_a_damaged_entry(tmp_path, monkeypatch):
    """Two processes rewrite one entry (2 MB, 40 times each) while this one reads it: every read is a
    whole entry."""
    import pickle
    import subprocess
    import sys

    monkeypatch.setattr(cc, "STATS", dict.fromkeys(cc.STATS, 0))
    monkeypatch.setattr(cc, "_versions", lambda: {"v": "1"})
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(s)]) for s in (1, 2)]
    monkeypatch.setattr(pickle, "loads", lambda b: len(b))  # the payload is random bytes, not a pickle
    reads = []
    while any(p.poll() is None for p in procs):
        got = cc._read(tmp_path / "k.nutpie", "k" * 64)
        if got is not None:
            reads.append(got)
    assert [p.wait() for p in procs] == [0, 0]
    reads.append(cc._read(tmp_path / "k.nutpie", "k" * 64))
    assert set(reads) == {2_000_000}
    assert cc.STATS["rejected"] == 0  # no read saw a partial entry
    assert [p.name for p in tmp_path.iterdir()] == ["k.nutpie"]  # no temporary file left


def _compile_in_child(folder: str, queue: mp.Queue) -> None:
    cc.configure(directory=folder, enabled=True)
    compiled = cc.compile_nutpie(data_model(X))
    queue.put((dict(cc.STATS), float(np.mean(draws(compiled)["mu"]))))


@pytest.mark.slow
def test_two_processes_compiling_the_same_model(tmp_path):
    """Two processes start the same compile at once: one compiles, the other waits for its entry."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_compile_in_child, args=(str(tmp_path), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    stats = [r[0] for r in results]
    assert sorted((s["miss"], s["hit"]) for s in stats) == [(0, 1), (1, 0)]
    assert results[0][1] == results[1][1]  # the same draws
    assert len(list(tmp_path.glob("*.nutpie"))) == 1


def test_report_runs_of_one_notebook_go_back_to_back_to_one_worker(tmp_path):
    """bioworkbench.reports.parallel: each worker takes one notebook's runs in turn, the notebook
    that took longest last time first; a worker left without a notebook shares the biggest one."""
    import json

    from bioworkbench.reports.parallel import _estimates, _Lanes

    jobs = [("batch", tmp_path / f"B{i}.yaml") for i in range(4)]
    jobs += [("growth", tmp_path / "g1.yaml"), ("growth", tmp_path / "g2.yaml"), ("doe", tmp_path / "d.yaml")]
    run = tmp_path / "out" / "growth" / "run1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"parameter_file": str(tmp_path / "g1.yaml"), "duration_s": 70.0}))
    est = _estimates(jobs, tmp_path / "out")
    assert est == {"batch": 4 * 70.0, "growth": 140.0, "doe": 70.0}  # unknown files: the median known
    lanes = _Lanes(jobs, {"growth": 140.0, "batch": 20.0, "doe": 60.0})
    order = {w: [] for w in "ab"}
    for w in "abababababab":
        job = lanes.next_for(w)
        if job is not None:
            order[w].append(f"{job[1]}:{job[2].stem}")
    # b finishes doe and starts the batch reports; a, done with growth, shares them from the other end
    assert order["a"] == ["growth:g1", "growth:g2", "batch:B3", "batch:B2"]
    assert order["b"] == ["doe:d", "batch:B0", "batch:B1"]
    assert lanes.next_for("a") is None


def test_an_op_s_source_is_its_own_module_not_the_whole_package():
    """The growth likelihood's op names itself a member of ``growth`` (to be found by name); its
    source is ``growth_likelihood.py``, so editing the sampler defaults keeps the compiled models."""
    from bioworkbench.models import growth

    op = growth.GrowthStudentTSum
    assert op.__module__ == "bioworkbench.models.growth"
    assert cc._op_module(op) == "bioworkbench.models.growth_likelihood"
    assert cc._source_modules(cc._op_module(op)) == ["bioworkbench.models.growth_likelihood"]
