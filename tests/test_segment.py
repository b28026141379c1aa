"""Sentence segmentation: markup, fillers, long turns, exact offsets, real PriMock57 turns."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.ingest import discover_inputs, read_unit
from pipeline.ingest.markup import strip_markup
from pipeline.ingest.metadata import SpeakerTable
from pipeline.segment import SegmentConfig, Segmenter, segment_transcript
from tests.conftest import primock_or_skip


def sentences(segmenter: Segmenter, text: str) -> list[str]:
    (offsets,) = list(segmenter.sentence_offsets([text]))
    return [text[a:b] for a, b in offsets]


def test_bracketed_markup_never_splits_a_sentence(segmenter: Segmenter) -> None:
    text = "I was on the ward [inaudible] and then, you know, it was awful. We called the duty team."
    assert sentences(segmenter, text) == [
        "I was on the ward [inaudible] and then, you know, it was awful.", "We called the duty team."]


@pytest.mark.parametrize("markup", ["[laughs]", "[crosstalk 00:12]", "<UNSURE>Hello how</UNSURE>", "<UNIN/>",
                                    "<INAUDIBLE_SPEECH/>", "(inaudible)"])
def test_markup_stays_whole(segmenter: Segmenter, markup: str) -> None:
    text = f"And I thought {markup} well that is that. Anyway the guidance says so."
    found = sentences(segmenter, text)
    assert any(markup in s for s in found), found
    assert len(found) == 2


def test_primock_inaudible_tag_is_neither_a_sentence_nor_a_split(segmenter: Segmenter) -> None:
    # PriMock57 writes <INAUDIBLE_SPEECH/> 814 times; it once made sentences of its own
    text = "And <INAUDIBLE_SPEECH/> I am, I can't really do it anymore. <INAUDIBLE_SPEECH/> OK."
    assert sentences(segmenter, text) == ["And <INAUDIBLE_SPEECH/> I am, I can't really do it anymore.",
                                          "<INAUDIBLE_SPEECH/> OK."]
    assert strip_markup(text) == "And I am, I can't really do it anymore. OK."


def test_fillers_do_not_become_sentences(segmenter: Segmenter) -> None:
    found = sentences(segmenter, "Um. I was on the ward. Uh. So we called the team. Erm.")
    assert all(s.split()[0].rstrip(".,") not in {"Um", "Uh", "Erm"} or len(s.split()) > 1 for s in found)
    assert not any(s.strip(". ") in {"Um", "Uh", "Erm"} for s in found)
    assert "".join(found).replace(" ", "") == "Um.Iwasontheward.Uh.Sowecalledtheteam.Erm."


def test_backchannel_turn_is_kept(segmenter: Segmenter) -> None:
    assert sentences(segmenter, "Mm-hm.") == ["Mm-hm."]
    assert sentences(segmenter, "Um.") == ["Um."]


def test_very_long_turn_is_chunked_not_truncated(segmenter: Segmenter) -> None:
    text = " ".join(f"This is sentence number {i} about the ward." for i in range(2000))  # ~90k chars
    found = sentences(segmenter, text)
    assert len(found) == 2000
    assert found[-1] == "This is sentence number 1999 about the ward."


def test_unicode_oddities_keep_offsets(segmenter: Segmenter) -> None:
    text = "I felt\u200b fine\u00a0today 😊. \u200fShe said \u05e9\u05dc\u05d5\u05dd. Done."
    (offsets,) = list(segmenter.sentence_offsets([text]))
    assert all(0 <= a < b <= len(text) for a, b in offsets)
    assert offsets == sorted(offsets)


def test_primock57_turns_round_trip_and_segment_sensibly(segmenter: Segmenter) -> None:
    units = discover_inputs([primock_or_skip()])[:3]
    total = 0
    for unit in units:
        transcript = read_unit(unit, SpeakerTable())
        turns = {t.turn_id: t for t in transcript.turns}
        found = segment_transcript(transcript, segmenter, tag_roles=("unknown",))
        for s in found:
            assert turns[s.turn_id].text[s.start:s.end] == s.text
            assert s.text == s.text.strip() and s.text
            assert s.text.count("<UNSURE>") == s.text.count("</UNSURE>")  # a tag pair is never cut
        total += len(found)
        # every non-space character of every turn lands in exactly one sentence
        for turn in transcript.turns:
            mine = sorted((s.start, s.end) for s in found if s.turn_id == turn.turn_id)
            covered = "".join(turn.text[a:b] for a, b in mine)
            assert covered.replace(" ", "") == turn.text.replace(" ", "").replace("\n", "")
    assert total > 300


def test_spacy_runs_on_one_openblas_thread_then_gives_it_back(segmenter: Segmenter) -> None:
    """The segmenter's matrix products run on numpy's BLAS, held to one thread while it
    segments (the tagger's torch threads keep the other cores) and restored afterwards."""
    from threadpoolctl import ThreadpoolController

    def openblas_threads() -> set[int]:
        return {lib["num_threads"] for lib in ThreadpoolController().select(internal_api="openblas").info()}

    assert not segmenter.nlp.get_pipe("senter").model.ops.use_blis
    before = openblas_threads()
    if not before:
        pytest.skip("numpy is not built on OpenBLAS here")
    offsets = segmenter.sentence_offsets(["We called the duty team. She came at once.", "Mm-hm."])
    assert next(offsets) == [(0, 24), (25, 42)]
    assert openblas_threads() == {1}  # while segmenting
    assert list(offsets) == [[(0, 6)]]
    assert openblas_threads() == before


def test_punctuation_rules_keep_stops_attached_and_split_after_them(segmenter: Segmenter) -> None:
    # without the rules the senter cut "No." into "No" + "." and ran "OK. Sure." together
    assert sentences(segmenter, "No. No.") == ["No.", "No."]
    assert sentences(segmenter, "OK. Sure.") == ["OK.", "Sure."]
    assert sentences(segmenter, "Alex. Hello? Hi, can you hear me?") == ["Alex.", "Hello?", "Hi, can you hear me?"]
    # markup keeps its own rule: nothing inside it starts a sentence
    assert sentences(segmenter, "I said <UNSURE>no. No</UNSURE> to that.") == ["I said <UNSURE>no. No</UNSURE> to that."]


def test_the_parser_remains_a_choice() -> None:
    parser = Segmenter(SegmentConfig(sentence_boundaries="parser"))
    assert parser.nlp.pipe_names == ["epistance_markup", "tok2vec", "parser"]
    assert parser.description["pipes"] != Segmenter().description["pipes"]  # part of the recompute key
    assert sentences(parser, "We called the duty team. She came at once.") == [
        "We called the duty team.", "She came at once."]


def test_a_pipeline_without_a_senter_is_a_clear_config_error(tmp_path: Path) -> None:
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(ConfigError, match="no 'senter' component"):
        Segmenter(SegmentConfig(spacy_model=str(tmp_path / "blank")))


def test_the_blind_segmentation_check_says_what_the_docs_say() -> None:
    """data/annotation/segmentation_check decodes to the figures docs/performance.md quotes."""
    import importlib.util

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("blind_pairs", root / "scripts/segmentation/blind_pairs.py")
    assert spec is not None and spec.loader is not None
    blind_pairs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(blind_pairs)
    preferred = blind_pairs.score(root / "data/annotation/segmentation_check")
    assert dict(preferred) == {"senter": 66, "parser": 12, "tie": 22}
    assert "senter preferred 66, parser 12, tie 22" in (root / "data/annotation/segmentation_check/README.md").read_text()
