"""Prefect flows around the core: the only package that imports prefect.

    annotate_corpus_flow   the corpus run, one task per transcript (pipeline.flows.annotate)
    train_tagger_flow      train a tagger from a training config (pipeline.flows.train)
    compare_flow           compare groups of speakers in a corpus (pipeline.flows.compare)
    run_annotate_flow      configure Prefect, start or find its API, run annotate_corpus_flow
    serve_annotate         a scheduled deployment that annotates new or changed transcripts

Importing this package imports no prefect: `pipeline.flows.runtime.configure_prefect` must
set Prefect's home and offline switches first, and the names above load on first use.
See docs/orchestration.md.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "annotate_corpus_flow": "pipeline.flows.annotate",
    "train_tagger_flow": "pipeline.flows.train",
    "compare_flow": "pipeline.flows.compare",
    "serve_annotate": "pipeline.flows.serve",
    "run_annotate_flow": "pipeline.flows.runtime",
    "configure_prefect": "pipeline.flows.runtime",
    "TaggerSpec": "pipeline.flows.workers",
}

__all__ = ["TaggerSpec", "annotate_corpus_flow", "compare_flow", "configure_prefect", "run_annotate_flow",
           "serve_annotate", "train_tagger_flow"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipeline.flows' has no attribute {name!r}")
