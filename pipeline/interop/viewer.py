"""Transcript viewer: one self-contained HTML page per transcript, plus an index.

Each page shows the turns by speaker; every tagged sentence is tinted by its stance,
followed by small chips for its emotions, and underlined in green when it has affect
focus; hovering a sentence shows all its probabilities (the `title` attribute, so it
works without scripts). Untagged sentences (e.g. interviewer turns) are plain grey text.
A header gives the model, the legend and a table of speakers with their stance shares.

Pages carry no scripts and fetch nothing: inline CSS only, and a Content-Security-Policy
that forbids any other source. Every piece of text is HTML-escaped.
"""
from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from html import escape
from pathlib import Path

from models.labels import EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline import __version__
from pipeline.atomic import ensure_private_dir, write_bytes_atomic
from pipeline.corpus_io import SentenceRecord, read_manifest
from pipeline.interop.codebook import colour_of
from pipeline.interop.corpus import TranscriptView, iter_transcripts

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
STANCE_TINTS = {"objective": "#D3E3F8", "experiential": "#FBE0C8", "none": "#E9ECF0"}
INDEX = "index.html"


@dataclass(frozen=True)
class ViewerSummary:
    pages: list[Path]
    index: Path


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def page_name(transcript_id: str) -> str:
    """A safe file name for a transcript id (a hash is added when characters were replaced)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", transcript_id).lstrip(".") or "transcript"
    if safe != transcript_id or safe.lower() == INDEX.removesuffix(".html"):
        safe = f"{safe}-{hashlib.sha256(transcript_id.encode()).hexdigest()[:8]}"
    return f"{safe}.html"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _tooltip(row: SentenceRecord) -> str:
    stance = ", ".join(f"{k} {v:.2f}" for k, v in sorted((row.stance_probs or {}).items(), key=lambda kv: -kv[1]))
    emotions = ", ".join(f"{k} {v:.2f}{' ✓' if k in (row.emotions or []) else ''}"
                         for k, v in sorted((row.emotion_probs or {}).items(), key=lambda kv: -kv[1]))
    return "\n".join([
        row.sentence_id,
        f"stance: {row.stance} ({stance})",
        f"emotions: {', '.join(row.emotions or []) or 'neutral'} ({emotions})",
        f"affect focus: {'yes' if row.affect_focus else 'no'} ({row.affect_focus_prob or 0:.2f})",
    ])


def _sentence(row: SentenceRecord) -> str:
    if not row.tagged:
        return f'<span class="s untagged" id="{_e(row.sentence_id)}">{_e(row.text)}</span>'
    classes = f"s st-{_e(row.stance)}" + (" af" if row.affect_focus else "")
    chips = "".join(f'<span class="emo" style="background:{colour_of(EMOTIONS, e)}">{_e(e)}</span>'
                    for e in row.emotions or [])
    return (f'<span class="{classes}" id="{_e(row.sentence_id)}" data-stance="{_e(row.stance)}" '
            f'data-emotions="{_e(" ".join(row.emotions or []))}" data-affect-focus="{"yes" if row.affect_focus else "no"}" '
            f'title="{_e(_tooltip(row))}">{_e(row.text)}</span>{chips}')


def _turn_html(turn) -> str:  # type: ignore[no-untyped-def]
    parts, pos = [], 0
    for row in turn.rows:
        parts.append(_e(turn.text[pos:row.start]))
        parts.append(_sentence(row))
        pos = row.end
    parts.append(_e(turn.text[pos:]))
    details = " · ".join(v for v in [turn.role, *turn.attributes.values()] if v)
    clock = _clock(turn.start_time)
    return (f'<div class="turn role-{_e(turn.role)}" id="{_e(turn.turn_id)}">'
            f'<div class="who"><span class="speaker">{_e(turn.speaker_id)}</span>'
            f'<span class="details">{_e(details)}</span>'
            + (f'<span class="time">{_e(clock)}</span>' if clock else "")
            + f'</div><p class="text">{"".join(parts)}</p></div>')


def _bar(counts: Counter[str], labels: tuple[str, ...]) -> str:
    total = sum(counts.values())
    if not total:
        return ""
    segments = "".join(
        f'<span style="width:{100 * counts[lab] / total:.1f}%;background:{colour_of(STANCE, lab)}" '
        f'title="{_e(lab)} {counts[lab]} ({counts[lab] / total:.0%})"></span>' for lab in labels if counts[lab])
    return f'<span class="bar">{segments}</span>'


def _speakers_table(transcript: TranscriptView, schema: LabelSchema) -> str:
    rows: dict[str, list[SentenceRecord]] = {}
    for row in transcript.rows:
        rows.setdefault(row.speaker_id, []).append(row)
    lines = [('<table class="speakers"><thead><tr><th>speaker</th><th>role</th><th>attributes</th><th>sentences</th>'
              '<th>tagged</th><th>stance</th><th>shares</th><th>affect focus</th></tr></thead><tbody>')]
    for speaker, members in rows.items():
        tagged = [r for r in members if r.tagged]
        counts = Counter(r.stance or "" for r in tagged)
        shares = ", ".join(f"{lab} {counts[lab] / len(tagged):.0%}" for lab in schema.layers[STANCE].labels) if tagged else "–"
        affect = f"{sum(bool(r.affect_focus) for r in tagged) / len(tagged):.0%}" if tagged else "–"
        attributes = ", ".join(f"{k}: {v}" for k, v in members[0].attributes.items()) or "–"
        lines.append(f"<tr><td>{_e(speaker)}</td><td>{_e(members[0].role)}</td><td>{_e(attributes)}</td>"
                     f"<td>{len(members)}</td><td>{len(tagged)}</td><td>{_bar(counts, schema.layers[STANCE].labels)}</td>"
                     f"<td>{_e(shares)}</td><td>{affect}</td></tr>")
    lines.append("</tbody></table>")
    return "".join(lines)


def _legend(schema: LabelSchema) -> str:
    stance = "".join(f'<span class="s st-{_e(lab)}">{_e(lab)}</span> ' for lab in schema.layers[STANCE].labels)
    emotions = "".join(f'<span class="emo" style="background:{colour_of(EMOTIONS, lab)}">{_e(lab)}</span>'
                       for lab in schema.layers[EMOTIONS].labels)
    return (f'<div class="legend"><span class="key">stance</span> {stance}'
            f'<span class="key">emotions</span> {emotions} '
            f'<span class="key">affect focus</span> <span class="s af">underlined</span> '
            '<span class="key">not tagged</span> <span class="s untagged">grey</span>'
            '<span class="hint">Hover over a sentence for its probabilities.</span></div>')


def _style() -> str:
    tints = "".join(f".st-{lab}{{background:{tint};border-left:3px solid {colour_of(STANCE, lab)}}}"
                    for lab, tint in STANCE_TINTS.items())
    return (
        "body{font:16px/1.6 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a202c;margin:0;"
        "background:#f7f7f5}"
        "header{background:#fff;border-bottom:1px solid #e2e8f0;padding:16px 32px}"
        "h1{font-size:22px;margin:0 0 4px}.meta{color:#4a5568;margin:0 0 8px;font-size:14px}"
        "nav a{color:#2b6cb0;font-size:14px}"
        "main{max-width:960px;margin:0 auto;padding:16px 32px 48px}"
        ".turn{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 14px;margin:10px 0}"
        ".turn.role-interviewer{background:#fafafa;margin-left:48px}"
        ".who{display:flex;gap:10px;align-items:baseline;font-size:13px;color:#4a5568}"
        ".speaker{font-weight:700;color:#1a202c;font-size:14px}.time{margin-left:auto;font-variant-numeric:tabular-nums}"
        ".text{margin:4px 0 0;white-space:pre-wrap}"
        ".s{border-radius:3px;padding:1px 2px;cursor:help}"
        f"{tints}"
        ".s.af{text-decoration:underline;text-decoration-color:#2F855A;text-decoration-thickness:3px;"
        "text-underline-offset:5px}"
        ".untagged{color:#718096;cursor:default}"
        ".emo{display:inline-block;font-size:11px;line-height:1.3;color:#fff;border-radius:8px;padding:0 6px;"
        "margin:0 2px;vertical-align:2px}"
        ".legend{font-size:13px;display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:8px 0}"
        ".legend .key{font-weight:700;margin-left:8px}.legend .hint{color:#718096;margin-left:12px}"
        "table.speakers{border-collapse:collapse;font-size:13px;margin-top:8px}"
        "table.speakers th,table.speakers td{border-bottom:1px solid #e2e8f0;padding:3px 10px;text-align:left}"
        ".bar{display:inline-flex;width:120px;height:10px;border-radius:3px;overflow:hidden;background:#edf2f7;"
        "vertical-align:middle}.bar span{display:block;height:100%}"
        "ul.transcripts li{margin:4px 0}"
    )


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta name=\"robots\" content=\"noindex\">"
            f"<title>{_e(title)}</title><style>{_style()}</style></head><body>{body}</body></html>\n")


def render_transcript(transcript: TranscriptView, model_ref: str, schema: LabelSchema | None = None) -> str:
    """The HTML page of one transcript."""
    schema = schema or load_label_schema()
    rows = list(transcript.rows)
    tagged = sum(r.tagged for r in rows)
    header = (f"<header><nav><a href=\"{INDEX}\">← all transcripts</a></nav>"
              f"<h1>{_e(transcript.transcript_id)}</h1>"
              f"<p class=\"meta\">{len(transcript.turns)} turns, {len(rows)} sentences, {tagged} tagged by "
              f"{_e(model_ref)} · label schema {_e(schema.ref)} · epistance {_e(__version__)} · "
              "contains interview text: keep it where the transcripts are kept</p>"
              f"{_legend(schema)}{_speakers_table(transcript, schema)}</header>")
    turns = "".join(_turn_html(turn) for turn in transcript.turns)
    return _page(f"{transcript.transcript_id} · epistance", f"{header}<main>{turns}</main>")


def write_viewer(corpus_dir: Path, out_dir: Path, only: set[str] | None = None) -> ViewerSummary:
    """One page per transcript (or per transcript in `only`) and an index of those pages, in `out_dir`."""
    schema = load_label_schema()
    manifest = read_manifest(corpus_dir)
    model_ref = manifest.model if manifest is not None else "unknown"
    ensure_private_dir(out_dir)
    pages: list[Path] = []
    entries: list[str] = []
    for transcript in iter_transcripts(corpus_dir, only):
        name = page_name(transcript.transcript_id)
        path = out_dir / name
        write_bytes_atomic(path, render_transcript(transcript, model_ref, schema).encode("utf-8"))
        pages.append(path)
        rows = list(transcript.rows)
        counts = Counter(r.stance or "" for r in rows if r.tagged)
        entries.append(f'<li><a href="{_e(name)}">{_e(transcript.transcript_id)}</a> – {len(transcript.turns)} turns, '
                       f'{len(rows)} sentences {_bar(counts, schema.layers[STANCE].labels)}</li>')
    body = (f"<header><h1>Transcripts</h1><p class=\"meta\">{len(pages)} transcript{'' if len(pages) == 1 else 's'} "
            f"tagged by {_e(model_ref)} · "
            f"label schema {_e(schema.ref)}</p>{_legend(schema)}</header>"
            f"<main><ul class=\"transcripts\">{''.join(entries)}</ul></main>")
    index = out_dir / INDEX
    write_bytes_atomic(index, _page("Transcripts · epistance", body).encode("utf-8"))
    return ViewerSummary(pages=pages, index=index)

