"""Bad input gets a clear error and the run goes on (RELIABILITY C13-C22).

Property-based tests build well-formed files of every format from generated turns (TXT,
VTT, SRT, TextGrid, CSV, JSONL, DOCX), check that they read back to the same turns, then
damage them (truncate, drop a line, splice bytes, re-encode, flip zip bytes) and check
that only our own errors escape, naming the file and never the text. An end-to-end run
on a folder mixing good and bad files exits 1 with the good files annotated and the bad
ones listed with codes, and no traceback.
"""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import docx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import PipelineError
from pipeline.ingest import IngestConfig, InputUnit, read_raw
from tests.fakes import zip_bytes
from tests.trust.conftest import FACTORY, clean_env, run_cli

SPEAKERS = ["Interviewer", "P01", "P02", "NURSE", "Dr Okafor", "Participant 3"]
WORDS = ["I", "was", "on", "the", "ward", "and", "it", "felt", "hard", "honestly", "café", "naïve", "😊", "mm-hm",
         "don't", "well,", "so.", "yes?", "really!", "[laughs]", "(inaudible)", "\u00a0", "\u200b", "-5", "mg",
         "d'accord", "señora", "ünïcödé", "中文", "עברית", "\u200f"]
# a canary token per turn: no error message may ever contain one
CANARY = "Zqxcanary"


@st.composite
def generated_turns(draw: st.DrawFn) -> list[tuple[str, str]]:
    count = draw(st.integers(1, 6))
    turns = []
    for index in range(count):
        speaker = draw(st.sampled_from(SPEAKERS))
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
        text = " ".join([*words, f"{CANARY}{index}"])
        turns.append((speaker, text))
    return turns


def merged(turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Consecutive turns of one speaker joined (what cue and interval readers do)."""
    out: list[tuple[str, str]] = []
    for speaker, text in turns:
        if out and out[-1][0] == speaker:
            out[-1] = (speaker, f"{out[-1][1]} {text}")
        else:
            out.append((speaker, text))
    return out


def fold(text: str) -> str:
    return " ".join(text.replace("\u200b", " ").split())


def _stamp(seconds: float, comma: bool = False) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    text = f"{int(h):02d}:{int(m):02d}:{s:06.3f}"
    return text.replace(".", ",") if comma else text


def render(kind: str, turns: list[tuple[str, str]]) -> bytes:
    if kind == "txt":
        return "".join(f"{s}: {t}\n" for s, t in turns).encode()
    if kind in ("vtt", "vtt-zoom"):
        cues = [f"{i + 1}\n{_stamp(2 * i)} --> {_stamp(2 * i + 1.5)}\n" + (f"<v {s}>{t}</v>" if kind == "vtt" else f"{s}: {t}")
                for i, (s, t) in enumerate(turns)]
        return ("WEBVTT\n\n" + "\n\n".join(cues) + "\n").encode()
    if kind == "srt":
        cues = [f"{i + 1}\n{_stamp(2 * i, True)} --> {_stamp(2 * i + 1.5, True)}\n{s}: {t}" for i, (s, t) in enumerate(turns)]
        return ("\n\n".join(cues) + "\n").encode()
    if kind == "textgrid":
        tiers: dict[str, list[tuple[float, float, str]]] = {}
        for i, (s, t) in enumerate(turns):
            tiers.setdefault(s, []).append((2.0 * i, 2.0 * i + 1.5, t))
        lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {2 * len(turns) + 1}",
                 "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
        for n, (name, intervals) in enumerate(tiers.items(), start=1):
            lines += [f"    item [{n}]:", '        class = "IntervalTier"', f'        name = "{name}"', "        xmin = 0",
                      f"        xmax = {2 * len(turns) + 1}", f"        intervals: size = {len(intervals)}"]
            for j, (a, b, text) in enumerate(intervals, start=1):
                lines += [f"        intervals [{j}]:", f"            xmin = {a}", f"            xmax = {b}",
                          f'            text = "{text}"']
        return ("\n".join(lines) + "\n").encode()
    if kind == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["speaker", "text", "start", "end"])
        writer.writerows([s, t, 2 * i, 2 * i + 1.5] for i, (s, t) in enumerate(turns))
        return buffer.getvalue().encode()
    if kind == "jsonl":
        return "".join(json.dumps({"speaker": s, "text": t, "start": 2 * i}, ensure_ascii=False) + "\n"
                       for i, (s, t) in enumerate(turns)).encode()
    if kind == "docx":
        document = docx.Document()
        document.add_paragraph("Interview transcript")
        for s, t in turns:
            document.add_paragraph(f"{s}: {t}")
        buffer = io.BytesIO()
        document.save(buffer)
        return buffer.getvalue()
    raise ValueError(kind)


SUFFIX = {"txt": ".txt", "vtt": ".vtt", "vtt-zoom": ".vtt", "srt": ".srt", "textgrid": ".TextGrid", "csv": ".csv",
          "jsonl": ".jsonl", "docx": ".docx"}
MERGES = {"vtt", "vtt-zoom", "srt", "textgrid"}  # cue and interval readers join a speaker's consecutive cues
KINDS = list(SUFFIX)


def read(folder: Path, kind: str, data: bytes):  # type: ignore[no-untyped-def]
    path = folder / f"input{SUFFIX[kind]}"
    path.write_bytes(data)
    return path, read_raw(InputUnit(transcript_id="input", paths=(path,)), IngestConfig())


def expected(kind: str, turns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return merged(turns) if kind in MERGES else turns


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])


@SETTINGS
@given(turns=generated_turns(), kind=st.sampled_from(KINDS))
def test_generated_files_of_every_format_read_back_exactly(tmp_path_factory, turns, kind) -> None:  # type: ignore[no-untyped-def]
    want = expected(kind, turns)  # line readers: every label starts a turn; cue readers merge a speaker's cues
    _, raw = read(tmp_path_factory.mktemp(kind), kind, render(kind, turns))
    got = [(t.speaker, fold(t.text)) for t in raw.turns]
    assert got == [(s, fold(t)) for s, t in want]
    assert raw.skipped == 0


def _mutate(data: bytes, how: str, where: int, junk: bytes) -> bytes:
    at = where % (len(data) + 1)
    if how == "truncate":
        return data[:at]
    if how == "splice":
        return data[:at] + junk + data[at:]
    if how == "overwrite":
        return data[:at] + junk + data[at + len(junk):]
    if how == "drop-line":
        lines = data.split(b"\n")
        del lines[at % len(lines)]
        return b"\n".join(lines)
    if how == "utf16":
        return data.decode("utf-8", "replace").encode("utf-16")
    if how == "utf16-nobom":
        return data.decode("utf-8", "replace").encode("utf-16-le")
    if how == "cp1252-undefined":
        return data[:at] + b"\x81\x8d\x8f\x90\x9d" + data[at:]
    if how == "crlf":
        return data.replace(b"\n", b"\r\n")
    if how == "lone-cr":
        return data.replace(b"\n", b"\r")
    if how == "bom-only":
        return b"\xef\xbb\xbf"
    raise ValueError(how)


MUTATIONS = ["truncate", "splice", "overwrite", "drop-line", "utf16", "utf16-nobom", "cp1252-undefined", "crlf",
             "lone-cr", "bom-only"]


def _check_error(error: PipelineError, path: Path) -> None:
    message = error.render()
    assert CANARY.casefold() not in message.casefold(), message
    assert error.path and Path(error.path).name == path.name, message
    assert re.fullmatch(r"E\d{3}", error.code)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(turns=generated_turns(), kind=st.sampled_from([k for k in KINDS if k != "docx"]),
       how=st.sampled_from(MUTATIONS), where=st.integers(0, 10_000),
       junk=st.binary(min_size=1, max_size=12) | st.sampled_from([b"-->", b"\x00", b"\"", b",", b"{", b"<v ", b"\n\n"]))
def test_damaged_files_raise_only_our_errors_without_text(tmp_path_factory, turns, kind, how, where, junk) -> None:  # type: ignore[no-untyped-def]
    data = _mutate(render(kind, turns), how, where, junk)
    folder = tmp_path_factory.mktemp("bad")
    path = folder / f"input{SUFFIX[kind]}"
    try:
        _, raw = read(folder, kind, data)
    except PipelineError as error:
        _check_error(error, path)
        return
    assert raw.turns and all(t.text.strip() for t in raw.turns)
    assert all(t.speaker for t in raw.turns)
    if how in ("crlf", "lone-cr", "utf16"):  # C13, C14: re-encoded or other line endings read the same
        assert [(t.speaker, fold(t.text)) for t in raw.turns] == [
            (s, fold(t)) for s, t in (expected(kind, turns) if kind not in ("txt",) else turns)]


def _zip_members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(turns=generated_turns(), how=st.sampled_from(["truncate", "overwrite", "drop-member", "bad-xml", "entity",
                                                      "flip-deflate"]),
       where=st.integers(0, 100_000), junk=st.binary(min_size=1, max_size=16))
def test_damaged_docx_maps_to_our_errors(tmp_path_factory, turns, how, where, junk) -> None:  # type: ignore[no-untyped-def]
    data = render("docx", turns)
    if how in ("truncate", "overwrite"):
        data = _mutate(data, how, where, junk)
    else:
        members = _zip_members(data)
        names = sorted(members)
        if how == "drop-member":
            del members[names[where % len(names)]]
        elif how == "bad-xml":
            name = names[where % len(names)]
            members[name] = members[name][: where % (len(members[name]) + 1)] + junk
        elif how == "entity":
            members["word/document.xml"] = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "' + b"x" * 50 + b'">]>'
                                            + members["word/document.xml"].split(b"?>", 1)[-1])
        else:  # corrupt the compressed stream of document.xml inside a valid container
            raw = bytearray(data)
            offset = raw.find(b"word/document.xml") + 40 + where % 200
            raw[offset % len(raw)] ^= 0xFF
            data = bytes(raw)
        if how != "flip-deflate":
            data = zip_bytes(members)
    folder = tmp_path_factory.mktemp("docx")
    try:
        _, raw_transcript = read(folder, "docx", data)
    except PipelineError as error:
        _check_error(error, folder / "input.docx")
        return
    assert all(t.text for t in raw_transcript.turns)


# -- a mixed folder through the real command ------------------------------------------------

GOOD_TXT = "Interviewer: How was the week?\nP01: It was fine, honestly. The ward was calm.\n"
GOOD_VTT = ("WEBVTT\n\n1\n00:00:01.000 --> 00:00:03.000\n<v Interviewer>And the team?</v>\n\n"
            "2\n00:00:03.500 --> 00:00:06.000\n<v P02>Busy. We lost two nurses.</v>\n")


def _bad_files(folder: Path) -> dict[str, str]:
    """name -> expected error code; each bad file carries a canary in its bytes."""
    secret = CANARY + "Leak"
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.txt").write_bytes(b" \n\t\n")
    (folder / "bom.txt").write_bytes(b"\xef\xbb\xbf")
    (folder / "scan.txt").write_bytes(b"%PDF-1.7\n" + secret.encode())
    (folder / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + secret.encode())
    (folder / "legacy.txt").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + secret.encode())
    (folder / "encoding.txt").write_bytes(f"P01: {secret} ".encode() + b"\x81\x8d\x8f\x90\x9d\n")
    (folder / "corrupt.docx").write_bytes(b"PK\x03\x04" + secret.encode())
    (folder / "nodoc.docx").write_bytes(zip_bytes({"word/other.xml": secret.encode()}))
    (folder / "nocues.vtt").write_bytes(b"WEBVTT\n\n")
    (folder / "badtimes.vtt").write_bytes(f"WEBVTT\n\n00:00:01.000 --> soon\n{secret}\n".encode())
    (folder / "notvtt.vtt").write_bytes(f"{secret} is not a caption file\n".encode())
    (folder / "headerless.csv").write_bytes(f"{secret} said hello,and more\nP01,fine\n".encode())
    (folder / "badline.jsonl").write_bytes(f'{{"speaker": "P01", "text": "ok"}}\n{{"{secret}\n'.encode())
    return {"empty": "E101", "blank": "E101", "bom": "E101", "scan": "E102", "photo": "E102", "legacy": "E102",
            "encoding": "E103", "corrupt": "E107", "nodoc": "E107", "nocues": "E101", "badtimes": "E105",
            "notvtt": "E105", "headerless": "E105", "badline": "E105"}


def test_a_folder_of_good_and_bad_files_exits_1_with_the_bad_ones_listed(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "good_a.txt").write_text(GOOD_TXT)
    (inputs / "good_b.vtt").write_text(GOOD_VTT)
    (inputs / "good_c.docx").write_bytes(render("docx", [("Interviewer", "Hello."), ("P03", "Hi there.")]))
    bad = _bad_files(inputs)
    done = run_cli(["annotate", str(inputs), "--out", str(tmp_path / "out"), "--no-prefect",
                    "--tagger-factory", FACTORY], clean_env(), tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output and CANARY.casefold() not in output.casefold()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    status = {e["transcript_id"]: e for e in manifest["inputs"]}
    assert {k for k, e in status.items() if e["status"] == "ok"} == {"good_a", "good_b", "good_c"}
    assert {k: e["error_code"] for k, e in status.items() if e["status"] == "rejected"} == bad
    for entry in status.values():
        if entry["status"] == "rejected":
            assert Path(entry["paths"][0]).name in entry["error"]
            assert CANARY.casefold() not in entry["error"].casefold(), entry["error"]
            assert Path(entry["paths"][0]).name in output  # listed on screen too
    assert status["encoding"]["error"].count("byte ") == 1  # where: the byte offset
    rows = [json.loads(line) for line in (tmp_path / "out" / "sentences.jsonl").read_text().splitlines()]
    assert {r["transcript_id"] for r in rows} == {"good_a", "good_b", "good_c"}
    assert CANARY.casefold() not in json.dumps(manifest).casefold()
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["transcripts_failed"] == len(bad) and {r["code"] for r in record["rejected"]} == set(bad.values())
