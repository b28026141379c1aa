"""Offline by default: hub and telemetry switches set before the libraries load.

Called by the entry points (CLI, flows), not on import of the core, so a library user
who wants a hub can still have one. Values already set by the user are kept.
"""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
}


def enforce_offline() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
