"""The campaign's log-likelihood as a PyTensor Op with a numba implementation, for nutpie's compiled model.

:func:`pack` lays the schedules and observations of several batches end to end (one array per
kind, with offsets); :func:`campaign_loglik_grad` (numba) sums each batch's
``_kernels.loglik_grad`` over them; :func:`campaign_op` applies the Op :class:`TwinLoglik` to a
parameter matrix, initial states and per-observable SDs. The Op has one numba implementation
(registered with PyTensor's numba dispatcher), so that nutpie compiles it into the model's
log-density instead of calling back into Python (the object-mode fallback of
:func:`bioworkbench.twin.op.loglik_op`); its ``perform`` (PyTensor's other modes) calls the same
compiled kernel. The packed data are inputs of the Op (graph constants), so one compilation
serves every campaign.

This module imports PyTensor: import it only where a model is built.

Notes
-----
:math:`\\ell = \\sum_b \\ell_b(\\Theta_b, Y_{0,b}, \\sigma)`; the outputs are :math:`\\ell` and its
gradients with respect to :math:`\\Theta` (B, NTH), :math:`Y_0` (B, NY) and :math:`\\sigma` (NOBS). A
batch whose steps stay unstable after sub-stepping, or whose solution is not finite, makes
:math:`\\ell = -\\infty` with zero gradients (the sampler rejects the point).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from bioworkbench.twin import _kernels as K
from bioworkbench.twin.solver import MAX_DOUBLINGS, BatchLikelihood

__all__ = ["PACKED_FIELDS", "TwinLoglik", "campaign_loglik_grad", "campaign_op", "pack"]

#: PyTensor caches numba compilations by Op type and this number: it follows the generated kernels
_OP_VERSION = int(K.KERNELS_SHA256[:12], 16)

#: the packed arrays, in the Op's input order (after theta, y0, sigma)
PACKED_FIELDS = (
    "offsets", "t_b", "nsub", "u_seg", "jb_start", "j_vout", "j_vin", "j_c", "ob_start", "ob_var",
    "value", "lognormal", "censored", "flags",
)  # fmt: skip


def pack(likelihoods: Sequence[BatchLikelihood], *, check: bool = True, substep: bool = True) -> dict[str, np.ndarray]:
    """The schedules and observations of several batches end to end.

    Parameters
    ----------
    likelihoods
        One :class:`~bioworkbench.twin.solver.BatchLikelihood` per batch (its schedule and sorted
        observations are used).
    check, substep
        The step check and sub-stepping of the solver (see :mod:`bioworkbench.twin.solver`).

    Returns
    -------
    dict
        :data:`PACKED_FIELDS` -> arrays; ``offsets`` is ``(B + 1, 5)``: the start of each batch in
        ``t_b``, in the interval arrays (``nsub, u_seg``), in ``jb_start``/``ob_start``, in the jumps and
        in the observations. ``lognormal``/``censored`` are float 0/1; ``flags`` is ``[check, substep,
        max_doublings]``.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in PACKED_FIELDS if k not in ("offsets", "flags")}
    offsets = np.zeros((len(likelihoods) + 1, 5), dtype=np.int64)
    for i, lik in enumerate(likelihoods):
        s = lik.schedule
        parts["t_b"].append(s.t_b)
        parts["nsub"].append(s.nsub)
        parts["u_seg"].append(s.u_seg.reshape(-1, K.NU))
        parts["jb_start"].append(s.jb_start)
        parts["j_vout"].append(s.j_vout)
        parts["j_vin"].append(s.j_vin)
        parts["j_c"].append(s.j_c.reshape(-1, K.NY))
        parts["ob_start"].append(s.ob_start)
        parts["ob_var"].append(s.ob_var)
        parts["value"].append(lik._value)
        parts["lognormal"].append(lik._lognormal.astype(np.float64))
        parts["censored"].append(lik._censored.astype(np.float64))
        nb = s.t_b.shape[0] - 1
        offsets[i + 1] = offsets[i] + [nb + 1, nb, nb + 2, s.j_vout.shape[0], s.ob_var.shape[0]]
    out = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in parts.items()}
    out["nsub"] = out["nsub"].astype(np.int64)
    out["jb_start"] = out["jb_start"].astype(np.int64)
    out["ob_start"] = out["ob_start"].astype(np.int64)
    out["ob_var"] = out["ob_var"].astype(np.int64)
    out["offsets"] = offsets
    out["flags"] = np.array([int(check), int(substep), MAX_DOUBLINGS], dtype=np.int64)
    return {k: out[k] for k in PACKED_FIELDS}


#: the summed log-likelihood and its gradients over packed batches (compiled by numba): generated into
#: ``_kernels`` with the sweeps it calls, so that numba's on-disk cache follows a change of the model
campaign_loglik_grad = K.campaign_loglik_grad


class TwinLoglik(Op):
    """``(theta, y0, sigma, *packed) -> (loglik, d/dtheta, d/dy0, d/dsigma)``; differentiable in its first output.

    The packed inputs are data (:func:`pack`); the gradient with respect to them is disconnected.
    """

    __props__ = ()

    def make_node(self, theta, y0, sigma, *packed):
        """The Apply node (PyTensor's Op protocol).

        Parameters
        ----------
        theta, y0, sigma
            Parameter matrix (B, NTH), initial states (B, NY), SD per observable (NOBS,).
        *packed
            The arrays of :func:`pack`, in :data:`PACKED_FIELDS` order.

        Returns
        -------
        pytensor.graph.basic.Apply
        """
        ins = [pt.as_tensor_variable(x, dtype="float64") for x in (theta, y0, sigma)]
        ins += [pt.as_tensor_variable(x) for x in packed]
        return Apply(self, ins, [pt.dscalar(), pt.dmatrix(), pt.dmatrix(), pt.dvector()])

    def perform(self, node, inputs, outputs):
        """Evaluate with the compiled kernel (PyTensor's Op protocol).

        Parameters
        ----------
        node
            The Apply node.
        inputs
            Values of the inputs.
        outputs
            Storage of the outputs.
        """
        for out, value in zip(outputs, campaign_loglik_grad(*inputs), strict=True):
            out[0] = np.asarray(value, dtype="float64")

    def pullback(self, inputs, outputs, cotangents):
        """Gradient (PyTensor's Op protocol): the stored gradients times the cotangent of the log-likelihood.

        Parameters
        ----------
        inputs
            The symbolic inputs.
        outputs
            The symbolic outputs.
        cotangents
            Cotangents of the outputs.

        Returns
        -------
        list
            One gradient per input.

        Raises
        ------
        NotImplementedError
            A cotangent of a gradient output (second derivatives) is asked for.
        """
        from pytensor.gradient import DisconnectedType, disconnected_type

        if not all(isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
            raise NotImplementedError("second derivatives of the twin's log-likelihood are not implemented")
        _, g_theta, g_y0, g_sigma = outputs
        g = cotangents[0]
        return [g * g_theta, g * g_y0, g * g_sigma] + [disconnected_type() for _ in inputs[3:]]

    def connection_pattern(self, node):
        """Which outputs depend on which inputs (PyTensor's Op protocol).

        Parameters
        ----------
        node
            The Apply node.

        Returns
        -------
        list
            Per input, per output.
        """
        return [[True, True, True, True]] * 3 + [[False] * 4] * (len(node.inputs) - 3)


@register_funcify_default_op_cache_key(TwinLoglik)
def _numba_twin_loglik(op, node=None, **kwargs):
    @numba_njit
    def twin_loglik(
        theta, y0, sigma, offsets, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
        value, lognormal, censored, flags,
    ):  # fmt: skip
        total, g_theta, g_y0, g_sigma = campaign_loglik_grad(
            theta, y0, sigma, offsets, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
            value, lognormal, censored, flags,
        )  # fmt: skip
        return np.asarray(total), g_theta, g_y0, g_sigma

    return twin_loglik, _OP_VERSION


def campaign_op(theta, y0, sigma, packed: dict[str, np.ndarray]):
    """The summed log-likelihood of the packed batches as a PyTensor scalar.

    Parameters
    ----------
    theta
        Tensor (B, NTH): each batch's parameter vector.
    y0
        Tensor or array (B, NY): each batch's initial state.
    sigma
        Tensor (NOBS,): SD of the log of each observable.
    packed
        From :func:`pack`.

    Returns
    -------
    pytensor.tensor.TensorVariable
        The log-likelihood (scalar), for ``pm.Potential``.
    """
    return TwinLoglik()(theta, y0, sigma, *(packed[k] for k in PACKED_FIELDS))[0]
