"""`epistance annotate --pseudonymise` end to end (RELIABILITY 30, 31): identifiers are
replaced before anything is written, in every output (JSONL, Parquet, DocBin, parts,
manifest, run record, viewer, exports), consistently across transcripts and runs; the key
is kept beside the output folder with mode 0600 and never inside it; the outputs say
"pseudonymised".
"""
from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from pipeline.pseudonymise import PSEUDONYM, PseudonymKey
from tests.trust import canaries
from tests.trust.conftest import FACTORY, clean_env, run_cli

SIDECAR = "transcript,speaker,role,profession\n*,Interviewer,interviewer,researcher\n*,Dr Okafor,participant,psychiatrist\n"


def _corpus(folder: Path) -> tuple[Path, list[canaries.Canary]]:
    folder.mkdir(parents=True)
    turns, found = canaries.parse(canaries.DEV)
    half = len(turns) // 2
    (folder / "dev_a.txt").write_text("".join(f"{s}: {t}\n" for s, t in turns[:half]))
    (folder / "dev_b.txt").write_text("".join(f"{s}: {t}\n" for s, t in turns[half:]) +
                                      "Dr Okafor: I saw Oluwaseun and Priya again last week.\n")
    (folder.parent / "speakers.csv").write_text(SIDECAR)
    return folder, found


def _readable(path: Path) -> str:
    """A file's content as text to scan. docs.spacy is compressed: scanning its raw bytes
    finds short names by chance, so its docs (text, user data, span labels) are scanned."""
    if path.name == "docs.spacy":
        import spacy
        from spacy.tokens import DocBin

        docs = DocBin().from_bytes(path.read_bytes()).get_docs(spacy.blank("en").vocab)
        return "\n".join(f"{d.text} {json.dumps(d.user_data, default=str)} "
                         f"{[s.label_ for group in d.spans.values() for s in group]}" for d in docs)
    return path.read_bytes().decode("utf-8", "replace")


def _texts(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): _readable(path) for path in folder.rglob("*") if path.is_file()}


def _annotate(inputs: Path, out: Path, cwd: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli(["annotate", str(inputs), "--out", str(out), "--metadata", str(inputs.parent / "speakers.csv"),
                    "--no-prefect", "--tagger-factory", FACTORY, "--pseudonymise", *extra], clean_env(), cwd)


def test_pseudonymised_run_writes_no_identifier_anywhere(tmp_path: Path) -> None:
    inputs, found = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    done = _annotate(inputs, out, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pseudonymised" in done.stdout and not re.search(r"anonymi[sz]ed", done.stdout, re.IGNORECASE)
    key_path = tmp_path / "out.pseudonym-key.json"
    assert key_path.is_file() and stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert not [p for p in out.rglob("*") if "pseudonym-key" in p.name]
    files = _texts(out)
    leaks = [(c.type, name) for c in found for name, text in files.items()
             if name != "sentences.parquet" and canaries.leaked(c, text)]
    assert not leaks
    parquet = (out / "sentences.parquet").read_bytes()
    assert not [c.type for c in found if c.type == "PERSON" and c.value.encode() in parquet]
    rows = [json.loads(line) for line in (out / "sentences.jsonl").read_text().splitlines()]
    assert sum(bool(PSEUDONYM.search(r["text"])) for r in rows) >= 30
    # the speaker whose label was a name keeps its sidecar row, under its pseudonymised label
    okafor = [r for r in rows if r["speaker_id"].startswith("Dr Person_")]
    assert okafor and all(r["attributes"] == {"profession": "psychiatrist"} and r["role"] == "participant"
                          for r in okafor)
    # the same name, the same pseudonym in both transcripts; the key re-identifies it
    key = PseudonymKey.from_json(key_path.read_bytes())
    pseudonym = next(p for p, e in key.entries.items() if "Oluwaseun" in e["originals"])
    assert {r["transcript_id"] for r in rows if pseudonym in r["text"]} == {"dev_a", "dev_b"}
    record = json.loads((out / "run.json").read_text())
    assert record["pseudonymised"] is True and record["pseudonym_key_fingerprint"] == key.fingerprint
    assert record.get("pseudonym_residuals", 0) == 0
    # a rerun reuses every part and writes the same bytes
    volatile = ("run.json", "lock")  # timestamps; the pid of the last holder
    before = {k: v for k, v in files.items() if Path(k).name not in volatile}
    again = _annotate(inputs, out, tmp_path)
    assert again.returncode == 0 and "2 unchanged" in again.stdout
    assert {k: v for k, v in _texts(out).items() if Path(k).name not in volatile} == before
    # downstream views quote the pseudonymised text only
    for args in (["view", str(out), "--out", str(tmp_path / "viewer")],
                 ["export", "csv", str(out), str(tmp_path / "exports" / "c.csv")]):
        assert run_cli(args, clean_env(), tmp_path).returncode == 0
    downstream = {**_texts(tmp_path / "viewer"), **_texts(tmp_path / "exports")}
    assert not [(c.type, n) for c in found for n, t in downstream.items() if canaries.leaked(c, t)]


def test_a_key_inside_the_output_folder_is_refused(tmp_path: Path) -> None:
    inputs, _ = _corpus(tmp_path / "in")
    done = _annotate(inputs, tmp_path / "out", tmp_path, "--pseudonym-key", str(tmp_path / "out" / "key.json"))
    assert done.returncode == 2 and "outside the output folder" in done.stdout + done.stderr


def test_another_key_recomputes_everything(tmp_path: Path) -> None:
    inputs, _ = _corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert _annotate(inputs, out, tmp_path).returncode == 0
    other = _annotate(inputs, out, tmp_path, "--pseudonym-key", str(tmp_path / "other-key.json"))
    assert other.returncode == 0 and "2 processed" in other.stdout
