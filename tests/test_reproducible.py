"""A fit's draws for a seed do not depend on whether the process compiled its model or loaded it (issue 19, 3).

Found: the same fit gave other draws in a process that compiled the model than in one that loaded it from the
compile cache (the growth and titer models when PyTensor's functions were compiled afresh, the twin always).
With numba's fastmath, every compiled function holds its own copy of the functions it calls, the copies may
round differently (contraction, reassociation), and a process runs the copy it loaded first; gradients
differed in the last bits (3e-11), L-BFGS and NUTS amplified that. Models are now compiled with fastmath off
(``compile_cache._compile``) and the twin's kernels have strict flags of their own. Here fresh processes, with
every compiled-code cache (the project's, PyTensor's, numba's) in the test's folder so that the first one
compiles everything, compare their draws or gradients bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nutpie")

from bioworkbench.twin import _kernels as K

SCRIPT = r"""
import hashlib, json, warnings
import numpy as np
warnings.simplefilter("ignore")
import bioworkbench as bw
from bioworkbench.models import compile_cache
from bioworkbench.twin import FedBatchTwin, _kernels as K
from bioworkbench.twin.calibrate import log_density
from numba.core.registry import CPUDispatcher

kernels = {n: o for n, o in vars(K).items() if isinstance(o, CPUDispatcher)}
camp = bw.simulate_campaign(4, random_seed=3)
twin = FedBatchTwin()
compiled = compile_cache.compile_nutpie(twin._build(twin._prepare(camp)), jitter=False)
f = log_density(compiled)
x0 = np.asarray(compiled.initial_point_func(0), dtype=np.float64)
rng = np.random.default_rng(0)
h = hashlib.sha256()
for i in range(4):
    lp, g = f(x0 + (0.0 if i == 0 else 0.1 * rng.standard_normal(x0.size)))
    h.update(np.float64(lp).tobytes())
    h.update(np.asarray(g, np.float64).tobytes())
print(json.dumps({
    "hash": h.hexdigest(),
    "stats": dict(compile_cache.STATS),
    "signatures": {n: [str(s) for s in d.signatures] for n, d in kernels.items() if d.signatures},
}))
"""


def _run_script(script: str, folder: Path) -> dict:
    # every cache of compiled code in the test's folder: the project's, PyTensor's and numba's (the
    # kernels' cache=True), so that the first process compiles everything whatever this machine ran before
    env = dict(
        os.environ,
        BIOWORKBENCH_CACHE_DIR=str(folder / "compiled"),
        PYTENSOR_FLAGS=f"base_compiledir={folder / 'pytensor'}",
        NUMBA_CACHE_DIR=str(folder / "numba"),
    )
    env.pop("BIOWORKBENCH_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_twin_kernels_have_strict_floating_point_flags():
    """No kernel may inherit a caller's fastmath: numba.njit(fastmath=False) on every generated kernel."""
    from numba.core.registry import CPUDispatcher

    kernels = [o for o in vars(K).values() if isinstance(o, CPUDispatcher)]
    assert len(kernels) >= 15
    assert all(k.targetoptions.get("fastmath") is False for k in kernels), [
        k.__name__ for k in kernels if k.targetoptions.get("fastmath") is not False
    ]


def test_twin_compiling_and_loading_processes_give_the_same_gradient(tmp_path):
    """One process compiles the twin into an empty cache, one loads it (they differed with the kernels' inherited
    fastmath, and so did a process that had compiled the kernels on their own before loading the twin)."""
    compiled = _run_script(SCRIPT, tmp_path)
    assert compiled["stats"]["miss"] == 1 and compiled["signatures"], compiled
    loaded = _run_script(SCRIPT, tmp_path)
    assert loaded["stats"]["hit"] == 1, loaded
    assert compiled["hash"] == loaded["hash"], (compiled, loaded)


TITER = r"""
import hashlib, json, warnings
import numpy as np
warnings.simplefilter("ignore")
import bioworkbench as bw
from bioworkbench.models import TiterModel, compile_cache

m = TiterModel().fit(bw.datasets.demo(), draws=100, tune=100, chains=2, random_seed=1)
post = m.idata["posterior"].to_dataset()
h = hashlib.sha256()
for k in sorted(post.data_vars):
    h.update(np.ascontiguousarray(post[k].values).tobytes())
print(json.dumps({"hash": h.hexdigest(), "stats": dict(compile_cache.STATS)}))
"""


def test_titer_fit_draws_are_those_of_the_compiling_process(tmp_path):
    """The titer model (PyTensor's own numba functions, no kernel of the project): a process that compiles
    everything and one that loads the model draw the same values for the seed (they differed with fastmath)."""
    compiled = _run_script(TITER, tmp_path)
    loaded = _run_script(TITER, tmp_path)
    assert (compiled["stats"]["miss"], loaded["stats"]["hit"]) == (1, 1), (compiled, loaded)
    assert compiled["hash"] == loaded["hash"]


def test_models_are_compiled_without_fastmath(monkeypatch):
    import nutpie
    import pytensor

    from bioworkbench.models import compile_cache as cc

    seen = []
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda model, **kw: seen.append(pytensor.config.numba__fastmath))
    cc._compile(object())
    assert seen == [False]
    assert cc._versions()["fastmath"].startswith("False")  # part of the key: entries compiled with it are not loaded
