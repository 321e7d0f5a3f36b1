"""Compiled models that survive the process: nutpie's compiled model kept on disk, keyed on its graph.

Every model report runs in a kernel of its own, and every kernel used to compile its model again:
10-30 s for the growth model, 90 % of a model report's time (issue 19). :func:`compile_nutpie` is
what :meth:`bioworkbench.models.base.BayesModel.fit` calls instead of
``nutpie.compile_pymc_model``: the first process that compiles a model of a given graph writes the
compiled object to the cache directory; the next process with the same graph loads it.

What was measured (24-batch demo campaign, growth model, default priors, a fresh process each time,
2 shared cores under a load average of 5-13, so times are 2-5x those of a quiet machine;
``benchmarks/bench_cold_start.py`` repeats the end-to-end ones):

=========================================================  ==========================================
lever                                                      compile in a fresh process
=========================================================  ==========================================
(a) today, PyTensor's numba disk cache empty               101 s
(b) today, PyTensor's numba disk cache warm (its default)  25-34 s: 6-7 s graph, rewrites and PyTensor
                                                           functions, 22-28 s nutpie's two numba
                                                           ``cfunc`` wrappers (which link every
                                                           PyTensor function again)
(c) nutpie 0.16 ``compile_pymc_model(model, cache=True)``  no gain: its wrappers are closures over
                                                           uuid keys, so numba's index never matches;
                                                           it writes a new entry into site-packages
                                                           every time
(d) pickle / cloudpickle nutpie's compiled object as is    fails (numba ``CFunc`` objects, locks)
(d') that object with its ``cfunc`` libraries as object    1.3-2.0 s (build 0.8, key 0.02, load
     code (this module)                                    0.5-1.2); the draws for a seed are those
                                                           of the process that compiled it
(e) nutpie's JAX backend                                   not installed (no jax); it would also call
                                                           back into Python for every gradient
=========================================================  ==========================================

A Jupyter kernel restarted between two fits of the growth model: 28.7 s compile in the first kernel,
1.5 s after the restart.

PyTensor's numba cache (``config.numba__cache``, on by default, under ``config.base_compiledir``)
already holds the compiled PyTensor functions; what it cannot skip is the graph building, the
rewrites and nutpie's wrappers, which link every function again. So the object kept here is the
whole :class:`nutpie.compile_pymc.CompiledPyMCModel`: its two C callbacks as numba's serialized
object code (what numba's own cache stores), its initial-point function (a PyTensor function,
pickled with the shared variables it reads, so that setting a ``pm.Data`` value still moves the
chains' start) and its shapes. The PyTensor logp and expand functions, which nutpie only uses to
compile, are left out.

The key (:func:`model_key`) is a sha256 of everything that changes the compiled code:

* the model's graph, walked node by node: every op with its parameters, every constant with its
  values (data that a model bakes into the graph as constants is part of the key), every shared
  variable (``pm.Data``) with its name, type and the shape of its current value (not its values:
  they are set for each fit with nutpie's ``with_data``), the transforms, the initial-value
  strategies, the deterministics and potentials, ``check_bounds``, the coords' names and sizes;
* the source of every op that is not PyTensor's or PyMC's: the module whose file defines its
  methods and, for an op of bioworkbench, the bioworkbench modules that module's names come from
  (the growth likelihood's op: ``growth_likelihood.py`` only; the twin's op: ``pt_op.py``, its
  kernels, its solver and the errors). Not the whole package: an edit of the sampler defaults
  must not throw every compiled model away;
* the versions of Python, numpy, numba, llvmlite, PyTensor, PyMC, nutpie, cloudpickle and
  bioworkbench, PyTensor's ``floatX``, the numba ``fastmath`` flag models are compiled with (off),
  and the CPU numba compiles for (its target triple, name and features: object code of another CPU
  is never loaded).

The coords' labels are not in the key: a hit takes its dims and coords from the model being fitted.

Correctness: an entry holds a header (format, key, versions, payload size and sha256) and the
payload. An entry whose header, size, checksum or key does not match, or that does not unpickle, is
logged (``logging``, level INFO: no warning reaches a report) and removed, and the model is
compiled again; it is never used. A model whose compiled code holds process addresses (numba's
"dynamic globals", e.g. large constant arrays) is compiled every time and not written. nutpie bakes
the value of every ``pm.Data`` at compile time into its callbacks as a placeholder (replaced by the
fit's data at run time), and numba refers to an array over 1e6 bytes by its address; unless LLVM
drops the unused placeholder (it did for a 1-D array, not for a 2-D one beside other ``pm.Data``),
the model is not kept. The log line names such arrays; the titer model's dense segment matrix was
one (issue 19).

Concurrency: an entry is written to a temporary file in the cache folder and renamed into place
(``os.replace``, atomic), so a reader sees a whole entry or none; a per-key file lock (``filelock``,
else ``fcntl``) is held while compiling, so a second report worker that needs the same model waits
for the first one's entry instead of compiling it again (up to :data:`LOCK_TIMEOUT_S`).

Where: ``$BIOWORKBENCH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/bioworkbench/compiled`` (default
``~/.cache/bioworkbench/compiled``; the platform's user cache folder elsewhere);
:func:`configure` sets it (or disables the cache) from code and wins over the environment.
``BIOWORKBENCH_CACHE=0`` disables it. Entries are pickles: the folder is created private (0700),
and nobody else should be able to write to it. :func:`clear` empties it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["LOCK_TIMEOUT_S", "STATS", "cache_dir", "clear", "compile_nutpie", "configure", "model_key"]

log = logging.getLogger(__name__)

#: the environment variable naming the cache folder
ENV_DIR = "BIOWORKBENCH_CACHE_DIR"
#: the environment variable that disables the cache when ``0`` (or ``false``, ``no``, ``off``)
ENV_ENABLED = "BIOWORKBENCH_CACHE"
#: the layout of an entry; raise it when what is stored changes
FORMAT = 1
#: PyTensor's numba ``fastmath`` while compiling: off, so that a compiled model's draws for a seed do
#: not depend on whether this process compiled its functions or loaded them (see :func:`_compile`)
STRICT_FASTMATH = False
#: how long a process waits for another one compiling the same model before compiling it itself
LOCK_TIMEOUT_S = 600.0
#: counts of this process: ``hit`` (loaded), ``miss`` (compiled and written), ``rejected`` (an entry
#: was found but stale or corrupt, and rebuilt), ``uncacheable`` (compiled, not written), ``disabled``
STATS: dict[str, int] = {"hit": 0, "miss": 0, "rejected": 0, "uncacheable": 0, "disabled": 0}

_MAGIC = b"BWCOMPILED\n"
_SUFFIX = ".nutpie"
_settings: dict[str, Any] = {"directory": None, "enabled": None}
# entries loaded by this process, by key: the same object code is never loaded twice
_LOADED: dict[str, Any] = {}
_PATCH_LOCK = threading.Lock()


def configure(*, directory: str | os.PathLike | None = None, enabled: bool | None = None) -> None:
    """Set the cache folder and/or switch the cache on or off for this process (wins over the environment).

    Parameters
    ----------
    directory
        The cache folder; ``None`` leaves the setting as it is.
    enabled
        ``False`` compiles every model anew; ``True`` uses the cache even if ``BIOWORKBENCH_CACHE=0``;
        ``None`` leaves the setting as it is.
    """
    if directory is not None:
        _settings["directory"] = Path(directory).expanduser()
    if enabled is not None:
        _settings["enabled"] = bool(enabled)


def cache_dir() -> Path | None:
    """The folder compiled models are kept in, or ``None`` when the cache is disabled.

    Returns
    -------
    pathlib.Path or None
        :func:`configure`'s folder, else ``$BIOWORKBENCH_CACHE_DIR``, else
        ``$XDG_CACHE_HOME/bioworkbench/compiled`` (``~/.cache/...``; the platform's user cache
        folder on macOS and Windows). ``None`` if :func:`configure` disabled the cache or
        ``$BIOWORKBENCH_CACHE`` is ``0``.
    """
    on = _settings["enabled"]
    if on is None:
        on = os.environ.get(ENV_ENABLED, "1").strip().lower() not in ("0", "false", "no", "off")
    if not on:
        return None
    if _settings["directory"] is not None:
        return _settings["directory"]
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    if sys.platform.startswith("linux") or os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    else:
        import platformdirs  # a requirement of nutpie

        base = Path(platformdirs.user_cache_dir())
    return base / "bioworkbench" / "compiled"


def clear(directory: str | os.PathLike | None = None) -> int:
    """Remove every compiled model from the cache folder.

    Parameters
    ----------
    directory
        The folder; default :func:`cache_dir`.

    Returns
    -------
    int
        The number of entries removed.
    """
    folder = Path(directory) if directory is not None else cache_dir()
    _LOADED.clear()
    if folder is None or not folder.is_dir():
        return 0
    n = 0
    for p in folder.glob(f"*{_SUFFIX}"):
        p.unlink(missing_ok=True)
        n += 1
    return n


# -- the key ------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    """Versions and settings that change compiled code (an entry of other versions is never loaded)."""
    import importlib.metadata as md
    import platform

    import pytensor
    from numba.core.registry import cpu_target

    out = {"format": str(FORMAT), "python": sys.version, "machine": platform.machine()}
    for name in ("numpy", "numba", "llvmlite", "pytensor", "pymc", "nutpie", "cloudpickle", "bioworkbench"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:  # pragma: no cover - bioworkbench run from a bare checkout
            out[name] = "?"
    out["cpu"] = repr(cpu_target.target_context.codegen().magic_tuple())
    out["floatX"] = str(pytensor.config.floatX)
    out["fastmath"] = f"{STRICT_FASTMATH} (set by compile_nutpie)"
    return out


def _source_modules(module_name: str) -> list[str]:
    """An op's module and, transitively, the bioworkbench modules its module-level names come from
    (the twin's op calls its kernels and solver in sibling modules)."""
    found, todo = [], [module_name]
    while todo:
        name = todo.pop()
        if name in found or name not in sys.modules:
            continue
        found.append(name)
        for value in list(vars(sys.modules[name]).values()):
            other = value.__name__ if isinstance(value, type(sys)) else getattr(value, "__module__", None)
            if isinstance(other, str) and other.startswith("bioworkbench.") and other not in found:
                todo.append(other)
    return sorted(found)


def _op_module(op_type: type) -> str:
    """The module whose file defines an op's methods (an op class may claim another ``__module__``
    to be found by name: the growth likelihood's op is defined in ``growth_likelihood``)."""
    for attr in vars(op_type).values():
        code = getattr(attr, "__code__", None)
        if code is not None:
            for name, mod in list(sys.modules.items()):
                if getattr(mod, "__file__", None) == code.co_filename:
                    return name
            break
    return op_type.__module__


def _source_digest(module_name: str, seen: dict[str, str]) -> str:
    """sha256 of the source files an op's numba code comes from (:func:`_source_modules`; only the
    op's own module when it is not part of bioworkbench)."""
    if module_name not in seen:
        h = hashlib.sha256()
        names = _source_modules(module_name) if module_name.startswith("bioworkbench.") else [module_name]
        for name in names:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file:
                h.update(name.encode())
                h.update(Path(file).read_bytes())
        seen[module_name] = h.hexdigest()
    return seen[module_name]


def _canon(obj: Any, depth: int = 0) -> Any:
    """A JSON-able, address-free description of an op parameter (props, arrays, types, functions)."""
    import numpy as np

    if depth > 6:
        return type(obj).__qualname__
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, bytes):
        return hashlib.sha256(obj).hexdigest()
    if isinstance(obj, np.ndarray | np.generic):
        a = np.asarray(obj)
        data = a.tobytes() if a.dtype != object else repr(a.tolist()).encode()
        return ["array", str(a.dtype), list(a.shape), hashlib.sha256(data).hexdigest()]
    if isinstance(obj, np.dtype):
        return ["dtype", str(obj)]
    if isinstance(obj, list | tuple):
        return [type(obj).__name__, [_canon(x, depth + 1) for x in obj]]
    if isinstance(obj, dict):
        return ["dict", sorted((str(k), _canon(v, depth + 1)) for k, v in obj.items())]
    if isinstance(obj, frozenset | set):
        return ["set", sorted(json.dumps(_canon(x, depth + 1), sort_keys=True) for x in obj)]
    if isinstance(obj, slice):
        return ["slice", _canon(obj.start), _canon(obj.stop), _canon(obj.step)]
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(obj, type):
        return ["type", f"{obj.__module__}.{obj.__qualname__}"]
    if callable(obj) and hasattr(obj, "__code__"):
        return ["function", f"{obj.__module__}.{obj.__qualname__}", hashlib.sha256(obj.__code__.co_code).hexdigest()]
    props = getattr(obj, "__props__", None)
    if props is not None:
        return [kind, [(p, _canon(getattr(obj, p, None), depth + 1)) for p in props]]
    text = repr(obj)
    if " at 0x" not in text:
        return [kind, text]
    state = getattr(obj, "__dict__", None)
    return [kind, _canon(dict(state), depth + 1) if state is not None else type(obj).__qualname__]


def _graph_description(model: Any) -> dict[str, Any]:
    """Everything of a PyMC model that nutpie's compiled code depends on, without addresses or ids."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import toposort

    root_modules = ("pytensor", "pymc", "numpy", "builtins")
    seen_sources: dict[str, str] = {}
    ids: dict[Any, int] = {}
    leaves: list[Any] = []
    nodes: list[Any] = []

    def ref(v: Any) -> int:
        if v not in ids:
            ids[v] = len(ids)
            if v.owner is None:
                if isinstance(v, Constant):
                    leaves.append(["constant", str(v.type), _canon(v.data)])
                elif isinstance(v, SharedVariable):
                    value = v.get_value(borrow=True)
                    leaves.append(["shared", v.name, str(v.type), list(getattr(value, "shape", ()))])
                else:
                    leaves.append(["input", v.name, str(v.type)])
        return ids[v]

    outputs = [*model.free_RVs, *model.observed_RVs, *model.deterministics, *model.potentials]
    outputs += [model.rvs_to_values[rv] for rv in model.observed_RVs]
    inits = [v for v in model.rvs_to_initial_values.values() if hasattr(v, "owner")]
    for node in toposort(outputs + inits):
        op = node.op
        mod = type(op).__module__
        source = None if mod.split(".")[0] in root_modules else _source_digest(_op_module(type(op)), seen_sources)
        nodes.append([_canon(op), source, [ref(i) for i in node.inputs], [str(o.type) for o in node.outputs]])
        for o in node.outputs:
            ref(o)
    for v in outputs + inits:
        ref(v)

    def name_ref(v: Any) -> Any:
        return [v.name, ids.get(v)]

    return {
        "leaves": leaves,
        "nodes": nodes,
        "free": [name_ref(v) for v in model.free_RVs],
        "observed": [name_ref(v) for v in model.observed_RVs],
        "deterministics": [name_ref(v) for v in model.deterministics],
        "potentials": [name_ref(v) for v in model.potentials],
        "values": [[rv.name, model.rvs_to_values[rv].name, str(model.rvs_to_values[rv].type)] for rv in model.free_RVs],
        "transforms": [[rv.name, _canon(model.rvs_to_transforms.get(rv))] for rv in model.free_RVs],
        "initvals": [
            [rv.name, ids.get(v) if hasattr(v, "owner") else _canon(v)] for rv, v in model.rvs_to_initial_values.items()
        ],
        "dims": sorted((k, list(v)) for k, v in model.named_vars_to_dims.items()),
        "coords": sorted((k, None if v is None else len(v)) for k, v in model.coords.items()),
        "check_bounds": bool(model.check_bounds),
    }


def model_key(model: Any) -> str:
    """The cache key of a PyMC model: sha256 of its graph (:func:`_graph_description`) and the versions.

    Parameters
    ----------
    model
        A ``pymc.Model``.

    Returns
    -------
    str
        64 hexadecimal digits. Models that differ in anything the compiled code depends on (an op,
        a prior parameter, a constant's values, a shape, a transform, the source of a custom op, a
        package version) have different keys; two builds of the same model have the same key.
    """
    text = json.dumps({"graph": _graph_description(model), "versions": _versions()}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


# -- storing the compiled object ----------------------------------------------------------------


class _StoredCFunc:
    """A numba C callback rebuilt from its serialized object code; what nutpie reads is ``address``."""

    def __init__(self, wrapper_name: str, reduced: tuple) -> None:
        from numba.core import compiler
        from numba.core.registry import cpu_target

        ctx = cpu_target.target_context
        ctx.refresh()  # numba's runtime (NRT) symbols, as numba's own cache does before loading
        self._reduced = reduced
        self._cres = compiler.CompileResult._rebuild(ctx, *reduced)
        self._library = self._cres.library
        self.native_name = wrapper_name
        self.address = self._library.get_pointer_to_function(wrapper_name)
        self._sig = reduced[3]

    def __reduce__(self) -> tuple:
        return (_StoredCFunc, (self.native_name, self._reduced))

    @property
    def ctypes(self) -> Any:
        """A ctypes function object of the callback (as numba's ``CFunc.ctypes``)."""
        import ctypes

        from numba.core.typing.ctypes_utils import to_ctypes

        functype = ctypes.CFUNCTYPE(to_ctypes(self._sig.return_type), *[to_ctypes(t) for t in self._sig.args])
        return functype(self.address)


def _new_lock(kind: str) -> Any:
    return threading.RLock() if kind == "RLock" else threading.Lock()


def _pickler(buf: io.BytesIO) -> Any:
    """A cloudpickle pickler that stores numba C callbacks as object code and locks as new locks."""
    import cloudpickle  # a requirement of PyMC
    from numba.core.ccallback import CFunc

    lock_types = {type(threading.Lock()): "Lock", type(threading.RLock()): "RLock"}

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, CFunc):
                cres = getattr(obj, "_bw_cres", None)
                if cres is None:
                    raise pickle.PicklingError("a numba C callback compiled outside compile_nutpie")
                return (_StoredCFunc, (obj.native_name, cres._reduce()))
            if type(obj) in lock_types:
                return (_new_lock, (lock_types[type(obj)],))
            return super().reducer_override(obj)

    return Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)


@contextlib.contextmanager
def _keep_compile_results() -> Iterator[None]:
    """While active, numba's C callbacks keep their compile result (``_bw_cres``), which is what
    numba's cache serializes; ``CFunc`` itself keeps only the finished library."""
    from numba.core.ccallback import CFunc

    with _PATCH_LOCK:
        original = CFunc._compile_uncached

        def keep(self: Any) -> Any:
            cres = original(self)
            self._bw_cres = cres
            return cres

        CFunc._compile_uncached = keep
        try:
            yield
        finally:
            CFunc._compile_uncached = original


def _payload(compiled: Any) -> bytes | None:
    """The pickled compiled model, or ``None`` when it cannot be kept (logged)."""
    for f in (compiled.compiled_logp_func, compiled.compiled_expand_func):
        cres = getattr(f, "_bw_cres", None)
        if cres is None or cres.library.has_dynamic_globals:
            # nutpie bakes each pm.Data's value at compile time into its callbacks (a placeholder
            # it replaces at run time); numba refers to an array over 1e6 bytes by its address
            big = [
                f"{getattr(var, 'name', key)} ({compiled.shared_data[key].nbytes:,} bytes)"
                for var, key in compiled.shared_var_keys.items()
                if compiled.shared_data[key].nbytes > 10**6
            ]
            log.info(
                "compile cache: the compiled model holds process addresses (numba dynamic globals%s); not kept",
                f"; pm.Data over 1e6 bytes, the likely cause: {', '.join(big)}" if big else "",
            )
            return None
    slim = dataclasses.replace(compiled, logp_func=None, expand_func=None)
    buf = io.BytesIO()
    try:
        _pickler(buf).dump(slim)
    except Exception as exc:  # an object of the model that does not pickle: compile every time
        log.info("compile cache: the compiled model does not pickle (%s: %s); not kept", type(exc).__name__, exc)
        return None
    return buf.getvalue()


def _write(path: Path, key: str, payload: bytes, versions: dict[str, str]) -> None:
    """Write an entry atomically: a temporary file in the same folder, then ``os.replace``."""
    header = {
        "format": FORMAT,
        "key": key,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "versions": versions,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read(path: Path, key: str) -> Any:
    """The compiled model of an entry, ``None`` if there is none; a bad entry is logged and removed."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        if not raw.startswith(_MAGIC):
            raise ValueError("not an entry of this cache (no header)")
        end = raw.index(b"\n", len(_MAGIC))
        header = json.loads(raw[len(_MAGIC) : end])
        payload = raw[end + 1 :]
        if header.get("format") != FORMAT or header.get("key") != key:
            raise ValueError(f"format {header.get('format')} or key differs")
        if header.get("versions") != _versions():
            raise ValueError("written by other package versions")
        if len(payload) != header.get("size"):
            raise ValueError(f"{len(payload)} bytes of payload, the header says {header.get('size')} (truncated)")
        if hashlib.sha256(payload).hexdigest() != header.get("sha256"):
            raise ValueError("payload checksum differs (damaged)")
        return pickle.loads(payload)
    except Exception as exc:
        STATS["rejected"] += 1
        log.info("compile cache: entry %s not used, rebuilt: %s: %s", path.name, type(exc).__name__, exc)
        with contextlib.suppress(OSError):
            path.unlink()
        return None


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """A per-entry file lock (another process compiling the same model); given up after the timeout."""
    lock_path = path.with_suffix(".lock")
    try:
        import filelock  # a requirement of PyTensor
    except ImportError:  # pragma: no cover - fcntl where filelock is missing (POSIX only)
        filelock = None
    if filelock is not None:
        lock = filelock.FileLock(str(lock_path), timeout=LOCK_TIMEOUT_S)
        try:
            lock.acquire()
        except filelock.Timeout:
            log.info("compile cache: %s still locked after %.0f s; compiling here", lock_path.name, LOCK_TIMEOUT_S)
            yield
            return
        try:
            yield
        finally:
            lock.release()
        return
    import fcntl  # pragma: no cover

    with open(lock_path, "a") as f:  # pragma: no cover
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _for_model(compiled: Any, model: Any) -> Any:
    """A loaded compiled model with its user data pointing at its own arrays and this model's coords."""
    from nutpie.compile_pymc import _prepare_dims_and_coords, update_user_data

    user_data = update_user_data(compiled.user_data.copy(), compiled.shared_data)
    dims, coords = _prepare_dims_and_coords(model, compiled.shape_info, compiled.reparameterized_names)
    return dataclasses.replace(compiled, user_data=user_data, dims=dims, _coords=coords)


def _compile(model: Any, jitter: bool = True, **kwargs: Any) -> Any:
    """nutpie's compile of ``model`` with strict floating point (PyTensor's numba ``fastmath`` off).

    With fastmath (PyTensor's default) numba may contract and reassociate, and every compiled
    function holds its own copy of the functions it calls; a process runs the copy of each it loaded
    first. A process that compiled PyTensor's functions afresh therefore drew other values for the
    same seed than one that loaded the model from this cache (measured: growth and titer models of
    the demo, twin). Strict flags make every copy the same function of its inputs.
    """
    import nutpie
    import pytensor

    if not jitter:
        kwargs["jitter_rvs"] = set()
    with _keep_compile_results(), pytensor.config.change_flags(numba__fastmath=STRICT_FASTMATH):
        return nutpie.compile_pymc_model(model, **kwargs)


def compile_nutpie(model: Any, *, jitter: bool = True, **kwargs: Any) -> Any:
    """nutpie's compiled model of ``model``, from the disk cache when a process compiled it before.

    Parameters
    ----------
    model
        A ``pymc.Model``.
    jitter
        ``False``: the initial-point function gives the model's initial point without nutpie's
        random jitter (``jitter_rvs=set()``; part of the key).
    **kwargs
        Options of ``nutpie.compile_pymc_model``; any given compiles without the cache.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        The compiled model; one loaded from the cache has the dims and coords of ``model`` and no
        PyTensor logp/expand functions (nutpie's sampler does not use them). Its data are those it
        was compiled with: set this fit's ``pm.Data`` values with ``with_data`` (as
        :meth:`~bioworkbench.models.base.BayesModel.fit` does).

    Notes
    -----
    The draws of a loaded model for a given seed are those of the process that compiled it (the
    same machine code and initial-point function). Models are compiled with PyTensor's numba
    ``fastmath`` off: with it on, a process that compiled PyTensor's functions afresh drew other
    values than the processes that loaded the model (see :func:`_compile`).
    """
    folder = cache_dir()
    if folder is None or kwargs:
        STATS["disabled"] += 1
        return _compile(model, jitter, **kwargs)
    try:
        key = model_key(model)
        if not jitter:
            key = hashlib.sha256(f"{key} without jitter".encode()).hexdigest()
    except Exception as exc:  # a graph this module cannot describe: no key, no cache
        STATS["uncacheable"] += 1
        log.info("compile cache: no key for this model (%s: %s); compiling", type(exc).__name__, exc)
        return _compile(model, jitter)
    if key in _LOADED:
        STATS["hit"] += 1
        return _for_model(_LOADED[key], model)
    path = folder / f"{key[:40]}{_SUFFIX}"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        STATS["uncacheable"] += 1
        log.info("compile cache: cannot create %s (%s); compiling", folder, exc)
        return _compile(model, jitter)
    loaded = _read(path, key)
    if loaded is None:
        with _lock(path):
            loaded = _read(path, key)  # written by another process while this one waited
            if loaded is None:
                compiled = _compile(model, jitter)
                payload = _payload(compiled)
                if payload is None:
                    STATS["uncacheable"] += 1
                    return compiled
                try:
                    _write(path, key, payload, _versions())
                except OSError as exc:
                    log.info("compile cache: cannot write %s (%s)", path, exc)
                STATS["miss"] += 1
                log.info("compile cache: compiled and kept %s", path.name)
                return compiled
    STATS["hit"] += 1
    log.info("compile cache: loaded %s", path.name)
    _LOADED[key] = loaded
    return _for_model(loaded, model)
