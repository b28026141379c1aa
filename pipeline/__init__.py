"""epistance core: ingest, segment, tag, write, compare. No prefect or torch import at load."""

__version__ = "0.1.0"
