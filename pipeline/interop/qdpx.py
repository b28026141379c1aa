"""REFI-QDA export: an annotated corpus as a `.qdpx` project for NVivo, ATLAS.ti, MAXQDA
and QualCoder (QDA-XML 1.0, urn:QDA-XML:project:1.0; schema in schemas/Project.xsd).

What goes where:
- each transcript is a TextSource whose plain text is stored in the zip as
  `Sources/<guid>.txt` (UTF-8, one line per turn, `Speaker: text`, with a `[hh:mm:ss]`
  prefix where the turn has a start time);
- the codebook holds one non-codable parent code per layer (Stance, Emotions, Affect
  focus) and one codable code per label (`stance: objective`, `emotion: fear`,
  `affect focus: yes`), with the codebook's definitions and colours;
- each tagged sentence is a PlainTextSelection named by its sentence id, at its exact
  character positions, with one Coding per label the model gave it; the selection's
  description carries the probabilities;
- the model is the User that created every selection and coding;
- each speaker of each transcript is a Case (`<transcript>/<speaker>`) with role and
  speaker attributes as variable values, referring to its source and its selections.

Positions are zero-based offsets in Unicode code points into the source text, the end
exclusive (`text[start:end]` is the sentence). GUIDs are derived from ids and the model
reference, and no timestamps are written, so the same corpus gives the same bytes.
"""
from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline import __version__
from pipeline.atomic import write_bytes_atomic
from pipeline.corpus_io import SentenceRecord, read_manifest
from pipeline.interop.codebook import LAYER_DESCRIPTIONS, LAYER_TITLES, Code, codes
from pipeline.interop.corpus import TranscriptView, iter_transcripts
from pipeline.interop.errors import InteropError

NS = "urn:QDA-XML:project:1.0"
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "Project.xsd"
PROJECT_FILE = "project.qde"
SOURCES_DIR = "Sources"
GUID_NAMESPACE = uuid.UUID("6f1d4c2e-8a53-5b1e-9a57-3c7e2f0d9b41")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
LineEndings = Literal["lf", "crlf"]


@dataclass(frozen=True)
class QdpxSummary:
    path: Path
    sources: int
    selections: int
    codings: int
    cases: int
    codes: int
    bytes: int


def _guid(*parts: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(parts)))


def _xml_safe(value: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters other than tab/newline)."""
    return "".join(c for c in value if c in "\t\n\r" or (" " <= c and c not in "\ufffe\uffff"))


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"[{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}] "


def _selection_note(row: SentenceRecord) -> str:
    stance = ", ".join(f"{k} {v:.2f}" for k, v in sorted((row.stance_probs or {}).items(), key=lambda kv: -kv[1]))
    emotions = ", ".join(f"{k} {v:.2f}" for k, v in sorted((row.emotion_probs or {}).items(), key=lambda kv: -kv[1]))
    return (f"{row.sentence_id}. stance: {row.stance} ({stance}); emotions: {', '.join(row.emotions or []) or 'neutral'}"
            f" ({emotions}); affect focus: {'yes' if row.affect_focus else 'no'} ({row.affect_focus_prob or 0:.2f})")


def _row_codes(row: SentenceRecord, by_label: dict[tuple[str, str], Code]) -> list[Code]:
    found = []
    if row.stance is not None and (STANCE, row.stance) in by_label:
        found.append(by_label[(STANCE, row.stance)])
    for emotion in row.emotions or []:
        if (EMOTIONS, emotion) in by_label:
            found.append(by_label[(EMOTIONS, emotion)])
    if row.affect_focus:
        found.extend(code for (layer, _), code in by_label.items() if layer == AFFECT_FOCUS)
    return found


@dataclass
class _Document:
    """A transcript's plain text and where each sentence sits in it."""

    text: str
    spans: dict[str, tuple[int, int]]
    speakers: dict[str, SentenceRecord]  # first row of each speaker: role and attributes


def _document(transcript: TranscriptView, newline: str) -> _Document:
    parts: list[str] = []
    spans: dict[str, tuple[int, int]] = {}
    speakers: dict[str, SentenceRecord] = {}
    offset = 0

    def convert(text: str) -> str:
        return text.replace("\n", newline) if newline != "\n" else text

    for index, turn in enumerate(transcript.turns):
        if index:
            parts.append(newline)
            offset += len(newline)
        prefix = (_clock(turn.start_time) if turn.start_time is not None else "") + f"{turn.speaker_id}: "
        parts.append(prefix)
        offset += len(prefix)
        for row in turn.rows:
            speakers.setdefault(row.speaker_id, row)
            start = offset + len(convert(turn.text[:row.start]))
            spans[row.sentence_id] = (start, start + len(convert(row.text)))
        body = convert(turn.text)
        parts.append(body)
        offset += len(body)
    return _Document(text="".join(parts), spans=spans, speakers=speakers)


def build_project(corpus_dir: Path, project_name: str | None = None, line_endings: LineEndings = "lf",
                  schema: LabelSchema | None = None) -> tuple[bytes, dict[str, bytes], dict[str, int]]:
    """(project.qde bytes, {zip path: source text bytes}, counts) for an annotated corpus."""
    from lxml import etree

    schema = schema or load_label_schema()
    manifest = read_manifest(corpus_dir)
    model_ref = manifest.model if manifest is not None else "unknown"
    newline = "\r\n" if line_endings == "crlf" else "\n"
    name = project_name or corpus_dir.resolve().name

    def el(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
        return etree.SubElement(parent, f"{{{NS}}}{tag}", {k: _xml_safe(v) for k, v in attrs.items()})

    user_guid = _guid("user", model_ref)
    root = etree.Element(f"{{{NS}}}Project", nsmap={None: NS})
    root.set("name", _xml_safe(name))
    root.set("origin", f"epistance {__version__}")
    root.set("creatingUserGUID", user_guid)
    el(el(root, "Users"), "User", guid=user_guid, name=f"model:{model_ref}", id=model_ref)

    code_list = codes(schema)
    by_label = {(c.layer, c.label): c for c in code_list}
    code_guid = {c.name: _guid("code", schema.ref, c.layer, c.label) for c in code_list}
    codes_el = el(el(root, "CodeBook"), "Codes")
    for layer in (STANCE, EMOTIONS, AFFECT_FOCUS):
        parent = el(codes_el, "Code", guid=_guid("code", schema.ref, layer), name=LAYER_TITLES[layer],
                    isCodable="false")
        etree.SubElement(parent, f"{{{NS}}}Description").text = f"{LAYER_TITLES[layer]}: {LAYER_DESCRIPTIONS[layer]}"
        for code in (c for c in code_list if c.layer == layer):
            child = el(parent, "Code", guid=code_guid[code.name], name=code.name, isCodable="true", color=code.colour)
            etree.SubElement(child, f"{{{NS}}}Description").text = code.description

    variables_el = el(root, "Variables")
    cases_el = el(root, "Cases")
    sources_el = el(root, "Sources")
    files: dict[str, bytes] = {}
    variable_names: set[str] = set()
    cases: list[tuple[str, str, SentenceRecord, str, list[str]]] = []  # guid, name, row, source guid, selections
    counts = {"sources": 0, "selections": 0, "codings": 0, "cases": 0, "codes": len(code_list)}
    for transcript in iter_transcripts(corpus_dir):
        document = _document(transcript, newline)
        source_guid = _guid("source", transcript.transcript_id)
        files[f"{SOURCES_DIR}/{source_guid}.txt"] = document.text.encode("utf-8")
        source = el(sources_el, "TextSource", guid=source_guid, name=transcript.transcript_id,
                    plainTextPath=f"internal://{source_guid}.txt", creatingUser=user_guid)
        etree.SubElement(source, f"{{{NS}}}Description").text = (
            f"Transcript {transcript.transcript_id}, sentences tagged by {model_ref} (label schema {schema.ref}).")
        counts["sources"] += 1
        by_speaker: dict[str, list[str]] = {}
        for row in transcript.rows:
            if not row.tagged:
                continue
            start, end = document.spans[row.sentence_id]
            selection_guid = _guid("selection", model_ref, row.sentence_id)
            selection = el(source, "PlainTextSelection", guid=selection_guid, name=row.sentence_id,
                           startPosition=str(start), endPosition=str(end), creatingUser=user_guid)
            etree.SubElement(selection, f"{{{NS}}}Description").text = _xml_safe(_selection_note(row))
            for code in _row_codes(row, by_label):
                coding = el(selection, "Coding", guid=_guid("coding", model_ref, row.sentence_id, code.name),
                            creatingUser=user_guid)
                el(coding, "CodeRef", targetGUID=code_guid[code.name])
                counts["codings"] += 1
            by_speaker.setdefault(row.speaker_id, []).append(selection_guid)
            counts["selections"] += 1
        for speaker_id, first in document.speakers.items():
            variable_names.update(first.attributes)
            cases.append((_guid("case", transcript.transcript_id, speaker_id),
                          f"{transcript.transcript_id}/{speaker_id}", first, source_guid,
                          by_speaker.get(speaker_id, [])))
    variable_guid = {v: _guid("variable", v) for v in ["role", *sorted(variable_names - {"role"})]}
    for variable, guid in variable_guid.items():
        var = el(variables_el, "Variable", guid=guid, name=variable, typeOfVariable="Text")
        etree.SubElement(var, f"{{{NS}}}Description").text = (
            "Speaker role (interviewer, participant, other, unknown)" if variable == "role"
            else f"Speaker attribute '{variable}' from the speaker sidecar")
    for guid, case_name, first, source_guid, selections in cases:
        case = el(cases_el, "Case", guid=guid, name=case_name)
        values = {"role": first.role, **{k: v for k, v in first.attributes.items() if k != "role"}}
        for variable, variable_id in variable_guid.items():
            if variable in values:
                value = el(case, "VariableValue")
                el(value, "VariableRef", targetGUID=variable_id)
                etree.SubElement(value, f"{{{NS}}}TextValue").text = _xml_safe(values[variable])
        el(case, "SourceRef", targetGUID=source_guid)
        for selection_guid in selections:
            el(case, "SelectionRef", targetGUID=selection_guid)
        counts["cases"] += 1
    # empty containers are not allowed by the schema (each needs one child)
    for container in (variables_el, cases_el, sources_el):
        if len(container) == 0:
            root.remove(container)
    etree.SubElement(root, f"{{{NS}}}Description").text = (
        f"Exported by epistance {__version__} from corpus '{corpus_dir.resolve().name}': sentences tagged by "
        f"{model_ref}, label schema {schema.ref}. Each coded selection is one sentence; positions are zero-based "
        "Unicode code point offsets into the source's plain text, end exclusive.")
    xml = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return xml, files, counts


def _zip_bytes(xml: bytes, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [(PROJECT_FILE, xml), *sorted(files.items())]:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def export_qdpx(corpus_dir: Path, out_path: Path, project_name: str | None = None,
                line_endings: LineEndings = "lf") -> QdpxSummary:
    """Write the corpus as a REFI-QDA project (`.qdpx`) at `out_path`."""
    xml, files, counts = build_project(corpus_dir, project_name, line_endings)
    data = _zip_bytes(xml, files)
    write_bytes_atomic(out_path, data)
    return QdpxSummary(path=out_path, bytes=len(data), **counts)


def validate_project(xml: bytes, schema_path: Path = SCHEMA_PATH) -> list[str]:
    """Schema problems of a project.qde (empty when valid), as `line N: message`."""
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(schema_path)))
    document = etree.fromstring(xml, _safe_parser())
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class QdaSelection:
    source: str  # source name
    name: str
    start: int
    end: int
    codes: frozenset[str]  # code names
    creating_user: str | None


@dataclass(frozen=True)
class QdaCase:
    name: str
    variables: dict[str, str]
    selections: tuple[str, ...]  # selection names


@dataclass
class QdaProject:
    name: str
    users: dict[str, str] = field(default_factory=dict)  # guid -> name
    codes: dict[str, str] = field(default_factory=dict)  # guid -> name (codable and not)
    sources: dict[str, str] = field(default_factory=dict)  # name -> plain text
    selections: list[QdaSelection] = field(default_factory=list)
    cases: list[QdaCase] = field(default_factory=list)

    def labels(self, schema: LabelSchema | None = None) -> Iterator[tuple[QdaSelection, dict[str, object]]]:
        """Each selection with its codes as layer labels: {stance, emotions, affect_focus}."""
        from pipeline.interop.codebook import codes as codebook

        by_name = {c.name: c for c in codebook(schema or load_label_schema())}
        for selection in self.selections:
            stance = [by_name[c].label for c in selection.codes if c in by_name and by_name[c].layer == STANCE]
            emotions = sorted(by_name[c].label for c in selection.codes if c in by_name and by_name[c].layer == EMOTIONS)
            affect = any(c in by_name and by_name[c].layer == AFFECT_FOCUS for c in selection.codes)
            yield selection, {"stance": stance[0] if len(stance) == 1 else None, "emotions": emotions,
                              "affect_focus": affect}


def _safe_parser():  # type: ignore[no-untyped-def]
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)


def read_qdpx(path: Path) -> QdaProject:
    """Read a `.qdpx` (ours or another tool's) back: users, codes, text sources,
    plain-text selections with their codes, and cases."""
    from lxml import etree

    q = f"{{{NS}}}"
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile):
        raise InteropError("not a readable .qdpx (zip) file", path=path) from None
    with archive:
        names = archive.namelist()
        qde = PROJECT_FILE if PROJECT_FILE in names else next((n for n in names if n.endswith(".qde")), None)
        if qde is None:
            raise InteropError("the .qdpx holds no project.qde", path=path)
        try:
            root = etree.fromstring(archive.read(qde), _safe_parser())
        except etree.XMLSyntaxError as error:
            raise InteropError(f"project.qde is not well-formed XML (line {error.lineno})", path=path) from None
        project = QdaProject(name=root.get("name", ""))
        for user in root.iter(f"{q}User"):
            project.users[user.get("guid", "")] = user.get("name", "")
        for code in root.iter(f"{q}Code"):
            project.codes[code.get("guid", "")] = code.get("name", "")
        selection_names: dict[str, str] = {}
        for source in root.iter(f"{q}TextSource"):
            source_name = source.get("name", "")
            text_path = source.get("plainTextPath")
            content = source.find(f"{q}PlainTextContent")
            if text_path and text_path.startswith("internal://"):
                member = text_path.removeprefix("internal://")
                candidates = [n for n in names if n.lower() in (f"sources/{member}".lower(), member.lower())]
                if not candidates:
                    raise InteropError(f"source {source_name!r} points at a file the zip lacks", path=path)
                project.sources[source_name] = archive.read(candidates[0]).decode("utf-8-sig")
            elif content is not None:
                project.sources[source_name] = content.text or ""
            for selection in source.iter(f"{q}PlainTextSelection"):
                codes_here = frozenset(project.codes.get(ref.get("targetGUID", ""), ref.get("targetGUID", ""))
                                       for ref in selection.iter(f"{q}CodeRef"))
                selection_names[selection.get("guid", "")] = selection.get("name", "")
                project.selections.append(QdaSelection(
                    source=source_name, name=selection.get("name", ""), start=int(selection.get("startPosition", "0")),
                    end=int(selection.get("endPosition", "0")), codes=codes_here,
                    creating_user=selection.get("creatingUser")))
        variables = {v.get("guid", ""): v.get("name", "") for v in root.iter(f"{q}Variable")}
        for case in root.iter(f"{q}Case"):
            values = {}
            for value in case.findall(f"{q}VariableValue"):
                ref = value.find(f"{q}VariableRef")
                text = next((child.text for child in value if child.tag != f"{q}VariableRef"), None)
                if ref is not None:
                    values[variables.get(ref.get("targetGUID", ""), "")] = text or ""
            refs = tuple(selection_names.get(r.get("targetGUID", ""), "") for r in case.findall(f"{q}SelectionRef"))
            project.cases.append(QdaCase(name=case.get("name", ""), variables=values, selections=refs))
    return project
