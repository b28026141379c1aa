"""Side-by-side timings of `epistance annotate` with and without Prefect (not a test).

    .venv/bin/python tests/flows/bench_orchestration.py [INPUTS] [--metadata CSV] [--reps 3]

Runs the real command in fresh processes, interleaved, with the weight-free HashTagger
(no trained model needed): the direct core (--orchestrator none), the embedded flow (a
temporary local API server), and the flow against an already running API server; each as
a full run into a new folder and as a no-op rerun. Prints medians in seconds, and the
first run on a fresh Prefect home (database migrations) once.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
EPISTANCE = str(REPO / ".venv" / "bin" / "epistance")
FACTORY = "tests.flows.helpers:hash_tagger_source"


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inputs", nargs="?", type=Path, default=REPO / "data_samples")
    parser.add_argument("--metadata", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    metadata = args.metadata or (args.inputs / "speakers.csv" if (args.inputs / "speakers.csv").is_file() else None)
    work = Path(tempfile.mkdtemp(prefix="epistance-bench-"))
    home = work / "prefect"
    config = work / "run.toml"
    config.write_text(f'[orchestration]\nprefect_home = "{home}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PYTHONPATH"] = str(REPO)

    def command(out: Path, *extra: str) -> list[str]:
        return [EPISTANCE, "annotate", str(args.inputs), "--out", str(out), "--config", str(config),
                "--tagger-factory", FACTORY, *(["--metadata", str(metadata)] if metadata else []), *extra]

    first = timed(command(work / "first"), env, work)
    print(f"first embedded run on a fresh Prefect home (database created): {first:.1f} s")

    from pipeline.config import OrchestrationConfig
    from pipeline.flows import runtime

    runtime.configure_prefect(OrchestrationConfig(prefect_home=home))
    server_url = runtime.start_api(OrchestrationConfig(prefect_home=home))
    runtime.wait_api(server_url)
    server_env = dict(env, PREFECT_API_URL=server_url)

    variants = {"direct core (--orchestrator none)": (env, ("--orchestrator", "none")),
                "flow, embedded temporary server": (env, ()),
                "flow, running API server": (server_env, ())}
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.reps):
        for name, (variant_env, extra) in variants.items():
            out = work / f"out-{rep}-{abs(hash(name))}"
            times.setdefault((name, "full run"), []).append(timed(command(out, *extra), variant_env, work))
            times.setdefault((name, "no-op rerun"), []).append(timed(command(out, *extra), variant_env, work))
    runtime.stop_api()
    direct = {kind: statistics.median(times[("direct core (--orchestrator none)", kind)])
              for kind in ("full run", "no-op rerun")}
    print(f"inputs: {args.inputs} ({args.reps} interleaved repetitions, medians; HashTagger)")
    print(f"{'variant':36} {'full run':>9} {'no-op':>9} {'overhead vs direct':>20}")
    for name in variants:
        full = statistics.median(times[(name, "full run")])
        noop = statistics.median(times[(name, "no-op rerun")])
        print(f"{name:36} {full:8.2f}s {noop:8.2f}s {full - direct['full run']:+8.2f}s / {noop - direct['no-op rerun']:+.2f}s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
