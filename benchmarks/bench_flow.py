"""The default path (`epistance annotate`, a Prefect flow) against the direct path, with the
shipped model on PriMock57.

    .venv/bin/python benchmarks/bench_flow.py [--rounds 2] [--quick]

Three variants of the real command, each in a fresh process into a new folder, interleaved
round by round (fastest round of each counts; single runs vary by about 10% here):

- direct: `--no-prefect`, the core's lanes (pipeline.lanes);
- flow: the default, one task per transcript on two threads that tag at once, the
  tagger's threads shared between them;
- flow, tasks taking turns: the same flow with a tagger that does not offer `lanes`, so
  each task's call has the tagger to itself on every core (the flow before tagging at once).

Prints the run's own duration (run.json: from the lock to the manifest, model loading
included) and the command's wall time (plus process start and Prefect's temporary API),
and their ratios. The last line is RESULT {json}.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "primock57" / "transcripts"
EPISTANCE = str(ROOT / ".venv" / "bin" / "epistance")
QUICK_FILES = 12  # six consultations, doctor and patient


class _TakingTurns:
    """The shipped tagger without `lanes`: callers take turns on it (pipeline.tag.supports_lanes)."""

    def __init__(self, tagger: Any) -> None:
        self._tagger = tagger
        self.model_ref, self.schema = tagger.model_ref, tagger.schema

    def predict(self, texts: Any, contexts: Any = None) -> Any:
        return self._tagger.predict(texts, contexts)

    def predict_windowed(self, texts: Any, contexts: Any = None) -> Any:
        return self._tagger.predict_windowed(texts, contexts)

    @property
    def batch_invariant(self) -> bool:
        return bool(getattr(self._tagger, "batch_invariant", False))


class TurnTakingSource:
    """A TaggerSource (the CLI's --tagger-factory) giving the shipped model without `lanes`."""

    def __init__(self, ref: str | None = None, **options: Any) -> None:
        from pipeline.tagger_source import RegistryTaggerSource

        self._source = RegistryTaggerSource(ref, **options)
        self.model_ref, self.schema = self._source.model_ref, self._source.schema

    def load(self) -> _TakingTurns:
        return _TakingTurns(self._source.load())


def run_once(inputs: Path, out: Path, extra: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(the run's own duration, the command's wall time) in seconds."""
    started = time.perf_counter()
    done = subprocess.run([EPISTANCE, "annotate", str(inputs), "--out", str(out), *extra], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"epistance annotate {' '.join(extra)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return json.loads((out / "run.json").read_text())["duration_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_FILES // 2} consultations only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="epistance-bench-flow-"))
    inputs = DATA
    if args.quick:
        inputs = work / "inputs"
        inputs.mkdir()
        for path in sorted(DATA.glob("*.TextGrid"))[:QUICK_FILES]:
            shutil.copy(path, inputs / path.name)
    config = work / "run.toml"
    config.write_text(f'[orchestration]\nprefect_home = "{work / "prefect"}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", DO_NOT_TRACK="1")
    variants = {
        "direct (--no-prefect, lanes)": ["--no-prefect"],
        "flow (default), tasks tag at once": [],
        "flow, tasks taking turns": ["--tagger-factory", "benchmarks.bench_flow:TurnTakingSource"],
    }
    run_once(inputs, work / "warm-up", ["--config", str(config)], env)  # Prefect's database, disk caches
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_ in range(args.rounds):
        for n, (name, extra) in enumerate(variants.items()):
            out = work / f"out-{round_}-{n}"
            times[name].append(run_once(inputs, out, ["--config", str(config), *extra], env))
            print(f"round {round_ + 1}: {name}: run {times[name][-1][0]:.1f} s, wall {times[name][-1][1]:.1f} s",
                  flush=True)
            shutil.rmtree(out)
    best = {name: (min(r for r, _ in runs), min(w for _, w in runs)) for name, runs in times.items()}
    sentences = json.loads((work / "warm-up" / "run.json").read_text())["sentences"]
    print(f"\n{inputs.name if not args.quick else 'quick subset'}: {sentences} sentences; fastest of {args.rounds} rounds")
    print(f"{'variant':38} {'run':>8} {'wall':>8}")
    for name, (run, wall) in best.items():
        print(f"{name:38} {run:7.1f}s {wall:7.1f}s")
    direct, flow, turns = (best[name] for name in variants)
    ratios = {"flow_over_direct_run": flow[0] / direct[0], "flow_over_direct_wall": flow[1] / direct[1],
              "turns_over_flow_run": turns[0] / flow[0], "turns_over_flow_wall": turns[1] / flow[1]}
    print(f"flow / direct: {ratios['flow_over_direct_run']:.2f} (run), {ratios['flow_over_direct_wall']:.2f} (wall)")
    print(f"taking turns / at once: {ratios['turns_over_flow_run']:.2f} (run), {ratios['turns_over_flow_wall']:.2f} (wall)")
    shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps({"sentences": sentences, "rounds": args.rounds,
                                  **{k: round(v, 3) for k, v in ratios.items()},
                                  "seconds": {name: {"run": run, "wall": round(wall, 2)} for name, (run, wall) in best.items()}}))


if __name__ == "__main__":
    main()
