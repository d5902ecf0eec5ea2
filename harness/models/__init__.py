"""models: encoders, fusion, decoder, heads, ``MeterModel``, LR groups, tiny zoo.

``build_model`` and ``MeterModel`` are exported lazily so ``import harness.models`` (done by
the torch-free catalog and config modules) never imports torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MeterModel", "build_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness.models import meter

        return getattr(meter, name)
    raise AttributeError(f"module 'harness.models' has no attribute '{name}'")
