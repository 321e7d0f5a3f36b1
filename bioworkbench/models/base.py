"""The contract every Bayesian model of bioworkbench follows.

* :class:`BayesModel` is an abstract base class: a model implements ``fit``, ``predict`` and
  ``summary`` (and the data preparation ``_prepare`` and model ``_build`` behind them); ``build``,
  ``diagnostics``, ``save`` and ``load`` come from the base.
* ``Model(..., priors=None, sampler=None)`` is cheap: it stores configuration only. The options of
  the constructor are declared once, in :attr:`BayesModel.config_fields`; :meth:`BayesModel.get_config`
  returns them with the priors and sampler settings, which is what ``save`` writes and ``load``
  passes back to the constructor. Default priors are data (:class:`Prior`, with unit and reason)
  and can be overridden one by one. Sampler defaults come from
  :data:`bioworkbench.models.sampling.SAMPLER_DEFAULTS`.
* ``build(data)`` returns the ``pm.Model`` without sampling; ``sample_prior_predictive`` works
  before fitting.
* ``fit(data, *, draws, tune, chains, random_seed, ...)`` (options keyword-only after the data)
  samples and keeps the posterior (``xarray.DataTree``) on ``.idata``. The sampler is nutpie where
  it is installed (compiled models are cached and reused across fits of the same structure), PyMC's
  NUTS otherwise; the choice and its timings are recorded in ``.sampling``.
* ``predict`` and ``summary`` return tidy polars frames with ``mean, lower, upper, prob``.
* ``diagnostics()`` returns divergences, max r̂, min ESS and the issues found.
* ``save(path)`` / :func:`load` (or ``Model.load(path)``) round-trip through netCDF with the model
  type, its configuration, the data, a checksum, the package version and :data:`CONFIG_SCHEMA` in
  its attributes.

The rule on load: a file whose ``CONFIG_SCHEMA`` differs from this version's (or that has none: it
was saved before the configuration was recorded) raises a :class:`~bioworkbench.errors.ConfigError`
naming both versions; a file of the same schema written by another bioworkbench version is loaded
with a :class:`~bioworkbench.errors.BioWorkbenchWarning` (its configuration is read the same way;
this version's code computes the predictions). A file that cannot be read, or is not a model file,
is a :class:`~bioworkbench.errors.DataReadError`; one whose recorded contents no longer match their
checksum (damaged or edited) is an :class:`~bioworkbench.errors.IntegrityError`.

Size: this module is over 600 lines (about 740 besides docstrings): the contract itself (the
abstract base, configuration, sampling with nutpie's compile cache, diagnostics) and its persistence
(save, load and their checks) share the model registry and the record they write. The diagnostics'
wording (:func:`diagnostics_markdown`, ``_plain_issues``) and :func:`covariate_matrix` could move to
modules of their own; that is left to a later change (issue 15 item 2).
"""

from __future__ import annotations

import abc
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

from bioworkbench.errors import (
    ArgumentError,
    BioWorkbenchWarning,
    ConfigError,
    DataReadError,
    IntegrityError,
    Issue,
    ModelNotFittedError,
)
from bioworkbench.models import convergence
from bioworkbench.models.sampling import SAMPLER_DEFAULTS, SamplerDefaults
from bioworkbench.schema import suggest
from bioworkbench.text import escape

if TYPE_CHECKING:
    from bioworkbench.campaign import Campaign

__all__ = ["CONFIG_SCHEMA", "BayesModel", "ForwardPriorPredictive", "Prior", "diagnostics_markdown", "load"]

#: version of what a saved model file records of its configuration (``bw_config``); raise it when
#: a model's ``config_fields``, the meaning of one, or a model's parameters change, so that
#: :func:`load` refuses old files (2: the titer model gained ``qp_decline``; a posterior saved
#: without it cannot forecast; 3: the twin gained ``fixed``, parameters held at their prior median)
CONFIG_SCHEMA = 3
#: the start of the warning PyTensor gives once, when its C backend finds no BLAS to link
_BLAS_WARNING = "PyTensor could not link to a BLAS installation"


def _sampler_settings(defaults: SamplerDefaults) -> dict[str, Any]:
    """A model's sampler settings (``sampler=`` keys) from its :class:`SamplerDefaults`."""
    return {
        "backend": "auto",  # "auto" (nutpie if installed, else pymc), "nutpie" or "pymc"
        "draws": defaults.draws,
        "tune": defaults.tune,  # None: per backend (bioworkbench.models.sampling.TUNE_BY_BACKEND)
        "chains": defaults.chains,
        "target_accept": defaults.target_accept,  # PyMC NUTS only
        "nutpie_target_accept": defaults.nutpie_target_accept,  # nutpie's NUTS
        "cores": None,
        "adaptation": defaults.adaptation,  # nutpie mass-matrix adaptation: "diag" or "low_rank"
    }


#: the sampler settings a model accepts, with the defaults of a model without an entry of its own
DEFAULT_SAMPLER: dict[str, Any] = _sampler_settings(SAMPLER_DEFAULTS["BayesModel"])


def _resolve_blas_flags() -> None:
    """Let PyTensor look for a BLAS to link now, without its warning when it finds none.

    PyTensor warns once, with a code path and a configuration recipe, when its C backend finds no
    BLAS (the first time ``config.blas__ldflags`` is read; the result is kept). The models sample
    through nutpie/numba and numpy's own BLAS, so the warning is noise in reports; it is silenced
    here only, around the one call that emits it.
    """
    import pytensor

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BLAS_WARNING, category=UserWarning)
        _ = pytensor.config.blas__ldflags


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


class BayesModel(abc.ABC):
    """Abstract base: configuration, sampling, diagnostics and persistence shared by every model.

    A model declares ``model_type``, ``default_priors`` and ``config_fields`` (the options of its
    constructor besides ``priors`` and ``sampler``, each kept on an attribute of the same name) and
    implements :meth:`fit`, :meth:`predict`, :meth:`summary`, ``_prepare`` and ``_build``.

    Parameters
    ----------
    priors
        Overrides of :attr:`default_priors`, by name (a :class:`Prior` or a mapping).
    sampler
        Overrides of the sampler defaults (``draws``, ``tune``, ``chains``, ``adaptation``,
        ``nutpie_target_accept`` for nutpie, ``target_accept`` for PyMC's NUTS, ...).
    """

    model_type: ClassVar[str] = "BayesModel"
    default_priors: ClassVar[dict[str, Prior]] = {}
    #: the constructor's options besides ``priors`` and ``sampler``: each is an attribute of the model
    #: of the same name, written by :meth:`save` and given back to the constructor by :func:`load`
    config_fields: ClassVar[tuple[str, ...]] = ()

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
        defaults = _sampler_settings(self.sampler_defaults())
        bad = [k for k in sampler if k not in defaults]
        if bad:
            raise ConfigError(
                f"{type(self).__name__}: unknown sampler setting(s) {', '.join(map(repr, bad))}. "
                + suggest(bad[0], defaults, what="Settings")
            )
        if sampler.get("backend", "auto") not in ("auto", "nutpie", "pymc"):
            raise ConfigError(f"sampler backend must be 'auto', 'nutpie' or 'pymc'; got {sampler['backend']!r}.")
        for k in ("target_accept", "nutpie_target_accept"):
            v = sampler.get(k)
            if v is not None and not (isinstance(v, int | float) and 0.0 < float(v) < 1.0):
                raise ConfigError(f"{type(self).__name__}: sampler {k} must be a number between 0 and 1; got {v!r}.")
        self.sampler: dict[str, Any] = defaults | sampler
        self.idata: Any = None
        self.data: dict[str, Any] | None = None
        self.sampling: dict[str, Any] = {}

    @classmethod
    def sampler_defaults(cls) -> SamplerDefaults:
        """This model's entry of :data:`~bioworkbench.models.sampling.SAMPLER_DEFAULTS`.

        Returns
        -------
        SamplerDefaults
            The entry named by :attr:`model_type`, else that of ``"BayesModel"``.
        """
        return SAMPLER_DEFAULTS.get(cls.model_type, SAMPLER_DEFAULTS["BayesModel"])

    def get_config(self) -> dict[str, Any]:
        """Everything the constructor was given: the :attr:`config_fields`, the priors and the sampler settings.

        ``type(model)(**model.get_config())`` makes the same model, unfitted; :meth:`save` writes this
        (JSON) and :func:`load` passes it back to the constructor.

        Returns
        -------
        dict
            ``{field: value}`` for each of :attr:`config_fields`, ``"priors"`` (``{name: {dist,
            params, unit, why}}``) and ``"sampler"``.
        """
        out = {name: getattr(self, name) for name in self.config_fields}
        return out | {"priors": {k: asdict(v) for k, v in self.priors.items()}, "sampler": dict(self.sampler)}

    # -- to implement ---------------------------------------------------------------------
    @abc.abstractmethod
    def _prepare(self, data: Any, **kwargs: Any) -> dict[str, Any]:
        """Turn user data into arrays and coordinates (JSON-serialisable: lists, numbers, str)."""

    @abc.abstractmethod
    def _build(self, d: dict[str, Any]) -> Any:
        """The ``pm.Model`` for prepared data ``d``."""

    @abc.abstractmethod
    def predict(
        self, *args: Any, prob: float = 0.9, kind: str = "mean", random_seed: int | None = None, **kwargs: Any
    ) -> pl.DataFrame:
        """Predictions with equal-tailed intervals.

        Where to predict comes first (each model says: times, settings, a storage condition, ...);
        the options are keyword-only.

        Parameters
        ----------
        *args, **kwargs
            Where to predict (the model's own arguments).
        prob
            Mass of the equal-tailed interval.
        kind
            ``"mean"``: the posterior of the mean; ``"predictive"``: a new measurement (adds the
            measurement error).
        random_seed
            Seed of the predictive draws.

        Returns
        -------
        polars.DataFrame
            Tidy: where (the model's columns), then ``mean, lower, upper, prob``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        """

    @abc.abstractmethod
    def summary(self, prob: float = 0.9) -> pl.DataFrame:
        """The posterior of the model's parameters, one row per parameter (and batch or term).

        Parameters
        ----------
        prob
            Mass of the equal-tailed interval.

        Returns
        -------
        polars.DataFrame
            Tidy, with ``mean, sd, lower, upper, prob`` (the model says which other columns).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        """

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
        _resolve_blas_flags()
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
        ArgumentError
            No ``data`` given and none from an earlier fit or build; a count that is not an integer.
        """
        import pymc as pm

        draws = _positive_int(draws, "draws", type(self).__name__, method="sample_prior_predictive")
        if random_seed is not None:
            random_seed = _positive_int(
                random_seed, "random_seed", type(self).__name__, zero=True, method="sample_prior_predictive"
            )
        if data is None and self.data is None:
            raise ArgumentError(
                f"{type(self).__name__}.sample_prior_predictive needs data (the design of the observations): "
                "pass it, or call .build(data) first."
            )
        import xarray as xr

        _resolve_blas_flags()

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

    @abc.abstractmethod
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

        Each model implements ``fit`` with its own options, keyword-only after the data, and
        documents them; this generic form (a model may call it through ``super().fit``) passes
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
        _resolve_blas_flags()
        d = self._prepare(data, **kwargs)
        self.data = d
        backend = self._backend()
        defaults = self.sampler_defaults()
        draws = _positive_int(draws or self.sampler["draws"], "draws", type(self).__name__)
        tune = tune if tune is not None else self.sampler["tune"]
        tune = _positive_int(
            defaults.tune_for(backend) if tune is None else tune, "tune", type(self).__name__, zero=True
        )
        chains = _positive_int(chains or self.sampler["chains"], "chains", type(self).__name__)
        if random_seed is not None:
            random_seed = _positive_int(random_seed, "random_seed", type(self).__name__, zero=True)
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
                from bioworkbench.models.compile_cache import compile_nutpie  # disk cache across processes

                compiled = compile_nutpie(self._build(d))
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
                target_accept=self.sampler["nutpie_target_accept"],
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
            "target_accept": self.sampler["nutpie_target_accept" if backend == "nutpie" else "target_accept"],
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
        self._require_fit()
        key = self._posterior_key()
        cache = getattr(self, "_diagnostics_cache", None)
        if cache is not None and _same_key(cache[0], key):  # r̂ and ESS of a large posterior take seconds
            return {**cache[1], "issues": list(cache[1]["issues"]), "notes": self._notes()}
        post = self.idata["posterior"].to_dataset()
        stats = self.idata["sample_stats"].to_dataset()
        div = int(stats["diverging"].sum()) if "diverging" in stats else 0
        n_chains = post.sizes.get("chain", 1)
        rhat, ess_b = self._rhat_ess()
        ess_t = convergence.ess(_varying(post), "tail")
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
        self._diagnostics_cache = (key, out)
        return {**out, "issues": list(issues)}

    def _notes(self) -> list[str]:
        """What the reader of the diagnostics should know about the data or the model's choices."""
        return []

    def _rhat_ess(self) -> tuple[Any, Any]:
        """r̂ (``None`` for one chain) and bulk ESS of the varying posterior variables, computed once per
        posterior: :meth:`diagnostics` and the summaries both need them (vectorised in
        :mod:`~bioworkbench.models.convergence`, the values of ArviZ)."""
        key = self._posterior_key()
        cache = getattr(self, "_rhat_ess_cache", None)
        if cache is not None and _same_key(cache[0], key):
            return cache[1]
        post = _varying(self.idata["posterior"].to_dataset())
        rhat = convergence.rhat(post) if post.sizes.get("chain", 1) > 1 else None
        out = (rhat, convergence.ess(post, "bulk"))
        self._rhat_ess_cache = (key, out)
        return out

    def _posterior_key(self) -> tuple[Any, tuple[str, ...]]:
        """What the caches of r̂, ESS and diagnostics are keyed on: the posterior object and its variables.
        Some models add draws after sampling (the stability model's integrated-out initial values, after
        ``fit`` has checked convergence), which must not meet a cache computed before them."""
        return (self.idata, tuple(self.idata["posterior"].data_vars))

    def _summarise(self, draws: np.ndarray, prob: float) -> dict[str, float]:
        lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return {"mean": draws.mean(axis=0), "sd": draws.std(axis=0), "lower": lo, "upper": hi}

    def _summary_frame(
        self, names: dict[str, tuple[str, str]], index: dict[str, list[str]], prob: float
    ) -> pl.DataFrame:
        """Tidy summary of posterior variables: ``names`` maps variable -> (label, unit); ``index``
        maps variable -> labels of its one dimension (absent: scalar)."""

        rhat, ess = self._rhat_ess()
        rows = []
        for var, (label, unit) in names.items():
            x = self.posterior_draws(var)
            s = self._summarise(x, prob)
            r = rhat[var].values if rhat is not None and var in rhat else np.full(x.shape[1:], np.nan)
            e = ess[var].values if var in ess else np.full(x.shape[1:], np.nan)
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

        Raises
        ------
        ArgumentError
            ``path`` is not a file path.
        ModelNotFittedError
            The model has not been fitted.

        Notes
        -----
        The root's attributes hold ``bw_model_type``, ``bw_version`` (bioworkbench's),
        ``bw_config_schema`` (:data:`CONFIG_SCHEMA`), ``bw_config`` (:meth:`get_config`, JSON),
        ``bw_sampling``, ``bw_data``, ``bw_data_hash`` and ``bw_checksum`` (SHA-256 of the others, which
        :func:`load` checks).
        """
        from bioworkbench import __version__

        path = _path(path, f"{type(self).__name__}.save")
        self._require_fit()
        dt = self.idata.copy()
        for key in [k for k in dt.attrs if str(k).startswith("bw_")]:  # a loaded model saved again
            del dt.attrs[key]
        record = {
            "bw_model_type": self.model_type,
            "bw_version": __version__,
            "bw_config_schema": str(CONFIG_SCHEMA),
            "bw_config": json.dumps(self.get_config(), default=_json_default),
            "bw_sampling": json.dumps(self.sampling, default=_json_default),
            "bw_data": json.dumps(self.data, default=_json_default),
            "bw_data_hash": self.data_hash(),
        }
        dt.attrs.update(record | {"bw_checksum": _checksum(record)})
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

    @classmethod
    def load(cls, path: str | Path) -> BayesModel:
        """Load a model of this class saved with :meth:`save` (see :func:`load` for the rules).

        Parameters
        ----------
        path
            A file written by :meth:`save`.

        Returns
        -------
        BayesModel
            The model, of this class (``BayesModel.load`` takes any model).

        Raises
        ------
        ArgumentError
            The file holds a model of another class (it is named); ``path`` is not a file path.
        DataReadError, ConfigError, IntegrityError
            As for :func:`load`.
        """
        model = load(path)
        if not isinstance(model, cls):
            raise ArgumentError(
                f"{cls.__name__}.load: {path} holds a {type(model).__name__}; load it with "
                f"{type(model).__name__}.load(path) or bw.models.load(path)."
            )
        return model


class ForwardPriorPredictive:
    """A mixin for hierarchical models that sample some batches in centred coordinates (growth, titer).

    :meth:`sample_prior_predictive` builds the model with ``_forward_only`` set: every batch
    non-centred, the same prior in coordinates that can be drawn forward (the centred coordinates
    used for sampling carry their population density as a potential). A model reads
    ``self._forward_only`` in its ``_build``.
    """

    _forward_only = False

    def sample_prior_predictive(
        self, data: Any = None, *, draws: int = 500, random_seed: int | None = None, **kwargs: Any
    ) -> Any:
        """Draws from the prior and prior predictive (works before ``fit``), every batch non-centred.

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
            Groups ``prior`` and ``prior_predictive``.
        """
        self._forward_only = True
        try:
            return super().sample_prior_predictive(  # type: ignore[misc]
                data, draws=draws, random_seed=random_seed, **kwargs
            )
        finally:
            del self._forward_only


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


#: the attributes of a saved model that its ``bw_checksum`` covers
_RECORD = (
    "bw_model_type",
    "bw_version",
    "bw_config_schema",
    "bw_config",
    "bw_sampling",
    "bw_data",
    "bw_data_hash",
)


def _checksum(record: Mapping[str, Any]) -> str:
    """SHA-256 of the recorded attributes of a saved model (each as the text written)."""
    text = json.dumps({k: str(record.get(k)) for k in _RECORD}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load(path: str | Path) -> BayesModel:
    """Load a model saved with :meth:`BayesModel.save` (its type is read from the file).

    The rule on versions: a file whose configuration schema (``bw_config_schema``) is not this
    version's :data:`CONFIG_SCHEMA`, or that has none, is refused with a ``ConfigError`` that names
    the bioworkbench version that wrote it; a file of the same schema written by another
    bioworkbench version is loaded with a warning.

    Parameters
    ----------
    path
        A file written by :meth:`BayesModel.save`.

    Returns
    -------
    BayesModel
        A model of the saved type made with its saved configuration (:meth:`BayesModel.get_config`),
        with its data, sampler record and posterior.

    Raises
    ------
    ArgumentError
        ``path`` is not a file path.
    DataReadError
        The file does not exist, cannot be read as netCDF, or is not a bioworkbench model file.
    ConfigError
        The file was written with another configuration schema (another bioworkbench version), holds
        a model type this version does not have, or a configuration this version's model refuses.
    IntegrityError
        The recorded configuration, data or sampler record do not match their checksum, or cannot be
        read: the file was damaged or edited.

    Warns
    -----
    BioWorkbenchWarning
        The file was written by another bioworkbench version (of the same configuration schema).
    """
    import xarray as xr

    import bioworkbench.models  # noqa: F401  (imports every model module, which registers its class)
    from bioworkbench import __version__

    path = _path(path, "load")
    if not path.is_file():
        raise DataReadError(f"model file {path} not found.")
    try:
        dt = xr.open_datatree(path, engine="h5netcdf").load()
    except (OSError, ValueError) as exc:
        raise DataReadError(f"{path}: cannot be read as a netCDF model file ({type(exc).__name__}: {exc}).") from None
    attrs = dt.attrs
    kind = attrs.get("bw_model_type")
    if kind is None:
        raise DataReadError(
            f"{path}: not a bioworkbench model file (it records no model type); write one with model.save(path)."
        )
    written_by = attrs.get("bw_version", "an unknown version")
    schema = attrs.get("bw_config_schema")
    if schema != str(CONFIG_SCHEMA):
        raise ConfigError(
            f"{path}: a {kind} written by bioworkbench {written_by} with "
            + (f"model file schema {schema}" if schema is not None else "no recorded model configuration")
            + f"; this bioworkbench ({__version__}) reads model file schema {CONFIG_SCHEMA}. Load it with "
            f"bioworkbench {written_by} (and keep its results), or fit the model again."
        )
    if kind not in MODEL_TYPES:
        raise ConfigError(
            f"{path}: model type {kind!r} (written by bioworkbench {written_by}) is not one of this version's: "
            f"{', '.join(sorted(MODEL_TYPES))}."
        )

    def damaged(what: str) -> IntegrityError:
        advice = "the file was damaged or edited after it was saved. Save the fitted model again, or fit it again."
        return IntegrityError([Issue(f"{what}; {advice}", file=str(path))])

    missing = [k for k in (*_RECORD, "bw_checksum") if k not in attrs]
    if missing:
        raise damaged(f"the record of the model lacks {', '.join(missing)}")
    if _checksum(attrs) != attrs["bw_checksum"]:
        raise damaged("the recorded configuration, data or sampler record do not match their checksum")
    try:
        config = json.loads(attrs["bw_config"])
        data = json.loads(attrs["bw_data"])
        sampling = json.loads(attrs["bw_sampling"])
    except json.JSONDecodeError as exc:
        raise damaged(f"a recorded attribute is not valid JSON ({exc})") from None
    cls = MODEL_TYPES[kind]
    expected = {*cls.config_fields, "priors", "sampler"}
    if set(config) != expected:
        raise damaged(
            f"the recorded configuration has the fields {sorted(config)}; a {kind} of model file schema "
            f"{CONFIG_SCHEMA} has {sorted(expected)}"
        )
    if written_by != __version__:
        warnings.warn(
            f"{path}: written by bioworkbench {written_by}, loaded by {__version__}. The model file schema is the "
            "same, so its configuration, data and posterior are read as saved; predictions and summaries are "
            f"computed by this version's code.",
            BioWorkbenchWarning,
            stacklevel=2,
        )
    priors = {k: Prior.coerce(v, name=k) for k, v in config.pop("priors").items()}
    model = cls(**config, priors=priors)
    model.data = data
    if model.data_hash() != attrs["bw_data_hash"]:
        raise damaged("the recorded data do not match their hash")
    model.sampling = sampling
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
    # notes name batches, columns and files: data, shown literally
    notes = "".join(f" {escape(n)}" for n in diag.get("notes") or [])
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


def _same_key(a: tuple[Any, tuple[str, ...]], b: tuple[Any, tuple[str, ...]]) -> bool:
    return a[0] is b[0] and a[1] == b[1]


def _varying(post: Any) -> Any:
    """The variables of a posterior Dataset that vary over the draws: a constant (a parameter a model holds
    fixed, kept as a deterministic) has no r̂ or ESS, and ArviZ would divide by its zero variance."""
    keep = [k for k, v in post.data_vars.items() if v.size and np.ptp(np.asarray(v.values, dtype=np.float64)) > 0]
    return post[keep]


def _extreme(ds: Any, fn: Any) -> float:
    """Max or min over every variable of an xarray Dataset of r̂ or ESS (NaN ignored)."""
    vals = [x for v in ds.data_vars.values() for x in np.ravel(np.asarray(v.values, dtype=np.float64))]
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
