"""Reading a campaign folder (:func:`read_campaign`), checked against its ``campaign.yaml``.

A campaign folder holds one file per frame (``batches``, ``observations``, ``events``, ``media``,
``quality``, ``specs``; CSV or Parquet) plus an optional ``campaign.yaml``; see
:mod:`bioworkbench.store` for the record, the signature and which folders are trusted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import polars as pl

from bioworkbench.campaign import Campaign
from bioworkbench.errors import DataReadError, IntegrityError, Issue, SchemaError
from bioworkbench.io.tidy import read_frame_file
from bioworkbench.schema import coerce_frame, flag_values
from bioworkbench.store import FRAME_NAMES, is_signed, read_meta, sha256_file
from bioworkbench.variables import to_canonical

__all__ = ["read_campaign"]

_CHANGED_HINT = (
    "the folder was changed after Campaign.write. Restore the file, or, if the change is meant, read "
    "the folder with read_campaign(folder, verify=False) (the files are then validated) and write it again."
)


def read_campaign(
    folder: str | os.PathLike,
    *,
    separator: str = ",",
    decimal_comma: bool = False,
    on_invalid: Literal["raise", "flag"] = "raise",
    validate: bool | Literal["auto"] = "auto",
    verify: bool = True,
) -> Campaign:
    """Read a campaign folder (CSV or Parquet per frame, plus an optional ``campaign.yaml``).

    Parameters
    ----------
    folder
        Holds ``batches``, ``observations`` and optionally ``events``, ``media``, ``quality``,
        ``specs`` as ``.parquet`` or ``.csv`` files.
    separator, decimal_comma
        How CSV files are written (``;`` and decimal commas are common in European exports).
    on_invalid
        What to do with a physically impossible observation (negative concentration, viability
        above 100 %): ``"raise"`` (default) lists them in the error; ``"flag"`` keeps each row,
        flagged ``invalid`` with the reason, and counts them in the campaign's flags.
    validate
        ``"auto"`` (default) checks every rule of the data model unless the folder is trusted
        (see Notes); ``True`` always checks; ``False`` checks column types only.
    verify
        Check the folder against what ``campaign.yaml`` records (default). ``False`` reads the
        files as they are, e.g. after a deliberate edit; they are then validated.

    Returns
    -------
    Campaign

    Raises
    ------
    DataReadError
        The folder or a required frame is missing, a file cannot be parsed, or ``campaign.yaml``
        is not a mapping of the known keys (its line and key named).
    IntegrityError
        A :class:`DataReadError`: the folder differs from what ``campaign.yaml`` records: a listed
        frame missing, a frame not listed, a row count or sha256 that differs (each frame named
        with what differs). Changed data is never re-read silently.
    SchemaError
        Any rule of the data model is broken; every problem names the file, line, column and batch.

    Notes
    -----
    **Which folders are trusted** (the reasons: :mod:`bioworkbench.store`). A folder is read
    without re-validation only when every frame has the row count and sha256 that
    ``campaign.yaml`` records, ``campaign.yaml`` says the campaign was validated, and its
    signature, made with this user's secret key kept outside the folder, matches. Every other
    folder (signed with another key, e.g. written by a colleague, edited and re-hashed, written
    before signatures, or written from a campaign built with ``validate=False``) is validated in
    full, and a folder that differs from its record is an :class:`IntegrityError`.

    **Why not validate always.** Validation costs several times what reading Parquet costs on a
    large campaign (``benchmarks/bench_campaign.py`` measures both); the signature keeps a
    campaign that was validated when it was written as fast to read back as Parquet allows, and
    the data a trusted read does not re-check is exactly the data that was checked when written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataReadError(
            f"campaign folder {folder} does not exist (or is not a folder). "
            "A campaign folder holds "
            "batches, observations, events, media, quality and specs as .parquet or .csv files."
        )
    meta_path = folder / "campaign.yaml"
    meta: dict[str, Any] = read_meta(meta_path) if meta_path.exists() else {}
    recorded: dict[str, Any] = dict(meta.get("frames") or {})
    present = _frame_files(folder)
    checked = verify and bool(recorded)
    if checked:
        _check_listed(folder, recorded, present)
    for fname in ("batches", "observations"):
        if fname not in present:
            raise DataReadError(
                f"{folder}: no {fname}.parquet or {fname}.csv. Found: "
                f"{', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}."
            )
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, tuple[str, int | None]] = {}
    problems: list[Issue] = []
    for fname, path in present.items():
        digest = sha256_file(path) if checked else None
        frames[fname], first_line = read_frame_file(path, fname, separator=separator, decimal_comma=decimal_comma)
        files[fname] = (str(path), first_line)
        if digest is not None:
            problems += _differences(fname, path, frames[fname], digest, recorded[fname])
    if problems:
        raise IntegrityError(problems, context=str(folder))
    trusted = validate == "auto" and checked and is_signed(meta)
    if not trusted:
        frames, issues = _prepare_frames(frames, files, on_invalid=on_invalid)
        if issues:
            raise SchemaError(issues, context=str(folder))
    do_validate = validate is True or (validate == "auto" and not trusted)
    campaign = Campaign(
        **frames,
        name=meta.get("name") or folder.name,
        description=meta.get("description") or "",
        sources=meta.get("sources") or {},
        validate=do_validate,
        _files=files,
    )
    campaign._validated = do_validate or trusted
    return campaign


def _frame_files(folder: Path) -> dict[str, Path]:
    """The file of each frame present in ``folder`` (``.parquet`` or ``.csv``; both is an error)."""
    present: dict[str, Path] = {}
    for fname in FRAME_NAMES:
        found = [p for p in (folder / f"{fname}.parquet", folder / f"{fname}.csv") if p.exists()]
        if len(found) > 1:
            raise DataReadError(f"{folder}: both {found[0].name} and {found[1].name} exist; keep one.")
        if found:
            present[fname] = found[0]
    return present


def _check_listed(folder: Path, recorded: dict[str, Any], present: dict[str, Path]) -> None:
    """Raise an :class:`IntegrityError` when a listed frame is missing or a frame is not listed."""
    problems = []
    for fname, rec in recorded.items():
        path = present.get(fname)
        if path is None or path.name != rec["file"]:
            instead = "the file is missing" if path is None else f"the folder holds {path.name} instead"
            problems.append(
                Issue(
                    f"campaign.yaml lists {fname} ({rec['file']}, {rec['rows']:,} rows) but {instead}.",
                    file=str(folder / rec["file"]),
                    hint=_CHANGED_HINT,
                )
            )
    for fname, path in present.items():
        if fname not in recorded:
            problems.append(
                Issue(
                    f"{path.name} is not listed in campaign.yaml (which lists {', '.join(recorded)}).",
                    file=str(path),
                    hint=_CHANGED_HINT,
                )
            )
    if problems:
        raise IntegrityError(problems, context=str(folder))


def _differences(fname: str, path: Path, frame: pl.DataFrame, digest: str, rec: dict[str, Any]) -> list[Issue]:
    """How a frame read from ``path`` differs from its record (row count, sha256); empty when it does not."""
    differs = []
    if frame.height != rec["rows"]:
        differs.append(f"it has {frame.height:,} rows where campaign.yaml records {rec['rows']:,}")
    if digest != rec["sha256"]:
        differs.append(f"its sha256 is {digest[:12]}… where campaign.yaml records {rec['sha256'][:12]}…")
    if not differs:
        return []
    return [Issue(f"{fname} changed: {' and '.join(differs)}.", file=str(path), hint=_CHANGED_HINT)]


def _prepare_frames(
    frames: dict[str, pl.DataFrame],
    files: dict[str, tuple[str, int | None]],
    *,
    on_invalid: Literal["raise", "flag"] = "raise",
) -> tuple[dict[str, pl.DataFrame], list[Issue]]:
    """Lineage, canonical units and value flags for observations and media read from files.

    Problems are located in the file being read (its line), even when the rows carry lineage
    columns from an earlier export (``source_file``/``source_line``, which are kept).
    """
    issues: list[Issue] = []
    frames = dict(frames)
    if "observations" in frames:
        file, first_line = files["observations"]
        obs, found = coerce_frame("observations", frames["observations"], file=file, first_line=first_line)
        if found and any(i.message.startswith("missing column") for i in found):
            return frames, found
        issues.extend(found)  # unreadable cells: keep checking the rest, raise all together
        line = pl.int_range(pl.len(), dtype=pl.Int64) + (first_line or 0)
        obs = obs.with_columns(
            pl.col("source_file").fill_null(pl.lit(file)),
            pl.col("source_line").fill_null(line),
            pl.col("source").fill_null("offline"),
            _line=line,
        )
        obs, found = to_canonical(obs, file=file, line_col="_line")
        issues.extend(found)
        # impossible values are left to the Campaign's validation, which reports them together with
        # every other rule (unknown batches, duplicates ...) instead of stopping at them
        frames["observations"] = flag_values(
            obs.drop("_line"), on_invalid=on_invalid, file=file, first_line=first_line
        ).frame
    if "media" in frames:
        file, first_line = files["media"]
        media, found = coerce_frame("media", frames["media"], file=file, first_line=first_line)
        if found:
            return frames, issues + found
        media = media.with_row_index("_line", offset=first_line or 0)
        media, found = to_canonical(media, value_col="concentration", file=file, line_col="_line")
        issues.extend(found)
        frames["media"] = media.drop("_line")
    return frames, issues
