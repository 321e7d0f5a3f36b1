r"""Multivariate statistical process control of batches: batch-wise unfolded PCA with Hotelling's T²,
SPE, control limits and contributions.

:class:`BatchPCA` is the multiway PCA of Nomikos & MacGregor (1994, 1995): one row per batch, the
whole trajectory of every variable as columns; it judges a *completed* batch as a whole
(:meth:`BatchPCA.batch_statistics`, :meth:`BatchPCA.contributions`) and a *running* batch as it
progresses (:meth:`BatchPCA.monitor`). :class:`~bioworkbench.monitoring.BatchEvolutionModel`
(:mod:`bioworkbench.monitoring.evolution`) works on single observations instead.

Where the pieces are: the PCA numerics are :mod:`bioworkbench.monitoring.pca`, the column screening
:mod:`bioworkbench.monitoring.screening`, the control limits :mod:`bioworkbench.monitoring.limits`.

Size: this module is over 600 lines (about 670), by exception. It holds one class; about 350 of its
lines are docstrings (the class Notes, about 130 lines, state every formula the model computes and the
measured reasons for its choices; the rest is the numpydoc of its ten public methods) and about 320
are code. Its numerics, screening and limits are already in the modules above, and cutting the class
in two would split one model's methods by line count rather than by subject.

References
----------
- Nomikos, P. & MacGregor, J. F. (1994). Monitoring batch processes using multiway principal
  component analysis. *AIChE Journal* 40(8), 1361–1375.
- Nomikos, P. & MacGregor, J. F. (1995). Multivariate SPC charts for monitoring batch processes.
  *Technometrics* 37(1), 41–59.
- Nelson, P. R. C., Taylor, P. A. & MacGregor, J. F. (1996). Missing data methods in PCA and PLS:
  score calculations with incomplete observations. *Chemometrics Intell. Lab. Syst.* 35, 45–65.
- Arteaga, F. & Ferrer, A. (2002). Dealing with missing data in MSPC: several methods, different
  interpretations, some examples. *J. Chemometrics* 16, 408–418.
- van Sprang, E. N. M., Ramaker, H.-J., Westerhuis, J. A., Gurden, S. P. & Smilde, A. K. (2002).
  Critical evaluation of approaches for on-line batch process monitoring. *Chem. Eng. Sci.* 57,
  3979–3991.
- Westerhuis, J. A., Gurden, S. P. & Smilde, A. K. (2000). Generalized contribution plots in
  multivariate statistical process monitoring. *Chemometrics Intell. Lab. Syst.* 51, 95–114.
- Limits: see :mod:`bioworkbench.monitoring.limits`.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import polars as pl

from bioworkbench.errors import BioWorkbenchWarning, ConfigError, ModelNotFittedError
from bioworkbench.monitoring import limits as lim
from bioworkbench.monitoring.evolution import BatchEvolutionModel
from bioworkbench.monitoring.grid import BatchArray, _aligned_frame, to_batch_array
from bioworkbench.monitoring.limits import _chart, _exceeds
from bioworkbench.monitoring.pca import (
    _check_components,
    _cross_validated,
    _online,
    _online_reference,
    _pca_fit,
    _project,
)
from bioworkbench.monitoring.screening import _screen_columns, _screening_frame, _screening_note
from bioworkbench.schema import suggest

__all__ = ["BatchEvolutionModel", "BatchPCA"]

_ALGORITHMS = ("auto", "nipals", "svd")


class BatchPCA:
    r"""Batch-wise unfolded (multiway) PCA of aligned batches, with T², SPE and their limits.

    Parameters
    ----------
    n_components
        Number of principal components :math:`A`.
    algorithm
        ``"auto"`` (exact SVD when the reference data are complete, NIPALS when values are
        missing), ``"svd"`` (complete data only) or ``"nipals"``.
    online
        How :meth:`monitor` estimates the scores of a running batch from its known part:
        ``"tsr"`` (trimmed score regression, default) or ``"pmp"`` (projection to the model plane).
    cv_folds
        The SPE limits of *new* batches (whole and on-line) come from cross-validated residuals:
        reference batch ``i`` is left out with its fold ``i mod cv_folds`` and projected on the
        model of the other folds. ``None``: from the fitted residuals, like the reference batches'.
    single_batch_columns
        ``"keep"`` (default) or ``"exclude"`` the (maturity, variable) columns whose spread among the
        reference batches is one batch's departure from all the others (see Notes, *screening*).
    tol, max_iter
        NIPALS convergence: relative change of the score vector below ``tol``.

    Attributes
    ----------
    batch_ids_, variables_, maturities_
        Set by :meth:`fit`, as every attribute below. Reference batches, variables and maturity grid
        (``J`` maturities, ``K`` variables).
    mean_, scale_
        Column means and standard deviations, shape ``(J, K)``.
    inactive_
        Columns left out of the model, shape ``(J, K)``; why: :attr:`screening_`, :attr:`excluded_`,
        :attr:`excluded_variables`.
    screening_
        One row per screened column: ``variable, maturity, reason`` (``"too few values"``, ``"no
        variation"``, ``"one batch"``), ``action`` (``"excluded"``/``"kept"``), ``batch_id`` (the
        departing batch), ``deviation`` (:math:`\max_i r_{ic}`), ``cutoff``, ``n_values``, ``mean``,
        ``sd``, ``sd_others`` (SD without that batch).
    loadings_
        :math:`P`, shape ``(J, K, A)``; ``scores_`` :math:`T`, shape ``(n, A)``.
    cv_n_iter_
        NIPALS iterations of each cross-validation fold (``max_iter``: stopped before the
        tolerance; folds do not warn, their loadings only set the limits of new batches).
    score_variance_
        :math:`s_a^2 = \sum_i t_{ia}^2/(n-1)`.
    explained_
        :math:`R^2` of each component: its share of the sum of squares of the scaled data.

    Notes
    -----
    **Unfolding and scaling.** The reference batches :math:`i = 1..n` form :math:`X` of shape
    :math:`n \times JK`, column :math:`jK + k` holding variable :math:`k` at maturity :math:`j`
    (Nomikos & MacGregor 1994). Each column is mean-centred and scaled to unit variance with its
    mean and standard deviation (divisor :math:`n-1`) over the batches where it is observed, so the
    model describes deviations from the average trajectory.

    **Screening of columns** (before the fit; the result is :attr:`screening_`, and one
    :class:`~bioworkbench.errors.BioWorkbenchWarning` per fit names the columns by variable and
    maturity). A column is *left out* of the model and of SPE (``inactive_``, :attr:`excluded_`,
    :attr:`excluded_variables`) when it carries no information on normal variation: fewer than 3
    values, or no variation (SD :math:`\le 10^{-9}|\bar x|`, round-off of a constant such as a
    flow that is off in every batch). A column is *marked* ``"one batch"`` when its spread among
    the reference batches is one batch's departure from all the others: with :math:`n_c` values,
    batch :math:`i` lies :math:`r_{ic} = |x_{ic} - \bar x_{c,-i}|/s_{c,-i}` standard deviations of
    the other batches from their mean, and the column is marked when
    :math:`\max_i r_{ic} > \max(\sqrt{p},\ r_{chance})`, where :math:`p` is the number of
    informative columns and :math:`r_{chance} = \sqrt{1 + 1/(n_c-1)}\,t_{n_c-2}(1 - 0.001/(2 n_c p))`
    is the largest :math:`r` that normal data reach with family-wise probability 0.001 (the
    leave-one-out deviation of a Gaussian sample is :math:`t_{n_c-2}`-distributed; Bonferroni over
    all cells). Above :math:`\sqrt{p}` a single cell of one batch, :math:`r^2`, outweighs the whole
    expected sum of squares of a scaled batch (:math:`p`), so without that batch the column looks
    constant. Marked columns stay in the model by default (``single_batch_columns="keep"``): they
    are where that reference batch is abnormal, and leaving them out would hide it (FMC batch 40,
    DuPont batch 49); the warning names the batch so that it can be taken out of the reference
    set. ``single_batch_columns="exclude"`` leaves them out instead. A column left out is left out
    everywhere: in the scores, SPE and contributions (0) of reference, new and running batches
    (:meth:`monitor`), and in every cross-validation fold behind the limits.

    **PCA.** :math:`Z = TP^\top + E` with orthonormal loadings, from the SVD of :math:`Z` when it is
    complete, else by NIPALS with missing data (missing cells are skipped in every regression, not
    filled; Nelson, Taylor & MacGregor 1996). Sign: each loading vector's largest element is positive.

    **Statistics of a batch.** :math:`T^2 = \sum_a t_a^2/s_a^2` (dimensionless);
    :math:`SPE = \sum_c e_c^2` over its observed columns (units of the scaled data). A new batch
    (not in the reference set) with missing values is projected to the model plane with its
    observed columns: :math:`t = (P_*^\top P_*)^{+}P_*^\top z_*`.

    **Limits** at confidence ``prob``: T² of reference batches
    :math:`\frac{(n-1)^2}{n}B_{prob}(\frac{A}{2},\frac{n-A-1}{2})` (Tracy, Young & Mason 1992),
    of new batches :math:`\frac{A(n^2-1)}{n(n-A)}F_{prob}(A, n-A)`; SPE by Box's
    :math:`g\chi^2_h` with :math:`g = v/(2m)`, :math:`h = 2m^2/v` from the mean :math:`m` and variance
    :math:`v` of the reference SPE (Box 1954; Nomikos & MacGregor 1995), or by Jackson & Mudholkar
    (1979) from the eigenvalues of :math:`E^\top E/(n-1)`. The residuals :math:`E` behind the
    SPE limit of a *reference* batch are the fitted ones. A new batch is not fitted: with many
    columns and few batches its SPE is clearly larger than a reference batch's (in the demo data,
    38 batches × 336 columns, the fitted limit flags about a third of new normal batches), so
    by default the SPE limits of new batches and of the on-line charts use cross-validated
    residuals (each reference batch projected on a model fitted without its fold, as van Sprang
    et al. 2002 propose after finding limits from the fitted residuals too narrow);
    ``cv_folds=None`` uses the fitted residuals for both, as Nomikos & MacGregor (1995) and
    pyphi-mvda do. Each fold refits the means, the scaling and the PCA on the model's columns,
    except that a column's SD in a fold is not taken below half the model's
    (``pca.CV_SCALE_FLOOR``): when the batches that make a column vary are all in the
    left-out fold, the others look constant, and dividing the left-out batches by their tiny SD
    put single cells at :math:`10^6` and the on-line limits at :math:`10^6` (DuPont without
    batches 49, 50, 53–55: Press-1 at maturities 17–18, where batch 52 alone departs from an SD of
    0.0009; the cumulative SPE limit was 1.09·10⁶ against reference values up to 930, it is now
    5.5·10³). For columns that vary through many batches the floor never binds (a fold's SD is
    within a few tens of per cent of the model's).

    **On-line monitoring** (:meth:`monitor`): at maturity :math:`k` the future of a running batch
    is treated as missing data (Nomikos & MacGregor 1995) and the scores are estimated from the
    known part :math:`z_*` (maturities :math:`\le k`, loadings :math:`P_*`; Arteaga & Ferrer 2002):
    ``online="pmp"``, projection to the model plane :math:`t = (P_*^\top P_*)^{+}P_*^\top z_*`
    (unstable early in the batch, when few columns are known); ``online="tsr"``, trimmed score
    regression :math:`t = B_k^\top P_*^\top z_*` with :math:`B_k` the least-squares regression of
    the reference scores :math:`T` on the reference trimmed scores :math:`Z_*P_*` (it shrinks the
    scores towards 0 while little is known; equal to :math:`t = P^\top z` once the batch is
    complete). Missing values inside the known part are left out of :math:`P_*` and :math:`z_*`
    by ``"pmp"`` and count as 0 (the reference mean) in the trimmed scores of ``"tsr"``. The
    instantaneous :math:`SPE_k` uses the residuals at maturity :math:`k` only; ``spe_known``
    those of all known maturities. Their limits at each maturity are Box's :math:`g\chi^2_h`
    fitted to the same statistics of the reference batches passed through the same on-line
    procedure (cross-validated, see ``cv_folds``). The T² limit is the new-batch F limit at all
    maturities (conservative early on with ``"tsr"``; with ``"pmp"`` the first maturities give
    false alarms).
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        algorithm: Literal["auto", "nipals", "svd"] = "auto",
        online: Literal["tsr", "pmp"] = "tsr",
        cv_folds: int | None = 7,
        single_batch_columns: Literal["keep", "exclude"] = "keep",
        tol: float = 1e-10,
        max_iter: int = 5000,
    ) -> None:
        self.n_components = _check_components(n_components)
        if algorithm not in _ALGORITHMS:
            raise ConfigError(f"unknown algorithm {algorithm!r}. {suggest(algorithm, _ALGORITHMS)}")
        if online not in ("tsr", "pmp"):
            raise ConfigError(f"unknown online method {online!r}. {suggest(online, ['tsr', 'pmp'])}")
        if cv_folds is not None and (isinstance(cv_folds, bool) or not isinstance(cv_folds, int) or cv_folds < 2):
            raise ConfigError(
                f"cv_folds must be an integer ≥ 2, or None for limits from the fitted residuals; found {cv_folds!r}"
            )
        if single_batch_columns not in ("keep", "exclude"):
            raise ConfigError(
                f"unknown single_batch_columns={single_batch_columns!r}. "
                f"{suggest(str(single_batch_columns), ['keep', 'exclude'])}"
            )
        self.algorithm, self.online, self.cv_folds = algorithm, online, cv_folds
        self.single_batch_columns = single_batch_columns
        self.tol, self.max_iter = float(tol), int(max_iter)
        self._regression: np.ndarray | None = None
        self._fitted = False

    def __repr__(self) -> str:
        fit = f", fitted to {len(self.batch_ids_)} batches" if self._fitted else ""
        return f"BatchPCA(n_components={self.n_components}{fit})"

    # ----------------------------------------------------------------------------------------
    def fit(self, aligned: pl.DataFrame | pl.LazyFrame, *, warn: bool = True) -> BatchPCA:
        """Fit the model to the reference (normal operation) batches.

        Parameters
        ----------
        aligned
            Tidy aligned frame ``batch_id, maturity, variable, value`` (see
            :func:`~bioworkbench.monitoring.align_by_time`); null values are missing data.
        warn
            Emit the screening warning (default); ``False``: its text is only in
            ``screening_note_`` (and the details in :attr:`screening_`), e.g. for a report.

        Returns
        -------
        BatchPCA
            The fitted model (``self``).

        Raises
        ------
        ArgumentError
            ``aligned`` is not a frame (e.g. a Campaign): the message says how to align one.
        SchemaError
            Invalid frame, or a batch without any value of a variable (naming both).
        ConfigError
            Fewer than ``n_components + 2`` reference batches, or more components than columns;
            ``algorithm="svd"`` with missing values.

        Warns
        -----
        BioWorkbenchWarning
            Once, when columns are left out or marked by the screening (see Notes), unless
            ``warn=False``; the same sentence is ``screening_note_`` ("" when nothing was screened).
        """
        arr = to_batch_array(aligned, require_values=True, what="reference", function="BatchPCA.fit")
        n, a = len(arr.batch_ids), self.n_components
        if n < a + 2:
            raise ConfigError(
                f"BatchPCA(n_components={a}) needs at least {a + 2} reference batches (n ≥ A + 2 for the T² "
                f"limits); the aligned frame has {n}: {', '.join(arr.batch_ids[:10])}. "
                "Use fewer components or more reference batches."
            )
        x, shape = arr.unfolded, arr.values.shape[1:]
        screen = _screen_columns(x)
        keep = screen["active"]
        if self.single_batch_columns == "exclude":
            keep = keep & (screen["reason"] != "one batch")
        self.screening_ = _screening_frame(screen, arr, keep)
        fit = _pca_fit(x, a, algorithm=self.algorithm, tol=self.tol, max_iter=self.max_iter, keep=keep)
        z, m, t, p = fit["z"], fit["m"], fit["t"], fit["p"]
        self.algorithm_, self.n_iter_ = fit["algorithm"], fit["n_iter"]
        self.batch_ids_, self.variables_, self.maturities_ = arr.batch_ids, arr.variables, arr.maturities
        self.mean_, self.scale_ = fit["mean"].reshape(shape), fit["scale"].reshape(shape)
        self.inactive_ = ~fit["active"].reshape(shape)
        self.loadings_, self.scores_ = p.reshape(*shape, a), t
        self.score_variance_ = np.sum(t * t, axis=0) / (n - 1)
        explained = [np.sum(((z - t[:, :c] @ p[:, :c].T) * m) ** 2) for c in range(a + 1)]
        self.explained_ = -np.diff(explained) / np.sum(z * z)
        self._x, self._z, self._m, self._e = x, z, m, (z - t @ p.T) * m
        self._regression, online = _online_reference(z, m, t, self.loadings_, self.online)
        self._fitted = True
        self._theta: dict[str, tuple[float, float, float]] = {}
        self.cv_n_iter_: list[int] = []
        if self.cv_folds is None:
            self._e_new, self._online_new = self._e, online
        else:
            self._e_new, self._online_new, self.cv_n_iter_ = _cross_validated(
                x,
                t,
                shape,
                min(self.cv_folds, n),
                algorithm=self.algorithm,
                tol=max(self.tol, 1e-7),
                max_iter=self.max_iter,
                online=self.online,
                keep=fit["active"],
                scale=fit["scale"],
            )  # a looser NIPALS tolerance: SPE is second-order in errors of P
        note = _screening_note(self.screening_, arr.maturities, x.shape[1])
        self.screening_note_ = note
        if note and warn:
            warnings.warn(f"BatchPCA.fit: {note}", BioWorkbenchWarning, stacklevel=2)
        return self

    @property
    def excluded_(self) -> pl.DataFrame:
        """The (variable, maturity) columns left out of the model, with why: the rows of
        :attr:`screening_` whose ``action`` is ``"excluded"``."""
        self._check_fitted()
        return self.screening_.filter(pl.col("action") == "excluded")

    @property
    def excluded_variables(self) -> pl.DataFrame:
        """Per variable and reason, the maturities left out of the model.

        Returns
        -------
        polars.DataFrame
            ``variable, reason, n_maturities, first_maturity, last_maturity, all_maturities, batch_ids``
            (``batch_ids``: the reference batches whose departure the columns carry, for reason
            ``"one batch"``; empty otherwise). A variable with ``all_maturities`` true is out of the
            model altogether.
        """
        ex = self.excluded_
        return (
            ex.group_by("variable", "reason", maintain_order=True)
            .agg(
                n_maturities=pl.len(),
                first_maturity=pl.col("maturity").min(),
                last_maturity=pl.col("maturity").max(),
                batch_ids=pl.col("batch_id").drop_nulls().unique(maintain_order=True),
            )
            .with_columns(all_maturities=pl.col("n_maturities") == self.maturities_.size)
            .select("variable", "reason", "n_maturities", "first_maturity", "last_maturity", "all_maturities",
                    "batch_ids")
        )  # fmt: skip

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise ModelNotFittedError("BatchPCA has no model yet; call .fit(aligned) first.")

    def _array(
        self, frame: pl.DataFrame | pl.LazyFrame, what: str, function: str
    ) -> tuple[BatchArray, np.ndarray, np.ndarray]:
        arr = to_batch_array(
            frame,
            variables=self.variables_,
            maturities=self.maturities_,
            require_values=False,
            what=what,
            function=function,
        )
        x = arr.unfolded
        m = ~np.isnan(x) & ~self.inactive_.ravel()
        z = np.where(m, (x - self.mean_.ravel()) / self.scale_.ravel(), 0.0)
        return arr, z, m

    def _statistics(self, z: np.ndarray, m: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e = (z - t @ self.loadings_.reshape(-1, self.n_components).T) * m
        return np.sum(t**2 / self.score_variance_, axis=1), np.sum(e * e, axis=1), e

    def spe_limit(
        self,
        prob: float = 0.99,
        *,
        method: Literal["box", "jackson_mudholkar"] = "box",
        reference: bool = False,
    ) -> float:
        """SPE limit of a whole batch (see the class Notes for both methods and both cases).

        Parameters
        ----------
        prob
            Confidence level.
        method
            ``"box"`` (moment-matched :math:`g\\chi^2_h` of the reference SPE values) or
            ``"jackson_mudholkar"`` (from the residual eigenvalues).
        reference
            The limit of a batch of the reference set (fitted residuals); default: of a new batch
            (cross-validated residuals unless ``cv_folds=None``).

        Returns
        -------
        float
            The limit, in units of the scaled data's sum of squares (NaN with a warning where the
            Jackson–Mudholkar limit is undefined).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        ConfigError
            An unknown ``method``; ``prob`` not strictly between 0 and 1.
        """
        self._check_fitted()
        e = self._e if reference else self._e_new
        if method == "box":
            return lim.spe_limit_box(np.sum(e**2, axis=1), prob)
        if method == "jackson_mudholkar":
            key = "reference" if reference else "new"
            if key not in self._theta:
                self._theta[key] = lim.residual_theta(e)
            return lim.spe_limit_jackson_mudholkar(self._theta[key], prob)
        raise ConfigError(f"unknown SPE limit method {method!r}. {suggest(method, ['box', 'jackson_mudholkar'])}")

    # ----------------------------------------------------------------------------------------
    def batch_statistics(
        self,
        aligned: pl.DataFrame | pl.LazyFrame | None = None,
        *,
        prob: float = 0.99,
        spe_method: Literal["box", "jackson_mudholkar"] = "box",
    ) -> pl.DataFrame:
        """Scores, T² and SPE of each completed batch, with their limits.

        Parameters
        ----------
        aligned
            New batches to judge (aligned on the model's grid; missing values allowed). Default:
            the reference batches.
        prob
            Confidence level of the limits.
        spe_method
            ``"box"`` (moment-matched :math:`g\\chi^2_h`) or ``"jackson_mudholkar"``.

        Returns
        -------
        polars.DataFrame
            ``batch_id``, ``t_1 … t_A``, ``t2``, ``t2_limit`` (Beta limit for reference batches,
            F limit for new ones), ``spe``, ``spe_limit`` (from the fitted residuals for reference
            batches, from cross-validated ones for new batches unless ``cv_folds=None``),
            ``t2_flag``, ``spe_flag`` (above the limit) and ``prob``.
        """
        self._check_fitted()
        n = len(self.batch_ids_)
        if aligned is None:
            ids, t = self.batch_ids_, self.scores_
            t2, spe, _ = self._statistics(self._z, self._m, t)
            t2_limit = lim.t2_limit_training(n, self.n_components, prob)
        else:
            arr, z, m = self._array(aligned, "new batches", "BatchPCA.batch_statistics")
            ids, t = arr.batch_ids, _project(z, m, self.loadings_.reshape(-1, self.n_components))
            t2, spe, _ = self._statistics(z, m, t)
            t2_limit = lim.t2_limit_new(n, self.n_components, prob)
        spe_limit = self.spe_limit(prob, method=spe_method, reference=aligned is None)
        return pl.DataFrame(
            {
                "batch_id": ids,
                **{f"t_{a + 1}": t[:, a] for a in range(self.n_components)},
                "t2": t2,
                "t2_limit": np.full(len(ids), t2_limit),
                "spe": spe,
                "spe_limit": np.full(len(ids), spe_limit),
                "t2_flag": _exceeds(t2, t2_limit),
                "spe_flag": _exceeds(spe, spe_limit),
                "prob": np.full(len(ids), float(prob)),
            }
        )

    def contributions(
        self,
        batch_id: str,
        *,
        aligned: pl.DataFrame | pl.LazyFrame | None = None,
        by: Literal["variable", "maturity", "cell"] = "variable",
        prob: float = 0.99,
    ) -> pl.DataFrame:
        r"""Contributions of variables (and maturities) to the T² and SPE of one batch.

        Parameters
        ----------
        batch_id
            A reference batch, or a batch of ``aligned``.
        aligned
            Aligned frame holding ``batch_id`` when it is not a reference batch.
        by
            Sum the cell contributions per ``"variable"`` (over maturities), per ``"maturity"``
            (over variables), or return every ``"cell"`` (maturity × variable).
        prob
            Confidence level of the contribution limits ``spe_limit``.

        Returns
        -------
        polars.DataFrame
            ``batch_id``, the grouping column(s), ``spe`` and ``t2`` contributions and
            ``spe_limit``; for cells also ``value`` (raw), ``mean`` (reference mean) and
            ``residual`` (scaled, signed). Sort by ``spe / spe_limit`` to rank variables against
            their normal size, by ``spe`` for their share of the batch's SPE.

        Notes
        -----
        SPE contribution of cell :math:`c`: :math:`e_c^2`, the squared residual of the scaled data
        (they sum to SPE). T² contribution (Westerhuis, Gurden & Smilde 2000):
        :math:`\sum_a (t_a/s_a^2)\,p_{a,c}\,z_c` with :math:`z_c` the scaled value (0 when missing);
        they sum to T² exactly when the batch is complete, and can be negative. A batch of
        ``aligned`` is projected with its observed cells (projection to the model plane), so the
        contributions of a running batch cover its known part.

        A variable with large normal residuals (many maturities, noisy) has a large SPE
        contribution in every batch; ``spe_limit`` puts it in proportion: Box's
        :math:`g\chi^2_h` limit (see :func:`~bioworkbench.monitoring.spe_limit_box`) fitted to
        the same contribution (same variable, maturity or cell) of the reference batches, from
        their fitted residuals for a reference batch and their cross-validated residuals for a
        new one (contribution limits in the spirit of Westerhuis, Gurden & Smilde 2000).

        Raises
        ------
        ConfigError
            An unknown batch (with the closest names) or ``by``.
        SchemaError
            An invalid ``aligned`` frame (as in :meth:`monitor`).
        """
        self._check_fitted()
        if by not in ("variable", "maturity", "cell"):
            raise ConfigError(f"unknown by={by!r}. {suggest(str(by), ['variable', 'maturity', 'cell'])}")
        p = self.loadings_.reshape(-1, self.n_components)
        if aligned is None:
            if batch_id not in self.batch_ids_:
                raise ConfigError(
                    f"batch {batch_id!r} is not a reference batch of this model; pass its data with "
                    f"aligned=... {suggest(batch_id, self.batch_ids_, what='Reference batches')}"
                )
            i = self.batch_ids_.index(batch_id)
            x, z, m, t = self._x[i], self._z[i], self._m[i], self.scores_[i]
        else:
            arr, zz, mm = self._array(aligned, "aligned", "BatchPCA.contributions")
            if batch_id not in arr.batch_ids:
                raise ConfigError(
                    f"batch {batch_id!r} is not in the aligned frame. "
                    f"{suggest(batch_id, arr.batch_ids, what='Batches')}"
                )
            i = arr.batch_ids.index(batch_id)
            x, z, m = arr.unfolded[i], zz[i], mm[i]
            t = _project(z[None], m[None], p)[0]
        e = (z - p @ t) * m
        j, k = self.mean_.shape
        cells = pl.DataFrame(
            {
                "batch_id": pl.Series([batch_id] * (j * k), dtype=pl.String),
                "maturity": np.repeat(self.maturities_, k),
                "variable": self.variables_ * j,
                "value": x,
                "mean": self.mean_.ravel(),
                "residual": e,
                "spe": e * e,
                "t2": z * (p @ (t / self.score_variance_)),
            }
        ).with_columns(pl.col("value").fill_nan(None))
        ref = ((self._e if aligned is None else self._e_new) ** 2).reshape(len(self.batch_ids_), j, k)
        if by == "cell":
            return cells.with_columns(spe_limit=lim.spe_limit_box(ref.reshape(ref.shape[0], -1), prob))
        ref_limit = lim.spe_limit_box(ref.sum(axis=1) if by == "variable" else ref.sum(axis=2), prob)
        out = cells.group_by("batch_id", by, maintain_order=True).agg(pl.col("spe", "t2").sum())
        return out.with_columns(spe_limit=ref_limit)

    def monitor(self, running: pl.DataFrame | pl.LazyFrame, *, prob: float = 0.99) -> pl.DataFrame:
        """On-line T² and SPE of running batches, maturity by maturity, against their limits.

        Parameters
        ----------
        running
            Aligned frame of one or more batches known up to their current maturity (on the
            model's grid; later maturities absent or null). Its ``time_h`` column, if any, is kept.
        prob
            Confidence level of the limits.

        Returns
        -------
        polars.DataFrame
            One row per batch and maturity up to the batch's last maturity with a value:
            ``batch_id, maturity, t_1 … t_A, t2, t2_limit, spe, spe_limit, spe_known,
            spe_known_limit, t2_flag, spe_flag, prob`` (and ``time_h``). ``spe`` is the
            instantaneous SPE at that maturity; ``spe_known`` the SPE of all maturities known then.

        Raises
        ------
        SchemaError
            Missing columns, unknown variables (with the closest names), maturities off the
            model's grid, duplicated cells, a batch without rows for a model variable (naming
            batch and variable).

        Notes
        -----
        See the class Notes: projection with the future as missing data; per-maturity Box limits
        from the reference batches passed through the same procedure; the F limit for T².
        """
        self._check_fitted()
        running = _aligned_frame(running, function="BatchPCA.monitor", argument="running")
        arr, z, m = self._array(running, "running batch", "BatchPCA.monitor")
        n_b, (n_j, n_k) = len(arr.batch_ids), self.mean_.shape
        seen = m.reshape(n_b, n_j, n_k).any(axis=2)
        t, spe, spe_known = _online(
            z.reshape(n_b, n_j, n_k), m.reshape(n_b, n_j, n_k), self.loadings_, self._regression
        )
        t2 = np.sum(t**2 / self.score_variance_, axis=2)
        last = n_j - 1 - np.argmax(seen[:, ::-1], axis=1)
        keep = (np.arange(n_j)[None, :] <= last[:, None]) & seen.any(axis=1)[:, None]
        out = _chart(
            arr.batch_ids,
            self.maturities_,
            keep,
            t,
            prob,
            t2=t2,
            t2_limit=lim.t2_limit_new(len(self.batch_ids_), self.n_components, prob),
            spe=spe,
            spe_limit=lim.spe_limit_box(self._online_new[0], prob),
            spe_known=spe_known,
            spe_known_limit=lim.spe_limit_box(self._online_new[1], prob),
        )
        if "time_h" in running.columns:
            times = running.group_by("batch_id", "maturity").agg(pl.col("time_h").first())
            out = out.join(
                times.with_columns(pl.col("batch_id").cast(pl.String), pl.col("maturity").cast(pl.Float64)),
                on=["batch_id", "maturity"],
                how="left",
            )
        return out

    def loadings(self) -> pl.DataFrame:
        """The loadings as a tidy frame.

        Returns
        -------
        polars.DataFrame
            ``maturity, variable, component, loading`` (0 for columns left out of the model).

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        """
        self._check_fitted()
        j, k, a = self.loadings_.shape
        return pl.DataFrame(
            {
                "maturity": np.repeat(self.maturities_, k * a),
                "variable": np.repeat(np.asarray(self.variables_, dtype=object), a).tolist() * j,
                "component": np.tile(np.arange(1, a + 1), j * k),
                "loading": self.loadings_.ravel(),
            }
        )

    def summary(self) -> pl.DataFrame:
        """One row per component: score variance :math:`s_a^2`, :math:`R^2` and cumulative :math:`R^2`.

        Returns
        -------
        polars.DataFrame
            ``component, score_variance, r2, r2_cumulative``.

        Raises
        ------
        ModelNotFittedError
            The model has not been fitted.
        """
        self._check_fitted()
        return pl.DataFrame(
            {
                "component": np.arange(1, self.n_components + 1),
                "score_variance": self.score_variance_,
                "r2": self.explained_,
                "r2_cumulative": np.cumsum(self.explained_),
            }
        )
