"""The talk before a sentence, as the tagger reads it.

The codebook reads every sentence "in the context of its turn and the turn before it":
a reply such as "Massive." or "But you carry it." is about feelings only given what came
before. One function builds that context so that the gold data (scripts/annotation/
build_gold.py) and the pipeline (pipeline.annotate) give the model the same thing.
"""
from __future__ import annotations

from pipeline.ingest.markup import strip_markup

#: characters kept; the model keeps only the last few dozen tokens of it anyway
CONTEXT_CHARS = 1000


def preceding_context(previous_turn: str | None, turn_text: str, sentence_start: int) -> str:
    """The previous turn's text followed by this turn's text before the sentence, markup
    hidden and whitespace folded as the tagger sees text, cut to its last `CONTEXT_CHARS`
    characters ("" when there is none).

    Only the last 2 x `CONTEXT_CHARS` raw characters of each part are read, so the cost per
    sentence does not grow with the length of the turn (a 1M-character turn has thousands
    of sentences).
    """
    window = 2 * CONTEXT_CHARS
    parts = ((previous_turn or "")[-window:], turn_text[max(0, sentence_start - window):sentence_start])
    text = " ".join(cleaned for cleaned in map(strip_markup, parts) if cleaned)
    return text[-CONTEXT_CHARS:]
