"""The corpus run: ingest -> segment -> tag -> write, incremental and crash-safe.

What is done is decided by recompute keys (input bytes, model id@version, label schema,
config hash, code version, which speakers are tagged), never by file names or times. Each
transcript's result is cached as a part under its key; the corpus files are then
assembled from the parts in transcript order, so a rerun, a resumed run and an
uninterrupted run write the same bytes.
"""
from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from pipeline import __version__
from pipeline.atomic import ensure_private_dir, remove_stale_temp_files, write_bytes_atomic
from pipeline.config import RunConfig
from pipeline.corpus_io import (DOCBIN, RUN_RECORD, SENTENCES_JSONL, SENTENCES_PARQUET, STATE_DIR, InputEntry,
                                Manifest, SentenceRecord, describe_outputs, write_manifest, write_sentences_jsonl,
                                write_sentences_parquet)
from pipeline.docbin import write_docbin
from pipeline.errors import PipelineError
from pipeline.ingest import InputUnit, build_transcript, discover_inputs, read_raw
from pipeline.ingest.markup import strip_markup
from pipeline.ingest.metadata import SpeakerTable
from pipeline.lock import corpus_lock
from pipeline.parts import PartSentence, PartTurn, TranscriptPart, read_part, recompute_key, write_part
from pipeline.schema import Transcript
from pipeline.segment import Segmenter, segment_transcript
from pipeline.tag import Tagger, TaggerSource, tag_texts

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (transcript_id, done, total)


class RunSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    started: str
    finished: str
    duration_s: float
    model: str
    transcripts_total: int
    transcripts_processed: int
    transcripts_skipped: int
    transcripts_failed: int
    turns: int
    sentences: int
    sentences_tagged: int
    stance_counts: dict[str, int]
    emotion_counts: dict[str, int]
    affect_focus_count: int
    rejected: list[dict[str, str]]


class _Workers:
    """Segmenter and tagger, loaded on first use so a no-op rerun loads neither."""

    def __init__(self, config: RunConfig, source: TaggerSource,
                 segmenter: Segmenter | None = None) -> None:
        self.config, self.source = config, source
        self._segmenter, self._tagger = segmenter, None

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = Segmenter(self.config.segment)
        return self._segmenter

    @property
    def tagger(self) -> Tagger:
        if self._tagger is None:
            self._tagger = self.source.load()
        return self._tagger


def process_transcript(transcript: Transcript, workers: _Workers) -> TranscriptPart:
    """Segment and tag one transcript (the expensive step, done only for new keys)."""
    sentences = segment_transcript(transcript, workers.segmenter, workers.config.tag.tag_roles)
    taggable = [s for s in sentences if s.taggable]
    predictions = dict(zip((s.sentence_id for s in taggable),
                           tag_texts(workers.tagger, (strip_markup(s.text) for s in taggable),
                                     workers.config.tag.batch_size)))
    by_turn: dict[str, list[PartSentence]] = {}
    for s in sentences:
        by_turn.setdefault(s.turn_id, []).append(
            PartSentence(start=s.start, end=s.end, taggable=s.taggable, prediction=predictions.get(s.sentence_id)))
    turns = tuple(PartTurn(speaker=t.speaker_id, text=t.text, start_time=t.start_time, end_time=t.end_time,
                           markup=t.markup, sentences=tuple(by_turn.get(t.turn_id, ())))
                  for t in transcript.turns)
    return TranscriptPart(source_format=transcript.source_format, encoding=transcript.encoding,
                          skipped=transcript.skipped, turns=turns)


def records_of(transcript_id: str, part: TranscriptPart, speakers: SpeakerTable) -> Iterator[tuple[str, list[SentenceRecord]]]:
    """(turn text, sentence records) per turn, with ids and speaker metadata applied."""
    for index, turn in enumerate(part.turns):
        speaker = speakers.lookup(transcript_id, turn.speaker)
        turn_id = f"{transcript_id}/t{index:04d}"
        rows = []
        for s_index, s in enumerate(turn.sentences):
            p = s.prediction
            rows.append(SentenceRecord(
                transcript_id=transcript_id, turn_id=turn_id, sentence_id=f"{turn_id}/s{s_index:03d}",
                speaker_id=turn.speaker, role=speaker.role, speaker_known=speaker.known,
                attributes=dict(sorted(speaker.attributes.items())), text=turn.text[s.start:s.end], start=s.start,
                end=s.end, turn_start=turn.start_time, turn_end=turn.end_time, tagged=p is not None,
                stance=p.stance if p else None, stance_probs=p.stance_probs if p else None,
                emotions=p.emotions if p else None, emotion_probs=p.emotion_probs if p else None,
                affect_focus=p.affect_focus if p else None, affect_focus_prob=p.affect_focus_prob if p else None,
            ))
        yield turn.text, rows


def _rejected(unit: InputUnit, content_hash: str, error: PipelineError) -> InputEntry:
    return InputEntry(transcript_id=unit.transcript_id, paths=[str(p) for p in unit.paths], sha256=content_hash,
                      status="rejected", error_code=error.code, error=error.render())


def annotate_corpus(inputs: Sequence[Path], out_dir: Path, config: RunConfig, source: TaggerSource,
                    speakers: SpeakerTable, progress: Progress | None = None,
                    segmenter: Segmenter | None = None) -> RunSummary:
    """Annotate every transcript under `inputs` into the corpus folder `out_dir`."""
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    ensure_private_dir(out_dir)
    with corpus_lock(out_dir):
        state = ensure_private_dir(out_dir / STATE_DIR)
        parts_dir = ensure_private_dir(state / "parts")
        remove_stale_temp_files(out_dir)
        workers = _Workers(config, source, segmenter)
        units = discover_inputs(inputs)
        entries: list[InputEntry] = []
        parts: dict[str, TranscriptPart] = {}
        processed = skipped = tagged_now = 0
        seen_ids: set[str] = set()
        for done, unit in enumerate(units, start=1):
            entry, part, was_new = _annotate_unit(unit, seen_ids, workers, speakers, parts_dir)
            seen_ids.add(unit.transcript_id)
            entries.append(entry)
            if part is not None:
                parts[unit.transcript_id] = part
                processed += was_new
                skipped += not was_new
                tagged_now += part.tagged_count if was_new else 0
            if progress:
                progress(unit.transcript_id, done, len(units))
        counts = _write_outputs(out_dir, entries, parts, speakers, config, source, workers)
        _prune_parts(parts_dir, {e.key for e in entries if e.key})
    finished = datetime.now(timezone.utc)
    summary = RunSummary(
        started=started.isoformat(timespec="seconds"), finished=finished.isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - clock, 3), model=source.model_ref, transcripts_total=len(units),
        transcripts_processed=processed, transcripts_skipped=skipped,
        transcripts_failed=sum(e.status == "rejected" for e in entries), sentences_tagged=tagged_now,
        rejected=[{"transcript_id": e.transcript_id, "code": e.error_code or "", "error": e.error or ""}
                  for e in entries if e.status == "rejected"],
        **counts,
    )
    write_bytes_atomic(out_dir / RUN_RECORD, json.dumps(summary.model_dump(), indent=2).encode() + b"\n")
    return summary


def _annotate_unit(unit: InputUnit, seen_ids: set[str], workers: _Workers, speakers: SpeakerTable,
                   parts_dir: Path) -> tuple[InputEntry, TranscriptPart | None, bool]:
    content_hash = ""
    try:
        content_hash = unit.content_hash()
        if unit.transcript_id in seen_ids:
            raise PipelineError(f"transcript id {unit.transcript_id!r} is used by another input",
                                path=unit.display_path, hint="rename one of the files")
        transcript = build_transcript(read_raw(unit, workers.config.ingest), speakers)
        tagged_speakers = [s.speaker_id for s in transcript.speakers.values() if s.role in workers.config.tag.tag_roles]
        key = recompute_key(content_hash, workers.source.model_ref, workers.source.schema.ref,
                            workers.config.recompute_hash(), __version__, tagged_speakers)
        part = read_part(parts_dir, key)
        was_new = part is None
        if part is None:
            logger.debug("processing %s", unit.transcript_id)
            part = process_transcript(transcript, workers)
            write_part(parts_dir, key, part)
    except PipelineError as error:
        logger.warning("rejected %s", error.render())
        return _rejected(unit, content_hash, error), None, False
    except OSError as error:
        wrapped = PipelineError(f"cannot read the input ({type(error).__name__}: errno {error.errno})",
                                path=unit.display_path, hint="check the file exists and is readable")
        return _rejected(unit, content_hash, wrapped), None, False
    entry = InputEntry(
        transcript_id=unit.transcript_id, paths=[str(p) for p in unit.paths], sha256=content_hash, status="ok",
        key=key, source_format=part.source_format, encoding=part.encoding, turns=len(part.turns),
        sentences=part.sentence_count, tagged=part.tagged_count, skipped_cues=part.skipped,
        unknown_speakers=sorted(s.speaker_id for s in transcript.speakers.values() if not s.known),
    )
    return entry, part, was_new


def _write_outputs(out_dir: Path, entries: list[InputEntry], parts: dict[str, TranscriptPart],
                   speakers: SpeakerTable, config: RunConfig, source: TaggerSource,
                   workers: _Workers) -> dict[str, object]:
    order = sorted(parts)

    def turns() -> Iterator[tuple[str, list[SentenceRecord]]]:
        for transcript_id in order:
            yield from records_of(transcript_id, parts[transcript_id], speakers)

    def per_transcript() -> Iterator[list[SentenceRecord]]:
        for transcript_id in order:
            yield [r for _, rows in records_of(transcript_id, parts[transcript_id], speakers) for r in rows]

    stance, emotions = Counter[str](), Counter[str]()
    totals = {"turns": 0, "sentences": 0, "affect": 0}

    def counted() -> Iterator[SentenceRecord]:
        for text, rows in turns():
            totals["turns"] += 1
            for row in rows:
                totals["sentences"] += 1
                if row.tagged:
                    stance[row.stance or ""] += 1
                    emotions.update(row.emotions or [])
                    totals["affect"] += bool(row.affect_focus)
                yield row

    write_sentences_jsonl(out_dir / SENTENCES_JSONL, counted())
    write_sentences_parquet(out_dir / SENTENCES_PARQUET, per_transcript())
    write_docbin(out_dir / DOCBIN, turns())
    segmentation = dict(config.segment.model_dump(mode="json"), tag_roles=list(config.tag.tag_roles))
    manifest = Manifest(code_version=__version__, model=source.model_ref, label_schema=source.schema.ref,
                        config_hash=config.recompute_hash(), segmentation=segmentation,
                        inputs=sorted(entries, key=lambda e: (e.transcript_id, e.paths)),
                        outputs=describe_outputs(out_dir, [SENTENCES_JSONL, SENTENCES_PARQUET, DOCBIN]))
    write_manifest(out_dir, manifest)
    return {"turns": totals["turns"], "sentences": totals["sentences"], "stance_counts": dict(sorted(stance.items())),
            "emotion_counts": dict(sorted(emotions.items())), "affect_focus_count": totals["affect"]}


def _prune_parts(parts_dir: Path, keep: set[str]) -> None:
    names = {f"{k[:40]}.json" for k in keep}
    for path in parts_dir.glob("*.json"):
        if path.name not in names:
            path.unlink(missing_ok=True)
