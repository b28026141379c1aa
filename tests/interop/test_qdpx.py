"""REFI-QDA export: valid against the published schema, and read back to the same selections and codes."""
from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest
from lxml import etree

from pipeline.corpus_io import read_manifest, read_sentences
from pipeline.interop.qdpx import NS, SCHEMA_PATH, export_qdpx, read_qdpx, validate_project

SHARED_SCHEMA = Path(__file__).resolve().parents[3] / "shared" / "specs" / "refi-qda" / "Project.xsd"


def expected_codes(row) -> set[str]:  # type: ignore[no-untyped-def]
    codes = {f"stance: {row.stance}"} | {f"emotion: {e}" for e in row.emotions or []}
    return codes | ({"affect focus: yes"} if row.affect_focus else set())


def project_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("project.qde")


def test_schema_copy_is_the_published_one() -> None:
    assert SCHEMA_PATH.is_file() and (SCHEMA_PATH.parent / "PROVENANCE.md").is_file()
    assert b"Copyright 2019 REFI" in SCHEMA_PATH.read_bytes()
    if not SHARED_SCHEMA.is_file():
        pytest.skip("../shared/specs/refi-qda is not beside this checkout")
    assert SCHEMA_PATH.read_bytes() == SHARED_SCHEMA.read_bytes()


def test_project_validates_against_the_refi_schema(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "study.qdpx"
    summary = export_qdpx(corpus, target)
    xml = project_xml(target)
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))
    document = etree.fromstring(xml)
    assert schema.validate(document), schema.error_log
    assert validate_project(xml) == []
    assert summary.codes == 10 and summary.sources == 6
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    names = zipfile.ZipFile(target).namelist()
    assert names[0] == "project.qde"
    assert sorted(n for n in names if n.startswith("Sources/")) == sorted(
        f"Sources/{s.get('guid')}.txt" for s in document.iter(f"{{{NS}}}TextSource"))
    # the checker itself rejects a broken project
    broken = xml.replace(b'isCodable="true"', b'isCodable="maybe"', 1)
    assert validate_project(broken) and "isCodable" in validate_project(broken)[0]


def test_round_trip_same_selections_codes_and_positions(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "study.qdpx"
    export_qdpx(corpus, target)
    project = read_qdpx(target)
    tagged = {r.sentence_id: r for r in read_sentences(corpus) if r.tagged}
    selections = {s.name: s for s in project.selections}
    assert set(selections) == set(tagged)
    for sentence_id, row in tagged.items():
        selection = selections[sentence_id]
        assert selection.source == row.transcript_id
        assert project.sources[selection.source][selection.start:selection.end] == row.text
        assert set(selection.codes) == expected_codes(row)
    for selection, labels in project.labels():
        row = tagged[selection.name]
        assert labels == {"stance": row.stance, "emotions": sorted(row.emotions or []),
                          "affect_focus": bool(row.affect_focus)}
    model = read_manifest(corpus).model  # type: ignore[union-attr]
    assert list(project.users.values()) == [f"model:{model}"]
    assert {s.creating_user for s in project.selections} == set(project.users)


def test_speakers_are_cases_with_attributes(corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "study.qdpx"
    export_qdpx(corpus, target)
    project = read_qdpx(target)
    cases = {c.name: c for c in project.cases}
    assert cases["int01_psychiatrist/P01"].variables == {"role": "participant", "profession": "psychiatrist",
                                                         "site": "north", "wave": "1"}
    assert cases["int01_psychiatrist/Interviewer"].variables["role"] == "interviewer"
    assert cases["int01_psychiatrist/Interviewer"].selections == ()  # interviewer turns are not tagged
    p01 = {r.sentence_id for r in read_sentences(corpus) if r.speaker_id == "P01" and r.tagged}
    assert set(cases["int01_psychiatrist/P01"].selections) == p01


def test_export_is_deterministic_and_crlf_keeps_positions(corpus: Path, tmp_path: Path) -> None:
    export_qdpx(corpus, tmp_path / "a.qdpx")
    export_qdpx(corpus, tmp_path / "b.qdpx")
    assert (tmp_path / "a.qdpx").read_bytes() == (tmp_path / "b.qdpx").read_bytes()
    export_qdpx(corpus, tmp_path / "crlf.qdpx", line_endings="crlf")
    project = read_qdpx(tmp_path / "crlf.qdpx")
    text = next(iter(project.sources.values()))
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")
    tagged = {r.sentence_id: r.text.replace("\n", "\r\n") for r in read_sentences(corpus) if r.tagged}
    assert all(project.sources[s.source][s.start:s.end] == tagged[s.name] for s in project.selections)
    assert validate_project(project_xml(tmp_path / "crlf.qdpx")) == []


def test_tricky_text_is_escaped_and_positions_count_code_points(tricky_corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "tricky.qdpx"
    export_qdpx(tricky_corpus, target)
    xml = project_xml(target)
    assert validate_project(xml) == []
    assert b"<script>" not in xml  # the text lives in Sources/*.txt, never in the XML
    project = read_qdpx(target)
    text = project.sources["tricky"]
    assert "\U0001F622" in text and "<script>alert('x')</script>" in text
    rows = {r.sentence_id: r for r in read_sentences(tricky_corpus) if r.tagged}
    for selection in project.selections:
        assert text[selection.start:selection.end] == rows[selection.name].text
    cases = {c.name: c for c in project.cases}
    assert cases["tricky/P9"].variables["profession"] == "nurse & <midwife>"


def test_reading_a_non_qdpx_fails_with_the_file_named(tmp_path: Path) -> None:
    from pipeline.interop.errors import InteropError

    bogus = tmp_path / "bogus.qdpx"
    bogus.write_text("not a zip")
    with pytest.raises(InteropError, match="bogus.qdpx"):
        read_qdpx(bogus)
