"""The parameters of the fed-batch CHO model: names, units, priors, and which are pooled across batches.

Plain data (no sympy, no numba), so that the sampler, the reports and the generated kernels read one
table. :data:`PARAMETERS` fixes the order of the parameter vector ``theta`` that every kernel takes.

Priors are weakly informative: a lognormal with the median a typical CHO value of the magnitude
reported in the cited studies and a log-SD that covers about an order of magnitude (0.7 → ×/÷ 4 at
95 %), or a normal for the temperature coefficients, which may take either sign. They are starting
points to be overridden for a given cell line, not values read off a table.

References
----------
- Xing Z, Bishop N, Leister K, Li ZJ (2010). Modeling kinetics of a large-scale fed-batch CHO cell
  culture by Markov chain Monte Carlo method. *Biotechnol. Bioeng.* 107(1):165-176.
- Kontoravdi C, Pistikopoulos EN, Mantalaris A (2010). Systematic development of predictive
  mathematical models for animal cell cultures. *Comput. Chem. Eng.* 34(8):1192-1198.
- López-Meza J, Araíz-Hernández D, Carrillo-Cocom LM, López-Pacheco F, Rocha-Pizaña MR,
  Alvarez MM (2016). Using simple models to describe the kinetics of growth, glucose consumption,
  and monoclonal antibody formation in naive and infliximab producer CHO cells.
  *Cytotechnology* 68(4):1287-1300.
- Ozturk SS, Palsson BO (1990). Chemical decomposition of glutamine in cell culture media: effect
  of media type, pH, and serum concentration. *Biotechnol. Prog.* 6(2):121-128.
- Trummer E, Fauland K, Seidinger S, et al. (2006). Process parameter shifting: Part I. Effect of
  DOT, pH, and temperature on the performance of Epo-Fc expressing CHO cells cultivated in
  controlled batch bioreactors. *Biotechnol. Bioeng.* 94(6):1033-1044 (lower temperature: slower
  growth and death, higher specific productivity).
- Hill AV (1910). The possible effects of the aggregation of the molecules of haemoglobin on its
  dissociation curves. *J. Physiol.* 40(Suppl):iv-vii (the Hill function of the growth arrest).
- Weibull W (1951). A statistical distribution function of wide applicability. *J. Appl. Mech.*
  18(3):293-297 (a hazard that grows as a power of age: the ageing death).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = [
    "PARAMETERS",
    "READING_SD",
    "REFERENCE_TEMPERATURE_C",
    "Parameter",
    "default_theta",
    "parameter_names",
    "parameter_table",
]

#: temperature (degC) at which the rate constants are stated; the temperature factors are 1 there
REFERENCE_TEMPERATURE_C = 36.5


@dataclass(frozen=True, slots=True)
class Parameter:
    """One kinetic parameter.

    ``prior`` is ``"lognormal"`` (``center`` = median, ``scale`` = SD of the log) or ``"normal"``
    (``center`` = mean, ``scale`` = SD); ``scope`` is ``"pooled"`` (one value for the campaign) or
    ``"batch"`` (a value per batch around a population median).
    """

    name: str
    unit: str
    prior: str
    center: float
    scale: float
    scope: str
    description: str
    source: str


_P = Parameter
_X = "Xing et al. 2010"
_K = "Kontoravdi et al. 2010"
_L = "López-Meza et al. 2016"
_OP = "Ozturk & Palsson 1990"
_T = "Trummer et al. 2006"
_G = "Goudar et al. 2005"
_N = "Noh et al. 2018"
_M = "Mulukutla et al. 2012"
_H = "Hill 1910"
_W = "Weibull 1951"

#: the parameter vector, in kernel order. Specific rates in pmol/cell/h, which times
#: 1e6 cells/mL gives mmol/L/h; yields of cells in (1e6 cells/mL)/(mmol/L) = 1e9 cells/mmol.
#: "nutrients" are the lumped amino acids other than glutamine (a hidden state) in glutamine
#: equivalents of the feed: a medium brings them at its glutamine concentration.
PARAMETERS: tuple[Parameter, ...] = (
    # growth
    _P("mu_max", "1/h", "lognormal", 0.045, 0.4, "batch", "maximum specific growth rate at 36.5 degC", f"{_X}; {_L}"),
    _P("k_glc", "mmol/L", "lognormal", 0.75, 0.7, "pooled", "Monod constant of glucose (growth, uptake, starvation)",
       f"{_X}; {_K}"),
    _P("k_gln", "mmol/L", "lognormal", 0.2, 0.7, "pooled", "Monod constant of glutamine (growth, uptake)",
       f"{_X}; {_K}"),
    _P("logit_gln_free", "logit", "normal", 0.0, 1.5, "pooled",
       "logit of the fraction of growth that needs no glutamine (glutamine-synthetase cell lines)", _N),
    _P("k_nut", "mmol/L (gln eq.)", "lognormal", 0.1, 1.0, "pooled",
       "Monod constant of the lumped amino acids (growth, uptake, starvation, productivity)", _K),
    _P("ki_lac", "mmol/L", "lognormal", 40.0, 0.7, "pooled", "lactate at which growth is halved", f"{_X}; {_K}"),
    _P("ki_amm", "mmol/L", "lognormal", 10.0, 0.7, "pooled", "ammonium at which growth is halved", f"{_X}; {_K}"),
    _P("t_arrest", "h", "lognormal", 168.0, 0.3, "pooled", "culture age at which growth is halved (growth arrest)", _G),
    _P("n_arrest", "1", "lognormal", 5.0, 0.5, "pooled", "steepness of the growth arrest (Hill coefficient in age)",
       f"{_G}; {_H}"),
    # death and lysis
    _P("kd", "1/h", "lognormal", 0.001, 0.7, "batch", "basal specific death rate at 36.5 degC", f"{_X}; {_L}"),
    _P("t_age", "h", "lognormal", 264.0, 0.3, "pooled", "culture age at which the ageing death equals the basal one",
       _G),
    _P("n_age", "1", "lognormal", 4.0, 0.5, "pooled", "power of the age in the ageing death (Weibull hazard)",
       f"{_G}; {_W}"),
    _P("kd_starve", "1/h", "lognormal", 0.01, 0.7, "pooled", "extra death rate when glucose is exhausted", _X),
    _P("kd_nut", "1/h", "lognormal", 0.005, 1.0, "pooled", "extra death rate when the amino acids are exhausted", _K),
    _P("k_lys", "1/h", "lognormal", 0.002, 0.7, "pooled", "lysis rate of dead cells", _X),
    # glucose, glutamine, amino acids
    _P("y_x_glc", "(1e6 cells/mL)/(mmol/L)", "lognormal", 0.3, 0.5, "pooled", "cell yield on glucose", f"{_X}; {_L}"),
    _P("m_glc", "pmol/cell/h", "lognormal", 0.02, 0.7, "pooled", "glucose maintenance uptake at 36.5 degC",
       f"{_X}; {_L}"),
    _P("a_m_glc", "1/degC", "normal", 0.1, 0.1, "pooled", "log-change of the glucose maintenance per degC", _T),
    _P("y_x_gln", "(1e6 cells/mL)/(mmol/L)", "lognormal", 2.0, 0.7, "pooled", "cell yield on glutamine", _X),
    _P("m_gln", "pmol/cell/h", "lognormal", 0.001, 1.0, "pooled", "glutamine maintenance uptake", _X),
    _P("k_deg_gln", "1/h", "lognormal", 0.003, 0.7, "pooled", "first-order decomposition of glutamine in the medium",
       _OP),
    _P("y_x_nut", "(1e6 cells/mL)/(mmol/L gln eq.)", "lognormal", 10.0, 1.0, "pooled",
       "cell yield on the lumped amino acids", _K),
    _P("k_nut_up", "mmol/L (gln eq.)", "lognormal", 0.05, 1.0, "pooled", "Monod constant of the amino-acid uptake",
       _K),
    _P("m_nut", "pmol/cell/h (gln eq.)", "lognormal", 0.002, 1.0, "pooled", "maintenance uptake of the amino acids",
       _K),
    _P("n0", "mmol/L (gln eq.)", "lognormal", 1.0, 1.0, "pooled",
       "lumped amino acids of the basal medium at inoculation (the state's initial value)", _K),
    # lactate (production from glucose; uptake after the shift, when cold or when glucose is low), ammonium
    _P("y_lac_glc", "mol/mol", "lognormal", 1.0, 0.5, "batch", "lactate made per glucose taken up before the shift",
       f"{_X}; {_K}"),
    _P("q_lac_max", "pmol/cell/h", "lognormal", 0.015, 0.7, "pooled", "maximum specific lactate uptake", _X),
    _P("k_lac", "mmol/L", "lognormal", 2.0, 0.7, "pooled", "Monod constant of lactate uptake", _X),
    _P("k_glc_shift", "mmol/L", "lognormal", 2.0, 0.7, "pooled", "glucose below which cells switch to lactate uptake",
       _X),
    _P("a_lac", "1/degC", "lognormal", 0.3, 0.7, "pooled",
       "cold switch to lactate uptake: fraction of lactate producers switched per degC below 36.5", f"{_T}; {_M}"),
    _P("y_amm_gln", "mol/mol", "lognormal", 0.8, 0.3, "pooled", "ammonium released per glutamine taken up",
       f"{_X}; {_K}"),
    _P("m_amm", "pmol/cell/h", "lognormal", 0.0005, 1.0, "pooled",
       "ammonium released from other amino acids (deamination)", _K),
    # product
    _P("q_p", "pg/cell/h", "lognormal", 0.8, 0.5, "batch", "specific productivity at 36.5 degC", f"{_X}; {_L}"),
    _P("logit_qp_free", "logit", "normal", 0.0, 1.5, "pooled",
       "logit of the fraction of productivity kept when the amino acids are exhausted", _K),
    # temperature: rate(T) = rate(36.5 degC) * exp(a * (T - 36.5 degC))
    _P("a_mu", "1/degC", "normal", 0.1, 0.1, "pooled", "log-change of mu_max per degC", f"{_K}; {_T}"),
    _P("a_kd", "1/degC", "normal", 0.1, 0.1, "pooled", "log-change of the basal death rate per degC", f"{_K}; {_T}"),
    _P("a_qp", "1/degC", "normal", -0.1, 0.1, "pooled", "log-change of q_p per degC (negative: colder makes more)", _T),
)  # fmt: skip


#: typical SD of the log of a reading (analyser CV plus a little model misfit): the centre of each
#: variable's prior; viability's is small because it is a ratio of counts near 100 %
READING_SD: dict[str, float] = {
    "vcd": 0.08,
    "viability": 0.03,
    "glucose": 0.06,
    "glutamine": 0.08,
    "lactate": 0.08,
    "ammonium": 0.06,
    "titer": 0.06,
}


def parameter_names() -> list[str]:
    """The names of the parameter vector, in kernel order.

    Returns
    -------
    list[str]
        One name per entry of ``theta``.
    """
    return [p.name for p in PARAMETERS]


def default_theta() -> np.ndarray:
    """The prior centres (medians of the lognormals, means of the normals) as a parameter vector.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n_parameters,)``, in kernel order.
    """
    return np.array([p.center for p in PARAMETERS], dtype=np.float64)


def parameter_table() -> pl.DataFrame:
    """The parameters as a table: name, unit, prior, centre, scale, scope, description, source.

    Returns
    -------
    polars.DataFrame
        One row per parameter, in kernel order.
    """
    return pl.DataFrame(
        {
            "name": [p.name for p in PARAMETERS],
            "unit": [p.unit for p in PARAMETERS],
            "prior": [p.prior for p in PARAMETERS],
            "center": [p.center for p in PARAMETERS],
            "scale": [p.scale for p in PARAMETERS],
            "scope": [p.scope for p in PARAMETERS],
            "description": [p.description for p in PARAMETERS],
            "source": [p.source for p in PARAMETERS],
        }
    )
