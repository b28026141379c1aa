"""`epistance compare`: group comparison of an annotated corpus (see docs/compare.md)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline.errors import ConfigError, PipelineError

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def confusion_from_model_metrics(metrics: dict[str, Any], split: str = "indomain_test") -> dict[str, Any] | None:
    """The held-out confusion matrices of a model's metrics.json, in compare's structure.

    Stance and affect focus come from the in-domain test split; emotions from the same
    split's per-label 2x2 tables (GoEmotions test if the in-domain split has none).
    """
    def section(name: str) -> dict[str, Any]:
        found = metrics.get(name) or metrics.get("test", {}).get(name.split("_", 1)[0]) or {}
        return found if isinstance(found, dict) else {}

    indomain, goemotions = section(split), section("goemotions_test")
    result: dict[str, Any] = {}
    stance = (indomain.get("stance") or {}).get("confusion_matrix")
    if stance:
        result["stance"] = {"labels": stance["labels"], "confusion": stance["matrix"]}
    emotions = (indomain.get("emotions") or {}).get("per_label_confusion") or \
        (goemotions.get("emotions") or {}).get("per_label_confusion")
    if emotions:
        result["emotions"] = {label: {"confusion": [[c["tn"], c["fp"]], [c["fn"], c["tp"]]]}
                              for label, c in emotions.items()}
    affect = (indomain.get("affect_focus") or {}).get("confusion")
    if affect:
        result["affect_focus"] = {"confusion": [[affect["tn"], affect["fp"]], [affect["fn"], affect["tp"]]]}
    return result or None


def _model_confusion(corpus: Path, scratch: Path) -> Path | None:
    """Find the corpus's model in the registry and write its confusion matrices for compare."""
    from pipeline.corpus_io import read_manifest

    manifest = read_manifest(corpus)
    if manifest is None:
        return None
    try:
        from models.registry import resolve_ref

        _, folder = resolve_ref(manifest.model)
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - no registry entry for this model (e.g. a test model): no correction
        return None
    confusion = confusion_from_model_metrics(metrics)
    if confusion is None:
        return None
    scratch.write_text(json.dumps(confusion))
    return scratch


def compare(
    corpus: Annotated[Path, typer.Argument(help="An annotated corpus folder.", exists=True, file_okay=False)],
    by: Annotated[list[str], typer.Option("--by", help="Speaker attribute (or role) to group by; repeatable.")],
    report_dir: Annotated[Path, typer.Option("--out", help="Report folder.")],
    where: Annotated[list[str] | None, typer.Option("--where", help="Filter key=value (any attribute or role); repeatable.")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Model metrics.json with held-out confusion matrices "
                                                          "(default: the corpus model's, from the registry).")] = None,
    include_interviewers: Annotated[bool, typer.Option(help="Keep interviewer turns (excluded by default).")] = False,
    n_boot: Annotated[int, typer.Option(help="Cluster-bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed of the bootstrap.")] = 0,
) -> None:
    """Compare stance, emotion and affect-focus shares between groups of speakers."""
    from pipeline.compare import compare_corpus

    try:
        filters = {}
        for item in where or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"--where takes key=value; found {item!r}")
            filters[key.strip()] = value.strip()
        report_dir.mkdir(parents=True, exist_ok=True)
        confusion = metrics or _model_confusion(corpus, report_dir / ".confusion.json")
        result = compare_corpus(corpus, list(by), filters or None, report_dir, confusion=confusion,
                                include_interviewers=include_interviewers, seed=seed, n_boot=n_boot)
    except PipelineError as error:
        console.print(f"[red]error[/red] {error.render()}")
        raise typer.Exit(2) from None
    finally:
        (report_dir / ".confusion.json").unlink(missing_ok=True)
    small = [w for w in result.warnings if w.startswith("SMALL GROUP")]
    for warning in [w for w in result.warnings if not w.startswith("SMALL GROUP")]:
        out.print(f"[bold yellow]warning[/bold yellow] {warning}")
    if small:  # one line each; the full explanation is in warnings.txt and the report
        out.print(f"[bold yellow]warning[/bold yellow] {len(small)} groups have fewer than 3 speakers: "
                  "their intervals describe those speakers only and cannot be generalised (see warnings.txt)")
        for warning in small:
            out.print(f"  {warning.split('.')[0]}")
    out.print(f"{result.n_sentences} sentences from {result.n_speakers} speakers in {len(result.groups)} groups; "
              f"report: {report_dir / 'report.html'}")


def register(app: typer.Typer) -> None:
    app.command()(compare)
