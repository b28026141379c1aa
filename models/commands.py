"""Plain functions behind the CLI's model commands (`epistance train`, `epistance evaluate`).

They load config, call one core function and present the result; nothing here is needed
to use the models package from Python.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from models.config import DEFAULT_TRAIN_CONFIG, DataConfig, TrainConfig, load_train_config

DATASETS = ("indomain-test", "indomain-dev", "goemotions-test", "goemotions-dev")


def _ensure_logging() -> None:
    """Show INFO progress from the models package when the caller configured no logging."""
    if logging.getLogger().handlers or logging.getLogger("models").handlers:
        return
    import sys

    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:  # files and pipes get one plain line per record
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("models")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def train(
    config_path: Path = DEFAULT_TRAIN_CONFIG,
    output_dir: Path | None = None,
    registry_dir: Path | None = None,
    device: str = "cpu",
) -> Path:
    """Train the model a config describes into ``output_dir`` (default: its registry slot
    ``<registry>/<model_id>/<version>/``) on ``device`` (models.train.training_device);
    returns the model directory."""
    from models.registry import model_path
    from models.train import train_model

    _ensure_logging()
    config = load_train_config(Path(config_path))
    target = Path(output_dir) if output_dir is not None else model_path(config.model_id, config.version, registry_dir)
    return train_model(config, target, device=device)


def load_dataset(
    data: str,
    gold_path: Path | None = None,
    goemotions_dir: Path | None = None,
) -> tuple[str, list[Any]]:
    """Examples for a named evaluation set, or a file: ``*.jsonl`` in the gold format (all
    its rows) or ``*.tsv`` in the GoEmotions Ekman format (labels.txt beside it)."""
    from models.data import load_goemotions, load_gold
    from models.labels import load_label_schema

    schema = load_label_schema()
    defaults = TrainConfig()
    gold = gold_path or defaults.resolve(DataConfig().gold)
    ge_dir = goemotions_dir or defaults.resolve(DataConfig().goemotions_dir)
    if data in ("indomain-test", "indomain-dev"):
        return data, load_gold(gold, schema, splits=[data.split("-")[1]])
    if data in ("goemotions-test", "goemotions-dev"):
        return data, load_goemotions(ge_dir, data.split("-")[1], schema)  # type: ignore[arg-type]
    path = Path(data)
    if path.suffix == ".jsonl":
        return str(path), load_gold(path, schema)
    if path.suffix == ".tsv":
        split = path.stem
        if split not in ("train", "dev", "test"):
            raise ValueError(f"{path}: a GoEmotions file must be named train.tsv, dev.tsv or test.tsv")
        return str(path), load_goemotions(path.parent, split, schema)  # type: ignore[arg-type]
    raise ValueError(f"unknown evaluation data {data!r}: expected one of {DATASETS} or a .jsonl/.tsv file")


def evaluate(
    model_ref: str | None = None,
    data: str = "indomain-test",
    registry_dir: Path | None = None,
    gold_path: Path | None = None,
    goemotions_dir: Path | None = None,
    output: Path | None = None,
    show: bool = True,
    precision: str = "float32",
) -> dict[str, Any]:
    """Score a registered model on a data set; prints readable tables, returns the metrics.

    ``precision`` (pipeline.precision) scores the model as `epistance annotate` would run it.

    ``data``: ``indomain-test`` | ``indomain-dev`` | ``goemotions-test`` | ``goemotions-dev``
    or a path (see `load_dataset`). ``output`` also writes the metrics as JSON.
    """
    from models.evaluate import evaluate_tagger
    from models.registry import load_tagger

    tagger = load_tagger(model_ref, registry_dir, precision=precision)
    name, examples = load_dataset(data, gold_path, goemotions_dir)
    metrics = {"model": tagger.model_ref, "data": name, "precision": getattr(tagger, "precision", precision),
               **evaluate_tagger(tagger, examples)}
    if output is not None:
        Path(output).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if show:
        print_metrics(metrics)
    return metrics


def print_metrics(metrics: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{metrics.get('model', '')}[/bold] on [bold]{metrics.get('data', '')}[/bold] "
                  f"(n = {metrics['n']})")

    def per_class(title: str, rows: dict[str, dict[str, Any]]) -> None:
        table = Table(title=title)
        for col in ("class", "precision", "recall", "F1", "support"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for label, v in rows.items():
            table.add_row(label, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
        console.print(table)

    def matrix(title: str, cm: dict[str, Any]) -> None:
        table = Table(title=f"{title} (rows gold, columns predicted)")
        table.add_column("")
        for label in cm["labels"]:
            table.add_column(label, justify="right")
        for label, row in zip(cm["labels"], cm["matrix"]):
            table.add_row(label, *(str(x) for x in row))
        console.print(table)

    if "stance" in metrics:
        s = metrics["stance"]
        per_class(f"stance: macro-F1 {s['macro_f1']:.3f}, accuracy {s['accuracy']:.3f}, ECE {s['ece']:.3f}",
                  s["per_class"])
        matrix("stance confusion", s["confusion_matrix"])
    if "emotions" in metrics:
        e = metrics["emotions"]
        per_class(
            f"emotions: macro-F1 7 classes incl. neutral {e['macro_f1_7']:.3f}; "
            f"6 emotions {e['macro_f1_6']:.3f}; ECE {e['ece']:.3f}",
            e["per_class"],
        )
        matrix("emotions, single-label items", e["confusion_matrix_single_label"])
    if "affect_focus" in metrics:
        a = metrics["affect_focus"]
        c = a["confusion"]
        console.print(
            f"affect_focus: F1 {a['f1']:.3f}  precision {a['precision']:.3f}  recall {a['recall']:.3f}  "
            f"(positives {a['support']}; tn {c['tn']} fp {c['fp']} fn {c['fn']} tp {c['tp']}; ECE {a['ece']:.3f})"
        )
    for key in ("speaker", "source"):
        groups = metrics.get(f"by_{key}")
        if not groups:
            continue
        table = Table(title=f"by {key} (macro-F1 over classes present)")
        for col in (key, "n", "stance acc", "stance F1", "emotions F1 (7)", "affect F1"):
            table.add_column(col, justify="left" if col == key else "right")
        for g, v in groups.items():
            table.add_row(
                g, str(v["n"]),
                *(f"{v[k]:.3f}" if v.get(k) is not None else "-" for k in
                  ("stance_accuracy", "stance_macro_f1_present", "emotions_macro_f1_7_present", "affect_focus_f1")),
            )
        console.print(table)
