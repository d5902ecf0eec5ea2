"""SearchSpec: the ``search:`` block of a grid file (torch-free, optuna-free).

    search:
      params:
        lr:       {path: optim.lr, type: float, low: 1.0e-6, high: 1.0e-4, log: true}
        lr_ratio: {path: optim.lr_ratio, type: categorical, choices: [1, 5, 10, 25]}
      sampler: {name: tpe, seed: 0}          # or just: sampler: tpe
      trials: 20
      objective: {task: vqa, split: val, metric: vqa_score, direction: maximize}
      pruner: {name: median, n_startup_trials: 2}   # or: pruner: hyperband / none
      storage: null     # default: <results>/search/<grid>/journal.log; a path, or a database URL
      replaces: [lr]    # factors of the grid the searched keys take the place of
      sets: {finetune.vqa.eval_every: 100}   # fixed for every trial

Each trial is an ordinary harness job: the trial's values are set at ``path`` in the grid's
base, so trials share run ids, run folders and store records with ``harness run``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.registry import TASKS
from harness.spec.base import Strict
from harness.spec.keypaths import check_path

Scalar = float | int | str | bool


class ParamSpec(Strict):
    """One searched value and the key of the experiment it is written to."""

    path: str = Field(description="dotted key into the experiment, e.g. optim.lr or finetune.vqa.lr")
    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0, description="grid spacing for float/int (int default 1)")
    choices: tuple[Scalar, ...] | None = None

    @field_validator("path")
    @classmethod
    def _path_exists(cls, v: str) -> str:
        problem = check_path(v)
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("type categorical needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("type categorical takes 'choices', not low/high/log")
            return self
        if self.choices is not None:
            raise ValueError(f"type {self.type} takes low/high, not 'choices' (use type: categorical)")
        if self.low is None or self.high is None:
            raise ValueError(f"type {self.type} needs both 'low' and 'high'")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("give either log: true or step, not both")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("type int needs whole-number low and high")
        return self

    def grid_values(self) -> list[Scalar]:
        """All values a grid sampler visits (needs choices, an int range or a float step)."""
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            raise ValueError("the grid sampler needs 'step' (or choices) for a float parameter")
        count = int(round((self.high - self.low) / self.step)) + 1
        return [self.low + i * self.step for i in range(count)]


class SamplerSpec(Strict):
    name: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    seed: int | None = 0
    # Random trials before TPE/CMA-ES start modelling (None: optuna's default).
    n_startup_trials: int | None = Field(None, ge=0)

    @field_validator("name")
    @classmethod
    def _sampler_installed(cls, v: str) -> str:
        # Optuna's CMA-ES sampler needs the optional 'cmaes' package; say so before any trial runs.
        if v == "cmaes" and importlib.util.find_spec("cmaes") is None:
            raise ValueError("sampler 'cmaes' needs the 'cmaes' package (pip install cmaes); or use tpe/random/grid")
        return v


class ObjectiveSpec(Strict):
    """The stored metric a trial is scored by (the last evaluation of the job)."""

    task: str = Field(description="fine-tuning task, or 'pretrain' (zero-shot retrieval)")
    split: str = "val"
    metric: str | None = Field(None, description="default: the task's ranking metric (vqa_score, accuracy, ir_r1)")
    direction: Literal["maximize", "minimize"] = "maximize"

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        if v != "pretrain" and v not in TASKS:
            raise ValueError(TASKS.unknown_message(v) + " (or 'pretrain')")
        return v

    def metric_name(self) -> str:
        if self.metric:
            return self.metric
        if self.task == "pretrain":
            return "ir_r1"
        return TASKS.get(self.task).meta.metric


class PrunerSpec(Strict):
    name: Literal["none", "median", "hyperband"] = "median"
    # median: no pruning before this many trials have finished, nor before this step.
    n_startup_trials: int = Field(2, ge=0)
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: int = Field(1, ge=1)
    # hyperband: resource = training step of the intermediate evaluation.
    min_resource: int = Field(1, ge=1)
    max_resource: int | Literal["auto"] = "auto"
    reduction_factor: int = Field(3, ge=2)


class SearchSpec(Strict):
    params: dict[str, ParamSpec]
    objective: ObjectiveSpec
    # Factors of the grid the search takes the place of (e.g. a table's LR-ratio levels): trials drop them.
    replaces: tuple[str, ...] = ()
    # Keys fixed for every trial (``--set`` style: dotted path → value), e.g. evaluation steps for the pruner.
    sets: dict[str, Any] = {}
    sampler: SamplerSpec = SamplerSpec()
    pruner: PrunerSpec = PrunerSpec()
    trials: int = Field(20, ge=1, description="finished (complete or pruned) trials the study stops at")
    storage: str | None = Field(None, description="journal file path or database URL; default under results")
    study: str | None = Field(None, description="study name; default: the grid name")
    heartbeat_s: float = Field(30.0, gt=0, description="how often a running trial says it is alive")
    stale_after_s: float = Field(600.0, gt=0, description="a RUNNING trial silent this long is retried")
    max_retries: int = Field(2, ge=0, description="times a trial lost with its worker is run again")

    @field_validator("sampler", "pruner", mode="before")
    @classmethod
    def _name_shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v

    @field_validator("params")
    @classmethod
    def _some_params(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        if not v:
            raise ValueError("at least one parameter is needed")
        paths = [p.path for p in v.values()]
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        if dupes:
            raise ValueError(f"several parameters write the same key: {', '.join(dupes)}")
        return v

    @field_validator("sets")
    @classmethod
    def _set_paths(cls, v: dict[str, Any]) -> dict[str, Any]:
        for path in v:
            problem = check_path(path)
            if problem:
                raise ValueError(f"{path}: {problem}")
        return v

    def fixed_overrides(self) -> list[str]:
        """``sets`` as ``--set`` strings (values in JSON, which the YAML parser reads back exactly)."""
        import json

        return [f"{path}={json.dumps(value)}" for path, value in self.sets.items()]

    @model_validator(mode="after")
    def _grid_sampler_has_values(self) -> SearchSpec:
        if self.sampler.name == "grid":
            for name, param in self.params.items():
                try:
                    param.grid_values()
                except ValueError as exc:
                    raise ValueError(f"params.{name}: {exc}") from None
        if self.stale_after_s < 2 * self.heartbeat_s:
            raise ValueError(f"stale_after_s ({self.stale_after_s}) must be at least 2 × heartbeat_s")
        return self

    def study_name(self, grid: str) -> str:
        return self.study or grid

    def storage_location(self, results: Path, grid: str) -> str:
        """A database URL as given, else a journal file path (default under the results root)."""
        if self.storage and "://" in self.storage:
            return self.storage
        if self.storage:
            return str(Path(self.storage).expanduser())
        return str(results / "search" / grid / "journal.log")


def parse_search(raw: dict[str, Any] | None, where: str = "search") -> SearchSpec:
    """Validate a raw ``search:`` block; errors name the block (ValueError with all problems)."""
    from pydantic import ValidationError

    if raw is None:
        raise ValueError(f"{where}: this grid has no 'search:' block; add one (see harness/spec/search.py)")
    try:
        return SearchSpec.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = f"unknown key{_did_you_mean(str(err['loc'][-1]))}"
            lines.append(f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}")
        raise ValueError("\n".join(lines)) from None


def _did_you_mean(key: str) -> str:
    import difflib

    known = sorted({f for model in (SearchSpec, ParamSpec, SamplerSpec, ObjectiveSpec, PrunerSpec)
                    for f in model.model_fields})
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
