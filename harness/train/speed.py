"""Per-block ``torch.compile`` and activation checkpointing (``train.compile``,
``train.activation_checkpointing``).

Both act on the model's *blocks*: the repeated layers of the vision encoder, the text encoder,
the fusion and the decoder. Compiling block by block ("regional compilation") instead of the
whole model keeps compile time small: identical blocks share one compiled graph (parameters are
graph inputs), the glue between blocks (embeddings, readouts, heads, losses) stays eager, and a
new image size recompiles only the vision blocks' graph, not a whole-model graph with every
objective's branches. Blocks are compiled in place (``nn.Module.compile``), so parameter names,
checkpoints and optimizer groups do not change: neither setting changes a result or a run id.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

# Where blocks live in a MeterModel; heads and projections are small and stay eager.
BLOCK_ROOTS = ("vision", "text", "fusion", "decoder")
_CONTAINERS = (nn.ModuleList, nn.Sequential)


def find_blocks(model: nn.Module, roots: tuple[str, ...] = BLOCK_ROOTS) -> list[nn.Module]:
    """The blocks under ``model.<root>``: the elements of the outermost ``ModuleList``/``Sequential``
    containers that have sub-modules themselves (a timm ViT's ``blocks``, a Swin's stages, a
    transformers encoder's ``layer``, the fusion's layers). A container of leaf layers (a conv stem)
    is no block list and is left alone. A model without those roots (a test's stand-in) has none."""
    blocks: list[nn.Module] = []
    for root in roots:
        module = getattr(model, root, None)
        if isinstance(module, nn.Module):
            blocks.extend(_outermost_blocks(module))
    return blocks


def _outermost_blocks(module: nn.Module) -> Iterator[nn.Module]:
    for child in module.children():
        if isinstance(child, _CONTAINERS):
            elements = list(child.children())
            if elements and all(any(True for _ in e.children()) for e in elements):
                yield from elements
                continue
        yield from _outermost_blocks(child)


def speed_up_blocks(model: nn.Module, *, compile: bool, checkpointing: bool, backend: str = "inductor") -> int:
    """Compile and/or checkpoint every block of ``model`` in place; how many blocks there are.

    Compiled and checkpointed, each block runs its compiled forward under the checkpoint (compiling
    the checkpoint call instead would give the recomputation other dropout masks than the forward).
    """
    blocks = find_blocks(model)
    for block in blocks:
        if checkpointing:
            forward = torch.compile(block.forward, backend=backend) if compile else block.forward
            block.forward = functools.partial(_checkpointed, block, forward)  # type: ignore[method-assign]
        elif compile:
            block.compile(backend=backend)
    return len(blocks)


def _checkpointed(block: nn.Module, forward: Any, *args: Any, **kwargs: Any) -> Any:
    """Recompute the block's activations in backward instead of keeping them (memory for ~1/3 more
    compute). Non-reentrant checkpointing restores the RNG state, so the recomputation draws the same
    dropout masks and results do not change. Only while training with gradients."""
    if not (block.training and torch.is_grad_enabled()):
        return forward(*args, **kwargs)
    from torch.utils.checkpoint import checkpoint

    return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def compile_enabled(setting: bool | None, device: torch.device) -> bool:
    """``train.compile``: True/False as set; None ("auto") compiles on GPU only (on CPU the compile
    time outweighs the gain at the local profiles' tiny widths)."""
    return device.type == "cuda" if setting is None else bool(setting)


def apply(model: nn.Module, *, compile: bool, activation_checkpointing: bool,
          backend: str = "inductor") -> dict[str, int]:
    """Both settings on ``model``: ``{"compiled_blocks": n, "checkpointed_blocks": n}`` for the run's stats."""
    if not (compile or activation_checkpointing):
        return {"compiled_blocks": 0, "checkpointed_blocks": 0}
    n = speed_up_blocks(model, compile=compile, checkpointing=activation_checkpointing, backend=backend)
    return {"compiled_blocks": n if compile else 0, "checkpointed_blocks": n if activation_checkpointing else 0}
