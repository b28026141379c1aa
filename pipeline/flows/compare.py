"""compare_flow: compare groups of speakers in an annotated corpus, as one Prefect task.

A thin wrapper of `pipeline.compare.compare_corpus`: it passes folders and options and
returns a small summary (counts, warnings, the files written); the tables and the report
stay in `out_dir`. The report's example sentences never enter Prefect.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict


class CompareSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    out_dir: str
    model: str | None
    options_hash: str
    n_sentences: int
    n_speakers: int
    groups: list[dict[str, object]]  # group name, speakers, transcripts (no text)
    warnings: int
    files: list[str]


@task(name="compare-corpus", cache_policy=NO_CACHE, persist_result=False)
def compare_task(corpus_dir: Path, by: list[str], out_dir: Path, where: dict[str, str] | None,
                 confusion: Path | None, include_interviewers: bool, seed: int, n_boot: int,
                 write_report: bool) -> CompareSummary:
    from pipeline.compare import compare_corpus  # imported when run: the comparison package loads numpy etc.

    result = compare_corpus(corpus_dir, by, where, out_dir, confusion=confusion,
                            include_interviewers=include_interviewers, seed=seed, n_boot=n_boot,
                            write_report=write_report)
    return CompareSummary(
        out_dir=result.out_dir, model=result.model, options_hash=result.options_hash, n_sentences=result.n_sentences,
        n_speakers=result.n_speakers, warnings=len(result.warnings), files=sorted(result.files),
        groups=[{"group": g.group, "speakers": g.n_speakers, "transcripts": g.n_transcripts} for g in result.groups])


@flow(name="compare-corpus", persist_result=False, log_prints=False)
def compare_flow(corpus_dir: Path, by: list[str], out_dir: Path, where: dict[str, str] | None = None,
                 confusion: Path | None = None, include_interviewers: bool = False, seed: int = 0,
                 n_boot: int = 2000, write_report: bool = True) -> CompareSummary:
    """Compare stance, emotion and affect-focus shares between groups (see docs/compare.md)."""
    summary = compare_task(corpus_dir, by, out_dir, where, confusion, include_interviewers, seed, n_boot,
                           write_report)
    create_table_artifact(summary.groups, key="compare-groups",
                          description=f"{summary.n_sentences} sentences, {summary.n_speakers} speakers by "
                                      f"{', '.join(by)}; {summary.warnings} warnings; tables in {summary.out_dir}")
    return summary
