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
# train_size: training samples per epoch of the fine-tuning task (one per caption / question / statement), from
# the datasets' published sizes: COCO Karpathy train+restval 113,287 images × 5 captions; Flickr30k Karpathy train
# 29,000 images × 5 captions; VQAv2 train 443,757 + val 214,354 questions (METER trains on both); NLVR2 train
# 86,373 statements; SNLI-VE train 529,527 hypotheses. The plan's cost model reads them (harness/spec/cost.py).
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

# Zero-shot retrieval after pre-training evaluates this split of pretrain.zero_shot's dataset.
ZERO_SHOT_SPLIT = "test"
# The dataset a fine-tuning task reads when its section names none.
DEFAULT_DATASET = {"vqa": "vqav2", "nlvr2": "nlvr2", "snli-ve": "snli-ve", "retrieval": "f30k"}
