"""The twin's compiled log density is one function of its inputs in every process (issue 19, point 3).

Found on the twin: the same fit gave other draws in a process that compiled the model than in one that
loaded it from the compile cache. The generated kernels took the fastmath flags of the PyTensor function
that first called them; every compiled model holds its own copy of each kernel, and a process runs the copy
it loaded first, so gradients differed in the last bits (3e-11), L-BFGS stopped at another start and NUTS
went elsewhere. Here three fresh processes evaluate the log density and its gradient at fixed points:
one compiles the model into an empty cache, one loads it, one first compiles every kernel on its own (as a
process that predicted or simulated before fitting does) and then loads it. All must agree bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nutpie")

from bioworkbench.twin import _kernels as K

SCRIPT = r"""
import hashlib, json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import bioworkbench as bw
from bioworkbench.models import compile_cache
from bioworkbench.twin import FedBatchTwin, _kernels as K
from bioworkbench.twin.calibrate import log_density
from numba.core.registry import CPUDispatcher

mode, signatures = sys.argv[1], json.loads(sys.argv[2])
kernels = {n: o for n, o in vars(K).items() if isinstance(o, CPUDispatcher)}
if mode == "preload":  # each kernel compiled on its own, for the signatures the model's compile used
    for name, sigs in signatures.items():
        for sig in sigs:
            kernels[name].compile(sig)
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


def _run(mode: str, folder: Path, signatures: dict[str, list[str]]) -> dict:
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
        [sys.executable, "-c", SCRIPT, mode, json.dumps(signatures)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_kernel_has_strict_floating_point_flags():
    """No kernel may inherit a caller's fastmath: numba.njit(fastmath=False) on every generated kernel."""
    from numba.core.registry import CPUDispatcher

    kernels = [o for o in vars(K).values() if isinstance(o, CPUDispatcher)]
    assert len(kernels) >= 15
    assert all(k.targetoptions.get("fastmath") is False for k in kernels), [
        k.__name__ for k in kernels if k.targetoptions.get("fastmath") is not False
    ]


def test_compiling_loading_and_preloading_processes_give_the_same_gradient(tmp_path):
    compiled = _run("compile", tmp_path, {})
    assert compiled["stats"]["miss"] == 1 and compiled["signatures"], compiled
    loaded = _run("load", tmp_path, {})
    assert loaded["stats"]["hit"] == 1, loaded
    preloaded = _run("preload", tmp_path, compiled["signatures"])
    assert preloaded["stats"]["hit"] == 1, preloaded
    assert np.unique([compiled["hash"], loaded["hash"], preloaded["hash"]]).size == 1, (compiled, loaded, preloaded)
