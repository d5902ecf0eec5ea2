"""Record METER's own outputs for the harness's golden equivalence test (runs in METER's world).

    python3 -m venv /work/meter-venv                           # a venv apart from the harness's
    /work/meter-venv/bin/pip install --no-deps transformers==4.6.0 timm==0.4.12   # METER's pins
    /work/meter-venv/bin/pip install regex sacremoses tqdm packaging requests filelock einops huggingface_hub==0.0.8
    # torch (+ numpy, PIL, ...) from any current install, WITHOUT a newer tokenizers/timm/transformers on the
    # path: e.g. a .pth file naming a folder of symlinks to just those packages
    /work/meter-venv/bin/python tools/meter_golden.py --meter PATH/TO/METER --out tests/importers/golden/meter_tiny

PATH/TO/METER is a checkout of https://github.com/zdou0830/METER (this repository holds none of
its code). The script builds METER's ``METERTransformerSS`` from that checkout under METER's pinned
``transformers==4.6.0`` at a tiny configuration (``--preset tiny``) or at METER-CLIP-ViT-B/16 +
RoBERTa's (``--preset paper``), with random weights — every parameter, LayerNorm gains included,
is drawn anew so a wrong mapping cannot hide behind an initialisation of ones and zeros — and writes:

- ``meter.ckpt``: the weights in METER's Lightning layout (``state_dict`` + ``hyper_parameters``);
- ``io.pt``: fixed inputs and METER's outputs: fusion outputs (text/image features, pooled pair
  features), ITM, MLM, VQA, NLVR2, SNLI-VE and retrieval-rank logits, and METER's VQA/NLVR2/SNLI-VE/
  MLM losses, computed by METER's own ``objectives.compute_*`` functions; and METER's
  ``adapt_position_encoding`` of the CLIP position table to twice the resolution (fine-tuning); and a
  short trajectory of METER's optimizer (transformers 4.6 ``AdamW``) on fixed gradients;
- ``set_schedule.json`` (``--schedule``): METER's ``set_schedule`` groups as (parameter, LR group,
  weight decay) — the golden list of the LR/weight-decay parity test.

What is stubbed, and why it does not touch the numbers: METER's Lightning base class and metric
classes (logging only; ``pytorch_lightning==1.3.2`` does not import with current torch), the
download of pre-trained CLIP/RoBERTa weights (replaced by METER's own CLIP class / transformers'
RobertaModel at the preset's size), and ``tokenizers`` (METER's model code never uses it; its Rust
build needs crates.io, which this machine cannot reach).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import types
from pathlib import Path

import torch
from torch import nn

PRESETS = {
    # Fusion width 32 with 4 heads, CLIP at 128 (2 heads: width // 64); a small file (~1.5 MB).
    "tiny": {"clip_width": 128, "clip_layers": 2, "patch": 8, "image_size": 64, "text_hidden": 64,
             "text_layers": 2, "text_intermediate": 128, "vocab": 100, "text_positions": 64,
             "hidden": 32, "heads": 4, "top_layers": 2, "answers": 10, "batch": 3, "length": 12},
    # METER-CLIP-ViT-B/16 + RoBERTa at its 288px pre-training resolution, random weights.
    "paper": {"clip_width": 768, "clip_layers": 12, "patch": 16, "image_size": 288, "text_hidden": 768,
              "text_layers": 12, "text_intermediate": 3072, "vocab": 50265, "text_positions": 514,
              "hidden": 768, "heads": 12, "top_layers": 6, "answers": 3129, "batch": 2, "length": 40},
}


def stub_lightning() -> None:
    """Just enough of ``pytorch_lightning`` for METER's module to be an ``nn.Module``."""

    class LightningModule(nn.Module):
        def save_hyperparameters(self) -> None:
            caller = inspect.currentframe().f_back  # type: ignore[union-attr]
            self.hparams = types.SimpleNamespace(config=caller.f_locals["config"])  # type: ignore[union-attr]

        def log(self, *args: object, **kwargs: object) -> None:
            pass

        @property
        def device(self) -> torch.device:
            return next(self.parameters()).device

    class Metric(nn.Module):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__()

        def add_state(self, name: str, default: object, **kwargs: object) -> None:
            setattr(self, name, default)

        def forward(self, *args: object, **kwargs: object) -> None:
            return None

    pl = types.ModuleType("pytorch_lightning")
    pl.LightningModule = LightningModule  # type: ignore[attr-defined]
    metrics = types.ModuleType("pytorch_lightning.metrics")
    metrics.Metric = Metric  # type: ignore[attr-defined]
    pl.metrics = metrics  # type: ignore[attr-defined]
    sys.modules.update({"pytorch_lightning": pl, "pytorch_lightning.metrics": metrics})


def meter_config(p: dict[str, int]) -> dict[str, object]:
    """METER's config keys (defaults of meter/config.py), at the preset's sizes, every head on."""
    loss_names = {"itm": 1, "mlm": 1, "mpp": 0, "vqa": 1, "vcr": 0, "vcr_qar": 0, "nlvr2": 1, "irtr": 1,
                  "contras": 0, "snli": 1}
    return {
        "vit": "ViT-B/16", "tokenizer": "roberta-base", "vocab_size": p["vocab"],
        "hidden_size": p["hidden"], "num_heads": p["heads"], "num_layers": 6, "mlp_ratio": 4, "drop_rate": 0.1,
        "max_text_len": p["length"], "input_text_embed_size": p["text_hidden"],
        "input_image_embed_size": p["clip_width"], "image_size": p["image_size"], "patch_size": p["patch"],
        "resolution_before": p["image_size"], "num_top_layer": p["top_layers"], "loss_names": loss_names,
        "vqav2_label_size": p["answers"], "load_path": "", "test_only": False, "get_recall_metric": False,
        "draw_false_text": 0, "learning_rate": 1e-5, "weight_decay": 0.01, "end_lr": 0, "decay_power": 1,
        "optim_type": "adamw", "warmup_steps": 0.1, "max_steps": 100,
        # distinct multipliers, so that the recorded groups are unambiguous
        "lr_mult_head": 7, "lr_mult_cross_modal": 3,
    }


def build_meter(meter_root: Path, p: dict[str, int]) -> nn.Module:
    sys.path.insert(0, str(meter_root))
    stub_lightning()
    from meter.modules import clip_model, meter_module
    from transformers import RobertaConfig, RobertaModel

    def tiny_clip(name: str, resolution_after: int = 224) -> nn.Module:
        # The text-side sizes only shape CLIP leftovers METER never runs (positional_embedding, ln_final).
        return clip_model.CLIP(512, p["image_size"], p["clip_layers"], p["clip_width"], p["patch"], 4, 49408,
                               8, 8, 12, resolution_after)

    class OfflineRoberta:
        @staticmethod
        def from_pretrained(name: str) -> nn.Module:
            return RobertaModel(RobertaConfig(
                vocab_size=p["vocab"], hidden_size=p["text_hidden"], num_hidden_layers=p["text_layers"],
                num_attention_heads=p["text_hidden"] // 64, intermediate_size=p["text_intermediate"],
                max_position_embeddings=p["text_positions"], type_vocab_size=1, pad_token_id=1,
                bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5))

    meter_module.build_model = tiny_clip
    meter_module.RobertaModel = OfflineRoberta
    model = meter_module.METERTransformerSS(meter_config(p))
    return model.eval()


@torch.no_grad()
def randomise(model: nn.Module, seed: int) -> None:
    """Every parameter drawn anew; rank_output stays a view of the ITM head's positive row, as in METER."""
    gen = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if name.startswith("rank_output."):
            continue
        noise = torch.randn(param.shape, generator=gen)
        gain = name.endswith("weight") and ("LayerNorm" in name or ".ln_" in name or "classifier.1" in name)
        param.copy_(1.0 + 0.1 * noise if gain else 0.05 * noise)


def fixed_inputs(p: dict[str, int], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    b, length = p["batch"], p["length"]
    lengths = torch.tensor([length, length - 3, 5][:b] + [length] * max(0, b - 3))
    mask = (torch.arange(length)[None] < lengths[:, None]).long()
    ids = torch.randint(3, p["vocab"] - 1, (b, length), generator=gen)
    ids[:, 0] = 0  # <s>
    ids[torch.arange(b), lengths - 1] = 2  # </s>
    ids = ids.masked_fill(mask == 0, 1)  # RoBERTa's pad id: padding-aware positions
    masked = ids.clone()
    chosen = (torch.rand(b, length, generator=gen) < 0.3) & (mask == 1)
    chosen[:, 0] = False
    masked[chosen] = p["vocab"] - 1  # a stand-in mask id
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    size = p["image_size"]
    vqa_labels = torch.randint(0, p["answers"], (b, 3), generator=gen)
    vqa_scores = torch.tensor([[1.0, 0.6, 0.3]] * b)
    return {"text_ids": ids, "text_masks": mask, "text_ids_mlm": masked, "text_labels_mlm": labels,
            "image": torch.randn(b, 3, size, size, generator=gen),
            "image_1": torch.randn(b, 3, size, size, generator=gen),
            "vqa_labels": vqa_labels, "vqa_scores": vqa_scores,
            "nlvr2_labels": torch.randint(0, 2, (b,), generator=gen),
            "snli_labels": torch.randint(0, 3, (b,), generator=gen)}


@torch.no_grad()
def meter_outputs(model: nn.Module, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    from meter.modules import objectives

    b = x["text_ids"].shape[0]
    no_labels = torch.full_like(x["text_ids"], -100)
    batch = {"text_ids": x["text_ids"], "text_masks": x["text_masks"], "text_labels": no_labels,
             "text_ids_mlm": x["text_ids_mlm"], "text_labels_mlm": x["text_labels_mlm"], "image": [x["image"]]}
    infer = model.infer(batch)
    cls = infer["cls_feats"]
    out = {"text_feats": infer["text_feats"], "image_feats": infer["image_feats"], "cls_feats": cls,
           "itm_logits": model.itm_score(cls), "rank_scores": model.rank_output(cls)[:, 0]}
    mlm = objectives.compute_mlm(model, batch)
    vqa = objectives.compute_vqa(model, {**batch, "vqa_labels": x["vqa_labels"].tolist(),
                                         "vqa_scores": x["vqa_scores"].tolist()})
    pair = {**batch, "image_0": [x["image"]], "image_1": [x["image_1"]], "table_name": ["dev"] * b}
    nlvr2 = objectives.compute_nlvr2(model, {**pair, "answers": x["nlvr2_labels"].tolist()})
    snli = objectives.compute_snli(model, {**batch, "labels": x["snli_labels"].tolist(), "table_name": ["dev"] * b})
    out.update(mlm_logits=mlm["mlm_logits"], mlm_loss=mlm["mlm_loss"], vqa_logits=vqa["vqa_logits"],
               vqa_loss=vqa["vqa_loss"], nlvr2_logits=nlvr2["nlvr2_logits"], nlvr2_loss=nlvr2["nlvr2_loss"],
               snli_logits=snli["snli_logits"], snli_loss=snli["snli_loss"])
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def meter_resize(model: nn.Module, p: dict[str, int]) -> dict[str, object]:
    """METER's position-embedding resize for fine-tuning at twice the checkpoint's resolution."""
    from meter.modules.clip_model import adapt_position_encoding

    key = "vit_model.visual.positional_embedding"
    after = 2 * p["image_size"]
    state = adapt_position_encoding({key: model.state_dict()[key].clone()}, patch_size=p["patch"], after=after)
    return {"image_size": after, "positional_embedding": state[key].contiguous()}


def meter_adamw_trajectory(seed: int, steps: int = 6) -> dict[str, object]:
    """Parameters after each step of METER's optimizer (transformers 4.6 ``AdamW`` with METER's betas
    and eps) on fixed gradients: one decayed and one undecayed group."""
    from transformers.optimization import AdamW

    gen = torch.Generator().manual_seed(seed + 2)
    start = [torch.randn(5, 4, generator=gen), torch.randn(7, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in start] for _ in range(steps)]
    params = [nn.Parameter(t.clone()) for t in start]
    optimizer = AdamW([{"params": [params[0]], "weight_decay": 0.01}, {"params": [params[1]], "weight_decay": 0.0}],
                      lr=1e-2, eps=1e-8, betas=(0.9, 0.98))
    after = []
    for step in grads:
        for param, grad in zip(params, step, strict=True):
            param.grad = grad.clone()
        optimizer.step()
        after.append([param.detach().clone() for param in params])
    return {"start": start, "grads": grads, "after": after, "lr": 1e-2, "weight_decays": [0.01, 0.0]}


def schedule_groups(model: nn.Module) -> list[dict[str, object]]:
    """METER's set_schedule, run on the model: (parameter, LR group, weight decay) per parameter."""
    from meter.modules import meter_utils

    model.trainer = types.SimpleNamespace(max_steps=100)  # what set_schedule reads of Lightning's trainer
    (optimizer,), _ = meter_utils.set_schedule(model)  # its scheduler has set every LR to 0: step 0
    cfg = model.hparams.config
    group_of = {cfg["learning_rate"]: "base", cfg["learning_rate"] * cfg["lr_mult_cross_modal"]: "cross_modal",
                cfg["learning_rate"] * cfg["lr_mult_head"]: "head"}
    names = {id(p): n for n, p in model.named_parameters()}
    rows = [{"name": names[id(p)], "lr": group_of[g["initial_lr"]], "weight_decay": g["weight_decay"] > 0}
            for g in optimizer.param_groups for p in g["params"]]
    return sorted(rows, key=lambda r: str(r["name"]))


def write_checkpoint(model: nn.Module, path: Path) -> None:
    """METER's checkpoint layout (Lightning 1.3): the weights and the config, nothing else."""
    torch.save({"epoch": 0, "global_step": 0, "pytorch-lightning_version": "1.3.2",
                "state_dict": model.state_dict(), "hparams_name": "config",
                "hyper_parameters": {"config": model.hparams.config}}, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meter", type=Path, required=True, help="a checkout of zdou0830/METER")
    parser.add_argument("--out", type=Path, required=True, help="folder for meter.ckpt, io.pt (and set_schedule.json)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--schedule", action="store_true", help="also write set_schedule.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import transformers

    if transformers.__version__ != "4.6.0":
        parser.error(f"METER pins transformers==4.6.0; this interpreter has {transformers.__version__}")
    p = PRESETS[args.preset]
    torch.manual_seed(args.seed)
    model = build_meter(args.meter, p)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.schedule:
        rows = schedule_groups(model)
        lines = ",\n".join(json.dumps(r) for r in rows)
        (args.out / "set_schedule.json").write_text(f"[\n{lines}\n]\n")
        print(f"wrote {args.out / 'set_schedule.json'}: {len(rows)} parameters")
    randomise(model, args.seed)
    inputs = fixed_inputs(p, args.seed + 1)
    outputs = meter_outputs(model, inputs)
    resize = meter_resize(model, p)
    adamw = meter_adamw_trajectory(args.seed)
    write_checkpoint(model, args.out / "meter.ckpt")
    torch.save({"preset": args.preset, "inputs": inputs, "outputs": outputs, "resize": resize, "adamw": adamw,
                "transformers": transformers.__version__, "torch": str(torch.__version__)}, args.out / "io.pt")
    print(f"wrote {args.out / 'meter.ckpt'} and {args.out / 'io.pt'}: " + ", ".join(sorted(outputs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
