"""Accelerated stability: temperature histories, mean kinetic temperature, kinetics, simulator and the
Bayesian Arrhenius model's contract (fast: no real MCMC beyond one tiny PyMC run)."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys
import time

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench.errors import BioWorkbenchWarning, ConfigError, ModelNotFittedError, SchemaError
from bioworkbench.models import convergence
from bioworkbench.models.base import Prior, load
from bioworkbench.models.stability import StabilityModel, _extent_pt
from bioworkbench.stability.degradation import degradation_extent, extent_to_reduced_time
from bioworkbench.stability.history import TemperatureHistory
from bioworkbench.stability.temperature import arrhenius_factor, mean_kinetic_temperature

#: contract tests need a posterior, not a fast sampler: PyMC's NUTS, tiny draws
FAST = {"draws": 60, "tune": 60, "chains": 1, "random_seed": 1}
PYMC = {"backend": "pymc"}
CONDITIONS = (5.0, 25.0, 40.0)


@pytest.fixture(scope="module")
def study_truth():
    return bw.simulate_stability(n_lots=3, conditions=CONDITIONS, random_seed=4, return_truth=True)


@pytest.fixture(scope="module")
def study(study_truth):
    return study_truth[0]


@pytest.fixture(scope="module")
def fitted(study):
    return StabilityModel(sampler=PYMC).fit(study, attribute="potency", **FAST)


# -- temperature: Arrhenius factor, MKT, histories ------------------------------------------------
def test_arrhenius_factor_is_one_at_the_reference_and_follows_the_formula():
    assert arrhenius_factor(5.0, 90.0, 5.0) == pytest.approx(1.0)
    want = np.exp(-90.0 / 8.314462618e-3 * (1 / (40 + 273.15) - 1 / (5 + 273.15)))
    assert arrhenius_factor(40.0, 90.0, 5.0) == pytest.approx(want, rel=1e-12)
    assert arrhenius_factor(-20.0, 90.0, 5.0) < 1.0
    with pytest.raises(
        ConfigError, match=r"entry 1 is -300.0; expected a finite temperature in °C above absolute zero"
    ):
        arrhenius_factor([5.0, -300.0], 90.0, 5.0)


def test_mean_kinetic_temperature_published_example_and_definition():
    # a published worked example (README of github.com/zelti/mkt, ΔH = 83.144 kJ/mol, equal intervals):
    # readings 2, 2, 5, 8, 8, 8, 8 °C give MKT 6.25 °C
    assert mean_kinetic_temperature([2, 2, 5, 8, 8, 8, 8]) == pytest.approx(6.25, abs=0.005)
    # the definition (Haynes 1971): (ΔH/R) / -ln(Σ t_i exp(-ΔH/(R T_i)) / Σ t_i), USP's R = 8.3144e-3
    temps, dur = np.array([5.0, 25.0, 8.0, 30.0]), np.array([10.0, 1.0, 5.0, 0.5])
    h = 83.144 / 8.3144e-3
    direct = h / -np.log(np.sum(dur * np.exp(-h / (temps + 273.15))) / dur.sum()) - 273.15
    assert mean_kinetic_temperature(temps, dur) == pytest.approx(direct, abs=1e-3)
    # a constant record is its own MKT; an excursion pulls MKT above the arithmetic mean
    assert mean_kinetic_temperature([21.3] * 5) == pytest.approx(21.3, abs=1e-9)
    assert mean_kinetic_temperature(temps, dur) > np.average(temps, weights=dur)
    # the MKT is the constant temperature that gives the same Arrhenius-weighted ageing
    mkt = mean_kinetic_temperature(temps, dur, activation_energy_kj=60.0)
    aged = np.sum(dur * arrhenius_factor(temps, 60.0, 5.0))
    assert dur.sum() * arrhenius_factor(mkt, 60.0, 5.0) == pytest.approx(aged, rel=1e-10)


def test_mean_kinetic_temperature_rejects_bad_input():
    with pytest.raises(ConfigError, match="3 temperatures but 2 durations"):
        mean_kinetic_temperature([5, 6, 7], [1, 1])
    with pytest.raises(ConfigError, match=r"durations: entry 1 is -1.0; expected a finite duration ≥ 0"):
        mean_kinetic_temperature([5, 6], [1, -1])
    with pytest.raises(ConfigError, match="all are zero"):
        mean_kinetic_temperature([5, 6], [0, 0])
    with pytest.raises(ConfigError, match="no temperatures"):
        mean_kinetic_temperature([])


def test_temperature_history_periods_inverse_and_round_trip():
    h = TemperatureHistory.constant(5.0).with_excursion(start=6, duration=0.25, temperature_c=25)
    h = h.with_excursion(start=10, end=11, temperature_c=-20)
    starts, temps = h.pieces()
    assert starts.tolist() == [0, 6, 6.25, 10, 11] and temps.tolist() == [5, 25, 5, -20, 5]
    assert h.temperature_at([0, 6, 6.2, 6.25, 10.5, 20]).tolist() == [5, 25, 25, 5, -20, 5]
    t = np.array([0.0, 3.0, 6.1, 6.25, 10.5, 20.0])
    teq = h.equivalent_time(t, activation_energy_kj=90.0, reference_temperature_c=5.0)
    f25, fm20 = arrhenius_factor(25.0, 90.0, 5.0), arrhenius_factor(-20.0, 90.0, 5.0)
    assert teq[2] == pytest.approx(6 + 0.1 * f25) and teq[4] == pytest.approx(6 + 0.25 * f25 + 3.75 + 0.5 * fm20)
    back = h.time_at_equivalent(teq, activation_energy_kj=90.0, reference_temperature_c=5.0)
    np.testing.assert_allclose(back, t, atol=1e-12)
    # draws of E_a broadcast: (S, T)
    both = h.equivalent_time(t, activation_energy_kj=np.array([60.0, 90.0]), reference_temperature_c=5.0)
    assert both.shape == (2, 6) and np.allclose(both[1], teq)
    assert TemperatureHistory.from_dict(h.to_dict()) == h
    assert h.describe() == "5 °C; 25 °C from 6 for 0.25; -20 °C from 10 for 1"
    assert h.mean_kinetic_temperature(12) == pytest.approx(
        mean_kinetic_temperature([5, 25, 5, -20, 5], [6, 0.25, 3.75, 1, 1]), abs=1e-12
    )
    log = TemperatureHistory.from_log([0, 1, 2, 3], [5, 25, 5, 5])
    assert log.pieces()[1].tolist() == [5, 25, 5]
    with pytest.raises(ConfigError, match=r"the segment starting at 6 .* overlaps the one starting at 6.1"):
        h.with_excursion(start=6.1, duration=1, temperature_c=30)
    with pytest.raises(ConfigError, match="exactly one of duration= or end="):
        h.with_excursion(start=1, temperature_c=30)


def _integrate(kinetics, k_ref, ea, t_ref, history, t_end, m=0.0, n=1.0):
    """Direct numerical integration of dα/dt = k(T(t)) f(α) across the history's periods."""
    from scipy.integrate import solve_ivp

    def f(a):
        a = min(max(a, 0.0), 1.0)
        return {"zero_order": 1.0 if a < 1 else 0.0, "first_order": 1 - a, "sestak_berggren": a**m * (1 - a) ** n}[
            kinetics
        ]

    starts, temps = history.pieces()
    edges = [*[s for s in starts if s < t_end], t_end]
    t0, alpha = 0.0, 0.0
    if kinetics == "sestak_berggren" and m > 0:  # the solution leaving 0: α ≈ ((1 − m) θ)^(1/(1 − m))
        t0 = 1e-9
        alpha = ((1 - m) * k_ref * arrhenius_factor(temps[0], ea, t_ref) * t0) ** (1 / (1 - m))
    for i, (a, b) in enumerate(itertools.pairwise(edges)):
        k = k_ref * arrhenius_factor(temps[i], ea, t_ref)
        sol = solve_ivp(lambda _t, y, k=k: [k * f(y[0])], (max(a, t0), b), [alpha], rtol=1e-11, atol=1e-13)
        alpha = sol.y[0, -1]
    return alpha


@pytest.mark.parametrize(
    ("kinetics", "m", "n"), [("zero_order", 0, 1), ("first_order", 0, 1), ("sestak_berggren", 0.3, 1.6)]
)
def test_equivalent_time_is_exact_against_direct_integration(kinetics, m, n):
    h = (
        TemperatureHistory.constant(5.0)
        .with_excursion(start=2.0, duration=0.5, temperature_c=40.0)
        .with_excursion(start=7.0, duration=1.0, temperature_c=25.0)
    )
    k_ref, ea, t_ref = 0.005, 95.0, 5.0  # θ stays below 1 (zero order saturates at α = 1)
    for t_end in (1.5, 2.3, 9.0):
        direct = _integrate(kinetics, k_ref, ea, t_ref, h, t_end, m, n)
        teq = h.equivalent_time(t_end, activation_energy_kj=ea, reference_temperature_c=t_ref)
        via_teq = degradation_extent(np.array([k_ref * teq]), kinetics, m, n)[0]
        assert via_teq == pytest.approx(direct, abs=1e-7), (kinetics, t_end)


# -- kinetics numerics ------------------------------------------------------------------------------
def test_extent_closed_forms_and_inverse():
    from scipy.special import beta, betaincinv

    th = np.array([0.0, 1e-4, 0.05, 0.5, 2.0, 8.0])
    assert np.allclose(degradation_extent(th, "zero_order"), np.minimum(th, 1))
    assert np.allclose(degradation_extent(th, "first_order"), 1 - np.exp(-th))
    for n in (0.5, 1.0, 2.0, 3.0):  # m = 0: the n-th order closed form
        want = 1 - np.exp(-th) if n == 1 else 1 - np.maximum(1 - (1 - n) * th, 0) ** (1 / (1 - n))
        np.testing.assert_allclose(degradation_extent(th, "sestak_berggren", 0.0, n), want, atol=2e-6)
    for m, n in ((0.3, 0.5), (0.8, 0.7)):  # n < 1: g(α) = B(α; 1 − m, 1 − n), invert with betaincinv
        small = np.array([0.01, 0.3, 1.0, 2.0])
        want = betaincinv(1 - m, 1 - n, small / beta(1 - m, 1 - n))
        np.testing.assert_allclose(degradation_extent(small, "sestak_berggren", m, n), want, atol=1e-7)
    for kin, m, n in (("zero_order", 0, 1), ("first_order", 0, 1), ("sestak_berggren", 0.25, 1.4)):
        a = np.array([0.0, 0.01, 0.2, 0.7])
        back = degradation_extent(extent_to_reduced_time(a, kin, m, n), kin, m, n)
        np.testing.assert_allclose(back, a, atol=1e-8)
    assert np.isinf(extent_to_reduced_time(np.array([1.0]), "first_order")).all()
    with pytest.raises(
        ConfigError,
        match=r"degradation_extent: unknown kinetics 'second_order'\. .*Valid: first_order, sestak_berggren",
    ):
        degradation_extent(th, "second_order")


def test_pytensor_extent_matches_numpy_and_has_finite_gradients():
    import pytensor
    import pytensor.tensor as pt

    th, m, n = pt.dvector("th"), pt.dscalar("m"), pt.dscalar("n")
    a = _extent_pt(th, "sestak_berggren", m, n)
    fn = pytensor.function([th, m, n], [a, *pytensor.grad(a.sum(), [th, m, n])], mode="FAST_COMPILE")
    x = np.array([0.0, 1e-3, 0.1, 1.0, 5.0, 1e6])
    for mm, nn in ((0.0, 1.5), (0.2, 1.0), (0.5, 0.7)):
        val, g_th, g_m, g_n = fn(x, mm, nn)
        np.testing.assert_allclose(val, degradation_extent(x, "sestak_berggren", mm, nn), atol=1e-9)
        assert np.all(np.isfinite(g_th)) and np.isfinite(g_m) and np.isfinite(g_n)
        eps = 1e-6  # the gradient in m and n against central differences
        num_m = (fn(x, mm + eps, nn)[0].sum() - fn(x, mm - eps if mm > 0 else mm, nn)[0].sum()) / (
            2 * eps if mm > 0 else eps
        )
        num_n = (fn(x, mm, nn + eps)[0].sum() - fn(x, mm, nn - eps)[0].sum()) / (2 * eps)
        assert g_m == pytest.approx(num_m, rel=1e-3, abs=1e-6) and g_n == pytest.approx(num_n, rel=1e-3, abs=1e-6)
        # dα/dθ = α^m (1 − α)^n, the rate law itself
        inner = (x > 0) & (val < 1 - 1e-5)  # not at the capped, complete extent
        np.testing.assert_allclose(g_th[inner], val[inner] ** mm * (1 - val[inner]) ** nn, rtol=1e-5)


# -- simulator --------------------------------------------------------------------------------------
def test_simulator_contract_shapes_and_seeding(study_truth):
    s, truth = study_truth
    assert s.columns == list(bw.stability.STUDY_COLUMNS)
    assert_frame_equal(bw.stability.validate_study(s), s)
    assert s["source_file"].unique().to_list() == ["simulate_stability"] and s["source_line"].min() == 2
    assert sorted(s["condition"].unique()) == ["25 °C/60 % RH", "40 °C/75 % RH", "5 °C"]
    times = (
        s.filter(pl.col("batch_id") == "L01").group_by("temperature_c").agg(pl.col("time").max()).sort("temperature_c")
    )
    assert times["time"].to_list() == [36.0, 6.0, 3.0]
    assert s.height == 3 * (8 + 5 + 5) and truth["lots"].height == 3
    assert set(truth) >= {"activation_energy", "k_ref", "y0", "reference_temperature", "lots", "noise_sd"}
    assert_frame_equal(bw.simulate_stability(n_lots=3, conditions=CONDITIONS, random_seed=4), s)
    other = bw.simulate_stability(n_lots=3, conditions=CONDITIONS, random_seed=5)
    assert not other["value"].equals(s["value"])
    # noise-free values follow the model exactly
    clean, t = bw.simulate_stability(
        conditions={"fridge": 5.0, "hot": 40.0}, times=[0, 3], noise_sd=0, lot_sd={"y0": 0}, return_truth=True
    )
    row = clean.filter((pl.col("batch_id") == "L01") & (pl.col("condition") == "hot") & (pl.col("time") == 3))
    k40 = t["lots"]["k_ref"][0] * arrhenius_factor(40.0, 90.0, 5.0)
    assert row["value"][0] == pytest.approx(100 * np.exp(-k40 * 3))
    agg = bw.simulate_stability(attribute="aggregates", y0=1.0, direction="increase", noise_sd=0.05)
    assert agg.filter(pl.col("temperature_c") == 40).sort("time")["value"][-1] > 1.5
    with pytest.raises(ConfigError, match=r"unknown kinetics 'first'.*Did you mean 'first_order'"):
        bw.simulate_stability(kinetics="first")
    with pytest.raises(ConfigError, match="lot_sd: unknown key 'k'"):
        bw.simulate_stability(lot_sd={"k": 0.1})


def test_simulator_ages_a_series_along_its_history():
    h = TemperatureHistory.constant(5.0).with_excursion(start=6.0, duration=1.0, temperature_c=40.0)
    kw = {"conditions": (5.0, 40.0), "noise_sd": 0.0, "lot_sd": {"y0": 0.0}, "random_seed": 1}
    plain, truth = bw.simulate_stability(**kw, return_truth=True)
    hot = bw.simulate_stability(**kw, histories={("L02", "5 °C"): h})
    sel = (pl.col("batch_id") == "L02") & (pl.col("condition") == "5 °C")
    t = hot.filter(sel)["time"].to_numpy()
    t_eq = h.equivalent_time(t, activation_energy_kj=90.0, reference_temperature_c=5.0)
    np.testing.assert_allclose(hot.filter(sel)["value"].to_numpy(), 100 * np.exp(-truth["lots"]["k_ref"][1] * t_eq))
    assert_frame_equal(hot.filter(~sel), plain.filter(~sel))
    assert (hot.filter(sel)["temperature_c"] == 5.0).all()
    with pytest.raises(ConfigError, match=r"histories: no series \('L09', '5 °C'\)"):
        bw.simulate_stability(**kw, histories={("L09", "5 °C"): h})


# -- the model: contract --------------------------------------------------------------------------
def test_constructor_is_cheap_and_checks_config():
    t = time.perf_counter()
    m = StabilityModel()
    assert time.perf_counter() - t < 0.05
    assert m.idata is None and set(m.priors) == set(StabilityModel.default_priors)
    assert all(p.why and p.unit is not None for p in m.priors.values())
    assert StabilityModel("sestak_berggren").sampler["adaptation"] == "low_rank"
    with pytest.raises(ConfigError, match=r"unknown kinetics 'first_ordr'. Did you mean 'first_order'"):
        StabilityModel("first_ordr")
    with pytest.raises(ConfigError, match="direction must be 'decrease', 'increase' or None"):
        StabilityModel(direction="down")
    with pytest.raises(ConfigError, match="likelihood must be one of normal, student_t"):
        StabilityModel(likelihood="t")
    with pytest.raises(ConfigError, match="unknown prior"):
        StabilityModel(priors={"ea": Prior("Normal", {"mu": 90, "sigma": 5})})
    with pytest.raises(ModelNotFittedError, match="StabilityModel has no posterior yet"):
        StabilityModel().predict(condition=5, times=[1])


@pytest.mark.parametrize(
    "options",
    [
        {"kinetics": "zero_order"},
        {"kinetics": "first_order", "likelihood": "student_t"},
        {"kinetics": "sestak_berggren", "ea_by_lot": True},
    ],
)
def test_build_without_sampling(study, options):
    import pymc as pm

    m = StabilityModel(**options)
    model = m.build(study, attribute="potency")
    assert isinstance(model, pm.Model) and m.idata is None
    ip = model.initial_point()
    # FAST_COMPILE: the same values without the numba compile (seconds instead of tens of seconds)
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(ip))
    assert np.all(np.isfinite(model.compile_dlogp(mode="FAST_COMPILE")(ip)))
    assert m.data["config"]["direction"] == "decrease" and m.data["config"]["direction_inferred"]
    assert 5.0 < m.data["centre_temperature_c"] < 40.0


def test_prior_predictive_and_prior_override(study):
    m = StabilityModel(priors={"activation_energy": {"dist": "LogNormal", "mu": np.log(120.0), "sigma": 0.05}})
    m.build(study, attribute="potency")
    prior = m.sample_prior_predictive(draws=200, random_seed=1)
    ea = prior["prior"]["activation_energy"].values.ravel()
    assert np.median(ea) == pytest.approx(120.0, rel=0.03)
    y = prior["prior_predictive"]["value"].values
    assert y.shape[-1] == study.height and np.all(np.isfinite(y))
    # the default k_ref prior is centred on the data's rate: the data's change, not a fixed number
    k = prior["prior"]["k_ref"].values.ravel()
    assert np.exp(np.median(np.log(k))) == pytest.approx(np.exp(m.data["scales"]["log_k_scale"]), rel=0.4)


def test_flagged_rows_are_excluded_and_counted(study):
    flagged = study.with_columns(
        flag=pl.when(pl.col("source_line").is_in([5, 9])).then(pl.lit("excluded")).otherwise(pl.col("flag")),
        flag_reason=pl.when(pl.col("source_line").is_in([5, 9])).then(pl.lit("OOT")).otherwise(pl.col("flag_reason")),
    )
    m = StabilityModel()
    with pytest.warns(BioWorkbenchWarning, match="2 flagged potency row"):
        m.build(flagged, attribute="potency")
    assert m.data["n_flagged"] == 2 and len(m.data["value"]) == study.height - 2


# -- the model: errors people can act on ----------------------------------------------------------
def test_unknown_or_missing_attribute_lists_the_attributes(study):
    with pytest.raises(
        ConfigError, match=r"attribute 'potncy' is not in the study. Did you mean 'potency'\? Attributes: potency"
    ):
        StabilityModel().build(study, attribute="potncy")
    with pytest.raises(ConfigError, match=r"no attribute given.*Attributes: potency"):
        StabilityModel().build(study)


def test_one_temperature_needs_an_informative_activation_energy(study):
    one = study.filter(pl.col("temperature_c") == 5.0)
    with pytest.raises(ConfigError, match=r"every usable row is at 5 °C.*say nothing about the activation energy"):
        StabilityModel().build(one, attribute="potency")
    m = StabilityModel(priors={"activation_energy": {"dist": "LogNormal", "mu": np.log(85.0), "sigma": 0.1}})
    m.build(one, attribute="potency")
    assert m.data["temperatures_c"] == [5.0]


def test_missing_temperature_names_rows_and_lots(study):
    # several conditions, one without a temperature: the study validator names every row
    bad = study.with_columns(
        condition=pl.when((pl.col("batch_id") == "L02") & (pl.col("temperature_c") == 5))
        .then(pl.lit("fridge"))
        .otherwise("condition"),
        temperature_c=pl.when((pl.col("batch_id") == "L02") & (pl.col("temperature_c") == 5))
        .then(None)
        .otherwise("temperature_c"),
    )
    line = bad.filter(pl.col("condition") == "fridge")["source_line"][0]
    with pytest.raises(
        SchemaError, match=rf'(?s)problems in simulate_stability.*line {line}, column "temperature_c" \(batch L02\)'
    ):
        StabilityModel().build(bad, attribute="potency")
    # a single unnamed condition passes the study validator; the model still needs the temperature
    one = study.filter(pl.col("temperature_c") == 5).with_columns(
        condition=pl.lit("shelf"), temperature_c=pl.lit(None, dtype=pl.Float64)
    )
    first = one["source_line"][0]
    with pytest.raises(
        SchemaError,
        match=rf'line {first}, column "temperature_c" \(batch L01\): potency at condition .shelf., time 0.0: expected a storage temperature',
    ):
        StabilityModel().build(one, attribute="potency")


def test_a_lot_with_a_single_time_point_is_named(study):
    one = study.filter(~((pl.col("batch_id") == "L03") & (pl.col("time") > 0)))
    line = one.filter(pl.col("batch_id") == "L03")["source_line"][0]
    with pytest.raises(
        SchemaError,
        match=rf'line {line}, column "time" \(batch L03\): lot L03 has potency measured at a single time \(0\)',
    ):
        StabilityModel().build(one, attribute="potency")


def test_increasing_attribute_needs_a_known_asymptote():
    agg = bw.simulate_stability(attribute="hmw", unit="%", y0=1.0, direction="increase", noise_sd=0.05)
    m = StabilityModel()
    m.build(agg, attribute="hmw")
    assert m.data["config"]["direction"] == "increase" and m.data["config"]["asymptote"] == 100.0
    other = agg.with_columns(unit=pl.lit("ng/mL"))
    with pytest.raises(ConfigError, match=r"hmw increases \(unit 'ng/mL'\); give asymptote="):
        StabilityModel().build(other, attribute="hmw")
    with pytest.raises(ConfigError, match=r"asymptote .* is 0: it must lie above the initial value"):
        StabilityModel(asymptote=0.0, direction="increase").build(agg, attribute="hmw")


def test_histories_enter_the_design(study):
    h = TemperatureHistory.constant(5.0).with_excursion(start=6.0, duration=1.0, temperature_c=25.0)
    m = StabilityModel()
    m.build(study, attribute="potency", histories={("L01", "5 °C"): h})
    temps = m.data["temperatures_c"]
    expo = np.asarray(m.data["exposure"])
    rows = [
        i for i, (lot, c) in enumerate(zip(m.data["lot"], m.data["condition"], strict=True)) if lot == 0 and c == "5 °C"
    ]
    t = np.asarray(m.data["time"])[rows]
    np.testing.assert_allclose(expo[rows].sum(axis=1), t)  # all the time is spent somewhere
    at25 = expo[rows, temps.index(25.0)]
    np.testing.assert_allclose(at25, np.clip(t - 6.0, 0, 1.0))
    assert m.histories()[("L01", "5 °C")] == h
    with pytest.raises(ConfigError, match=r"histories: no series \('L09', '5 °C'\)"):
        StabilityModel().build(study, attribute="potency", histories={("L09", "5 °C"): h})
    with pytest.raises(ConfigError, match="lot 'L01' has 3 conditions"):
        StabilityModel().build(study, attribute="potency", histories={"L01": h})


# -- the model: results ----------------------------------------------------------------------------
def test_predictions_are_tidy_and_ordered(fitted):
    p = fitted.predict(condition=40.0, times=np.linspace(0, 3, 7), random_seed=1)
    assert p.columns == ["batch_id", "condition", "time", "attribute", "mean", "lower", "upper", "prob", "unit"]
    assert p["batch_id"].null_count() == p.height and p["condition"][0] == "40 °C"
    assert (p["lower"] <= p["mean"]).all() and (p["mean"] <= p["upper"]).all()
    assert (p["mean"].diff().drop_nulls() < 0).all()  # potency falls
    lot = fitted.predict(condition="40 °C/75 % RH", times=[3.0], batch_id="L01", random_seed=1)
    new = fitted.predict(condition="40 °C/75 % RH", times=[3.0], random_seed=1)
    meas = fitted.predict(condition="40 °C/75 % RH", times=[3.0], batch_id="L01", kind="predictive", random_seed=1)
    width = lambda f: float(f["upper"][0] - f["lower"][0])  # noqa: E731
    assert width(meas) > width(lot) and width(new) > width(lot)
    s = fitted.summary()
    assert {"mean", "lower", "upper", "prob"} <= set(s.columns)
    assert set(s["parameter"]) >= {"activation_energy", "k_ref", "y0", "sd_log_k_ref", "sd_y0", "sigma"}
    assert s.filter(pl.col("level") == "batch")["batch_id"].unique().sort().to_list() == ["L01", "L02", "L03"]


def test_missing_or_unknown_condition_and_lot(fitted):
    with pytest.raises(ConfigError, match=r"predicts at a storage condition: give condition=.*'5 °C'"):
        fitted.predict(times=[1.0])
    with pytest.raises(
        ConfigError, match=r"condition '25 °C' is not in the study.*Conditions: 25 °C/60 % RH, 40 °C/75 % RH, 5 °C"
    ):
        fitted.time_to_limit(lower=90, condition="25 °C")
    with pytest.raises(ConfigError, match=r"lot 'L9' was not in the data.*Fitted lots: L01, L02, L03"):
        fitted.prob_in_spec(times=[1.0], lower=90, condition=5, batch_id="L9")


def test_time_to_limit_is_the_exact_crossing_of_the_mean_curve(fitted):
    h = TemperatureHistory.constant(5.0).with_excursion(start=6.0, duration=2.0, temperature_c=30.0)
    for cond in (25.0, h):
        r = fitted.time_to_limit(lower=95.0, condition=cond, batch_id="L02", prob=0.8)
        assert r.columns[:4] == ["batch_id", "condition", "limit", "side"] and r["side"][0] == "lower"
        # brute force: the first grid time where each draw's curve is below the limit
        draws = fitted._lot_draws("L02", np.random.default_rng(0))
        grid = np.linspace(0, 200, 40001)
        cur = fitted._curves(draws, fitted._history(cond), grid)
        first = grid[np.argmax(cur < 95.0, axis=1)]
        lo, hi = np.quantile(first, [0.1, 0.9])
        assert r["lower"][0] == pytest.approx(lo, abs=0.02) and r["upper"][0] == pytest.approx(hi, abs=0.02)
        assert r["prob_beyond_horizon"][0] == 0.0
    beyond = fitted.time_to_limit(lower=95.0, condition=5.0, batch_id="L02", horizon=1.0)
    assert beyond["prob_beyond_horizon"][0] == 1.0 and np.isinf(beyond["mean"][0])


def test_time_to_limit_refuses_limits_it_never_reaches(fitted):
    with pytest.raises(ConfigError, match="the lower limit 120 is on the wrong side of the initial value"):
        fitted.time_to_limit(lower=120.0, condition=5.0)
    with pytest.raises(ConfigError, match="potency decreases, so it moves away from an upper limit"):
        fitted.time_to_limit(upper=105.0, condition=5.0)
    with pytest.raises(ConfigError, match="exactly one of lower= or upper="):
        fitted.time_to_limit(lower=90.0, upper=105.0, condition=5.0)


def test_probability_in_spec(fitted):
    p = fitted.prob_in_spec(times=[0.0, 12.0, 36.0, 120.0], lower=95.0, condition=5.0, random_seed=3)
    assert p.columns == ["batch_id", "condition", "time", "prob", "lower_limit", "upper_limit"]
    assert (p["prob"].diff().drop_nulls() <= 0).all() and p["prob"][-1] < 0.5 < p["prob"][0]
    # the same draws through predict: the fraction of new-lot curves inside the limits
    draws = fitted._lot_draws(None, np.random.default_rng(3))
    cur = fitted._curves(draws, TemperatureHistory.constant(5.0), np.array([0.0, 36.0]))
    assert p["prob"][2] == pytest.approx(np.mean((cur[:, 0] >= 95) & (cur[:, 1] >= 95)))
    two = fitted.prob_in_spec(times=[12.0], lower=95.0, upper=101.0, condition=5.0, random_seed=3, kind="predictive")
    assert 0 < two["prob"][0] < 1 and two["upper_limit"][0] == 101.0


def test_save_load_round_trip_reproduces_predictions(fitted, tmp_path):
    path = fitted.save(tmp_path / "stability.nc")
    back = load(path)
    assert isinstance(back, StabilityModel) and back.config["kinetics"] == "first_order"
    for kw in (
        {"condition": 5.0, "times": [0.0, 24.0]},
        {"condition": "25 °C/60 % RH", "times": [6.0], "batch_id": "L03"},
    ):
        assert_frame_equal(fitted.predict(**kw, random_seed=2), back.predict(**kw, random_seed=2))
    assert_frame_equal(
        fitted.time_to_limit(lower=90, condition=30.0, random_seed=2),
        back.time_to_limit(lower=90, condition=30.0, random_seed=2),
    )
    assert_frame_equal(fitted.summary(), back.summary())


def test_diagnostics_see_draws_added_to_the_posterior_after_sampling(fitted):
    # fit() checks convergence before it adds the initial values' draws (as here, a new posterior node
    # on the same idata); the cached diagnostics must not hide a variable that came later
    import xarray as xr

    model = copy.copy(fitted)
    model.idata = fitted.idata.copy()
    before = model.diagnostics()
    ds = model.idata["posterior"].to_dataset()
    n_chain, n_draw = ds.sizes["chain"], ds.sizes["draw"]
    trend = np.broadcast_to(np.arange(n_draw, dtype=float), (n_chain, n_draw))  # never mixes
    ds["drift"] = (("chain", "draw"), trend)
    model.idata["posterior"] = xr.DataTree(ds)
    after = model.diagnostics()
    drift_ess = float(convergence.array_ess(trend))
    assert drift_ess < before["min_ess_bulk"]
    assert after["min_ess_bulk"] == pytest.approx(drift_ess) and not after["ok"]


def test_initial_values_are_drawn_from_their_conditional(fitted):
    # the y0 draws added after sampling are consistent with the lots' data: the posterior mean of each
    # lot's initial value is close to the mean of its time-0 results
    s = fitted.summary().filter((pl.col("parameter") == "y0") & (pl.col("level") == "batch"))
    d = fitted.data
    t0 = {b: [] for b in d["lots"]}
    for lot, t, v in zip(d["lot"], d["time"], d["value"], strict=True):
        if t == 0:
            t0[d["lots"][lot]].append(v)
    for b, mean in zip(s["batch_id"], s["mean"], strict=True):
        assert mean == pytest.approx(np.mean(t0[b]), abs=1.5)
    assert fitted.idata["posterior"]["y0_b"].dims == ("chain", "draw", "lot")


def test_importing_the_stability_modules_stays_light():
    code = (
        "import sys, bioworkbench.models.stability, bioworkbench.stability.simulate, bioworkbench.stability.history, "
        "bioworkbench.stability.q1e, bioworkbench.stability.study, bioworkbench.review.stability;"
        "print(any(m in sys.modules for m in ('pymc', 'pytensor', 'scipy', 'hvplot')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
