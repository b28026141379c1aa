"""Property-based tests: parsers raise only our errors; offsets always round-trip (C20, C22)."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.ingest import IngestConfig, InputUnit, read_raw
from pipeline.schema import Speaker, Transcript, Turn
from pipeline.segment import Segmenter, segment_transcript

SUFFIXES = [".txt", ".vtt", ".srt", ".csv", ".jsonl", ".TextGrid", ".docx"]
SEGMENTER: Segmenter | None = None


def _segmenter() -> Segmenter:
    global SEGMENTER
    if SEGMENTER is None:
        SEGMENTER = Segmenter()
    return SEGMENTER


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=300).map(lambda s: s.encode("utf-8"))),
       suffix=st.sampled_from(SUFFIXES))
def test_readers_raise_only_pipeline_errors(tmp_path_factory, data: bytes, suffix: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    try:
        transcript = read_raw(InputUnit(transcript_id="input", paths=(path,)), IngestConfig())
    except PipelineError:
        return
    assert all(turn.text for turn in transcript.turns)


PIECES = list("abc XYZ.,?!'\n-") + ["um", "Mm-hm.", "[laughs]", "<UNIN/>", "<UNSURE>", "</UNSURE>", "(inaudible)",
                                      "\u200b", "\u00a0", "é", "😊", "\u200f", "Dr. ", "e.g. "]
TURN_TEXT = st.lists(st.sampled_from(PIECES), min_size=1, max_size=60).map("".join).filter(lambda s: s.strip())


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(TURN_TEXT, min_size=1, max_size=5))
def test_sentence_offsets_round_trip(texts: list[str]) -> None:
    turns = tuple(Turn(turn_id=f"x/t{i:04d}", index=i, speaker_id="A", text=t) for i, t in enumerate(texts))
    transcript = Transcript(transcript_id="x", source_format="text", encoding="utf-8",
                            speakers={"A": Speaker(speaker_id="A", role="participant")}, turns=turns)
    found = segment_transcript(transcript, _segmenter(), tag_roles=("participant",))
    by_id = {t.turn_id: t for t in turns}
    for sentence in found:
        assert by_id[sentence.turn_id].text[sentence.start:sentence.end] == sentence.text
    for turn in turns:
        spans = sorted((s.start, s.end) for s in found if s.turn_id == turn.turn_id)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))  # no overlap
        covered = "".join(turn.text[a:b] for a, b in spans)
        assert "".join(covered.split()) == "".join(turn.text.split())  # nothing lost
