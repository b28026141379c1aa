"""compare_corpus: read, select, group, estimate, test, write tables, plots and report."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.atomic import ensure_private_dir, write_bytes_atomic
from pipeline.compare.confusion import ConfusionMatrices, load_confusion
from pipeline.compare.corpus import assign_groups, read_corpus_table, read_model_ref, select_rows
from pipeline.compare.inference import adjust_holm, compare_label
from pipeline.compare.layers import build_layer, unit_table
from pipeline.compare.result import (
    LAYERS,
    CompareOptions,
    ComparisonResult,
    ExampleRef,
    GroupSummary,
    InferenceRow,
    ShareRow,
    SpeakerProfile,
)
from pipeline.compare.shares import compute_shares, pick_examples, speaker_shares
from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

SHARE_FILES = {"stance": "stance_by_group", "emotions": "emotions_by_group", "affect_focus": "affect_focus_by_group"}
ACC_COLUMNS = ["proportion_acc", "acc_ci_low", "acc_ci_high"]


def _default_labels() -> dict[str, tuple[str, ...]]:
    from models.labels import load_label_schema

    schema = load_label_schema()
    return {"stance": schema.stance_labels, "emotions": schema.emotion_labels}


def _small_group_warning(group: str, n: int, minimum: int, word: str) -> str:
    who = f"this one {word[:-1]}" if n == 1 else f"these {n} {word}"
    return (f"SMALL GROUP: '{group}' has {n} {word[:-1] if n == 1 else word} (fewer than {minimum}). Its shares and "
            f"intervals describe {who} only (two-stage bootstrap over {word} and their sentences): there is no usable "
            f"estimate of how much {word} in this group vary, so a difference involving '{group}' may reflect the "
            "individual(s) rather than the group and cannot be generalised. GEE tests leave it out; the mixed model "
            "includes it only by borrowing the between-speaker variance of the other groups.")


def compare_corpus(corpus_dir: Path, by: list[str], where: dict[str, str] | None, out_dir: Path,
                   confusion: ConfusionMatrices | Path | None = None, include_interviewers: bool = False,
                   seed: int = 0, n_boot: int = 2000, *, options: CompareOptions | None = None,
                   write_report: bool = True) -> ComparisonResult:
    """Compare stance, emotion and affect-focus shares between groups of speakers.

    `by`: row columns (role, transcript_id, speaker_id) or speaker attributes (profession,
    site, wave...); several keys make one group per combination. `where`: exact-match
    filters on the same keys. `confusion`: held-out confusion matrices, or the path of the
    model's metrics.json; None omits the corrected shares. `options` overrides the other
    settings when given (advanced knobs: cluster unit, minimum speakers, examples).
    Writes tables (CSV + Parquet), plots (PNG + SVG), result.json and report.html into
    `out_dir`; only report.html contains transcript text.
    """
    options = options or CompareOptions(by=tuple(by), where=dict(where or {}),
                                        include_interviewers=include_interviewers, seed=seed, n_boot=n_boot)
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if isinstance(confusion, str | Path):
        confusion = load_confusion(Path(confusion))
    labels = _default_labels()
    model = read_model_ref(corpus_dir)
    warnings_: list[str] = []
    notes: list[str] = []
    if model is None:
        warnings_.append("The corpus has no manifest model field: the model version behind these labels is unknown.")

    frame = read_corpus_table(corpus_dir, prefer=options.prefer)
    selected = select_rows(frame, options.where, options.include_interviewers)
    if selected.empty:
        raise ConfigError("no sentences match the selection", path=corpus_dir,
                          hint="check the --where values and the roles in the corpus")
    grouped = assign_groups(selected, list(options.by), options.cluster)
    missing = grouped["group"].isna()
    if missing.any():
        n_missing_speakers = grouped.loc[missing, "speaker"].nunique()
        warnings_.append(f"{int(missing.sum())} sentences from {n_missing_speakers} speaker(s) have no value for "
                         f"{'/'.join(options.by)} and are left out of every comparison.")
        grouped = grouped.loc[~missing]
    if grouped.empty:
        raise ConfigError(f"no selected speaker has a value for {'/'.join(options.by)}", path=corpus_dir,
                          hint="check the metadata sidecar used when annotating")
    groups = tuple(sorted(grouped["group"].unique()))
    clusters = tuple(sorted(grouped["cluster"].unique()))
    word = "speakers" if options.cluster == "speaker" else "transcripts"
    log.info("comparing %d sentences, %d speakers, %d groups", len(grouped), grouped["speaker"].nunique(), len(groups))

    summaries: list[GroupSummary] = []
    for group in groups:
        part = grouped[grouped["group"] == group]
        n_units = part["cluster"].nunique()
        values = {key: str(part[f"by:{key}"].iloc[0]) for key in options.by}
        summaries.append(GroupSummary(group=group, values=values, n_speakers=int(part["speaker"].nunique()),
                                      n_transcripts=int(part["transcript_id"].nunique()),
                                      n_sentences=len(part), small=n_units < options.min_speakers))
        if n_units < options.min_speakers:
            warnings_.append(_small_group_warning(group, n_units, options.min_speakers, word))
    if len(groups) < 2:
        warnings_.append(f"Only one group ('{groups[0]}'): shares are described, nothing is compared.")
    if "role" in options.where:
        notes.append(f"Roles selected by where role={options.where['role']}.")
    elif not options.include_interviewers:
        notes.append("Interviewer sentences are excluded (include_interviewers=False).")

    shares: list[ShareRow] = []
    tests: list[InferenceRow] = []
    examples: list[ExampleRef] = []
    per_layer_speakers: dict[str, dict[tuple[str, str], tuple[int, dict[str, float]]]] = {}
    corrected_any = False
    for index, layer in enumerate(LAYERS):
        data = build_layer(grouped, layer, labels.get(layer, ("affect_focus",)), groups, clusters)
        if data.n == 0:
            notes.append(f"No tagged sentences in layer {layer}: nothing to compare.")
            continue
        units = unit_table(data)
        present = np.unique(data.group_index)
        if len(present) < len(groups):
            notes.append(f"Layer {layer}: groups without tagged sentences: "
                         + ", ".join(groups[g] for g in range(len(groups)) if g not in present))
        layer_groups = tuple(groups[g] for g in present)
        data = build_layer(grouped, layer, data.labels, layer_groups, clusters)
        units = unit_table(data)
        n_units = np.array([len(np.unique(units.cluster[units.group == g])) for g in range(len(layer_groups))])
        n_speakers = np.array([len(np.unique(data.speakers[data.group_index == g])) for g in range(len(layer_groups))])
        small = n_units < options.min_speakers
        rng = np.random.default_rng([options.seed, index])
        layer_shares = compute_shares(data, units, n_speakers, small, confusion, options.n_boot, rng, word)
        shares.extend(layer_shares.rows)
        notes.extend(layer_shares.notes)
        corrected_any |= layer_shares.corrected
        if np.isnan(data.prob).all():
            notes.append(f"Layer {layer}: no model probabilities stored, so no mean-probability shares.")
        for label in range(len(data.labels)):
            tests.extend(compare_label(data, units, label, layer_shares.proportions[:, :, label], options.min_speakers,
                                       options.fit_glmm))
        examples.extend(pick_examples(data, options.n_examples))
        per_layer_speakers[layer] = speaker_shares(data)
    if confusion is None:
        notes.append("No confusion matrix given: misclassification-corrected (ACC) shares are omitted. Pass the "
                     "model's metrics.json to add them.")
    tests = adjust_holm(tests)

    profiles = _speaker_profiles(grouped, per_layer_speakers)
    result = ComparisonResult(
        corpus_dir=str(corpus_dir), out_dir=str(out_dir), model=model, options=options,
        options_hash=options.options_hash(),
        labels={"stance": list(labels["stance"]), "emotions": list(labels["emotions"]),
                "affect_focus": ["affect_focus"]},
        n_sentences=len(grouped), n_speakers=int(grouped["speaker"].nunique()), groups=summaries, shares=shares,
        tests=tests, speakers=profiles, examples=examples, corrected=corrected_any, warnings=warnings_,
        notes=notes, files={},
    )
    files = write_tables(result, out_dir)
    result = result.model_copy(update={"files": files})
    from pipeline.report import write_plots

    files.update(write_plots(result, out_dir))
    if write_report:
        from pipeline.report import write_report as _write_report

        texts = dict(zip(grouped["sentence_id"], grouped["text"], strict=True))
        report = _write_report(result.model_copy(update={"files": dict(files)}), out_dir, texts)
        files[report.name] = report.name
    result = result.model_copy(update={"files": dict(files)})
    write_bytes_atomic(out_dir / "result.json", result.model_dump_json(indent=2).encode() + b"\n")
    files["result.json"] = "result.json"
    log.info("comparison written: %d files", len(files))
    return result.model_copy(update={"files": dict(files)})


def _speaker_profiles(grouped: pd.DataFrame,
                      per_layer: Mapping[str, Mapping[tuple[str, str], tuple[int, dict[str, float]]]]
                      ) -> list[SpeakerProfile]:
    transcripts = grouped.groupby(["speaker", "group"])["transcript_id"].agg(lambda s: sorted(set(s)))
    profiles = []
    for (speaker, group), transcript_ids in transcripts.items():
        counts: dict[str, int] = {}
        shares: dict[str, float | None] = {}
        for layer, table in per_layer.items():
            n, values = table.get((speaker, group), (0, {}))
            counts[layer] = n
            for label, value in values.items():
                shares[label if layer == "affect_focus" else f"{layer}_{label}"] = value
        profiles.append(SpeakerProfile(speaker=str(speaker), group=str(group), transcripts=list(transcript_ids),
                                       n_sentences=counts, shares=shares))
    return profiles


def share_frame(result: ComparisonResult, layer: str) -> pd.DataFrame:
    """The `<layer>_by_group` table: one row per group and label."""
    rows = [row.model_dump() for row in result.shares if row.layer == layer]
    frame = pd.DataFrame(rows).drop(columns=["layer"]) if rows else pd.DataFrame()
    if frame.empty:
        return frame
    values = {g.group: g.values for g in result.groups}
    for position, key in enumerate(result.options.by):
        name = key if key not in frame.columns else f"by_{key}"
        frame.insert(1 + position, name, frame["group"].map(lambda g, k=key: values[g][k]))
    small = {g.group: g.small for g in result.groups}
    frame["small_group"] = frame["group"].map(small)
    if frame[ACC_COLUMNS].isna().all().all():
        frame = frame.drop(columns=ACC_COLUMNS)
    if frame["proportion_meanprob"].isna().all():
        frame = frame.drop(columns=["proportion_meanprob"])
    return frame


def tests_frame(result: ComparisonResult) -> pd.DataFrame:
    frame = pd.DataFrame([row.model_dump() for row in result.tests])
    if not frame.empty:
        frame["groups_tested"] = frame["groups_tested"].map(";".join)
    return frame


def profiles_frame(result: ComparisonResult) -> pd.DataFrame:
    rows = []
    for profile in result.speakers:
        row: dict[str, object] = {"speaker": profile.speaker, "group": profile.group,
                                  "transcripts": ";".join(profile.transcripts)}
        row.update({f"n_{layer}": n for layer, n in profile.n_sentences.items()})
        row.update(profile.shares)
        rows.append(row)
    return pd.DataFrame(rows)


def _write_frame(frame: pd.DataFrame, out_dir: Path, stem: str) -> dict[str, str]:
    write_bytes_atomic(out_dir / f"{stem}.csv", frame.to_csv(index=False).encode())
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes_atomic(out_dir / f"{stem}.parquet", buffer.getvalue())
    return {f"{stem}.csv": f"{stem}.csv", f"{stem}.parquet": f"{stem}.parquet"}


def write_tables(result: ComparisonResult, out_dir: Path) -> dict[str, str]:
    """The CSV tables and their Parquet copies; returns name -> relative path."""
    ensure_private_dir(out_dir)
    files: dict[str, str] = {}
    for layer, stem in SHARE_FILES.items():
        files.update(_write_frame(share_frame(result, layer), out_dir, stem))
    files.update(_write_frame(profiles_frame(result), out_dir, "speaker_profiles"))
    files.update(_write_frame(tests_frame(result), out_dir, "tests"))
    write_bytes_atomic(out_dir / "warnings.txt", ("\n".join(result.warnings) + "\n").encode())
    files["warnings.txt"] = "warnings.txt"
    return files


def load_result(out_dir: Path) -> ComparisonResult:
    """Read result.json back (to regenerate the report, say)."""
    return ComparisonResult.model_validate(json.loads((Path(out_dir) / "result.json").read_text(encoding="utf-8")))
