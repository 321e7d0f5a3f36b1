"""Space-filling designs: the Latin hypercube."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bioworkbench.doe.design import Design, assemble, check_factors, check_int, check_units, seed_streams
from bioworkbench.errors import ConfigError
from bioworkbench.schema import suggest

__all__ = ["LHS_CRITERIA", "latin_hypercube"]

LHS_CRITERIA = ("maximin", "center", "centermaximin", "correlation")


def latin_hypercube(
    factors: Mapping[str, Sequence[float]],
    *,
    n_runs: int,
    criterion: str | None = "maximin",
    iterations: int = 5,
    randomize: bool = True,
    random_seed: int | None = None,
    units: Mapping[str, str | None] | None = None,
) -> Design:
    """Latin hypercube sample of the factor ranges (McKay, Beckman & Conover 1979), via pyDOE3 ``lhs``.

    Parameters
    ----------
    factors
        ``{name: (low, high)}`` in natural units.
    n_runs
        Number of runs (``>= 2``); each factor's range is cut into ``n_runs`` equal strata and each
        stratum holds exactly one run.
    criterion
        ``"maximin"`` (default: of ``iterations`` random hypercubes, the one with the largest smallest
        distance between runs), ``"center"`` (runs at stratum centres), ``"centermaximin"``,
        ``"correlation"`` (smallest largest correlation between factors), or ``None`` (one random cube).
    iterations
        Candidate hypercubes tried by the maximin and correlation criteria.
    randomize, random_seed, units
        As in :func:`full_factorial`; the seed also drives the sampling.

    Returns
    -------
    Design
        ``kind="latin_hypercube"``, ``point_type="lhs"``, one block.

    Raises
    ------
    ConfigError
        ``n_runs < 2``, an unknown criterion (valid ones listed).

    Notes
    -----
    pyDOE3 returns ``u`` in ``[0, 1)`` per factor; coded ``x_c = 2u − 1``, natural ``low + u (high − low)``.
    """
    ranges = check_factors(factors)
    names = list(ranges)
    n_runs = check_int("n_runs", n_runs, minimum=2)
    iterations = check_int("iterations", iterations, minimum=1)
    if criterion is not None and criterion not in LHS_CRITERIA:
        raise ConfigError(
            f"unknown Latin hypercube criterion {criterion!r}. "
            + suggest(str(criterion), [*LHS_CRITERIA, "None"], what="Criteria")
        )
    units = check_units(units, names)
    seed, order_rng, search_rng = seed_streams(random_seed)
    from pyDOE3 import lhs

    u = lhs(len(names), samples=n_runs, criterion=criterion, iterations=iterations, seed=search_rng)
    lo = np.array([r[0] for r in ranges.values()])
    hi = np.array([r[1] for r in ranges.values()])
    frame = assemble(
        2.0 * u - 1.0,
        ["lhs"] * n_runs,
        np.ones(n_runs, dtype=np.int64),
        ranges,
        randomize=randomize,
        rng=order_rng,
        natural=lo + u * (hi - lo),
    )
    return Design(
        frame=frame,
        factors=ranges,
        units=units,
        kind="latin_hypercube",
        random_seed=seed,
        randomized=randomize,
        criterion=criterion,
    )
