"""CLI commands for working with researchers' own tools (see docs/interop.md):

    epistance export qdpx|labelstudio|csv OUT FILE   corpus -> NVivo/ATLAS.ti/MAXQDA/QualCoder, Label Studio, CSV
    epistance import-annotations FILE --out GOLD     completed annotations -> training rows (gold format)
    epistance select OUT --n 200 --out batch.jsonl   what to annotate next (uncertainty, stratified, no near-duplicates)
    epistance agreement A B                          Cohen's kappa per layer (annotators, or model vs human)
    epistance diff OUT_A OUT_B --by profession       two model versions on one corpus
    epistance view OUT --out DIR                     one HTML page per transcript

`register(app)` adds them to the main `epistance` app (pipeline.cli). Each command parses
its arguments, calls one function of pipeline.interop and prints a summary; errors are
printed as `[code] file, row: message` (never text) with exit code 2.
"""
from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.errors import PipelineError

EXIT_USAGE = 2
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)  # summary lines stay whole: paths are copied from them

CorpusArg = Annotated[Path, typer.Argument(help="An annotated corpus folder (from `epistance annotate`).",
                                           exists=True, file_okay=False)]
ByOption = Annotated[str, typer.Option("--by", help="Speaker attribute for groups (e.g. profession, site), "
                                                    "or role, speaker, transcript.")]
OnlyOption = Annotated[Path | None, typer.Option("--only", help="Export only the sentences of this batch "
                                                                   "(from `epistance select`), in its order.",
                                                    exists=True, dir_okay=False)]


class LineEndings(str, Enum):
    lf = "lf"
    crlf = "crlf"


class ImportFormat(str, Enum):
    auto = "auto"
    labelstudio = "labelstudio"
    csv = "csv"


class Strategy(str, Enum):
    entropy = "entropy"
    margin = "margin"


def _fail(error: PipelineError) -> None:
    console.print(f"[red]error[/red] {error.render()}", highlight=False)
    raise typer.Exit(EXIT_USAGE)


def _write_json(path: Path, data: Any) -> None:
    from pipeline.atomic import write_bytes_atomic

    write_bytes_atomic(path, json.dumps(data, indent=2, ensure_ascii=False).encode() + b"\n")


def _only(path: Path | None) -> list[str] | None:
    from pipeline.interop.corpus import read_id_file

    return read_id_file(path) if path is not None else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


export_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Export an annotated corpus for QDA tools (REFI-QDA), Label Studio or a spreadsheet.")


@export_app.command("qdpx")
def export_qdpx_command(
    corpus: CorpusArg,
    target: Annotated[Path, typer.Argument(help="The .qdpx file to write.")],
    name: Annotated[str | None, typer.Option(help="Project name (default: the corpus folder's name).")] = None,
    line_endings: Annotated[LineEndings, typer.Option(help="Line breaks in the source texts (crlf for MAXQDA "
                                                           "on Windows); positions follow them.")] = LineEndings.lf,
) -> None:
    """REFI-QDA project (.qdpx) for NVivo, ATLAS.ti, MAXQDA and QualCoder: transcripts, codebook, coded sentences."""
    from pipeline.interop.qdpx import export_qdpx

    try:
        summary = export_qdpx(corpus, target, name, line_endings.value)  # type: ignore[arg-type]
    except PipelineError as error:
        _fail(error)
    out.print(f"wrote {target}: {summary.sources} transcripts, {summary.selections} coded sentences "
              f"({summary.codings} codings of {summary.codes} codes), {summary.cases} speaker cases, "
              f"{summary.bytes / 1024:.0f} KiB")


@export_app.command("labelstudio")
def export_labelstudio_command(corpus: CorpusArg,
                               target: Annotated[Path, typer.Argument(help="The tasks JSON file to write.")],
                               only: OnlyOption = None, by: ByOption = "profession") -> None:
    """Label Studio tasks with the model's predictions as pre-annotations, and the labelling config."""
    from pipeline.interop.labelstudio import export_labelstudio

    try:
        summary = export_labelstudio(corpus, target, _only(only), by)
    except PipelineError as error:
        _fail(error)
    out.print(f"wrote {summary.tasks} tasks to {summary.tasks_path}")
    out.print(f"labelling config: {summary.config_path} (Settings → Labeling Interface → Code)")


@export_app.command("csv")
def export_csv_command(corpus: CorpusArg, target: Annotated[Path, typer.Argument(help="The CSV file to write.")],
                       only: OnlyOption = None, by: ByOption = "profession",
                       prefill: Annotated[bool, typer.Option(help="Start the label columns with the model's "
                                                                  "labels.")] = False) -> None:
    """CSV for spreadsheet annotation: one row per sentence, columns stance, emotions, affect_focus to fill in."""
    from pipeline.interop.spreadsheet import export_csv

    try:
        rows = export_csv(corpus, target, _only(only), by, prefill)
    except PipelineError as error:
        _fail(error)
    out.print(f"wrote {rows} rows to {target}")


def import_annotations(
    source_file: Annotated[Path, typer.Argument(help="Label Studio JSON export or a filled-in CSV.",
                                                exists=True, dir_okay=False)],
    output: Annotated[Path, typer.Option("--out", help="Training rows to write (gold-format JSON lines).")],
    corpus: Annotated[Path | None, typer.Option(help="Check every sentence against this corpus too.",
                                                   exists=True, file_okay=False)] = None,
    annotator: Annotated[str | None, typer.Option(help="The annotator's name (a pseudonym), recorded as "
                                                          "producer human:NAME.")] = None,
    completed_by: Annotated[str | None, typer.Option(help="Label Studio: only this user's annotations "
                                                             "(user id or e-mail).")] = None,
    data_source: Annotated[str, typer.Option("--source", help="The rows' 'source' field.")] = "interviews",
    base: Annotated[Path | None, typer.Option(help="Write this gold file's rows first (an imported row "
                                                      "replaces the one with its id).", exists=True,
                                                 dir_okay=False)] = None,
    file_format: Annotated[ImportFormat, typer.Option("--format", help="Input format (auto: by suffix).")]
    = ImportFormat.auto,
) -> None:
    """Completed annotations (Label Studio JSON or CSV) back as training data, human annotator recorded."""
    from pipeline.interop.annotations import write_gold

    kind = file_format.value
    if kind == "auto":
        kind = "csv" if source_file.suffix.lower() in (".csv", ".tsv", ".txt") else "labelstudio"
    try:
        if kind == "csv":
            from pipeline.interop.spreadsheet import import_csv

            csv_summary = import_csv(source_file, corpus, annotator, data_source)
            rows, annotators = csv_summary.rows, csv_summary.annotators
            note = f"{csv_summary.lines} rows read, {csv_summary.skipped_unannotated} left empty"
        else:
            from pipeline.interop.labelstudio import import_labelstudio

            ls_summary = import_labelstudio(source_file, corpus, annotator, completed_by, data_source)
            rows, annotators = ls_summary.rows, ls_summary.annotators
            note = (f"{ls_summary.tasks} tasks, {ls_summary.skipped_cancelled} skipped (cancelled), "
                    f"{ls_summary.skipped_unannotated} without annotation")
        written, replaced = write_gold(output, rows, base)
    except PipelineError as error:
        _fail(error)
    who = ", ".join(f"{k} ({v})" for k, v in annotators.items()) or "-"
    out.print(f"imported {len(rows)} annotated sentences ({note}); annotators: {who}")
    out.print(f"wrote {written} rows to {output}" + (f" ({replaced} rows of {base} replaced)" if base else ""))


def select(
    corpus: CorpusArg,
    output: Annotated[Path, typer.Option("--out", help="The batch to write (JSON lines of sentence ids).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many sentences.")] = 200,
    by: ByOption = "profession",
    strategy: Annotated[Strategy, typer.Option(help="Uncertainty measure.")] = Strategy.entropy,
    layer: Annotated[list[str] | None, typer.Option(help="Layer(s) to score: stance, emotions, affect_focus "
                                                            "(default all).")] = None,
    exclude: Annotated[list[Path] | None, typer.Option(help="Already annotated or queued (gold JSONL or a "
                                                               "batch); repeatable.", exists=True)] = None,
    min_words: Annotated[int, typer.Option(min=0, help="Skip sentences with fewer words.")] = 3,
    similarity: Annotated[float, typer.Option(min=0.0, max=1.01, help="Trigram Jaccard at which two sentences "
                                                                      "count as near-duplicates.")] = 0.8,
    group_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of the batch spread equally over "
                                                                      "the groups.")] = 0.5,
) -> None:
    """Pick the sentences to annotate next by model uncertainty, stratified by speaker group, without near-duplicates."""
    from pipeline.interop.select import LAYERS, select_sentences, write_batch

    try:
        summary = select_sentences(corpus, n, by, strategy.value, tuple(layer or LAYERS),  # type: ignore[arg-type]
                                   tuple(exclude or ()), group_share, similarity, min_words)
        write_batch(output, summary.selected)
    except PipelineError as error:
        _fail(error)
    table = Table(title=f"selected {len(summary.selected)} of {summary.candidates} candidates by {strategy.value} "
                        f"(by {by})")
    for column in (by, "candidates", "selected", "mean uncertainty"):
        table.add_column(column, justify="left" if column == by else "right")
    for group, values in summary.groups.items():
        table.add_row(group, str(int(values["candidates"])), str(int(values["selected"])),
                      _fmt(values["mean_uncertainty_selected"]))
    out.print(table)
    out.print(f"mean uncertainty: selected {summary.mean_uncertainty_selected:.3f}, all tagged "
              f"{summary.mean_uncertainty_all:.3f}; skipped {summary.near_duplicates_skipped} near-duplicates, "
              f"{summary.excluded} already annotated, {summary.too_short} under {min_words} words")
    out.print(f"wrote {output}; next: epistance export labelstudio {corpus} tasks.json --only {output}")


def agreement_command(
    a: Annotated[Path, typer.Argument(help="Annotations A: gold-format JSONL, or a corpus folder (the model).",
                                      exists=True)],
    b: Annotated[Path, typer.Argument(help="Annotations B: gold-format JSONL, or a corpus folder.", exists=True)],
    output: Annotated[Path | None, typer.Option("--out", help="Also write the figures as JSON.")] = None,
) -> None:
    """Cohen's kappa per layer between two annotators, or between the model and a human."""
    from pipeline.interop.agreement import agreement, load_rater

    try:
        result = agreement(load_rater(a), load_rater(b))
    except PipelineError as error:
        _fail(error)
    table = Table(title=f"agreement: {result['a']} vs {result['b']} ({result['items_common']} common sentences)")
    for column in ("layer", "n", "kappa", "agreement"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    s, e, f = result["stance"], result["emotions"], result["affect_focus"]
    table.add_row("stance", str(s["n"]), _fmt(s["kappa"]), _fmt(s["percent_agreement"]))
    table.add_row("emotions (mean over labels)", str(e["n"]), _fmt(e["kappa_mean"]), _fmt(e["exact_set_agreement"]))
    table.add_row("  any emotion", str(e["n"]), _fmt(e["any_emotion_kappa"]), _fmt(e["any_emotion_agreement"]))
    for label, values in e["per_label"].items():
        table.add_row(f"  {label}", str(e["n"]), _fmt(values["kappa"]), _fmt(values["percent_agreement"]))
    table.add_row("affect focus", str(f["n"]), _fmt(f["kappa"]), _fmt(f["percent_agreement"]))
    out.print(table)
    if output is not None:
        _write_json(output, result)
        out.print(f"wrote {output}")


def diff_command(
    old: Annotated[Path, typer.Argument(help="The corpus annotated by the old model.", exists=True, file_okay=False)],
    new: Annotated[Path, typer.Argument(help="The same corpus annotated by the new model.", exists=True,
                                        file_okay=False)],
    by: ByOption = "profession",
    output: Annotated[Path | None, typer.Option("--out", help="Also write the full diff as JSON.")] = None,
) -> None:
    """Two model versions on one corpus: flip rate per layer, old-vs-new matrices, change in group estimates."""
    from pipeline.interop.diff import diff_corpora

    try:
        result = diff_corpora(old, new, by)
    except PipelineError as error:
        _fail(error)
    out.print(f"[bold]{result['old']['model']}[/bold] → [bold]{result['new']['model']}[/bold]: "
              f"{result['matched']} sentences matched ({result['only_old']} only old, {result['only_new']} only new, "
              f"{result['text_changed']} with changed text)")
    flips = Table(title="flip rate per layer")
    for column in ("layer", "flip rate", "mean |Δp|"):
        flips.add_column(column, justify="left" if column == "layer" else "right")
    for layer, rate in result["flip_rate"].items():
        flips.add_row(layer, f"{rate:.1%}", _fmt(result["mean_abs_prob_change"][layer]))
    for label, rate in result["emotion_flip_rate"].items():
        flips.add_row(f"  {label}", f"{rate:.1%}", "")
    out.print(flips)
    stance = result["matrices"]["stance"]
    matrix = Table(title="stance: old (rows) vs new (columns)")
    matrix.add_column("")
    for label in stance["labels"]:
        matrix.add_column(label, justify="right")
    for label, row in zip(stance["labels"], stance["counts"]):
        matrix.add_row(label, *(str(x) for x in row))
    out.print(matrix)
    affect = result["matrices"]["affect_focus"]["counts"]
    out.print(f"affect focus old→new: no→no {affect[0][0]}, no→yes {affect[0][1]}, yes→no {affect[1][0]}, "
              f"yes→yes {affect[1][1]}")
    groups = Table(title=f"label shares by {by}, % of sentences: old→new (change in percentage points)")
    keys = {"stance=objective": "objective", "stance=experiential": "experiential", "stance=none": "none",
            "any_emotion": "any emotion", "affect_focus=yes": "affect focus"}
    groups.add_column(by)
    groups.add_column("n", justify="right")
    for title in keys.values():
        groups.add_column(title, justify="right")
    for group, values in result["groups"].items():
        shares = values["shares"]
        groups.add_row(group, str(values["n"]), *(
            f"{100 * shares[k]['old']:.0f}→{100 * shares[k]['new']:.0f} ({shares[k]['change_pp']:+.1f})"
            if k in shares else "–" for k in keys))
    out.print(groups)
    if output is not None:
        _write_json(output, result)
        out.print(f"wrote {output}")


def view(
    corpus: CorpusArg,
    output: Annotated[Path, typer.Option("--out", help="Folder for the HTML pages.")],
    transcript: Annotated[list[str] | None, typer.Option(help="Only these transcript ids (repeatable).")] = None,
) -> None:
    """One self-contained HTML page per transcript: turns, stance colours, emotions, affect focus, probabilities."""
    from pipeline.interop.viewer import write_viewer

    try:
        summary = write_viewer(corpus, output, set(transcript) if transcript else None)
    except PipelineError as error:
        _fail(error)
    out.print(f"wrote {len(summary.pages)} transcript pages and {summary.index} (open it in a browser)")


def register(app: typer.Typer) -> None:
    """Add the interop commands to the `epistance` app."""
    app.add_typer(export_app, name="export")
    app.command("import-annotations")(import_annotations)
    app.command("select")(select)
    app.command("agreement")(agreement_command)
    app.command("diff")(diff_command)
    app.command("view")(view)
