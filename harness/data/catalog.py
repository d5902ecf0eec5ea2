"""Names of datasets (torch-free), with the facts the grid compiler and the plan read from the
registry (spec sits below data and never imports it): split names, ViLT/METER Arrow file stems,
training sizes."""

from __future__ import annotations

from typing import Any

from harness.data.splits import ARROW_FILES, SYNTHETIC_SPLITS
from harness.registry import DATASETS


def _dataset(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.data.datasets import build_dataset

        return build_dataset(name, **kwargs)

    DATASETS.register(name, description, files=ARROW_FILES.get(name, {}), **meta)(build)


_dataset("synthetic", "procedural shape scenes in every task form (embedded default, no download)",
         tasks=("pretrain", "vqa", "nlvr2", "snli-ve", "retrieval"), splits=SYNTHETIC_SPLITS)
# train_size: training samples per epoch of the fine-tuning task (one per caption / question / statement), from
# the datasets' published sizes: COCO Karpathy train+restval 113,287 images × 5 captions; Flickr30k Karpathy train
# 29,000 images × 5 captions; VQAv2 train 443,757 + val 214,354 questions (METER trains on both); NLVR2 train
# 86,373 statements; SNLI-VE train 529,527 hypotheses. The plan's cost model reads them (harness/dispatch/cost.py).
_dataset("coco", "COCO captions, Karpathy splits (pre-training: train+restval)", tasks=("pretrain", "retrieval"),
         train_size=566_435)
_dataset("vg", "Visual Genome region descriptions", tasks=("pretrain",))
_dataset("sbu", "SBU captions", tasks=("pretrain",))
_dataset("gcc", "Conceptual Captions (GCC 3M)", tasks=("pretrain",))
_dataset("f30k", "Flickr30k, Karpathy splits", tasks=("retrieval",), train_size=145_000)
_dataset("vqav2", "VQAv2 (train+val for training, test-dev via the evaluation server)", tasks=("vqa",),
         train_size=658_111)
_dataset("nlvr2", "NLVR2 (dev, test-P)", tasks=("nlvr2",), train_size=86_373)
_dataset("snli-ve", "SNLI-VE", tasks=("snli-ve",), train_size=529_527)
