"""CSV round trip for spreadsheet users."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from pipeline.corpus_io import read_sentences
from pipeline.interop.errors import AnnotationTextChangedError, InteropError, UnknownLabelError
from pipeline.interop.spreadsheet import COLUMNS, export_csv, import_csv


def read_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))


def test_export_has_bom_header_and_model_columns(corpus: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    count = export_csv(corpus, sheet)
    assert sheet.read_bytes().startswith(b"\xef\xbb\xbfsentence_id,")
    rows = read_rows(sheet)
    tagged = [r for r in read_sentences(corpus) if r.tagged]
    assert count == len(rows) == len(tagged)
    assert rows[0]["text"] == tagged[0].text and rows[0]["model_stance"] == tagged[0].stance
    assert rows[0]["stance"] == rows[0]["emotions"] == rows[0]["affect_focus"] == ""
    prefilled = tmp_path / "prefilled.csv"
    export_csv(corpus, prefilled, prefill=True)
    assert read_rows(prefilled)[0]["stance"] == tagged[0].stance


def test_formula_like_cells_are_guarded_and_restored(tricky_corpus: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    export_csv(tricky_corpus, sheet, only=[r.sentence_id for r in read_sentences(tricky_corpus)])
    rows = read_rows(sheet)
    guarded = [r for r in rows if r["text"].startswith("'")]
    assert guarded and all(r["text"][1] in "=+-@" for r in guarded)
    tagged = [r for r in rows if r["model"]]
    for row in tagged:
        row.update(stance="objective", emotions="fear; joy", affect_focus="yes", annotator="ann1")
    write_rows(sheet, rows)
    summary = import_csv(sheet, corpus_dir=tricky_corpus)
    texts = {r.sentence_id: r.text for r in read_sentences(tricky_corpus)}
    assert len(summary.rows) == len(tagged) and summary.skipped_unannotated == len(rows) - len(tagged)
    assert all(r["text"] == texts[r["id"]] for r in summary.rows)
    assert any(r["text"].startswith("-5 mg") for r in summary.rows)
    assert summary.rows[0]["emotions"] == ["fear", "joy"] and summary.rows[0]["affect_focus"] is True


def test_partial_rows_leave_layers_null(corpus: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    export_csv(corpus, sheet)
    rows = read_rows(sheet)[:3]
    rows[0].update(stance="experiential")
    rows[1].update(emotions="neutral", affect_focus="No")
    write_rows(sheet, rows)
    out = import_csv(sheet, annotator="ann2").rows
    assert (out[0]["stance"], out[0]["emotions"], out[0]["affect_focus"]) == ("experiential", None, None)
    assert (out[1]["stance"], out[1]["emotions"], out[1]["affect_focus"]) == (None, [], False)
    assert len(out) == 2 and out[0]["producer"] == "human:ann2"


def test_errors_name_file_and_row_never_text(corpus: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    export_csv(corpus, sheet)
    rows = read_rows(sheet)[:4]
    for row in rows:
        row.update(stance="none", emotions="neutral", affect_focus="no")
    secret = rows[2]["text"]
    rows[2]["text"] = secret.upper()
    write_rows(sheet, rows)
    with pytest.raises(AnnotationTextChangedError) as caught:
        import_csv(sheet, annotator="a")
    assert f"sheet.csv, row 4, sentence {rows[2]['sentence_id']}" in str(caught.value)
    assert secret not in str(caught.value) and secret.upper() not in str(caught.value)
    rows[2]["text"] = secret
    rows[1]["stance"] = "objectiv"
    write_rows(sheet, rows)
    with pytest.raises(UnknownLabelError, match="row 3.*unknown stance label 'objectiv'"):
        import_csv(sheet, annotator="a")
    rows[1]["stance"] = "objective"
    write_rows(sheet, rows)
    with pytest.raises(InteropError, match="row 2.*no annotator"):
        import_csv(sheet)
    with pytest.raises(InteropError, match="annotator name"):
        import_csv(sheet, annotator="Dr Jane Smith")
    sheet.write_text("id,text\n1,x\n")
    with pytest.raises(InteropError, match="missing column"):
        import_csv(sheet, annotator="a")


def test_text_typed_into_a_label_cell_is_not_echoed(corpus: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    export_csv(corpus, sheet)
    rows = read_rows(sheet)[:1]
    rows[0].update(stance=rows[0]["text"], annotator="a")
    write_rows(sheet, rows)
    with pytest.raises(UnknownLabelError) as caught:
        import_csv(sheet)
    assert rows[0]["text"] not in str(caught.value) and "characters" in str(caught.value)
