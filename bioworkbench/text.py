"""Words for the page: escaping data text, numbers people read, ranks, sentences.

Every string that comes from data (a campaign name, a batch id, a product, an attribute, a flag
reason) reaches a report's Markdown or HTML through :func:`escape`: HTML-special characters become
entities and so do the characters Markdown gives a meaning to, so a payload such as
``<script>``, ``<span hidden>`` or ``**bold**`` is shown literally and can neither run nor hide or
restyle the text around it. :func:`markdown_text` formats a template (code, trusted) with values
(data, escaped); :class:`Safe` marks text that was built that way.

Python's :func:`html.escape` is used for the HTML part; the Markdown part is a fixed character map
(no library escapes for CommonMark inline syntax), applied in the same single pass.
"""

from __future__ import annotations

import math
import string
from typing import Any

__all__ = ["Safe", "escape", "fmt", "markdown_text", "ordinal", "plural", "sentence"]

#: characters replaced by numeric entities: HTML specials, and what CommonMark/GFM and MathJax
#: give a meaning to inline (emphasis, code, links, tables, headings, math, strikethrough, HTML)
_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#39;",
    "\\": "&#92;",
    "`": "&#96;",
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "(": "&#40;",
    ")": "&#41;",
    "#": "&#35;",
    "|": "&#124;",
    "$": "&#36;",
    "~": "&#126;",
    "!": "&#33;",
    "{": "&#123;",
    "}": "&#125;",
    "+": "&#43;",
    "-": "&#45;",
    "=": "&#61;",
    ":": "&#58;",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}
_TABLE = str.maketrans(_ENTITIES)


class Safe(str):
    """Text that is safe to put into a report's Markdown as it is (built with :func:`escape`)."""

    __slots__ = ()


def escape(value: Any) -> Safe:
    """``value`` as text that Markdown and HTML show literally (see the module docstring).

    Parameters
    ----------
    value
        Anything; it is turned into text with ``str``. :class:`Safe` text is returned as it is.

    Returns
    -------
    Safe
        The text with HTML-special and Markdown characters replaced by entities and line breaks
        by spaces (a value from data never starts a heading, list or block); ``None`` becomes an
        em dash.
    """
    if isinstance(value, Safe):
        return value
    if value is None:
        return Safe("—")
    return Safe(str(value).translate(_TABLE))


class _EscapingFormatter(string.Formatter):
    """``str.format`` that escapes every value except numbers (which keep their format spec) and
    :class:`Safe` text."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, Safe):
            return format(str(value), format_spec)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return escape(format(value, format_spec) if format_spec else value)
        return format(value, format_spec)


def markdown_text(template: str, /, **values: Any) -> Safe:
    """Format ``template`` (trusted: written in code) with ``values`` (data: escaped).

    Parameters
    ----------
    template
        A :meth:`str.format` template, written in code.
    **values
        The values, from data: each is escaped (:func:`escape`) unless it is a number, which keeps
        its format spec (``{titer:.0f}``), or :class:`Safe` text.

    Returns
    -------
    Safe
        ``markdown_text("## Batch {batch_id} — {name}", batch_id="B<1>", name=camp.name)`` gives
        ``"## Batch B&lt;1&gt; — …"``.
    """
    return Safe(_EscapingFormatter().vformat(template, (), values))


def fmt(x: Any, *, digits: int = 3) -> str:
    """A number as people read it.

    Parameters
    ----------
    x
        A number (``None`` and NaN give ``"?"``; other values are turned into text).
    digits
        Significant digits of a float below 1000.

    Returns
    -------
    str
        ``fmt(0.123456)`` → ``"0.123"``, ``fmt(12345.6)`` → ``"12,346"``.
    """
    if x is None:
        return "?"
    if isinstance(x, float):
        if math.isnan(x):
            return "?"
        return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def sentence(items: list[str], *, capitalize: bool = True) -> str:
    """A list of phrases as one sentence.

    Parameters
    ----------
    items
        The phrases.
    capitalize
        Start with a capital letter.

    Returns
    -------
    str
        ``["a", "b", "c"]`` → ``"A, b and c."`` (``capitalize=False``: ``"a, b and c."``); ``""``
        for no phrase.
    """
    if not items:
        return ""
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return (text[0].upper() + text[1:] if capitalize else text) + "."


def ordinal(n: int) -> str:
    """An ordinal number in English.

    Parameters
    ----------
    n
        An integer.

    Returns
    -------
    str
        ``1`` → ``"1st"``, ``12`` → ``"12th"``, ``22`` → ``"22nd"``.
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """A count and its noun, singular or plural.

    Parameters
    ----------
    n
        The count.
    word
        The noun in the singular.
    many
        The plural (default: ``word + "s"``).

    Returns
    -------
    str
        ``plural(1, "batch", "batches")`` → ``"1 batch"``, ``plural(3, "batch", "batches")`` →
        ``"3 batches"``.
    """
    return f"{n} {word if n == 1 else (many or word + 's')}"
