"""Speaker-labelled lines ("P03: ...", "[00:12:31] NURSE: ...", "INT - ...") into turns.

Shared by the plain-text and .docx readers. Lines without a label continue the previous
turn; a timestamp alone on a line times the next turn; headings before the first label
are not turns.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pipeline.errors import EmptyInputError, MalformedInputError
from pipeline.schema import RawTurn

TIMESTAMP = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
# A label: up to four capitalised words ("Dr Okafor", "P03", "NURSE", "Interviewer") then
# ":", or an upper-case label ("INT", "R1") then a spaced dash. The dash form is kept to
# upper case so a heading like "Interview 2 - transcript" is not taken for a speaker.
_WORDS = r"(?:[A-Z][\w.'’-]*|\d+[A-Za-z]\w*)(?:\s(?:[A-Z][\w.'’-]*|\d+)){0,3}"
_UPPER = r"[A-Z][A-Z0-9]*(?:\s[A-Z0-9]+){0,2}"
DEFAULT_LABEL_PATTERN = (
    rf"^\s*(?:\[?(?P<time>{TIMESTAMP})\]?\s*)?"
    rf"(?:(?P<speaker>{_WORDS})\s*:|(?P<speaker_dash>{_UPPER})\s[-–—])\s*(?P<text>.*)$"
)
TIMESTAMP_LINE = re.compile(rf"^\s*\[?(?P<time>{TIMESTAMP})\]?\s*$")


def parse_timestamp(value: str) -> float:
    parts = [float(p.replace(",", ".")) for p in value.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def turns_from_lines(lines: Iterable[tuple[str, str]], path: Path, label_pattern: str = DEFAULT_LABEL_PATTERN,
                     place_kind: str = "line") -> list[RawTurn]:
    """`lines` yields (place, text) pairs: the place names the line for error messages.

    A custom `label_pattern` needs named groups `speaker` and `text` (optionally `time`).
    """
    pattern = re.compile(label_pattern)
    turns: list[dict] = []
    pending_time: float | None = None
    unlabelled_before_first: list[str] = []
    for place, raw in lines:
        line = raw.strip()
        if not line:
            continue
        time_only = TIMESTAMP_LINE.match(line)
        if time_only:
            pending_time = parse_timestamp(time_only.group("time"))
            continue
        match = pattern.match(line)
        groups = match.groupdict() if match else {}
        speaker = groups.get("speaker") or groups.get("speaker_dash")
        if match and speaker and not re.fullmatch(TIMESTAMP, speaker):
            time = groups.get("time")
            turns.append({
                "speaker": speaker.strip(),
                "text": match.group("text").strip(),
                "start_time": parse_timestamp(time) if time else pending_time,
                "source_place": f"{place_kind} {place}".strip(),
            })
            pending_time = None
        elif turns:
            turns[-1]["text"] = f"{turns[-1]['text']}\n{line}" if turns[-1]["text"] else line
        else:
            unlabelled_before_first.append(place)
    if not turns:
        raise MalformedInputError(
            "no speaker labels found", path=path, where=f"{place_kind}s 1-{len(unlabelled_before_first) or 1}",
            hint="label each turn like 'Interviewer: ...' or 'P03: ...', or set ingest.speaker_label_pattern")
    kept = [RawTurn(**t) for t in turns if t["text"]]
    if not kept:
        raise EmptyInputError(f"{len(turns)} speaker labels but no text after any of them", path=path,
                              where=turns[0]["source_place"] or None, hint="check the export step")
    return kept
