"""The speaker sidecar: CSV and YAML, `*` rows, unknown speakers kept and flagged (C19)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import MetadataError
from pipeline.ingest.metadata import load_speaker_table


def test_csv_rows_star_rows_and_case_insensitive_labels(tmp_path: Path) -> None:
    path = tmp_path / "speakers.csv"
    path.write_text("transcript,speaker,role,profession,site,person\n"
                    "*,Interviewer,interviewer,researcher,,\n"
                    "int01,P01,participant,psychiatrist,north,p-17\n"
                    "int02,interviewer,other,observer,,\n")
    table = load_speaker_table(path)
    p01 = table.lookup("int01", "p01")
    assert (p01.role, p01.attributes) == ("participant", {"profession": "psychiatrist", "site": "north", "person": "p-17"})
    assert table.lookup("int01", "Interviewer").role == "interviewer"
    assert table.lookup("int02", "Interviewer").role == "other"  # the transcript's own row wins over *
    unknown = table.lookup("int01", "Mystery Voice")
    assert (unknown.role, unknown.known) == ("unknown", False)


def test_yaml_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "speakers.yaml"
    path.write_text("speakers:\n  - {transcript: '*', speaker: INT, role: interviewer}\n"
                    "  - {transcript: a, speaker: Sam, role: participant, profession: occupational therapist}\n")
    table = load_speaker_table(path)
    assert table.lookup("a", "Sam").attributes == {"profession": "occupational therapist"}


@pytest.mark.parametrize("content, where", [
    ("transcript,speaker\na,b\n", "header"),
    ("transcript,speaker,role\na,,participant\n", "row 2"),
    ("transcript,speaker,role\na,P1,participant\na,p1,participant\n", "row 3"),
])
def test_bad_sidecars_name_the_row(tmp_path: Path, content: str, where: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(MetadataError) as info:
        load_speaker_table(path)
    assert where in str(info.value)
