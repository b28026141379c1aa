"""WebVTT and SRT captions (webvtt-py): Teams `<v Name>` voices, Zoom "Name:" prefixes.

Consecutive cues of one speaker become one turn. Cues without text are counted in
`skipped` so parsed + skipped equals the cues in the file.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from pipeline.errors import EmptyInputError, MalformedInputError
from pipeline.ingest.decode import decode_text
from pipeline.schema import RawTranscript, RawTurn

ZOOM_PREFIX = re.compile(r"^(?P<speaker>[^:\n]{1,40}?):\s+(?P<text>.+)$", re.DOTALL)
VOICE_TAG = re.compile(r"<v(?:\.[\w.-]+)?\s+(?P<speaker>[^>]+)>")
TAGS = re.compile(r"</?[a-z](?:[.\w-]*)(?:\s[^>]*)?>|<\d{2}:[\d:.]+>")
UNKNOWN_SPEAKER = "UNKNOWN"


def _speaker_and_text(raw: str) -> tuple[str, str]:
    voice = VOICE_TAG.search(raw)
    if voice:
        speaker = voice.group("speaker").strip()
        text = TAGS.sub("", raw)
        return speaker, " ".join(text.split())
    text = " ".join(TAGS.sub("", raw).split())
    zoom = ZOOM_PREFIX.match(text)
    if zoom and not re.fullmatch(r"[\d\s]+", zoom.group("speaker")):
        return zoom.group("speaker").strip(), zoom.group("text").strip()
    return UNKNOWN_SPEAKER, text


def _seconds(stamp: str) -> float:
    hours, minutes, seconds = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def read_subtitles(path: Path, data: bytes, transcript_id: str, kind: str) -> RawTranscript:
    import webvtt

    text, encoding = decode_text(data, path)
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=kind)
    except Exception as exc:  # noqa: BLE001 - webvtt-py raises MalformedFileError/MalformedCaptionError and others
        line = getattr(exc, "line", None)
        raise MalformedInputError(f"not valid {kind.upper()} ({type(exc).__name__})", path=path,
                                  where=f"line {line}" if line else None,
                                  hint=f"check the file is a {kind.upper()} export") from None
    turns: list[dict] = []
    # webvtt-py drops cues whose timing line it cannot parse: count them as skipped so
    # parsed + skipped always equals the cues in the file.
    timing_lines = sum(1 for line in text.split("\n") if "-->" in line)
    malformed = max(0, timing_lines - len(captions))
    if malformed and not len(captions):
        raise MalformedInputError(f"none of the {timing_lines} cue timings could be read", path=path,
                                  hint="timings look like 00:01:02.500 --> 00:01:04.000")
    skipped = malformed
    caption: Any
    for number, caption in enumerate(captions.captions, start=1):
        speaker, cue_text = _speaker_and_text(caption.raw_text)
        if not cue_text:
            skipped += 1
            continue
        if turns and turns[-1]["speaker"] == speaker:
            turns[-1]["text"] += " " + cue_text
            turns[-1]["end_time"] = _seconds(caption.end)
        else:
            turns.append({"speaker": speaker, "text": cue_text, "start_time": _seconds(caption.start),
                          "end_time": _seconds(caption.end), "source_place": f"cue {number}"})
    if not turns:
        raise EmptyInputError(f"the {kind.upper()} file has no cues with text", path=path,
                              where=f"{skipped} empty cues", hint="check the export step")
    return RawTranscript(transcript_id=transcript_id, source_format=kind, encoding=encoding,
                         turns=tuple(RawTurn(**t) for t in turns), skipped=skipped)
