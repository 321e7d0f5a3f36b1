"""Exception hierarchy and the :class:`Issue` record that every validator collects.

Every error a user can cause says *where* (file, line, column, batch), *what* was found, what was
expected, and how to fix it. Validators collect all problems first and raise once; the message shows
the first :data:`MAX_SHOWN` issues and counts the rest. :func:`suggest` words the "did you mean"
part of a message for an unknown name, and :class:`CheckedFrame` is what a checking step that does
not raise returns: the frame and the issues for its caller to raise with the others.

This module is the bottom of the package: it imports nothing from bioworkbench.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "MAX_SHOWN",
    "ArgumentError",
    "BioWorkbenchError",
    "BioWorkbenchWarning",
    "CheckedFrame",
    "ConfigError",
    "DataReadError",
    "IntegrityError",
    "Issue",
    "MissingDependencyError",
    "ModelNotFittedError",
    "ReportError",
    "SchemaError",
    "suggest",
]

MAX_SHOWN = 20


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem found in the data: where it is, what was found, and how to fix it."""

    message: str
    file: str | None = None
    line: int | None = None
    column: str | None = None
    batch: str | None = None
    hint: str | None = None

    def location(self) -> str:
        """Where the problem is, as people read it: ``'line 14, column "value" (batch B07)'``.

        Returns
        -------
        str
            Line, column and batch, those that are known; ``""`` when none is.
        """
        parts = []
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.column is not None:
            parts.append(f'column "{self.column}"')
        where = ", ".join(parts)
        if self.batch is not None:
            where = f"{where} (batch {self.batch})" if where else f"batch {self.batch}"
        return where

    def format(self, *, with_file: bool = True) -> str:
        """The issue as one line of an error message: where, what, and the hint.

        Parameters
        ----------
        with_file
            Start with the file (leave it out when the message's heading names it).

        Returns
        -------
        str
            ``"data/obs.csv: line 14, column "value": expected a number, found '12,5'. Hint: ..."``.
        """
        where = self.location()
        if with_file and self.file:
            where = f"{self.file}: {where}" if where else self.file
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" Hint: {self.hint}"
        return text


class CheckedFrame(NamedTuple):
    """A frame and the problems a check found in it, for the caller to raise with the others.

    Checks that read or convert data (:func:`bioworkbench.schema.coerce_frame`,
    :func:`bioworkbench.variables.to_canonical`, :func:`bioworkbench.io.flag_values`) return one,
    so that a reader can collect the issues of every file and raise them together
    (``frame, issues = ...`` still unpacks it).

    Attributes
    ----------
    frame
        The frame after the check (the same object when the check changed nothing).
    issues
        The problems found, empty when none.
    """

    #: the frame after the check (the same object when the check changed nothing)
    frame: pl.DataFrame
    #: every problem found; empty when there is none
    issues: list[Issue]


def suggest(found: Any, valid: Iterable[Any], *, what: str = "Valid") -> str:
    """``"Did you mean 'x'? Valid: a, b, c."``: the end of a message about an unknown name.

    Parameters
    ----------
    found
        The name that was given.
    valid
        The names that would have been accepted (shown sorted; the first 30).
    what
        How the list is introduced (``"Valid keys"``, ``"Known batches"``).

    Returns
    -------
    str
        The closest valid name, when one is close (:func:`difflib.get_close_matches`, cutoff 0.6),
        and the valid names.
    """
    names = sorted(str(v) for v in valid)
    close = difflib.get_close_matches(str(found), names, n=1, cutoff=0.6)
    text = f"Did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(names[:30]) + (" …" if len(names) > 30 else "")
    return f"{text}{what}: {shown}."


class BioWorkbenchError(Exception):
    """Base class of every error bioworkbench raises on purpose."""


class SchemaError(BioWorkbenchError, ValueError):
    """Data that does not fit the campaign schema; carries every :class:`Issue` found.

    Parameters
    ----------
    issues
        The problems (a text is one problem without a location).
    context
        What the heading names (a file, ``"campaign 'demo'"``); default: the file when all
        issues are in one.

    Attributes
    ----------
    issues : list[Issue]
    context : str or None
    """

    def __init__(self, issues: Iterable[Issue] | str, *, context: str | None = None) -> None:
        if isinstance(issues, str):
            issues = [Issue(issues)]
        self.issues: list[Issue] = list(issues)
        self.context = context
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.issues)
        files = {i.file for i in self.issues if i.file}
        where = self.context or (next(iter(files)) if len(files) == 1 else None)
        head = f"{n} problem{'s' if n != 1 else ''}" + (f" in {where}" if where else "")
        # name the file on each line unless the heading already does
        same = len(files) == 1 and where == next(iter(files))
        lines = [head]
        for issue in self.issues[:MAX_SHOWN]:
            lines.append(f"  - {issue.format(with_file=not same)}")
        if n > MAX_SHOWN:
            lines.append(f"  ... and {n - MAX_SHOWN} more")
        return "\n".join(lines)


class ArgumentError(BioWorkbenchError, TypeError, ValueError):
    """A function called with an argument of the wrong kind or value (a frame where a Campaign is
    expected, a probability of 95, a missing column). A ``TypeError`` and a ``ValueError`` both, so
    that code catching either keeps working."""


class DataReadError(BioWorkbenchError, OSError):
    """A file that cannot be read at all (missing, unreadable, wrong format)."""


class IntegrityError(DataReadError):
    """A campaign folder whose files differ from what its ``campaign.yaml`` records (a frame missing,
    added, cut or edited after :meth:`~bioworkbench.Campaign.write`); carries every :class:`Issue`.

    Parameters
    ----------
    issues, context
        As for :class:`SchemaError`.
    """

    def __init__(self, issues: Iterable[Issue] | str, *, context: str | None = None) -> None:
        if isinstance(issues, str):
            issues = [Issue(issues)]
        self.issues: list[Issue] = list(issues)
        self.context = context
        super().__init__(SchemaError(self.issues, context=context).args[0])


class ConfigError(BioWorkbenchError, ValueError):
    """A configuration (column map, parameter set, option) that is invalid."""


class ModelNotFittedError(BioWorkbenchError, RuntimeError):
    """A model used before :meth:`fit`."""


class ReportError(BioWorkbenchError, RuntimeError):
    """A report run that failed."""


class MissingDependencyError(BioWorkbenchError, ImportError):
    """An optional dependency that is not installed."""


class BioWorkbenchWarning(UserWarning):
    """Something the user should know (e.g. flagged rows excluded from an analysis)."""
