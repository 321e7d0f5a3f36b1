"""Public plot functions return HoloViews objects with unit-carrying labels and days on the x axis."""

from __future__ import annotations

import holoviews as hv
import polars as pl
import pytest

import bioworkbench as bw
from bioworkbench import plots, review


@pytest.fixture(scope="module")
def camp():
    return bw.simulate_campaign(n_batches=6, random_seed=1, online_interval_min=60)


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
    out = plots.base.single_line(df)
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
    with pytest.raises(
        bw.SchemaError, match=r"- plot_cqa_vs_cpp: table: missing required column 'potency'; found: batch_id, "
    ):
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
    with pytest.raises(bw.ArgumentError, match=r"plot_control_chart: statistic: the str 'q' is not valid.*spe, t2"):
        plots.plot_control_chart(m.monitor(a), statistic="q")


def _report_plots(camp):
    """The figures the batch and campaign reports draw (forecast from a made-up trajectory)."""
    b = camp.batch_ids[1]
    crev = review.campaign_review(camp)
    env = review.envelope(camp.observations, exclude=b)
    days = pl.Series([0.0, 24.0 * 7, 24.0 * 14])
    traj = pl.concat(
        pl.DataFrame({"batch_id": b, "variable": v, "time_h": days, "mean": m, "lower": m * 0.8, "upper": m * 1.2})
        for v, m in (("vcd", pl.Series([0.5, 15.0, 10.0])), ("titer", pl.Series([0.0, 1500.0, 4000.0])))
    )
    from bioworkbench import monitoring

    a = monitoring.align_by_time(camp, variables=["ph", "do", "temperature"], grid_h=6, source="online")
    m = monitoring.BatchPCA(n_components=2).fit(a)
    st = m.batch_statistics(prob=0.99)
    return {
        "envelopes": plots.plot_batch_envelopes(env, camp.observations.filter(pl.col("batch_id") == b), batch_id=b),
        "envelope": plots.plot_envelope(
            env, camp.observations.filter(pl.col("batch_id") == b), variable="vcd", batch_id=b, width=440
        ),
        "kinetics": plots.plot_kinetics(bw.kinetics.compute(camp), highlight=b),
        "online": plots.plot_online(camp.observations, batch_id=b),
        "forecast": plots.plot_forecast(traj, camp.observations, batch_id=b, known_h=120.0, spec_lower=3000.0),
        "trajectories": plots.plot_trajectories(camp.observations, variable="vcd"),
        "highlighted": plots.plot_trajectories(camp.observations, variable="viability", highlight=b),
        "outcomes": plots.plot_outcomes(crev.table, columns=["peak_vcd", "final_titer"]),
        "cqa": plots.plot_cqa_grid(crev.table, attributes=crev.cqas, cpps=crev.cpps, specs=camp.specs),
        "scores": plots.plot_scores(st, highlight=[b]),
        "contributions": plots.plot_contributions(m.contributions(b), statistic="spe"),
        "golden": plots.plot_golden(monitoring.golden_batch(a), a, batch_id=b, variable="do"),
    }


def test_report_plots_log_no_warning(camp, caplog):
    """No ``WARNING:param.main: alpha option not found …`` (plot_outcomes passed ``alpha`` to a
    box plot) or any other warning reaches a report from the plots."""
    import warnings

    with warnings.catch_warnings(record=True) as caught, caplog.at_level("WARNING"):
        warnings.simplefilter("always")
        figures = _report_plots(camp)
        for fig in figures.values():
            hv.render(fig)
    logged = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert logged == []
    assert [str(w.message) for w in caught if not issubclass(w.category, bw.BioWorkbenchWarning)] == []


def test_trajectory_title_names_variable_and_unit(camp):
    """Without a highlighted batch the plot is a single element: it used to be titled 'batches'."""
    fig = hv.render(plots.plot_trajectories(camp.observations, variable="vcd"))
    assert fig.title.text == "Viable cell density (1e6 cells/mL): 6 batches"
    assert not fig.legend or not fig.legend[0].visible
    hi = hv.render(plots.plot_trajectories(camp.observations, variable="titer", highlight="B02", width=700))
    assert hi.title.text == "Product titer (mg/L): batch B02 among 6 batches"
    assert hi.legend[0].visible and [i.label["value"] for i in hi.legend[0].items] == ["other batches", "B02"]


def test_labels_do_not_repeat_the_unit():
    assert plots.base.axis_label("ph", "pH") == "pH"
    assert plots.base.axis_label("vcd", "1e6 cells/mL") == "Viable cell density (1e6 cells/mL)"


def test_long_titles_wrap_to_the_plot_width():
    t = "acidic variants vs temp shift day"
    assert plots.base.wrap_title(t, 700) == t
    wrapped = plots.base.wrap_title(t, 300)
    assert wrapped.replace("\n", " ") == t and wrapped.count("\n") == 1
    assert all(plots.base.text_px(line) <= 300 - plots.base.TITLE_MARGIN_PX for line in wrapped.split("\n"))
    assert plots.base.wrap_title("averyveryverylongwordwithoutspaces", 100) == "averyveryverylongwordwithoutspaces"


#: every Bokeh plot's title lines, measured with the font the page draws them in, and the room
#: between the plot's frame and the right edge of its canvas
_TITLES_JS = r"""
(() => {
  const views = [], seen = new Set();
  const walk = (v) => {
    if (!v || seen.has(v)) return;
    seen.add(v); views.push(v);
    for (const k of v.child_views || []) walk(k);
  };
  for (const v of Bokeh.index.roots || Object.values(Bokeh.index)) walk(v);
  const ctx = document.createElement("canvas").getContext("2d");
  const out = [];
  for (const v of views) {
    const t = v.model && v.model.title;
    if (!t || !t.text || !v.frame) continue;
    ctx.font = `${t.text_font_style} ${t.text_font_size} ${t.text_font}`;
    for (const line of t.text.split("\n")) {
      out.push({line: line, px: ctx.measureText(line).width, left: v.frame.bbox.left, canvas: v.bbox.width});
    }
  }
  return JSON.stringify(out);
})()
"""


def test_report_plot_titles_fit_their_plots(camp, tmp_path):
    """Drawn in Chromium: no title line of the report plots runs past its plot's right edge."""
    import sys
    from pathlib import Path

    from bokeh.resources import INLINE

    sys.path.insert(0, str(Path(__file__).parent))
    from browser import Browser, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium found; run scripts/ensure-chromium.sh")
    page_file = tmp_path / "plots.html"
    hv.save(hv.Layout(list(_report_plots(camp).values())).cols(1).opts(shared_axes=False), page_file,
            resources=INLINE)  # fmt: skip
    with Browser() as b:
        page = b.inspect(page_file, min_canvases=10, timeout=60, probe=_TITLES_JS)
    assert page.errors == [], page.describe()
    lines = page.probe
    assert len(lines) >= 25, lines
    cut = [t for t in lines if t["left"] + t["px"] > t["canvas"]]
    assert cut == [], cut


# ---------------------------------------------------------------------------------------------
# layering, process state and input checks
# ---------------------------------------------------------------------------------------------
#: what the plots may import from the package: the bottom layers only (issue 15)
_PLOTS_MAY_IMPORT = {"bioworkbench._imports", "bioworkbench.checks", "bioworkbench.errors", "bioworkbench.variables"}


def _package_imports(path):
    """Every ``bioworkbench…`` module a file imports, at the top or inside a function."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.split(".")[0] == "bioworkbench"}


def test_plots_import_nothing_above_them():
    from pathlib import Path

    files = sorted(Path(plots.__file__).parent.glob("*.py"))
    assert {f.stem for f in files} >= {"base", "trajectories", "kinetics", "forecast", "monitoring", "outcomes"}
    above = {
        f.name: sorted(
            m for m in _package_imports(f) if m not in _PLOTS_MAY_IMPORT and not m.startswith("bioworkbench.plots")
        )
        for f in files
    }
    assert {k: v for k, v in above.items() if v} == {}
    assert "bioworkbench.variables" in _package_imports(Path(plots.base.__file__))  # the check reads imports


def test_setup_leaves_warnings_of_the_process_alone():
    """No global filter and no replaced ``warnings.showwarning`` (it used to print bioworkbench's
    warnings on one line for the whole process; the report renderer shortens them on the page).
    The plotting libraries' own import-time filters are taken before the comparison."""
    import subprocess
    import sys

    code = (
        "import warnings\n"
        "import holoviews, hvplot.polars, panel  # their own filters (numpy, Bokeh, Panel warnings) set on import\n"
        "before = (warnings.showwarning, list(warnings.filters))\n"
        "import bioworkbench as bw\n"
        "bw.plots.setup(); bw.plots.setup()\n"
        "assert (warnings.showwarning, list(warnings.filters)) == before\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_natural_mistakes_are_located_argument_errors(camp):
    obs = camp.observations
    forecast = pl.DataFrame(
        {"batch_id": ["B01"], "variable": ["vcd"], "time_h": [0.0], "mean": [1.0], "lower": [0.5], "upper": [2.0]}
    )
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_trajectories: observations must be a polars DataFrame; got a Campaign"
    ):
        plots.plot_trajectories(camp, variable="vcd")
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_trajectories: highlight must be a non-empty string or None; got a list"
    ):
        plots.plot_trajectories(obs, variable="vcd", highlight=["B01"])
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_kinetics: variables must be a list of names; got the str 'mu'. Write \['mu'\]"
    ):
        plots.plot_kinetics(bw.kinetics.compute(camp), variables="mu")
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_envelope: width must be an integer >= 50 \(px\); got the str '7in'"
    ):
        plots.plot_envelope(review.envelope(obs), variable="vcd", width="7in")
    with pytest.raises(
        bw.SchemaError, match=r"- plot_trajectories: observations: missing required column 'flag'; found: batch_id, "
    ):
        plots.plot_trajectories(obs.drop("flag"), variable="vcd")
    with pytest.raises(bw.SchemaError, match=r"- plot_outcomes: table: missing required columns 'peak_vcdd', 'titre'"):
        plots.plot_outcomes(review.campaign_review(camp).table, columns=["peak_vcdd", "final_titer", "titre"])
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_scores: prob must be a probability .*got 99. Did you mean 0.99\?"
    ):
        plots.plot_scores(pl.DataFrame({"batch_id": ["a"], "t_1": [0.0], "t_2": [0.0]}), prob=99)
    with pytest.raises(bw.ArgumentError, match=r"^plot_forecast: known_h must be a finite number >= 0 \(h\); got -24"):
        plots.plot_forecast(forecast, obs, batch_id="B01", known_h=-24)
    with pytest.raises(
        bw.ArgumentError,
        match=r"^plot_shelf_life: result must be a ShelfLifeResult from bw.stability.shelf_life; got a polars DataFrame",
    ):
        bw.plots.plot_shelf_life(obs)
    with pytest.raises(
        bw.ArgumentError, match=r"^plot_response_surface: model must be a fitted response-surface model"
    ):
        bw.plots.plot_response_surface(obs)


def test_trajectory_like_plots_are_titled_with_variable_and_unit(camp):
    """Issue 18: kinetics panels, batch envelopes, the golden batch and growth fits name what they show."""
    from bokeh.plotting import figure

    from bioworkbench import monitoring

    b = camp.batch_ids[1]
    env = review.envelope(camp.observations, exclude=b)
    envelopes = hv.render(
        plots.plot_batch_envelopes(env, camp.observations.filter(pl.col("batch_id") == b), batch_id=b)
    )
    titles = [f.title.text.replace("\n", " ") for f in envelopes.select(dict(type=figure))]
    assert "Viable cell density (1e6 cells/mL)" in titles and "Product titer (mg/L)" in titles
    kin = hv.render(plots.plot_kinetics(bw.kinetics.compute(camp), variables=["qp"]))
    (fig,) = kin.select(dict(type=figure))
    assert fig.title.text.replace("\n", " ") == "Specific productivity qp (pg/cell/d)"
    a = monitoring.align_by_time(camp, variables=["ph", "do"], grid_h=6, source="online")
    golden = hv.render(plots.plot_golden(monitoring.golden_batch(a), a, batch_id=b, variable="do"))
    assert golden.title.text.replace("\n", " ") == f"Dissolved oxygen, % of air saturation: {b} vs golden batch"
    assert golden.legend[0].visible
    pred = pl.DataFrame({"batch_id": [b] * 3, "time_h": [0.0, 48, 96], "mean": [0.5, 2, 6], "lower": [0.4, 1.5, 5],
                         "upper": [0.6, 2.5, 7]})  # fmt: skip
    growth = plots.plot_growth_fit(pred, camp.observations, batch_ids=[b])
    assert hv.Store.lookup_options("bokeh", growth, "plot").kwargs["title"] == (
        "Viable cell density (1e6 cells/mL): fitted curves and data"
    )
    hv.render(growth)
