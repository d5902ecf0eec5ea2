"""The experiment spec: one complete, typed, frozen description of a grid cell.

``ExperimentSpec`` is what ``base`` in a grid file holds; factor levels, profiles and
``--set`` overrides edit it before validation. ``JobSpec`` is one compiled job (a cell ×
seed × stage); its ``run_id`` hashes only what determines the result (``identity``); where the
job's files live and how it is split over the machine (``placement``) stay outside the run id.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from harness.registry import DATASETS, OBJECTIVES, TASKS
from harness.spec.base import Strict
from harness.spec.data import DataSpec
from harness.spec.model import ModelSpec

IMPORT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"

# 2: placement keys (PLACEMENT_KEYS) left the identity. `harness rekey` moves runs recorded under 1.
SCHEMA_VERSION = 2


class PretrainSpec(Strict):
    # "from" is a Python keyword: the field is from_, written and read as "from" (spec.json too).
    model_config = ConfigDict(**Strict.model_config, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    objectives: tuple[str, ...] = ("mlm", "itm")
    # Weights that multiply each objective's loss (missing = 1.0); they really apply.
    loss_weights: dict[str, float] = {}
    steps: int = Field(100_000, ge=1)
    batch: int = Field(4096, ge=1, description="global batch, reached by accumulation")
    per_device_batch: int | None = Field(None, ge=1)
    image_size: int = Field(224, ge=16)
    datasets: tuple[str, ...] = ("coco", "vg", "sbu", "gcc")
    mlm_prob: float = Field(0.15, gt=0.0, lt=1.0)
    # MLM masking law. "whole-word": each word (fast tokenizer word ids, BPE included) with p = mlm_prob.
    # "meter": METER's collator (transformers 4.6 DataCollatorForWholeWordMask): round(mlm_prob × max_len)
    # positions of "##"-joined words, padding and specials among the candidates (dropped after) — whole
    # words for BERT, single tokens for BPE tokenizers such as RoBERTa's.
    mlm_masking: Literal["whole-word", "meter"] = "whole-word"
    mim_prob: float = Field(0.15, gt=0.0, lt=1.0)
    itm_neg_prob: float = Field(0.5, ge=0.0, le=1.0)
    # How ITM negatives are drawn. "bernoulli": each pair independently with p = itm_neg_prob, the
    # negative image always another one. "meter": METER's compute_itm — exactly ⌊B/2⌋ positives in each
    # per-device batch, a negative being the image of any random caption (its own image possible).
    itm_negatives: Literal["bernoulli", "meter"] = "bernoulli"
    # Zero-shot retrieval at the end of pre-training on this dataset (None: skip).
    zero_shot: str | None = "f30k"
    # LR schedule after the warm-up for this stage only (None: optim.decay, which both stages share).
    # The local profiles pre-train with "constant": a 900-step run is a short prefix of the paper's
    # 100k-step one, where the LR is still at its peak (grids/vl_combinations.yaml header: what it changes).
    decay: Literal["linear", "cosine", "constant"] | None = None
    eval_every: int | None = Field(None, ge=1)
    # Start from an imported checkpoint instead of pre-training: "meter:NAME" (`harness import meter
    # CKPT --name NAME`). No pre-training job is compiled; the other keys of this section are unused.
    from_: str | None = Field(None, alias="from", pattern=r"^meter:" + IMPORT_NAME_PATTERN + "$")

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one objective is needed")
        for name in v:
            if name not in OBJECTIVES:
                raise ValueError(OBJECTIVES.unknown_message(name))
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate objectives in {list(v)}")
        return v

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if name not in DATASETS:
                raise ValueError(DATASETS.unknown_message(name))
        return v

    @model_validator(mode="after")
    def _weights_name_objectives(self) -> PretrainSpec:
        for name in self.loss_weights:
            if name not in self.objectives:
                raise ValueError(f"loss_weights names '{name}', which is not among objectives {list(self.objectives)}")
        return self


class FinetuneSpec(Strict):
    steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0)
    batch: int = Field(512, ge=1, description="global batch")
    per_device_batch: int | None = Field(None, ge=1)
    image_size: int = Field(384, ge=16)
    lr: float | None = Field(None, gt=0, description="base LR for this task (default: optim.lr)")
    head_mult: float | None = Field(None, gt=0, description="head LR multiplier (default: the task's)")
    dataset: str | None = None
    negatives: int = Field(15, ge=1, description="retrieval: random negative captions per image")
    # retrieval: where negative captions come from. "other-images": captions of other images only;
    # "any": any random caption of the split (METER's draw_false_text: its own image's captions possible).
    negatives_from: Literal["other-images", "any"] = "other-images"
    # retrieval: the fine-tuning loss. "irtr": cross-entropy over the 1 + k rank scores. "itm+irtr": METER's
    # irtr configs (loss_names itm 0.5, irtr 1 — both only switch a loss on, summed): plus ITM on a false
    # image for exactly half the pairs, through the pre-trained ITM head kept frozen.
    loss: Literal["irtr", "itm+irtr"] = "irtr"
    # Text length for this task (None: model.max_text_len). METER: 40 for retrieval, 50 for the others.
    max_text_len: int | None = Field(None, ge=4)
    # RandAugment(2, 9) on this task's training images (METER's fine-tuning commands all use clip_randaug).
    randaugment: bool = False
    eval_splits: tuple[str, ...] = ("val",)
    eval_every: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _length(self) -> FinetuneSpec:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of 'steps' and 'epochs'")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ValueError(DATASETS.unknown_message(self.dataset))
        return self


class OptimSpec(Strict):
    lr: float = Field(1e-5, gt=0, description="base LR: pre-trained (bottom) encoders")
    lr_ratio: float = Field(5.0, gt=0, description="randomly initialised top layers get lr × lr_ratio")
    head_mult: float = Field(5.0, gt=0, description="pre-training heads get lr × head_mult")
    warmup_ratio: float = Field(0.1, ge=0.0, le=1.0)
    decay: Literal["linear", "cosine", "constant"] = "linear"
    weight_decay: float = Field(0.01, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = Field(1e-8, gt=0)
    grad_clip: float | None = Field(None, gt=0)
    # Which LR group and weight decay each parameter gets. "harness": by declaration (``lr_group``) and by
    # shape (no decay on any vector or norm). "meter": what METER's set_schedule gives the same parameter
    # (its name rules, expressed as declarations): token-type embedding and retrieval rank head at the
    # base LR, CLIP's and the task MLPs' LayerNorm gains decayed (harness/train/optim.py).
    param_rules: Literal["harness", "meter"] = "harness"
    # "torch": torch.optim.AdamW (fused). "meter": METER's transformers-4.x AdamW update (ε before the bias
    # correction, decay after the step) — harness.train.optim.MeterAdamW.
    adamw: Literal["torch", "meter"] = "torch"


# tracker name → the module it needs (the pyproject extra of the same name installs it)
TRACKER_PACKAGES = {"wandb": "wandb", "tensorboard": "tensorboard", "mlflow": "mlflow"}


def missing_tracker_package(tracker: str) -> str | None:
    """An error message when ``tracker``'s package is not importable here, else None."""
    import importlib.util

    module = TRACKER_PACKAGES[tracker]
    if importlib.util.find_spec(module) is not None:
        return None
    return (f"tracker '{tracker}' needs the '{module}' package: pip install 'meter-harness[{tracker}]' "
            f"(or drop it from train.trackers)")


class TrainSpec(Strict):
    """How the trainer runs: precision and determinism change results, the rest does not."""

    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    deterministic: bool = False
    checkpoint_every: int | None = Field(None, ge=1)
    log_every: int = Field(10, ge=1)
    # Speed only (placement: never in a run id; harness/train/speed.py). compile: torch.compile per block,
    # "auto" = on GPU only. activation_checkpointing: recompute each block's activations in backward.
    compile: bool | Literal["auto"] = "auto"
    activation_checkpointing: bool = False
    # Experiment trackers (placement: never in a run id); see harness/train/tracking.py and the README.
    trackers: tuple[Literal["wandb", "tensorboard", "mlflow"], ...] = ()

    @field_validator("trackers")
    @classmethod
    def _tracker_packages(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # Refused here (exit 2, nothing dispatched) rather than discovered in a job's log.txt.
        for name in v:
            problem = missing_tracker_package(name)
            if problem is not None:
                raise ValueError(problem)
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate trackers in {list(v)}")
        return v


class ResourcesSpec(Strict):
    """What a job asks of the machine. Not part of the run id."""

    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    cpus_per_task: int = Field(1, ge=1)
    threads: int = Field(1, ge=1, description="torch threads per process")
    mem_gb: float = Field(8.0, gt=0)
    time_min: int = Field(60, ge=1)
    requeues: int = Field(3, ge=0, description="timeout/preemption requeues")
    # Assumed sustained throughput per device, for the plan's GPU-hour estimate.
    assumed_tflops: float = Field(100.0, gt=0)


class ExperimentSpec(Strict):
    model: ModelSpec = ModelSpec()
    pretrain: PretrainSpec | None = None
    finetune: dict[str, FinetuneSpec] = {}
    optim: OptimSpec = OptimSpec()
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    resources: ResourcesSpec = ResourcesSpec()

    @field_validator("finetune")
    @classmethod
    def _tasks(cls, v: dict[str, FinetuneSpec]) -> dict[str, FinetuneSpec]:
        for name in v:
            if name not in TASKS:
                raise ValueError(TASKS.unknown_message(name))
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        check_experiment(self)
        return self


def check_experiment(exp: ExperimentSpec) -> None:
    """Rules that span sections (also run by the compiler on cells it assembles from cached sections)."""
    for name in exp.finetune:
        if name not in TASKS:
            raise ValueError(f"finetune: {TASKS.unknown_message(name)}")
    decoder = exp.model.architecture == "encoder-decoder"
    for name in exp.pretrain.objectives if exp.pretrain is not None else ():
        if OBJECTIVES.get(name).meta.needs_decoder and not decoder:
            raise ValueError(f"objective '{name}' needs model.architecture: encoder-decoder")
    if exp.data.source == "arrow" and not exp.data.root:
        raise ValueError("data.root is required when data.source is 'arrow'")
    if exp.pretrain is None and not exp.finetune:
        raise ValueError("nothing to run: neither 'pretrain' nor 'finetune' is set")


Stage = Literal["pretrain", "finetune"]


class PluginRef(Strict):
    """A user plug-in module a job needs (imported before the job is read). The version is a
    record of what ran, not part of the run id."""

    module: str
    version: str = "unknown"


class JobSpec(Strict):
    """One compiled job. ``identity`` is exactly what ``run_id`` hashes."""

    run_id: str
    grid: str
    stage: Stage
    task: str | None
    seed: int
    factors: dict[str, str]
    depends_on: str | None
    experiment: ExperimentSpec
    plugins: tuple[PluginRef, ...] = ()  # the grid's ``plugins:``

    @model_validator(mode="before")
    @classmethod
    def _import_plugins(cls, data: Any) -> Any:
        """A job read in a worker names plug-in components: import the plug-ins before validating."""
        if isinstance(data, dict) and data.get("plugins"):
            from harness.plugins import import_plugins

            import_plugins([p["module"] if isinstance(p, dict) else p.module for p in data["plugins"]])
        return data

    @model_serializer(mode="wrap")
    def _without_empty_plugins(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if not self.plugins:  # a job without plug-ins is written exactly as before they existed
            out.pop("plugins", None)
        return out

    @property
    def short_id(self) -> str:
        return self.run_id[:10]

    def identity(self) -> dict[str, Any]:
        return job_identity(self.experiment, self.stage, self.task, self.seed, self.depends_on)

    def placement(self) -> dict[str, Any]:
        return job_placement(self.experiment, self.stage, self.task)


def job_identity(
    exp: ExperimentSpec, stage: Stage, task: str | None, seed: int, depends_on: str | None
) -> dict[str, Any]:
    """What determines a job's result: model, its stage, optimiser, data, seed, precision."""
    body: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "stage": stage,
        "seed": seed,
        "model": exp.model.model_dump(mode="json", exclude=MODEL_PLACEMENT),
        "optim": exp.optim.model_dump(mode="json"),
        "data": exp.data.model_dump(mode="json", exclude=DATA_PLACEMENT),
        "precision": exp.train.precision,
        "deterministic": exp.train.deterministic,
    }
    if stage == "pretrain":
        assert exp.pretrain is not None
        body["pretrain"] = exp.pretrain.model_dump(mode="json", exclude=stage_excluded(exp.pretrain))
    else:
        assert task is not None
        body["task"] = task
        body["finetune"] = exp.finetune[task].model_dump(mode="json", exclude=stage_excluded(exp.finetune[task]))
        body["from"] = depends_on
    return body


# Outside the run id: how often we look (not what is learnt), and pretrain.from — a section with it set
# never becomes a pre-training job (its fine-tuning jobs name the imported run in "from" instead).
_DISPLAY_ONLY = {"eval_every", "from_"}

# Placement: where the files are and how the work is split over the machine. Moving the data, another
# weights folder, more loader workers or a smaller per-device batch (accumulation keeps the global
# batch) must not orphan a finished run. Trackers and resources never entered the identity.
MODEL_PLACEMENT = {"weights_dir"}
DATA_PLACEMENT = {"root", "num_workers"}
STAGE_PLACEMENT = {"per_device_batch"}
STAGE_EXCLUDED = _DISPLAY_ONLY | STAGE_PLACEMENT
# Keys added to a stage section after schema 2 that enter the identity only when set: leaving one at
# its default (None) keeps every run id recorded before it existed (no `harness rekey` needed).
ADDED_WHEN_SET = {"decay"}


def stage_excluded(section: PretrainSpec | FinetuneSpec) -> set[str]:
    """The keys of a stage section left out of its job's identity."""
    return STAGE_EXCLUDED | {key for key in ADDED_WHEN_SET if getattr(section, key, None) is None}


# The dotted keys a site configuration (harness.toml) may set; "finetune.*" = every task's section.
PLACEMENT_KEYS = ("data.root", "data.num_workers", "model.weights_dir", "pretrain.per_device_batch",
                  "finetune.*.per_device_batch", "train.trackers", "resources.*")


def job_placement(exp: ExperimentSpec, stage: Stage, task: str | None) -> dict[str, Any]:
    """The placement half of a job (recorded in spec.json beside its identity)."""
    section = exp.pretrain if stage == "pretrain" else exp.finetune[task] if task is not None else None
    return {
        "data": exp.data.model_dump(mode="json", include=DATA_PLACEMENT),
        "model": exp.model.model_dump(mode="json", include=MODEL_PLACEMENT),
        "per_device_batch": getattr(section, "per_device_batch", None),
        "trackers": list(exp.train.trackers),
        "resources": exp.resources.model_dump(mode="json"),
    }


def import_run_id(source: str, name: str) -> str:
    """The run id of an imported checkpoint ("meter", NAME): the sha256 of its canonical reference."""
    import hashlib
    import json

    body = json.dumps({"import": source, "name": name}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def pretrain_import(exp: ExperimentSpec) -> tuple[str, str] | None:
    """(source, name) of the checkpoint the fine-tuning starts from instead of a pre-training job."""
    if exp.pretrain is None or exp.pretrain.from_ is None:
        return None
    source, _, name = exp.pretrain.from_.partition(":")
    return source, name
