"""Names of datasets (torch-free). ``files`` are the ViLT/METER Arrow file stems."""

from __future__ import annotations

from typing import Any

from harness.registry import DATASETS


def _dataset(name: str, description: str, **meta: Any) -> None:
    def build(**kwargs: Any) -> Any:
        from harness.data.datasets import build_dataset

        return build_dataset(name, **kwargs)

    DATASETS.register(name, description, **meta)(build)


_dataset("synthetic", "procedural shape scenes in every task form (embedded default, no download)",
         tasks=("pretrain", "vqa", "nlvr2", "snli-ve", "retrieval"))
_dataset("coco", "COCO captions, Karpathy splits (pre-training: train+restval)", tasks=("pretrain", "retrieval"))
_dataset("vg", "Visual Genome region descriptions", tasks=("pretrain",))
_dataset("sbu", "SBU captions", tasks=("pretrain",))
_dataset("gcc", "Conceptual Captions (GCC 3M)", tasks=("pretrain",))
_dataset("f30k", "Flickr30k, Karpathy splits", tasks=("retrieval",))
_dataset("vqav2", "VQAv2 (train+val for training, test-dev via the evaluation server)", tasks=("vqa",))
_dataset("nlvr2", "NLVR2 (dev, test-P)", tasks=("nlvr2",))
_dataset("snli-ve", "SNLI-VE", tasks=("snli-ve",))
