"""Encodings, line endings, binary sniffing and empty files (RELIABILITY C13-C16)."""
from __future__ import annotations

import codecs
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from pipeline.errors import BinaryInputError, EmptyInputError, EncodingError
from pipeline.ingest.decode import decode_text

TEXT = "Interviewer: Café tonight?\nP01: Oui, naïve déjà vu – “quotes”.\n"
P = Path("t.txt")


@pytest.mark.parametrize("data, encoding", [
    (TEXT.encode("utf-8"), "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
    (TEXT.encode("utf-16"), "utf-16"),  # Python writes a BOM
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
    (TEXT.encode("cp1252"), "cp1252"),
])
def test_encodings_decode_exactly_and_are_recorded(data: bytes, encoding: str) -> None:
    text, found = decode_text(data, P)
    assert text == TEXT
    assert found == encoding


def test_latin1_text_reads_through_cp1252() -> None:
    latin = "P01: Ça va, Señor Müller?\n"
    text, _ = decode_text(latin.encode("latin-1"), P)
    assert text == latin


def test_undecodable_bytes_name_the_byte_offset() -> None:
    with pytest.raises(EncodingError) as info:
        decode_text(b"P01: fine \x81\x8d\x8f text", P)
    assert "byte 10" in str(info.value)
    assert "fine" not in str(info.value)


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_endings_normalise(ending: str) -> None:
    text, _ = decode_text(ending.join(["A: one", "B: two", ""]).encode(), P)
    assert text == "A: one\nB: two\n"


def test_mixed_line_endings_normalise() -> None:
    text, _ = decode_text(b"A: one\r\nB: two\rA: three\n", P)
    assert text == "A: one\nB: two\nA: three\n"


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_empty_whitespace_and_bom_only_files_are_rejected(data: bytes) -> None:
    with pytest.raises(EmptyInputError):
        decode_text(data, P)


def _zip() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    return buffer.getvalue()


@pytest.mark.parametrize("data, kind", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "PNG"),
    (b"%PDF-1.7\n%...", "PDF"),
    (_zip(), "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, ".doc"),
    (b"abc\x00\x00def", "NUL"),
])
def test_binary_files_renamed_txt_are_sniffed(data: bytes, kind: str) -> None:
    with pytest.raises(BinaryInputError) as info:
        decode_text(data, P)
    assert kind in str(info.value)
