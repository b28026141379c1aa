"""Loading the int8 tagger with its cache filled: without the torch network vs with it.

    .venv/bin/python benchmarks/bench_load.py [--rounds 5]

Each load runs in a fresh process (imports count: a run pays them once), the two ways
alternating round by round, both reading the same int8 cache entry (filled first):
- "cached, no network": `models.registry.load_tagger(precision="int8")`, which takes the
  int8 model from the cache without building the torch network (models.onnx_int8.load_int8);
- "cached, network built": what loading did before: the model folder loaded whole
  (`load_model_dir`: transformers' BERT code imported, weights read and checked), then the
  same cache entry.
Each process times its imports and load, then one sentence tagged (the first call makes
the ONNX Runtime session). Prints the medians and their ratio; the last line is RESULT {json}.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
start = time.perf_counter()
way = sys.argv[1]
from models.registry import load_tagger, resolve_ref
from models.tagger import TransformerTagger
if way == "no-network":
    tagger = load_tagger(None, precision="int8")
else:
    from models.artifact import MANIFEST_FILE, load_model_dir
    from models.onnx_cache import cache_key, cached
    from models.onnx_int8 import INT8_SCHEME, OnnxInt8Net
    _, folder = resolve_ref(None)
    loaded = load_model_dir(folder)
    model = cached(cache_key((folder / MANIFEST_FILE).read_bytes(), INT8_SCHEME),
                   lambda: sys.exit("the int8 cache holds no entry for this model"))
    loaded.net = OnnxInt8Net(loaded.schema, model)
    tagger = TransformerTagger(loaded, precision="int8")
loaded_at = time.perf_counter()
tagger.predict(["I felt we were finally listened to."])
print(loaded_at - start, time.perf_counter() - start)
"""


def timed_load(way: str) -> tuple[float, float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, way], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True)
    load, first = done.stdout.split()
    return float(load), float(first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    timed_load("no-network")  # fills the int8 cache if it is empty (not counted)
    ways = ("no-network", "network")
    runs: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    for round_ in range(args.rounds):
        for way in ways if round_ % 2 == 0 else ways[::-1]:
            runs[way].append(timed_load(way))
            print(f"round {round_ + 1} {way:10s}: loaded in {runs[way][-1][0]:.2f}s, "
                  f"first sentence tagged at {runs[way][-1][1]:.2f}s", flush=True)
    medians = {way: (statistics.median(r[0] for r in runs[way]), statistics.median(r[1] for r in runs[way]))
               for way in ways}
    for way in ways:
        print(f"median {way:10s}: load {medians[way][0]:.2f}s, first sentence {medians[way][1]:.2f}s")
    ratio = medians["network"][1] / medians["no-network"][1]
    print(f"to the first sentence: network built / no network = {ratio:.2f}x")
    print("RESULT " + json.dumps({"rounds": args.rounds, "median_load_s": {w: round(m[0], 3) for w, m in medians.items()},
                                  "median_first_sentence_s": {w: round(m[1], 3) for w, m in medians.items()},
                                  "ratio_first_sentence": round(ratio, 3)}))


if __name__ == "__main__":
    main()
