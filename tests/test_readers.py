"""Each reader on its format's edge cases (RELIABILITY C15-C19)."""
from __future__ import annotations

import json
from pathlib import Path

import docx
import pytest

from pipeline.errors import (
    BinaryInputError,
    CorruptDocxError,
    EmptyInputError,
    InputTooLargeError,
    MalformedInputError,
    PipelineError,
    UnsupportedFormatError,
)
from pipeline.ingest import IngestConfig, InputUnit, discover_inputs, read_raw, read_unit
from pipeline.ingest.metadata import SpeakerTable
from tests.conftest import primock_or_skip
from tests.fakes import zip_bytes


def raw(path: Path, **config):  # type: ignore[no-untyped-def]
    return read_raw(InputUnit(transcript_id=path.stem, paths=(path,)), IngestConfig(**config))


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- plain text -------------------------------------------------------------------------

def test_plain_text_label_styles_and_continuations(tmp_path: Path) -> None:
    path = write(tmp_path, "i.txt", "Interview 2 - transcript\n\n"
                 "Interviewer: How did you start?\n"
                 "P03: I started on the ward.\n"
                 "It was hard at first.\n"
                 "[00:12:31] NURSE: We had a new rota.\n"
                 "Dr Okafor: The guidance changed.\n"
                 "INT - And then?\n"
                 "00:14:02\n"
                 "P03: Then it got better.\n")
    turns = raw(path).turns
    assert [t.speaker for t in turns] == ["Interviewer", "P03", "NURSE", "Dr Okafor", "INT", "P03"]
    assert turns[1].text == "I started on the ward.\nIt was hard at first."
    assert turns[2].start_time == 12 * 60 + 31
    assert turns[5].start_time == 14 * 60 + 2
    assert turns[1].source_place == "line 4"


def test_heading_only_file_is_rejected_with_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "h.txt", "Transcript of an interview\nno labels here at all\n")
    with pytest.raises(MalformedInputError) as info:
        raw(path)
    assert "h.txt" in str(info.value) and "no speaker labels" in str(info.value)


def test_timestamps_are_not_speakers(tmp_path: Path) -> None:
    path = write(tmp_path, "t.txt", "A: first\n10:30: not a speaker line\n")
    turns = raw(path).turns
    assert [t.speaker for t in turns] == ["A"]
    assert "10:30" in turns[0].text


def test_custom_label_pattern(tmp_path: Path) -> None:
    path = write(tmp_path, "c.txt", "<<Ann>> hello there\n<<Bob>> hi\n")
    turns = raw(path, speaker_label_pattern=r"^<<(?P<speaker>\w+)>>\s*(?P<text>.*)$").turns
    assert [(t.speaker, t.text) for t in turns] == [("Ann", "hello there"), ("Bob", "hi")]


# --- docx -------------------------------------------------------------------------------

def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


def test_docx_paragraphs_and_tables(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "d.docx", ["Interview 4", "Interviewer: Hello.", "P01: Hi there."],
                     table=[["Interviewer", "And the table?"], ["P01", "Rows work too."]])
    turns = raw(path).turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("Interviewer", "Hello."), ("P01", "Hi there."), ("Interviewer", "And the table?"), ("P01", "Rows work too.")]


@pytest.mark.parametrize("content, error", [
    (b"PK\x03\x04 truncated zip", CorruptDocxError),
    (zip_bytes({"hello.txt": b"x"}), CorruptDocxError),
    (zip_bytes({"word/document.xml": b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>"}),
     CorruptDocxError),
    (zip_bytes({"word/document.xml": b"<not-a-docx/>", "[Content_Types].xml": b"<bad"}), CorruptDocxError),
    (b"%PDF-1.4 renamed", BinaryInputError),
    (b"Interviewer: plain text saved as docx", UnsupportedFormatError),
])
def test_corrupt_docx_maps_to_our_errors(tmp_path: Path, content: bytes, error: type) -> None:
    path = write(tmp_path, "bad.docx", content)
    with pytest.raises(error):
        raw(path)


def test_docx_zip_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = zip_bytes({"word/document.xml": b"<x>" + b"a" * 60_000_000 + b"</x>"})
    path = write(tmp_path, "bomb.docx", bomb)
    with pytest.raises(InputTooLargeError):
        raw(path)


# --- subtitles --------------------------------------------------------------------------

VTT = """WEBVTT

1
00:00:01.000 --> 00:00:03.000
<v Interviewer>How are things on the team?</v>

2
00:00:03.500 --> 00:00:06.000
<v Dr Okafor>Busy, honestly.</v>

3
00:00:06.000 --> 00:00:08.000
<v Dr Okafor>We lost two nurses.</v>

4
00:00:08.000 --> 00:00:09.000

"""


def test_vtt_teams_voices_merge_consecutive_cues(tmp_path: Path) -> None:
    transcript = raw(write(tmp_path, "v.vtt", VTT))
    assert [(t.speaker, t.text) for t in transcript.turns] == [
        ("Interviewer", "How are things on the team?"), ("Dr Okafor", "Busy, honestly. We lost two nurses.")]
    assert transcript.turns[1].start_time == 3.5 and transcript.turns[1].end_time == 8.0
    parsed_cues = 3
    assert parsed_cues + transcript.skipped == VTT.count("-->")


def test_srt_zoom_prefixes(tmp_path: Path) -> None:
    srt = ("1\n00:00:01,000 --> 00:00:02,000\nSam: Hello, there.\n\n"
           "2\n00:00:02,500 --> 00:00:04,000\nInterviewer: Thanks for coming.\n\n"
           "3\n00:00:04,500 --> 00:00:05,000\nno speaker here\n")
    turns = raw(write(tmp_path, "s.srt", srt)).turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("Sam", "Hello, there."), ("Interviewer", "Thanks for coming."), ("UNKNOWN", "no speaker here")]


@pytest.mark.parametrize("content, error", [
    ("WEBVTT\n\n", EmptyInputError),
    ("this is not a vtt file\n", MalformedInputError),
    ("WEBVTT\n\n00:00:01.000 --> garbage\ntext\n", MalformedInputError),
])
def test_bad_vtt(tmp_path: Path, content: str, error: type) -> None:
    with pytest.raises(error):
        raw(write(tmp_path, "bad.vtt", content))


# --- TextGrid ---------------------------------------------------------------------------

def textgrid(tiers: dict[str, list[tuple[float, float, str]]]) -> str:
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", "xmax = 100",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for i, (name, intervals) in enumerate(tiers.items(), start=1):
        lines += [f"    item [{i}]:", '        class = "IntervalTier"', f'        name = "{name}"',
                  "        xmin = 0", "        xmax = 100", f"        intervals: size = {len(intervals)}"]
        for j, (a, b, text) in enumerate(intervals, start=1):
            lines += [f"        intervals [{j}]:", f"            xmin = {a}", f"            xmax = {b}",
                      f'            text = "{text}"']
    return "\n".join(lines) + "\n"


def test_textgrid_one_tier_per_speaker(tmp_path: Path) -> None:
    path = write(tmp_path, "tg.TextGrid", textgrid({
        "Interviewer": [(0, 2, "How was it?"), (5, 6, "Right.")],
        "P01": [(2, 5, "Hard <UNSURE>at first</UNSURE>."), (6, 7, "<UNIN/>"), (7, 8, "<INAUDIBLE_SPEECH/>")]}))
    turns = raw(path).turns
    assert [(t.speaker, t.text) for t in turns] == [
        ("Interviewer", "How was it?"), ("P01", "Hard <UNSURE>at first</UNSURE>."), ("Interviewer", "Right.")]


def test_textgrid_channel_pair_is_one_transcript(tmp_path: Path) -> None:
    write(tmp_path, "c01_doctor.TextGrid", textgrid({"Doctor": [(0, 2, "Hello."), (4, 5, "I see.")]}))
    write(tmp_path, "c01_patient.TextGrid", textgrid({"Patient": [(2, 4, "My knee hurts.")]}))
    (unit,) = discover_inputs([tmp_path])
    assert unit.transcript_id == "c01" and unit.channels == ("doctor", "patient")
    transcript = read_unit(unit, SpeakerTable())
    assert [(t.speaker_id, t.text) for t in transcript.turns] == [
        ("doctor", "Hello."), ("patient", "My knee hurts."), ("doctor", "I see.")]


def test_primock57_reads_all_57_consultations() -> None:
    units = discover_inputs([primock_or_skip()])
    assert len(units) == 57
    transcript = read_unit(units[0], SpeakerTable())
    assert {t.speaker_id for t in transcript.turns} == {"doctor", "patient"}
    starts = [t.start_time for t in transcript.turns]
    assert starts == sorted(starts)


def test_malformed_textgrid(tmp_path: Path) -> None:
    with pytest.raises(MalformedInputError):
        raw(write(tmp_path, "bad.TextGrid", 'File type = "ooTextFile"\nObject class = "TextGrid"\nxmin = zz\n'))


# --- tables -----------------------------------------------------------------------------

def test_csv_turn_table_with_quotes_and_times(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", 'speaker,text,start,end\nInterviewer,"So, tell me",0,1.5\nP2,"Well, yes",1.5,3\n'
                 "P2,,3,4\n")
    transcript = raw(path)
    assert [(t.speaker, t.text, t.start_time) for t in transcript.turns] == [
        ("Interviewer", "So, tell me", 0.0), ("P2", "Well, yes", 1.5)]
    assert transcript.skipped == 1


def test_csv_missing_columns_names_the_row(tmp_path: Path) -> None:
    with pytest.raises(MalformedInputError) as info:
        raw(write(tmp_path, "t.csv", "who,said\nA,hello\n"))
    assert "row 2" in str(info.value)


def test_jsonl_turn_table(tmp_path: Path) -> None:
    lines = [{"speaker": "A", "text": "One.", "start": 0, "end": 1}, {"speaker": "B", "text": "Two."}]
    transcript = raw(write(tmp_path, "t.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n"))
    assert [(t.speaker, t.text) for t in transcript.turns] == [("A", "One."), ("B", "Two.")]


def test_jsonl_bad_line_is_named(tmp_path: Path) -> None:
    with pytest.raises(MalformedInputError) as info:
        raw(write(tmp_path, "t.jsonl", '{"speaker": "A", "text": "ok"}\n{not json\n'))
    assert "line 2" in str(info.value)


def test_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError):
        raw(write(tmp_path, "t.pages", "A: hi\n"))


def test_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(InputTooLargeError):
        raw(write(tmp_path, "big.txt", "A: " + "x" * 5000), max_file_bytes=1000)


def test_errors_never_carry_text(tmp_path: Path) -> None:
    secret = "Zebulon Quillfeather"
    for name, content in [("a.txt", f"no labels {secret}"), ("b.jsonl", f'{{"speaker": "A", "text": 3, "x": "{secret}"}}'),
                          ("c.csv", f"who,said\n{secret},x\n")]:
        with pytest.raises(PipelineError) as info:
            raw(write(tmp_path, name, content))
        assert secret not in str(info.value)


def test_csv_with_doubled_quotes_and_other_delimiters(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'speaker,text,start,end\nP4,"She said, ""I was safer on the ward."" Then left.",1.5,2\n')
    (turn,) = raw(path).turns
    assert turn.text == 'She said, "I was safer on the ward." Then left.' and turn.start_time == 1.5
    path = write(tmp_path, "t.tsv", "speaker\ttext\nA\tone, two\n")
    assert raw(path).turns[0].text == "one, two"
