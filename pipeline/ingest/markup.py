"""Transcriber markup: found, kept in the text, and hidden from the tagger.

Bracketed notes ([inaudible], [laughs], [00:12:31]...) and PriMock57-style tags
(`<UNSURE>…</UNSURE>`, and self-closing ones such as `<UNIN/>` and `<INAUDIBLE_SPEECH/>`)
are recognised. `<UNSURE>` keeps its words: only the
tags themselves are markup.
"""
from __future__ import annotations

import re

from pipeline.schema import MarkupSpan

#: what counts as markup decides turns (a markup-only interval is dropped), sentences and
#: what the tagger sees, so it is part of every transcript's recompute key: raised when the
#: pattern changes. 2: self-closing tags such as PriMock57's <INAUDIBLE_SPEECH/> (was <UNIN/> only).
MARKUP_REVISION = 2

MARKUP_PATTERN = re.compile(
    r"\[(?P<note>[^\[\]\n]{1,60})\]"      # [inaudible], [laughs], [crosstalk 00:01]
    r"|\((?P<paren>inaudible|laughs?|laughter|pause|crosstalk|overlapping|unclear|sighs?|coughs?)[^()\n]{0,40}\)"
    r"|</?UNSURE>|<[A-Z][A-Z_]*\s*/>",  # PriMock57: <UNIN/>, <INAUDIBLE_SPEECH/>; any such self-closing tag
    re.IGNORECASE,
)


def find_markup(text: str) -> tuple[MarkupSpan, ...]:
    spans = []
    for match in MARKUP_PATTERN.finditer(text):
        token = match.group(0)
        kind = (match.group("note") or match.group("paren") or token.strip("<>/")).strip().lower()
        spans.append(MarkupSpan(start=match.start(), end=match.end(), kind=kind.split()[0] if kind else "markup"))
    return tuple(spans)


def strip_markup(text: str) -> str:
    """The text the tagger sees: markup removed, whitespace folded."""
    return " ".join(MARKUP_PATTERN.sub(" ", text).split())
