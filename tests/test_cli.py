"""The ``bioworkbench`` command: each subcommand one call; a non-empty folder is never emptied unasked."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import bioworkbench as bw
from bioworkbench import datasets
from bioworkbench.cli import main


def busy_folder(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "results.xlsx").write_text("someone's work")
    return folder


def test_demo_refuses_a_non_empty_folder_without_overwrite(tmp_path, capsys):
    folder = busy_folder(tmp_path)
    assert main(["demo", "--out", str(folder), "--n-batches", "2"]) == 1
    err = capsys.readouterr().err
    assert f"FileExistsError: {folder} is not empty (it holds results.xlsx); nothing was written." in err
    assert "Pass --overwrite to replace its contents" in err
    assert (folder / "results.xlsx").read_text() == "someone's work"  # untouched
    assert main(["demo", "--out", str(folder), "--n-batches", "2", "--overwrite"]) == 0
    assert not (folder / "results.xlsx").exists() and len(bw.read_campaign(folder)) == 2


def test_demo_writes_into_a_new_or_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["demo", "--out", str(tmp_path / "empty"), "--n-batches", "2", "--seed", "3"]) == 0
    assert "demo campaign written to" in capsys.readouterr().out
    assert_frame_equal(
        bw.read_campaign(tmp_path / "empty").observations, bw.simulate_campaign(n_batches=2, random_seed=3).observations
    )


def test_dataset_writes_a_real_campaign_folder_and_summarises_it(tmp_path, capsys):
    assert main(["dataset", "nistcho", "--out", str(tmp_path / "nistcho")]) == 0
    out = capsys.readouterr().out
    assert f"dataset nistcho written to {tmp_path / 'nistcho'}/" in out
    assert "batches:      34 (34 completed)" in out and "cpp_feeding, cpp_experiment" in out
    back = bw.read_campaign(tmp_path / "nistcho")
    assert_frame_equal(back.observations, datasets.nistcho().observations)
    assert back.batches.filter(pl.col("batch_id") == "FB4-G-R1")["cpp_feeding"].item() == "G"


def test_dataset_refuses_a_non_empty_folder_and_a_file(tmp_path, capsys):
    folder = busy_folder(tmp_path)
    assert main(["dataset", "ambr250", "--out", str(folder)]) == 1
    assert "Pass --overwrite to replace its contents" in capsys.readouterr().err
    assert (folder / "results.xlsx").exists()
    assert main(["dataset", "ambr250", "--out", str(folder), "--overwrite"]) == 0
    assert len(bw.read_campaign(folder)) == 12
    file = tmp_path / "a.txt"
    file.write_text("x")
    assert main(["dataset", "ambr250", "--out", str(file)]) == 1
    assert f"{file} is a file, not a folder; choose another --out folder." in capsys.readouterr().err


def test_dataset_name_is_checked_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dataset", "nist", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.replace("'", "")  # Python versions differ in quoting the choices
    assert "invalid choice: nist (choose from demo, nistcho, ambr250)" in err
    assert not (tmp_path / "x").exists()


def test_simulate_refuses_a_non_empty_folder_with_the_flag_named(tmp_path, capsys):
    folder = busy_folder(tmp_path)
    assert main(["simulate", str(folder), "--n-batches", "2"]) == 1
    assert "Pass --overwrite" in capsys.readouterr().err


def test_demo_running_writes_batches_cut_at_their_day(tmp_path, capsys):
    out = tmp_path / "live"
    assert main(["demo", "--out", str(out), "--n-batches", "4", "--running", "B02=5", "--running", "B03=7.5"]) == 0
    live = bw.read_campaign(out)
    status = dict(zip(live.batches["batch_id"], live.batches["status"], strict=True))
    assert status["B02"] == status["B03"] == "running" and status["B01"] != "running"
    last = live.observations.group_by("batch_id").agg(pl.col("time_h").max())
    last = dict(zip(last["batch_id"], last["time_h"], strict=True))
    assert last["B02"] <= 120.0 and last["B03"] <= 180.0 and last["B01"] > 180.0
    assert live.quality.filter(pl.col("batch_id").is_in(["B02", "B03"])).height == 0


@pytest.mark.parametrize("item", ["B02", "B02=day5", "=5"])
def test_demo_running_refuses_a_malformed_item(tmp_path, capsys, item):
    assert main(["demo", "--out", str(tmp_path / "x"), "--n-batches", "2", "--running", item]) == 1
    err = capsys.readouterr().err
    assert f"--running {item!r}: expected BATCH=DAY" in err
    assert not (tmp_path / "x").exists()
