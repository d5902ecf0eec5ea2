"""A trial's values → ordinary harness jobs, compiled by the grid compiler.

The values are applied as ``--set`` overrides to the grid's base, so a trial's jobs get the
same content-hash run ids, run folders and store records as ``harness run`` would give them.
A trial runs one cell and the grid's first seed: the objective's job and its pre-training.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.search.config import ParamSpec, SearchSpec

if TYPE_CHECKING:
    import optuna

    from harness.spec.schema import JobSpec


def suggest(trial: optuna.Trial, spec: SearchSpec) -> dict[str, Any]:
    """Ask the trial for every parameter (a retried trial gets its enqueued values back)."""
    values: dict[str, Any] = {}
    for name, p in spec.params.items():
        if p.type == "categorical":
            assert p.choices is not None
            values[name] = trial.suggest_categorical(name, list(p.choices))
        elif p.type == "int":
            values[name] = trial.suggest_int(name, int(p.low or 0), int(p.high or 0), step=int(p.step or 1),
                                             log=p.log)
        else:
            values[name] = trial.suggest_float(name, float(p.low or 0), float(p.high or 0), step=p.step, log=p.log)
    return values


def yaml_scalar(value: Any) -> str:
    """A value spelled so the grid's ``--set`` parser (YAML 1.1) reads it back exactly.

    YAML 1.1 reads ``1e-05`` as a string; ``1.0e-05`` is a float, and repr round-trips.
    """
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"cannot set a non-finite value {value}")
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return text


def overrides(spec: SearchSpec, values: Mapping[str, Any]) -> list[str]:
    return [f"{spec.params[name].path}={yaml_scalar(value)}" for name, value in values.items()]


def _value_at(job: JobSpec, path: str) -> Any:
    node: Any = job.experiment.model_dump(mode="python")
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def trial_jobs(grid_path: str | Path, profile: str | None, spec: SearchSpec, values: Mapping[str, Any],
               sets: Sequence[str] = (), only: Sequence[str] = ()) -> list[JobSpec]:
    """The jobs one trial runs, dependencies first; the last one is scored.

    Raises ``harness.spec.errors.GridError`` for grid problems and ValueError when the grid
    does not boil down to one cell for the objective (or a factor overrides a searched key).
    """
    from harness.spec.compile import compile_grid
    from harness.spec.site import site_values

    grid = compile_grid(grid_path, profile=profile, sets=[*sets, *spec.fixed_overrides(), *overrides(spec, values)],
                        only=only, drop_factors=spec.replaces, site=site_values())
    seed = grid.seeds[0]
    task = spec.objective.task
    if task == "pretrain":
        targets = [j for j in grid.jobs if j.stage == "pretrain" and j.seed == seed]
    else:
        targets = [j for j in grid.jobs if j.stage == "finetune" and j.task == task and j.seed == seed]
    if not targets:
        tasks = sorted({j.task or "pretrain" for j in grid.jobs})
        raise ValueError(f"grid '{grid.name}' has no '{task}' job to score (it has: {', '.join(tasks)}); "
                         f"fix search.objective.task")
    if len(targets) > 1:
        raise ValueError(
            f"grid '{grid.name}' compiles into {len(targets)} cells for '{task}' (factors: "
            f"{', '.join(grid.factors)}); a search runs one cell: drop the factors in the search variant "
            f"(factors: {{NAME: null}}) or pick one level with --only"
        )
    target = targets[0]
    for name, p in spec.params.items():
        got = _value_at(target, p.path)
        if not _same(got, values[name]):
            raise ValueError(f"search.params.{name}: the job's {p.path} is {got!r}, not the trial's "
                             f"{values[name]!r}; something in the grid overrides it")
    chain = [target]
    by_id = {j.run_id: j for j in grid.jobs}
    while chain[0].depends_on is not None:
        chain.insert(0, by_id[chain[0].depends_on])
    return chain


def probe_values(spec: SearchSpec) -> dict[str, Any]:
    """Valid values for every parameter (low end / first choice), to check a grid before a search."""
    out: dict[str, Any] = {}
    for name, p in spec.params.items():
        out[name] = _probe(p)
    return out


def _probe(p: ParamSpec) -> Any:
    if p.choices is not None:
        return p.choices[0]
    assert p.low is not None
    return int(p.low) if p.type == "int" else float(p.low)
