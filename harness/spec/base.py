"""The strict base every spec section derives from: frozen, typed, unknown keys rejected.

Strict where a user would be surprised: numbers must be finite, a string is never coerced to a
number (``image_size: '64'``), a boolean is never taken as a number (``steps: true``), and
whole numbers stay below ``MAX_INT`` (no billion-step or billion-image requests by a typo).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

MAX_INT = 2**31 - 1


def _number_kind(annotation: Any) -> type | None:
    """int or float when a field (or its tuple/dict items) holds numbers, else None."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        kinds = {_number_kind(a) for a in typing.get_args(annotation) if a is not type(None)}
        has_text = any(a in (str, bool) for a in typing.get_args(annotation))
        return None if has_text or len(kinds) != 1 else kinds.pop()
    if origin in (tuple, list, dict):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return _number_kind(args[-1]) if args else None
    return annotation if annotation in (int, float) else None


def check_number(value: Any, kind: type) -> Any:
    """``value`` itself when it is a real ``kind`` (an int also passes as a float); else ValueError."""
    word = "whole number" if kind is int else "number"
    if isinstance(value, bool):
        raise ValueError(f"expected a {word}, got {str(value).lower()} (a boolean)")
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            raise ValueError(f"expected a {word}, got '{value}', which is not a valid number") from None
        raise ValueError(f"expected a {word}, got the string '{value}'; write it without quotes")
    if kind is int and isinstance(value, int) and not abs(value) <= MAX_INT:
        raise ValueError(f"{value} is out of range (at most {MAX_INT:,})")
    return value


class Strict(BaseModel):
    """Frozen pydantic model that rejects unknown keys and never coerces str/bool → number."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_coercion(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_kind(field.annotation) if field is not None else None
        if kind is None or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [check_number(v, kind) for v in value]
        if isinstance(value, dict):
            return {k: check_number(v, kind) for k, v in value.items()}
        return check_number(value, kind)
