"""The real commands, in fresh processes, on a corpus full of canary identifiers, at DEBUG,
with failures induced (RELIABILITY 28, 29, 31):

- offline: every non-loopback connection and name lookup is refused and recorded by a
  sitecustomize (tests/trust/netguard.py); the caller sets no offline, hub or Prefect
  variable; the record must be empty, and the hub and orchestration libraries must have
  been imported only after the tool set their switches;
- no leaks: no canary in stdout/stderr, log files, Prefect's home (database, result
  storage, logs), the compare report folder (but report.html, which quotes by design),
  the model folder (card, metrics, run record), manifests, run records or error messages;
  the annotated outputs (sentences.jsonl/.parquet, docs.spacy, parts), the HTML viewer
  and the exports carry text by design;
- private: every output file 0600 and folder 0700 (corpus, report, viewer, exports).

The runs happen once per module (`runs` fixture); the Prefect flow run is in the slow set.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.trust import netguard
from tests.trust.conftest import FACTORY, clean_env, run_cli

CANARY_NAME = "Zebulon Quartermaine-Xyq"
CANARY_PHONE = "07700 900461"
CANARY_EMAIL = "zq.canary.leak@example.org"
CANARY_WORD = "Quillfeatherzq"  # in the training data only
CANARIES = (CANARY_NAME, "Quartermaine", CANARY_PHONE, "900461", CANARY_EMAIL, CANARY_WORD)

TRANSCRIPTS = {
    "int_a.txt": "Interviewer: How do you work with peer workers?\n"
                 f"P01: My name is {CANARY_NAME}. When I was first admitted I didn't sleep for a week.\n"
                 "Interviewer: Mm-hm.\n"
                 f"P01: The trials show peer support reduces readmissions. Call me on {CANARY_PHONE}.\n",
    "int_b.txt": "Interviewer: What does your day look like?\n"
                 f"NURSE: Every referral goes through the duty team first. Email {CANARY_EMAIL} if not.\n",
    "int_c.txt": "Interviewer: Tell me about the ward.\n"
                 "P02: It felt like nobody was listening. Lithium levels need checking every three months.\n",
    "int_d.txt": "Interviewer: Anything else?\n"
                 f"P03: I always check the care plan. {CANARY_NAME} told me I was terrified the first time.\n",
}
BAD = {  # induced failures, each carrying canaries in its bytes
    "scan.txt": b"%PDF-1.5 " + CANARY_NAME.encode(),
    "headerless.csv": f"{CANARY_NAME} said,{CANARY_PHONE}\nP01,hello\n".encode(),
    "cp.txt": f"P01: {CANARY_NAME} ".encode() + b"\x81\x8d\x8f\n",
    "labels.txt": b"P01:\nP02:   \n",
    "bad.jsonl": f'{{"speaker": "{CANARY_NAME}", "text": 5}}\n'.encode(),
}
SIDECAR = ("transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\n"
           "int_a,P01,participant,peer worker\nint_b,NURSE,participant,nurse\nint_c,P02,participant,nurse\n"
           "int_d,P03,participant,peer worker\n")


@dataclass
class Runs:
    root: Path
    net_log: Path
    import_log: Path
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)

    def run(self, name: str, args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = run_cli(["-v", *args], env, self.root, timeout)
        self.results[name] = done
        return done


def _prepare(root: Path) -> dict[str, Path]:
    from tests.interop.tiny_model import make_tiny_base, write_tiny_config, write_tiny_goemotions, write_tiny_gold

    inputs = root / "in"
    inputs.mkdir(parents=True)
    for name, text in TRANSCRIPTS.items():
        (inputs / name).write_text(text)
    for name, data in BAD.items():
        (inputs / name).write_bytes(data)
    (root / "speakers.csv").write_text(SIDECAR)
    work = root / "train"
    gold = write_tiny_gold(work / "gold.jsonl") if work.mkdir() is None else None
    assert gold is not None
    rows = [json.loads(line) for line in gold.read_text().splitlines()]
    for row in rows[:6]:  # canaries in training text, both splits
        row["text"] = f"{row['text']} {CANARY_WORD} {CANARY_NAME}"
    rows[-1]["text"] += f" {CANARY_WORD}"
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = write_tiny_config(work / "tiny.toml", make_tiny_base(work / "base"), gold,
                               write_tiny_goemotions(work / "goemotions"))
    return {"inputs": inputs, "sidecar": root / "speakers.csv", "train_config": config}


def _env(runs: Runs) -> dict[str, str]:
    guard = netguard.install(runs.root / "guard")
    env = clean_env(EPISTANCE_NET_LOG=str(runs.net_log), EPISTANCE_IMPORT_LOG=str(runs.import_log))
    env["PYTHONPATH"] = f"{guard}{os.pathsep}{env['PYTHONPATH']}"
    env["HOME"] = str(runs.root / "home")  # nothing from the developer's home directory
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("trust-runs")
    paths = _prepare(root)
    runs = Runs(root=root, net_log=root / "net.log", import_log=root / "imports.log")
    env = _env(runs)
    model = root / "model"
    done = runs.run("train", ["train", "--config", str(paths["train_config"]), "--out", str(model)], env)
    assert done.returncode == 0, done.stdout + done.stderr
    again = runs.run("train-again", ["train", "--config", str(paths["train_config"]), "--out", str(model)], env)
    assert again.returncode != 0  # induced failure: refuses to overwrite
    done = runs.run("annotate", ["annotate", str(paths["inputs"]), "--out", str(root / "out"), "--metadata",
                                 str(paths["sidecar"]), "--no-prefect", "--model", str(model)], env)
    assert done.returncode == 1, done.stdout + done.stderr  # the bad inputs are rejected...
    assert "4 processed" in done.stdout  # ...and the good ones annotated with the tiny real model
    done = runs.run("compare", ["compare", str(root / "out"), "--by", "profession", "--out", str(root / "report"),
                                "--n-boot", "50"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = root / "out-broken"  # induced failure: a damaged corpus row that holds text
    broken.mkdir()
    rows = (root / "out" / "sentences.jsonl").read_text().splitlines()
    leaky = next(i for i, row in enumerate(rows) if CANARY_NAME in row)
    (broken / "sentences.jsonl").write_text("\n".join(rows[:leaky] + [rows[leaky][: rows[leaky].index(CANARY_NAME) + 30]])
                                           + "\n")
    bad = runs.run("compare-bad", ["compare", str(broken), "--by", "profession", "--out", str(root / "report-bad")],
                   env)
    assert bad.returncode == 2 and f"line {leaky + 1}" in bad.stdout + bad.stderr
    for name, args in {"view": ["view", str(root / "out"), "--out", str(root / "viewer")],
                       "export-csv": ["export", "csv", str(root / "out"), str(root / "exports" / "corpus.csv")],
                       "export-qdpx": ["export", "qdpx", str(root / "out"), str(root / "exports" / "corpus.qdpx")],
                       "verify": ["verify", str(root / "out")]}.items():
        done = runs.run(name, args, env)
        assert done.returncode == 0, done.stdout + done.stderr
    return runs


@pytest.fixture(scope="module")
def prefect_runs(runs: Runs) -> Runs:
    """The default orchestrator: a Prefect flow with its temporary API server, its home
    under the working folder (.epistance/prefect), at DEBUG, with the bad inputs."""
    env = _env(runs)
    done = runs.run("annotate-prefect", ["annotate", str(runs.root / "in"), "--out", str(runs.root / "out-prefect"),
                                         "--metadata", str(runs.root / "speakers.csv"), "--tagger-factory", FACTORY],
                    env, timeout=400)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 processed" in done.stdout
    return runs


def _assert_offline(runs: Runs, needed: set[str]) -> None:
    assert not runs.net_log.exists(), runs.net_log.read_text()
    imported = set(runs.import_log.read_text().split())
    assert needed <= imported, imported  # the check saw the libraries being imported


def test_annotate_train_compare_make_no_connection_and_set_their_own_switches(runs: Runs) -> None:
    _assert_offline(runs, {"transformers", "huggingface_hub"})


@pytest.mark.slow
def test_the_prefect_flow_makes_no_connection(prefect_runs: Runs) -> None:
    _assert_offline(prefect_runs, {"transformers", "huggingface_hub", "prefect"})


def test_train_refusing_to_overwrite_is_a_usage_error_without_traceback(runs: Runs) -> None:
    again = runs.results["train-again"]
    assert again.returncode == 2 and "Traceback" not in again.stderr and "╭" not in again.stderr


# -- no leaks ---------------------------------------------------------------------------------

BY_DESIGN = {"sentences.jsonl", "sentences.parquet", "docs.spacy", "report.html"}


def _allowed(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    top = rel.parts[0]
    if top in ("in", "train", "guard", "viewer", "exports", "out-broken"):  # inputs, training data; viewer and exports quote by design
        return True
    if path.name in BY_DESIGN:
        return True
    return "parts" in rel.parts and path.suffix == ".json"  # the per-transcript cache of the corpus


def _leaks(runs: Runs) -> list[str]:
    found = []
    for name, done in runs.results.items():
        for stream, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            found += [f"{name} {stream}: {c}" for c in CANARIES if c.casefold() in text.casefold()]
    for path in sorted(runs.root.rglob("*")):
        if not path.is_file() or _allowed(path, runs.root):
            continue
        data = path.read_bytes()
        for canary in CANARIES:
            needles = {canary.encode(), canary.encode("utf-16-le"), canary.casefold().encode()}
            if any(n in data or n in data.lower() for n in needles):
                found.append(f"{path.relative_to(runs.root)}: {canary}")
    return found


def test_no_canary_outside_the_annotated_outputs(runs: Runs) -> None:
    out = runs.root / "out"
    assert CANARY_NAME in (out / "sentences.jsonl").read_text()  # the canaries did go through the run...
    assert (runs.root / "model" / "MODEL_CARD.md").is_file() and (runs.root / "report" / "report.html").is_file()
    assert "DEBUG" in runs.results["annotate"].stderr  # ...at DEBUG
    assert not _leaks(runs)  # ...and nowhere else


@pytest.mark.slow
def test_no_canary_in_prefect_state_or_flow_logs(prefect_runs: Runs) -> None:
    home = prefect_runs.root / ".epistance" / "prefect"
    assert any(home.rglob("*.db")), sorted(p.name for p in home.rglob("*"))
    assert not _leaks(prefect_runs)


# -- permissions ------------------------------------------------------------------------------

def _modes(folder: Path) -> list[str]:
    wrong = []
    for path in [folder, *folder.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            wrong.append(f"{path.relative_to(folder.parent)} {mode:o}")
    return wrong


@pytest.mark.parametrize("folder", ["out", "report", "viewer", "exports"])
def test_outputs_are_readable_by_the_owner_only(runs: Runs, folder: str) -> None:
    assert not _modes(runs.root / folder)
