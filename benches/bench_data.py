"""Data throughput: samples/s from ViLT-style Arrow files at 224² (0 and 2 DataLoader workers)
and from the synthetic generator (render + full batch pipeline at 64²).

    .venv/bin/python benches/bench_data.py [--images 256] [--batches 20]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from harness.data import pipeline
from harness.data.convert import SCHEMAS, write_arrow
from harness.data.synthetic import caption_corpus, render_images
from harness.data.text import word_tokenizer
from harness.spec.schema import ExperimentSpec

MEAN, STD = (0.481, 0.458, 0.408), (0.269, 0.261, 0.276)  # CLIP's


def _jpeg(rng: np.random.Generator, size: tuple[int, int] = (480, 360)) -> bytes:
    """A photo-sized JPEG with some texture, so decoding costs what real images cost."""
    small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize(size, Image.BILINEAR).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def make_f30k(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    rows = ({"image": _jpeg(rng), "caption": [f"a photo number {i} of things {k}" for k in range(5)],
             "image_id": str(i), "split": "train"} for i in range(n))
    write_arrow(root / "f30k_caption_karpathy_train.arrow", SCHEMAS["caption"], rows)
    write_arrow(root / "f30k_caption_karpathy_val.arrow", SCHEMAS["caption"], iter([]))


def rate(stream, batches: int, batch: int) -> float:
    next(stream)  # warm-up (workers start, caches fill)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tok = word_tokenizer(caption_corpus(0, 1000) + ["a photo number of things"] + [str(i) for i in range(10)])
    with tempfile.TemporaryDirectory() as tmp:
        make_f30k(Path(tmp), args.images)
        for workers in (0, 2):
            exp = ExperimentSpec(model={"max_text_len": 40}, data={"source": "arrow", "root": tmp,
                                                                    "num_workers": workers},
                                 pretrain={"objectives": ["mlm", "itm"], "datasets": ["f30k"]},
                                 finetune={"vqa": {"steps": 1}})
            exp = exp.model_copy(update={"data": exp.data.model_copy(update={"splits": {
                "f30k/train": ("f30k_caption_karpathy_train",)}})})
            stream = pipeline.train_batches(exp, stage="pretrain", task=None, tokenizer=tok, image_size=224,
                                            mean=MEAN, std=STD, per_device_batch=args.batch, seed=0)
            print(f"arrow 224² mlm+itm, {workers} workers: {rate(stream, args.batches, args.batch):7.0f} samples/s")
            stream.close()
    start = time.perf_counter()
    render_images(0, 3000, 64)
    print(f"synthetic render 64²:            {3000 / (time.perf_counter() - start):7.0f} images/s")
    exp = ExperimentSpec(model={"max_text_len": 16}, finetune={"vqa": {"steps": 1}})
    stream = pipeline.train_batches(exp, stage="finetune", task="vqa", tokenizer=tok, image_size=64, mean=MEAN,
                                    std=STD, per_device_batch=args.batch, seed=0)
    print(f"synthetic vqa batches 64²:       {rate(stream, args.batches * 3, args.batch):7.0f} samples/s")


if __name__ == "__main__":
    pa.set_cpu_count(1)
    main()
