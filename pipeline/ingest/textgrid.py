"""Praat TextGrid: one interval tier per speaker, or one file per speaker channel.

A channel pair (`<id>_doctor.TextGrid`, `<id>_patient.TextGrid`, as in PriMock57) is one
transcript: intervals of all channels are merged by start time and consecutive
intervals of one speaker join into a turn.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import EmptyInputError, MalformedInputError
from pipeline.ingest.decode import decode_text
from pipeline.ingest.markup import strip_markup
from pipeline.schema import RawTranscript, RawTurn


def _tiers(path: Path, data: bytes) -> tuple[list[tuple[str, list[tuple[float, float, str]]]], str]:
    from praatio.utilities import textgrid_io

    text, encoding = decode_text(data, path)
    try:
        parsed = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=False)
    except Exception as exc:  # noqa: BLE001 - praatio raises ValueError, IndexError, its own errors
        raise MalformedInputError(f"not a valid TextGrid ({type(exc).__name__})", path=path,
                                  hint="save the file from Praat as a text TextGrid") from None
    tiers = []
    for tier in parsed.get("tiers", []):
        if tier.get("class") != "IntervalTier":
            continue
        entries = [(float(start), float(end), str(label)) for start, end, label in tier["entries"]]
        tiers.append((str(tier["name"]), entries))
    return tiers, encoding


def _merge(intervals: list[tuple[float, float, str, str, str]]) -> list[RawTurn]:
    """intervals: (start, end, speaker, text, place), sorted here by time."""
    turns: list[dict] = []
    for start, end, speaker, text, place in sorted(intervals, key=lambda i: (i[0], i[1], i[2])):
        if turns and turns[-1]["speaker"] == speaker:
            turns[-1]["text"] += " " + text
            turns[-1]["end_time"] = max(turns[-1]["end_time"], end)
        else:
            turns.append({"speaker": speaker, "text": text, "start_time": start, "end_time": end, "source_place": place})
    return [RawTurn(**t) for t in turns]


def _keep(label: str) -> bool:
    """An interval counts when it has words beyond markup such as a lone <UNIN/>."""
    return bool(strip_markup(label).strip())


def read_textgrid(path: Path, data: bytes, transcript_id: str) -> RawTranscript:
    """One file, one interval tier per speaker (tier name = speaker)."""
    tiers, encoding = _tiers(path, data)
    intervals = [(s, e, name, " ".join(label.split()), f"tier {t} interval {n}")  # tier numbers: names may be names
                 for t, (name, entries) in enumerate(tiers, start=1)
                 for n, (s, e, label) in enumerate(entries, start=1) if _keep(label)]
    if not intervals:
        raise EmptyInputError("the TextGrid has no intervals with text", path=path)
    return RawTranscript(transcript_id=transcript_id, source_format="textgrid", encoding=encoding,
                         turns=tuple(_merge(intervals)))


def read_textgrid_channels(channels: dict[str, tuple[Path, bytes]], transcript_id: str) -> RawTranscript:
    """Several files, one per speaker channel: {speaker: (path, bytes)}."""
    intervals = []
    encodings = set()
    for speaker, (path, data) in sorted(channels.items()):
        tiers, encoding = _tiers(path, data)
        encodings.add(encoding)
        for t, (_name, entries) in enumerate(tiers, start=1):
            intervals += [(s, e, speaker, " ".join(label.split()), f"{path.name} tier {t} interval {n}")
                          for n, (s, e, label) in enumerate(entries, start=1) if _keep(label)]
    if not intervals:
        raise EmptyInputError("the TextGrid channels have no intervals with text",
                              path=next(iter(channels.values()))[0])
    return RawTranscript(transcript_id=transcript_id, source_format="textgrid-channels",
                         encoding="+".join(sorted(encodings)), turns=tuple(_merge(intervals)))
