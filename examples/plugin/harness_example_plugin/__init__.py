"""An example meter-harness plug-in, registered from outside the package.

- vision encoder ``patch-mlp``: a patch embedding and one MLP-mixer-like block (random init);
- objective ``itc``: image-text contrastive loss on the unfused CLS tokens (ALBEF's ITC);
- task ``entailment``: SNLI-VE's samples as a binary task (entailment or not).

Each registration is one decorator; the builders import torch only when called, so listing and
validating stay torch-free like the package's own catalogs.
"""

from __future__ import annotations

from typing import Any

from harness.registry import OBJECTIVES, TASKS, VISION_ENCODERS

__version__ = "0.1.0"

_MEAN = _STD = (0.5, 0.5, 0.5)


@VISION_ENCODERS.register("patch-mlp", "example plug-in: patch embedding + one MLP block, random init",
                          family="example-patch-mlp", mean=_MEAN, std=_STD, image_size=64, patch_size=16,
                          width=48, layers=1)
def _patch_mlp(**kwargs: Any) -> Any:
    from harness_example_plugin.parts import PatchMLPEncoder

    return PatchMLPEncoder(**kwargs)


@OBJECTIVES.register("itc", "example plug-in: image-text contrastive loss on the unfused CLS tokens")
def _itc(**kwargs: Any) -> Any:
    from harness_example_plugin.parts import ImageTextContrastive

    return ImageTextContrastive(**kwargs)


@TASKS.register("entailment", "example plug-in: SNLI-VE's samples as entailment vs not", head_mult=10,
                metric="accuracy", reads="snli-ve")
def _entailment(**kwargs: Any) -> Any:
    from harness_example_plugin.parts import Entailment

    return Entailment(**kwargs)
