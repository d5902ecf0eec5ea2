"""The strict base every spec section derives from: frozen, typed, unknown keys rejected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Frozen pydantic model that rejects unknown keys and never coerces str↔number."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)
