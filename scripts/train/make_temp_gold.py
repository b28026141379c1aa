"""Build a provisional gold file from the annotation done so far (development only).

Joins data/annotation/labels/*.jsonl with data/annotation/pool/*.jsonl on item_id and
writes the gold JSONL format models.data.load_gold reads, with splits from
models.data.assign_split. Reads the annotation folders, never writes them; the output
goes where you say (default /tmp/epistance_gold_tmp.jsonl). Where an item was labelled
twice, the first label file in sorted order wins.

    .venv/bin/python scripts/train/make_temp_gold.py [OUT]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.data import assign_split


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/epistance_gold_tmp.jsonl")
    pool = {}
    for path in sorted((ROOT / "data/annotation/pool").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                item = json.loads(line)
                pool.setdefault(item["item_id"], item)
    rows, seen = [], set()
    for path in sorted((ROOT / "data/annotation/labels").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            lab = json.loads(line)
            iid = lab["item_id"]
            if iid in seen or iid not in pool:
                continue
            seen.add(iid)
            item = pool[iid]
            rows.append({
                "id": iid, "text": item["sentence"], "source": item["source"],
                "transcript": item["transcript"], "speaker": item["speaker"],
                "split": assign_split(item["transcript"]),
                "stance": lab.get("stance"), "emotions": lab.get("emotions"),
                "affect_focus": lab.get("affect_focus"),
            })
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    splits = {s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")}
    print(f"{len(rows)} items -> {out} {splits}")


if __name__ == "__main__":
    main()
