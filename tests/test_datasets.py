"""The shipped campaigns: real data read offline into validated Campaigns, with licence and source."""

from __future__ import annotations

import fnmatch
import hashlib
import socket
import tomllib
from pathlib import Path

import polars as pl
import pytest
from conftest import shared_data
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench import datasets

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bioworkbench" / "datasets"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dataset tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_nistcho_loads_offline_as_a_validated_campaign(no_network):
    c = datasets.nistcho()
    assert isinstance(c, bw.Campaign) and len(c) == 34
    assert c.observations.height == 927 and c.flagged().height == 0
    b = c.batches
    assert (
        set(b["status"]) == {"completed"} and set(b["product"]) == {"cNISTmAb"} and set(b["process"]) == {"fed-batch"}
    )
    assert c.cpps == ["cpp_feeding", "cpp_experiment"]
    assert set(b["cpp_feeding"]) == set("ABCDEFG") and set(b["cpp_experiment"]) == {"FB2", "FB4"}
    # the design as the source describes it: FB2 with A-F, FB4 with A, B, C, G
    design = b.group_by("cpp_experiment").agg(pl.col("cpp_feeding").unique().sort()).sort("cpp_experiment")
    assert design.rows() == [("FB2", list("ABCDEF")), ("FB4", list("ABCG"))]
    row = b.filter(pl.col("batch_id") == "FB2-A-R1").row(0, named=True)
    assert (row["cpp_feeding"], row["cpp_experiment"], row["replicate"]) == ("A", "FB2", "R1")
    assert row["scale_l"] is None  # the source does not say: left empty, never invented
    # it passes every rule of the data model when validated again
    bw.Campaign(**c.frames(), validate=True)


def test_ambr250_loads_offline_with_its_design_from_the_metadata(no_network):
    c = datasets.ambr250()
    assert len(c) == 12 and c.observations.height == 762 and c.events.height == 156
    b = c.batches.sort("batch_id")
    assert set(b["status"]) == {"completed"} and set(b["product"]) == {"L-tryptophan"}
    assert b["scale_l"].unique().to_list() == [0.25] and set(b["process"]) == {"fed-batch"}
    assert c.cpps == ["cpp_strain", "cpp_condition", "cpp_temperature", "cpp_ph"]
    meta = pl.read_excel(DATA / "ambr250" / "exponential_fed-batch_scale-down_meta_data.xlsx").sort(
        "Reactor/Plate/Flask Number"
    )
    assert b["cpp_strain"].to_list() == meta["Strain"].to_list()
    assert b["cpp_condition"].to_list() == meta["Condition"].to_list()
    assert b.group_by("cpp_strain", "cpp_condition").len()["len"].to_list() == [3, 3, 3, 3]
    bw.Campaign(**c.frames(), validate=True)


@pytest.mark.parametrize(
    ("name", "folder", "file", "cmap"),
    [
        ("nistcho", "nistcho-vcd", "vicell_growth_fb2_fb4_combined.csv", "nistcho"),
        ("ambr250", "ecoli-ambr250", "exponential_fed-batch_scale-down_offline_data.xlsx", "ambr250"),
    ],
)
def test_datasets_hold_the_same_values_as_the_shared_files(name, folder, file, cmap):
    shipped = datasets.load(name)
    original = bw.read_wide(shared_data(folder, file), cmap)
    for frame in ("batches", "events", "media"):
        assert_frame_equal(getattr(shipped, frame), getattr(original, frame))
    assert_frame_equal(shipped.observations.drop("source_file"), original.observations.drop("source_file"))


@pytest.mark.parametrize("name", ["nistcho", "ambr250"])
def test_lineage_names_the_files_in_the_package_with_their_sha256(name):
    c = datasets.load(name)
    files = set(c.observations["source_file"])
    assert len(files) == 1 and next(iter(files)).startswith(f"bioworkbench/datasets/{name}/")
    for path, sha in c.sources.items():
        assert path.startswith("bioworkbench/"), path
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == sha


@pytest.mark.parametrize(
    ("name", "holder"), [("nistcho", "Computational Systems Biology Group"), ("ambr250", "jonruh")]
)
def test_licence_and_source_sit_beside_the_data(name, holder):
    licence = (DATA / name / "LICENSE").read_text()
    assert licence.startswith("MIT License") and holder in licence
    text = datasets.source(name)
    assert "Licence: MIT" in text and "commit" in text
    for f in (DATA / name).iterdir():
        if f.name not in ("LICENSE", "SOURCE.md"):
            assert f.name in text, f"{f.name} is not described in SOURCE.md"
            assert hashlib.sha256(f.read_bytes()).hexdigest() in text, f"{f.name}: sha256 not in SOURCE.md"


def test_every_shipped_file_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    globs = [f"bioworkbench/{p}" for p in patterns["bioworkbench"]] + [
        f"bioworkbench/datasets/{p}" for p in patterns["bioworkbench.datasets"]
    ]
    for name in ("nistcho", "ambr250"):
        for f in (DATA / name).iterdir():
            rel = f.relative_to(ROOT).as_posix()
            assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} would be left out of the wheel"


def test_write_makes_a_campaign_folder_and_refuses_a_non_empty_one(tmp_path):
    path = datasets.write("ambr250", tmp_path / "ambr250")
    back = bw.read_campaign(path)
    original = datasets.ambr250()
    assert back.name == original.name and back.sources == original.sources
    assert_frame_equal(back.observations, original.observations)
    assert_frame_equal(back.batches, original.batches)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"busy exists and is not empty; pass overwrite=True"):
        datasets.write("nistcho", tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    datasets.write("nistcho", tmp_path / "busy", overwrite=True)
    assert len(bw.read_campaign(tmp_path / "busy")) == 34


def test_demo_dataset_is_the_simulated_campaign():
    assert_frame_equal(
        datasets.demo(n_batches=3, random_seed=2).observations,
        bw.simulate_campaign(n_batches=3, random_seed=2).observations,
    )
    assert datasets.NAMES == ("demo", "nistcho", "ambr250")
    with pytest.warns(DeprecationWarning, match=r"datasets.demo\(seed=\.\.\.\) is deprecated; use random_seed"):
        old = datasets.demo(n_batches=3, seed=2)
    assert_frame_equal(old.observations, bw.simulate_campaign(n_batches=3, random_seed=2).observations)
