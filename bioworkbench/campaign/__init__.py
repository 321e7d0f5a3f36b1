"""The :class:`Campaign`: validated tidy frames of a set of batches, their lineage, and views of them.

A campaign holds six frames (``batches``, ``observations``, ``events``, ``media``, ``quality``,
``specs``; :data:`bioworkbench.schema.FRAMES`), checked against the data model when it is built.
Analyses read observations through :meth:`Campaign.offline`, :meth:`Campaign.online` and
:meth:`Campaign.measurements` (flagged rows left out unless asked), and subsets of batches through
:meth:`Campaign.filter_batches` and :meth:`Campaign.as_of`.

On disk a campaign is a folder (:meth:`Campaign.write`, :mod:`bioworkbench.store`), read back
with :func:`bioworkbench.read_campaign` (:mod:`bioworkbench.io.folder`).

Modules: :mod:`~bioworkbench.campaign.model` (the class: construction, validation, what the
constructor forgives, writing) and :mod:`~bioworkbench.campaign.views` (the observations analyses
use, subsets of batches, views for people).

Layer: builds on :mod:`bioworkbench.schema`, :mod:`bioworkbench.variables` and
:mod:`bioworkbench.store`; the readers (:mod:`bioworkbench.io`) build on it. ``read_campaign``
and ``sha256_file`` are still reachable from here for code written before they moved.
"""

from __future__ import annotations

import importlib
from typing import Any

from bioworkbench.campaign.model import Campaign, FrameLike
from bioworkbench.store import FRAME_NAMES, sha256_file  # sha256_file: compatibility (moved to store)

__all__ = ["FRAME_NAMES", "Campaign", "FrameLike", "sha256_file"]

#: names that moved to :mod:`bioworkbench.io.folder` (compatibility only, resolved lazily: the
#: readers import this module, so this module cannot import them)
_MOVED = {"read_campaign": "bioworkbench.io.folder"}


def __getattr__(name: str) -> Any:
    """``bioworkbench.campaign.read_campaign``: moved to :mod:`bioworkbench.io.folder` (compatibility)."""
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
