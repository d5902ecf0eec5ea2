"""Fine-tuning tasks, one module each (``vqa``, ``nlvr2``, ``snli_ve``, ``retrieval``): every
module owns its head, batch fields, loss and evaluation (the contract is ``harness.train.plugin``)."""

from __future__ import annotations

from typing import Any


def build_task(name: str, **kwargs: Any) -> Any:
    """The task plug-in registered as ``name`` (its registry entry builds it)."""
    from harness.registry import TASKS

    if name not in TASKS:
        raise ValueError(TASKS.unknown_message(name))
    return TASKS.build_plugin(name, **kwargs)


def zero_shot_retrieval() -> Any:
    """METER's zero-shot retrieval after pre-training: ranked by the ITM score."""
    return build_task("retrieval", head="itm")
