"""Import-time shortcuts shared by the report runner and the plotting set-up.

jsonschema (imported by nbformat, which papermill, nbconvert and HoloViews' notebook extension
import) optionally imports ``rfc3987_syntax``, which builds a Lark grammar at import: seconds of CPU
in every report kernel and every runner process (measured in ``benchmarks/bench_reports.py``). It
serves only jsonschema's ``iri`` and ``iri-reference`` format checkers, which nothing here uses
(format checks are opt-in in jsonschema). :func:`without_iri_grammar` hides the module while such
imports run, so jsonschema defines its other checkers and skips those two, and then un-hides it:
code that imports ``rfc3987_syntax`` itself later still gets it.

Layer: the bottom; imports nothing of bioworkbench. Used by the plots' set-up and the report runner.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["without_iri_grammar"]

_SLOW = "rfc3987_syntax"


@contextmanager
def without_iri_grammar() -> Iterator[None]:
    """Run the body with ``import rfc3987_syntax`` failing, unless it is already imported.

    Returns
    -------
    contextlib.AbstractContextManager
        Inside, ``sys.modules["rfc3987_syntax"]`` is ``None`` (an import raises ``ImportError``);
        on exit that entry is removed again, unless the body put the real module there.
    """
    hidden = _SLOW not in sys.modules
    if hidden:
        sys.modules[_SLOW] = None  # type: ignore[assignment]  # makes the import raise ImportError
    try:
        yield
    finally:
        if hidden and sys.modules.get(_SLOW, 0) is None:
            del sys.modules[_SLOW]
