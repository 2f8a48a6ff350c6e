"""Naming JSON types in error messages ("must be a string, got number")."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def is_uuid(value: str) -> bool:
    """Whether an id from a URL or a pod name is a UUID (ours always are)."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
