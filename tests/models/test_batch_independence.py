"""A sentence's logits do not depend on what it is tagged with, so that the same transcript
gets the same labels in any run, lane group or orchestrator (RELIABILITY 12)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.registry import load_tagger
from models.tagger import padded_width, token_budget_batches

SHORT = ["mm okay", "yes right", "thanks so much", "how do you feel ?"]
LONG = [("the guideline shows most patients need a blood test and the trial evidence on risk is clear "
         "when i was in the ward i felt scared")]


def test_batches_never_mix_padded_widths() -> None:
    lengths = [3, 5, 8, 9, 12, 16, 17, 30, 31, 40]
    batches = token_budget_batches(list(range(len(lengths))), lengths, batch_size=8)
    assert [i for batch in batches for i in batch] == list(range(len(lengths)))
    assert all(len({padded_width(lengths[i]) for i in batch}) == 1 for batch in batches)
    # without one_width (training's dev evaluation) short rows share a batch with longer ones
    mixed = token_budget_batches(list(range(len(lengths))), lengths, batch_size=8, one_width=False)
    assert any(len({padded_width(lengths[i]) for i in batch}) > 1 for batch in mixed)


def test_a_sentence_gets_the_same_logits_alone_or_beside_a_long_one(trained_model: Path) -> None:
    # bfloat16, where it showed (float32 moves much less: the tiny model showed nothing)
    tagger = load_tagger(str(trained_model), precision="bfloat16", batch_size=8)
    alone = tagger.logits(SHORT)
    beside = tagger.logits(SHORT + LONG)  # one batch of eight rows would hold all five
    for name, logits in alone.items():
        assert np.array_equal(logits, beside[name][: len(SHORT)]), name
