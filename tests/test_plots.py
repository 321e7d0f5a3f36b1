"""Public plot functions return HoloViews objects with unit-carrying labels and days on the x axis."""

from __future__ import annotations

import holoviews as hv
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import plots, review


@pytest.fixture(scope="module")
def camp():
    return bw.simulate_campaign(n_batches=6, seed=1, online_interval_min=60)


def _dims(obj):
    out = set()
    for el in obj.traverse(lambda x: x, [hv.element.Element]):
        out |= {d.pprint_label for d in el.kdims + el.vdims}
    return out


def labels(obj):
    """x and y labels set through opts on every element."""
    found = []
    for el in obj.traverse(lambda x: x, [hv.element.Element]):
        o = hv.Store.lookup_options("bokeh", el, "plot").kwargs
        found.append((o.get("xlabel"), o.get("ylabel")))
    return found


def test_trajectories(camp):
    p = plots.plot_trajectories(camp.observations, variable="vcd", highlight=camp.batch_ids[0])
    assert isinstance(p, hv.Overlay)
    assert ("Culture time (d)", "Viable cell density (1e6 cells/mL)") in labels(p)
    hv.render(p)  # draws without error


def test_single_line_breaks_between_batches():
    df = pl.DataFrame({"batch_id": ["A", "A", "B"], "day": [0.0, 1.0, 0.0], "value": [1.0, 2.0, 3.0]})
    out = plots._single_line(df)
    assert out["batch_id"].to_list() == ["A", "A", "A", "B", "B"]
    assert out["value"].to_list() == [1.0, 2.0, None, 3.0, None]


def test_envelope_and_kinetics(camp):
    b = camp.batch_ids[1]
    env = review.envelope(camp.observations, exclude=b)
    p = plots.plot_batch_envelopes(env, camp.observations.filter(pl.col("batch_id") == b), batch_id=b)
    assert isinstance(p, hv.Layout) and len(p) >= 4
    assert ("Culture time (d)", "Product titer (mg/L)") in labels(p)
    kin = bw.kinetics.compute(camp)
    k = plots.plot_kinetics(kin, highlight=b)
    assert ("Culture time (d)", "Specific productivity qp (pg/cell/d)") in labels(k)
    hv.render(p), hv.render(k)


def test_cqa_outcomes_online(camp):
    crev = review.campaign_review(camp)
    g = plots.plot_cqa_grid(crev.table, attributes=crev.cqas, cpps=crev.cpps, specs=camp.specs)
    assert len(g) == len([a for a in crev.cqas if a in crev.table.columns]) * len(crev.cpps)
    o = plots.plot_outcomes(crev.table, columns=["peak_vcd", "final_titer"])
    on = plots.plot_online(camp.observations, batch_id=camp.batch_ids[0])
    assert ("Culture time (d)", "PH (pH)") in labels(on) or any("pH" in (y or "") for _, y in labels(on))
    for x in (g, o, on):
        hv.render(x)


def test_clear_errors(camp):
    with pytest.raises(bw.SchemaError, match="no offline observations of 'glucos'"):
        plots.plot_trajectories(camp.observations, variable="glucos")
    with pytest.raises(bw.SchemaError, match="has no vcd observations to highlight"):
        plots.plot_trajectories(camp.observations, variable="vcd", highlight="nope")
    crev = review.campaign_review(camp)
    with pytest.raises(bw.SchemaError, match="not in the table"):
        plots.plot_cqa_vs_cpp(crev.table, attribute="potency", cpp="cpp_ph_setpoint")


def test_monitoring_plots(camp):
    from bioworkbench import monitoring

    a = monitoring.align_by_time(camp, variables=["ph", "do", "temperature"], grid_h=6, source="online")
    env = monitoring.golden_batch(a)
    g = plots.plot_golden(env, a, batch_id=camp.batch_ids[0], variable="ph")
    m = monitoring.BatchPCA(n_components=2).fit(a)
    st = m.batch_statistics(prob=0.99)
    s = plots.plot_scores(st, highlight=[camp.batch_ids[0]])
    c = plots.plot_control_chart(m.monitor(a.filter(pl.col("batch_id") == camp.batch_ids[0])), statistic="spe")
    b = plots.plot_contributions(m.contributions(camp.batch_ids[0]), statistic="spe")
    for x in (g, s, c, b):
        hv.render(x)
    with pytest.raises(bw.SchemaError, match="statistic must be"):
        plots.plot_control_chart(m.monitor(a), statistic="q")
