"""A fourth PriMock57 pool, chosen with epistance's own active learning (`epistance select`).

Dev tool, run once to create data/annotation/pending/pool/batch15.jsonl ... batch19.jsonl
and double_primock2.jsonl (their first 100 items, for a second, independent annotator);
pending/README.md says why they are not in gold.jsonl yet.
PriMock57 is the only real spoken clinical talk the project has, and doctors' stance was
the tagger's weakest group (docs/model.md), so more of it is annotated: sentences from
consultations of the *train* split only (dev and test consultations are never read, so
every held-out figure stays comparable), not yet in any pool. The shipped model annotates
those consultations; `pipeline.interop.select.select_sentences` picks the sentences it is
least sure of (entropy over all three layers, half the batch spread over doctor and patient,
near-duplicates of gold sentences skipped), and a seeded random share of the rest keeps the
pool close to the talk's natural mix. The model only chooses what is read; every label is
assigned by an annotator reading the sentence in its turn, by the codebook.

    .venv/bin/python scripts/annotation/make_primock_active_pool.py
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from models.data import assign_split
from models.registry import load_tagger
from pipeline.annotate import annotate_corpus
from pipeline.config import RunConfig
from pipeline.corpus_io import read_sentences
from pipeline.ingest import discover_inputs, read_unit
from pipeline.ingest.markup import strip_markup
from pipeline.ingest.metadata import SpeakerTable
from pipeline.interop.select import normalise, select_sentences
from pipeline.tag import LoadedTagger

PRIMOCK = REPO.parent / "shared" / "data" / "primock57" / "transcripts"
ANNOTATION = REPO / "data" / "annotation"
OUT = ANNOTATION / "pending" / "pool"
SELECTED, RANDOM, BATCHES, FIRST_BATCH, DOUBLE = 600, 300, 5, 15, 100


def pool_texts() -> set[tuple[str, str]]:
    """(transcript, normalised sentence) of every item in the gold pools (not this script's
    own output in pending/, so that a rerun writes the same files)."""
    seen = set()
    for path in (ANNOTATION / "pool").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            seen.add((item["transcript"], normalise(item["sentence"])))
    return seen


def main() -> None:
    rng = random.Random(1557)
    stems = sorted({p.name.rsplit("_", 1)[0] for p in PRIMOCK.glob("*.TextGrid")})
    train = [s for s in stems if assign_split(s) == "train"]
    with tempfile.TemporaryDirectory(prefix="epistance-pool-") as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for stem in train:
            for speaker in ("doctor", "patient"):
                (inputs / f"{stem}_{speaker}.TextGrid").symlink_to(PRIMOCK / f"{stem}_{speaker}.TextGrid")
        corpus = Path(tmp) / "corpus"
        # "auto": bfloat16 on the machine that made the pool; where it means float32 the
        # probabilities, and so the uncertainty ranking, can differ slightly
        annotate_corpus([inputs], corpus, RunConfig(), LoadedTagger(load_tagger(precision="auto")), SpeakerTable())
        rows = {r.sentence_id: r for r in read_sentences(corpus)}
        turns = {t.turn_id: t for unit in discover_inputs([inputs])
                 for t in read_unit(unit, SpeakerTable()).turns}
        selection = select_sentences(corpus, SELECTED, by="speaker", exclude=[ANNOTATION / "gold.jsonl"])

    already = pool_texts()
    chosen = [s.sentence_id for s in selection.selected
              if (rows[s.sentence_id].transcript_id, normalise(rows[s.sentence_id].text)) not in already]
    taken = set(chosen)
    rest = sorted(i for i, r in rows.items() if r.tagged and i not in taken and len(normalise(r.text).split()) >= 3
                  and (r.transcript_id, normalise(r.text)) not in already)
    chosen += rng.sample(rest, RANDOM)

    items = []
    for sentence_id in chosen:
        row = rows[sentence_id]
        transcript, _, number = row.turn_id.rpartition("/t")
        previous = turns.get(f"{transcript}/t{int(number) - 1:0{len(number)}d}")
        items.append({"source": "primock57", "transcript": row.transcript_id, "turn_index": int(number),
                      "speaker": row.speaker_id,
                      "prev_turn": f"{previous.speaker_id}: {strip_markup(previous.text)}" if previous else "",
                      "turn": strip_markup(turns[row.turn_id].text), "sentence": strip_markup(row.text),
                      "chosen_by": "uncertainty" if sentence_id in taken else "random"})
    rng.shuffle(items)
    for n, item in enumerate(items):
        item["item_id"] = f"r{n:05d}"
    for b in range(BATCHES):
        path = OUT / f"batch{FIRST_BATCH + b}.jsonl"
        path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items[b::BATCHES]), encoding="utf-8")
    double = OUT / "double_primock2.jsonl"  # labelled again, independently, for agreement
    double.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items[:DOUBLE]), encoding="utf-8")
    print(f"{len(train)} train consultations, {len(rows)} sentences; selected {len(taken)} by uncertainty "
          f"(mean {selection.mean_uncertainty_selected} vs {selection.mean_uncertainty_all} overall), "
          f"{RANDOM} at random; {len(items)} items in batch{FIRST_BATCH}-batch{FIRST_BATCH + BATCHES - 1}")


if __name__ == "__main__":
    main()
