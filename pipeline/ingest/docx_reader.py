"""Word .docx transcripts: paragraphs and tables with speaker labels (python-docx).

The zip container is checked before python-docx opens it: member sizes, compression
ratio and XML entity declarations, so a zip bomb or entity bomb is refused quickly and
every corrupt-file case becomes a CorruptDocxError.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import CorruptDocxError, InputTooLargeError
from pipeline.ingest.speaker_lines import turns_from_lines
from pipeline.schema import RawTranscript

MAX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_RATIO = 200


def _check_container(data: bytes, path: Path) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError):  # NotImplemented: a damaged version field
        raise CorruptDocxError("not a valid .docx (zip) container", path=path,
                               hint="re-save the document from Word as .docx") from None
    with archive:
        total = 0
        for info in archive.infolist():
            total += info.file_size
            if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 10_000_000:
                raise InputTooLargeError("a .docx member expands suspiciously (zip bomb?)", path=path,
                                         where=f"member {info.filename}")
        if total > MAX_UNCOMPRESSED:
            raise InputTooLargeError(f"the .docx expands to {total} bytes", path=path)
        if "word/document.xml" not in archive.namelist():
            raise CorruptDocxError("the .docx has no word/document.xml", path=path,
                                   hint="re-save the document from Word as .docx")
        try:
            head = archive.read("word/document.xml")[:65536]
        # NotImplementedError: a damaged header that names an unsupported zip version or method
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, zlib.error,
                NotImplementedError) as exc:
            raise CorruptDocxError(f"cannot read word/document.xml ({type(exc).__name__})", path=path) from None
        if b"<!ENTITY" in head or b"<!DOCTYPE" in head:
            raise CorruptDocxError("the .docx declares XML entities (refused for safety)", path=path)


def _paragraph_lines(data: bytes, path: Path) -> Iterator[tuple[str, str]]:
    import docx  # python-docx; imported here so importing the package stays cheap

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises KeyError, ValueError, lxml errors...
        raise CorruptDocxError(f"python-docx cannot open the document ({type(exc).__name__})", path=path,
                               hint="re-save the document from Word as .docx") from None
    for number, paragraph in enumerate(document.paragraphs, start=1):
        yield f"paragraph {number}", paragraph.text
    for t_number, table in enumerate(document.tables, start=1):
        for r_number, row in enumerate(table.rows, start=1):
            cells = [cell.text.strip() for cell in row.cells]
            place = f"table {t_number} row {r_number}"
            if len(cells) >= 2 and cells[0] and ":" not in cells[0] and cells[1]:
                yield place, f"{cells[0]}: {' '.join(cells[1:])}"  # [speaker | text] tables
            else:
                yield place, " ".join(cells)


def read_docx(path: Path, data: bytes, transcript_id: str, label_pattern: str) -> RawTranscript:
    _check_container(data, path)
    turns = turns_from_lines(_paragraph_lines(data, path), path, label_pattern, place_kind="")
    return RawTranscript(transcript_id=transcript_id, source_format="docx", encoding=None, turns=tuple(turns))
