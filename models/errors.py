"""Errors the models package raises on purpose. Messages say what was expected, what was
found and how to fix it, citing files, lines and fields - never sentence text."""
from __future__ import annotations


class ModelError(Exception):
    """Base of the models package's errors."""


class BaseModelError(ModelError):
    """The base encoder is missing, unpinned, or its bytes differ from the pin."""


class DataError(ModelError, ValueError):
    """A training or evaluation data file is missing or malformed."""


class ModelIntegrityError(ModelError):
    """A model directory fails its manifest check or holds a forbidden (pickle) file."""


class ModelNotFoundError(ModelError, LookupError):
    """A model reference does not resolve in the registry."""
