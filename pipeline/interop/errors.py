"""Errors of the interop commands: they name the file and the row, never the text."""
from __future__ import annotations

from pipeline.errors import PipelineError


class InteropError(PipelineError):
    """An annotation file or an export cannot be read or written as asked."""

    code = "E600"


class AnnotationTextChangedError(InteropError):
    """An imported annotation's sentence text is not the text that was exported."""

    code = "E601"


class UnknownLabelError(InteropError):
    """An imported annotation uses a label the label schema does not have."""

    code = "E602"


class CorpusMismatchError(InteropError):
    """Two corpora or annotation files that should cover the same sentences do not."""

    code = "E603"
