"""The campaign's log-likelihood as one PyTensor Op: parameter matrix in, summed log-likelihood out, exact gradient.

:class:`CampaignLikelihood` sums :class:`~bioworkbench.twin.solver.BatchLikelihood` over the batches
of a campaign, the observation SDs given per observable; :func:`loglik_op` wraps it as a PyTensor Op
whose gradient is a second Op, so that hierarchy and priors stay in PyMC (``pm.Potential``) while the
ODE, its adjoint and the observation model run in the compiled kernels. Both Ops read one cached
evaluation: a sampler that asks for the log-density and its gradient at one point solves once.

Under nutpie's numba backend these Ops run in object mode (PyTensor's fallback for Ops without a numba
implementation): a Python call per evaluation, each batch then one compiled kernel call. The twin's
model (:class:`~bioworkbench.twin.model.FedBatchTwin`) uses :mod:`bioworkbench.twin.pt_op` instead,
whose Op has a numba implementation and compiles into nutpie's model.

PyTensor is imported when :func:`loglik_op` is called, not with this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bioworkbench.errors import ArgumentError
from bioworkbench.twin import _kernels as K
from bioworkbench.twin.solver import BatchLikelihood, NonFiniteSolutionError, StiffnessError

__all__ = ["CampaignLikelihood", "loglik_op"]


class CampaignLikelihood:
    """The summed log-likelihood of several batches and its gradient, with the last evaluation cached.

    Parameters
    ----------
    likelihoods
        One :class:`BatchLikelihood` per batch, in the row order of the parameter matrices.

    Notes
    -----
    :math:`\\ell(\\Theta, Y_0, \\sigma) = \\sum_b \\ell_b(\\Theta_b, Y_{0,b}, \\sigma)`, with
    :math:`\\Theta` of shape (batches, NTH), :math:`Y_0` (batches, NY) and :math:`\\sigma` one SD per
    observable (``_kernels.OBSERVABLE_NAMES``; log-scale for lognormal observations). A batch whose
    step check fails beyond sub-stepping or whose solution is not finite makes the sum
    :math:`-\\infty` (zero gradient): the sampler rejects the point.
    """

    def __init__(self, likelihoods: Sequence[BatchLikelihood]) -> None:
        if not likelihoods:
            raise ArgumentError("CampaignLikelihood needs at least one BatchLikelihood.")
        self.likelihoods = list(likelihoods)
        self._key: tuple[bytes, bytes, bytes] | None = None
        self._value: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def n_batches(self) -> int:
        """The number of batches (rows of the parameter matrices)."""
        return len(self.likelihoods)

    def __call__(self, theta, y0, sigma) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """``(loglik, d/dtheta (B, NTH), d/dy0 (B, NY), d/dsigma (NOBS,))`` at the given point.

        Raises
        ------
        ArgumentError
            Shapes that do not match the batches and the model.
        """
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        y0 = np.ascontiguousarray(y0, dtype=np.float64)
        sigma = np.ascontiguousarray(sigma, dtype=np.float64)
        b = self.n_batches
        if theta.shape != (b, K.NTH) or y0.shape != (b, K.NY) or sigma.shape != (K.NOBS,):
            raise ArgumentError(
                f"CampaignLikelihood: theta {theta.shape}, y0 {y0.shape}, sigma {sigma.shape}; expected "
                f"({b}, {K.NTH}), ({b}, {K.NY}) and ({K.NOBS},)."
            )
        key = (theta.tobytes(), y0.tobytes(), sigma.tobytes())
        if key == self._key and self._value is not None:
            return self._value
        total = 0.0
        g_theta = np.zeros((b, K.NTH))
        g_y0 = np.zeros((b, K.NY))
        g_sigma = np.zeros(K.NOBS)
        for i, lik in enumerate(self.likelihoods):
            var = lik.observations.variable
            try:
                res = lik(theta[i], y0[i], sigma[var])
            except (StiffnessError, NonFiniteSolutionError):
                total = -np.inf
                break
            total += res.loglik
            if not np.isfinite(total):
                break
            g_theta[i] = res.grad_theta
            g_y0[i] = res.grad_y0
            g_sigma += np.bincount(var, weights=res.grad_sigma, minlength=K.NOBS)
        if not np.isfinite(total):
            total = -np.inf
            g_theta[:] = 0.0
            g_y0[:] = 0.0
            g_sigma[:] = 0.0
        self._key = key
        self._value = (float(total), g_theta, g_y0, g_sigma)
        return self._value


def loglik_op(likelihood: CampaignLikelihood):
    """A PyTensor Op ``(theta, y0, sigma) -> loglik`` with its exact gradient.

    Parameters
    ----------
    likelihood
        The campaign's batches.

    Returns
    -------
    pytensor.graph.op.Op
        Apply it to a (batches, NTH) matrix, a (batches, NY) matrix and an (NOBS,) vector; the result
        is a scalar, for ``pm.Potential``.
    """
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class _LoglikGrad(Op):
        __props__ = ()

        def make_node(self, theta, y0, sigma):
            ins = [pt.as_tensor_variable(x).astype("float64") for x in (theta, y0, sigma)]
            return Apply(self, ins, [pt.dmatrix(), pt.dmatrix(), pt.dvector()])

        def perform(self, node, inputs, outputs):
            _, g_theta, g_y0, g_sigma = likelihood(*inputs)
            outputs[0][0] = g_theta.copy()
            outputs[1][0] = g_y0.copy()
            outputs[2][0] = g_sigma.copy()

    class _Loglik(Op):
        __props__ = ()

        def make_node(self, theta, y0, sigma):
            ins = [pt.as_tensor_variable(x).astype("float64") for x in (theta, y0, sigma)]
            return Apply(self, ins, [pt.dscalar()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = np.asarray(likelihood(*inputs)[0])

        def pullback(self, inputs, outputs, cotangents):
            g_theta, g_y0, g_sigma = _LoglikGrad()(*inputs)
            (g,) = cotangents
            return [g * g_theta, g * g_y0, g * g_sigma]

    return _Loglik()
