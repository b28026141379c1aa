"""The `epistance` command line: parse arguments, load config, call one core function.

Exit codes: 0 all inputs fine; 1 some inputs rejected (listed); 2 usage or configuration
error. A rejected file never stops the others and never prints a traceback.
"""
from __future__ import annotations

import json
import logging
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.offline import enforce_offline

enforce_offline()  # before any library that might reach a hub is imported

from pipeline.errors import PipelineError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Discourse analysis of clinical interviews: stance, emotions and affect focus per sentence.")
console = Console(stderr=True, soft_wrap=True)  # error lines stay whole: paths are copied from them
out = Console()

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class Precision(str, Enum):
    auto = "auto"
    bfloat16 = "bfloat16"
    int8 = "int8"
    float32 = "float32"


def _fail(error: PipelineError) -> None:
    console.print(f"[red]error[/red] {error.render()}")
    raise typer.Exit(EXIT_USAGE)


def _tagger_source(model: str | None, batch_size: int, precision: str):  # type: ignore[no-untyped-def]
    from pipeline.tagger_source import RegistryTaggerSource

    return RegistryTaggerSource(model, batch_size=batch_size, precision=precision)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details (never text).")] = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def annotate(
    inputs: Annotated[list[Path], typer.Argument(help="Transcript files or folders.", exists=True)],
    out_dir: Annotated[Path, typer.Option("--out", help="Output corpus folder.")],
    metadata: Annotated[Path | None, typer.Option(help="Speaker sidecar (CSV or YAML).", exists=True)] = None,
    model: Annotated[str | None, typer.Option(help="Model id@version, id@latest or a model folder.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run config TOML (default configs/run/default.toml).")] = None,
    orchestrator: Annotated[str | None, typer.Option(
        help="prefect: a Prefect flow, one task per transcript (default); none: the core directly. "
             "Overrides orchestration.orchestrator of the run config.")] = None,
    no_prefect: Annotated[bool, typer.Option("--no-prefect", help="Same as --orchestrator none.")] = False,
    tagger_factory: Annotated[str | None, typer.Option(
        hidden=True, help="module:callable returning a TaggerSource (plugins, tests).")] = None,
    pseudonymise: Annotated[bool, typer.Option(
        "--pseudonymise", help="Replace names, places, organisations, dates, phone numbers, emails, NHS numbers and "
                               "postcodes with consistent pseudonyms before anything is written (docs/privacy.md). "
                               "The outputs are pseudonymised, not anonymised.")] = False,
    pseudonym_key: Annotated[Path | None, typer.Option(
        help="Pseudonym key file (implies --pseudonymise; default: <out>.pseudonym-key.json beside the output "
             "folder, never inside it).")] = None,
    names: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="Names always replaced, one a line, e.g. the participant and staff list "
                                          "(implies --pseudonymise).")] = None,
    precision: Annotated[Precision | None, typer.Option(
        help="auto (default): int8 for a model with an int8 calibration (the shipped one), else bfloat16 on "
             "CPUs with native bfloat16, else float32; int8: fastest (ONNX Runtime), about 1% of labels differ; "
             "float32: exactly as trained (docs/performance.md). Overrides tag.precision "
             "of the run config.")] = None,
) -> None:
    """Annotate transcripts into an annotated corpus folder (JSONL, Parquet, DocBin, manifest)."""
    from pipeline.annotate import annotate_corpus
    from pipeline.config import load_run_config
    from pipeline.ingest.metadata import load_speaker_table

    try:
        run_config = _with_orchestrator(load_run_config(config), "none" if no_prefect else orchestrator)
        if model:
            run_config = run_config.model_copy(update={"tag": run_config.tag.model_copy(update={"model": model})})
        if precision:
            run_config = run_config.model_copy(
                update={"tag": run_config.tag.model_copy(update={"precision": precision.value})})
        if pseudonymise or pseudonym_key or names:
            update: dict[str, object] = {"enabled": True}
            if pseudonym_key:
                update["key_path"] = pseudonym_key.absolute()
            if names:
                update["names_file"] = names.absolute()
            run_config = run_config.model_copy(update={"pseudonymise": run_config.pseudonymise.model_copy(update=update)})
        orchestration = run_config.orchestration
        use_prefect = orchestration.orchestrator == "prefect"
        if use_prefect:  # Prefect's temporary API boots while the inputs and the model are resolved
            from pipeline.flows.runtime import start_prefect

            start_prefect(orchestration, quiet=logging.getLogger().level > logging.DEBUG)
        speakers = load_speaker_table(metadata)
        if tagger_factory:
            from pipeline.flows.workers import TaggerSpec, source_for

            source = source_for(TaggerSpec(factory=tagger_factory, model=run_config.tag.model,
                                           batch_size=run_config.tag.batch_size, precision=run_config.tag.precision))
        else:
            source = _tagger_source(run_config.tag.model, run_config.tag.batch_size, run_config.tag.precision)
    except PipelineError as error:
        _fail(error)
    with Progress(TextColumn("[bold]annotating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[current]}"), console=console, transient=True) as bar:
        task = bar.add_task("annotate", total=None, current="")

        def progress(transcript_id: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, current=transcript_id)

        try:
            if use_prefect:
                from pipeline.flows.runtime import run_annotate_flow

                summary = run_annotate_flow(inputs, out_dir, run_config, metadata=metadata, source=source,
                                            tagger_factory=tagger_factory, progress=progress)
            else:
                delays = [orchestration.retry_delay_s * 2 ** i for i in range(orchestration.retries)]
                summary = annotate_corpus(inputs, out_dir, run_config, source, speakers, progress=progress,
                                          retry_delays=delays)
        except PipelineError as error:
            _fail(error)
    _print_summary(summary, out_dir)
    raise typer.Exit(EXIT_REJECTED if summary.transcripts_failed else EXIT_OK)


def _with_orchestrator(run_config, orchestrator: str | None):  # type: ignore[no-untyped-def]
    """The run config with [orchestration] orchestrator overridden from the command line."""
    from pipeline.errors import ConfigError

    if orchestrator is None:
        return run_config
    if orchestrator not in ("prefect", "none"):
        raise ConfigError(f"--orchestrator must be prefect or none; found {orchestrator!r}")
    return run_config.model_copy(update={"orchestration": run_config.orchestration.model_copy(
        update={"orchestrator": orchestrator})})


def _print_summary(summary, out_dir: Path) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"epistance annotate → {out_dir}", show_header=False, box=None)
    table.add_row("model", summary.model)
    table.add_row("transcripts", f"{summary.transcripts_total} ({summary.transcripts_processed} processed, "
                  f"{summary.transcripts_skipped} unchanged, {summary.transcripts_failed} rejected)")
    table.add_row("turns / sentences", f"{summary.turns} / {summary.sentences}")
    table.add_row("sentences tagged now", str(summary.sentences_tagged))
    if summary.sentences_windowed:
        table.add_row("long sentences", f"{summary.sentences_windowed} longer than the model's window, scored in windows")
    tagged = sum(summary.stance_counts.values()) or 1
    table.add_row("stance", ", ".join(f"{k} {v} ({v / tagged:.0%})" for k, v in summary.stance_counts.items()))
    table.add_row("emotions", ", ".join(f"{k} {v}" for k, v in summary.emotion_counts.items()) or "-")
    table.add_row("affect focus", f"{summary.affect_focus_count} ({summary.affect_focus_count / tagged:.0%})")
    table.add_row("time", f"{summary.duration_s:.1f} s")
    if summary.pseudonymised:
        table.add_row("pseudonymised", f"key {summary.pseudonym_key} (keep it apart from the outputs); "
                                       f"{summary.pseudonym_residuals} residual known names")
    out.print(table)
    for rejected in summary.rejected:
        out.print(f"[yellow]rejected[/yellow] {rejected['error']}", soft_wrap=True)


@app.command()
def serve(
    watch: Annotated[Path, typer.Option("--watch", help="Folder of transcripts to annotate on each run.", exists=True,
                                        file_okay=False)],
    out_dir: Annotated[Path, typer.Option("--out", help="Output corpus folder.")],
    cron: Annotated[str, typer.Option(help="When to run (cron, server time zone).")] = "0 2 * * *",
    metadata: Annotated[Path | None, typer.Option(help="Speaker sidecar (CSV or YAML).", exists=True)] = None,
    model: Annotated[str | None, typer.Option(help="Model id@version, id@latest or a model folder.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run config TOML, read at each run.", exists=True)] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "epistance-annotate",
    tagger_factory: Annotated[str | None, typer.Option(
        hidden=True, help="module:callable returning a TaggerSource (plugins, tests).")] = None,
) -> None:
    """Serve a Prefect deployment that annotates new or changed transcripts in WATCH on a schedule.

    Needs a running Prefect server (`prefect server start --host 127.0.0.1`, then
    PREFECT_API_URL=http://127.0.0.1:4200/api, or orchestration.api_url in the run config); stops on Ctrl-C
    or SIGTERM.
    See docs/orchestration.md.
    """
    import os

    from pipeline.config import load_run_config
    from pipeline.errors import ConfigError
    from pipeline.flows.runtime import configure_prefect, wait_api

    try:
        orchestration = load_run_config(config).orchestration
        url = orchestration.api_url or os.environ.get("PREFECT_API_URL")
        if not url:
            raise ConfigError("scheduled runs need a running Prefect server; none is configured",
                              hint="run `prefect server start --host 127.0.0.1` and set "
                                   "PREFECT_API_URL=http://127.0.0.1:4200/api (or orchestration.api_url in the run config)")
        configure_prefect(orchestration, quiet=False)
        os.environ["PREFECT_API_URL"] = url
        wait_api(url)
        from pipeline.flows.serve import serve_annotate

        serve_annotate(watch, out_dir, cron, config_path=config, metadata=metadata, model=model,
                       tagger_factory=tagger_factory, name=name)
    except PipelineError as error:
        _fail(error)


@app.command()
def tag(
    input_file: Annotated[Path, typer.Argument(
        help='JSON lines {"id": ..., "text": ..., "context": optional talk before the sentence}.', exists=True)],
    output: Annotated[Path, typer.Option("--out", help="Output JSON lines.")],
    model: Annotated[str | None, typer.Option(help="Model id@version, id@latest or a model folder.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 64,
    precision: Annotated[Precision, typer.Option(help="auto, bfloat16, int8 or float32 (docs/performance.md).")] = Precision.auto,
) -> None:
    """Tag sentences you already have: one output line per input line, in order."""
    from pipeline.atomic import write_atomic
    from pipeline.tag import tag_texts

    rows, problems = [], []
    with open(input_file, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or not isinstance(row.get("text"), str) or "id" not in row:
                    raise ValueError
                rows.append(row)
            except ValueError:
                problems.append(f"{input_file}, line {number}: expected an object with 'id' and a string 'text'")
    try:
        tagger = _tagger_source(model, batch_size, precision.value).load()
    except PipelineError as error:
        _fail(error)
    # a row's optional "context" is the talk before its sentence (the previous turn and the
    # turn so far): the shipped model reads it as `epistance annotate` gives it
    contexts = [c if isinstance(c := r.get("context"), str) else "" for r in rows]
    predictions = tag_texts(tagger, (r["text"] for r in rows), batch_size, contexts)

    def write(handle) -> None:  # type: ignore[no-untyped-def]
        for row, prediction in zip(rows, predictions):
            record = {"id": row["id"], **prediction.model_dump()}
            handle.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")

    write_atomic(output, write)
    for problem in problems:
        console.print(f"[yellow]skipped[/yellow] {problem}")
    out.print(f"tagged {len(rows)} sentences with {tagger.model_ref} → {output}")
    raise typer.Exit(EXIT_REJECTED if problems else EXIT_OK)


@app.command()
def verify(corpus: Annotated[Path, typer.Argument(help="An annotated corpus folder.", exists=True)]) -> None:
    """Check the manifest against the files: missing, altered or unlisted files."""
    from pipeline.corpus_io import verify_corpus

    try:
        problems = verify_corpus(corpus)
    except PipelineError as error:
        _fail(error)
    for problem in problems:
        out.print(f"[red]problem[/red] {problem}")
    if problems:
        raise typer.Exit(EXIT_REJECTED)
    out.print(f"{corpus}: all files match the manifest")


@app.command()
def train(
    config: Annotated[Path, typer.Option(help="Training config TOML.")] = Path("configs/train/default.toml"),
    output: Annotated[Path | None, typer.Option("--out", help="Model folder (default: its registry slot).")] = None,
    device: Annotated[str, typer.Option(help="cpu (reproducible run for run), cuda or cuda:N (a GPU: faster, "
                                             "repeated only as closely as its kernels allow).")] = "cpu",
) -> None:
    """Fine-tune the tagger (seeded, early stopping and calibration on dev) into a model folder."""
    from models import commands
    from models.errors import ModelError

    try:
        folder = commands.train(config, output, device=device)
    except (ModelError, ValueError, FileNotFoundError, FileExistsError) as error:
        console.print(f"[red]error[/red] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    out.print(f"model written to {folder}")


@app.command()
def evaluate(
    model: Annotated[str | None, typer.Argument(help="Model id@version, id@latest or a model folder.")] = None,
    data: Annotated[str, typer.Option(help="indomain-test | indomain-dev | goemotions-test | goemotions-dev | a file.")]
    = "indomain-test",
    output: Annotated[Path | None, typer.Option("--out", help="Also write the metrics as JSON.")] = None,
    precision: Annotated[Precision, typer.Option(help="float32 (default: as trained), bfloat16, int8 or auto "
                                                      "(as `annotate` runs it here).")] = Precision.float32,
) -> None:
    """Score a model on held-out data: macro-F1, per-class P/R/F1, confusion matrices, calibration."""
    from models import commands
    from models.errors import ModelError

    try:
        commands.evaluate(model, data, output=output, precision=precision.value)
    except (ModelError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]error[/red] {error}")
        raise typer.Exit(EXIT_USAGE) from None


from pipeline.interop_cli import register as _register_interop

_register_interop(app)
from pipeline.compare_cli import register as _register_compare

_register_compare(app)


if __name__ == "__main__":
    app()
