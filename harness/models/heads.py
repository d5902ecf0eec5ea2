"""The base of every head. Heads themselves live with their objective or task plug-in
(``harness/train/objectives/``, ``harness/train/tasks/``); each declares ``lr_group = "head"``
and starts from METER's initialisation (normal(0, 0.02), zero bias, LayerNorm 1/0).

``model.pooled_dim`` is the width of the pooled pair feature a head reads: 2H (text ⊕ image
pooler) for encoder-only models, H (the decoder's class-token output) for encoder-decoder ones.
"""

from __future__ import annotations

from torch import nn


class Head(nn.Module):
    lr_group = "head"
