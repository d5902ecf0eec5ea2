"""Adapting pre-trained vision weights to another image size.

A ViT trained at 224px has one absolute position embedding per patch of a 14×14 grid; at 384px
the grid is 24×24 (resampled as METER does, see ``resize_abs_pos_embed``). Swin and BEiT instead
learn relative-position bias tables whose size follows the attention window, which changes when the
window is clamped to a smaller feature map (Swin) or is the patch grid itself (BEiT); those are
resampled with timm's own functions. Every other tensor is left untouched, so loading at the
pre-training size is an exact identity.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Buffers that the model derives from its geometry; a checkpoint's copy is for the old geometry.
DERIVED_BUFFERS = ("relative_position_index", "attn_mask")


def resize_abs_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int) -> torch.Tensor:
    """[1, P+N, D] position embedding → [1, P+H*W, D] for the patch ``grid`` (H, W); the P prefix
    tokens' embeddings (class, distillation) are kept as they are.

    METER's law (``adapt_position_encoding`` in meter/modules/clip_model.py): plain bicubic
    ``F.interpolate``, antialias off. timm's resampler turns antialias on, which for bicubic also
    switches the kernel (a = -0.5 instead of -0.75): 1.4e-2 apart on CLIP's table when upsampling."""
    n_old = pos_embed.shape[1] - num_prefix_tokens
    side = math.isqrt(n_old)
    if side * side != n_old:
        raise ValueError(f"position embedding with {n_old} patch positions is not a square grid")
    if (side, side) == tuple(grid):
        return pos_embed
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    width = patches.shape[-1]
    table = patches.reshape(patches.shape[0], side, side, width).permute(0, 3, 1, 2).float()
    table = F.interpolate(table, size=tuple(grid), mode="bicubic", align_corners=False, antialias=False)
    patches = table.permute(0, 2, 3, 1).reshape(patches.shape[0], -1, width).to(pos_embed.dtype)
    return torch.cat([prefix, patches], dim=1)


def resize_grid_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """[1, H, W, D] position embedding (VOLO) → [1, H', W', D]."""
    from timm.layers import resample_abs_pos_embed_nhwc

    if tuple(pos_embed.shape[1:3]) == tuple(grid):
        return pos_embed
    return resample_abs_pos_embed_nhwc(pos_embed, new_size=list(grid))


def resize_rel_pos_table(table: torch.Tensor, window: tuple[int, int], new_shape: tuple[int, ...]) -> torch.Tensor:
    """[(2w-1)², heads] (+3 rows for BEiT's class-token entries) → the table for ``window``."""
    from timm.layers import resize_rel_pos_bias_table

    if tuple(table.shape) == tuple(new_shape):
        return table
    return resize_rel_pos_bias_table(table, new_window_size=(int(window[0]), int(window[1])),
                                     new_bias_shape=tuple(new_shape))


def _owner(model: nn.Module, key: str) -> nn.Module:
    path = key.rsplit(".", 1)[0] if "." in key else ""
    return model.get_submodule(path) if path else model


def _patch_grid(owner: nn.Module) -> tuple[int, int]:
    patch_embed = getattr(owner, "patch_embed", None)
    grid = getattr(patch_embed, "grid_size", None)
    if grid is None:
        raise ValueError(f"cannot tell the patch grid of {type(owner).__name__} (no patch_embed.grid_size)")
    return int(grid[0]), int(grid[1])


def _window(owner: nn.Module) -> tuple[int, int]:
    window = getattr(owner, "window_size", None)
    if window is None:
        raise ValueError(f"{type(owner).__name__} has a relative position table but no window_size")
    if isinstance(window, int):
        return window, window
    return int(window[0]), int(window[1])


def adapt_tensor(key: str, value: torch.Tensor, target: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """``value`` from a checkpoint, resampled to ``target``'s shape where the key is a position table."""
    if tuple(value.shape) == tuple(target.shape):
        return value
    leaf = key.rsplit(".", 1)[-1]
    owner = _owner(model, key)
    if leaf == "pos_embed" and value.dim() == 3:
        grid = _patch_grid(owner)
        prefix = target.shape[1] - grid[0] * grid[1]
        return resize_abs_pos_embed(value, grid, prefix)
    if leaf == "pos_embed" and value.dim() == 4:
        return resize_grid_pos_embed(value, (target.shape[1], target.shape[2]))
    if leaf == "relative_position_bias_table":
        return resize_rel_pos_table(value, _window(owner), tuple(target.shape))
    raise ValueError(f"checkpoint tensor '{key}' has shape {tuple(value.shape)}, the model expects "
                     f"{tuple(target.shape)}, and it is not a position table that can be resampled")


def adapt_state_dict(state_dict: dict[str, Any], model: nn.Module) -> dict[str, Any]:
    """A copy of ``state_dict`` that loads into ``model`` (built at another image size): position
    tables resampled, geometry-derived buffers left to the model. Same size → same tensors."""
    own = model.state_dict()
    out: dict[str, Any] = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in DERIVED_BUFFERS and key not in own:
            continue  # non-persistent in this model: it computes its own
        if key in own and isinstance(value, torch.Tensor):
            out[key] = adapt_tensor(key, value, own[key], model)
        else:
            out[key] = value
    return out
