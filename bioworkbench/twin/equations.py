r"""The unstructured, segregated fed-batch CHO model, declared once in sympy.

Everything numerical is generated from this declaration by :mod:`bioworkbench.twin.codegen`: the
right-hand side, its Jacobian and vector-Jacobian products, the volume jumps, the observables and
their derivatives. Nothing here is evaluated at run time: the generated module
(``bioworkbench/twin/_kernels.py``) is committed, and a test checks that it matches this file.

Notes
-----
**Units** (the project's canonical units): time h; viable and dead cells :math:`X_v, X_d` in
1e6 cells/mL; glucose :math:`G`, glutamine :math:`Q`, lactate :math:`L`, ammonium :math:`A` in mmol/L;
product :math:`P` in mg/L; volume :math:`V` in mL. Specific rates are pmol/cell/h (times 1e6 cells/mL
gives mmol/L/h) and pg/cell/h (times 1e6 cells/mL gives mg/L/h).

**Inputs** :math:`u`, constant between events: the temperature set point :math:`T` (degC), a
continuous feed :math:`F` (mL/h) and the feed medium's concentrations :math:`G_{in}, Q_{in}, L_{in},
A_{in}` (mmol/L). The dilution rate is :math:`D = F/V`.

**Kinetics** (parameters in :data:`bioworkbench.twin.parameters.PARAMETERS`; Xing et al. 2010,
Kontoravdi et al. 2010, López-Meza et al. 2016), with temperature factors
:math:`f_a(T) = e^{a (T - 36.5)}`:

.. math::

    \mu &= \mu_{max} f_{a_\mu}(T)\,\frac{G}{K_G+G}\,\frac{Q}{K_Q+Q}\,
           \frac{K_{IL}}{K_{IL}+L}\,\frac{K_{IA}}{K_{IA}+A}\\
    k_D &= k_d f_{a_{kd}}(T)\Big(1+\frac{A}{K_{dA}}\Big) + k_{d,starve}\frac{K_G}{K_G+G}\\
    q_G &= \frac{\mu}{Y_{X/G}} + m_G\frac{G}{K_G+G}, \qquad
    q_Q = \frac{\mu}{Y_{X/Q}} + m_Q\frac{Q}{K_Q+Q}\\
    q_L &= Y_{L/G}\,q_G - q_{L,max}\frac{L}{K_L+L}\,\frac{K_{G,shift}}{K_{G,shift}+G}
           \quad\text{(lactate uptake when glucose is low)}\\
    \dot X_v &= (\mu - k_D - D)X_v, \qquad \dot X_d = k_D X_v - (k_{lys} + D) X_d\\
    \dot G &= -q_G X_v + D(G_{in}-G), \qquad \dot Q = -q_Q X_v - k_{deg}Q + D(Q_{in}-Q)\\
    \dot L &= q_L X_v + D(L_{in}-L), \qquad \dot A = Y_{A/Q}\,q_Q X_v + k_{deg} Q + D(A_{in}-A)\\
    \dot P &= q_p f_{a_{qp}}(T) X_v - D P, \qquad \dot V = F

Every uptake vanishes with its substrate, so the exact solution stays non-negative.

**Volume events** are jumps of the state: a removal of :math:`v_{out}` (sample) followed by an
addition of :math:`v_{in}` of a medium with concentrations :math:`c`:
:math:`V^+ = V - v_{out} + v_{in}`, :math:`C^+ = \big(C (V - v_{out}) + c\,v_{in}\big)/V^+` for every
other state (cells and product have :math:`c = 0`).

**Observables**: ``vcd`` :math:`X_v`, ``tcd`` :math:`X_v + X_d`, ``viability``
:math:`100 X_v/(X_v+X_d)` (%), ``glucose``, ``glutamine``, ``lactate``, ``ammonium``, ``titer``,
``volume``: the project's variable names, in their canonical units.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from bioworkbench.twin.parameters import PARAMETERS, REFERENCE_TEMPERATURE_C

__all__ = ["INPUTS", "OBSERVABLES", "STATES", "State", "SymbolicModel", "symbolic_model"]


@dataclass(frozen=True, slots=True)
class State:
    """One state variable: name, canonical unit, and the media-table variable an addition brings (or None)."""

    name: str
    unit: str
    medium_variable: str | None
    description: str


STATES: tuple[State, ...] = (
    State("xv", "1e6 cells/mL", None, "viable cells"),
    State("xd", "1e6 cells/mL", None, "dead cells"),
    State("glucose", "mmol/L", "glucose", "glucose"),
    State("glutamine", "mmol/L", "glutamine", "glutamine"),
    State("lactate", "mmol/L", "lactate", "lactate"),
    State("ammonium", "mmol/L", "ammonium", "ammonium"),
    State("titer", "mg/L", None, "product"),
    State("volume", "mL", None, "working volume"),
)

#: the input vector u, constant between events
INPUTS: tuple[str, ...] = ("temperature", "feed_ml_per_h", "glucose_in", "glutamine_in", "lactate_in", "ammonium_in")

#: the observables, named as the project's variables
OBSERVABLES: tuple[str, ...] = (
    "vcd",
    "tcd",
    "viability",
    "glucose",
    "glutamine",
    "lactate",
    "ammonium",
    "titer",
    "volume",
)


@dataclass(frozen=True, slots=True)
class SymbolicModel:
    """The model as sympy expressions over the symbols ``y``, ``theta``, ``u`` (and the jump's ``v_out, v_in, c``)."""

    y: tuple[sp.Symbol, ...]
    theta: tuple[sp.Symbol, ...]
    u: tuple[sp.Symbol, ...]
    rhs: tuple[sp.Expr, ...]
    observables: tuple[sp.Expr, ...]
    v_out: sp.Symbol
    v_in: sp.Symbol
    c: tuple[sp.Symbol, ...]
    jump: tuple[sp.Expr, ...]


def symbolic_model() -> SymbolicModel:
    """Build the sympy declaration of the model (see the module's Notes for the equations).

    Returns
    -------
    SymbolicModel
        States, parameters and inputs as symbols in kernel order, the right-hand side, the
        observables and the volume jump.
    """
    y = sp.symbols([s.name for s in STATES], real=True)
    xv, xd, glc, gln, lac, amm, titer, vol = y
    th = sp.symbols([p.name for p in PARAMETERS], real=True)
    p = dict(zip([q.name for q in PARAMETERS], th, strict=True))
    u = sp.symbols(INPUTS, real=True)
    temp, feed, glc_in, gln_in, lac_in, amm_in = u

    dtemp = temp - REFERENCE_TEMPERATURE_C
    s_glc = glc / (p["k_glc"] + glc)
    s_gln = gln / (p["k_gln"] + gln)
    mu = (
        p["mu_max"]
        * sp.exp(p["a_mu"] * dtemp)
        * s_glc
        * s_gln
        * p["ki_lac"]
        / (p["ki_lac"] + lac)
        * p["ki_amm"]
        / (p["ki_amm"] + amm)
    )
    kdeath = p["kd"] * sp.exp(p["a_kd"] * dtemp) * (1 + amm / p["kd_amm"]) + p["kd_starve"] * p["k_glc"] / (
        p["k_glc"] + glc
    )
    q_glc = mu / p["y_x_glc"] + p["m_glc"] * s_glc
    q_gln = mu / p["y_x_gln"] + p["m_gln"] * s_gln
    q_lac = p["y_lac_glc"] * q_glc - p["q_lac_max"] * lac / (p["k_lac"] + lac) * p["k_glc_shift"] / (
        p["k_glc_shift"] + glc
    )
    q_p = p["q_p"] * sp.exp(p["a_qp"] * dtemp)
    dil = feed / vol

    rhs = (
        (mu - kdeath - dil) * xv,
        kdeath * xv - (p["k_lys"] + dil) * xd,
        -q_glc * xv + dil * (glc_in - glc),
        -q_gln * xv - p["k_deg_gln"] * gln + dil * (gln_in - gln),
        q_lac * xv + dil * (lac_in - lac),
        p["y_amm_gln"] * q_gln * xv + p["k_deg_gln"] * gln + dil * (amm_in - amm),
        q_p * xv - dil * titer,
        feed,
    )

    observables = (xv, xv + xd, 100 * xv / (xv + xd), glc, gln, lac, amm, titer, vol)

    v_out, v_in = sp.symbols("v_out v_in", real=True)
    c = sp.symbols([f"c_{s.name}" for s in STATES], real=True)
    v_new = vol - v_out + v_in
    jump = (*((yi * (vol - v_out) + ci * v_in) / v_new for yi, ci in zip(y[:-1], c[:-1], strict=True)), v_new)

    return SymbolicModel(
        y=tuple(y),
        theta=tuple(th),
        u=tuple(u),
        rhs=rhs,
        observables=observables,
        v_out=v_out,
        v_in=v_in,
        c=tuple(c),
        jump=jump,
    )
