"""The tagger seam: a Protocol the model package implements, and batched tagging.

The core never imports torch; a Tagger is handed in (see models.registry.load_tagger).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from models.labels import LabelSchema

#: the most rows in one forward batch of the tagger: 32 was faster than 64 with two lanes
#: tagging at once on two cores (docs/performance.md); `tag.batch_size` in the run config
DEFAULT_BATCH_SIZE = 32

#: how the tagger computes its numbers for a given model and precision, part of every
#: transcript's recompute key: raised when that changes, so corpora made before are
#: recomputed rather than mixed with new results. 2: int8 on ONNX Runtime per channel
#: (was torch per tensor) and batches of one padded width, which changed bfloat16
#: probabilities slightly (docs/performance.md, "Same inputs, same bytes"); in the same
#: release, float32 and int8 tag each transcript in calls of its own. 3: int8 pads rows to
#: their exact length instead of steps of 8, which moves its probabilities slightly.
TAGGING_REVISION = 3


class SentencePrediction(BaseModel):
    """One sentence's labels with probabilities, for all three layers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stance: str
    stance_probs: dict[str, float]
    emotions: list[str]
    emotion_probs: dict[str, float]
    affect_focus: bool
    affect_focus_prob: float


@runtime_checkable
class Tagger(Protocol):
    """Anything that labels sentences by the label schema it was trained with."""

    @property
    def model_ref(self) -> str:
        """`<id>@<version>`, recorded as the producer of every prediction."""
        ...

    @property
    def schema(self) -> LabelSchema: ...

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        """Label a batch; the order of results follows `texts`. ``contexts[i]``, when given,
        is the talk before ``texts[i]`` (pipeline.context.preceding_context); a tagger
        that was not trained with context ignores it."""
        ...


class TaggerSource(Protocol):
    """A tagger known by reference before it is loaded: recompute keys need the model's
    `id@version` and label schema, and a rerun with nothing to do never loads weights."""

    @property
    def model_ref(self) -> str: ...

    @property
    def schema(self) -> LabelSchema: ...

    def load(self) -> Tagger: ...


class LoadedTagger:
    """A TaggerSource over a tagger already in memory (tests, notebooks)."""

    def __init__(self, tagger: Tagger) -> None:
        self._tagger = tagger

    @property
    def model_ref(self) -> str:
        return self._tagger.model_ref

    @property
    def schema(self) -> LabelSchema:
        return self._tagger.schema

    def load(self) -> Tagger:
        return self._tagger


def tag_texts(
    tagger: Tagger, texts: Iterable[str], batch_size: int = 64, contexts: Iterable[str] | None = None
) -> Iterator[SentencePrediction]:
    """Stream predictions for many texts (with their contexts, if given), `batch_size` at a time."""
    text_stream = iter(texts)
    context_stream = iter(contexts) if contexts is not None else None
    while batch := list(itertools.islice(text_stream, batch_size)):
        batch_contexts = list(itertools.islice(context_stream, len(batch))) if context_stream is not None else None
        yield from tagger.predict(batch, batch_contexts)


def predict_with_windows(tagger: Tagger, texts: Sequence[str], contexts: Sequence[str] | None = None
                         ) -> tuple[list[SentencePrediction], list[bool]]:
    """Predictions and, per text, whether it was too long for the model's window and scored
    in overlapping windows (always False for a tagger that does not say: `predict_windowed`)."""
    counting = getattr(tagger, "predict_windowed", None)
    if counting is None:
        return tagger.predict(texts, contexts), [False] * len(texts)
    predictions, windowed = counting(texts, contexts)
    return list(predictions), list(windowed)


def supports_lanes(tagger: Tagger) -> bool:
    """Whether several threads may call `tagger` at once: it says so with a `lanes(count)`
    context manager that shares its threads among them (models.tagger.TransformerTagger)."""
    return callable(getattr(tagger, "lanes", None))


def batch_invariant(tagger: Tagger) -> bool:
    """Whether `tagger`'s labels for a text are the same whatever else it is given in the same
    call: it says so with a true `batch_invariant` attribute. A tagger that does not say is
    given one transcript per call (`pipeline.annotate.tag_transcripts`)."""
    return getattr(tagger, "batch_invariant", False) is True
