"""Bioprocess kinetics with fed-batch volume bookkeeping: integral of biomass, μ, doubling time,
specific rates and yields — on viable cells (VCD), dry cell weight (CDW) or optical density (OD).

All computations are vectorised polars over ``(batch_id, variable)`` groups; there is no Python
loop over rows or batches. Conventions (stated once, used everywhere):

* ``X`` is the *biomass* concentration: by default the campaign's
  :func:`~bioworkbench.outcomes.biomass_variable` (``vcd``, else ``cdw``, else ``od600``, else
  another registered cell density); ``compute(..., biomass="cdw")`` chooses. Its canonical unit
  sets the units: cell counts (1e6 cells/mL) give rates per cell, dry weight (g/L) per gram of dry
  weight, OD (AU) per OD unit and litre.
* Time is ``time_h`` (hours since inoculation); rates are per day or per hour
  (``time_unit="d"|"h"``; default: days for cell counts, as CHO practice; hours for dry weight
  and OD, as microbial practice). ``Δt = Δt_h / 24`` or ``Δt_h``. Every row's ``unit`` says which.
* ``V_i`` is the working volume *just before* the sample at ``t_i``: the ``volume`` observation
  when there is one, else ``initial_volume_ml`` plus every addition (feed, bolus, base) minus
  every removal (sample, harvest) strictly before ``t_i``. Samples are taken before additions at
  the same time, so an addition at ``t_i`` counts for the next interval.
* ``s_i`` is the volume removed by the sample at ``t_i`` (sum of ``sample`` and ``harvest``
  events at exactly that time; 0 when there is none).
* Specific rates are *net* and signed: positive = produced, negative = consumed.

References
----------
.. [1] Klein T., Heinzel N., Kroll P., et al. (2015). Quantification of cell lysis during CHO
   bioprocesses: impact on cell count, growth kinetics and productivity. J. Biotechnol. 207,
   67–76 (cell-number based μ and q for fed-batch with sampling).
.. [2] Sidoli F.R., Mantalaris A., Asprey S.P. (2004). Modelling of mammalian cells and cell
   culture processes. Cytotechnology 44, 27–46 (specific rates from mass balances).
.. [3] Villadsen J., Nielsen J., Lidén G. (2011). Bioreaction Engineering Principles, 3rd ed.
   Springer, New York (yield coefficients as ratios of rates, ``Y_sx = r_x / (−r_s)``, and the
   mass balances of a fed-batch reactor: what is consumed = what was fed − what accumulated −
   what left the reactor).

Modules: :mod:`~bioworkbench.kinetics.rates` (:func:`compute`: integrals, μ, specific rates,
yields), :mod:`~bioworkbench.kinetics.volume` (working volumes and the amounts samples remove),
:mod:`~bioworkbench.kinetics.regression` (:func:`qp_regression`, :func:`wide`) and
:mod:`~bioworkbench.kinetics.basis` (units, options, the observations used).
"""

from __future__ import annotations

from bioworkbench.kinetics.basis import OUTPUT_SCHEMA, RATE_VARIABLES, TIME_UNITS, units
from bioworkbench.kinetics.rates import compute
from bioworkbench.kinetics.regression import qp_regression, wide
from bioworkbench.kinetics.volume import volumes

__all__ = ["OUTPUT_SCHEMA", "RATE_VARIABLES", "TIME_UNITS", "compute", "qp_regression", "units", "volumes", "wide"]
