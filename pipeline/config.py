"""Run configuration: TOML in configs/ loaded into pydantic models, unknown keys rejected.

The resolved config is recorded (as its hash) in every manifest, so a change to
segmentation or tagging settings recomputes exactly what it affects.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError
from pipeline.ingest import IngestConfig
from pipeline.ingest.markup import MARKUP_REVISION
from pipeline.precision import Precision, model_has_int8_calibration, resolve_precision
from pipeline.pseudonymise import PseudonymiseConfig
from pipeline.segment import SegmentConfig
from pipeline.tag import DEFAULT_BATCH_SIZE, TAGGING_REVISION

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_RUN_CONFIG = CONFIG_DIR / "run" / "default.toml"


class TagConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None  # "id@version", "id@latest", a model folder; None = the shipped default
    batch_size: int = DEFAULT_BATCH_SIZE  # rows per forward batch
    tag_roles: tuple[str, ...] = ("participant", "other", "unknown")
    #: auto | bfloat16 | int8 | float32 (pipeline.precision; docs/performance.md)
    precision: Precision = "auto"


class OrchestrationConfig(BaseModel):
    """How `epistance annotate` runs: through a Prefect flow (default) or the core directly.

    None of this changes what is computed, so it is not part of the recompute hash.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    orchestrator: Literal["prefect", "none"] = "prefect"
    # Prefect's home (database, settings) and result storage; relative to the working
    # folder of the command (the project folder).
    prefect_home: Path = Path(".epistance/prefect")
    # A running Prefect server ("http://127.0.0.1:4200/api"); None: the PREFECT_API_URL
    # environment variable, else a temporary local server for the length of the command.
    api_url: str | None = None
    task_runner: Literal["thread", "dask"] = "thread"
    # With task_runner = "dask": a scheduler ("tcp://127.0.0.1:8786"); None: a LocalCluster.
    dask_address: str | None = None
    # Threads of the thread runner, or worker processes of the LocalCluster; on the direct
    # path (orchestrator "none"), its lanes (pipeline.lanes).
    max_workers: int = Field(default=2, ge=1, le=256)
    # Tries after a transient I/O error (EIO, EAGAIN...) per transcript; bad inputs are never retried.
    retries: int = Field(default=2, ge=0, le=10)
    retry_delay_s: float = Field(default=1.0, ge=0)


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ingest: IngestConfig = IngestConfig()
    segment: SegmentConfig = SegmentConfig()
    tag: TagConfig = TagConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    pseudonymise: PseudonymiseConfig = PseudonymiseConfig()

    def recompute_hash(self) -> str:
        """Hash of the settings that change sentences or labels (not batch sizes)."""
        relevant = {
            "ingest": self.ingest.model_dump(mode="json"),
            "segment": self.segment.model_dump(mode="json", exclude={"batch_size"}),
            "tag_roles": list(self.tag.tag_roles),
            "tagging": TAGGING_REVISION,
            "markup": MARKUP_REVISION,
        }
        calibrated = self.tag.precision in ("auto", "int8") and model_has_int8_calibration(self.tag.model)
        precision = resolve_precision(self.tag.precision, calibrated)
        if precision != "float32":  # probabilities differ slightly from the float32 model's
            # int8 with and without smoothing give different numbers
            relevant["tag_precision"] = "int8-smoothed" if precision == "int8" and calibrated else precision
        if self.pseudonymise.enabled:  # only when on: corpora made without it keep their keys
            relevant["pseudonymise"] = self.pseudonymise.recompute_material()
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def load_run_config(path: Path | None = None) -> RunConfig:
    path = path or DEFAULT_RUN_CONFIG
    try:
        with open(path, "rb") as handle:
            return RunConfig.model_validate(tomllib.load(handle))
    except FileNotFoundError:
        raise ConfigError("config file not found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML ({exc})", path=path) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems, path=path, hint="see configs/run/default.toml for the known keys") from None
