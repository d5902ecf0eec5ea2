"""The split names and Arrow files of every dataset (torch-free, no registry): the dataset catalog
registers them as metadata (which the grid compiler reads) and the Arrow reader looks files up here."""

from __future__ import annotations

# The synthetic benchmark's splits: every task form has all three.
SYNTHETIC_SPLITS = ("train", "val", "test")
_COCO, _F30K = "coco_caption_karpathy_", "f30k_caption_karpathy_"
# dataset → split → Arrow file stems; "{i}" marks numbered shards (sbu_0, sbu_1, ...). METER's use:
# pre-training = coco train+restval, vg, sbu, gcc; retrieval val/test = the Karpathy test split.
# (harness.data.arrow.DEFAULT_SPLITS is this table keyed "dataset/split"; data.splits overrides it.)
ARROW_FILES: dict[str, dict[str, tuple[str, ...]]] = {
    "coco": {"train": (_COCO + "train", _COCO + "restval"), "val": (_COCO + "test",), "test": (_COCO + "test",),
             "karpathy_val": (_COCO + "val",)},
    "f30k": {"train": (_F30K + "train", _F30K + "val"), "val": (_F30K + "test",), "test": (_F30K + "test",)},
    "vg": {"train": ("vg",)},
    "sbu": {"train": ("sbu_{i}",)},
    "gcc": {"train": ("conceptual_caption_train_{i}",), "val": ("conceptual_caption_val_{i}",)},
    # ViLT/METER train on train + (most of) val and keep a small rest_val for validation.
    "vqav2": {"train": ("vqav2_train", "vqav2_trainable_val"), "val": ("vqav2_rest_val",),
              "test": ("vqav2_test",), "test-dev": ("vqav2_test-dev",)},
    # METER's own split names too: NLVR2 dev and test-P (= test1), SNLI-VE dev.
    "nlvr2": {"train": ("nlvr2_train",), "val": ("nlvr2_dev",), "dev": ("nlvr2_dev",), "test": ("nlvr2_test1",),
              "test-p": ("nlvr2_test1",)},
    "snli-ve": {"train": ("snli_train",), "val": ("snli_dev",), "dev": ("snli_dev",), "test": ("snli_test",)},
}
