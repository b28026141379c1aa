"""The corpus run: ingest -> segment -> tag -> write, incremental and crash-safe.

What is done is decided by recompute keys (input bytes, model id@version, label schema,
config hash, code version, which speakers are tagged), never by file names or times. Each
transcript's result is cached as a part under its key; the corpus files are then
assembled from the parts in transcript order, so a rerun, a resumed run and an
uninterrupted run write the same bytes.

The run is split into small steps so that an orchestrator can call one per transcript
(pipeline.flows does, one Prefect task per transcript):

    begin_run(out_dir)                  under the corpus lock: folders, stale temp files
    plan_units(inputs)                  discover the transcripts; no model, no parsing
    annotate_unit(planned, context, ..) hash, read, key; segment and tag only a new key;
                                        returns a small UnitResult (no text)
    assemble_corpus(context, results, ..) corpus files, manifest and run.json from parts

`annotate_unit` is `open_unit` (hash, read, key, cached part?), `process_transcript`
(segment, tag) and `store_unit` (write the part). `annotate_corpus`, the direct path, runs
the same steps in lanes (pipeline.lanes): it opens and segments transcripts one by one and
tags several transcripts' sentences per call where the tagger's labels do not depend on
the batch (`tag_transcripts`).

Every step passes paths, ids, hashes and counts; transcript text stays in the parts.
"""
from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from pipeline import __version__
from pipeline.atomic import ensure_private_dir, remove_stale_temp_files, write_bytes_atomic
from pipeline.config import RunConfig
from pipeline.context import preceding_context
from pipeline.corpus_io import (
    DOCBIN,
    RUN_RECORD,
    SENTENCES_JSONL,
    SENTENCES_PARQUET,
    STATE_DIR,
    InputEntry,
    Manifest,
    SentenceRecord,
    describe_outputs,
    output_problems,
    read_manifest,
    sentences_jsonl_writer,
    sentences_parquet_writer,
    write_manifest,
)
from pipeline.corpus_writer import CorpusFilesWriter, corpus_files_writer
from pipeline.docbin import docbin_writer
from pipeline.errors import CorpusError, PipelineError
from pipeline.ingest import InputUnit, build_transcript, discover_inputs, read_raw
from pipeline.ingest.markup import strip_markup
from pipeline.ingest.metadata import SpeakerTable
from pipeline.lanes import Ready, run_lanes
from pipeline.lock import corpus_lock
from pipeline.parts import PartSentence, PartTurn, TranscriptPart, read_part, recompute_key, write_part
from pipeline.pseudonymise import PseudonymRun, audit_corpus, begin_pseudonymisation, pseudonymise_for_run
from pipeline.schema import Sentence, Transcript
from pipeline.segment import Segmenter, segment_transcript
from pipeline.tag import (
    SentencePrediction,
    Tagger,
    TaggerSource,
    batch_invariant,
    predict_with_windows,
    supports_lanes,
)

logger = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (transcript_id, done, total)
Result = TypeVar("Result")
PARTS_DIR = "parts"

# OSErrors that may go away when tried again (flaky disk, network file system, a busy
# file); anything else (missing file, no permission, a directory) is deterministic.
TRANSIENT_ERRNOS = frozenset(code for code in (
    errno.EIO, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE,
    errno.ENETDOWN, errno.ENETUNREACH, errno.ENETRESET, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
    errno.ENOLCK, errno.EDEADLK,
))


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
    sentences_windowed: int = 0  # longer than the model's window: scored in overlapping windows (C21)
    orchestrator: str = "none"
    flow_run_id: str | None = None
    pseudonymised: bool = False
    pseudonym_key: str | None = None  # where the key is (never its content)
    pseudonym_key_fingerprint: str | None = None
    pseudonym_residuals: int = 0  # names the key knows still found in sentences.jsonl (ids in the log)


class RunContext(BaseModel):
    """What every transcript of one run shares: small, serialisable, no text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: Path
    config: RunConfig
    model_ref: str
    schema_ref: str
    code_version: str = __version__
    pseudonym: PseudonymRun | None = None  # key path and fingerprint, never the secret

    @property
    def recompute_hash(self) -> str:
        config_hash = self.config.recompute_hash()
        return f"{config_hash}:{self.pseudonym.recompute_material}" if self.pseudonym else config_hash

    @property
    def parts_dir(self) -> Path:
        return self.out_dir / STATE_DIR / PARTS_DIR


class PlannedUnit(BaseModel):
    """One transcript to annotate, as `plan_units` found it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: InputUnit
    duplicate: bool = False  # another input earlier in the plan has the same transcript id

    @property
    def transcript_id(self) -> str:
        return self.unit.transcript_id


class UnitResult(BaseModel):
    """What annotating one transcript returns: its manifest entry and what it cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: InputEntry
    was_new: bool = False  # segmented and tagged in this call (not a cached part)
    tagged_now: int = 0  # sentences the model tagged in this call
    windowed: int = 0  # of its sentences, those scored in windows (C21)

    @property
    def transcript_id(self) -> str:
        return self.entry.transcript_id


class Workers:
    """Segmenter and tagger, loaded on first use so a no-op rerun loads neither.

    One Workers may be shared by threads. spaCy runs one call at a time (`segment_lock`),
    so one thread may segment while another tags: both release the GIL in native code.
    The tagger too runs one call at a time (`tag_lock`, each call on every core), except
    inside `in_lanes(n)` with a tagger that can share its threads (`supports_lanes`): then
    n threads tag at once, on their share of the cores each (the direct path:
    `annotate_corpus`). A tagger that does not say it can is never called by two threads
    at once.
    """

    def __init__(self, config: RunConfig, source: TaggerSource, segmenter: Segmenter | None = None) -> None:
        self.config, self.source = config, source
        self._segmenter = segmenter
        self._tagger: Tagger | None = None
        self.segment_lock = threading.Lock()
        self.tag_lock = threading.Lock()
        self._lanes: contextlib.ExitStack | None = None  # set inside in_lanes
        self._lane_count = 1
        self._tagging_in_parallel = False

    @property
    def segmenter(self) -> Segmenter:
        with self.segment_lock:
            if self._segmenter is None:
                self._segmenter = Segmenter(self.config.segment)
                gc.freeze()  # loaded once, kept for the run or the worker process (`long_lived_objects_frozen`)
            return self._segmenter

    @property
    def tagger(self) -> Tagger:
        with self.tag_lock:
            if self._tagger is None:
                self._tagger = self.source.load()
                gc.freeze()  # loaded once, kept for the run or the worker process (`long_lived_objects_frozen`)
                self._share_with_lanes()
            return self._tagger

    def _share_with_lanes(self) -> None:
        """Inside `in_lanes`, with a loaded tagger that can: divide its threads among the
        lanes until the block ends, and let them tag at once. Call holding `tag_lock`."""
        if self._lanes is None or self._tagger is None or self._lane_count < 2 or not supports_lanes(self._tagger):
            return
        self._lanes.enter_context(self._tagger.lanes(self._lane_count))  # type: ignore[attr-defined]
        self._tagging_in_parallel = True

    @contextlib.contextmanager
    def in_lanes(self, count: int) -> Iterator[None]:
        """A block in which `count` threads tag: at once, if the tagger supports lanes."""
        with contextlib.ExitStack() as stack:
            with self.tag_lock:
                self._lanes, self._lane_count = stack, max(1, count)
                self._share_with_lanes()
            try:
                yield
            finally:
                with self.tag_lock:
                    self._lanes, self._lane_count, self._tagging_in_parallel = None, 1, False

    def tagging(self) -> contextlib.AbstractContextManager[Any]:
        """Hold this around a tagger call: the tag lock, unless the lanes tag in parallel."""
        return contextlib.nullcontext() if self._tagging_in_parallel else self.tag_lock


_Workers = Workers  # the old private name


@contextlib.contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """For a corpus run: the objects alive at its start (the libraries, and the models,
    which `Workers` freezes again when it loads them) are left out of the garbage
    collector, whose full collections would otherwise scan them all again (about 445,000
    with spaCy, torch and the model loaded) while the run makes its many small objects.
    (b) on PriMock57 ran 1.02-1.04x faster (docs/performance.md). Unfrozen when the run ends."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def is_transient(error: BaseException) -> bool:
    """True for I/O errors worth retrying (EIO, EAGAIN, a timeout...); PipelineErrors never are."""
    if isinstance(error, PipelineError) or not isinstance(error, OSError):
        return False
    return error.errno in TRANSIENT_ERRNOS or isinstance(error, (BlockingIOError, InterruptedError, TimeoutError))


#: sentences handed to the tagger at once: it sorts them by length before batching, so a
#: whole transcript (or group of transcripts) per call means less padding than
#: document-order chunks of one batch
SENTENCES_PER_CALL = 4096


def sentence_contexts(transcript: Transcript, sentences: Sequence[Sentence]) -> list[str]:
    """The talk before each sentence (previous turn + its own turn so far), markup hidden."""
    index = {turn.turn_id: i for i, turn in enumerate(transcript.turns)}
    contexts = []
    for s in sentences:
        i = index[s.turn_id]
        previous = transcript.turns[i - 1].text if i else None
        contexts.append(preceding_context(previous, transcript.turns[i].text, s.start))
    return contexts


@dataclass(frozen=True)
class SegmentedTranscript:
    """A transcript cut into sentences; `taggable` are those the tagger will label."""

    transcript: Transcript
    sentences: list[Sentence]
    taggable: list[Sentence]


def segment_for_tagging(transcript: Transcript, workers: Workers) -> SegmentedTranscript:
    segmenter = workers.segmenter
    with workers.segment_lock:
        sentences = segment_transcript(transcript, segmenter, workers.config.tag.tag_roles)
    return SegmentedTranscript(transcript, sentences, [s for s in sentences if s.taggable])


def tag_transcripts(items: Sequence[SegmentedTranscript], workers: Workers) -> list[TranscriptPart]:
    """Tag the sentences of `items` and build each transcript's part.

    A tagger whose labels do not depend on what else a call holds (`batch_invariant`: the
    shipped model in bfloat16) tags them together, one call per SENTENCES_PER_CALL
    sentences: fewer, fuller batches. Any other tags each transcript on its own: float32's
    logits move (by up to 2e-6) with the number of rows in a batch and int8's with the
    batch's activation scale, so a transcript's labels would depend on which transcripts a
    run happened to group with it (the lanes group by timing) and corpora would not be
    byte-reproducible. Measured on PriMock57's 57 consultations, one transcript per call
    cost int8 and float32 nothing (1.00x, 0.96x) and bfloat16 6% (docs/performance.md).
    """
    if not any(item.taggable for item in items):  # nothing to tag: the model is not loaded
        return [build_part(item, {}, windowed=0) for item in items]
    tagger = workers.tagger
    calls = [list(items)] if batch_invariant(tagger) else [[item] for item in items]
    return [part for call in calls for part in _tag_together(call, tagger, workers)]


def _tag_together(items: Sequence[SegmentedTranscript], tagger: Tagger, workers: Workers) -> list[TranscriptPart]:
    """One tagger call per SENTENCES_PER_CALL sentences of `items`, and each transcript's part."""
    texts = [strip_markup(s.text) for item in items for s in item.taggable]
    contexts = [c for item in items for c in sentence_contexts(item.transcript, item.taggable)]
    predictions: list[SentencePrediction] = []
    windowed: list[bool] = []
    with workers.tagging():
        for start in range(0, len(texts), SENTENCES_PER_CALL):
            stop = start + SENTENCES_PER_CALL
            labels, long = predict_with_windows(tagger, texts[start:stop], contexts[start:stop])
            predictions.extend(labels)
            windowed.extend(long)
    parts, offset = [], 0
    for item in items:
        end = offset + len(item.taggable)
        by_id = dict(zip((s.sentence_id for s in item.taggable), predictions[offset:end]))
        parts.append(build_part(item, by_id, windowed=sum(windowed[offset:end])))
        offset = end
    return parts


def build_part(item: SegmentedTranscript, predictions: dict[str, SentencePrediction], windowed: int) -> TranscriptPart:
    """The cached result of one transcript: its turns with their sentences and labels."""
    by_turn: dict[str, list[PartSentence]] = {}
    for s in item.sentences:
        by_turn.setdefault(s.turn_id, []).append(
            PartSentence(start=s.start, end=s.end, taggable=s.taggable, prediction=predictions.get(s.sentence_id)))
    transcript = item.transcript
    turns = tuple(PartTurn(speaker=t.speaker_id, text=t.text, start_time=t.start_time, end_time=t.end_time,
                           markup=t.markup, sentences=tuple(by_turn.get(t.turn_id, ())))
                  for t in transcript.turns)
    return TranscriptPart(source_format=transcript.source_format, encoding=transcript.encoding,
                          skipped=transcript.skipped, turns=turns, windowed=windowed)


def process_transcript(transcript: Transcript, workers: Workers) -> TranscriptPart:
    """Segment and tag one transcript (the expensive step, done only for new keys)."""
    return tag_transcripts([segment_for_tagging(transcript, workers)], workers)[0]


def records_of(transcript_id: str, part: TranscriptPart, speakers: SpeakerTable) -> Iterator[tuple[str, list[SentenceRecord]]]:
    """(turn text, sentence records) per turn, with ids and speaker metadata applied."""
    for index, turn in enumerate(part.turns):
        speaker = speakers.lookup(transcript_id, turn.speaker)
        turn_id = f"{transcript_id}/t{index:04d}"
        rows = []
        for s_index, s in enumerate(turn.sentences):
            p = s.prediction
            # built from a part that was validated when read: no second validation per row
            rows.append(SentenceRecord.model_construct(
                transcript_id=transcript_id, turn_id=turn_id, sentence_id=f"{turn_id}/s{s_index:03d}",
                speaker_id=turn.speaker, role=speaker.role, speaker_known=speaker.known,
                attributes=dict(sorted(speaker.attributes.items())), text=turn.text[s.start:s.end], start=s.start,
                end=s.end, turn_start=turn.start_time, turn_end=turn.end_time, tagged=p is not None,
                stance=p.stance if p else None, stance_probs=p.stance_probs if p else None,
                emotions=p.emotions if p else None, emotion_probs=p.emotion_probs if p else None,
                affect_focus=p.affect_focus if p else None, affect_focus_prob=p.affect_focus_prob if p else None,
            ))
        yield turn.text, rows


# -- the steps ---------------------------------------------------------------------------

def begin_run(out_dir: Path) -> Path:
    """Prepare `out_dir` for a run (call it holding the corpus lock): private folders, and
    the temp files of a killed run removed. Returns the parts folder."""
    ensure_private_dir(out_dir)
    state = ensure_private_dir(out_dir / STATE_DIR)
    parts_dir = ensure_private_dir(state / PARTS_DIR)
    removed = remove_stale_temp_files(out_dir)
    if removed:
        logger.info("removed %d temp files left by an interrupted run", removed)
    return parts_dir


def plan_units(inputs: Sequence[Path]) -> list[PlannedUnit]:
    """The transcripts under `inputs` in run order; a repeated transcript id is marked (it
    is rejected, the first one is kept). Reads folder listings only."""
    seen: set[str] = set()
    planned = []
    for unit in discover_inputs(inputs):
        planned.append(PlannedUnit(unit=unit, duplicate=unit.transcript_id in seen))
        seen.add(unit.transcript_id)
    return planned


def rejected_result(unit: InputUnit, content_hash: str, error: PipelineError) -> UnitResult:
    return UnitResult(entry=InputEntry(
        transcript_id=unit.transcript_id, paths=[str(p) for p in unit.paths], sha256=content_hash,
        status="rejected", error_code=error.code, error=error.render()))


def read_error(unit: InputUnit, error: OSError, attempts: int = 1) -> PipelineError:
    """A PipelineError for an OSError while reading an input (no text in it)."""
    tries = f" after {attempts} tries" if attempts > 1 else ""
    return PipelineError(f"cannot read the input ({type(error).__name__}: errno {error.errno}){tries}",
                         path=unit.display_path, hint="check the file exists and is readable")


@dataclass(frozen=True)
class NewUnit:
    """A transcript read and keyed whose key has no part yet: it must be segmented and tagged."""

    planned: PlannedUnit
    content_hash: str
    key: str
    transcript: Transcript


def open_unit(planned: PlannedUnit, context: RunContext, speakers: SpeakerTable, *,
              raise_transient: bool = False) -> UnitResult | NewUnit:
    """Hash and read one transcript and look up its part: a UnitResult when the part is
    cached or the input is bad (never raises a PipelineError), else the NewUnit to process
    (pseudonymised already when the run pseudonymises).

    With `raise_transient`, an OSError that may go away (`is_transient`) is raised so the
    caller can retry; otherwise every OSError is recorded as a rejected input.
    """
    unit = planned.unit
    content_hash = ""
    try:
        content_hash = unit.content_hash()
        if planned.duplicate:
            raise PipelineError(f"transcript id {unit.transcript_id!r} is used by another input",
                                path=unit.display_path, hint="rename one of the files")
        transcript = build_transcript(read_raw(unit, context.config.ingest), speakers)
        tagged_speakers = [s.speaker_id for s in transcript.speakers.values() if s.role in context.config.tag.tag_roles]
        key = recompute_key(content_hash, context.model_ref, context.schema_ref, context.recompute_hash,
                            context.code_version, tagged_speakers)
        part = read_part(context.parts_dir, key)
        if part is None and context.pseudonym is not None:  # before anything of this transcript is written
            transcript = pseudonymise_for_run(transcript, context.pseudonym)
    except PipelineError as error:
        logger.warning("rejected %s", error.render())
        return rejected_result(unit, content_hash, error)
    except OSError as error:
        if raise_transient and is_transient(error):
            raise
        return rejected_result(unit, content_hash, read_error(unit, error))
    if part is None:
        return NewUnit(planned=planned, content_hash=content_hash, key=key, transcript=transcript)
    return unit_result(planned, content_hash, key, part, speakers, was_new=False)


def store_unit(new: NewUnit, part: TranscriptPart, context: RunContext, speakers: SpeakerTable, *,
               raise_transient: bool = False) -> UnitResult:
    """Cache the part of a transcript processed in this run; its result. A part that cannot
    be written rejects the transcript (this run only: the next run processes it again);
    with `raise_transient`, a transient OSError is raised instead, for the caller to retry."""
    try:
        write_part(context.parts_dir, new.key, part)
    except OSError as error:
        if raise_transient and is_transient(error):
            raise
        failure = PipelineError(f"cannot store its result ({type(error).__name__}: errno {error.errno})",
                                path=context.parts_dir, hint="check the corpus folder is writable and has space")
        logger.warning("rejected %s: %s", new.planned.unit.display_path, failure.render())
        return rejected_result(new.planned.unit, new.content_hash, failure)
    return unit_result(new.planned, new.content_hash, new.key, part, speakers, was_new=True)


def unit_result(planned: PlannedUnit, content_hash: str, key: str, part: TranscriptPart, speakers: SpeakerTable,
                *, was_new: bool) -> UnitResult:
    unit = planned.unit
    entry = InputEntry(
        transcript_id=unit.transcript_id, paths=[str(p) for p in unit.paths], sha256=content_hash, status="ok",
        key=key, source_format=part.source_format, encoding=part.encoding, turns=len(part.turns),
        sentences=part.sentence_count, tagged=part.tagged_count, skipped_cues=part.skipped,
        # from the part: its labels are the pseudonymised ones when pseudonymising
        unknown_speakers=sorted({t.speaker for t in part.turns if not speakers.lookup(unit.transcript_id, t.speaker).known}),
    )
    return UnitResult(entry=entry, was_new=was_new, tagged_now=part.tagged_count if was_new else 0,
                      windowed=part.windowed)


def annotate_unit(planned: PlannedUnit, context: RunContext, speakers: SpeakerTable, workers: Workers, *,
                  raise_transient: bool = False) -> UnitResult:
    """Annotate one transcript: reuse its part when its key is known, else segment, tag and
    write the part. A bad input gives a rejected result (never raises a PipelineError);
    `raise_transient` as in `open_unit`."""
    opened = open_unit(planned, context, speakers, raise_transient=raise_transient)
    if isinstance(opened, UnitResult):
        return opened
    logger.debug("processing %s", planned.transcript_id)
    return store_unit(opened, process_transcript(opened.transcript, workers), context, speakers,
                      raise_transient=raise_transient)


def retrying(attempt: Callable[[bool], Result], display_path: str, retry_delays: Sequence[float] = (0.5, 2.0),
             sleep: Callable[[float], None] = time.sleep) -> Result:
    """`attempt(raise_transient)`, tried again after a transient I/O error (once per delay)."""
    for tries, delay in enumerate([*retry_delays, None], start=1):
        try:
            return attempt(delay is not None)
        except OSError as error:  # transient, and tries are left
            logger.warning("transient %s reading %s (try %d), retrying", type(error).__name__, display_path, tries)
            sleep(delay or 0.0)
    raise AssertionError("unreachable")  # pragma: no cover


def assemble_corpus(context: RunContext, results: Sequence[UnitResult], speakers: SpeakerTable,
                    started: datetime, *, orchestrator: str = "none", flow_run_id: str | None = None,
                    files_writer: CorpusFilesWriter | None = None) -> RunSummary:
    """Write the corpus files, the manifest and run.json from the parts of `results`, drop
    parts no longer used, and return the run summary. Call it holding the corpus lock.
    `files_writer`: the process that has been writing the corpus files during the run
    (`annotate_corpus`), told here to publish them or to drop them."""
    entries = [r.entry for r in results]
    counts = _write_outputs(context, entries, speakers, files_writer)
    _prune_parts(context.parts_dir, {e.key for e in entries if e.key})
    finished = datetime.now(UTC)
    ok = [r for r in results if r.entry.status == "ok"]
    summary = RunSummary(
        started=started.isoformat(timespec="seconds"), finished=finished.isoformat(timespec="seconds"),
        duration_s=round((finished - started).total_seconds(), 3), model=context.model_ref,
        transcripts_total=len(results), transcripts_processed=sum(r.was_new for r in ok),
        transcripts_skipped=sum(not r.was_new for r in ok),
        transcripts_failed=len(results) - len(ok), sentences_tagged=sum(r.tagged_now for r in ok),
        sentences_windowed=sum(r.windowed for r in ok),
        rejected=[{"transcript_id": e.transcript_id, "code": e.error_code or "", "error": e.error or ""}
                  for e in entries if e.status == "rejected"],
        orchestrator=orchestrator, flow_run_id=flow_run_id,
        **counts, **_pseudonym_record(context),
    )
    write_bytes_atomic(context.out_dir / RUN_RECORD, json.dumps(summary.model_dump(), indent=2).encode() + b"\n")
    return summary


def _pseudonym_record(context: RunContext) -> dict[str, Any]:
    if context.pseudonym is None:
        return {}
    residuals = audit_corpus(context.out_dir, context.pseudonym.key_path)
    for sentence_id, kind in residuals:
        logger.warning("pseudonymisation: a %s the key knows is still in %s", kind, sentence_id)
    return {"pseudonymised": True, "pseudonym_key": str(context.pseudonym.key_path),
            "pseudonym_key_fingerprint": context.pseudonym.fingerprint, "pseudonym_residuals": len(residuals)}


# -- the direct path ---------------------------------------------------------------------

#: sentences a lane gathers before it tags them in one call. On PriMock57 (57
#: consultations, two lanes) groups of 512-1024 were as fast as each other and faster
#: than one transcript per call (about 200 sentences); larger groups leave one lane
#: idle longer at the end of a run (docs/performance.md)
SENTENCES_PER_GROUP = 768


def annotate_corpus(inputs: Sequence[Path], out_dir: Path, config: RunConfig, source: TaggerSource,
                    speakers: SpeakerTable, progress: Progress | None = None,
                    segmenter: Segmenter | None = None, retry_delays: Sequence[float] = (0.5, 2.0)) -> RunSummary:
    """Annotate every transcript under `inputs` into the corpus folder `out_dir`.

    `orchestration.max_workers` lanes (pipeline.lanes) each read and segment transcripts
    until they hold SENTENCES_PER_GROUP sentences to tag, then tag them in one call, the
    tagger's threads shared among the lanes.
    """
    started = datetime.now(UTC)
    ensure_private_dir(out_dir)
    # the corpus files are written by a forked process while the lanes tag (Linux): forked
    # first, so that it holds neither the lock nor anything the run opens
    with corpus_files_writer(_write_corpus_files) as files_writer, corpus_lock(out_dir):
        begin_run(out_dir)
        pseudonym, speakers = begin_pseudonymisation(config.pseudonymise, out_dir, speakers)
        context = RunContext(out_dir=out_dir, config=config, model_ref=source.model_ref, schema_ref=source.schema.ref,
                             pseudonym=pseudonym)
        workers = Workers(config, source, segmenter)
        planned = plan_units(inputs)
        if files_writer is not None:
            files_writer.begin(sorted(p.transcript_id for p in planned if not p.duplicate), context, speakers)
        done = 0

        def prepare(item: PlannedUnit) -> UnitResult | Ready[tuple[NewUnit, SegmentedTranscript]]:
            opened = retrying(lambda raise_transient: open_unit(item, context, speakers, raise_transient=raise_transient),
                              item.unit.display_path, retry_delays)
            if isinstance(opened, UnitResult):
                return opened
            logger.debug("processing %s", item.transcript_id)
            segmented = segment_for_tagging(opened.transcript, workers)
            return Ready((opened, segmented), size=len(segmented.taggable))

        def finish(group: list[tuple[NewUnit, SegmentedTranscript]]) -> list[UnitResult]:
            logger.debug("tagging %d sentences of %d transcripts", sum(len(s.taggable) for _, s in group), len(group))
            parts = tag_transcripts([segmented for _, segmented in group], workers)
            return [store_unit(new, part, context, speakers) for (new, _), part in zip(group, parts)]

        def report(index: int, result: UnitResult) -> None:
            nonlocal done
            done += 1
            if files_writer is not None and not planned[index].duplicate:
                files_writer.add(result.entry, new=result.was_new)
            if progress:
                progress(result.transcript_id, done, len(planned))

        lanes = max(1, config.orchestration.max_workers)
        with long_lived_objects_frozen(), workers.in_lanes(lanes):
            results = run_lanes(planned, lanes, SENTENCES_PER_GROUP, prepare, finish, report)
        return assemble_corpus(context, results, speakers, started, files_writer=files_writer)


# -- assembly ----------------------------------------------------------------------------

def _load_part(context: RunContext, entry: InputEntry) -> TranscriptPart:
    part = read_part(context.parts_dir, entry.key or "")
    if part is None:
        raise CorpusError(f"the cached result of {entry.transcript_id!r} vanished during the run",
                          path=context.parts_dir, hint="rerun the same command: it is recomputed")
    return part


def assembly_key(context: RunContext, entries: Sequence[InputEntry], speakers: SpeakerTable) -> str:
    """sha256 of everything the corpus files and manifest are made from: every input's entry
    (its part's recompute key among them), the model, schema, config, code version and
    speaker table. The same key means the same output bytes."""
    material = json.dumps({
        "inputs": sorted((e.model_dump(mode="json") for e in entries), key=lambda e: (e["transcript_id"], e["paths"])),
        "model": context.model_ref, "schema": context.schema_ref, "config": context.recompute_hash,
        "code": context.code_version, "speakers": speakers.model_dump(mode="json"),
    }, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _unchanged_counts(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The counts of the corpus already in `out_dir` when it was assembled from exactly the
    same things (`key`) and its files are intact; None when it must be written again."""
    try:
        previous = read_manifest(out_dir)
    except CorpusError:
        return None
    if previous is None or previous.assembly_key != key or previous.counts is None:
        return None
    return previous.counts if not output_problems(out_dir, previous) else None


def _write_outputs(context: RunContext, entries: list[InputEntry], speakers: SpeakerTable,
                   files_writer: CorpusFilesWriter | None = None) -> dict[str, Any]:
    """Write the corpus files and the manifest from the parts of `entries`; nothing is
    rewritten when the corpus already there was made from the same things."""
    key = assembly_key(context, entries, speakers)
    unchanged = _unchanged_counts(context.out_dir, key)
    if unchanged is not None:
        if files_writer is not None:
            files_writer.drop()
        logger.info("nothing changed since the corpus was written: outputs left as they are")
        return unchanged
    counts = files_writer.publish() if files_writer is not None else None
    if counts is None:
        counts = _write_corpus_files(context, speakers, sorted((e for e in entries if e.status == "ok"),
                                                              key=lambda e: e.transcript_id))
    _write_manifest(context, entries, key, counts)
    return counts


def _write_corpus_files(context: RunContext, speakers: SpeakerTable, ok_entries: Iterable[InputEntry]
                        ) -> dict[str, Any]:
    """Stream sentences.jsonl, sentences.parquet and docs.spacy from the parts of
    `ok_entries`, taken in corpus order (one transcript in memory at a time); what they hold.
    One pass feeds all three files, so each part is read, and its records built, once."""
    out_dir = context.out_dir
    stance, emotions = Counter[str](), Counter[str]()
    totals = {"turns": 0, "sentences": 0, "affect": 0}
    with (sentences_jsonl_writer(out_dir / SENTENCES_JSONL) as add_rows,
          sentences_parquet_writer(out_dir / SENTENCES_PARQUET) as add_transcript,
          docbin_writer(out_dir / DOCBIN) as add_turn):
        for entry in ok_entries:
            transcript_rows: list[SentenceRecord] = []
            for text, rows in records_of(entry.transcript_id, _load_part(context, entry), speakers):
                totals["turns"] += 1
                totals["sentences"] += len(rows)
                for row in rows:
                    if row.tagged:
                        stance[row.stance or ""] += 1
                        emotions.update(row.emotions or [])
                        totals["affect"] += bool(row.affect_focus)
                add_rows(rows)
                add_turn(text, rows)
                transcript_rows.extend(rows)
            add_transcript(transcript_rows)
    return {"turns": totals["turns"], "sentences": totals["sentences"], "stance_counts": dict(sorted(stance.items())),
            "emotion_counts": dict(sorted(emotions.items())), "affect_focus_count": totals["affect"]}


def _write_manifest(context: RunContext, entries: list[InputEntry], key: str, counts: dict[str, Any]) -> None:
    """The manifest, written last: it lists the corpus files with their sha256."""
    config = context.config
    segmentation = dict(config.segment.model_dump(mode="json"), tag_roles=list(config.tag.tag_roles))
    manifest = Manifest(code_version=context.code_version, model=context.model_ref, label_schema=context.schema_ref,
                        config_hash=config.recompute_hash(), segmentation=segmentation,
                        inputs=sorted(entries, key=lambda e: (e.transcript_id, e.paths)),
                        outputs=describe_outputs(context.out_dir, [SENTENCES_JSONL, SENTENCES_PARQUET, DOCBIN]),
                        assembly_key=key, counts=counts)
    write_manifest(context.out_dir, manifest)


def _prune_parts(parts_dir: Path, keep: set[str]) -> None:
    names = {f"{k[:40]}.json" for k in keep}
    for path in parts_dir.glob("*.json"):
        if path.name not in names:
            path.unlink(missing_ok=True)
