"""The PipelineError family: stable codes, file and place, never transcript text.

The core raises these; the caller (CLI, flow) decides the policy: record the input as
rejected in the manifest and go on with the others.
"""
from __future__ import annotations

from pathlib import Path


class PipelineError(Exception):
    """Base of every error epistance raises on purpose.

    `code` is stable (documented in docs/errors.md); `where` names the file and a place in
    it (line, cue, byte offset, row); `hint` says how to fix it. No transcript text.
    """

    code = "E000"

    def __init__(self, message: str, *, path: Path | str | None = None, where: str | None = None,
                 hint: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.where = where
        self.hint = hint
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        place = self.path or ""
        if self.where:
            place = f"{place}, {self.where}" if place else self.where
        text = f"[{self.code}] {place}: {self.message}" if place else f"[{self.code}] {self.message}"
        return f"{text} (fix: {self.hint})" if self.hint else text


class InputError(PipelineError):
    """An input file cannot be read as a transcript. Deterministic: retrying won't help."""

    code = "E100"


class EmptyInputError(InputError):
    code = "E101"


class BinaryInputError(InputError):
    code = "E102"


class EncodingError(InputError):
    code = "E103"


class UnsupportedFormatError(InputError):
    code = "E104"


class MalformedInputError(InputError):
    code = "E105"


class InputTooLargeError(InputError):
    code = "E106"


class CorruptDocxError(InputError):
    code = "E107"


class MetadataError(PipelineError):
    """The speaker sidecar is malformed."""

    code = "E200"


class ConfigError(PipelineError):
    code = "E300"


class ModelUnavailableError(PipelineError):
    """No trained model could be found or loaded."""

    code = "E400"


class CorpusError(PipelineError):
    """An annotated corpus on disk is missing, altered or locked."""

    code = "E500"


class CorpusLockedError(CorpusError):
    code = "E501"
