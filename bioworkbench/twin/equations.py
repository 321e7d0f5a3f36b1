r"""The unstructured, segregated fed-batch CHO model, declared once in sympy.

Everything numerical is generated from this declaration by :mod:`bioworkbench.twin.codegen`: the
right-hand side, its Jacobian and vector-Jacobian products, the volume jumps, the observables and
their derivatives. Nothing here is evaluated at run time: the generated module
(``bioworkbench/twin/_kernels.py``) is committed, and a test checks that it matches this file.

Notes
-----
**Units** (the project's canonical units): time h; viable and dead cells :math:`X_v, X_d` in
1e6 cells/mL; glucose :math:`G`, glutamine :math:`Q`, lactate :math:`L`, ammonium :math:`A` in mmol/L;
product :math:`P` in mg/L; the lumped amino acids other than glutamine :math:`N` (hidden: no reading)
in mmol/L of glutamine equivalents; culture age :math:`a` in h; volume :math:`V` in mL. Specific
rates are pmol/cell/h (times 1e6 cells/mL gives mmol/L/h) and pg/cell/h (times 1e6 cells/mL gives
mg/L/h).

**Inputs** :math:`u`, constant between events: the temperature set point :math:`T` (degC), a
continuous feed :math:`F` (mL/h) and the feed medium's concentrations :math:`G_{in}, Q_{in}, L_{in},
A_{in}, N_{in}` (mmol/L). The dilution rate is :math:`D = F/V`. A medium brings the lumped amino
acids at its glutamine concentration (:math:`N_{in} = Q_{in}`): the unit of :math:`N` is "what a
feed brings per mmol of glutamine", so the media table needs no column for them and the scale of
:math:`N` is fixed; the basal medium's :math:`N(0) = n_0` is a parameter.

**Kinetics** (parameters in :data:`bioworkbench.twin.parameters.PARAMETERS`, with their sources),
with temperature factors :math:`f_a(T) = e^{a (T - 36.5)}`, :math:`\Delta_c = \max(0, 36.5 - T)`,
:math:`\phi_Q = \sigma(\mathrm{logit}_{Q})`, :math:`\phi_P = \sigma(\mathrm{logit}_{P})` (logistic
function), :math:`r_\epsilon(x) = \big(x + \sqrt{x^2+\epsilon^2}\big)/2` (a smooth :math:`\max(0, x)`,
:math:`\epsilon` = :data:`RAMP_SMOOTHING`), :math:`s_X = X/(K_X+X)` and the culture age :math:`\tilde a = a + 1` h
(:data:`AGE_OFFSET_H`, which keeps the powers of age and their derivatives finite at inoculation):

.. math::

    \mu &= \mu_{max} f_{a_\mu}(T)\,\frac{1}{1+(\tilde a/t_{arrest})^{n_{arrest}}}\,s_G\,
           \big(\phi_Q + (1-\phi_Q)\,s_Q\big)\,s_N\,\frac{K_{IL}}{K_{IL}+L}\,\frac{K_{IA}}{K_{IA}+A}\\
    k_D &= k_d f_{a_{kd}}(T)\big(1+(\tilde a/t_{age})^{n_{age}}\big)
           + \frac{k_{d,starve}}{1+(G/K_G)^2} + \frac{k_{d,N}}{1+(N/K_N)^2}\\
    q_G &= \Big(\frac{\mu}{Y_{X/G}} + m_G f_{a_m}(T)\Big)s_G, \qquad
    q_Q = \Big(\frac{\mu}{Y_{X/Q}} + m_Q\Big)s_Q, \qquad
    q_N = \Big(\frac{\mu}{Y_{X/N}} + m_N\Big)\frac{N}{K_{N,up}+N}\\
    1 - \sigma_{shift} &= \frac{G}{K_{G,shift}+G}\,r_\epsilon(1 - a_L\Delta_c)
           \quad\text{(the lactate shift: low glucose or the cold phase)}\\
    q_L &= Y_{L/G}\,q_G\,(1-\sigma_{shift}) - q_{L,max}\,s_L\,\sigma_{shift}\\
    \dot X_v &= (\mu - k_D - D)X_v, \qquad \dot X_d = k_D X_v - (k_{lys} + D) X_d\\
    \dot G &= -q_G X_v + D(G_{in}-G), \qquad \dot Q = -q_Q X_v - k_{deg}Q + D(Q_{in}-Q)\\
    \dot L &= q_L X_v + D(L_{in}-L), \qquad \dot A = (Y_{A/Q}\,q_Q + m_A) X_v + k_{deg} Q + D(A_{in}-A)\\
    \dot N &= -q_N X_v + D(N_{in}-N), \qquad
    \dot P = q_p f_{a_{qp}}(T)\big(\phi_P + (1-\phi_P)s_N\big) X_v - D P, \qquad
    \dot a = 1, \qquad \dot V = F

Every uptake vanishes with its substrate, so the exact solution stays non-negative.

**Age and starvation laws.** The growth arrest is a Hill (log-logistic) function of the culture age,
1 at inoculation and 1/2 at :math:`t_{arrest}`, its steepness :math:`n_{arrest}` (Hill 1910); the
ageing death a Weibull hazard, a power of the age (Weibull 1951). The deaths of exhaustion are steep
switches, second-order Hill terms that vanish as :math:`(K/S)^2` when the substrate is plentiful: a
first-order term :math:`K/(K+S)` added a death rate that decays only as :math:`K/S`, a quarter of
the basal death at a full glucose level with the prior values, which the data of a well-fed culture
cannot tell from basal death. The amino acids' uptake has its own Monod constant
:math:`K_{N,up}`: transport saturates at other levels than growth does, and with one constant for
both, a culture short of amino acids kept them at several times the level at which it stops
taking them up. Glutamine keeps one constant: with a second one, the growth's dependence on
glutamine was left to a ridge of ``k_gln`` and ``logit_gln_free`` that the sampler could not cross.
The logistic arrest, the first-order starvation terms and the one amino-acid constant of an earlier
version could not reproduce the project's simulator at its own parameters (its VCD ran 10 % low by
day 4, its dead cells twice as high); this version, at the simulator's values, follows its VCD and
titer within 2 % over the 14 days, glucose within 1.5 mmol/L and dead cells within 10 %.

**The cold switch to lactate uptake** is a ramp in the culture's temperature: the fraction of cells
still making lactate falls by :math:`a_L` per degC below 36.5 degC, all of them switched at
:math:`1/a_L` degC below (Trummer et al. 2006; Mulukutla et al. 2012 for the metabolic shift). As
the culture's temperature follows a set point change in hours
(:data:`bioworkbench.twin.feeds.TEMPERATURE_TAU_H`), the switch follows it. An exponential
:math:`e^{-a_L\Delta_c}` of an earlier version switched most cells in the first degree, kept a few
making lactate for the rest of the run, and biased the lactate yield of a simulated campaign
(switched linearly in temperature) 3 % high.

**Volume events** are jumps of the state: a removal of :math:`v_{out}` (sample) followed by an
addition of :math:`v_{in}` of a medium with concentrations :math:`c`:
:math:`V^+ = V - v_{out} + v_{in}`, :math:`C^+ = \big(C (V - v_{out}) + c\,v_{in}\big)/V^+` for every
other concentration (cells and product have :math:`c = 0`); the culture age is not changed.

**Observables**: ``vcd`` :math:`X_v`, ``tcd`` :math:`X_v + X_d`, ``viability``
:math:`100 X_v/(X_v+X_d)` (%), ``glucose``, ``glutamine``, ``lactate``, ``ammonium``, ``titer``,
``volume``: the project's variable names, in their canonical units.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from bioworkbench.twin.parameters import PARAMETERS, REFERENCE_TEMPERATURE_C

__all__ = [
    "AGE_OFFSET_H",
    "INPUTS",
    "OBSERVABLES",
    "RAMP_SMOOTHING",
    "STATES",
    "State",
    "SymbolicModel",
    "symbolic_model",
]

#: h added to the culture age in its powers (growth arrest, ageing death): finite derivatives at inoculation
AGE_OFFSET_H = 1.0
#: width of the smoothing of the cold switch's ramp at 0 (its value there: half of this)
RAMP_SMOOTHING = 0.05


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
    State("nutrients", "mmol/L", "glutamine", "lumped amino acids (hidden), in glutamine equivalents of the feed"),
    State("age", "h", None, "culture age (time since inoculation); not changed by volume events"),
    State("volume", "mL", None, "working volume"),
)

#: states whose initial value is a parameter (state name -> parameter name), not a reading
INITIAL_FROM_PARAMETERS: dict[str, str] = {"nutrients": "n0"}
#: states that volume events leave unchanged (not concentrations)
NOT_MIXED: tuple[str, ...] = ("age",)

#: the input vector u, constant between events
INPUTS: tuple[str, ...] = (
    "temperature",
    "feed_ml_per_h",
    "glucose_in",
    "glutamine_in",
    "lactate_in",
    "ammonium_in",
    "nutrients_in",
)

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
    xv, xd, glc, gln, lac, amm, titer, nut, age, vol = y
    th = sp.symbols([p.name for p in PARAMETERS], real=True)
    p = dict(zip([q.name for q in PARAMETERS], th, strict=True))
    u = sp.symbols(INPUTS, real=True)
    temp, feed, glc_in, gln_in, lac_in, amm_in, nut_in = u

    dtemp = temp - REFERENCE_TEMPERATURE_C
    cold = sp.Max(0, -dtemp)  # degC below the reference (an input: not differentiated)
    s_glc = glc / (p["k_glc"] + glc)
    s_gln = gln / (p["k_gln"] + gln)
    s_nut = nut / (p["k_nut"] + nut)
    gln_free = 1 / (1 + sp.exp(-p["logit_gln_free"]))
    qp_free = 1 / (1 + sp.exp(-p["logit_qp_free"]))
    # culture age plus AGE_OFFSET_H: the powers of age and their derivatives stay finite at inoculation
    aged = age + AGE_OFFSET_H
    arrest = 1 / (1 + sp.exp(p["n_arrest"] * sp.log(aged / p["t_arrest"])))
    mu = (
        p["mu_max"]
        * sp.exp(p["a_mu"] * dtemp)
        * arrest
        * s_glc
        * (gln_free + (1 - gln_free) * s_gln)
        * s_nut
        * p["ki_lac"]
        / (p["ki_lac"] + lac)
        * p["ki_amm"]
        / (p["ki_amm"] + amm)
    )
    kdeath = (
        p["kd"] * sp.exp(p["a_kd"] * dtemp) * (1 + sp.exp(p["n_age"] * sp.log(aged / p["t_age"])))
        + p["kd_starve"] / (1 + (glc / p["k_glc"]) ** 2)
        + p["kd_nut"] / (1 + (nut / p["k_nut"]) ** 2)
    )
    q_glc = (mu / p["y_x_glc"] + p["m_glc"] * sp.exp(p["a_m_glc"] * dtemp)) * s_glc
    q_gln = (mu / p["y_x_gln"] + p["m_gln"]) * s_gln
    q_nut = (mu / p["y_x_nut"] + p["m_nut"]) * nut / (p["k_nut_up"] + nut)
    # the lactate shift: 1 - shift = (1 - low-glucose switch) * (1 - cold switch)
    warm = 1 - p["a_lac"] * cold  # the fraction of lactate producers the cold has left (ramp, smoothed at 0)
    no_shift = glc / (p["k_glc_shift"] + glc) * (warm + sp.sqrt(warm**2 + RAMP_SMOOTHING**2)) / 2
    shift = 1 - no_shift
    q_lac = p["y_lac_glc"] * q_glc * no_shift - p["q_lac_max"] * lac / (p["k_lac"] + lac) * shift
    q_p = p["q_p"] * sp.exp(p["a_qp"] * dtemp) * (qp_free + (1 - qp_free) * s_nut)
    dil = feed / vol

    rhs = (
        (mu - kdeath - dil) * xv,
        kdeath * xv - (p["k_lys"] + dil) * xd,
        -q_glc * xv + dil * (glc_in - glc),
        -q_gln * xv - p["k_deg_gln"] * gln + dil * (gln_in - gln),
        q_lac * xv + dil * (lac_in - lac),
        (p["y_amm_gln"] * q_gln + p["m_amm"]) * xv + p["k_deg_gln"] * gln + dil * (amm_in - amm),
        q_p * xv - dil * titer,
        -q_nut * xv + dil * (nut_in - nut),
        sp.Integer(1),
        feed,
    )

    observables = (xv, xv + xd, 100 * xv / (xv + xd), glc, gln, lac, amm, titer, vol)

    v_out, v_in = sp.symbols("v_out v_in", real=True)
    c = sp.symbols([f"c_{s.name}" for s in STATES], real=True)
    v_new = vol - v_out + v_in
    mixed = (
        yi if s.name in NOT_MIXED else (yi * (vol - v_out) + ci * v_in) / v_new
        for s, yi, ci in zip(STATES[:-1], y[:-1], c[:-1], strict=True)
    )
    jump = (*mixed, v_new)

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
