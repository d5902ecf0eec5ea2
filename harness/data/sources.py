"""Task tables: one sample per caption / question / statement, images fetched lazily by index.

Both sources (synthetic scenes and ViLT/METER Arrow files) are turned into ``TaskTable``s,
so the torch datasets and collators in :mod:`harness.data.pipeline` never care where the
data came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> Any:
        """uint8 HWC array or RGB PIL image; None when the image cannot be decoded."""

    def where(self, index: int) -> str:
        """Where an image lives, for skip reports ("coco_caption_karpathy_val.arrow row 7")."""


class ArrayImages:
    """Images already in memory (or memory-mapped): uint8 [N,H,W,3]."""

    def __init__(self, array: np.ndarray, name: str = "synthetic") -> None:
        self.array = array
        self.name = name

    def __len__(self) -> int:
        return len(self.array)

    def load(self, index: int) -> np.ndarray:
        return np.asarray(self.array[index])

    def where(self, index: int) -> str:
        return f"{self.name} image {index}"


def _no_extra(i: int) -> dict[str, Any]:
    return {}


@dataclass
class TaskTable:
    """Samples of one task and split. ``image_of[i]`` is sample i's image index in ``images``."""

    task: str
    images: ImageSource
    image_of: np.ndarray
    text: Callable[[int], str]
    extra: Callable[[int], dict[str, Any]] = _no_extra
    images_2: ImageSource | None = None
    image2_of: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_of)

    @property
    def num_images(self) -> int:
        return len(self.images)


def concat_tables(tables: list[TaskTable]) -> TaskTable:
    """One table over several (e.g. coco + vg + sbu + gcc for pre-training)."""
    if len(tables) == 1:
        return tables[0]
    sample_offsets = np.cumsum([0] + [len(t) for t in tables])
    image_offsets = np.cumsum([0] + [t.num_images for t in tables])

    def locate(i: int) -> tuple[TaskTable, int]:
        k = int(np.searchsorted(sample_offsets, i, side="right") - 1)
        return tables[k], i - int(sample_offsets[k])

    def text_at(i: int) -> Any:
        table, j = locate(i)
        return table.text(j)

    def extra_at(i: int) -> Any:
        table, j = locate(i)
        return table.extra(j)

    images = ConcatImages([t.images for t in tables], image_offsets)
    image_of = np.concatenate([t.image_of + off for t, off in zip(tables, image_offsets[:-1], strict=True)])
    images_2 = image2_of = None
    if all(t.images_2 is not None and t.image2_of is not None for t in tables):  # NLVR2's second image
        images_2 = ConcatImages([t.images_2 for t in tables], image_offsets)  # type: ignore[misc]
        image2_of = np.concatenate([t.image2_of + off  # type: ignore[operator]
                                    for t, off in zip(tables, image_offsets[:-1], strict=True)])
    return TaskTable(
        task=tables[0].task, images=images, image_of=image_of,
        text=text_at, extra=extra_at,
        images_2=images_2, image2_of=image2_of, info=dict(tables[0].info),
    )


class ConcatImages:
    def __init__(self, parts: list[ImageSource], offsets: np.ndarray) -> None:
        self.parts, self.offsets = parts, offsets

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[ImageSource, int]:
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.parts[k], index - int(self.offsets[k])

    def load(self, index: int) -> Any:
        part, j = self._locate(index)
        return part.load(j)

    def where(self, index: int) -> str:
        part, j = self._locate(index)
        return part.where(j)


# ---- synthetic ---------------------------------------------------------------------------------

def synthetic_tables(split: Any, task: str) -> TaskTable:
    """TaskTable of a :class:`harness.data.synthetic_data.SyntheticSplit` for one task."""
    images = ArrayImages(split.images, f"synthetic/{split.name}")
    if task in ("pretrain", "retrieval"):
        per = len(split.captions[0])
        image_of = np.repeat(np.arange(len(split.captions)), per)
        return TaskTable(task, images, image_of, text=lambda i: split.captions[i // per][i % per])
    if task == "vqa":
        rows = split.vqa
        return TaskTable(
            task, images, np.array([r[0] for r in rows], dtype=np.int64), text=lambda i: rows[i][1],
            extra=lambda i: {"answer_labels": rows[i][2], "answer_scores": rows[i][3], "question_id": i},
            info={"answers": split.answers},
        )
    if task == "nlvr2":
        rows = split.nlvr2
        return TaskTable(
            task, images, np.array([r[0] for r in rows], dtype=np.int64), text=lambda i: rows[i][2],
            extra=lambda i: {"label": rows[i][3], "id": i},
            images_2=images, image2_of=np.array([r[1] for r in rows], dtype=np.int64),
        )
    if task == "snli-ve":
        rows = split.snli
        return TaskTable(task, images, np.array([r[0] for r in rows], dtype=np.int64), text=lambda i: rows[i][1],
                         extra=lambda i: {"label": rows[i][2], "id": i})
    raise ValueError(f"the synthetic benchmark has no task '{task}'")
