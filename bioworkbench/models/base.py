"""The contract every Bayesian model of bioworkbench follows.

* ``Model(priors=None, sampler=None)`` is cheap: it stores configuration only. Default priors are
  data (:class:`Prior`, with unit and reason) and can be overridden one by one.
* ``build(data)`` returns the ``pm.Model`` without sampling; ``sample_prior_predictive`` works
  before fitting.
* ``fit(data, *, draws, tune, chains, random_seed)`` samples and keeps the posterior
  (``xarray.DataTree``) on ``.idata``. The sampler is nutpie where it is installed (compiled models
  are cached and reused across fits of the same structure), PyMC's NUTS otherwise; the choice and
  its timings are recorded in ``.sampling``.
* ``predict`` and ``summary`` return tidy polars frames with ``mean, lower, upper, prob``.
* ``diagnostics()`` returns divergences, max r̂, min ESS and the issues found.
* ``save(path)`` / :func:`load` round-trip through netCDF with the model type, priors, sampler
  settings, data, data hash and package version in its attributes.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, ModelNotFittedError
from bioworkbench.schema import suggest

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["BayesModel", "Prior", "diagnostics_markdown", "load"]

# PyTensor warns once, with a code path and a configuration recipe, when its C backend finds no BLAS to
# link; the models sample through nutpie/numba and numpy's own BLAS, so the warning is noise in reports.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning)

DEFAULT_SAMPLER: dict[str, Any] = {
    "backend": "auto",  # "auto" (nutpie if installed, else pymc), "nutpie" or "pymc"
    "draws": 1000,
    "tune": 1000,
    "chains": 4,
    "target_accept": 0.9,  # PyMC NUTS only
    "cores": None,
    "adaptation": "diag",  # nutpie mass-matrix adaptation: "diag" or "low_rank"
}
#: thresholds under which :meth:`BayesModel.diagnostics` raises an issue
RHAT_MAX = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class Prior:
    """A prior: a PyMC distribution name, its parameters (natural scale), unit and reason.

    Attributes
    ----------
    dist
        The name of a PyMC distribution (``"Normal"``, ``"HalfNormal"``, ...).
    params
        Its parameters on the natural scale (``{"mu": 0.0, "sigma": 1.0}``).
    unit
        The unit of the parameter.
    why
        The reason for the choice, shown with the priors.
    """

    dist: str
    params: dict[str, float] = field(default_factory=dict)
    unit: str = ""
    why: str = ""

    def create(self, name: str, **kwargs: Any) -> Any:
        """The PyMC random variable of this prior, inside a model context.

        Parameters
        ----------
        name
            The variable's name in the model.
        **kwargs
            Passed to the distribution (``dims``, ``shape``, ...).

        Returns
        -------
        pytensor.tensor.TensorVariable
            The random variable.
        """
        import pymc as pm

        return getattr(pm, self.dist)(name, **self.params, **kwargs)

    @classmethod
    def coerce(cls, obj: Prior | Mapping[str, Any], *, name: str) -> Prior:
        """A :class:`Prior` from a Prior or a mapping with ``dist`` (as stored in a saved model).

        Parameters
        ----------
        obj
            A Prior, or ``{"dist": ..., "params": {...}, "unit": ..., "why": ...}`` (parameters may also be
            given at the top level).
        name
            The prior's name, for the error message.

        Returns
        -------
        Prior

        Raises
        ------
        ConfigError
            ``obj`` is neither a Prior nor a mapping with ``dist``.
        """
        if isinstance(obj, Prior):
            return obj
        if isinstance(obj, Mapping) and "dist" in obj:
            d = dict(obj)
            return cls(
                d.pop("dist"),
                dict(d.pop("params", {})) | {k: v for k, v in d.items() if k not in ("unit", "why")},
                d.get("unit", ""),
                d.get("why", ""),
            )
        raise ConfigError(f"prior {name!r}: give a Prior or a mapping with 'dist' and its parameters; got {obj!r}.")


_COMPILED: dict[tuple, Any] = {}
#: every model class by its ``model_type`` (filled by ``BayesModel.__init_subclass__``), for :func:`load`
MODEL_TYPES: dict[str, type[BayesModel]] = {}


class BayesModel:
    """Base class: configuration, sampling, diagnostics and persistence shared by every model.

    Parameters
    ----------
    priors
        Overrides of :attr:`default_priors`, by name (a :class:`Prior` or a mapping).
    sampler
        Overrides of the sampler defaults (``draws``, ``tune``, ``chains``, ...).
    """

    model_type: ClassVar[str] = "BayesModel"
    default_priors: ClassVar[dict[str, Prior]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        MODEL_TYPES[cls.model_type] = cls

    def __init__(
        self, priors: Mapping[str, Prior | Mapping[str, Any]] | None = None, sampler: Mapping[str, Any] | None = None
    ) -> None:
        priors = dict(priors or {})
        unknown = [k for k in priors if k not in self.default_priors]
        if unknown:
            raise ConfigError(
                f"{type(self).__name__}: unknown prior(s) {', '.join(map(repr, unknown))}. "
                + suggest(unknown[0], self.default_priors, what="Priors of this model")
            )
        self.priors: dict[str, Prior] = {
            k: Prior.coerce(priors.get(k, v), name=k) for k, v in self.default_priors.items()
        }
        sampler = dict(sampler or {})
        bad = [k for k in sampler if k not in DEFAULT_SAMPLER]
        if bad:
            raise ConfigError(
                f"{type(self).__name__}: unknown sampler setting(s) {', '.join(map(repr, bad))}. "
                + suggest(bad[0], DEFAULT_SAMPLER, what="Settings")
            )
        if sampler.get("backend", "auto") not in ("auto", "nutpie", "pymc"):
            raise ConfigError(f"sampler backend must be 'auto', 'nutpie' or 'pymc'; got {sampler['backend']!r}.")
        self.sampler: dict[str, Any] = DEFAULT_SAMPLER | sampler
        self.idata: Any = None
        self.data: dict[str, Any] | None = None
        self.sampling: dict[str, Any] = {}

    # -- to implement ---------------------------------------------------------------------
    def _prepare(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        """Turn user data into arrays and coordinates (JSON-serialisable: lists, numbers, str)."""
        raise NotImplementedError

    def _build(self, d: dict[str, Any]) -> Any:
        """The ``pm.Model`` for prepared data ``d``."""
        raise NotImplementedError

    def _structure(self, d: dict[str, Any]) -> tuple:
        """What decides the compiled model's shape (cache key); data that only changes values is not part of it."""
        return (json.dumps(d, sort_keys=True, default=str),)

    def _shared_data(self, d: dict[str, Any]) -> dict[str, np.ndarray]:
        """``pm.Data`` values that may change between fits without recompiling."""
        return {}

    # -- contract -----------------------------------------------------------------------------
    def build(self, data: Any, **kwargs: Any) -> Any:
        """The PyMC model for ``data``, without sampling.

        Parameters
        ----------
        data
            What the model's ``fit`` takes.
        **kwargs
            The options of the model's data preparation.

        Returns
        -------
        pymc.Model
        """
        d = self._prepare(data, **kwargs)
        self.data = d
        return self._build(d)

    def sample_prior_predictive(
        self, data: Any = None, *, draws: int = 500, random_seed: int | None = None, **kwargs: Any
    ) -> Any:
        """Draws from the prior and prior predictive (works before :meth:`fit`).

        Parameters
        ----------
        data
            What the model's ``fit`` takes; ``None`` uses the data of the last fit or build.
        draws
            Number of draws.
        random_seed
            Seed of the draws.
        **kwargs
            The options of the model's data preparation.

        Returns
        -------
        xarray.DataTree
            Groups ``prior`` and, where the model simulates its observations, ``prior_predictive``.

        Raises
        ------
        ModelNotFittedError
            No ``data`` given and none from an earlier fit.
        """
        import pymc as pm

        draws = _positive_int(draws, "draws", type(self).__name__, method="sample_prior_predictive")
        if random_seed is not None:
            random_seed = _positive_int(
                random_seed, "random_seed", type(self).__name__, zero=True, method="sample_prior_predictive"
            )
        if data is None and self.data is None:
            raise ModelNotFittedError(
                f"{type(self).__name__}.sample_prior_predictive needs data (the design of the observations)."
            )
        import warnings

        import xarray as xr

        model = self.build(data, **kwargs) if data is not None else self._build(self.data)
        with warnings.catch_warnings():
            # the likelihood is a masked Potential; the observations' prior predictive is drawn below
            warnings.filterwarnings("ignore", message="The effect of Potentials")
            prior = pm.sample_prior_predictive(draws=draws, model=model, random_seed=random_seed)
        sim = self._simulate_observations(prior["prior"].to_dataset(), np.random.default_rng(random_seed))
        if sim is not None:
            prior["prior_predictive"] = xr.DataTree(dataset=sim)
        return prior

    def _simulate_observations(self, prior: Any, rng: np.random.Generator) -> Any:
        """Prior predictive draws of the observations from prior parameter draws (``None``: none)."""
        return None

    def fit(
        self,
        data: Any,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
        **kwargs: Any,
    ) -> BayesModel:
        """Sample the posterior; keep it on ``.idata`` and the sampler record on ``.sampling``.

        Each model documents its own options in its own ``fit``; this generic form passes
        ``kwargs`` to the model's data preparation.

        Parameters
        ----------
        data
            What the model fits (each model says).
        draws, tune, chains
            Posterior draws and tuning steps per chain, and the number of chains (default: the
            sampler settings).
        random_seed
            Seed of the sampler.
        progressbar
            Show the sampler's progress bar.
        **kwargs
            The options of the model's data preparation.

        Returns
        -------
        BayesModel
            The model itself, fitted.
        """
        return self._fit(
            data, draws=draws, tune=tune, chains=chains, random_seed=random_seed, progressbar=progressbar, **kwargs
        )

    def _fit(
        self,
        data: Any,
        *,
        draws: int | None = None,
        tune: int | None = None,
        chains: int | None = None,
        random_seed: int | None = None,
        progressbar: bool = False,
        **kwargs: Any,
    ) -> BayesModel:
        """Prepare ``data``, sample, keep the posterior and the sampler record, warn if it did not converge.

        Reproducibility: the same data, priors, sampler settings and ``random_seed`` give the same
        draws whether the compiled model is new or comes from the in-process cache. A cached model
        is given every ``pm.Data`` value of this fit (not only those :meth:`_shared_data` names:
        the others are read from the model built for this fit), and its initial-point function
        reads the same values, so neither the likelihood nor the starting point can keep data from
        an earlier fit of the same structure.
        """
        d = self._prepare(data, **kwargs)
        self.data = d
        draws = _positive_int(draws or self.sampler["draws"], "draws", type(self).__name__)
        tune = tune if tune is not None else self.sampler["tune"]
        tune = _positive_int(1000 if tune is None else tune, "tune", type(self).__name__, zero=True)
        chains = _positive_int(chains or self.sampler["chains"], "chains", type(self).__name__)
        if random_seed is not None:
            random_seed = _positive_int(random_seed, "random_seed", type(self).__name__, zero=True)
        backend = self._backend()
        t0 = time.perf_counter()
        if backend == "nutpie":
            import nutpie

            key = (
                type(self).__name__,
                self._structure(d),
                json.dumps({k: asdict(v) for k, v in self.priors.items()}, sort_keys=True),
            )
            compiled = _COMPILED.get(key)
            cached = compiled is not None
            if compiled is None:
                compiled = nutpie.compile_pymc_model(self._build(d))
                _COMPILED[key] = compiled
            compiled = _with_fit_data(compiled, self._shared_data(d), lambda: self._build(d))
            t1 = time.perf_counter()
            idata = nutpie.sample(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                seed=random_seed,
                progress_bar=progressbar,
                cores=self.sampler["cores"] or min(chains, 4),
                save_warmup=False,
                adaptation=self.sampler["adaptation"],
                target_accept=getattr(self, "nutpie_target_accept", 0.8),  # nutpie's default unless a model sets one
            )
            t2 = time.perf_counter()
        else:
            import pymc as pm

            cached = False
            model = self._build(d)
            t1 = time.perf_counter()
            idata = pm.sample(
                nuts_sampler="pymc",  # PyMC 6 would otherwise hand the model to nutpie
                draws=draws,
                tune=tune,
                chains=chains,
                random_seed=random_seed,
                model=model,
                target_accept=self.sampler["target_accept"],
                progressbar=progressbar,
                cores=self.sampler["cores"] or min(chains, 4),
                compute_convergence_checks=False,
            )
            t2 = time.perf_counter()
        self.idata = idata
        self.sampling = {
            "backend": backend,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "random_seed": random_seed,
            "adaptation": self.sampler["adaptation"] if backend == "nutpie" else "jitter+adapt_diag",
            "target_accept": getattr(self, "nutpie_target_accept", 0.8)
            if backend == "nutpie"
            else self.sampler["target_accept"],
            "compiled_from_cache": cached,
            "compile_s": round(t1 - t0, 3),
            "sample_s": round(t2 - t1, 3),
            # what decides the draws: the data, the priors, the settings above and these versions
            # (the compile cache does not: see _fit)
            "data_hash": self.data_hash()[:16],
            "versions": _versions(backend),
        }
        self._warn_if_not_converged()
        return self

    def _warn_if_not_converged(self) -> None:
        """A :class:`~bioworkbench.errors.BioWorkbenchWarning` when the chains disagree or diverged."""
        d = self.diagnostics()
        bad = d["divergences"] > 0 or (np.isfinite(d["max_rhat"]) and d["max_rhat"] > RHAT_MAX)
        if bad:
            warnings.warn(
                f"{type(self).__name__} did not converge: "
                + " ".join(i for i in d["issues"] if not i.startswith("The effective sample size"))
                + (" " + " ".join(d["notes"]) if d.get("notes") else ""),
                BioWorkbenchWarning,
                stacklevel=4,
            )

    def _backend(self) -> str:
        want = self.sampler["backend"]
        if want == "pymc":
            return "pymc"
        try:
            import nutpie  # noqa: F401
        except ImportError:
            if want == "nutpie":
                from bioworkbench.errors import MissingDependencyError

                raise MissingDependencyError(
                    "sampler backend 'nutpie' asked for but nutpie is not installed: pip install nutpie"
                ) from None
            return "pymc"
        return "nutpie"

    def _require_fit(self) -> None:
        if self.idata is None:
            raise ModelNotFittedError(f"{type(self).__name__} has no posterior yet; call .fit(campaign) first.")

    def posterior_draws(self, name: str) -> np.ndarray:
        """Posterior draws of ``name`` stacked as ``(sample, ...)``.

        Parameters
        ----------
        name
            A variable of the posterior.

        Returns
        -------
        numpy.ndarray
            Chains and draws stacked into the first axis.

        Raises
        ------
        ArgumentError
            ``name`` is not a variable of the posterior (the valid ones suggested).
        ModelNotFittedError
            The model has not been fitted.
        """
        self._require_fit()
        names = list(self.idata["posterior"].data_vars)
        if name not in names:
            from bioworkbench.errors import ArgumentError

            raise ArgumentError(
                f"{type(self).__name__}.posterior_draws: no posterior variable {name!r}. "
                + suggest(str(name), names, what="Variables")
            )
        da = self.idata["posterior"][name]
        return da.stack(sample=("chain", "draw")).transpose("sample", ...).values

    def diagnostics(self) -> dict[str, Any]:
        """Divergences, max r̂, min bulk and tail ESS, the sampler record, and the issues found.

        ``issues`` says each problem in plain words with what it means for the numbers and what to
        do (see :func:`diagnostics_markdown`); ``ok`` is ``True`` when there is none: no divergent
        transition, r̂ ≤ 1.01 (Vehtari et al. 2021, the rank-normalised split r̂) and bulk ESS ≥ 400
        for every parameter.

        Returns
        -------
        dict
            ``divergences``, ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, the sampler record
            (``sampler_backend``, ``chains``, ``draws``, ``sampler_tune``, ...), ``issues`` (a list of
            sentences), ``notes`` and ``ok``.
        """
        import arviz as az

        self._require_fit()
        cache = getattr(self, "_diagnostics_cache", None)
        if cache is not None and cache[0] is self.idata:  # r̂ and ESS of a large posterior take seconds
            return {**cache[1], "issues": list(cache[1]["issues"]), "notes": self._notes()}
        post = self.idata["posterior"].to_dataset()
        stats = self.idata["sample_stats"].to_dataset()
        div = int(stats["diverging"].sum()) if "diverging" in stats else 0
        n_chains = post.sizes.get("chain", 1)
        rhat = az.rhat(post) if n_chains > 1 else None
        ess_b, ess_t = az.ess(post, method="bulk"), az.ess(post, method="tail")
        max_rhat = _extreme(rhat, max) if rhat is not None else float("nan")
        min_b, min_t = _extreme(ess_b, min), _extreme(ess_t, min)
        draws = post.sizes.get("draw")
        tune = self.sampling.get("tune")
        issues = _plain_issues(div, max_rhat, min_b, n_chains, draws, tune)
        out = {
            "divergences": div,
            "max_rhat": max_rhat,
            "min_ess_bulk": min_b,
            "min_ess_tail": min_t,
            "chains": n_chains,
            "draws": draws,
            **{f"sampler_{k}": v for k, v in self.sampling.items()},
            "ok": not issues,
            "issues": issues,
            "notes": self._notes(),
        }
        self._diagnostics_cache = (self.idata, out)
        return {**out, "issues": list(issues)}

    def _notes(self) -> list[str]:
        """What the reader of the diagnostics should know about the data or the model's choices."""
        return []

    def _summarise(self, draws: np.ndarray, prob: float) -> dict[str, float]:
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return {"mean": draws.mean(axis=0), "sd": draws.std(axis=0), "lower": lo, "upper": hi}

    def _summary_frame(
        self, names: dict[str, tuple[str, str]], index: dict[str, list[str]], prob: float
    ) -> pl.DataFrame:
        """Tidy summary of posterior variables: ``names`` maps variable -> (label, unit); ``index``
        maps variable -> labels of its one dimension (absent: scalar)."""
        import arviz as az

        post = self.idata["posterior"].to_dataset()
        multi = post.sizes.get("chain", 1) > 1
        rhat = az.rhat(post) if multi else None
        ess = az.ess(post, method="bulk")
        rows = []
        for var, (label, unit) in names.items():
            x = self.posterior_draws(var)
            s = self._summarise(x, prob)
            r = rhat[var].values if rhat is not None else np.full(x.shape[1:], np.nan)
            e = ess[var].values
            labels = index.get(var)
            if labels is None:
                rows.append(_row(label, "campaign", None, s, None, unit) | {"r_hat": float(r), "ess_bulk": float(e)})
            else:
                level = "batch" if var.endswith("_b") else "group"
                rows.extend(
                    _row(label, level, lab, s, i, unit) | {"r_hat": float(r[i]), "ess_bulk": float(e[i])}
                    for i, lab in enumerate(labels)
                )
        return (
            pl.DataFrame(rows)
            .with_columns(prob=pl.lit(prob))
            .select(
                "parameter", "level", "batch_id", "mean", "sd", "lower", "upper", "prob", "unit", "r_hat", "ess_bulk"
            )
        )

    # -- persistence ----------------------------------------------------------------------
    def data_hash(self) -> str:
        """SHA-256 of the prepared data (as JSON): what :func:`load` checks the stored data against.

        Returns
        -------
        str
            Hexadecimal digest.
        """
        return hashlib.sha256(json.dumps(self.data, sort_keys=True, default=str).encode()).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the posterior and everything needed to predict again to a netCDF file.

        Parameters
        ----------
        path
            The ``.nc`` file to write.

        Returns
        -------
        Path
            The file written.
        """
        from bioworkbench import __version__

        path = _path(path, f"{type(self).__name__}.save")
        self._require_fit()
        dt = self.idata.copy()
        dt.attrs.update(
            {
                "bw_model_type": self.model_type,
                "bw_priors": json.dumps({k: asdict(v) for k, v in self.priors.items()}),
                "bw_sampler": json.dumps(self.sampler),
                "bw_sampling": json.dumps(self.sampling),
                "bw_data": json.dumps(self.data, default=_json_default),
                "bw_data_hash": self.data_hash(),
                "bw_version": __version__,
            }
        )
        # attributes of sample_stats may hold non-serialisable objects (nutpie settings)
        for node in dt.subtree:
            for k, v in list(node.attrs.items()):
                if not isinstance(v, (str, int, float, np.number, np.ndarray, list, tuple)):
                    node.attrs[k] = str(v)
            for name in list(node.data_vars):
                if node[name].dtype == object:
                    node[name] = node[name].astype(str)
        path.parent.mkdir(parents=True, exist_ok=True)
        dt.to_netcdf(path, engine="h5netcdf")
        return path


def _row(parameter: str, level: str, batch_id: str | None, s: dict, i: int | None, unit: str) -> dict[str, Any]:
    """One row of a tidy summary from :meth:`BayesModel._summarise` output (element ``i``, or the scalar)."""
    pick = (lambda a: float(a)) if i is None else (lambda a: float(a[i]))
    return {
        "parameter": parameter,
        "level": level,
        "batch_id": batch_id,
        "mean": pick(s["mean"]),
        "sd": pick(s["sd"]),
        "lower": pick(s["lower"]),
        "upper": pick(s["upper"]),
        "unit": unit,
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def load(path: str | Path) -> BayesModel:
    """Load a model saved with :meth:`BayesModel.save` (its type is read from the file).

    Parameters
    ----------
    path
        A file written by :meth:`BayesModel.save`.

    Returns
    -------
    BayesModel
        A model of the saved type, with its priors, sampler settings, data and posterior.

    Raises
    ------
    ConfigError
        The file does not exist, is not a bioworkbench model file, or its data do not match their hash.
    """
    import xarray as xr

    import bioworkbench.models  # noqa: F401  (imports every model module, which registers its class)

    path = _path(path, "load")
    if not path.exists():
        raise ConfigError(f"model file {path} not found.")
    dt = xr.open_datatree(path, engine="h5netcdf").load()
    kind = dt.attrs.get("bw_model_type")
    if kind not in MODEL_TYPES:
        raise ConfigError(
            f"{path}: not a bioworkbench model file (model type {kind!r}); known: {', '.join(sorted(MODEL_TYPES))}."
        )
    cls = MODEL_TYPES[kind]
    priors = {k: Prior(**v) for k, v in json.loads(dt.attrs["bw_priors"]).items()}
    model = cls(priors=priors, sampler=json.loads(dt.attrs["bw_sampler"]))
    model.data = json.loads(dt.attrs["bw_data"])
    if model.data_hash() != dt.attrs["bw_data_hash"]:
        raise ConfigError(f"{path}: the stored data do not match their hash; the file is damaged.")
    model.sampling = json.loads(dt.attrs.get("bw_sampling", "{}"))
    model.idata = dt
    return model


def diagnostics_markdown(diag: Mapping[str, Any] | None, *, name: str = "model") -> str:
    """The sampler diagnostics in plain words for the reader of a report.

    One sentence says whether the numbers can be read as they are; when they cannot, a warning
    block says, for each problem, what it means for the numbers and what to do. The sampler's
    figures (r̂, effective sample size, divergences) follow in small print (italics).

    Parameters
    ----------
    diag
        :meth:`BayesModel.diagnostics` (``None``: the model was not fitted; one sentence says so).
    name
        What the reader calls the model ("Growth model").

    Returns
    -------
    str
        Markdown.

    Raises
    ------
    ArgumentError
        ``diag`` is not a model's diagnostics.
    """
    if diag is None:
        return f"**{name}**: not fitted."
    if not isinstance(diag, Mapping) or not {"divergences", "min_ess_bulk", "min_ess_tail"} <= set(diag):
        from bioworkbench.checks import describe_type
        from bioworkbench.errors import ArgumentError

        raise ArgumentError(
            f"diagnostics_markdown: diag must be a model's .diagnostics() (a dict); got {describe_type(diag)}."
        )
    fine = f"{diag.get('chains')} chains × {diag.get('draws')} draws"
    if diag.get("sampler_tune") is not None:
        fine += f" after {diag['sampler_tune']} tuning steps"
    rhat = diag.get("max_rhat", float("nan"))
    fine = (
        f"_Sampler {diag.get('sampler_backend', '?')}, {fine}; {diag['divergences']} divergent transitions; "
        + (f"r̂ at most {rhat:.3f} (≤ 1.01 wanted); " if rhat == rhat else "r̂ not computed (one chain); ")
        + f"smallest effective sample size {diag['min_ess_bulk']:.0f} (bulk, ≥ 400 wanted), "
        f"{diag['min_ess_tail']:.0f} (tail)._"
    )
    notes = "".join(f" {n}" for n in diag.get("notes") or [])
    if diag.get("ok"):
        return f"**{name}**: the sampler checks passed, so the intervals can be read as they are.{notes}\n\n{fine}"
    items = "\n".join(f"> - {i}" for i in diag["issues"])
    return f"> ⚠️ **{name}: read these numbers with caution.**\n{items}\n>\n> {fine}" + (
        f"\n\n{notes.strip()}" if notes else ""
    )


def _plain_issues(
    div: int, max_rhat: float, min_ess: float, chains: int, draws: int | None, tune: int | None
) -> list[str]:
    """The sampler's problems in plain words: what each means for the numbers and what to do."""
    more_draws = f"draws={2 * draws}" if draws else "more draws"
    more_tune = f"tune={max(2 * (tune or 0), 1000)}"
    issues = []
    if div:
        issues.append(
            f"The sampler hit {div} divergent transition{'s' if div != 1 else ''}: it met a part of the "
            "answer it could not explore, so these intervals may be too narrow or shifted. Rerun with "
            f"more tuning ({more_tune}); if divergences remain, the model does not suit these data."
        )
    if max_rhat == max_rhat and max_rhat > RHAT_MAX:
        issues.append(
            f"The {chains} chains disagree (r̂ up to {max_rhat:.3f}; at most {RHAT_MAX} wanted): they have not "
            "settled on the same answer, so these intervals may be too narrow or shifted. Rerun with more "
            f"draws ({more_draws}, {more_tune})."
        )
    if min_ess < ESS_MIN:
        issues.append(
            f"The effective sample size is {min_ess:.0f} (at least {ESS_MIN} wanted): the ends of the "
            f"intervals are noisy and may move in a rerun. Rerun with more draws ({more_draws})."
        )
    return issues


def _extreme(ds: Any, fn: Any) -> float:
    """Max or min over every variable of an xarray Dataset of r̂ or ESS (NaN ignored)."""
    vals = [float(np.nanmax(v.values) if fn is max else np.nanmin(v.values)) for v in ds.data_vars.values() if v.size]
    vals = [v for v in vals if v == v]
    return float(fn(vals)) if vals else float("nan")


def _positive_int(value: Any, argument: str, owner: str, *, zero: bool = False, method: str = "fit") -> int:
    """A sampler count (``draws``, ``tune``, ``chains``, ``random_seed``) checked as an integer."""
    from bioworkbench.checks import require_number

    return int(
        require_number(value, function=f"{owner}.{method}", argument=argument, minimum=0 if zero else 1, integer=True)
    )


def _path(path: Any, function: str) -> Path:
    """``path`` as a :class:`~pathlib.Path`, else an :class:`ArgumentError`."""
    import os

    if not isinstance(path, str | os.PathLike):
        from bioworkbench.checks import describe_type
        from bioworkbench.errors import ArgumentError

        raise ArgumentError(f"{function}: path must be a file path (str or Path); got {describe_type(path)}.")
    return Path(path)


def _versions(backend: str) -> dict[str, str]:
    """Versions of what computes the draws (a different version may give different draws for one seed)."""
    import importlib.metadata as md

    names = ["pymc", "pytensor", "numpy"] + (["nutpie", "numba"] if backend == "nutpie" else [])
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:  # pragma: no cover
            out[n] = "?"
    return out


def _with_fit_data(compiled: Any, shared: Mapping[str, np.ndarray], build: Any) -> Any:
    """The compiled nutpie model with every ``pm.Data`` value of this fit, for the likelihood and the start.

    ``shared`` are the values the model names (:meth:`BayesModel._shared_data`); a ``pm.Data`` of
    the compiled model that it does not name is read from the model ``build()`` returns, so that no
    value of an earlier fit of the same structure is left in place (a stale covariate matrix made
    the same forecast with the same seed depend on what had been fitted before). The values are
    also set on the compiled model's PyTensor shared variables, which its initial-point function
    reads: the chains start where a fresh compile would start them.
    """
    names = {getattr(v, "name", None): v for v in getattr(compiled, "shared_var_keys", {})}
    values = {k: v for k, v in shared.items() if k in names}
    missing = [k for k in names if k not in values]
    if missing:
        model = build()
        built = {v.name: v.get_value() for v in model.data_vars if hasattr(v, "get_value")}
        lost = [k for k in missing if k not in built]
        if lost:  # pragma: no cover - a programming error: the cache key misses part of the structure
            raise ConfigError(f"compiled model has data {lost} that this fit does not provide; clear the cache.")
        values.update({k: built[k] for k in missing})
    for k, var in names.items():
        old = var.get_value(borrow=True)
        var.set_value(np.asarray(values[k], dtype=old.dtype))
    return compiled.with_data(**values) if values else compiled


def covariate_matrix(campaign: Campaign, batch_ids: list[str], covariates: list[str] | None) -> dict[str, Any]:
    """Standardised batch-level covariates (e.g. CPP setpoints): ``{"names", "x", "mean", "sd"}``.

    Each column is centred and scaled by its standard deviation over ``batch_ids`` so that a
    coefficient means "effect of one standard deviation of this CPP". A covariate must be numeric,
    known for every batch and not constant.
    """
    if not covariates:
        return {"names": [], "x": [[] for _ in batch_ids], "mean": [], "sd": []}
    b = campaign.batches
    missing = [c for c in covariates if c not in b.columns]
    if missing:
        raise ConfigError(
            f"covariate(s) {', '.join(missing)} not in batches. " + suggest(missing[0], b.columns, what="Columns")
        )
    sub = b.filter(pl.col("batch_id").is_in(batch_ids)).select("batch_id", *covariates)
    order = {k: i for i, k in enumerate(batch_ids)}
    sub = sub.with_columns(_o=pl.col("batch_id").replace_strict(order, return_dtype=pl.Int64)).sort("_o")
    x = np.column_stack([sub[c].cast(pl.Float64, strict=False).to_numpy() for c in covariates])
    bad = [c for j, c in enumerate(covariates) if not np.all(np.isfinite(x[:, j]))]
    if bad:
        raise ConfigError(f"covariate(s) {', '.join(bad)} are not numeric for every batch.")
    mean, sd = x.mean(axis=0), x.std(axis=0, ddof=1) if len(x) > 1 else np.ones(x.shape[1])
    const = [c for j, c in enumerate(covariates) if not sd[j] > 0]
    if const:
        raise ConfigError(f"covariate(s) {', '.join(const)} do not vary across the batches.")
    return {"names": list(covariates), "x": ((x - mean) / sd).tolist(), "mean": mean.tolist(), "sd": sd.tolist()}
