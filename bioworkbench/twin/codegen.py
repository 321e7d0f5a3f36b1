"""Generate the numba kernels of the twin from the sympy declaration in :mod:`bioworkbench.twin.equations`.

The generated module, ``bioworkbench/twin/_kernels.py``, is committed (so that ``bioworkbench.twin``
needs neither sympy nor code generation at run time, and numba can cache its compiled code with
``cache=True``); ``tests/test_twin_numerics.py`` checks that it is what this generator writes.
Regenerate after changing the equations with::

    .venv/bin/python -m bioworkbench.twin.codegen

What is generated:

- from the declaration, with common subexpressions shared (``sympy.cse``): the right-hand side
  ``rhs(y, th, u, out)``; the dense Jacobian ``jac``; the vector-Jacobian products
  ``vjp(y, th, u, lam, out_y, out_th)`` giving :math:`(\\partial f/\\partial y)^T\\lambda` and adding
  :math:`(\\partial f/\\partial\\theta)^T\\lambda`; the volume jump and its transposed Jacobian; the
  observables and their gradients;
- model-independent code written once in :data:`_TEMPLATE`: the classic RK4 step with its stage
  states, the discrete adjoint of that step, the stability check of a step against the
  Jacobian's eigenvalues, the forward sweep over intervals separated by jumps, the reverse
  (adjoint) sweep, and the observation log-likelihood (normal or lognormal, left-censored below a
  limit of detection). It is copied into the generated module rather than imported from a module
  of its own: numba's on-disk cache (``cache=True``) does not notice a change in a function that a
  cached function calls from another file, so sweeps cached against an old right-hand side would
  survive a change of the model.

Size: about 480 of its lines are the template of the generated code (:data:`_TEMPLATE`, one string:
the sweeps, the campaign sum and the loops over posterior draws), not functions of this module.

Notes
-----
**Discrete adjoint of RK4** (the exact gradient of the computed solution, not of the ODE; Hager
2000, *Numer. Math.* 87:247, and Sandu 2006 on adjoints of Runge-Kutta methods). One step
:math:`y^+ = y + \\tfrac h6(k_1+2k_2+2k_3+k_4)` with :math:`k_1=f(y)`, :math:`k_2=f(y+\\tfrac h2k_1)`,
:math:`k_3=f(y+\\tfrac h2k_2)`, :math:`k_4=f(y+hk_3)`; given :math:`\\bar y^+`, with
:math:`J_i` the Jacobian at stage :math:`i`:

.. math::

    a_4 &= \\tfrac h6\\bar y^+,\\quad v_4 = J_4^T a_4;\\qquad
    a_3 = \\tfrac h3\\bar y^+ + h v_4,\\quad v_3 = J_3^T a_3\\\\
    a_2 &= \\tfrac h3\\bar y^+ + \\tfrac h2 v_3,\\quad v_2 = J_2^T a_2;\\qquad
    a_1 = \\tfrac h6\\bar y^+ + \\tfrac h2 v_2,\\quad v_1 = J_1^T a_1\\\\
    \\bar y &= \\bar y^+ + v_1+v_2+v_3+v_4,\\qquad
    \\bar\\theta \\mathrel{+}= \\textstyle\\sum_i (\\partial f/\\partial\\theta)_i^T a_i .

A jump :math:`y^+ = g(y)` passes :math:`\\bar y = (\\partial g/\\partial y)^T\\bar y^+`, evaluated at the
state just before the jump; an observation taken at a jump time sees that pre-jump state.

**Stability**: the RK4 amplification factor is :math:`R(z) = 1+z+z^2/2+z^3/6+z^4/24`; a step is
stable when :math:`|R(h\\lambda)| \\le 1` for every eigenvalue :math:`\\lambda` of the Jacobian with
:math:`\\operatorname{Re}\\lambda \\le 0` (and :math:`|h\\lambda| \\le 2.5` for growing modes); a step
that makes a state negative fails too, as the exact solution stays non-negative (a substrate
running out faster than the step resolves overshoots below zero, past the Monod pole at
:math:`-K`). The check runs at the first step of every interval and at every step whose stiffness estimate from its
own stages, :math:`h\\lVert k_4-k_3\\rVert/\\lVert y_4-y_3\\rVert` in norms weighted by
:math:`1/(|y|+10^{-6})` (Hairer & Wanner, *Solving ODEs II*, IV.2), exceeds 1: it costs no extra
evaluation, and an instability that starts between checks grows along the dominant eigenvector
and trips it within a few steps, after which the whole interval is integrated again. The
eigenvalues are computed only when a cheap bound on the spectral radius (Gershgorin, on the
Jacobian and on its diagonally scaled version :math:`D^{-1}JD`, :math:`D=\\operatorname{diag}(|y|)`)
times :math:`h` exceeds 2.5, a half-disc inside the stability region.

**Tape**: the forward sweep records every step's stage states (4 x NY per step) so that the reverse
sweep needs no second integration; when sub-stepping outgrows the tape, the reverse sweep
integrates each interval again from its stored start state instead.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from bioworkbench.twin.equations import (
    INITIAL_FROM_PARAMETERS,
    INPUTS,
    OBSERVABLES,
    STATES,
    SymbolicModel,
    symbolic_model,
)

__all__ = ["KERNELS_PATH", "generate_source", "write_kernels"]

#: where the generated module lives
KERNELS_PATH = Path(__file__).with_name("_kernels.py")

_PRINTER = PythonCodePrinter({"standard": "python3", "fully_qualified_modules": True})


def _block(exprs: list[sp.Expr], targets: list[str], *, accumulate: bool = False, indent: str = "    ") -> list[str]:
    """Lines that compute ``exprs`` into ``targets``, sharing common subexpressions."""
    keep = [(e, t) for e, t in zip(exprs, targets, strict=True) if not (accumulate and e == 0)]
    if not keep:
        return []
    replacements, reduced = sp.cse([e for e, _ in keep], symbols=sp.numbered_symbols("_x"), optimizations="basic")
    lines = [f"{indent}{_PRINTER.doprint(sym)} = {_PRINTER.doprint(expr)}" for sym, expr in replacements]
    op = "+=" if accumulate else "="
    lines += [f"{indent}{t} {op} {_PRINTER.doprint(e)}" for (_, t), e in zip(keep, reduced, strict=True)]
    return lines


def _unpack(names: tuple[sp.Symbol, ...], array: str, indent: str = "    ") -> list[str]:
    return [f"{indent}{s.name} = {array}[{i}]" for i, s in enumerate(names)]


def _model_kernels(m: SymbolicModel) -> list[str]:
    ny, nth = len(m.y), len(m.theta)
    lam = sp.symbols([f"lam_{s.name}" for s in m.y], real=True)
    jac_y = sp.Matrix(m.rhs).jacobian(m.y)
    jac_th = sp.Matrix(m.rhs).jacobian(m.theta)
    lam_v = sp.Matrix(lam)
    vjp_y = list(jac_y.T * lam_v)
    vjp_th = list(jac_th.T * lam_v)
    jump_jac = sp.Matrix(m.jump).jacobian(m.y)
    jump_vjp = list(jump_jac.T * lam_v)

    head = _unpack(m.y, "y") + _unpack(m.theta, "th") + _unpack(m.u, "u")
    out: list[str] = []
    out += ["@njit(cache=True)", "def rhs(y, th, u, out):", '    """dy/dt = f(y, theta, u), written into out."""']
    out += head + _block(list(m.rhs), [f"out[{i}]" for i in range(ny)])
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def jac(y, th, u, out):",
        '    """The Jacobian df/dy (NY x NY), written into out."""',
    ]
    out += head + _block(list(jac_y), [f"out[{i}, {j}]" for i in range(ny) for j in range(ny)])
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def vjp(y, th, u, lam, out_y, out_th):",
        '    """out_y = (df/dy)^T lam; out_th += (df/dtheta)^T lam."""',
    ]
    out += head + _unpack(tuple(lam), "lam")
    out += _accumulate_th(
        _block(vjp_y + vjp_th, [*(f"out_y[{i}]" for i in range(ny)), *(f"out_th[{j}]" for j in range(nth))])
    )
    jhead = [*_unpack(m.y, "y"), f"    {m.v_out.name} = v_out", f"    {m.v_in.name} = v_in", *_unpack(m.c, "c")]
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def jump(y, v_out, v_in, c, out):",
        '    """The state after removing v_out mL and adding v_in mL of a medium of concentrations c."""',
    ]
    out += jhead + _block(list(m.jump), [f"out[{i}]" for i in range(ny)])
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def jump_vjp(y, v_out, v_in, c, lam, out):",
        '    """out = (d jump / dy)^T lam, at the state y before the jump."""',
    ]
    out += jhead + _unpack(tuple(lam), "lam") + _block(jump_vjp, [f"out[{i}]" for i in range(ny)])
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def observe(y, k):",
        '    """Observable k (index into OBSERVABLE_NAMES) of the state y."""',
    ]
    out += _unpack(m.y, "y")
    for k, expr in enumerate(m.observables):
        out += [f"    if k == {k}:", f"        return {_PRINTER.doprint(expr)}"]
    out += ["    return math.nan"]
    out += [
        "",
        "",
        "@njit(cache=True)",
        "def observe_vjp(y, k, g, out):",
        '    """out += g * d(observable k)/dy."""',
    ]
    out += _unpack(m.y, "y")
    for k, expr in enumerate(m.observables):
        grads = [sp.diff(expr, s) for s in m.y]
        out += [f"    if k == {k}:"]
        body = _block(
            [g * sp.Symbol("g") for g in grads], [f"out[{i}]" for i in range(ny)], accumulate=True, indent="        "
        )
        out += [*body, "        return"]
    return out


def _accumulate_th(lines: list[str]) -> list[str]:
    """Make the ``out_th[j] = expr`` lines of the vjp block accumulate (``+=``)."""
    result = []
    for ln in lines:
        stripped = ln.lstrip()
        if stripped.startswith("out_th[") and " = " in stripped:
            ln = ln.replace(" = ", " += ", 1)
        result.append(ln)
    return result


_TEMPLATE = '''

RK4_B = np.array([1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0])  # weights of the stages
RK4_C = np.array([0.0, 0.5, 0.5, 1.0])  # nodes: stage st is evaluated at y + c_st h k_(st-1)
STAB_RADIUS = 2.5  # a half-disc of this radius lies inside RK4's stability region
NEGATIVE_TOL = 1e-9  # a state below -NEGATIVE_TOL after a step means the step was too large
STAB_TRIGGER = 1.0  # a stiffness estimate (h * rho) above this has the step checked against the eigenvalues
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(cache=True)
def rk4_step(y, th, u, h, stages, k, out):
    """One classic RK4 step from y; stages[i] receives the state at which stage i is evaluated.

    (One call site of rhs in a loop over the stages, so that the compiler inlines it once.)
    """
    for st in range(4):
        for i in range(NY):
            stages[st, i] = y[i] if st == 0 else y[i] + RK4_C[st] * h * k[st - 1, i]
        rhs(stages[st], th, u, k[st])
    for i in range(NY):
        out[i] = y[i] + h * (RK4_B[0] * k[0, i] + RK4_B[1] * k[1, i] + RK4_B[2] * k[2, i] + RK4_B[3] * k[3, i])


@njit(cache=True)
def rk4_step_vjp(stages, th, u, h, lam, g_th, a, v):
    """Discrete adjoint of rk4_step: lam (cotangent of its output) becomes that of its input; g_th += d/dtheta.

    Stage st, from the last to the first: a = b_st h lam + c_(st+1) h v_(st+1), v_st = J_st^T a.
    """
    for st in range(3, -1, -1):
        for i in range(NY):
            a[i] = RK4_B[st] * h * lam[i] + (RK4_C[st + 1] * h * v[st + 1, i] if st < 3 else 0.0)
        vjp(stages[st], th, u, a, v[st], g_th)
    for i in range(NY):
        lam[i] = lam[i] + v[0, i] + v[1, i] + v[2, i] + v[3, i]


@njit(cache=True)
def rk4_amplification(z):
    """|R(z)| of classic RK4 at z = h * lambda."""
    return abs(1.0 + z + z * z / 2.0 + z * z * z / 6.0 + z * z * z * z / 24.0)


@njit(cache=True)
def spectral_bound(y, J):
    """An upper bound on the spectral radius of J: the least of four Gershgorin bounds (plain and scaled by |y|)."""
    best = math.inf
    for scaled in range(2):
        row = 0.0
        col = 0.0
        for i in range(NY):
            r = 0.0
            c = 0.0
            for j in range(NY):
                if scaled == 1:
                    si = abs(y[i]) + 1e-300
                    sj = abs(y[j]) + 1e-300
                    r += abs(J[i, j]) * sj / si
                    c += abs(J[j, i]) * si / sj
                else:
                    r += abs(J[i, j])
                    c += abs(J[j, i])
            row = max(row, r)
            col = max(col, c)
        best = min(best, row, col)
    return best


@njit(cache=True)
def eigenvalues(J):
    """The eigenvalues of J, by numpy (LAPACK) in object mode: needed rarely, and not worth compiling."""
    with objmode(ev="complex128[:]"):
        ev = np.linalg.eigvals(J).astype(np.complex128)
    return ev


@njit(cache=True)
def step_stability(y, th, u, h, J):
    """(stable, h * spectral radius) of an RK4 step of size h from y (the radius is a bound when stable by it)."""
    jac(y, th, u, J)
    bound = spectral_bound(y, J)
    if not math.isfinite(bound):
        return False, bound * h
    if bound * h <= STAB_RADIUS:
        return True, bound * h
    ev = eigenvalues(J)
    rho = 0.0
    stable = True
    for lam in ev:
        z = h * lam
        rho = max(rho, abs(z))
        if z.real <= 0.0:
            if rk4_amplification(z) > 1.0 + 1e-12:
                stable = False
        elif abs(z) > STAB_RADIUS:
            stable = False
    return stable, rho


@njit(cache=True)
def stiffness_estimate(stages, k, h):
    """h * ||k4 - k3|| / ||y4 - y3||, norms weighted by 1 / (|y| + 1e-6): an estimate of h * spectral radius
    from the step's own stages (Hairer & Wanner, Solving ODEs II, IV.2), free of extra evaluations."""
    num = 0.0
    den = 0.0
    for i in range(NY):
        w = 1.0 / (abs(stages[0, i]) + 1e-6)
        num += (w * (k[3, i] - k[2, i])) ** 2
        den += (w * (stages[3, i] - stages[2, i])) ** 2
    if den == 0.0:
        return 0.0
    return h * math.sqrt(num / den)


@njit(cache=True)
def forward(th, y0, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
            check, substep, max_doublings, y_pre, y_start, j_pre, pred, tape, info):
    """Integrate over all intervals; observe before and jump at each boundary.

    With check, each interval's first step is checked against the Jacobian's eigenvalues, and so is
    every later step whose stiffness estimate exceeds STAB_TRIGGER; an unstable step doubles the
    interval's steps (nsub, in place) and integrates it again when substep is true. When tape has
    room for every step, the stage states are recorded in it for the adjoint (info[3] = 1).
    A step that makes a state negative (below -NEGATIVE_TOL; the exact solution stays non-negative, and
    so does RK4's within its stability region on the negative real axis) fails like an unstable one.
    Returns 0 (done), 1 (unstable step; info = time, h * spectral radius, interval), 2 (a state is
    not finite; info[0] = time) or 3 (a step makes a state negative; info = time, value, interval,
    -, state index).
    """
    nb = t_b.shape[0] - 1
    y = y0.copy()
    for q in range(INIT_STATE.shape[0]):
        y[INIT_STATE[q]] = th[INIT_THETA[q]]
    z = np.empty(NY)
    znew = np.empty(NY)
    stages = np.empty((4, NY))
    k = np.empty((4, NY))
    J = np.empty((NY, NY))
    offset = 0
    recording = True
    for b in range(nb + 1):
        for i in range(NY):
            y_pre[b, i] = y[i]
        for o in range(ob_start[b], ob_start[b + 1]):
            pred[o] = observe(y, ob_var[o])
        if b == nb:
            break
        for jj in range(jb_start[b], jb_start[b + 1]):
            for i in range(NY):
                j_pre[jj, i] = y[i]
            jump(j_pre[jj], j_vout[jj], j_vin[jj], j_c[jj], y)
        for i in range(NY):
            y_start[b, i] = y[i]
        doublings = 0
        while True:
            h = (t_b[b + 1] - t_b[b]) / nsub[b]
            record = recording and offset + nsub[b] <= tape.shape[0]
            for i in range(NY):
                z[i] = y[i]
            ok = True
            suspect = check
            for s in range(nsub[b]):
                if suspect:
                    stable, hrho = step_stability(z, th, u_seg[b], h, J)
                    if not stable:
                        ok = False
                        info[0] = t_b[b] + s * h
                        info[1] = hrho
                        info[2] = b
                        info[4] = -1.0
                        break
                buf = tape[offset + s] if record else stages
                rk4_step(z, th, u_seg[b], h, buf, k, znew)
                suspect = check and stiffness_estimate(buf, k, h) > STAB_TRIGGER
                if check:
                    for i in range(NY):
                        if znew[i] < -NEGATIVE_TOL:
                            ok = False
                            info[0] = t_b[b] + s * h
                            info[1] = znew[i]
                            info[2] = b
                            info[4] = i
                    if not ok:
                        break
                for i in range(NY):
                    z[i] = znew[i]
            if ok:
                break
            if not substep or doublings >= max_doublings:
                return 1 if info[4] < 0 else 3
            nsub[b] *= 2
            doublings += 1
        recording = record
        offset += nsub[b]
        for i in range(NY):
            if not math.isfinite(z[i]):
                info[0] = t_b[b + 1]
                return 2
            y[i] = z[i]
    info[3] = 1.0 if recording else 0.0
    return 0


@njit(cache=True)
def adjoint(th, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
            y_pre, y_start, j_pre, tape, use_tape, gbar, g_th, g_y0):
    """Reverse sweep: gradient of sum_o gbar[o] * pred[o] with respect to theta (into g_th) and y0 (into g_y0).

    The stage states come from the forward sweep's tape when use_tape, otherwise each interval is
    integrated again from its stored start state (one checkpoint per interval); then the steps are
    reversed one by one, and the jumps at their pre-jump states.
    """
    nb = t_b.shape[0] - 1
    lam = np.zeros(NY)
    tmp = np.empty(NY)
    a = np.empty(NY)
    v = np.empty((4, NY))
    k = np.empty((4, NY))
    max_steps = 1
    total = 0
    for b in range(nb):
        max_steps = max(max_steps, nsub[b])
        total += nsub[b]
    local = np.empty((1 if use_tape else max_steps, 4, NY))
    z = np.empty(NY)
    znew = np.empty(NY)
    for j in range(g_th.shape[0]):
        g_th[j] = 0.0
    offset = total
    for b in range(nb, -1, -1):
        if b < nb:
            h = (t_b[b + 1] - t_b[b]) / nsub[b]
            offset -= nsub[b]
            if not use_tape:
                for i in range(NY):
                    z[i] = y_start[b, i]
                for s in range(nsub[b]):
                    rk4_step(z, th, u_seg[b], h, local[s], k, znew)
                    for i in range(NY):
                        z[i] = znew[i]
            for s in range(nsub[b] - 1, -1, -1):
                rk4_step_vjp(tape[offset + s] if use_tape else local[s], th, u_seg[b], h, lam, g_th, a, v)
            for jj in range(jb_start[b + 1] - 1, jb_start[b] - 1, -1):
                jump_vjp(j_pre[jj], j_vout[jj], j_vin[jj], j_c[jj], lam, tmp)
                for i in range(NY):
                    lam[i] = tmp[i]
        for o in range(ob_start[b], ob_start[b + 1]):
            if gbar[o] != 0.0:
                observe_vjp(y_pre[b], ob_var[o], gbar[o], lam)
    for i in range(NY):
        g_y0[i] = lam[i]


@njit(cache=True)
def log_ndtr_and_ratio(z):
    """(log Phi(z), phi(z) / Phi(z)) for the standard normal, accurate far into the lower tail."""
    if z > -30.0:
        cdf = 0.5 * math.erfc(-z / math.sqrt(2.0))
        pdf = math.exp(-0.5 * z * z - LOG_SQRT_2PI)
        return math.log(cdf), pdf / cdf
    z2 = z * z
    series = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)
    return -0.5 * z2 - math.log(-z) - LOG_SQRT_2PI + math.log(series), -z / series


@njit(cache=True)
def loglik_terms(pred, value, sigma, lognormal, censored, gbar, g_sigma):
    """Sum of the observation log-densities; gbar = d/d pred, g_sigma = d/d sigma (per observation).

    Normal: log N(value | pred, sigma); lognormal: log LogNormal(value | log pred, sigma); censored
    (value is the limit of detection): log P(observation < value).
    Returns -inf (gradients 0) when a lognormal prediction is not positive.
    """
    total = 0.0
    for o in range(pred.shape[0]):
        s = sigma[o]
        if lognormal[o]:
            if not pred[o] > 0.0:
                for q in range(pred.shape[0]):
                    gbar[q] = 0.0
                    g_sigma[q] = 0.0
                return -math.inf
            x = math.log(value[o])
            m = math.log(pred[o])
            dm = 1.0 / pred[o]
        else:
            x = value[o]
            m = pred[o]
            dm = 1.0
        r = (x - m) / s
        if censored[o]:
            lp, ratio = log_ndtr_and_ratio(r)
            total += lp
            gbar[o] = -ratio / s * dm
            g_sigma[o] = -ratio * r / s
        else:
            total += -0.5 * r * r - math.log(s) - LOG_SQRT_2PI
            if lognormal[o]:
                total -= x
            gbar[o] = r / s * dm
            g_sigma[o] = (r * r - 1.0) / s
    return total


@njit(cache=True)
def loglik_grad(th, y0, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
                value, sigma, lognormal, censored, check, substep, max_doublings, g_th, g_y0, g_sigma, info):
    """Forward sweep, log-likelihood and its exact gradient (discrete adjoint) in one call.

    Returns (status, loglik); status as in forward. The gradients are zero unless status is 0 and
    the log-likelihood is finite.
    """
    nb = t_b.shape[0] - 1
    nobs = ob_var.shape[0]
    y_pre = np.empty((nb + 1, NY))
    y_start = np.empty((max(nb, 1), NY))
    j_pre = np.empty((max(j_vout.shape[0], 1), NY))
    pred = np.empty(nobs)
    gbar = np.zeros(nobs)
    n_steps = 0
    for b in range(nb):
        n_steps += nsub[b]
    tape = np.empty((n_steps, 4, NY))
    for j in range(g_th.shape[0]):
        g_th[j] = 0.0
    for i in range(NY):
        g_y0[i] = 0.0
    for o in range(nobs):
        g_sigma[o] = 0.0
    status = forward(th, y0, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
                     check, substep, max_doublings, y_pre, y_start, j_pre, pred, tape, info)
    if status != 0:
        return status, -math.inf
    ll = loglik_terms(pred, value, sigma, lognormal, censored, gbar, g_sigma)
    if not math.isfinite(ll):
        return 0, ll
    adjoint(th, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var,
            y_pre, y_start, j_pre, tape, info[3] == 1.0, gbar, g_th, g_y0)
    for q in range(INIT_STATE.shape[0]):
        g_th[INIT_THETA[q]] += g_y0[INIT_STATE[q]]
        g_y0[INIT_STATE[q]] = 0.0
    return 0, ll

@njit(cache=True)
def campaign_loglik_grad(theta, y0, sigma, offsets, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start,
                         ob_var, value, lognormal, censored, flags):
    """Summed log-likelihood and gradients over batches packed end to end (bioworkbench.twin.pt_op.pack).

    Parameters
    ----------
    theta, y0, sigma
        Parameter matrix (B, NTH), initial states (B, NY), SD of each observable (NOBS,).
    offsets, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var, value, lognormal, censored, flags
        The packed arrays of bioworkbench.twin.pt_op.pack; flags = [check, substep, max_doublings].

    Returns
    -------
    tuple
        (loglik, d/dtheta (B, NTH), d/dy0 (B, NY), d/dsigma (NOBS,)); -inf and zeros when a batch fails
        (unstable after sub-stepping, non-finite, or a non-positive lognormal prediction).
    """
    n_b = offsets.shape[0] - 1
    g_theta = np.zeros((n_b, NTH))
    g_y0 = np.zeros((n_b, NY))
    g_sigma = np.zeros(NOBS)
    info = np.zeros(5)
    total = 0.0
    check = flags[0] != 0
    substep = flags[1] != 0
    for b in range(n_b):
        a0, a1 = offsets[b, 0], offsets[b + 1, 0]
        s0, s1 = offsets[b, 1], offsets[b + 1, 1]
        c0, c1 = offsets[b, 2], offsets[b + 1, 2]
        j0, j1 = offsets[b, 3], offsets[b + 1, 3]
        o0, o1 = offsets[b, 4], offsets[b + 1, 4]
        var = ob_var[o0:o1]
        sig = np.empty(o1 - o0)
        for o in range(o1 - o0):
            sig[o] = sigma[var[o]]
        g_sig = np.zeros(o1 - o0)
        g_th = np.zeros(NTH)
        g_y = np.zeros(NY)
        status, ll = loglik_grad(
            np.ascontiguousarray(theta[b]), np.ascontiguousarray(y0[b]), t_b[a0:a1], nsub[s0:s1].copy(),
            np.ascontiguousarray(u_seg[s0:s1]), jb_start[c0:c1], j_vout[j0:j1], j_vin[j0:j1],
            np.ascontiguousarray(j_c[j0:j1]), ob_start[c0:c1], var, value[o0:o1], sig,
            lognormal[o0:o1] != 0.0, censored[o0:o1] != 0.0, check, substep, flags[2], g_th, g_y, g_sig, info,
        )
        if status != 0 or not math.isfinite(ll):
            return -math.inf, np.zeros((n_b, NTH)), np.zeros((n_b, NY)), np.zeros(NOBS)
        total += ll
        for j in range(NTH):
            g_theta[b, j] = g_th[j]
        for i in range(NY):
            g_y0[b, i] = g_y[i]
        for o in range(o1 - o0):
            g_sigma[var[o]] += g_sig[o]
    return total, g_theta, g_y0, g_sigma


@njit(cache=True)
def simulate_draws(theta, y0, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var, at, check, substep,
                   max_doublings):
    """Observables at boundaries at for each parameter row and initial state (y0 (n_d, NY)): (n_d, len(at), NOBS);
    status per draw (0 = solved)."""
    n_d = theta.shape[0]
    nb = t_b.shape[0] - 1
    out = np.empty((n_d, at.shape[0], NOBS))
    status = np.zeros(n_d, dtype=np.int64)
    y_pre = np.empty((nb + 1, NY))
    y_start = np.empty((max(nb, 1), NY))
    j_pre = np.empty((max(j_vout.shape[0], 1), NY))
    pred = np.empty(ob_var.shape[0])
    tape = np.empty((0, 4, NY))
    info = np.zeros(5)
    for d in range(n_d):
        st = forward(
            np.ascontiguousarray(theta[d]), np.ascontiguousarray(y0[d]), t_b, nsub.copy(), u_seg, jb_start, j_vout,
            j_vin, j_c, ob_start, ob_var, check, substep, max_doublings, y_pre, y_start, j_pre, pred, tape, info,
        )
        status[d] = st
        if st != 0:
            continue
        for i in range(at.shape[0]):
            for k in range(NOBS):
                out[d, i, k] = observe(y_pre[at[i]], k)
    return out, status


@njit(cache=True)
def loglik_draws(theta, sigma, y0, t_b, nsub, u_seg, jb_start, j_vout, j_vin, j_c, ob_start, ob_var, value,
                 lognormal, censored, max_doublings):
    """Log-likelihood of the readings for each parameter row, initial state (y0 (n_d, NY)) and SD per observable
    (sigma (n_d, NOBS))."""
    n_d = theta.shape[0]
    n_o = ob_var.shape[0]
    ll = np.empty(n_d)
    g_th = np.zeros(NTH)
    g_y = np.zeros(NY)
    g_s = np.zeros(n_o)
    sig = np.empty(n_o)
    info = np.zeros(5)
    for d in range(n_d):
        for o in range(n_o):
            sig[o] = sigma[d, ob_var[o]]
        st, v = loglik_grad(
            np.ascontiguousarray(theta[d]), np.ascontiguousarray(y0[d]), t_b, nsub.copy(), u_seg, jb_start, j_vout,
            j_vin, j_c, ob_start, ob_var, value, sig, lognormal, censored, True, True, max_doublings, g_th, g_y, g_s,
            info,
        )
        ll[d] = v if st == 0 else -math.inf
    return ll
'''


def generate_source() -> str:
    """The text of ``_kernels.py`` for the current declaration.

    Returns
    -------
    str
        A Python module: names and sizes, the generated model kernels and the RK4 / adjoint code.
    """
    m = symbolic_model()
    medium_index: dict[str, int] = {}
    copies = []  # (state, state whose medium concentration it takes): a second state on one media variable
    for i, st in enumerate(STATES):
        if st.medium_variable is None:
            continue
        if st.medium_variable in medium_index:
            copies.append((i, medium_index[st.medium_variable]))
        else:
            medium_index[st.medium_variable] = i
    names = [st.name for st in STATES]
    pnames = [str(t) for t in m.theta]
    init = [(names.index(k), pnames.index(v)) for k, v in INITIAL_FROM_PARAMETERS.items()]
    header = [
        '"""Numba kernels of the fed-batch twin. GENERATED by bioworkbench.twin.codegen from equations.py: do not edit.',  # noqa: E501
        "",
        "Regenerate with ``python -m bioworkbench.twin.codegen``; tests/test_twin_numerics.py checks it is current.",
        "",
        "Size: generated; the Jacobian and the vector-Jacobian products are long straight-line functions.",
        '"""',
        "",
        "# ruff: noqa",
        "# fmt: off",
        "",
        "import math",
        "",
        "import numpy as np",
        "import numba",
        "from numba import objmode",
        "",
        "",
        "def njit(**options):",
        '    """numba.njit with fixed, strict floating-point flags (no fastmath).',
        "",
        "    A kernel that numba first compiles while typing a caller takes the caller's fastmath flags",
        "    (PyTensor's numba functions allow contraction and reassociation), is cached on disk under its",
        "    signature alone, and is copied into every compiled model that calls it; the process then runs",
        "    whichever copy it loaded first. With fastmath those copies round differently, so the same fit",
        "    gave other draws in a process that had compiled the twin than in one that loaded it from the",
        "    compile cache. Strict flags make every copy the same function of its inputs.",
        "",
        "    NumPy's error model: a division by zero gives inf or nan, which the solver and the likelihood",
        "    already reject (a non-finite state, a log-likelihood of -inf), instead of raising; without the",
        "    test for zero before every division a gradient costs about 6 % less.",
        '    """',
        "    return numba.njit(fastmath=False, error_model='numpy', **options)",
        "",
        f"STATE_NAMES = {tuple(s.name for s in STATES)!r}",
        f"PARAMETER_NAMES = {tuple(s.name for s in m.theta)!r}",
        f"INPUT_NAMES = {tuple(INPUTS)!r}",
        f"OBSERVABLE_NAMES = {tuple(OBSERVABLES)!r}",
        f"MEDIUM_STATE_INDEX = {medium_index!r}",
        f"MEDIUM_COPIES = {tuple(copies)!r}  # (state, state whose medium concentration it takes)",
        "# states whose initial value is a parameter: y0[INIT_STATE[q]] is replaced by theta[INIT_THETA[q]]",
        f"INIT_STATE = np.array({[a for a, _ in init]!r}, dtype=np.int64)",
        f"INIT_THETA = np.array({[b for _, b in init]!r}, dtype=np.int64)",
        f"NY = {len(m.y)}",
        f"NTH = {len(m.theta)}",
        f"NU = {len(m.u)}",
        f"NOBS = {len(m.observables)}",
        "",
        "",
    ]
    body = "\n".join(_model_kernels(m)) + _TEMPLATE
    digest = hashlib.sha256((body + repr(header)).encode()).hexdigest()
    header += [
        "#: fingerprint of the generated code (a cache key for compilations that call these kernels)",
        f"KERNELS_SHA256 = {digest!r}",
        "",
        "",
    ]
    return "\n".join(header) + body


def write_kernels(path: Path = KERNELS_PATH) -> Path:
    """Write the generated module.

    Parameters
    ----------
    path
        Target file; the package's ``_kernels.py`` by default.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path.write_text(generate_source(), encoding="utf-8")
    return path


if __name__ == "__main__":  # pragma: no cover - developer tool
    written = write_kernels(Path(sys.argv[1]) if len(sys.argv) > 1 else KERNELS_PATH)
    print(f"wrote {written}")
