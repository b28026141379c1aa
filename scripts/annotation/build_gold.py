"""Build data/annotation/gold.jsonl from the pool, the annotators' labels and adjudication.

- gold label = the first annotator's label, replaced by the adjudicated label where one exists;
- split = models.data.assign_split(transcript): whole transcripts go to one split;
- text = what the model reads (transcriber markup removed, as at run time), context = the
  talk before it, by the pipeline's own function;
- agreement (Cohen's kappa per layer) is computed on the double-labelled items from the
  two independent first-pass labels, before any adjudication, and written to
  data/annotation/agreement.json.
"""
from __future__ import annotations

import collections
import json
import math
import sys
from pathlib import Path

from sklearn.metrics import cohen_kappa_score

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from models.data import assign_split
from pipeline.context import preceding_context
from pipeline.ingest.markup import strip_markup

ANNOTATION = REPO / "data" / "annotation"
EMOTIONS = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _agreement(first: dict, second: dict) -> dict:
    """Cohen's kappa per layer between two independent first-pass annotations."""
    both = sorted(set(second) & set(first))
    result: dict = {"items": len(both), "note": "two independent first-pass annotations, before adjudication"}
    if not both:
        return result

    def kappa(get) -> float | None:  # type: ignore[no-untyped-def]
        value = cohen_kappa_score([get(first[i]) for i in both], [get(second[i]) for i in both])
        return None if math.isnan(value) else round(value, 3)  # NaN: neither annotator used the label

    result["stance_kappa"] = kappa(lambda r: r["stance"])
    result["stance_percent_agreement"] = round(sum(first[i]["stance"] == second[i]["stance"] for i in both) / len(both), 3)
    result["affect_focus_kappa"] = kappa(lambda r: r["affect_focus"])
    result["any_emotion_kappa"] = kappa(lambda r: bool(r["emotions"]))
    result["emotion_kappa"] = {e: kappa(lambda r, e=e: e in r["emotions"]) for e in EMOTIONS}
    return result


def text_of(item: dict) -> str:
    """What the model reads for the sentence: in transcripts, the sentence with transcriber
    markup ("[laughs]", "<INAUDIBLE_SPEECH/>") removed, as `pipeline.annotate` gives it to
    the tagger at run time; single texts (GoEmotions, EmoBank, PEI) as they are, since
    GoEmotions' "[NAME]" is a word there, not markup. (gold.jsonl as committed, 1.2.0's
    training data, was built before this and keeps the markup in 297 texts.)"""
    return item["sentence"] if item["speaker"] == "writer" else strip_markup(item["sentence"])


def context_of(item: dict) -> str:
    """What the model reads before the sentence: the same function the pipeline uses, on
    the previous turn (its "speaker: " prefix dropped) and this turn up to the sentence."""
    previous = item["prev_turn"].split(": ", 1)[1] if ": " in item["prev_turn"] else item["prev_turn"]
    start = max(item["turn"].find(item["sentence"]), 0)
    return preceding_context(previous, item["turn"], start)


def main() -> None:
    pool = {}
    for path in sorted((ANNOTATION / "pool").glob("batch*.jsonl")):
        for item in read_jsonl(path):
            pool[item["item_id"]] = item
    first, annotator_of = {}, {}
    for path in sorted((ANNOTATION / "labels").glob("batch*_annotator*.jsonl")):
        annotator = path.stem.split("_")[-1]
        for row in read_jsonl(path):
            first[row["item_id"]] = row
            annotator_of[row["item_id"]] = annotator
    double_sets = {}
    for path in sorted((ANNOTATION / "labels").glob("double*_annotator*.jsonl")):
        double_sets[path.stem.rsplit("_", 1)[0]] = {row["item_id"]: row for row in read_jsonl(path)}
    adjudicated = {}
    for path in sorted(ANNOTATION.glob("adjudication*.jsonl")):
        for row in read_jsonl(path):
            adjudicated[row["item_id"]] = row
    missing = sorted(set(pool) - set(first))
    if missing and "--skip-unlabelled" in sys.argv:  # a batch still being annotated
        print(f"skipping {len(missing)} pool items with no label yet", file=sys.stderr)
        pool = {k: v for k, v in pool.items() if k in first}
    elif missing:
        raise SystemExit(f"{len(missing)} pool items have no label yet, e.g. {missing[:3]} (--skip-unlabelled)")

    agreement = {name: _agreement(first, second) for name, second in double_sets.items()}
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    with open(ANNOTATION / "gold.jsonl", "w", encoding="utf-8") as out:
        for item_id in sorted(pool):
            item, label = pool[item_id], adjudicated.get(item_id, first[item_id])
            split = assign_split(item["transcript"])
            record = {
                "id": item_id, "text": text_of(item), "source": item["source"], "transcript": item["transcript"],
                "speaker": item["speaker"], "split": split, "stance": label["stance"],
                "emotions": sorted(label["emotions"]), "affect_focus": bool(label["affect_focus"]),
                "annotator": annotator_of[item_id], "adjudicated": item_id in adjudicated,
                "context": context_of(item),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[split][f"stance={record['stance']}"] += 1
            counts[split]["affect_focus=yes"] += record["affect_focus"]
            counts[split]["any_emotion"] += bool(record["emotions"])
            counts[split]["sentences"] += 1
            counts["all"][f"source={item['source']}"] += 1
    summary = {"agreement": agreement, "adjudicated_items": len(adjudicated),
               "counts": {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}}
    (ANNOTATION / "agreement.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
