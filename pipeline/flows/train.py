"""train_tagger_flow: train the tagger from a training config, as one Prefect task.

A thin wrapper of `models.commands.train` (which calls `models.train.train_model`): it
passes the config path and returns the model folder and its headline metrics (numbers),
never the model. Training is deterministic and long: no retries.
"""
from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, ConfigDict


class TrainSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_dir: str
    metrics: dict[str, float]  # the flat numeric entries of the model's metrics.json


def _headline_metrics(model_dir: Path) -> dict[str, float]:
    path = model_dir / "metrics.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    flat: dict[str, float] = {}

    def walk(prefix: str, value: object, depth: int) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int | float):
            flat[prefix] = float(value)
        elif isinstance(value, dict) and depth < 2:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item, depth + 1)

    walk("", data, 0)
    return dict(sorted(flat.items()))


@task(name="train-tagger", cache_policy=NO_CACHE, persist_result=False)
def train_tagger(config_path: Path, output_dir: Path | None, registry_dir: Path | None,
                 device: str = "cpu") -> TrainSummary:
    from models import commands

    model_dir = Path(commands.train(config_path, output_dir, registry_dir, device=device))
    return TrainSummary(model_dir=str(model_dir), metrics=_headline_metrics(model_dir))


@flow(name="train-tagger", persist_result=False, log_prints=False)
def train_tagger_flow(config_path: Path = Path("configs/train/default.toml"), output_dir: Path | None = None,
                      registry_dir: Path | None = None, device: str = "cpu") -> TrainSummary:
    """Train a tagger (seeded; see models.train) into `output_dir` or its registry slot, on
    `device` (cpu, or cuda where the worker has a GPU)."""
    summary = train_tagger(config_path, output_dir, registry_dir, device)
    lines = [f"model folder: `{summary.model_dir}`", "", "| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in summary.metrics.items()]
    create_markdown_artifact("\n".join(lines), key="train-tagger", description="trained model and its metrics")
    return summary
