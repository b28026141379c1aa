"""Bytes to text: content sniffing before decoding, BOM-aware decoding, line endings.

Magic bytes are checked first so a PDF renamed .txt is refused as binary rather than
decoded into noise. The encoding chosen is returned so the manifest can record it.
"""
from __future__ import annotations

import codecs
from pathlib import Path

from pipeline.errors import BinaryInputError, EmptyInputError, EncodingError, InputTooLargeError

MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "zip archive (.docx, .xlsx, .zip)"),
    (b"\xd0\xcf\x11\xe0", "legacy Office document (.doc)"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"\x1f\x8b", "gzip archive"),
    (b"{\\rtf", "RTF document"),
)
BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def read_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read a file after checking its size, so a huge file is refused before it is loaded."""
    size = path.stat().st_size
    if size > max_bytes:
        raise InputTooLargeError(f"file is {size} bytes; the limit is {max_bytes}", path=path,
                                 hint="split the transcript or raise ingest.max_file_bytes")
    return path.read_bytes()


def sniff_binary(data: bytes) -> str | None:
    """Name the binary kind of `data`, or None if it may be text."""
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    head = data[:4096]
    if any(head.startswith(bom) for bom, _ in BOMS):
        return None
    if b"\x00" in head:
        return "binary data (NUL bytes)"
    return None


def decode_text(data: bytes, path: Path) -> tuple[str, str]:
    """Decode transcript bytes; returns (text with LF line endings, encoding used).

    UTF-8 (with or without BOM) and UTF-16 with BOM are exact; otherwise cp1252, which
    also reads Latin-1 text.
    """
    kind = sniff_binary(data)
    if kind:
        raise BinaryInputError(f"expected a text transcript, found {kind}", path=path,
                               hint="export the transcript as text, .docx, .vtt, .srt, .csv or .jsonl")
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    if encoding:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise EncodingError(f"invalid {encoding} data", path=path, where=f"byte {exc.start}",
                                hint="re-save the file as UTF-8") from None
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # Latin-1 text reads the same as cp1252 except in the C1 control range, which
            # real transcripts never use; so bytes cp1252 leaves undefined are an error.
            try:
                text, encoding = data.decode("cp1252"), "cp1252"
            except UnicodeDecodeError as exc:
                raise EncodingError("bytes are neither UTF-8 nor Windows-1252/Latin-1 text", path=path,
                                    where=f"byte {exc.start}", hint="re-save the file as UTF-8") from None
    text = text.lstrip("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise EmptyInputError("the file holds no text", path=path, hint="check the export step")
    return text, encoding
