"""Can tiny models learn the synthetic VQA task, and do text-encoder choices show?

A stand-in for the real METER model (independent of harness.models, so the benchmark can be
tuned on its own): patch-8 image transformer + text encoder + merged-attention fusion, width
64, 2 layers each, VQA soft-score BCE, AdamW 1e-3, batch 32. Text encoders:
``emb-only`` (word + position embeddings), ``scratch`` (2 layers, random), ``mlm`` (2 layers
pre-trained with MLM on ``caption_corpus``). Prints per-question-type VQA scores next to the
chance and blind baselines.

    .venv/bin/python benches/learn_synthetic.py --steps 300 --seeds 0 1 2 --text emb-only mlm
    .venv/bin/python benches/learn_synthetic.py --real --steps 900 --text emb-only bert   # zoo model
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from torch import nn

from harness.data import pipeline
from harness.data.collate import mask_whole_words, tokenize
from harness.data.synthetic import caption_corpus
from harness.data.text import word_tokenizer
from harness.spec.schema import ExperimentSpec

W, HEADS, LAYERS, MAXLEN = 64, 4, 2, 16


def _layers(n: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(W, HEADS, 4 * W, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, n, enable_nested_tensor=False)


class TextEncoder(nn.Module):
    def __init__(self, vocab: int, layers: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, W), nn.Parameter(torch.randn(1, MAXLEN, W) * 0.02)
        self.norm = nn.LayerNorm(W)
        self.body = _layers(layers) if layers else None
        self.mlm = nn.Linear(W, vocab)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.tok(ids) + self.pos[:, : ids.shape[1]])
        return self.body(x, src_key_padding_mask=mask == 0) if self.body is not None else x


class StandIn(nn.Module):
    def __init__(self, text: TextEncoder, answers: int, image_size: int) -> None:
        super().__init__()
        self.text = text
        self.patch = nn.Conv2d(3, W, 8, 8)
        self.ipos = nn.Parameter(torch.randn(1, (image_size // 8) ** 2, W) * 0.02)
        self.image = _layers(LAYERS)
        self.types = nn.Embedding(2, W)
        self.fusion = _layers(LAYERS)
        self.head = nn.Sequential(nn.Linear(2 * W, 2 * W), nn.LayerNorm(2 * W), nn.GELU(), nn.Linear(2 * W, answers))

    def forward(self, sub: dict[str, torch.Tensor]) -> torch.Tensor:
        t = self.text(sub["input_ids"], sub["attention_mask"]) + self.types.weight[0]
        i = self.image(self.patch(sub["pixel_values"]).flatten(2).transpose(1, 2) + self.ipos) + self.types.weight[1]
        pad = torch.cat([sub["attention_mask"] == 0, torch.zeros(i.shape[:2], dtype=torch.bool)], 1)
        x = self.fusion(torch.cat([t, i], 1), src_key_padding_mask=pad)
        return self.head(torch.cat([x[:, 0], x[:, t.shape[1]:].mean(1)], -1))


def pretrain_mlm(enc: TextEncoder, tok, steps: int, seed: int) -> None:
    corpus = caption_corpus(1234, 4000)
    opt = torch.optim.AdamW(enc.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(corpus), (32,), generator=g).tolist()
        enc_in = tokenize(tok, [corpus[k] for k in pick], MAXLEN)
        ids, labels = mask_whole_words(enc_in, tok, 0.15, g)
        logits = enc.mlm(enc(ids, enc_in["attention_mask"]))
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        opt.zero_grad()
        loss.backward()
        opt.step()


def pretrain_vision(model: StandIn, steps: int, seed: int) -> None:
    """Like the tiny zoo: the image tower learns the scenes' labels before any VQA."""
    from harness.data.synthetic import render_images

    images, labels = render_images(4321, 2000, 64)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    heads = nn.Linear(W, 5 + 3 + 3)
    params = [*model.patch.parameters(), model.ipos, *model.image.parameters(), *heads.parameters()]
    opt = torch.optim.AdamW(params, 1e-3)
    g = torch.Generator().manual_seed(seed)
    multi = torch.from_numpy(np.concatenate([labels["colours_present"], labels["shapes_present"]], 1)).float()
    count = torch.from_numpy(labels["count"])
    for _ in range(steps):
        pick = torch.randint(len(pixels), (32,), generator=g)
        feats = model.image(model.patch(pixels[pick]).flatten(2).transpose(1, 2) + model.ipos).mean(1)
        out = heads(feats)
        loss = nn.functional.binary_cross_entropy_with_logits(out[:, :8], multi[pick]) + \
            nn.functional.cross_entropy(out[:, 8:], count[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()


class RealMeter(nn.Module):
    """The harness's own tiny METER (zoo weights), behind the stand-in's interface."""

    def __init__(self, text: str, info: dict) -> None:
        super().__init__()
        from harness.models import build_model

        self.spec = ExperimentSpec(model=REAL_MODEL | {"text": text}, finetune={"vqa": {"steps": 1}}).model
        self.model = build_model(self.spec, tasks={"vqa": info}, image_size=64)

    def forward(self, sub: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model({"vqa": sub})["logits/vqa"]


REAL_MODEL = {"vision": "clip-vit-224/32", "scale": "tiny", "hidden": 64, "heads": 4, "fusion_layers": 2,
              "max_text_len": MAXLEN, "dropout": 0.0}


def run(text: str, seed: int, steps: int, exp: ExperimentSpec, tok, mlm_steps: int,
        vision_steps: int, real: bool = False) -> dict[str, float]:
    torch.manual_seed(seed)
    info = pipeline.task_info(exp, "vqa")
    if real:  # uniform AdamW LR, one-cycle schedule; the zoo's tokenizer and CLIP normalisation
        from harness.models.text import load_tokenizer
        from harness.models.vision import preprocess_config

        model = RealMeter(text, info)
        norm = preprocess_config(model.spec)
        return train_eval(model, exp, steps, seed, info, {"tokenizer": load_tokenizer(model.spec), "image_size": 64,
                                                          "mean": norm["mean"], "std": norm["std"]})
    enc = TextEncoder(len(tok), 0 if text == "emb-only" else LAYERS)
    if text == "mlm":
        pretrain_mlm(enc, tok, mlm_steps, seed)
    model = StandIn(enc, info["num_answers"], 64)
    if vision_steps:
        pretrain_vision(model, vision_steps, seed)
    return train_eval(model, exp, steps, seed, info, {"tokenizer": tok, "image_size": 64, "mean": (0.5,) * 3,
                                                      "std": (0.5,) * 3})


def train_eval(model: nn.Module, exp: ExperimentSpec, steps: int, seed: int, info: dict, kw: dict) -> dict:
    opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=steps, pct_start=0.1, anneal_strategy="linear")
    stream = pipeline.train_batches(exp, stage="finetune", task="vqa", per_device_batch=32, seed=seed, **kw)
    for _ in range(steps):
        sub = next(stream)["vqa"]
        loss = nn.functional.binary_cross_entropy_with_logits(model(sub), sub["vqa_targets"]) * info["num_answers"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return evaluate(model, exp, kw)


@torch.no_grad()
def evaluate(model: nn.Module, exp: ExperimentSpec, kw: dict) -> dict[str, float]:
    model.eval()
    split = pipeline._synthetic_split(exp.data.synthetic.model_dump_json(), "test", 64)
    qtype = {i: row[4] for i, row in enumerate(split.vqa)}
    scores: dict[str, list[float]] = defaultdict(list)
    for sub in pipeline.eval_batches(exp, task="vqa", split="test", batch_size=128, **kw):
        best = model(sub).argmax(-1)
        got = sub["vqa_targets"].gather(1, best[:, None])[:, 0]
        for qid, s in zip(sub["question_id"].tolist(), got.tolist(), strict=True):
            scores[qtype[qid]].append(s)
            scores["all"].append(s)
    return {k: float(np.mean(v)) for k, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--mlm-steps", type=int, default=300)
    parser.add_argument("--vision-steps", type=int, default=300)
    parser.add_argument("--real", action="store_true", help="the harness's tiny METER (zoo) instead of the stand-in")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--text", nargs="+", default=["emb-only", "scratch", "mlm"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp = ExperimentSpec(model={"max_text_len": MAXLEN}, finetune={"vqa": {"steps": args.steps}})
    tok = word_tokenizer(caption_corpus(1234, 4000))
    print("baselines:", {k: round(v, 3) for k, v in pipeline.baselines(exp, "vqa").items()})
    for text in args.text:
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            runs.append(run(text, seed, args.steps, exp, tok, args.mlm_steps, args.vision_steps, args.real))
            print(f"  {text} seed {seed}: all {runs[-1]['all']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
        keys = sorted(runs[0], key=lambda k: (k != "all", k))
        cells = [f"{k} {np.mean([r[k] for r in runs]):.3f}±{np.std([r[k] for r in runs]):.3f}" for k in keys]
        print(f"{text:<9}", " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
