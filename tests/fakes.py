"""Test doubles: a deterministic tagger that needs no weights, and zip containers for fake .docx.

It is a stand-in for the model in pipeline tests (ingest, segmentation, corpus files,
CLI); the real model is tested in tests/models/ and the slow suite.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence

from models.labels import LabelSchema, load_label_schema
from pipeline.tag import SentencePrediction


class HashTagger:
    """Labels from a hash of the text: stable across runs and processes, and the same
    whatever else a call holds (so the pipeline may tag many transcripts per call)."""

    batch_invariant = True

    def __init__(self, model_ref: str = "hash-tagger@0.0.1") -> None:
        self._ref = model_ref
        self._schema = load_label_schema()
        self.calls = 0
        self.sentences_seen = 0

    @property
    def model_ref(self) -> str:
        return self._ref

    @property
    def schema(self) -> LabelSchema:
        return self._schema

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        self.calls += 1
        self.sentences_seen += len(texts)
        out = []
        for text in texts:
            h = hashlib.sha256(text.encode()).digest()
            raw = [h[0] + 1, h[1] + 1, h[2] + 1]
            probs = {label: round(v / sum(raw), 6) for label, v in zip(self._schema.stance_labels, raw)}
            emo = {label: round(h[3 + i] / 255, 6) for i, label in enumerate(self._schema.emotion_labels)}
            affect = round(h[9] / 255, 6)
            out.append(SentencePrediction(
                stance=max(probs, key=probs.__getitem__), stance_probs=probs,
                emotions=[k for k, v in emo.items() if v > 0.8], emotion_probs=emo,
                affect_focus=affect > 0.5, affect_focus_prob=affect))
        return out


class LaneCountingTagger(HashTagger):
    """A HashTagger that may be called by several threads at once (it has `lanes`), and
    records how it was asked to share its threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lanes_asked: list[int] = []

    def lanes(self, count: int) -> contextlib.AbstractContextManager[None]:
        self.lanes_asked.append(count)
        return contextlib.nullcontext()


class MeetingTagger(LaneCountingTagger):
    """Its first two calls wait inside `predict` for each other (up to 10 s): `met` is True
    only if two callers were in it at once."""

    def __init__(self) -> None:
        super().__init__()
        self._meeting = threading.Barrier(2, timeout=10)
        self._lock = threading.Lock()
        self._arrived = 0
        self.met = False

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        with self._lock:
            self._arrived += 1
            waits = self._arrived <= 2
        if waits:
            with contextlib.suppress(threading.BrokenBarrierError):
                self._meeting.wait()
                self.met = True
        return super().predict(texts, contexts)


class OneAtATimeTagger(HashTagger):
    """A tagger with no `lanes`: it never said it may be called by two threads at once.
    `most_inside` is the most calls that were inside `predict` at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.inside = self.most_inside = 0

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            yield
        finally:
            with self._lock:
                self.inside -= 1

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        with self._counted():
            time.sleep(0.3)  # long enough for another caller to come in, if it could
            return super().predict(texts, contexts)


class FailingTagger(HashTagger):
    """Raises when a call holds a sentence containing `marker`: a tagger that breaks mid-run."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self._marker = marker

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        if any(self._marker in text for text in texts):
            raise RuntimeError("injected tagger failure")
        return super().predict(texts, contexts)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members`` (name -> content): the container of a fake .docx."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


class CallSizeTagger(HashTagger):
    """A HashTagger whose probabilities also depend on how many texts a call holds, as a
    float32 or int8 model's do on the batch; it does not say it is batch-invariant."""

    batch_invariant = False

    def __init__(self) -> None:
        super().__init__()
        self.call_sizes: list[int] = []

    def predict(self, texts: Sequence[str], contexts: Sequence[str] | None = None) -> list[SentencePrediction]:
        self.call_sizes.append(len(texts))
        nudge = len(texts) * 1e-6
        return [p.model_copy(update={"affect_focus_prob": round(p.affect_focus_prob * (1 - nudge), 6)})
                for p in super().predict(texts, contexts)]
