"""The talk before a sentence, as the tagger reads it.

The codebook reads every sentence "in the context of its turn and the turn before it":
a reply such as "Massive." or "But you carry it." is about feelings only given what came
before. One function builds that context so that the gold data (scripts/annotation/
build_gold.py) and the pipeline (pipeline.annotate) give the model the same thing.
"""
from __future__ import annotations

#: characters kept; the model keeps only the last few dozen tokens of it anyway
CONTEXT_CHARS = 1000


def preceding_context(previous_turn: str | None, turn_text: str, sentence_start: int) -> str:
    """The previous turn's text followed by this turn's text before the sentence,
    whitespace collapsed, cut to the last `CONTEXT_CHARS` characters ("" when none)."""
    parts = (previous_turn or "", turn_text[:sentence_start])
    text = " ".join(" ".join(part.split()) for part in parts if part.strip())
    return text[-CONTEXT_CHARS:]
