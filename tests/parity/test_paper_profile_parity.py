"""The paper profiles do what METER's code does (rows of docs/fidelity.md), and the settings they use
really act in the data pipeline: RandAugment in fine-tuning only, text length per task (40 for
retrieval), VQA trained on train + all of val for the test-dev model, METER's parameter rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.data.arrow import split_files
from harness.spec.compile import compile_grid
from harness.spec.schema import ExperimentSpec

GRIDS = sorted((Path(__file__).resolve().parents[2] / "grids").glob("*.yaml"))


@pytest.mark.parametrize("grid", GRIDS, ids=lambda p: p.stem)
def test_paper_profile_is_meters(grid: Path, tmp_path: Path) -> None:
    jobs = compile_grid(grid, "paper").jobs
    assert {j.experiment.optim.param_rules for j in jobs} == {"meter"}
    assert all(j.experiment.pretrain.itm_negatives == "meter" for j in jobs if j.stage == "pretrain")  # type: ignore[union-attr]
    assert all(j.experiment.pretrain.mlm_masking == "meter" for j in jobs if j.stage == "pretrain")  # type: ignore[union-attr]
    for job in (j for j in jobs if j.stage == "finetune"):
        fin = job.experiment.finetune[job.task]  # type: ignore[index]
        assert fin.randaugment, f"{grid.stem}: {job.task} fine-tunes without RandAugment"
        assert fin.max_text_len == (40 if job.task == "retrieval" else None)
        assert fin.negatives_from == ("any" if job.task == "retrieval" else "other-images")
        assert fin.loss == ("itm+irtr" if job.task == "retrieval" else "irtr")
        if job.task == "vqa":  # METER's test-dev model: vqav2_train + all of vqav2_val
            for stem in ("vqav2_train", "vqav2_val"):
                (tmp_path / f"{stem}.arrow").touch()
            files = split_files(tmp_path, "vqav2", "train", dict(job.experiment.data.splits))
            assert [f.name for f in files] == ["vqav2_train.arrow", "vqav2_val.arrow"]
    local = compile_grid(grid, "local").jobs  # the laptop profile keeps the harness's own choices
    assert {j.experiment.optim.param_rules for j in local} == {"harness"}
    assert all(j.experiment.pretrain.itm_negatives == "bernoulli" for j in local if j.stage == "pretrain")  # type: ignore[union-attr]
    assert not any(j.experiment.finetune[j.task].randaugment for j in local if j.task)


def _tiny(**finetune: object) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "model": {"vision": "clip-vit-224/32", "text": "bert", "scale": "tiny", "weights": "random", "hidden": 32,
                  "heads": 2, "fusion_layers": 1, "max_text_len": 16},
        "data": {"source": "synthetic", "synthetic": {"image_size": 32, "train_images": 16, "eval_images": 8}},
        "finetune": {name: {"steps": 2, "batch": 4, "image_size": 32, "dataset": "synthetic", "negatives": 2,
                            **dict(settings)} for name, settings in finetune.items()},  # type: ignore[arg-type]
    })


def _first(exp: ExperimentSpec, stage: str, task: str | None) -> dict[str, torch.Tensor]:
    from harness.data.pipeline import train_batches
    from harness.models.text import load_tokenizer

    batches = train_batches(exp, stage=stage, task=task, tokenizer=load_tokenizer(exp.model), image_size=32,
                            mean=(0.5,) * 3, std=(0.5,) * 3, per_device_batch=4, seed=0)
    batch = next(iter(batches))
    return batch[task or next(iter(batch))]


def test_task_text_length_is_used() -> None:
    default = _first(_tiny(retrieval={}), "finetune", "retrieval")["input_ids"]
    short = _first(_tiny(retrieval={"max_text_len": 6}), "finetune", "retrieval")["input_ids"]
    assert default.shape[-1] > 6 and short.shape[-1] == 6


def test_randaugment_acts_on_fine_tuning_images_only() -> None:
    plain = _first(_tiny(vqa={}), "finetune", "vqa")["pixel_values"]
    augmented = _first(_tiny(vqa={"randaugment": True}), "finetune", "vqa")["pixel_values"]
    assert plain.shape == augmented.shape and not torch.equal(plain, augmented)
    pre = {"objectives": ["mlm", "itm"], "steps": 2, "batch": 4, "image_size": 32, "datasets": ["synthetic"]}
    base = _tiny(vqa={}).model_dump(by_alias=True)
    with_ra = _tiny(vqa={"randaugment": True}).model_dump(by_alias=True)
    pre_plain = _first(ExperimentSpec.model_validate({**base, "pretrain": pre}), "pretrain", None)
    pre_ra = _first(ExperimentSpec.model_validate({**with_ra, "pretrain": pre}), "pretrain", None)
    assert torch.equal(pre_plain["pixel_values"], pre_ra["pixel_values"])


@pytest.mark.parametrize("batch", [8, 7])
def test_meter_itm_law_has_exactly_half_positives(batch: int) -> None:
    from harness.data.loaders import KeySampler
    from harness.data.pipeline import load_table

    exp = _tiny(vqa={})
    table = load_table(exp, "pretrain", "train", 32)
    sampler = iter(KeySampler(table, batch, seed=0, aux="itm", itm_law="meter"))
    own_images = 0
    for _ in range(30):
        keys = next(sampler)
        positives = [aux for _, aux, _ in keys if aux == -1]
        assert len(positives) == batch // 2  # METER: pos_len = len // 2, the rest negatives
        own_images += sum(aux == int(table.image_of[i]) for i, aux, _ in keys)
    assert own_images > 0  # a negative is any random caption's image, its own included, as in METER
    bernoulli = [sum(aux == -1 for _, aux, _ in next(iter(KeySampler(table, batch, seed=s, aux="itm"))))
                 for s in range(30)]
    assert len(set(bernoulli)) > 1  # the harness law: a coin per pair


def test_meter_itm_labels_reach_the_batch() -> None:
    pre = {"objectives": ["itm"], "steps": 2, "batch": 8, "image_size": 32, "datasets": ["synthetic"],
           "itm_negatives": "meter"}
    exp = ExperimentSpec.model_validate({**_tiny(vqa={}).model_dump(by_alias=True), "pretrain": pre})
    from harness.data.pipeline import train_batches
    from harness.models.text import load_tokenizer

    batches = train_batches(exp, stage="pretrain", task=None, tokenizer=load_tokenizer(exp.model), image_size=32,
                            mean=(0.5,) * 3, std=(0.5,) * 3, per_device_batch=8, seed=0)
    for _, batch in zip(range(5), batches, strict=False):
        assert int(batch["itm"]["itm_labels"].sum()) == 4


def test_retrieval_negatives_from_any_caption_as_meter() -> None:
    from harness.data.loaders import KeySampler
    from harness.data.pipeline import load_table

    table = load_table(_tiny(retrieval={}), "retrieval", "train", 32)

    def own_image_negatives(negatives_from: str) -> int:
        sampler = iter(KeySampler(table, 8, seed=0, aux="retrieval", negatives=6, negatives_from=negatives_from))
        return sum(int(table.image_of[k]) == int(table.image_of[i])
                   for _ in range(20) for i, negatives, _ in next(sampler) for k in negatives)

    assert own_image_negatives("any") > 0  # METER's draw_false_text: any caption, its own image's included
    assert own_image_negatives("other-images") == 0


def test_meter_mlm_masking_reaches_the_batch() -> None:
    from harness.data.pipeline import train_batches
    from harness.models.text import load_tokenizer

    def most_predictions(law: str) -> int:
        pre = {"objectives": ["mlm"], "steps": 2, "batch": 8, "image_size": 32, "datasets": ["synthetic"],
               "mlm_masking": law}
        exp = ExperimentSpec.model_validate({**_tiny(vqa={}).model_dump(by_alias=True), "pretrain": pre})
        batches = train_batches(exp, stage="pretrain", task=None, tokenizer=load_tokenizer(exp.model),
                                image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, per_device_batch=8, seed=0)
        return max(int((b["mlm"]["mlm_labels"] != -100).sum(1).max()) for _, b in zip(range(8), batches, strict=False))

    assert most_predictions("meter") <= round(0.15 * 16)  # METER's budget: round(0.15 × max_len) positions
    assert most_predictions("whole-word") > round(0.15 * 16)  # the harness law: a coin per word


def test_retrieval_fine_tuning_adds_meters_itm_term() -> None:
    """finetune.retrieval.loss itm+irtr (METER's irtr configs): IRTR over 1 + k captions plus ITM on
    exactly half false images through the pre-trained ITM head, frozen; the losses are summed."""
    import torch.nn.functional as F

    from harness.data.pipeline import task_info, train_batches
    from harness.models import build_model
    from harness.models.groups import param_groups
    from harness.models.text import load_tokenizer

    exp = _tiny(retrieval={"loss": "itm+irtr", "negatives": 3})
    batch = next(iter(train_batches(exp, stage="finetune", task="retrieval", tokenizer=load_tokenizer(exp.model),
                                    image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3, per_device_batch=8, seed=0)))
    sub = batch["retrieval"]
    assert int(sub["itm_labels"].sum()) == 4 and sub["itm_pixel_values"].shape == sub["pixel_values"].shape
    torch.manual_seed(0)
    model = build_model(exp.model, tasks={"retrieval": task_info(exp, "retrieval")}, image_size=32).eval()
    itm = torch.randn(2, model.pooled_dim)
    model.load_pretrained_vlp({"heads.itm.fc.weight": itm, "heads.itm.fc.bias": torch.zeros(2)})
    head = model.heads["retrieval"]
    assert torch.equal(head.itm.weight, itm) and not head.itm.weight.requires_grad
    assert all("itm" not in name for params in param_groups(model).values() for name, _ in params)
    with torch.no_grad():
        total = model({"retrieval": sub})["loss/retrieval"]
        ids, mask = sub["input_ids"], sub["attention_mask"]
        pooled = model.pair_features(model.encode_image(sub["itm_pixel_values"]),
                                     model.encode_text(ids[:, 0], mask[:, 0]))
        itm_loss = F.cross_entropy(head.itm(pooled), sub["itm_labels"])
        irtr_only = build_model(exp.model, tasks={"retrieval": {"negatives": 3}}, image_size=32).eval()
        irtr_only.load_state_dict({k: v for k, v in model.state_dict().items() if ".itm." not in k})
        irtr = irtr_only({"retrieval": sub})["loss/retrieval"]
    assert float(total) == pytest.approx(float(irtr + itm_loss), rel=1e-5) and float(itm_loss) > 0
