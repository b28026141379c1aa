"""Streaming memory: peak RSS of `epistance annotate` on a corpus and on one ten times larger.

    .venv/bin/python benchmarks/bench_memory.py [--copies 10] [--base 57] [--flow]

The corpus: the PriMock57 consultations written out as plain-text transcripts
("Doctor: ..." / "Patient: ..." lines, turns in time order). The larger corpus holds
`--copies` copies of each; every copy starts with its own line so that its content hash
differs and it is segmented, tagged and written like a new interview (identical files
would share one cached result). Each run is a fresh `epistance annotate --no-prefect`
process (with --flow: the default Prefect flow) with the default run config and model;
its peak RSS (of the largest process: the command, not Prefect's API server) is read with
getrusage in a wrapper process of its own. The tagger is loaded once before both runs, so
that neither pays for filling the int8 cache. The last line is RESULT {json}.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "primock57" / "transcripts"

MEASURE = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)
"""

# Loads the run's tagger once, so that the int8 network is in its cache (models.onnx_cache)
# before either measured run: otherwise the first run alone pays the export's extra memory.
WARM_CACHE = """
from models.registry import load_tagger
from pipeline.config import load_run_config
tag = load_run_config().tag
load_tagger(tag.model, batch_size=tag.batch_size, precision=tag.precision)
"""


def write_corpus(folder: Path, copies: int, base: int) -> int:
    """Plain-text transcripts: `copies` copies of the first `base` consultations."""
    from pipeline.ingest import discover_inputs, read_unit
    from pipeline.ingest.metadata import SpeakerTable

    folder.mkdir(parents=True)
    units = discover_inputs([DATA])[:base]
    texts = {}
    for unit in units:
        transcript = read_unit(unit, SpeakerTable())
        texts[unit.transcript_id] = "".join(f"{t.speaker_id.capitalize()}: {' '.join(t.text.split())}\n" for t in transcript.turns)
    for copy in range(copies):
        for transcript_id, text in texts.items():
            (folder / f"{transcript_id}_copy{copy:02d}.txt").write_text(f"Note: copy {copy}.\n{text}")
    return len(units) * copies


def annotate_peak(inputs: Path, out: Path, flow_config: Path | None = None) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one `epistance annotate` process: the direct path,
    or with `flow_config` (a run config) the default Prefect flow."""
    path = ["--config", str(flow_config)] if flow_config else ["--no-prefect"]
    command = [sys.executable, "-c", MEASURE, str(ROOT / ".venv" / "bin" / "epistance"), "annotate", str(inputs),
               "--out", str(out), *path]
    start = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    peak, code = done.stdout.strip().splitlines()[-1].split()
    if code not in ("0", "1"):  # 1: some inputs rejected (none expected here)
        raise SystemExit(f"annotate failed with exit code {code}:\n{done.stderr[-2000:]}")
    return float(peak), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="how many times larger the second corpus is")
    parser.add_argument("--base", type=int, default=57, help="consultations in the first corpus")
    parser.add_argument("--flow", action="store_true",
                        help="run the default Prefect flow instead of the direct path (--no-prefect)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="epistance-mem-") as tmp:
        flow_config = None
        if args.flow:  # Prefect's home in the temp folder, not in the working folder
            flow_config = Path(tmp) / "run.toml"
            flow_config.write_text(f'[orchestration]\nprefect_home = "{Path(tmp) / "prefect"}"\n')
        small_n = write_corpus(Path(tmp) / "small", 1, args.base)
        large_n = write_corpus(Path(tmp) / "large", args.copies, args.base)
        subprocess.run([sys.executable, "-c", WARM_CACHE], check=True, cwd=ROOT,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
        small_rss, small_wall = annotate_peak(Path(tmp) / "small", Path(tmp) / "small-out", flow_config)
        print(f"{small_n} transcripts: peak RSS {small_rss:.0f} MB, {small_wall:.1f}s", flush=True)
        large_rss, large_wall = annotate_peak(Path(tmp) / "large", Path(tmp) / "large-out", flow_config)
        print(f"{large_n} transcripts: peak RSS {large_rss:.0f} MB, {large_wall:.1f}s", flush=True)
        sentences = json.loads((Path(tmp) / "large-out" / "run.json").read_text())["sentences"]
    ratio = large_rss / small_rss
    print(f"peak RSS {args.copies}x corpus / 1x corpus: {ratio:.2f} (target <= 1.2)")
    print("RESULT " + json.dumps({"path": "flow" if args.flow else "direct", "transcripts": [small_n, large_n], "peak_rss_mb": [round(small_rss, 1), round(large_rss, 1)],
                                  "ratio": round(ratio, 3), "seconds": [round(small_wall, 1), round(large_wall, 1)],
                                  "sentences_large": sentences}))


if __name__ == "__main__":
    main()
