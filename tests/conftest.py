from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

# report commands run by the tests leave no report server behind them (tests/test_warm_server.py turns it on)
os.environ["BW_REPORT_SERVER"] = "0"
SHARED = Path(os.environ.get("BW_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """Path to a real data file in ../shared/data; skip the test when the folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def small_frames() -> dict[str, pl.DataFrame]:
    """Two batches, three daily samples, one feed medium: a minimal valid campaign."""
    batches = pl.DataFrame(
        {
            "batch_id": ["B1", "B2"],
            "product": ["mAb"] * 2,
            "cell_line": ["CHO"] * 2,
            "scale_l": [2.0, 2.0],
            "process": ["fed-batch"] * 2,
            "status": ["completed", "running"],
            "start": ["2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z"],
            "initial_volume_ml": [1000.0, 1000.0],
            "cpp_ph": [7.0, 7.1],
        }
    )
    rows = []
    for b in ("B1", "B2"):
        for d, (vcd, glc) in enumerate([(0.5, 40.0), (1.2, 35.0), (2.8, 30.0)]):
            rows += [
                (b, 24.0 * d, "vcd", vcd, "1e6 cells/mL"),
                (b, 24.0 * d, "viability", 98.0, "%"),
                (b, 24.0 * d, "glucose", glc, "mmol/L"),
            ]
    obs = pl.DataFrame(rows, schema=["batch_id", "time_h", "variable", "value", "unit"], orient="row").with_columns(
        source=pl.lit("offline")
    )
    events = pl.DataFrame(
        {
            "batch_id": ["B1", "B1", "B1", "B2"],
            "time_h": [0.0, 24.0, 24.0, 24.0],
            "event": ["inoculation", "sample", "feed", "feed"],
            "volume_ml": [None, 5.0, 30.0, 30.0],
            "medium": [None, None, "FeedA", "FeedA"],
        }
    )
    media = pl.DataFrame({"medium": ["FeedA"], "variable": ["glucose"], "concentration": [400.0], "unit": ["mmol/L"]})
    quality = pl.DataFrame(
        {
            "batch_id": ["B1"],
            "attribute": ["aggregates"],
            "value": [2.1],
            "unit": ["%"],
            "method": ["SEC"],
        }
    )
    specs = pl.DataFrame({"name": ["aggregates"], "lower": [None], "upper": [5.0], "kind": ["spec"]})
    return dict(batches=batches, observations=obs, events=events, media=media, quality=quality, specs=specs)


@pytest.fixture
def frames() -> dict[str, pl.DataFrame]:
    return small_frames()


@pytest.fixture(scope="session", autouse=True)
def _compile_cache_in_session_folder(tmp_path_factory):
    """Compiled models (bioworkbench.models.compile_cache) go to a folder of this session, never the
    user's cache; set in the environment so that report kernels started by the tests see it too."""
    old = os.environ.get("BIOWORKBENCH_CACHE_DIR")
    os.environ["BIOWORKBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("compiled"))
    yield
    if old is None:
        os.environ.pop("BIOWORKBENCH_CACHE_DIR", None)
    else:
        os.environ["BIOWORKBENCH_CACHE_DIR"] = old


@pytest.fixture
def compile_cache_folder(tmp_path, monkeypatch):
    """An empty compile-cache folder for one test (through the environment, as report kernels see it)
    and a fresh in-memory state: nothing compiled or loaded in this process yet."""
    from bioworkbench.models import base
    from bioworkbench.models import compile_cache as cc

    monkeypatch.setenv(cc.ENV_DIR, str(tmp_path / "compiled"))
    monkeypatch.delenv(cc.ENV_ENABLED, raising=False)
    monkeypatch.setattr(cc, "_settings", {"directory": None, "enabled": None})
    monkeypatch.setattr(cc, "_LOADED", {})
    monkeypatch.setattr(cc, "STATS", dict.fromkeys(cc.STATS, 0))
    monkeypatch.setattr(base, "_COMPILED", {})
    return tmp_path / "compiled"
