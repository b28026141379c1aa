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


def test_a_network_may_ask_for_exact_widths() -> None:
    """The int8 network (ONNX Runtime) pads each batch to its longest row, not to a step of 8."""
    import torch

    from models.onnx_int8 import OnnxInt8Net
    from models.tagger import batched_logits

    class RecordingNet:
        training = False

        def __init__(self, pad_multiple: int | None) -> None:
            # batched_logits reads the output sizes from the heads
            self.heads = {"stance": torch.nn.Linear(1, 3), "emotions": torch.nn.Linear(1, 6),
                          "affect_focus": torch.nn.Linear(1, 1)}
            if pad_multiple is not None:
                self.pad_multiple = pad_multiple
            self.widths: list[int] = []

        def eval(self) -> None:
            pass

        def train(self, mode: bool = True) -> None:
            pass

        def __call__(self, ids, mask, types=None, pool=None):  # type: ignore[no-untyped-def]
            self.widths.append(ids.shape[1])
            rows = ids.shape[0]
            return {"stance": torch.zeros(rows, 3), "emotions": torch.zeros(rows, 6), "affect_focus": torch.zeros(rows)}

    rows = [[1] * n for n in (3, 3, 5, 9, 9, 9)]
    default, exact = RecordingNet(None), RecordingNet(OnnxInt8Net.pad_multiple)
    batched_logits(default, rows, pad_id=0, batch_size=8)
    batched_logits(exact, rows, pad_id=0, batch_size=8)
    assert default.widths == [8, 16]  # 3, 3 and 5 share width 8; the 9s pad to 16
    assert exact.widths == [3, 5, 9]
