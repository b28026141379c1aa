"""Label Studio round trip: tasks with the model's predictions as pre-annotations and a
labelling config for the codebook's three layers out; completed annotations back in.

Export writes two files:
- `tasks.json`: a list of tasks, one per sentence, `data` = {text, context, sentence_id,
  transcript_id, speaker_id, role, group, text_sha256} and one prediction (model
  version, score = the stance probability) with three `choices` results;
- `tasks.config.xml` (beside it): the labelling config to paste into the project's
  Settings → Labeling Interface. Stance is a required single choice; emotions a
  required multiple choice with `neutral` for "no emotion"; affect focus a required
  yes/no.

Import reads Label Studio's JSON export (Export → JSON; JSON-MIN is accepted too) and
returns gold-format rows (see pipeline.interop.annotations); cancelled (skipped)
annotations are left out.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from models.labels import AFFECT_FOCUS, EMOTIONS, STANCE, LabelSchema, load_label_schema
from pipeline.atomic import write_bytes_atomic
from pipeline.corpus_io import SentenceRecord
from pipeline.interop.annotations import (
    Place,
    check_annotator,
    check_text,
    check_unique,
    gold_row,
    load_corpus_index,
    parse_labels,
)
from pipeline.interop.codebook import DEFINITIONS, LAYER_DESCRIPTIONS, LAYER_TITLES, NEUTRAL, NO, YES
from pipeline.interop.corpus import corpus_model, group_of, iter_transcripts, text_sha256
from pipeline.interop.errors import InteropError

CONTEXT_CHARS = 600
TO_NAME = "text"


@dataclass(frozen=True)
class ExportSummary:
    tasks: int
    tasks_path: Path
    config_path: Path


@dataclass(frozen=True)
class ImportSummary:
    rows: list[dict[str, Any]]
    tasks: int
    annotations: int
    skipped_cancelled: int
    skipped_unannotated: int
    annotators: dict[str, int]


def config_path_for(tasks_path: Path) -> Path:
    return tasks_path.with_name(f"{tasks_path.stem}.config.xml")


def labeling_config(schema: LabelSchema | None = None) -> str:
    """The Label Studio labelling config (XML) for the three layers of the schema."""
    from xml.sax.saxutils import quoteattr

    schema = schema or load_label_schema()

    def choices(layer: str, values: Sequence[tuple[str, str]], kind: str) -> list[str]:
        title = f"{LAYER_TITLES[layer]}: {LAYER_DESCRIPTIONS[layer]}"
        lines = [f'  <Header value={quoteattr(title)} size="5"/>',
                 f'  <Choices name="{layer}" toName="{TO_NAME}" choice="{kind}" required="true" showInline="true">']
        lines += [f"    <Choice value={quoteattr(v)} hint={quoteattr(h)}/>" for v, h in values]
        lines.append("  </Choices>")
        return lines

    lines = ['<View>',
             '  <Header value="$sentence_id · $speaker_id ($role, $group)" size="6"/>',
             '  <Text name="context" value="$context" granularity="word"/>',
             f'  <Text name="{TO_NAME}" value="$text" granularity="word"/>']
    lines += choices(STANCE, [(lab, DEFINITIONS.get((STANCE, lab), lab)) for lab in schema.layers[STANCE].labels],
                     "single-radio")
    lines += choices(EMOTIONS, [(NEUTRAL, "No emotion expressed.")]
                     + [(lab, DEFINITIONS.get((EMOTIONS, lab), lab)) for lab in schema.layers[EMOTIONS].labels],
                     "multiple")
    lines += choices(AFFECT_FOCUS, [(YES, DEFINITIONS[(AFFECT_FOCUS, YES)]), (NO, "Not about feelings.")],
                     "single-radio")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _prediction(row: SentenceRecord, model_ref: str) -> dict[str, Any]:
    def result(layer: str, values: list[str]) -> dict[str, Any]:
        return {"id": layer, "from_name": layer, "to_name": TO_NAME, "type": "choices", "value": {"choices": values}}

    score = max((row.stance_probs or {}).values(), default=0.0)
    return {"model_version": model_ref, "score": round(score, 6), "result": [
        result(STANCE, [row.stance or ""]),
        result(EMOTIONS, list(row.emotions or []) or [NEUTRAL]),
        result(AFFECT_FOCUS, [YES if row.affect_focus else NO]),
    ]}


def build_tasks(corpus_dir: Path, only: Sequence[str] | None = None, group_by: str = "profession",
                context_chars: int = CONTEXT_CHARS) -> list[dict[str, Any]]:
    """One task per sentence: all tagged sentences, or exactly those in `only`, in that order."""
    model_ref = corpus_model(corpus_dir)
    wanted = set(only) if only is not None else None
    tasks: dict[str, dict[str, Any]] = {}
    for transcript in iter_transcripts(corpus_dir):
        previous = ""
        for turn in transcript.turns:
            for row in turn.rows:
                if (wanted is None and not row.tagged) or (wanted is not None and row.sentence_id not in wanted):
                    continue
                before = f"{previous}\n{turn.speaker_id}: {turn.text[:row.start]}".strip()
                context = before[-context_chars:] if len(before) > context_chars else before
                task: dict[str, Any] = {"data": {
                    "text": row.text, "context": f"…{context}" if len(before) > context_chars else context,
                    "sentence_id": row.sentence_id, "transcript_id": row.transcript_id,
                    "speaker_id": row.speaker_id, "role": row.role, "group": group_of(row, group_by),
                    "text_sha256": text_sha256(row.text)}}
                if row.tagged:
                    task["predictions"] = [_prediction(row, model_ref)]
                tasks[row.sentence_id] = task
            previous = f"{turn.speaker_id}: {turn.text}"
    if only is None:
        return list(tasks.values())
    missing = [sid for sid in only if sid not in tasks]
    if missing:
        raise InteropError(f"{len(missing)} selected sentence id(s) are not in the corpus, first {missing[0]!r}",
                           path=corpus_dir, hint="select from the same corpus you export from")
    return [tasks[sid] for sid in dict.fromkeys(only)]


def export_labelstudio(corpus_dir: Path, tasks_path: Path, only: Sequence[str] | None = None,
                       group_by: str = "profession") -> ExportSummary:
    tasks = build_tasks(corpus_dir, only, group_by)
    write_bytes_atomic(tasks_path, json.dumps(tasks, ensure_ascii=False, indent=1).encode() + b"\n")
    config = config_path_for(tasks_path)
    write_bytes_atomic(config, labeling_config().encode())
    return ExportSummary(tasks=len(tasks), tasks_path=tasks_path, config_path=config)


# --------------------------------------------------------------------------- import


def _choices(results: list[Any], layer: str, place: Place) -> list[str] | None:
    values: list[str] | None = None
    for result in results:
        if not isinstance(result, dict) or result.get("from_name") != layer:
            continue
        found = (result.get("value") or {}).get("choices")
        if not isinstance(found, list):
            raise InteropError(f"result for '{layer}' has no list of choices", path=place.path, where=place.where)
        values = (values or []) + found
    return values


def _min_choices(value: object) -> object:
    """JSON-MIN: a single choice is a string, several are {"choices": [...]}."""
    if isinstance(value, dict) and "choices" in value:
        return value["choices"]
    if isinstance(value, str):
        return [value]
    return value


def _annotator_of(annotation: dict[str, Any]) -> str | None:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("id", who.get("email"))
    if who is None:
        who = annotation.get("annotator")
    if who is None:
        return None
    return f"labelstudio-{who}" if isinstance(who, int) else str(who)


def _completed_by_matches(annotation: dict[str, Any], wanted: str) -> bool:
    who = annotation.get("completed_by", annotation.get("annotator"))
    if isinstance(who, dict):
        return wanted in (str(who.get("id")), str(who.get("email")))
    return str(who) == wanted


def import_labelstudio(path: Path, corpus_dir: Path | None = None, annotator: str | None = None,
                       completed_by: str | None = None, source: str = "interviews",
                       schema: LabelSchema | None = None) -> ImportSummary:
    """Completed Label Studio annotations as gold-format rows, checked against the export."""
    schema = schema or load_label_schema()
    try:
        tasks = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        raise InteropError("not a readable Label Studio JSON export", path=path,
                           hint="export the project as JSON (or JSON-MIN)") from None
    if not isinstance(tasks, list):
        raise InteropError("expected a JSON list of tasks", path=path, hint="export the project as JSON")
    corpus = load_corpus_index(corpus_dir)
    rows: list[dict[str, Any]] = []
    places: list[Place] = []
    annotators: dict[str, int] = {}
    counts = {"annotations": 0, "cancelled": 0, "unannotated": 0}
    for number, task in enumerate(tasks, start=1):
        task_id = task.get("id") if isinstance(task, dict) else None
        where = f"task {number}" + (f" (id {task_id})" if task_id is not None else "")
        place = Place(path, where)
        if not isinstance(task, dict):
            raise InteropError("a task must be a JSON object", path=path, where=where)
        data = task.get("data", task)
        sentence_id, text = data.get("sentence_id"), data.get("text")
        if not isinstance(sentence_id, str) or not isinstance(text, str):
            raise InteropError("task has no data.sentence_id / data.text: was it exported by epistance?",
                               path=path, where=where, hint="import only projects made from `epistance export labelstudio`")
        place = Place(path, f"{where}, sentence {sentence_id}")
        corpus_row = check_text(sentence_id, text, data.get("text_sha256"), corpus, place)
        transcript_id = data.get("transcript_id") or (corpus_row.transcript_id if corpus_row else None)
        if not isinstance(transcript_id, str):
            raise InteropError("task has no data.transcript_id", path=path, where=place.where)
        speaker_id = data.get("speaker_id") or (corpus_row.speaker_id if corpus_row else None)
        if "annotations" in task:
            annotations = task["annotations"] or []
            if not isinstance(annotations, list):
                raise InteropError("'annotations' must be a list", path=path, where=place.where)
        elif any(layer in task for layer in (STANCE, EMOTIONS, AFFECT_FOCUS)):  # JSON-MIN
            annotations = [{"annotator": task.get("annotator"), "min": True}]
        else:
            annotations = []
        kept = 0
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise InteropError("an annotation must be a JSON object", path=path, where=place.where)
            if annotation.get("was_cancelled"):
                counts["cancelled"] += 1
                continue
            if completed_by is not None and not _completed_by_matches(annotation, completed_by):
                continue
            if annotation.get("min"):
                values = {layer: _min_choices(task.get(layer)) for layer in (STANCE, EMOTIONS, AFFECT_FOCUS)}
            else:
                results = annotation.get("result") or []
                if not isinstance(results, list):
                    raise InteropError("'result' must be a list", path=path, where=place.where)
                values = {layer: _choices(results, layer, place) for layer in (STANCE, EMOTIONS, AFFECT_FOCUS)}
            labels = parse_labels(values[STANCE], values[EMOTIONS], values[AFFECT_FOCUS], schema, place)
            if labels.empty:
                counts["unannotated"] += 1
                continue
            name = annotator or _annotator_of(annotation)
            if name is None:
                raise InteropError("no annotator recorded for this annotation", path=path, where=place.where,
                                   hint="pass --annotator NAME")
            name = check_annotator(name, place)
            rows.append(gold_row(sentence_id, text, transcript_id, speaker_id, labels, name, source))
            places.append(place)
            annotators[name] = annotators.get(name, 0) + 1
            counts["annotations"] += 1
            kept += 1
        if not kept and not annotations:
            counts["unannotated"] += 1
    check_unique(rows, places)
    return ImportSummary(rows=rows, tasks=len(tasks), annotations=counts["annotations"],
                         skipped_cancelled=counts["cancelled"], skipped_unannotated=counts["unannotated"],
                         annotators=dict(sorted(annotators.items())))
