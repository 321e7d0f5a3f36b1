r"""Observation-level batch evolution model: PCA of single observations (one row per batch and maturity),
charted along maturity, so that a running batch needs no estimate of its future.

References
----------
- Wold, S., Kettaneh, N., Fridén, H. & Holmberg, A. (1998). Modelling and diagnostics of batch
  processes and analogous kinetic experiments. *Chemometrics Intell. Lab. Syst.* 44, 331–340.
- Limits: see :mod:`bioworkbench.monitoring.limits`; the PCA: :mod:`bioworkbench.monitoring.pca`.
"""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl

from bioworkbench.errors import ConfigError, ModelNotFittedError
from bioworkbench.monitoring import limits as lim
from bioworkbench.monitoring.grid import to_batch_array
from bioworkbench.monitoring.limits import _chart
from bioworkbench.monitoring.pca import _check_components, _pca_fit, _pinv_psd, _project

__all__ = ["BatchEvolutionModel"]


class BatchEvolutionModel:
    r"""Observation-level batch evolution model: PCA of single observations, charted along maturity.

    Parameters
    ----------
    n_components
        Number of principal components :math:`A`.
    tol, max_iter
        NIPALS convergence (used when values are missing).

    Notes
    -----
    The reference batches are unfolded variable-wise: one row per (batch, maturity) observation,
    one column per variable (Wold et al. 1998, with PCA in place of their PLS on maturity). Each
    variable is mean-centred and scaled to unit variance (divisor :math:`N-1`) over all reference
    observations, so the scores :math:`t_a(i, j)` trace how each batch evolves. A new
    observation needs no estimate of the batch's future; its missing variables are handled by
    projection to the model plane.

    At each maturity :math:`j` the :math:`n_j` reference batches observed there give the mean score
    :math:`\bar t_j` and covariance :math:`S_j` (divisor :math:`n_j-1`). Per observation:
    :math:`T^2_{ij} = (t_{ij}-\bar t_j)^\top S_j^{-1}(t_{ij}-\bar t_j)` with the Beta limit
    (reference batches) or F limit (new batches) of :mod:`~bioworkbench.monitoring.limits` for
    :math:`n_j` batches, and :math:`SPE_{ij} = \sum_k e_{ijk}^2` with Box's :math:`g\chi^2_h`
    limit fitted to the reference SPE at that maturity. Score bands (:meth:`limits`):
    :math:`\bar t_{aj} \pm t_{(1+prob)/2,\,n_j-1}\, s_{aj}\sqrt{1+1/n_j}`.
    """

    def __init__(self, n_components: int = 2, *, tol: float = 1e-10, max_iter: int = 5000) -> None:
        self.n_components = _check_components(n_components)
        self.tol, self.max_iter = float(tol), int(max_iter)
        self._fitted = False

    def fit(self, aligned: pl.DataFrame | pl.LazyFrame) -> BatchEvolutionModel:
        """Fit to the reference batches.

        Parameters
        ----------
        aligned
            Tidy aligned frame ``batch_id, maturity, variable, value`` of the reference batches (see
            :func:`~bioworkbench.monitoring.align_by_time`); null values are missing data.

        Returns
        -------
        BatchEvolutionModel
            The fitted model (``self``).

        Raises
        ------
        ArgumentError
            ``aligned`` is not a frame (e.g. a Campaign): the message says how to align one.
        SchemaError
            Invalid frame, or a batch without any value of a variable (naming both).
        ConfigError
            Fewer than ``n_components + 2`` reference batches, or more components than variables.
        """
        arr = to_batch_array(aligned, require_values=True, what="reference", function="BatchEvolutionModel.fit")
        n, a = len(arr.batch_ids), self.n_components
        if n < a + 2:
            raise ConfigError(
                f"BatchEvolutionModel(n_components={a}) needs at least {a + 2} reference batches "
                f"(n ≥ A + 2); the aligned frame has {n}. Use fewer components or more batches."
            )
        if a > len(arr.variables):
            raise ConfigError(f"n_components={a} exceeds the {len(arr.variables)} variables")
        x = arr.values.reshape(-1, len(arr.variables))
        rows = ~np.all(np.isnan(x), axis=1)
        fit = _pca_fit(x[rows], a, algorithm="auto", tol=self.tol, max_iter=self.max_iter)
        self.mean_, self.scale_, self.loadings_, t = fit["mean"], fit["scale"], fit["p"], fit["t"]
        m = ~np.isnan(x) & fit["active"]
        z = np.where(m, (x - self.mean_) / self.scale_, 0.0)
        self.batch_ids_, self.variables_, self.maturities_ = arr.batch_ids, arr.variables, arr.maturities
        self._fitted = True
        scores = np.full((x.shape[0], a), np.nan)
        scores[rows] = t
        scores = scores.reshape(n, arr.maturities.size, a)
        valid = ~np.isnan(scores[:, :, 0])
        self.n_batches_ = valid.sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.score_mean_ = np.nanmean(scores, axis=0)
            d = np.where(valid[:, :, None], scores - self.score_mean_, 0.0)
            self.score_cov_ = np.einsum("ija,ijb->jab", d, d) / (self.n_batches_ - 1.0)[:, None, None]
        self._ref = self._stats(z.reshape(n, -1, x.shape[1]), m.reshape(n, -1, x.shape[1]), scores)
        return self

    def _stats(self, z: np.ndarray, m: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
        e = (z - np.einsum("ka,ija->ijk", self.loadings_, np.nan_to_num(t))) * m
        d = t - self.score_mean_
        t2 = np.einsum("ija,jab,ijb->ij", d, _pinv_psd(self.score_cov_), d)
        spe = np.where(m.any(axis=2), np.sum(e * e, axis=2), np.nan)
        return t, t2, spe

    def statistics(self, aligned: pl.DataFrame | pl.LazyFrame | None = None, *, prob: float = 0.99) -> pl.DataFrame:
        """Scores, T² and SPE of every observation with per-maturity limits.

        Parameters
        ----------
        aligned
            New (complete or running) batches on the model's grid; default: the reference batches.
        prob
            Confidence level.

        Returns
        -------
        polars.DataFrame
            ``batch_id, maturity, t_1 … t_A, t2, t2_limit, spe, spe_limit, t2_flag, spe_flag,
            prob``, one row per observed (batch, maturity).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ArgumentError, SchemaError
            ``aligned`` is not a valid aligned frame on the model's grid and variables.
        ConfigError
            ``prob`` is not strictly between 0 and 1.
        """
        if not self._fitted:
            raise ModelNotFittedError("BatchEvolutionModel has no model yet; call .fit(aligned) first.")
        if aligned is None:
            ids, (t, t2, spe) = self.batch_ids_, self._ref
            t2_limit = lim.t2_limit_training(self.n_batches_, self.n_components, prob)
        else:
            arr = to_batch_array(
                aligned,
                variables=self.variables_,
                maturities=self.maturities_,
                require_values=False,
                what="new batches",
                function="BatchEvolutionModel.statistics",
            )
            x = arr.values.reshape(-1, len(self.variables_))
            m = ~np.isnan(x) & (self.scale_ > 0) & np.any(self.loadings_ != 0, axis=1)
            z = np.where(m, (x - self.mean_) / self.scale_, 0.0)
            t = np.where(m.any(axis=1)[:, None], _project(z, m, self.loadings_), np.nan)
            shape = (len(arr.batch_ids), self.maturities_.size, -1)
            ids, (t, t2, spe) = arr.batch_ids, self._stats(z.reshape(shape), m.reshape(shape), t.reshape(shape))
            t2_limit = lim.t2_limit_new(self.n_batches_, self.n_components, prob)
        limit = lim.spe_limit_box(self._ref[2], prob)
        return _chart(
            ids, self.maturities_, ~np.isnan(spe), t, prob, t2=t2, t2_limit=t2_limit, spe=spe, spe_limit=limit
        )

    def monitor(self, running: pl.DataFrame | pl.LazyFrame, *, prob: float = 0.99) -> pl.DataFrame:
        """On-line chart of running batches: :meth:`statistics` of their observations so far.

        Parameters
        ----------
        running
            Aligned frame of the running batches on the model's grid (their future absent or null).
        prob
            Confidence level.

        Returns
        -------
        polars.DataFrame
            As :meth:`statistics`, one row per observed (batch, maturity).

        Raises
        ------
        ModelNotFittedError, ArgumentError, SchemaError, ConfigError
            As :meth:`statistics`.
        """
        return self.statistics(running, prob=prob)

    def limits(self, prob: float = 0.99) -> pl.DataFrame:
        """Score bands per maturity (see the class Notes).

        Parameters
        ----------
        prob
            Mass inside each band.

        Returns
        -------
        polars.DataFrame
            ``maturity, component, mean, lower, upper``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            ``prob`` is not strictly between 0 and 1.
        """
        from scipy.special import stdtrit  # t.ppf(q, df) = stdtrit(df, q); see bioworkbench.monitoring.limits

        if not self._fitted:
            raise ModelNotFittedError("BatchEvolutionModel has no model yet; call .fit(aligned) first.")
        n = self.n_batches_.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = stdtrit(n - 1.0, (1.0 + lim.check_prob(prob)) / 2.0) * np.sqrt(1.0 + 1.0 / n)
        sd = np.sqrt(np.diagonal(self.score_cov_, axis1=1, axis2=2))
        j, a = sd.shape
        return pl.DataFrame(
            {
                "maturity": np.repeat(self.maturities_, a),
                "component": np.tile(np.arange(1, a + 1), j),
                "mean": self.score_mean_.ravel(),
                "lower": (self.score_mean_ - half[:, None] * sd).ravel(),
                "upper": (self.score_mean_ + half[:, None] * sd).ravel(),
            }
        )
